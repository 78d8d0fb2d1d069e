package main

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/autoscaling"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
)

// Role tag values on instances (awsres.WorkerRoleTag).
const (
	roleWorker = "worker"
	roleWeb    = "web"
)

// storeURL names an S3 bucket as the agents' store backend.
func storeURL(bucket, region string) string {
	return fmt.Sprintf("s3://%s?region=%s", bucket, region)
}

// metadataOptions require IMDSv2 tokens and keep the hop limit at 1, so
// nothing forwarded through the instance can reach its credentials.
func launchMetadataOptions() *ec2.LaunchTemplateMetadataOptionsArgs {
	return &ec2.LaunchTemplateMetadataOptionsArgs{
		HttpEndpoint:            pulumi.String("enabled"),
		HttpTokens:              pulumi.String("required"),
		HttpPutResponseHopLimit: pulumi.Int(1),
		InstanceMetadataTags:    pulumi.String("disabled"),
	}
}

// numbered reports whether the preset numbers worker names (app-tier-instance-<n>).
func numbered(names awsres.Names) bool { return strings.Contains(names.WorkerInstance, "%d") }

// workerEnv is the worker's /etc/facecloud/agent.env.
func workerEnv(c Config, names awsres.Names, requestsURL, repliesURL string) map[string]string {
	env := map[string]string{
		"FACECLOUD_REQUESTS": requestsURL,
		"FACECLOUD_REPLIES":  repliesURL,
		// Replies go to the queue of the web host that sent the request;
		// the shared queue takes those of requests that name none.
		"FACECLOUD_REPLY_PREFIX": replyPrefixURL(requestsURL, names),
		"FACECLOUD_INPUT":        storeURL(names.InputBucket, c.Region),
		"FACECLOUD_OUTPUT":       storeURL(names.OutputBucket, c.Region),
		"FACECLOUD_IDLE_EXIT":    c.IdleExit.String(),
		// Enrolments and erasures made elsewhere reach the worker within this.
		"FACECLOUD_GALLERY_REFRESH": c.GalleryRefresh.String(),
		// The worker's heartbeat must match the queue it extends.
		"FACECLOUD_VISIBILITY":   c.Queue.VisibilityTimeout.String(),
		"FACECLOUD_HEARTBEAT":    c.Queue.Heartbeat.String(),
		"FACECLOUD_MAX_RECEIVES": strconv.Itoa(c.Queue.MaxReceives),
		"FACECLOUD_FLEET":        "asg://" + names.WorkerGroup,
		// The course preset keeps the course's output layout: an object
		// named after each image's stem, holding its answer.
		"FACECLOUD_ANSWER_OBJECTS": strconv.FormatBool(c.NamingPreset == awsres.PresetCourse),
		"FACECLOUD_MODELS":         modelDir,
		"FACECLOUD_LOG_FORMAT":     "json",
		"FACECLOUD_LOG_LEVEL":      c.LogLevel,
		"AWS_REGION":               c.Region,
		// The boot scripts' group: health reports, lifecycle hook, naming.
		"FACECLOUD_GROUP": names.WorkerGroup,
	}
	if numbered(names) {
		env["FACECLOUD_NAME_PATTERN"] = names.WorkerInstance
	}
	if c.WarmPoolSize > 0 {
		env["FACECLOUD_LAUNCH_HOOK"] = launchHook
	}
	return env
}

// launchHook holds a launching worker until its boot fetch is done, so one
// launched into the warm pool is stopped with the agent and model on disk.
const launchHook = "facecloud-boot"

// launchHookTimeout is how long the group waits for a booting worker to
// complete the launch hook before going on by itself.
const launchHookTimeout = 15 * time.Minute

// artifactsEnv is /etc/facecloud/artifacts.env on every instance.
func artifactsEnv(c Config, names awsres.Names) (string, error) {
	return envFile(map[string]string{
		"FACECLOUD_ARTIFACTS_BUCKET": names.ArtifactsBucket,
		"AWS_REGION":                 c.Region,
	})
}

// workerUserData renders the workers' cloud-init, which names the agent's
// and the models' hashes: a new build is a new launch template version.
func workerUserData(c Config, names awsres.Names, a *artifacts, requestsURL, repliesURL string) (string, error) {
	env, err := envFile(workerEnv(c, names, requestsURL, repliesURL))
	if err != nil {
		return "", err
	}
	art, err := artifactsEnv(c, names)
	if err != nil {
		return "", err
	}
	logs, err := cloudWatchAgentConfig(c, roleWorker)
	if err != nil {
		return "", err
	}
	return renderHost(roleWorker, hostData{
		Stack:         c.Stack,
		AgentEnv:      env,
		ArtifactsEnv:  art,
		LogAgent:      logs,
		Manifest:      manifest(append([]artifact{a.Agent}, a.Models...)...),
		NumberedNames: numbered(names),
	})
}

// workerName is the Name tag a worker launches with. The course preset
// numbers its instances (app-tier-instance-<n>); a launch template cannot, so
// they launch with the stem and images/scripts/name-instance.sh renames each
// at boot.
func workerName(names awsres.Names) string {
	return strings.TrimSuffix(strings.ReplaceAll(names.WorkerInstance, "%d", ""), "-")
}

func newWorkers(ctx *pulumi.Context, c Config, names awsres.Names, prefix string, a *artifacts, ami pulumi.StringOutput, net *network, q *queues, r *roles, up *shipped, logs *agentLogs) (*autoscaling.Group, *ec2.LaunchTemplate, error) {
	userData := pulumi.All(q.requests.Url, q.replies.Url).ApplyT(func(v []any) (string, error) {
		s, err := workerUserData(c, names, a, v[0].(string), v[1].(string))
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	}).(pulumi.StringOutput)

	instanceTags := c.tags("Name", workerName(names), awsres.WorkerRoleTag, roleWorker)
	lt, err := ec2.NewLaunchTemplate(ctx, "worker", &ec2.LaunchTemplateArgs{
		Name:                 pulumi.String(prefix + "-worker"),
		Description:          pulumi.String("facecloud worker"),
		ImageId:              ami,
		InstanceType:         pulumi.String(c.WorkerInstanceType),
		IamInstanceProfile:   &ec2.LaunchTemplateIamInstanceProfileArgs{Arn: r.worker.Arn},
		VpcSecurityGroupIds:  pulumi.StringArray{net.workerSG.ID()},
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
	}, pulumi.DependsOn(append(append([]pulumi.Resource{}, r.workerPolicies...), logs.resources()...)))
	if err != nil {
		return nil, nil, fmt.Errorf("worker launch template: %w", err)
	}

	// Instances get their tags from the launch template; these tag the group.
	base := awsres.Tags(c.Project, c.Stack)
	keys := slices.Sorted(maps.Keys(base))
	var tags autoscaling.GroupTagArray
	for _, k := range keys {
		tags = append(tags, &autoscaling.GroupTagArgs{Key: pulumi.String(k), Value: pulumi.String(base[k]), PropagateAtLaunch: pulumi.Bool(false)})
	}
	args := &autoscaling.GroupArgs{
		Name:               pulumi.String(names.WorkerGroup),
		MinSize:            pulumi.Int(c.MinWorkers),
		MaxSize:            pulumi.Int(c.MaxWorkers),
		DesiredCapacity:    pulumi.Int(c.MinWorkers),
		VpcZoneIdentifiers: net.workerSubnets,
		LaunchTemplate: &autoscaling.GroupLaunchTemplateArgs{
			Id:      lt.ID(),
			Version: lt.LatestVersion.ApplyT(strconv.Itoa).(pulumi.StringOutput),
		},
		// A new launch template version (new agent build, model, AMI or
		// setting) replaces running workers in place, half at a time.
		InstanceRefresh: &autoscaling.GroupInstanceRefreshArgs{
			Strategy: pulumi.String("Rolling"),
			Preferences: &autoscaling.GroupInstanceRefreshPreferencesArgs{
				MinHealthyPercentage: pulumi.Int(50),
				SkipMatching:         pulumi.Bool(true),
				// Workers are protected from scale-in; a refresh still
				// replaces them (a job cut short returns to the queue).
				ScaleInProtectedInstances: pulumi.String("Refresh"),
			},
		},
		// Lowering the desired count must never stop a busy worker: idle
		// workers retire themselves instead.
		ProtectFromScaleIn:     pulumi.Bool(awsres.ProtectFromScaleIn),
		HealthCheckType:        pulumi.String("EC2"),
		HealthCheckGracePeriod: pulumi.Int(60),
		DefaultInstanceWarmup:  pulumi.Int(60),
		// pulumi destroy terminates the workers instead of waiting for them.
		ForceDelete:         pulumi.Bool(true),
		ForceDeleteWarmPool: pulumi.Bool(true),
		EnabledMetrics:      groupMetrics(),
		Tags:                tags,
	}
	if c.WarmPoolSize > 0 {
		// Stopped instances cost only their volumes and start in seconds
		// with the model and agent already on disk. Without a maximum the
		// pool holds maxWorkers − desired instances; MaxGroupPreparedCapacity
		// = MinSize = warmPoolSize keeps it at warmPoolSize whatever the
		// desired count (the pool is max(MinSize, MGPC − desired)).
		args.WarmPool = &autoscaling.GroupWarmPoolArgs{
			PoolState:                pulumi.String("Stopped"),
			MinSize:                  pulumi.Int(c.WarmPoolSize),
			MaxGroupPreparedCapacity: pulumi.Int(c.WarmPoolSize),
		}
		args.InitialLifecycleHooks = autoscaling.GroupInitialLifecycleHookArray{&autoscaling.GroupInitialLifecycleHookArgs{
			Name:                pulumi.String(launchHook),
			LifecycleTransition: pulumi.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
			DefaultResult:       pulumi.String("CONTINUE"),
			HeartbeatTimeout:    pulumi.Int(int(launchHookTimeout / time.Second)),
		}}
	}
	// The scaler owns the desired capacity; Pulumi sets it on creation only.
	// Instances launch only once what they fetch is uploaded and what they
	// reach it through exists.
	deps := append([]pulumi.Resource{up.agent}, up.models...)
	deps = append(deps, net.workerRoutes...)
	grp, err := autoscaling.NewGroup(ctx, "workers", args,
		pulumi.IgnoreChanges([]string{"desiredCapacity"}),
		pulumi.DependsOn(deps))
	if err != nil {
		return nil, nil, fmt.Errorf("worker group: %w", err)
	}
	return grp, lt, nil
}
