package main

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/autoscaling"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
)

// scalerMetricsAddr is where the scaler serves Prometheus metrics on the web host.
const scalerMetricsAddr = "127.0.0.1:9102"

// replyPrefixURL is the queue URL prefix of the web hosts' own reply
// queues: the request queue's URL with its name replaced by the prefix.
func replyPrefixURL(requestsURL string, names awsres.Names) string {
	return besideURL(requestsURL, names.ReplyQueuePrefix)
}

// besideURL is the URL of the queue named name in the request queue's
// account and region: the request queue's URL with its name replaced.
func besideURL(requestsURL, name string) string {
	return requestsURL[:strings.LastIndexByte(requestsURL, '/')+1] + name
}

// leaseURL is the record the web hosts' scalers elect the acting one through.
func leaseURL(names awsres.Names) string {
	return "s3://" + names.OutputBucket + "/" + awsres.ScalerLeaseKey
}

// webEnv is a web host's /etc/facecloud/agent.env, read by both the web
// and the scaler unit. Each web host has a reply queue of its own
// (FACECLOUD_REPLY_PREFIX) and its scaler stands for election
// (FACECLOUD_LEASE), so any number of hosts can run behind the load
// balancer. The scaler reports the dead-letter queue's depth
// (FACECLOUD_DEAD_LETTER) in its status report and metric, which the
// console and facecloud status show. The agents read FACECLOUD_<FLAG> for every flag, so the
// variables the units do not pass (FACECLOUD_OPEN_RECOGNITION,
// FACECLOUD_REPLY_TOUCH, FACECLOUD_REPLY_EXPIRY) still reach the agent
// that has the flag.
func webEnv(c Config, names awsres.Names, requestsURL string) map[string]string {
	return map[string]string{
		"FACECLOUD_PORT":         strconv.Itoa(c.WebPort),
		"FACECLOUD_REQUESTS":     requestsURL,
		"FACECLOUD_REPLY_PREFIX": replyPrefixURL(requestsURL, names),
		"FACECLOUD_INPUT":        storeURL(names.InputBucket, c.Region),
		"FACECLOUD_OUTPUT":       storeURL(names.OutputBucket, c.Region),
		"FACECLOUD_FLEET":        "asg://" + names.WorkerGroup,
		"FACECLOUD_LEASE":        leaseURL(names),
		"FACECLOUD_DEAD_LETTER":  besideURL(requestsURL, names.DeadLetterQueue),
		"FACECLOUD_REPLY_TOUCH":  c.ReplyTouch.String(),
		"FACECLOUD_REPLY_EXPIRY": c.ReplyExpiry.String(),
		// The course's workload sends no API key: its preset lets the
		// recognition routes through without one. Everything else (and
		// every route of the default preset) needs a key.
		"FACECLOUD_OPEN_RECOGNITION": strconv.FormatBool(c.NamingPreset == awsres.PresetCourse),
		// The scaler keeps inside the group's bounds.
		"FACECLOUD_MIN_WORKERS": strconv.Itoa(c.MinWorkers),
		"FACECLOUD_MAX_WORKERS": strconv.Itoa(c.MaxWorkers),
		// The scaler's metrics stay on the host (reach them through a
		// Session Manager port forward); the web port serves the web's.
		"FACECLOUD_METRICS_ADDR": scalerMetricsAddr,
		"FACECLOUD_LOG_FORMAT":   "json",
		"FACECLOUD_LOG_LEVEL":    c.LogLevel,
		"AWS_REGION":             c.Region,
	}
}

// webUserData renders a web host's cloud-init; it names the agent's hash.
func webUserData(c Config, names awsres.Names, a *artifacts, requestsURL string) (string, error) {
	env, err := envFile(webEnv(c, names, requestsURL))
	if err != nil {
		return "", err
	}
	art, err := artifactsEnv(c, names)
	if err != nil {
		return "", err
	}
	logs, err := cloudWatchAgentConfig(c, roleWeb)
	if err != nil {
		return "", err
	}
	return renderHost(roleWeb, hostData{
		Stack:        c.Stack,
		AgentEnv:     env,
		ArtifactsEnv: art,
		Manifest:     manifest(a.Agent),
		LogAgent:     logs,
	})
}

// serviceURL is the address clients use for a plain HTTP endpoint.
func serviceURL(host string, port int) string {
	if port == 80 {
		return "http://" + host + "/"
	}
	return fmt.Sprintf("http://%s:%d/", host, port)
}

// webTier is the web hosts' launch template and group.
type webTier struct {
	template *ec2.LaunchTemplate
	group    *autoscaling.Group
}

// webHealthGrace is how long a new web host has to pass the load
// balancer's health check (boot, package install, artifact fetch, agent
// start) before the group replaces it.
const webHealthGrace = 300

// newWebTier runs the web and scaler agents on WebHosts instances of an
// Auto Scaling group in the two public subnets, registered with the load
// balancer's target group and health-checked by it on /readyz: a host that
// fails the check is replaced. A new agent build (or a new stock AMI
// release) is a new launch template version, rolled out by an instance
// refresh that launches each replacement before it terminates the host it
// replaces, so a single host (the course preset) is never gone: pending
// jobs wait in SQS and results in S3, and a host stopped by the refresh
// drains its calls (the target group's deregistration delay).
func newWebTier(ctx *pulumi.Context, c Config, names awsres.Names, prefix string, a *artifacts, ami string, net *network, q *queues, r *roles, up *shipped, fd *frontDoor, logs *agentLogs, workers *autoscaling.Group) (*webTier, error) {
	userData := q.requests.Url.ApplyT(func(u string) (string, error) {
		s, err := webUserData(c, names, a, u)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	}).(pulumi.StringOutput)
	instanceTags := c.tags("Name", names.WebInstance, awsres.WorkerRoleTag, roleWeb)
	lt, err := ec2.NewLaunchTemplate(ctx, "web", &ec2.LaunchTemplateArgs{
		Name:                 pulumi.String(prefix + "-web"),
		Description:          pulumi.String("facecloud web host"),
		ImageId:              pulumi.String(ami),
		InstanceType:         pulumi.String(c.WebInstanceType),
		IamInstanceProfile:   &ec2.LaunchTemplateIamInstanceProfileArgs{Arn: r.web.Arn},
		VpcSecurityGroupIds:  pulumi.StringArray{net.webSG.ID()},
		MetadataOptions:      launchMetadataOptions(),
		UserData:             userData,
		UpdateDefaultVersion: pulumi.Bool(true),
		BlockDeviceMappings: ec2.LaunchTemplateBlockDeviceMappingArray{&ec2.LaunchTemplateBlockDeviceMappingArgs{
			DeviceName: pulumi.String("/dev/xvda"),
			Ebs: &ec2.LaunchTemplateBlockDeviceMappingEbsArgs{
				VolumeSize:          pulumi.Int(c.RootVolumeGiB),
				VolumeType:          pulumi.String("gp3"),
				Encrypted:           pulumi.String("true"),
				DeleteOnTermination: pulumi.String("true"),
			},
		}},
		TagSpecifications: ec2.LaunchTemplateTagSpecificationArray{
			&ec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("instance"), Tags: instanceTags},
			&ec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("volume"), Tags: instanceTags},
		},
		Tags: c.tags(),
	}, pulumi.DependsOn(append(append([]pulumi.Resource{}, r.webPolicies...), logs.resources()...)))
	if err != nil {
		return nil, fmt.Errorf("web launch template: %w", err)
	}
	base := awsres.Tags(c.Project, c.Stack)
	var tags autoscaling.GroupTagArray
	for _, k := range slices.Sorted(maps.Keys(base)) {
		tags = append(tags, &autoscaling.GroupTagArgs{Key: pulumi.String(k), Value: pulumi.String(base[k]), PropagateAtLaunch: pulumi.Bool(false)})
	}
	var subnets pulumi.StringArray
	for _, sn := range net.public {
		subnets = append(subnets, sn.ID())
	}
	// Web hosts boot with the agent uploaded, reach AWS through the
	// internet gateway, and send workers requests that name their own
	// reply queues, which only workers of this build answer there: the
	// worker group is updated first.
	deps := append([]pulumi.Resource{up.agent, workers}, net.publicRoutes...)
	grp, err := autoscaling.NewGroup(ctx, "web", &autoscaling.GroupArgs{
		Name:               pulumi.String(names.WebGroup),
		MinSize:            pulumi.Int(c.WebHosts),
		MaxSize:            pulumi.Int(c.WebHosts),
		DesiredCapacity:    pulumi.Int(c.WebHosts),
		VpcZoneIdentifiers: subnets,
		LaunchTemplate: &autoscaling.GroupLaunchTemplateArgs{
			Id:      lt.ID(),
			Version: lt.LatestVersion.ApplyT(strconv.Itoa).(pulumi.StringOutput),
		},
		TargetGroupArns:        pulumi.StringArray{fd.targets.Arn},
		HealthCheckType:        pulumi.String("ELB"),
		HealthCheckGracePeriod: pulumi.Int(webHealthGrace),
		DefaultInstanceWarmup:  pulumi.Int(60),
		InstanceRefresh: &autoscaling.GroupInstanceRefreshArgs{
			Strategy: pulumi.String("Rolling"),
			Preferences: &autoscaling.GroupInstanceRefreshPreferencesArgs{
				// Launch before terminating: the tier never shrinks.
				MinHealthyPercentage: pulumi.Int(100),
				MaxHealthyPercentage: pulumi.Int(200),
				SkipMatching:         pulumi.Bool(true),
			},
		},
		EnabledMetrics: groupMetrics(),
		Tags:           tags,
	}, pulumi.DependsOn(deps))
	if err != nil {
		return nil, fmt.Errorf("web group: %w", err)
	}
	return &webTier{template: lt, group: grp}, nil
}

// groupMetrics are the Auto Scaling group metrics both groups publish to
// CloudWatch (one-minute, free): the dashboard and the fleet alarm read them.
func groupMetrics() pulumi.StringArray {
	var out pulumi.StringArray
	for _, m := range enabledGroupMetrics {
		out = append(out, pulumi.String(m))
	}
	return out
}

var enabledGroupMetrics = []string{
	"GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances",
	"GroupTerminatingInstances", "GroupTotalInstances", "GroupMinSize", "GroupMaxSize",
}
