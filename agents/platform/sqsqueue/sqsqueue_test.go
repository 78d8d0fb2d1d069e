package sqsqueue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/facecloud/facecloud/agents/platform"
)

// fakeSQS stands in for the SQS service in tests of the adapter's own logic
// (size checks, long-poll loop, error mapping); the behaviour of SQS itself
// is tested against moto in moto_test.go.
type fakeSQS struct {
	mu       sync.Mutex
	maxSize  string
	sent     []string
	receives []int32 // WaitTimeSeconds of each ReceiveMessage call
	batches  []int   // entries of each DeleteMessageBatch call
	maxes    []int32 // MaxNumberOfMessages of each ReceiveMessage call
	messages []types.Message
	err      error
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, aws.ToString(in.MessageBody))
	return &sqs.SendMessageOutput{}, f.err
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	f.receives = append(f.receives, in.WaitTimeSeconds)
	f.maxes = append(f.maxes, in.MaxNumberOfMessages)
	msgs := f.messages
	f.messages = nil
	f.mu.Unlock()
	if len(msgs) == 0 && in.WaitTimeSeconds > 0 {
		// Long poll: wait a short while (not the whole seconds) or until cancelled.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return &sqs.ReceiveMessageOutput{Messages: msgs}, f.err
}

func (f *fakeSQS) DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	return &sqs.DeleteMessageOutput{}, f.err
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, len(in.Entries))
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		if aws.ToString(e.ReceiptHandle) == "bad" {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("no such receipt"), SenderFault: true})
			continue
		}
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, f.err
}

func (f *fakeSQS) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, f.err
}

func (f *fakeSQS) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
		"MaximumMessageSize":                    f.maxSize,
		"ApproximateNumberOfMessages":           "3",
		"ApproximateNumberOfMessagesNotVisible": "2",
	}}, nil
}

const testURL = "https://sqs.us-east-1.amazonaws.com/123456789012/q"

func newFake(t *testing.T) (*fakeSQS, *Queue) {
	t.Helper()
	f := &fakeSQS{maxSize: "1024"}
	q, err := New(context.Background(), f, testURL)
	if err != nil {
		t.Fatal(err)
	}
	return f, q
}

func TestSendChecksBody(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantErr string
		tooBig  bool
	}{
		"json":            {body: `{"v":1}`},
		"exactly limit":   {body: strings.Repeat("a", 1024)},
		"over limit":      {body: strings.Repeat("a", 1025), tooBig: true, wantErr: "1025 bytes, queue allows 1024"},
		"empty":           {body: "", wantErr: "empty"},
		"not utf8":        {body: "a\xffb", wantErr: "not UTF-8 at byte 1"},
		"control char":    {body: "a\x00b", wantErr: "U+0000"},
		"tab newline ok":  {body: "a\tb\r\nc"},
		"non-ascii ok":    {body: "Zoë 😀"},
		"noncharacter":    {body: "a\uFFFEb", wantErr: "U+FFFE"},
		"multibyte limit": {body: strings.Repeat("é", 513), tooBig: true, wantErr: "1026 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, q := newFake(t)
			err := q.Send(context.Background(), []byte(tc.body))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if len(f.sent) != 1 || f.sent[0] != tc.body {
					t.Fatalf("sent %q, want %q", f.sent, tc.body)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Send error %v, want one containing %q", err, tc.wantErr)
			}
			if errors.Is(err, platform.ErrTooLarge) != tc.tooBig {
				t.Fatalf("errors.Is(ErrTooLarge) = %v, want %v", !tc.tooBig, tc.tooBig)
			}
			if len(f.sent) != 0 {
				t.Fatalf("refused body was sent: %q", f.sent)
			}
		})
	}
}

func TestReceivePollsInWholeSecondsUntilDeadline(t *testing.T) {
	tests := map[string]struct {
		wait      time.Duration
		wantFirst int32
	}{
		"zero is a short poll":    {wait: 0, wantFirst: 0},
		"part second rounds up":   {wait: 300 * time.Millisecond, wantFirst: 1},
		"capped at SQS's maximum": {wait: 45 * time.Second, wantFirst: 20},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, q := newFake(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			msgs, err := q.Receive(ctx, 5, tc.wait)
			if tc.wait > time.Second {
				// The fake never delivers; the loop keeps polling until ctx ends.
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Receive: %v, want the context's deadline", err)
				}
			} else if err != nil || len(msgs) != 0 {
				t.Fatalf("Receive = %v, %v; want nothing, no error", msgs, err)
			}
			if len(f.receives) == 0 || f.receives[0] != tc.wantFirst {
				t.Fatalf("WaitTimeSeconds of calls %v, want first %d", f.receives, tc.wantFirst)
			}
		})
	}
}

func TestReceiveConvertsMessages(t *testing.T) {
	f, q := newFake(t)
	f.messages = []types.Message{
		{MessageId: aws.String("m1"), Body: aws.String("hello"), ReceiptHandle: aws.String("r1"), Attributes: map[string]string{"ApproximateReceiveCount": "3"}},
		{MessageId: aws.String("m2"), Body: aws.String("x"), ReceiptHandle: aws.String("r2")},
	}
	msgs, err := q.Receive(context.Background(), 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []platform.Message{{ID: "m1", Body: []byte("hello"), Receipt: "r1", ReceiveCount: 3}, {ID: "m2", Body: []byte("x"), Receipt: "r2", ReceiveCount: 1}}
	if len(msgs) != 2 || msgs[0].ID != want[0].ID || string(msgs[0].Body) != "hello" || msgs[0].ReceiveCount != 3 || msgs[1].ReceiveCount != 1 || msgs[1].Receipt != "r2" {
		t.Fatalf("got %+v, want %+v", msgs, want)
	}
	for _, n := range []int{0, 11} {
		if _, err := q.Receive(context.Background(), n, 0); err == nil {
			t.Fatalf("Receive with max %d succeeded", n)
		}
	}
	if _, err := q.Receive(context.Background(), 1, -time.Second); err == nil {
		t.Fatal("Receive with a negative wait succeeded")
	}
}

func TestErrorMapping(t *testing.T) {
	tests := map[string]struct {
		err      error
		notFound bool
	}{
		"invalid receipt":   {err: &types.ReceiptHandleIsInvalid{Message: aws.String("bad")}, notFound: true},
		"not in flight":     {err: &types.MessageNotInflight{}, notFound: true},
		"no queue":          {err: &types.QueueDoesNotExist{}, notFound: true},
		"stale receipt":     {err: &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Value x for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."}, notFound: true},
		"other bad param":   {err: &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "VisibilityTimeout too big"}},
		"throttled":         {err: &smithy.GenericAPIError{Code: "RequestThrottled"}},
		"connection failed": {err: errors.New("dial tcp: connection refused")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, q := newFake(t)
			f.err = tc.err
			err := q.Extend(context.Background(), "r", time.Second)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Extend error %v does not wrap %v", err, tc.err)
			}
			if errors.Is(err, platform.ErrNotFound) != tc.notFound {
				t.Fatalf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tc.notFound, tc.notFound)
			}
		})
	}
}

func TestDepthAndURLs(t *testing.T) {
	_, q := newFake(t)
	d, err := q.Depth(context.Background())
	if err != nil || d != (platform.Depth{Visible: 3, InFlight: 2}) {
		t.Fatalf("Depth = %+v, %v", d, err)
	}
	if err := q.Extend(context.Background(), "r", 13*time.Hour); err == nil || !strings.Contains(err.Error(), "0..12h") {
		t.Fatalf("Extend beyond 12h: %v", err)
	}
	for raw, ok := range map[string]bool{
		testURL:                                true,
		"http://127.0.0.1:5000/123456789012/q": true,
		"sqs://q":                              false,
		"https://host/onlyname":                false,
		"https://host/a/b/c":                   false,
	} {
		if err := ValidURL(raw); (err == nil) != ok {
			t.Errorf("ValidURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
	if _, err := New(context.Background(), &fakeSQS{maxSize: "lots"}, testURL); err == nil {
		t.Fatal("New accepted a queue whose MaximumMessageSize is not a number")
	}
}

// TestReceiveAsksSQSForAtMostTen: SQS refuses MaxNumberOfMessages above 10,
// so the adapter refuses such a Receive itself, before calling SQS, with an
// error that says the range (callers such as the worker clamp to
// platform.MaxBatch).
func TestReceiveAsksSQSForAtMostTen(t *testing.T) {
	f, q := newFake(t)
	if _, err := q.Receive(context.Background(), 10, 0); err != nil {
		t.Fatal(err)
	}
	_, err := q.Receive(context.Background(), 16, 0)
	if err == nil || !strings.Contains(err.Error(), "out of range 1..10") {
		t.Fatalf("Receive(16) error %v, want the range", err)
	}
	if len(f.maxes) != 1 || f.maxes[0] != 10 {
		t.Fatalf("MaxNumberOfMessages of the calls made: %v, want [10]", f.maxes)
	}
	if MaxBatch != platform.MaxBatch {
		t.Fatalf("MaxBatch %d differs from the port's %d", MaxBatch, platform.MaxBatch)
	}
}

func TestDeleteBatch(t *testing.T) {
	f, q := newFake(t)
	err := platform.DeleteAll(context.Background(), q, []string{"r1", "r2", "bad", "", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12"})
	if !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("DeleteAll error %v, want the bad and empty receipts as ErrNotFound", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 2 {
		t.Fatalf("DeleteAll error has %d parts, want 2 (bad, empty): %v", n, err)
	}
	if len(f.batches) != 2 || f.batches[0] != 9 || f.batches[1] != 2 {
		t.Fatalf("DeleteMessageBatch entries per call %v, want [9 2] (10 a call, the empty receipt never sent)", f.batches)
	}
	if err := q.DeleteBatch(context.Background(), make([]string, 11)); err == nil {
		t.Fatal("DeleteBatch of 11 receipts succeeded")
	}
}
