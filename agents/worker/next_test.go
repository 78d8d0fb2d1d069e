package worker

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

// countingQueue is the local request queue, counting the deliveries made
// by Receive and those taken along with a reply (ForwardReceive).
type countingQueue struct {
	*sqlitequeue.Queue
	received, takenAlong atomic.Int64
}

func (q *countingQueue) Receive(ctx context.Context, max int, wait time.Duration) ([]platform.Message, error) {
	msgs, err := q.Queue.Receive(ctx, max, wait)
	q.received.Add(int64(len(msgs)))
	return msgs, err
}

func (q *countingQueue) ForwardReceive(ctx context.Context, to platform.Queue, body []byte, receipt string, max int) ([]platform.Message, error, error) {
	next, sendErr, delErr := q.Queue.ForwardReceive(ctx, to, body, receipt, max)
	q.takenAlong.Add(int64(len(next)))
	return next, sendErr, delErr
}

// localRig is a worker of one slot on a local queue file, and its requests
// queued before it starts.
type localRig struct {
	requests *countingQueue
	replies  platform.Queue
	rec      *fakeRecognizer
	w        *Worker
	ids      []string
}

func newLocalRig(t *testing.T, names ...string) *localRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queue.db")
	opts := sqlitequeue.Options{Visibility: 5 * time.Second, MaxReceives: 3, MaxBytes: 1024}
	q, err := sqlitequeue.Open(path, "requests", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	replies, err := sqlitequeue.Open(path, "replies", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replies.Close() })
	r := &localRig{requests: &countingQueue{Queue: q}, replies: replies, rec: &fakeRecognizer{}}
	in := newMemStore()
	cfg := testConfig()
	cfg.Concurrency = 1
	if r.w, err = New(cfg, Deps{Requests: r.requests, Replies: replies, Input: in, Output: newMemStore(), Recognizer: r.rec}); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		r.ids = append(r.ids, queueRequest(t, in, q, name, ""))
	}
	return r
}

// TestNextRequestTakenWithTheReply: a busy worker on the local queue
// receives once; every later request of the backlog comes with the reply
// to the one before, and every request is answered and deleted.
func TestNextRequestTakenWithTheReply(t *testing.T) {
	r := newLocalRig(t, "Ana", "Bo", "Cy", "Dee", "Eve")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	waitFor(t, func() bool { return r.w.Stats().Done >= 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got, along := r.requests.received.Load(), r.requests.takenAlong.Load(); got != 1 || along != 4 {
		t.Errorf("requests received %d and taken with a reply %d, want 1 and 4", got, along)
	}
	msgs, err := r.replies.Receive(context.Background(), 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{}
	for _, m := range msgs {
		var rep job.Reply
		if err := job.Decode(m.Body, &rep); err != nil {
			t.Fatal(err)
		}
		answered[rep.ID] = true
	}
	for _, id := range r.ids {
		if !answered[id] {
			t.Errorf("request %s has no reply (replies: %d)", id, len(msgs))
		}
	}
	if d, err := r.requests.Depth(context.Background()); err != nil || d != (platform.Depth{}) {
		t.Errorf("request queue after the run: %+v, %v; want empty", d, err)
	}
}

// TestStoppedWorkerTakesNothingWithItsReply: a worker told to stop while
// a job runs finishes it, and its reply takes no next request: that one
// stays queued, undelivered, for another worker.
func TestStoppedWorkerTakesNothingWithItsReply(t *testing.T) {
	r := newLocalRig(t, "Ana", "Bo")
	r.rec.block = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	waitFor(t, func() bool { calls, _ := r.rec.stats(); return calls == 1 })
	cancel() // SIGTERM while Ana's job runs
	close(r.rec.block)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if st := r.w.Stats(); st.Done != 1 {
		t.Errorf("stats %+v, want the job in flight done", st)
	}
	if along := r.requests.takenAlong.Load(); along != 0 {
		t.Errorf("a stopping worker took %d requests with its reply, want none", along)
	}
	msgs, err := r.requests.Queue.Receive(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].ReceiveCount != 1 {
		t.Fatalf("left in the queue: %+v, want Bo's request on its first delivery", msgs)
	}
}
