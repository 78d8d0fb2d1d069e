package sqsqueue

import (
	"context"
	"net/url"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

var awsHost = regexp.MustCompile(`^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// Open returns the queue at queueURL on a client made from cfg. A queue URL
// says where the queue lives, so it fills in what cfg leaves open: the region
// of an AWS URL (sqs.REGION.amazonaws.com), or, for any other host, the
// endpoint itself (a local emulator such as moto).
func Open(ctx context.Context, cfg aws.Config, queueURL string) (*Queue, error) {
	if err := ValidURL(queueURL); err != nil {
		return nil, err
	}
	u, _ := url.Parse(queueURL)
	return New(ctx, newClient(cfg, u), queueURL)
}

// newClient makes an SQS client from cfg for queues at u's host.
func newClient(cfg aws.Config, u *url.URL) *sqs.Client {
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if m := awsHost.FindStringSubmatch(u.Hostname()); m != nil {
			if o.Region == "" {
				o.Region = m[1]
			}
			return
		}
		if o.BaseEndpoint == nil {
			o.BaseEndpoint = aws.String(u.Scheme + "://" + u.Host)
		}
	})
}
