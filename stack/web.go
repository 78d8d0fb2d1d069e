package main

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
)

// scalerMetricsAddr is where the scaler serves Prometheus metrics on the web host.
const scalerMetricsAddr = "127.0.0.1:9102"

// webEnv is the web host's /etc/facecloud/agent.env, read by both the web
// and the scaler unit.
func webEnv(c Config, names awsres.Names, requestsURL, repliesURL string) map[string]string {
	return map[string]string{
		"FACECLOUD_PORT":     strconv.Itoa(c.WebPort),
		"FACECLOUD_REQUESTS": requestsURL,
		"FACECLOUD_REPLIES":  repliesURL,
		"FACECLOUD_INPUT":    storeURL(names.InputBucket, c.Region),
		"FACECLOUD_OUTPUT":   storeURL(names.OutputBucket, c.Region),
		"FACECLOUD_FLEET":    "asg://" + names.WorkerGroup,
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

// webUserData renders the web host's cloud-init; it names the agent's hash.
func webUserData(c Config, names awsres.Names, a *artifacts, requestsURL, repliesURL string) (string, error) {
	env, err := envFile(webEnv(c, names, requestsURL, repliesURL))
	if err != nil {
		return "", err
	}
	art, err := artifactsEnv(c, names)
	if err != nil {
		return "", err
	}
	return renderHost(roleWeb, hostData{
		Stack:        c.Stack,
		AgentEnv:     env,
		ArtifactsEnv: art,
		Manifest:     manifest(a.Agent),
	})
}

// serviceURL is the address clients use.
func serviceURL(ip string, port int) string {
	if port == 80 {
		return "http://" + ip + "/"
	}
	return fmt.Sprintf("http://%s:%d/", ip, port)
}

// newWeb runs the web and scaler agents on one instance behind an Elastic
// IP. A new agent build changes the user data, which replaces the instance
// (pending jobs wait in SQS and results in S3, so nothing is lost; open
// HTTP calls are cut). A new stock AMI release does not: the AMI is ignored
// in diffs so the host is not replaced just because Amazon published one.
func newWeb(ctx *pulumi.Context, c Config, names awsres.Names, a *artifacts, ami string, net *network, q *queues, r *roles, up *shipped) (*ec2.Instance, *ec2.Eip, error) {
	userData := pulumi.All(q.requests.Url, q.replies.Url).ApplyT(func(v []any) (string, error) {
		return webUserData(c, names, a, v[0].(string), v[1].(string))
	}).(pulumi.StringOutput)
	tags := c.tags("Name", names.WebInstance, awsres.WorkerRoleTag, roleWeb)
	inst, err := ec2.NewInstance(ctx, "web", &ec2.InstanceArgs{
		Ami:                     pulumi.String(ami),
		InstanceType:            pulumi.String(c.WebInstanceType),
		SubnetId:                net.public[0].ID(),
		VpcSecurityGroupIds:     pulumi.StringArray{net.webSG.ID()},
		IamInstanceProfile:      r.web.Name,
		UserData:                userData,
		UserDataReplaceOnChange: pulumi.Bool(true),
		MetadataOptions: &ec2.InstanceMetadataOptionsArgs{
			HttpEndpoint:            pulumi.String("enabled"),
			HttpTokens:              pulumi.String("required"),
			HttpPutResponseHopLimit: pulumi.Int(1),
			InstanceMetadataTags:    pulumi.String("disabled"),
		},
		RootBlockDevice: &ec2.InstanceRootBlockDeviceArgs{
			VolumeSize:          pulumi.Int(c.RootVolumeGiB),
			VolumeType:          pulumi.String("gp3"),
			Encrypted:           pulumi.Bool(true),
			DeleteOnTermination: pulumi.Bool(true),
			Tags:                tags,
		},
		Tags: tags,
	}, pulumi.IgnoreChanges([]string{"ami"}),
		// Its first boot fetches the agent with the role's grants through
		// the internet gateway: all must exist before it starts.
		pulumi.DependsOn(append(append([]pulumi.Resource{up.agent}, r.webPolicies...), net.publicRoutes...)))
	if err != nil {
		return nil, nil, fmt.Errorf("web instance: %w", err)
	}
	eip, err := ec2.NewEip(ctx, "web", &ec2.EipArgs{
		Domain:   pulumi.String("vpc"),
		Instance: inst.ID(),
		Tags:     c.tags("Name", names.WebInstance),
	}, pulumi.DependsOn(net.publicRoutes)) // AWS refuses an address in a VPC without an internet gateway
	if err != nil {
		return nil, nil, fmt.Errorf("web elastic ip: %w", err)
	}
	return inst, eip, nil
}
