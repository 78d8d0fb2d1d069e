// Package sqsqueue is the platform.Queue adapter for Amazon SQS (standard
// queues). SQS itself keeps the guarantees the port promises: visibility
// timeouts, receive counts and redrive to a dead-letter queue by the queue's
// RedrivePolicy. The adapter adds long polling within the port's wait, the
// queue's size limit checked before sending, and SQS errors mapped to the
// port's sentinel errors.
package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/facecloud/facecloud/agents/platform"
)

// API is the part of the SQS client the adapter calls, so its logic can be
// tested without a server; *sqs.Client satisfies it.
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// SQS's own limits.
const (
	// MaxBatch is the most messages one ReceiveMessage call returns.
	MaxBatch = 10
	// MaxPoll is the longest long poll SQS allows.
	MaxPoll = 20 * time.Second
	// MaxVisibility is the longest visibility timeout SQS allows.
	MaxVisibility = 12 * time.Hour
)

// Queue is one SQS queue.
type Queue struct {
	api      API
	url      string
	maxBytes int
}

var (
	_ platform.Queue        = (*Queue)(nil)
	_ platform.BatchDeleter = (*Queue)(nil)
)

// New returns the queue at queueURL. It reads the queue's MaximumMessageSize,
// which also proves the queue exists and is reachable.
func New(ctx context.Context, api API, queueURL string) (*Queue, error) {
	if err := ValidURL(queueURL); err != nil {
		return nil, err
	}
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameMaximumMessageSize},
	})
	if err != nil {
		return nil, fmt.Errorf("sqs queue %s: %w", queueURL, mapError(err))
	}
	maxBytes, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameMaximumMessageSize)])
	if err != nil || maxBytes <= 0 {
		return nil, fmt.Errorf("sqs queue %s: MaximumMessageSize %q is not a positive number", queueURL, out.Attributes[string(types.QueueAttributeNameMaximumMessageSize)])
	}
	return &Queue{api: api, url: queueURL, maxBytes: maxBytes}, nil
}

// ValidURL checks that raw looks like an SQS queue URL:
// http(s)://HOST/ACCOUNT/NAME.
func ValidURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("sqs queue URL %q: %w", raw, err)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("sqs queue URL %q must look like https://sqs.REGION.amazonaws.com/ACCOUNT/NAME", raw)
	}
	return nil
}

// URL is the queue's URL.
func (q *Queue) URL() string { return q.url }

// MaxBytes is the largest body Send accepts: the queue's MaximumMessageSize.
func (q *Queue) MaxBytes() int { return q.maxBytes }

// Send enqueues body. SQS carries text only, so a body that is not UTF-8 or
// holds characters SQS rejects is refused here with a clear error.
func (q *Queue) Send(ctx context.Context, body []byte) error {
	if len(body) > q.maxBytes {
		return fmt.Errorf("sqs send: body is %d bytes, queue allows %d: %w", len(body), q.maxBytes, platform.ErrTooLarge)
	}
	if err := validBody(body); err != nil {
		return fmt.Errorf("sqs send: %w", err)
	}
	_, err := q.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(q.url),
		MessageBody: aws.String(string(body)),
	})
	if err != nil {
		return fmt.Errorf("sqs send: %w", mapError(err))
	}
	return nil
}

// validBody checks the characters SQS allows in a message body:
// #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validBody(body []byte) error {
	if len(body) == 0 {
		return errors.New("body is empty; SQS needs at least one character")
	}
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Errorf("body is not UTF-8 at byte %d; SQS carries text only", i)
		}
		ok := r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000
		if !ok {
			return fmt.Errorf("body has character %U at byte %d, which SQS does not allow", r, i)
		}
		i += size
	}
	return nil
}

// Receive returns up to n messages (1..10, SQS's batch limit),
// long-polling until the first arrives or wait has passed. SQS counts waits
// in whole seconds, so a wait is rounded up to the next second.
func (q *Queue) Receive(ctx context.Context, n int, wait time.Duration) ([]platform.Message, error) {
	if n < 1 || n > MaxBatch {
		return nil, fmt.Errorf("sqs receive: max %d out of range 1..%d", n, MaxBatch)
	}
	if wait < 0 {
		return nil, fmt.Errorf("sqs receive: wait %s must not be negative", wait)
	}
	batch := int32(n)
	deadline := time.Now().Add(wait)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		poll := time.Until(deadline)
		secs := int32(math.Ceil(min(max(poll, 0), MaxPoll).Seconds()))
		out, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.url),
			MaxNumberOfMessages:         batch,
			WaitTimeSeconds:             secs,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if err != nil {
			return nil, fmt.Errorf("sqs receive: %w", mapError(err))
		}
		if len(out.Messages) > 0 || time.Until(deadline) <= 0 {
			return toMessages(out.Messages), nil
		}
	}
}

func toMessages(in []types.Message) []platform.Message {
	msgs := make([]platform.Message, 0, len(in))
	for _, m := range in {
		n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		if err != nil || n < 1 {
			// SQS always sends it when asked; a delivery is at least the first.
			n = 1
		}
		msgs = append(msgs, platform.Message{
			ID:           aws.ToString(m.MessageId),
			Body:         []byte(aws.ToString(m.Body)),
			Receipt:      aws.ToString(m.ReceiptHandle),
			ReceiveCount: n,
		})
	}
	return msgs
}

// Delete removes the delivered message. SQS accepts an already deleted
// message's receipt; a receipt that is not one at all wraps ErrNotFound.
func (q *Queue) Delete(ctx context.Context, receipt string) error {
	if receipt == "" {
		return fmt.Errorf("sqs delete: empty receipt: %w", platform.ErrNotFound)
	}
	_, err := q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receipt)})
	if err != nil {
		return fmt.Errorf("sqs delete: %w", mapError(err))
	}
	return nil
}

// DeleteBatch removes up to MaxBatch delivered messages in one
// DeleteMessageBatch call. Entries SQS refuses come back as one error each
// (ErrNotFound for a receipt that is not one), joined.
func (q *Queue) DeleteBatch(ctx context.Context, receipts []string) error {
	if len(receipts) > MaxBatch {
		return fmt.Errorf("sqs delete batch: %d receipts, at most %d", len(receipts), MaxBatch)
	}
	var errs []error
	entries := make([]types.DeleteMessageBatchRequestEntry, 0, len(receipts))
	for i, r := range receipts {
		if r == "" {
			errs = append(errs, fmt.Errorf("sqs delete: empty receipt: %w", platform.ErrNotFound))
			continue
		}
		entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)})
	}
	if len(entries) == 0 {
		return errors.Join(errs...)
	}
	out, err := q.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
	if err != nil {
		return fmt.Errorf("sqs delete batch: %w", mapError(err))
	}
	for _, f := range out.Failed {
		err := fmt.Errorf("sqs delete batch entry %s: %s: %s", aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
		code := aws.ToString(f.Code)
		if strings.HasSuffix(code, "ReceiptHandleIsInvalid") || strings.HasSuffix(code, "MessageNotInflight") ||
			(strings.HasSuffix(code, "InvalidParameterValue") && strings.Contains(aws.ToString(f.Message), "ReceiptHandle")) {
			err = fmt.Errorf("%w: %w", platform.ErrNotFound, err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Extend sets the delivery's visibility timeout to d from now (whole seconds,
// rounded up; at most 12 hours).
func (q *Queue) Extend(ctx context.Context, receipt string, d time.Duration) error {
	if d < 0 || d > MaxVisibility {
		return fmt.Errorf("sqs extend: visibility %s out of range 0..12h", d)
	}
	if receipt == "" {
		return fmt.Errorf("sqs extend: empty receipt: %w", platform.ErrNotFound)
	}
	_, err := q.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.url),
		ReceiptHandle:     aws.String(receipt),
		VisibilityTimeout: int32(math.Ceil(d.Seconds())),
	})
	if err != nil {
		return fmt.Errorf("sqs extend: %w", mapError(err))
	}
	return nil
}

// Depth reports SQS's approximate visible and in-flight counts.
func (q *Queue) Depth(ctx context.Context) (platform.Depth, error) {
	out, err := q.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return platform.Depth{}, fmt.Errorf("sqs depth: %w", mapError(err))
	}
	var d platform.Depth
	for name, dst := range map[types.QueueAttributeName]*int{
		types.QueueAttributeNameApproximateNumberOfMessages:           &d.Visible,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible: &d.InFlight,
	} {
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			return platform.Depth{}, fmt.Errorf("sqs depth: attribute %s = %q is not a number", name, out.Attributes[string(name)])
		}
		*dst = n
	}
	return d, nil
}

// Close does nothing: the SDK client holds no per-queue resources.
func (q *Queue) Close() error { return nil }

// mapError wraps SQS's "no such receipt/message/queue" errors in
// platform.ErrNotFound and leaves the rest as they are.
func mapError(err error) error {
	var rh *types.ReceiptHandleIsInvalid
	var nf *types.MessageNotInflight
	var qd *types.QueueDoesNotExist
	if errors.As(err, &rh) || errors.As(err, &nf) || errors.As(err, &qd) {
		return fmt.Errorf("%w: %w", platform.ErrNotFound, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch {
		case strings.HasSuffix(code, "ReceiptHandleIsInvalid"), strings.HasSuffix(code, "MessageNotInflight"),
			strings.HasSuffix(code, "NonExistentQueue"), strings.HasSuffix(code, "QueueDoesNotExist"):
			return fmt.Errorf("%w: %w", platform.ErrNotFound, err)
		case strings.HasSuffix(code, "InvalidParameterValue") && strings.Contains(api.ErrorMessage(), "ReceiptHandle"):
			// SQS's answer to a receipt whose message was deleted or has
			// been delivered again.
			return fmt.Errorf("%w: %w", platform.ErrNotFound, err)
		}
	}
	return err
}
