package main

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/job"
)

// buckets are the input (images), output (results, gallery) and artifacts
// (agent binary, model files) buckets.
type buckets struct {
	input, output, artifacts *s3.BucketV2
}

// bucketSpec says how one bucket is kept.
type bucketSpec struct {
	logical string
	name    string
	// expirePrefix/expireDays expire what the service no longer needs; an
	// empty prefix covers the whole bucket, days 0 keeps objects forever.
	expirePrefix string
	expireDays   int
	// data marks a bucket holding the service's data (uploads, results,
	// gallery): with forceDestroy false it is kept by `pulumi destroy`.
	data bool
}

func newBuckets(ctx *pulumi.Context, c Config, names awsres.Names) (*buckets, error) {
	specs := []bucketSpec{
		// Uploaded images are needed until a worker has read them.
		{logical: "input", name: names.InputBucket, expirePrefix: "", expireDays: c.InputRetentionDays, data: true},
		// Results are what clients poll for; the gallery (other prefixes) stays.
		{logical: "output", name: names.OutputBucket, expirePrefix: job.ResultPrefix, expireDays: c.OutputRetentionDays, data: true},
		// Artifacts are keyed by content hash; Pulumi deletes the old
		// objects when a new build replaces them. They are rebuilt from the
		// source at every run, so the bucket always goes with the stack.
		{logical: "artifacts", name: names.ArtifactsBucket},
	}
	made := make([]*s3.BucketV2, len(specs))
	for i, sp := range specs {
		b, err := newBucket(ctx, c, sp)
		if err != nil {
			return nil, fmt.Errorf("%s bucket: %w", sp.logical, err)
		}
		made[i] = b
	}
	return &buckets{input: made[0], output: made[1], artifacts: made[2]}, nil
}

// newBucket makes a private, encrypted, TLS-only bucket: ACLs disabled,
// every public access path blocked, SSE-S3 by default, and a lifecycle that
// clears failed multipart uploads and expires what spec says.
//
// With forceDestroy false a data bucket is kept — with its objects and every
// setting that guards them — when the stack is destroyed
// (RetainOnDelete), rather than making `pulumi destroy` fail with
// BucketNotEmpty half-way. Other buckets are always emptied and deleted.
func newBucket(ctx *pulumi.Context, c Config, sp bucketSpec) (*s3.BucketV2, error) {
	keep := sp.data && !c.ForceDestroy
	b, err := s3.NewBucketV2(ctx, sp.logical, &s3.BucketV2Args{
		Bucket:       pulumi.String(sp.name),
		ForceDestroy: pulumi.Bool(!keep),
		Tags:         c.tags("Name", sp.name),
	}, pulumi.RetainOnDelete(keep))
	if err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketOwnershipControls(ctx, sp.logical, &s3.BucketOwnershipControlsArgs{
		Bucket: b.ID(),
		Rule:   &s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")},
	}, pulumi.RetainOnDelete(keep)); err != nil {
		return nil, fmt.Errorf("ownership controls: %w", err)
	}
	pab, err := s3.NewBucketPublicAccessBlock(ctx, sp.logical, &s3.BucketPublicAccessBlockArgs{
		Bucket:                b.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}, pulumi.RetainOnDelete(keep))
	if err != nil {
		return nil, fmt.Errorf("public access block: %w", err)
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, sp.logical, &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: b.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
		}},
	}, pulumi.RetainOnDelete(keep)); err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}
	// The policy is applied after the public access block so S3 never sees
	// a bucket policy on an unguarded bucket.
	if _, err := s3.NewBucketPolicy(ctx, sp.logical, &s3.BucketPolicyArgs{
		Bucket: b.ID(),
		Policy: b.Arn.ApplyT(tlsOnlyPolicy).(pulumi.StringOutput),
	}, pulumi.DependsOn([]pulumi.Resource{pab}), pulumi.RetainOnDelete(keep)); err != nil {
		return nil, fmt.Errorf("tls-only policy: %w", err)
	}
	rules := s3.BucketLifecycleConfigurationV2RuleArray{&s3.BucketLifecycleConfigurationV2RuleArgs{
		Id:                             pulumi.String("abort-incomplete-uploads"),
		Status:                         pulumi.String("Enabled"),
		Filter:                         &s3.BucketLifecycleConfigurationV2RuleFilterArgs{},
		AbortIncompleteMultipartUpload: &s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{DaysAfterInitiation: pulumi.Int(1)},
	}}
	if sp.expireDays > 0 {
		rules = append(rules, &s3.BucketLifecycleConfigurationV2RuleArgs{
			Id:         pulumi.String("expire"),
			Status:     pulumi.String("Enabled"),
			Filter:     &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String(sp.expirePrefix)},
			Expiration: &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(sp.expireDays)},
		})
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, sp.logical, &s3.BucketLifecycleConfigurationV2Args{
		Bucket: b.ID(),
		Rules:  rules,
	}, pulumi.RetainOnDelete(keep)); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	return b, nil
}

// tlsOnlyPolicy denies every request to the bucket that does not use TLS.
func tlsOnlyPolicy(bucketARN string) (string, error) {
	doc := policyDocument{Statement: []statement{{
		Sid:       "DenyInsecureTransport",
		Effect:    "Deny",
		Principal: "*",
		Action:    []string{"s3:*"},
		Resource:  []string{bucketARN, bucketARN + "/*"},
		Condition: map[string]map[string]any{"Bool": {"aws:SecureTransport": "false"}},
	}}}
	return doc.JSON()
}

// policyDocument is an IAM or resource policy.
type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal any                       `json:"Principal,omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// JSON renders the document with the current policy language version.
func (d policyDocument) JSON() (string, error) {
	d.Version = "2012-10-17"
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("render policy: %w", err)
	}
	return string(b), nil
}
