package main

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Agents' logs reach CloudWatch Logs without a shipper of our own: each
// agent's unit appends its JSON lines to /var/log/facecloud/<agent>.log
// (StandardOutput=append:), the Amazon CloudWatch agent (installed from
// Amazon Linux's repository by cloud-init, or baked into the worker AMI)
// sends each file, line by line, to the agent's log group, one stream per
// instance, and logrotate keeps the files small. docs/decisions.md says
// why files rather than the journal.

// loggedAgents are the agents with a log group, and the host role that
// runs each.
var loggedAgents = []struct{ agent, role string }{
	{"web", roleWeb}, {"scaler", roleWeb}, {"worker", roleWorker},
}

// logDir holds the agents' log files on every host.
const logDir = "/var/log/facecloud"

// logFile is where an agent's unit appends its output.
func logFile(agent string) string { return logDir + "/" + agent + ".log" }

// logGroupName is the CloudWatch Logs group of one agent of a stack.
func logGroupName(prefix, agent string) string { return "/facecloud/" + prefix + "/" + agent }

// cloudWatchAgentConfigPath is where cloud-init writes the CloudWatch
// agent's configuration; cloudWatchAgentCtl starts the agent with it.
const (
	cloudWatchAgentConfigPath = "/etc/facecloud/cloudwatch-agent.json"
	cloudWatchAgentCtl        = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
)

// cloudWatchAgentConfig is the CloudWatch agent's configuration on a host
// of role: each of its agents' log files to that agent's group, one stream
// per instance, lines as they are (the agents write one JSON object a
// line). No retention is set here (the stack sets it on the groups), so
// the agent needs only logs:CreateLogStream and logs:PutLogEvents; no
// metrics are collected.
func cloudWatchAgentConfig(c Config, role string) (string, error) {
	type file struct {
		FilePath      string `json:"file_path"`
		LogGroupName  string `json:"log_group_name"`
		LogStreamName string `json:"log_stream_name"`
		Timezone      string `json:"timezone"`
	}
	var files []file
	for _, a := range loggedAgents {
		if a.role == role {
			files = append(files, file{FilePath: logFile(a.agent), LogGroupName: logGroupName(c.NamePrefix, a.agent), LogStreamName: "{instance_id}", Timezone: "UTC"})
		}
	}
	doc := map[string]any{
		"agent": map[string]any{"logfile": "/opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log"},
		"logs": map[string]any{
			"force_flush_interval": 5,
			"logs_collected":       map[string]any{"files": map[string]any{"collect_list": files}},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", fmt.Errorf("cloudwatch agent config: %w", err)
	}
	return string(b), nil
}

// agentLogs are the log groups, by agent.
type agentLogs struct {
	groups map[string]*cloudwatch.LogGroup
}

// resources are the groups, for DependsOn: a host's CloudWatch agent may
// not create a group (it has no grant for it), so the groups exist first.
func (l *agentLogs) resources() []pulumi.Resource {
	var out []pulumi.Resource
	for _, a := range loggedAgents {
		out = append(out, l.groups[a.agent])
	}
	return out
}

func newAgentLogs(ctx *pulumi.Context, c Config) (*agentLogs, error) {
	l := &agentLogs{groups: map[string]*cloudwatch.LogGroup{}}
	for _, a := range loggedAgents {
		g, err := cloudwatch.NewLogGroup(ctx, "agent-"+a.agent, &cloudwatch.LogGroupArgs{
			Name:            pulumi.String(logGroupName(c.NamePrefix, a.agent)),
			RetentionInDays: pulumi.Int(c.LogRetentionDays),
			Tags:            c.tags(),
		})
		if err != nil {
			return nil, fmt.Errorf("%s log group: %w", a.agent, err)
		}
		l.groups[a.agent] = g
	}
	return l, nil
}

// logGroupARN is the ARN pattern of an agent's group and its streams,
// known before the group exists so the roles do not wait for it.
func logGroupARN(c Config, acct account, agent string) string {
	return fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:*", acct.partition, c.Region, acct.id, logGroupName(c.NamePrefix, agent))
}
