// Package awstest lets tests run against an AWS API emulator (moto's server,
// started by scripts/test-aws.sh) and create there the resources the stack
// would create on AWS, from the same names and settings in awsres.
//
// A test calls Endpoint first: without FACECLOUD_TEST_AWS_ENDPOINT it skips,
// unless FACECLOUD_REQUIRE_AWS=1 (set by scripts/test-aws.sh and so in CI),
// in which case the skip becomes a failure: no AWS-backed test may be
// silently left out there.
package awstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/internal/testenv"
)

// Environment of AWS-backed tests.
const (
	// EnvEndpoint is the emulator's URL, e.g. http://127.0.0.1:5000.
	EnvEndpoint = "FACECLOUD_TEST_AWS_ENDPOINT"
	// EnvRequire=1 turns a skip for want of an endpoint into a failure.
	EnvRequire = "FACECLOUD_REQUIRE_AWS"
	// Region is the region tests use; moto accepts any.
	Region = "us-east-1"
	// AccessKey and SecretKey are dummy credentials; moto checks none.
	AccessKey = "testing"
	SecretKey = "testing"
)

// Endpoint returns the emulator's URL, or skips the test (fails it when
// FACECLOUD_REQUIRE_AWS=1) if none is configured.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv(EnvEndpoint)
	if ep == "" {
		testenv.Missing(t, EnvRequire, "AWS-backed test: set %s to a moto server (scripts/test-aws.sh does)", EnvEndpoint)
	}
	return ep
}

// Config returns an aws.Config for the emulator at endpoint with dummy
// credentials.
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		// moto answers 500 now and then when one key is written and read
		// at once (its objects are temp files it closes under a reader);
		// the SDK retries 500s, as it would S3's own.
		RetryMaxAttempts: 8,
	}
}

// Env is the process environment that points the agents' awsconf at the
// emulator with dummy credentials.
func Env(endpoint string) []string {
	return []string{
		"FACECLOUD_AWS_ENDPOINT=" + endpoint,
		"FACECLOUD_AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
	}
}

var seq atomic.Int64

// Names returns resource names unique to this test run, so tests sharing
// one emulator never see each other's queues, buckets or groups.
func Names(t testing.TB) awsres.Names {
	t.Helper()
	prefix := fmt.Sprintf("t%x-%d", time.Now().UnixNano()&0xffffffffff, seq.Add(1))
	n, err := awsres.NewNames(awsres.PresetDefault, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Queues are the URLs of one deployment's queues.
type Queues struct {
	Request, DeadLetter, Reply string
}

// CreateQueues creates the request queue with its dead-letter queue and the
// reply queue, with the attributes awsres gives the stack.
func CreateQueues(ctx context.Context, cfg aws.Config, n awsres.Names, s awsres.QueueSettings) (Queues, error) {
	if err := s.Validate(); err != nil {
		return Queues{}, err
	}
	c := sqs.NewFromConfig(cfg)
	var q Queues
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n.DeadLetterQueue), Attributes: s.DeadLetterQueueAttributes()})
	if err != nil {
		return q, fmt.Errorf("create queue %s: %w", n.DeadLetterQueue, err)
	}
	q.DeadLetter = aws.ToString(dlq.QueueUrl)
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return q, fmt.Errorf("dead-letter queue ARN: %w", err)
	}
	req := s.RequestQueueAttributes()
	req["RedrivePolicy"] = s.RedrivePolicy(attrs.Attributes["QueueArn"])
	rq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n.RequestQueue), Attributes: req})
	if err != nil {
		return q, fmt.Errorf("create queue %s: %w", n.RequestQueue, err)
	}
	q.Request = aws.ToString(rq.QueueUrl)
	rp, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n.ResponseQueue), Attributes: s.ResponseQueueAttributes()})
	if err != nil {
		return q, fmt.Errorf("create queue %s: %w", n.ResponseQueue, err)
	}
	q.Reply = aws.ToString(rp.QueueUrl)
	return q, nil
}

// CreateBucket creates a private bucket with default SSE-S3 encryption, as
// the stack configures its buckets.
func CreateBucket(ctx context.Context, cfg aws.Config, name string) error {
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	_, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(name),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
		}}},
	})
	if err != nil {
		return fmt.Errorf("bucket %s encryption: %w", name, err)
	}
	_, err = c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(name),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true),
			IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("bucket %s public access block: %w", name, err)
	}
	return nil
}

// CreateGroup creates a launch template and an Auto Scaling group of 0..max
// instances from it, tagged as worker instances. The image is any the
// emulator knows; nothing boots.
func CreateGroup(ctx context.Context, cfg aws.Config, name string, max int) error {
	e := ec2.NewFromConfig(cfg)
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil {
		return fmt.Errorf("describe images: %w", err)
	}
	if len(imgs.Images) == 0 {
		return errors.New("the emulator knows no Amazon image to launch")
	}
	lt := name + "-lt"
	_, err = e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(lt),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			ImageId:      imgs.Images[0].ImageId,
			InstanceType: ec2types.InstanceTypeT4gSmall,
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
				HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired,
			},
		},
	})
	if err != nil {
		return fmt.Errorf("create launch template %s: %w", lt, err)
	}
	_, err = autoscaling.NewFromConfig(cfg).CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(lt), Version: aws.String("$Latest")},
		MinSize:              aws.Int32(0),
		MaxSize:              aws.Int32(int32(max)),
		DesiredCapacity:      aws.Int32(0),
		AvailabilityZones:    []string{Region + "a"},
		// Workers leave by retiring; the group must not pick busy ones.
		NewInstancesProtectedFromScaleIn: aws.Bool(awsres.ProtectFromScaleIn),
		Tags: []astypes.Tag{{
			Key: aws.String(awsres.WorkerRoleTag), Value: aws.String("worker"), PropagateAtLaunch: aws.Bool(true),
		}},
	})
	if err != nil {
		return fmt.Errorf("create group %s: %w", name, err)
	}
	return nil
}

// Must fails t when err is not nil; for the Create functions in tests.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(firstLine(err.Error()))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
