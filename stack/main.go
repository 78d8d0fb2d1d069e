// Command stack is the Pulumi program of facecloud: `pulumi up` builds the
// network, queues, buckets, roles, worker AMI, worker group and web host on
// AWS and ships the facecloud agents, cross-compiled from this module at
// every run; `pulumi destroy` removes all of it. One file per concern:
// config, network, queues, storage, iam, image, workers, web, artifacts,
// userdata (templates of images/).
package main

import (
	"fmt"
	"os"
	"path/filepath"
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
	exports := map[string]pulumi.StringOutput{
		"url":                out.url,
		"requestQueueUrl":    out.requestQueue,
		"responseQueueUrl":   out.responseQueue,
		"deadLetterQueueUrl": out.deadLetterQueue,
		"inputBucket":        out.inputBucket,
		"outputBucket":       out.outputBucket,
		"artifactsBucket":    out.artifactsBucket,
		"workerGroup":        out.workerGroup,
		"workerAmiId":        out.workerAMI,
		"webInstanceId":      out.webInstance,
		"agentSha256":        pulumi.String(a.Agent.SHA256).ToStringOutput(),
	}
	var mu sync.Mutex
	for k, v := range exports {
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

// outputs are the stack's exports.
type outputs struct {
	url, requestQueue, responseQueue, deadLetterQueue pulumi.StringOutput
	inputBucket, outputBucket, artifactsBucket        pulumi.StringOutput
	workerGroup, workerAMI, webInstance               pulumi.StringOutput
}

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
func deploy(ctx *pulumi.Context, c Config, a *artifacts) (*outputs, error) {
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
	group, instances := accountARNs(c, names, acct)
	r, err := newRoles(ctx, c, prefix, arns{
		requests: q.requests.Arn, replies: q.replies.Arn,
		input: b.input.Arn, output: b.output.Arn, artifacts: b.artifacts.Arn,
		group:     pulumi.String(group).ToStringOutput(),
		instances: pulumi.String(instances).ToStringOutput(),
		numbered:  numbered(names),
		warmPool:  c.WarmPoolSize > 0,
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
	grp, _, err := newWorkers(ctx, c, names, prefix, a, workerAMI, net, q, r, up)
	if err != nil {
		return nil, err
	}
	web, eip, err := newWeb(ctx, c, names, a, stock, net, q, r, up)
	if err != nil {
		return nil, err
	}
	return &outputs{
		url:             eip.PublicIp.ApplyT(func(ip string) string { return serviceURL(ip, c.WebPort) }).(pulumi.StringOutput),
		requestQueue:    q.requests.Url,
		responseQueue:   q.replies.Url,
		deadLetterQueue: q.deadLetters.Url,
		inputBucket:     b.input.Bucket,
		outputBucket:    b.output.Bucket,
		artifactsBucket: b.artifacts.Bucket,
		workerGroup:     grp.Name,
		workerAMI:       workerAMI,
		webInstance:     web.ID().ToStringOutput(),
	}, nil
}
