package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
)

// Statements that need Resource "*" because AWS offers no resource-level
// permission for the action (IAM Service Authorization Reference):
//
//   - autoscaling:DescribeAutoScalingGroups (scaler: reads desired, running,
//     pending and max of its group)
//   - autoscaling:DescribeAutoScalingInstances (worker: finds its own
//     group and lifecycle state before retiring)
//
// wildcardResourceActions lists them so the tests can hold every other
// statement to named resources.
var wildcardResourceActions = map[string]bool{
	"autoscaling:DescribeAutoScalingGroups":    true,
	"autoscaling:DescribeAutoScalingInstances": true,
}

// ssmManagedPolicy lets Session Manager reach the instance: the only way in,
// since no security group opens SSH.
const ssmManagedPolicy = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"

// imageBuilderManagedPolicy is what the Image Builder build instance needs
// to report progress and run the component.
const imageBuilderManagedPolicy = "arn:aws:iam::aws:policy/EC2InstanceProfileForImageBuilder"

// roles are the instance profiles. The web host runs two agents (web and
// scaler) but an instance has one profile, so its role carries two inline
// policies, one per agent, each with only that agent's actions; workers have
// their own role.
type roles struct {
	web, worker, builder *iam.InstanceProfile
}

// arns are the resources the policies name.
type arns struct {
	requests, replies, deadLetters pulumi.StringOutput
	input, output, artifacts       pulumi.StringOutput
	group                          pulumi.StringOutput
}

// agentPolicies returns the inline policies of each role, keyed by role then
// policy name, resolved once every ARN is known.
func agentPolicies(requests, replies, input, output, artifacts, group string) map[string]map[string]policyDocument {
	obj := func(bucket, prefix string) string { return bucket + "/" + prefix + "*" }
	artifactRead := statement{Sid: "ReadArtifacts", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{obj(artifacts, "")}}
	return map[string]map[string]policyDocument{
		"web": {
			"web": {Statement: []statement{
				{Sid: "SendRequests", Effect: "Allow", Action: []string{"sqs:SendMessage", "sqs:GetQueueAttributes"}, Resource: []string{requests}},
				{Sid: "TakeReplies", Effect: "Allow", Action: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}, Resource: []string{replies}},
				{Sid: "PutInputs", Effect: "Allow", Action: []string{"s3:PutObject", "s3:GetObject"}, Resource: []string{obj(input, "")}},
				{Sid: "ReadResults", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{obj(output, "")}},
				// ListBucket turns a missing key into 404 instead of 403.
				{Sid: "ListBuckets", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{input, output}},
				artifactRead,
			}},
			"scaler": {Statement: []statement{
				{Sid: "ReadDepth", Effect: "Allow", Action: []string{"sqs:GetQueueAttributes"}, Resource: []string{requests}},
				{Sid: "SetDesired", Effect: "Allow", Action: []string{"autoscaling:*"}, Resource: []string{"*"}},
				{Sid: "DescribeGroup", Effect: "Allow", Action: []string{"autoscaling:DescribeAutoScalingGroups"}, Resource: []string{"*"}},
			}},
		},
		"worker": {
			"worker": {Statement: []statement{
				{Sid: "TakeRequests", Effect: "Allow", Action: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}, Resource: []string{requests}},
				{Sid: "SendReplies", Effect: "Allow", Action: []string{"sqs:SendMessage", "sqs:GetQueueAttributes"}, Resource: []string{replies}},
				{Sid: "ReadInputs", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{obj(input, "")}},
				// Results and gallery entries (enrolment runs on workers).
				{Sid: "WriteOutputs", Effect: "Allow", Action: []string{"s3:PutObject", "s3:GetObject"}, Resource: []string{obj(output, "")}},
				{Sid: "ListBuckets", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{input, output}},
				artifactRead,
				{Sid: "Retire", Effect: "Allow", Action: []string{"autoscaling:TerminateInstanceInAutoScalingGroup"}, Resource: []string{group}},
				{Sid: "FindGroup", Effect: "Allow", Action: []string{"autoscaling:DescribeAutoScalingInstances"}, Resource: []string{"*"}},
			}},
		},
		"builder": {
			"artifacts": {Statement: []statement{artifactRead}},
		},
	}
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
	docs := pulumi.All(a.requests, a.replies, a.input, a.output, a.artifacts, a.group).ApplyT(func(v []any) (map[string]string, error) {
		out := map[string]string{}
		for role, policies := range agentPolicies(v[0].(string), v[1].(string), v[2].(string), v[3].(string), v[4].(string), v[5].(string)) {
			for name, d := range policies {
				s, err := d.JSON()
				if err != nil {
					return nil, err
				}
				out[role+"/"+name] = s
			}
		}
		return out, nil
	}).(pulumi.StringMapOutput)

	r := &roles{}
	type spec struct {
		role     string
		managed  []string
		policies []string
		dst      **iam.InstanceProfile
	}
	specs := []spec{
		{"web", []string{ssmManagedPolicy}, []string{"web", "scaler"}, &r.web},
		{"worker", []string{ssmManagedPolicy}, []string{"worker"}, &r.worker},
	}
	if c.Image == ImageBuilder {
		specs = append(specs, spec{"builder", []string{ssmManagedPolicy, imageBuilderManagedPolicy}, []string{"artifacts"}, &r.builder})
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
			if _, err := iam.NewRolePolicyAttachment(ctx, fmt.Sprintf("%s-managed-%d", s.role, i+1), &iam.RolePolicyAttachmentArgs{
				Role:      role.Name,
				PolicyArn: pulumi.String(m),
			}); err != nil {
				return nil, fmt.Errorf("%s role managed policy %s: %w", s.role, m, err)
			}
		}
		for _, p := range s.policies {
			if _, err := iam.NewRolePolicy(ctx, s.role+"-"+p, &iam.RolePolicyArgs{
				Role:   role.Name,
				Name:   pulumi.String(p),
				Policy: docs.MapIndex(pulumi.String(s.role + "/" + p)),
			}); err != nil {
				return nil, fmt.Errorf("%s role policy %s: %w", s.role, p, err)
			}
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

// groupARN is the Auto Scaling group's ARN pattern, known before the group
// exists so the roles (and the instances' first boot) do not wait for it.
func groupARN(ctx *pulumi.Context, c Config, names awsres.Names) (pulumi.StringOutput, error) {
	id, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("look up account: %w", err)
	}
	part, err := aws.GetPartition(ctx, nil)
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("look up partition: %w", err)
	}
	return pulumi.Sprintf("arn:%s:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s",
		part.Partition, c.Region, id.AccountId, names.WorkerGroup), nil
}
