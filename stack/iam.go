package main

import (
	"fmt"
	"path"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/status"
)

// Statements that need Resource "*" because AWS offers no resource-level
// permission for the action (IAM Service Authorization Reference, Amazon EC2
// Auto Scaling: "Describe*" actions support only "*"):
//
//   - autoscaling:DescribeAutoScalingGroups (scaler: desired, running,
//     pending and max of its group; worker: its group's state)
//   - autoscaling:DescribeAutoScalingInstances (lifecycle state of an
//     instance)
//   - ec2:DescribeInstances (course naming only: a worker looks up the
//     Name tags of its group to number itself)
//
// wildcardResourceActions lists them so the tests can hold every other
// statement to named resources.
var wildcardResourceActions = map[string]bool{
	"autoscaling:DescribeAutoScalingGroups":    true,
	"autoscaling:DescribeAutoScalingInstances": true,
	"ec2:DescribeInstances":                    true,
	// sqs:ListQueues (acting scaler: the web hosts' reply queues under the
	// prefix) acts on no queue.
	"sqs:ListQueues": true,
}

// ssmManagedPolicy lets Session Manager reach the instance: the only way in,
// since no security group opens SSH.
const ssmManagedPolicy = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"

// imageBuilderManagedPolicy is what the Image Builder build instance needs
// to report progress and run the component.
const imageBuilderManagedPolicy = "arn:aws:iam::aws:policy/EC2InstanceProfileForImageBuilder"

// roles are the instance profiles. The web host runs two agents (web and
// scaler) but an instance has one profile, so its role carries one inline
// policy per agent, each with only that agent's grants; workers have their
// own role. Every role also reads the artifacts bucket at boot.
type roles struct {
	web, worker, builder *iam.InstanceProfile
	// webPolicies and workerPolicies are the roles' inline policies and
	// managed attachments: an instance launched before them boots without
	// its grants, and its first fetch and agent start fail.
	webPolicies, workerPolicies, builderPolicies []pulumi.Resource
}

// arns are the resources the policies name.
type arns struct {
	requests, replies        pulumi.StringOutput
	deadLetters              pulumi.StringOutput
	input, output, artifacts pulumi.StringOutput
	group, instances         pulumi.StringOutput
	// hostReplies is the ARN pattern of the web hosts' own reply queues.
	hostReplies pulumi.StringOutput
	// logs are the ARN patterns of each agent's log group, by agent.
	logs     map[string]string
	numbered bool
	warmPool bool
}

// resolved are the ARNs once known. instances is the ARN pattern of the
// account's instances in the region; numbered says whether workers name
// themselves (course preset).
type resolved struct {
	requests, replies, deadLetters, input, output, artifacts, group, instances, hostReplies string
	logs                                                                                    map[string]string
	numbered, warmPool                                                                      bool
}

// grantPolicy turns an agent's grants from awsres (the list the agents'
// own AWS tests use) into a policy document on this deployment's ARNs.
func grantPolicy(grants []awsres.Grant, r resolved) (policyDocument, error) {
	arn := map[awsres.Resource][]string{
		awsres.RequestQueue:    {r.requests},
		awsres.DeadLetterQueue: {r.deadLetters},
		awsres.ReplyQueue:      {r.replies},
		awsres.InputObjects:    {r.input + "/*"},
		awsres.OutputObjects:   {r.output + "/*"},
		awsres.InputBucket:     {r.input},
		awsres.OutputBucket:    {r.output},
		awsres.WorkerGroup:     {r.group},
		awsres.AnyResource:     {"*"},
		awsres.HostReplyQueues: {r.hostReplies},
		awsres.ScalerLease:     {r.output + "/" + path.Dir(awsres.ScalerLeaseKey) + "/*"},
		awsres.KeyObjects:      {r.output + "/" + keys.Prefix + "*", r.output + "/" + keys.UsePrefix + "*"},
		awsres.GalleryObjects:  {r.output + "/" + gallery.CollectionsPrefix + "*"},
		awsres.StatusObjects:   {r.output + "/" + status.Prefix + "*"},
	}
	var d policyDocument
	for i, g := range grants {
		res, ok := arn[g.Resource]
		if !ok {
			return policyDocument{}, fmt.Errorf("grant %d names resource %q, which the stack does not create", i+1, g.Resource)
		}
		d.Statement = append(d.Statement, statement{
			Sid:      fmt.Sprintf("Grant%d", i+1),
			Effect:   "Allow",
			Action:   g.Actions,
			Resource: res,
		})
	}
	return d, nil
}

// agentPolicies returns the inline policies of each role, keyed by
// "role/policy".
func agentPolicies(r resolved) (map[string]policyDocument, error) {
	artifactRead := policyDocument{Statement: []statement{{
		Sid: "ReadArtifacts", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{r.artifacts + "/*"},
	}}}
	out := map[string]policyDocument{
		"web/artifacts":     artifactRead,
		"worker/artifacts":  artifactRead,
		"builder/artifacts": artifactRead,
		// A worker whose boot fetch or agent keeps failing marks itself
		// unhealthy (images/scripts/report-unhealthy.sh), so the group
		// replaces it instead of paying for it until destroy.
		"worker/health": {Statement: []statement{{
			Sid: "ReportOwnHealth", Effect: "Allow", Action: []string{"autoscaling:SetInstanceHealth"}, Resource: []string{r.group},
		}}},
	}
	if r.warmPool {
		// A worker launched into the warm pool tells the group when its
		// boot fetch is done (images/scripts/worker-gate.sh), so it is
		// stopped with the agent and model on disk.
		out["worker/warmpool"] = policyDocument{Statement: []statement{{
			Sid: "CompleteLaunch", Effect: "Allow", Action: []string{"autoscaling:CompleteLifecycleAction"}, Resource: []string{r.group},
		}}}
	}
	if r.numbered {
		// A worker may set only the Name tag, and only on a worker.
		out["worker/name"] = policyDocument{Statement: []statement{
			{Sid: "FindNames", Effect: "Allow", Action: []string{"ec2:DescribeInstances"}, Resource: []string{"*"}},
			{Sid: "SetOwnName", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: []string{r.instances},
				Condition: map[string]map[string]any{
					"StringEquals":              {"aws:ResourceTag/" + awsres.WorkerRoleTag: roleWorker},
					"ForAllValues:StringEquals": {"aws:TagKeys": []string{"Name"}},
				}},
		}}
	}
	// Each role's CloudWatch agent sends its agents' log files to their
	// groups: a stream per instance, created at start, then the events.
	for _, role := range []string{roleWeb, roleWorker} {
		var groups []string
		for _, a := range loggedAgents {
			if a.role == role {
				groups = append(groups, r.logs[a.agent])
			}
		}
		out[role+"/logs"] = policyDocument{Statement: []statement{{
			Sid: "ShipAgentLogs", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, Resource: groups,
		}}}
	}
	for key, grants := range map[string][]awsres.Grant{
		"web/web":       awsres.WebTierWebActions,
		"web/scaler":    awsres.WebTierScalerActions,
		"worker/worker": awsres.WebTierWorkerActions,
	} {
		d, err := grantPolicy(grants, r)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", key, err)
		}
		out[key] = d
	}
	return out, nil
}

func newRoles(ctx *pulumi.Context, c Config, prefix string, a arns) (*roles, error) {
	trust, err := policyDocument{Statement: []statement{{
		Effect:    "Allow",
		Principal: map[string]string{"Service": "ec2.amazonaws.com"},
		Action:    []string{"sts:AssumeRole"},
	}}}.JSON()
	if err != nil {
		return nil, err
	}
	docs := pulumi.All(a.requests, a.replies, a.input, a.output, a.artifacts, a.group, a.instances, a.hostReplies, a.deadLetters).ApplyT(func(v []any) (map[string]string, error) {
		policies, err := agentPolicies(resolved{
			requests: v[0].(string), replies: v[1].(string), deadLetters: v[8].(string),
			input: v[2].(string), output: v[3].(string), artifacts: v[4].(string),
			group: v[5].(string), instances: v[6].(string), hostReplies: v[7].(string),
			logs: a.logs, numbered: a.numbered, warmPool: a.warmPool,
		})
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for key, d := range policies {
			s, err := d.JSON()
			if err != nil {
				return nil, err
			}
			out[key] = s
		}
		return out, nil
	}).(pulumi.StringMapOutput)

	r := &roles{}
	type spec struct {
		role     string
		managed  []string
		policies []string
		dst      **iam.InstanceProfile
		deps     *[]pulumi.Resource
	}
	specs := []spec{
		{"web", []string{ssmManagedPolicy}, []string{"web", "scaler", "artifacts", "logs"}, &r.web, &r.webPolicies},
		{"worker", []string{ssmManagedPolicy}, []string{"worker", "artifacts", "health", "logs"}, &r.worker, &r.workerPolicies},
	}
	if a.numbered {
		specs[1].policies = append(specs[1].policies, "name")
	}
	if a.warmPool {
		specs[1].policies = append(specs[1].policies, "warmpool")
	}
	if c.Image == ImageBuilder {
		specs = append(specs, spec{"builder", []string{ssmManagedPolicy, imageBuilderManagedPolicy}, []string{"artifacts"}, &r.builder, &r.builderPolicies})
	}
	for _, s := range specs {
		role, err := iam.NewRole(ctx, s.role, &iam.RoleArgs{
			Name:             pulumi.String(prefix + "-" + s.role),
			AssumeRolePolicy: pulumi.String(trust),
			Description:      pulumi.String("facecloud " + s.role + " instances"),
			Tags:             c.tags(),
		})
		if err != nil {
			return nil, fmt.Errorf("%s role: %w", s.role, err)
		}
		for i, m := range s.managed {
			att, err := iam.NewRolePolicyAttachment(ctx, fmt.Sprintf("%s-managed-%d", s.role, i+1), &iam.RolePolicyAttachmentArgs{
				Role:      role.Name,
				PolicyArn: pulumi.String(m),
			})
			if err != nil {
				return nil, fmt.Errorf("%s role managed policy %s: %w", s.role, m, err)
			}
			*s.deps = append(*s.deps, att)
		}
		for _, p := range s.policies {
			pol, err := iam.NewRolePolicy(ctx, s.role+"-"+p, &iam.RolePolicyArgs{
				Role:   role.Name,
				Name:   pulumi.String(p),
				Policy: docs.MapIndex(pulumi.String(s.role + "/" + p)),
			})
			if err != nil {
				return nil, fmt.Errorf("%s role policy %s: %w", s.role, p, err)
			}
			*s.deps = append(*s.deps, pol)
		}
		*s.dst, err = iam.NewInstanceProfile(ctx, s.role, &iam.InstanceProfileArgs{
			Name: pulumi.String(prefix + "-" + s.role),
			Role: role.Name,
			Tags: c.tags(),
		})
		if err != nil {
			return nil, fmt.Errorf("%s instance profile: %w", s.role, err)
		}
	}
	return r, nil
}

// account is the AWS account and partition the stack deploys to.
type account struct {
	id, partition string
}

func lookupAccount(ctx *pulumi.Context) (account, error) {
	id, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return account{}, fmt.Errorf("look up account: %w", err)
	}
	part, err := aws.GetPartition(ctx, nil)
	if err != nil {
		return account{}, fmt.Errorf("look up partition: %w", err)
	}
	return account{id: id.AccountId, partition: part.Partition}, nil
}

// accountARNs returns the Auto Scaling group's ARN pattern, known before the
// group exists so the roles (and the instances' first boot) do not wait for
// it, the pattern of the account's instances in the region, and that of the
// web hosts' own reply queues (which the hosts create themselves).
func accountARNs(c Config, names awsres.Names, acct account) (group, instances, hostReplies string) {
	group = fmt.Sprintf("arn:%s:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s",
		acct.partition, c.Region, acct.id, names.WorkerGroup)
	instances = fmt.Sprintf("arn:%s:ec2:%s:%s:instance/*", acct.partition, c.Region, acct.id)
	hostReplies = fmt.Sprintf("arn:%s:sqs:%s:%s:%s*", acct.partition, c.Region, acct.id, names.ReplyQueuePrefix)
	return group, instances, hostReplies
}
