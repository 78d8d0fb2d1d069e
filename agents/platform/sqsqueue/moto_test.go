package sqsqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/platform"
)

// motoQueues creates a request queue (with dead-letter queue) in the moto
// server named by FACECLOUD_TEST_AWS_ENDPOINT, with settings s.
func motoQueues(t *testing.T, s awsres.QueueSettings) (req, dlq *Queue) {
	t.Helper()
	ep := awstest.Endpoint(t)
	ctx := context.Background()
	cfg := awstest.Config(ep)
	urls, err := awstest.CreateQueues(ctx, cfg, awstest.Names(t), s)
	awstest.Must(t, err)
	req, err = Open(ctx, cfg, urls.Request)
	awstest.Must(t, err)
	dlq, err = Open(ctx, cfg, urls.DeadLetter)
	awstest.Must(t, err)
	return req, dlq
}

func TestMotoRoundTripAndRedrive(t *testing.T) {
	s := awsres.DefaultQueueSettings
	s.VisibilityTimeout, s.Heartbeat, s.ReceiveWait, s.MaxReceives = 2*time.Second, time.Second, 0, 2
	q, dlq := motoQueues(t, s)
	ctx := context.Background()
	if q.MaxBytes() != s.MaxMessageBytes {
		t.Fatalf("MaxBytes = %d, want the queue's %d", q.MaxBytes(), s.MaxMessageBytes)
	}
	if err := q.Send(ctx, []byte(`{"v":1,"id":"a"}`)); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 10, 2*time.Second)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != `{"v":1,"id":"a"}` || msgs[0].ReceiveCount != 1 {
		t.Fatalf("first Receive = %+v, %v", msgs, err)
	}
	d, err := q.Depth(ctx)
	if err != nil || d != (platform.Depth{InFlight: 1}) {
		t.Fatalf("Depth after receive = %+v, %v; want 1 in flight", d, err)
	}
	// Not deleted: after the visibility timeout it comes back, counted twice.
	msgs, err = q.Receive(ctx, 10, 5*time.Second)
	if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != 2 {
		t.Fatalf("second Receive = %+v, %v", msgs, err)
	}
	// Received MaxReceives times: the next receive moves it to the DLQ.
	time.Sleep(s.VisibilityTimeout + 500*time.Millisecond)
	if msgs, err := q.Receive(ctx, 10, time.Second); err != nil || len(msgs) != 0 {
		t.Fatalf("third Receive = %+v, %v; want it redriven", msgs, err)
	}
	dead, err := dlq.Receive(ctx, 10, 2*time.Second)
	if err != nil || len(dead) != 1 || string(dead[0].Body) != `{"v":1,"id":"a"}` {
		t.Fatalf("dead-letter Receive = %+v, %v", dead, err)
	}
	if err := dlq.Delete(ctx, dead[0].Receipt); err != nil {
		t.Fatal(err)
	}
	if err := dlq.Delete(ctx, dead[0].Receipt); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := dlq.Extend(ctx, dead[0].Receipt, time.Second); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Extend after Delete: %v, want ErrNotFound", err)
	}
}

func TestMotoMissingQueue(t *testing.T) {
	ep := awstest.Endpoint(t)
	_, err := Open(context.Background(), awstest.Config(ep), ep+"/123456789012/no-such-queue")
	if !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Open of a missing queue: %v, want ErrNotFound", err)
	}
}

// TestMotoCancelDuringLongPoll: a Receive long-polling SQS returns
// context.Canceled as soon as its context is cancelled, not after its wait.
func TestMotoCancelDuringLongPoll(t *testing.T) {
	s := awsres.DefaultQueueSettings
	q, _ := motoQueues(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := q.Receive(ctx, 1, 20*time.Second)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	// Liveness guard, not a timing assertion: well under the 20 s wait.
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Receive after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not return after its context was cancelled")
	}
	already, stop := context.WithCancel(context.Background())
	stop()
	if msgs, err := q.Receive(already, 1, time.Second); !errors.Is(err, context.Canceled) || len(msgs) != 0 {
		t.Fatalf("Receive with a done context = %v, %v", msgs, err)
	}
}
