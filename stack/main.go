// Command stack is the Pulumi program of facecloud: `pulumi up` builds the
// network, queues, buckets, roles, worker AMI, worker group, the web tier
// behind its load balancer, the first admin key, log groups, alarms and a
// dashboard on AWS and ships the facecloud agents, cross-compiled from this
// module at every run; `pulumi destroy` removes all of it. One file per
// concern: config, network, queues, storage, iam, image, workers, web,
// loadbalancer, adminkey, logs, monitor, artifacts, userdata (templates of
// images/).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/stack/rehearsal"
)

func main() {
	run := func(ctx *pulumi.Context) error {
		work, err := buildDir(ctx)
		if err != nil {
			return err
		}
		return program(ctx, inputs{build: goBuild, models: ensureModels, workDir: work})
	}
	if path := os.Getenv(rehearsal.EnvCapture); path != "" {
		if err := capture(path); err != nil {
			fmt.Fprintln(os.Stderr, "facecloud stack:", err)
			os.Exit(1)
		}
		return
	}
	pulumi.Run(run)
}

// capture runs the program as `pulumi up` would — the agent really
// cross-compiled, the model files really hashed — but against
// rehearsal.Cloud instead of the engine and AWS, and writes every declared
// resource and the stack's outputs to path. The stack is $PULUMI_STACK
// (default dev) of $PULUMI_PROJECT (default facecloud); its configuration is
// $PULUMI_CONFIG, a JSON object as the engine passes it. The deployment
// rehearsal boots hosts from this file.
func capture(path string) error {
	project, stack := os.Getenv("PULUMI_PROJECT"), os.Getenv("PULUMI_STACK")
	if project == "" {
		project = "facecloud"
	}
	if stack == "" {
		stack = "dev"
	}
	outputs := map[string]any{}
	c, err := rehearsal.Run(project, stack, &rehearsal.Cloud{}, func(ctx *pulumi.Context) error {
		work, err := buildDir(ctx)
		if err != nil {
			return err
		}
		return program(ctx, inputs{build: goBuild, models: ensureModels, workDir: work, exported: outputs})
	}, outputs)
	if err != nil {
		return err
	}
	return c.Write(path)
}

// inputs are the program's effects on this machine: compiling the agent and
// fetching the model files. Tests replace them where the test says so.
type inputs struct {
	build   agentBuilder
	models  modelSource
	workDir string
	// exported, when not nil, receives the stack's outputs once known.
	exported map[string]any
}

// buildDir keeps the cross-compiled agent per stack in the user's cache:
// Pulumi reads the file while it uploads, after the program has returned.
func buildDir(ctx *pulumi.Context) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "facecloud", "stack", awsres.SanitizePrefix(ctx.Project()+"-"+ctx.Stack())), nil
}

func program(ctx *pulumi.Context, in inputs) error {
	c, err := loadConfig(ctx)
	if err != nil {
		return err
	}
	a, err := prepareArtifacts(ctx.Context(), c.Arch, in.workDir, in.build, in.models)
	if err != nil {
		return err
	}
	out, err := deploy(ctx, c, a)
	if err != nil {
		return err
	}
	out["agentSha256"] = pulumi.String(a.Agent.SHA256).ToStringOutput()
	var mu sync.Mutex
	for k, v := range out {
		ctx.Export(k, v)
		if in.exported != nil {
			v.ApplyT(func(s string) string {
				mu.Lock()
				in.exported[k] = s
				mu.Unlock()
				return s
			})
		}
	}
	return nil
}

// outputs are the stack's exports by name (`pulumi stack output`).
type outputs map[string]pulumi.StringOutput

// deploymentNames are the resources' names. The course preset keeps the
// course's exact names (its ID makes them unique); the default preset's
// bucket names carry a suffix of the account and region, since bucket names
// are global across every AWS account.
func deploymentNames(c Config, acct account) (awsres.Names, error) {
	names, err := awsres.NewNames(c.NamingPreset, c.NamePrefix)
	if err != nil {
		return awsres.Names{}, fmt.Errorf("names: %w", err)
	}
	if c.NamingPreset != awsres.PresetCourse {
		names = names.WithBucketSuffix(awsres.BucketSuffix(acct.id, c.Region))
	}
	return names, nil
}

// deploy declares every resource of a validated configuration.
func deploy(ctx *pulumi.Context, c Config, a *artifacts) (outputs, error) {
	acct, err := lookupAccount(ctx)
	if err != nil {
		return nil, err
	}
	names, err := deploymentNames(c, acct)
	if err != nil {
		return nil, err
	}
	prefix := c.NamePrefix
	net, err := newNetwork(ctx, c, prefix, numbered(names))
	if err != nil {
		return nil, err
	}
	q, err := newQueues(ctx, c, names)
	if err != nil {
		return nil, err
	}
	b, err := newBuckets(ctx, c, names)
	if err != nil {
		return nil, err
	}
	up, err := uploadArtifacts(ctx, c, b.artifacts, a)
	if err != nil {
		return nil, err
	}
	group, instances, hostReplies := accountARNs(c, names, acct)
	logARNs := map[string]string{}
	for _, l := range loggedAgents {
		logARNs[l.agent] = logGroupARN(c, acct, l.agent)
	}
	r, err := newRoles(ctx, c, prefix, arns{
		requests: q.requests.Arn, replies: q.replies.Arn, deadLetters: q.deadLetters.Arn,
		input: b.input.Arn, output: b.output.Arn, artifacts: b.artifacts.Arn,
		group:       pulumi.String(group).ToStringOutput(),
		instances:   pulumi.String(instances).ToStringOutput(),
		hostReplies: pulumi.String(hostReplies).ToStringOutput(),
		logs:        logARNs,
		numbered:    numbered(names),
		warmPool:    c.WarmPoolSize > 0,
	})
	if err != nil {
		return nil, err
	}
	stock, err := stockAMI(ctx, c.Arch)
	if err != nil {
		return nil, err
	}
	workerAMI := pulumi.String(stock).ToStringOutput()
	if c.Image == ImageBuilder {
		if workerAMI, err = workerImage(ctx, c, prefix, names.ArtifactsBucket, a, net, r, up); err != nil {
			return nil, err
		}
	}
	logs, err := newAgentLogs(ctx, c)
	if err != nil {
		return nil, err
	}
	grp, _, err := newWorkers(ctx, c, names, prefix, a, workerAMI, net, q, r, up, logs)
	if err != nil {
		return nil, err
	}
	fd, err := newFrontDoor(ctx, c, names, net)
	if err != nil {
		return nil, err
	}
	web, err := newWebTier(ctx, c, names, prefix, a, stock, net, q, r, up, fd, logs, grp)
	if err != nil {
		return nil, err
	}
	key, err := newAdminKey(ctx, c, b.output)
	if err != nil {
		return nil, err
	}
	mon, err := newMonitoring(ctx, c, names, fd)
	if err != nil {
		return nil, err
	}
	var groups []string
	for _, l := range loggedAgents {
		groups = append(groups, logGroupName(c.NamePrefix, l.agent))
	}
	return outputs{
		"url":                fd.url,
		"endpoint":           pulumi.String(endpointNote(c)).ToStringOutput(),
		"loadBalancerDns":    fd.lb.DnsName,
		"requestQueueUrl":    q.requests.Url,
		"responseQueueUrl":   q.replies.Url,
		"deadLetterQueueUrl": q.deadLetters.Url,
		"inputBucket":        b.input.Bucket,
		"outputBucket":       b.output.Bucket,
		"artifactsBucket":    b.artifacts.Bucket,
		"workerGroup":        grp.Name,
		"webGroup":           web.group.Name,
		"workerAmiId":        workerAMI,
		"adminKeyParameter":  key.param.Name,
		"adminKey":           key.key,
		"dashboardUrl":       pulumi.String(dashboardURL(c.Region, c.NamePrefix)).ToStringOutput(),
		"alarmTopicArn":      mon.topic.Arn,
		"logGroups":          pulumi.String(strings.Join(groups, " ")).ToStringOutput(),
	}, nil
}
