package main

import (
	"fmt"
	"time"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sqs"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
)

// queues are the request queue (web → workers), its dead-letter queue and
// the response queue (workers → web), all set up from awsres so the agents'
// own tests create identical copies.
type queues struct {
	requests, deadLetters, replies *sqs.Queue
}

func secs(d time.Duration) pulumi.Int { return pulumi.Int(int(d / time.Second)) }

func newQueues(ctx *pulumi.Context, c Config, names awsres.Names) (*queues, error) {
	s := c.Queue
	q := &queues{}
	var err error
	q.deadLetters, err = sqs.NewQueue(ctx, "requests-dlq", &sqs.QueueArgs{
		Name:                    pulumi.String(names.DeadLetterQueue),
		MessageRetentionSeconds: secs(14 * 24 * time.Hour),
		SqsManagedSseEnabled:    pulumi.Bool(true),
		Tags:                    c.tags(),
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter queue: %w", err)
	}
	// The request and reply queues share the configured queue settings.
	workQueue := func(name string) *sqs.QueueArgs {
		return &sqs.QueueArgs{
			Name:                     pulumi.String(name),
			VisibilityTimeoutSeconds: secs(s.VisibilityTimeout),
			ReceiveWaitTimeSeconds:   secs(s.ReceiveWait),
			MessageRetentionSeconds:  secs(s.Retention),
			MaxMessageSize:           pulumi.Int(s.MaxMessageBytes),
			SqsManagedSseEnabled:     pulumi.Bool(true),
			Tags:                     c.tags(),
		}
	}
	// A message whose worker died mid-job comes back after the visibility
	// timeout; after MaxReceives such returns it goes to the DLQ instead of
	// crashing workers forever.
	requests := workQueue(names.RequestQueue)
	requests.RedrivePolicy = q.deadLetters.Arn.ApplyT(func(arn string) string {
		return s.RedrivePolicy(arn)
	}).(pulumi.StringOutput)
	q.requests, err = sqs.NewQueue(ctx, "requests", requests)
	if err != nil {
		return nil, fmt.Errorf("request queue: %w", err)
	}
	if _, err := sqs.NewRedriveAllowPolicy(ctx, "requests-dlq", &sqs.RedriveAllowPolicyArgs{
		QueueUrl: q.deadLetters.Url,
		RedriveAllowPolicy: q.requests.Arn.ApplyT(func(arn string) string {
			return fmt.Sprintf(`{"redrivePermission":"byQueue","sourceQueueArns":[%q]}`, arn)
		}).(pulumi.StringOutput),
	}); err != nil {
		return nil, fmt.Errorf("dead-letter queue redrive allow policy: %w", err)
	}
	q.replies, err = sqs.NewQueue(ctx, "replies", workQueue(names.ResponseQueue))
	if err != nil {
		return nil, fmt.Errorf("response queue: %w", err)
	}
	return q, nil
}
