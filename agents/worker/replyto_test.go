package worker

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

// hostQueues opens the reply family of the queue file at path with two web
// hosts' queues: one live (host, at hostAddr) and one already removed (at
// goneAddr). All close at the end of the test.
func hostQueues(t *testing.T, path string) (fam *sqlitequeue.Family, host platform.Queue, hostAddr, goneAddr string) {
	t.Helper()
	ctx := context.Background()
	fam, err := sqlitequeue.OpenFamily(ctx, &url.URL{Scheme: "sqlite", Path: filepath.ToSlash(path), RawQuery: "name=reply-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fam.Close() })
	host, hostAddr, err = fam.Create(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	gone, goneAddr, err := fam.Create(ctx, "web-2")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	if err := fam.Remove(ctx, goneAddr); err != nil {
		t.Fatal(err)
	}
	return fam, host, hostAddr, goneAddr
}

// TestReplyTo: a request's reply goes to the web host queue it names when
// that queue is in the worker's reply family; a forged address outside the
// family gets its reply on the shared queue instead; a removed host queue
// leaves the result in the store and the request answered, not retried.
func TestReplyTo(t *testing.T) {
	ctx := context.Background()
	fam, host, hostAddr, goneAddr := hostQueues(t, filepath.Join(t.TempDir(), "queue.db"))

	r := &rig{req: newMemQueue(), rep: newMemQueue(), in: newMemStore(), out: newMemStore(), rec: &fakeRecognizer{}, ret: &fakeRetirer{}}
	var err error
	r.w, err = New(testConfig(), Deps{Requests: r.req, Replies: r.rep, Input: r.in, Output: r.out, Recognizer: r.rec, ReplyFamily: fam})
	if err != nil {
		t.Fatal(err)
	}
	toHost := r.submit(t, "a", "face:Ana", func(q *job.Request) { *q = q.WithReplyTo(hostAddr) })
	forged := r.submit(t, "b", "face:Bo", func(q *job.Request) { *q = q.WithReplyTo("https://sqs.us-east-1.amazonaws.com/999999999999/elsewhere") })
	toGone := r.submit(t, "c", "face:Cy", func(q *job.Request) { *q = q.WithReplyTo(goneAddr) })
	plain := r.submit(t, "d", "face:Dee", nil)
	r.runUntil(t, func() bool { return r.req.live() == 0 })

	msgs, err := host.Receive(ctx, 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("host queue got %d replies, want 1", len(msgs))
	}
	var rep job.Reply
	if err := job.Decode(msgs[0].Body, &rep); err != nil || rep.ID != toHost.ID {
		t.Fatalf("host queue reply %s (%v), want the reply to %s", msgs[0].Body, err, toHost.ID)
	}
	shared := map[string]bool{}
	for _, rep := range r.replies(t) {
		shared[rep.ID] = true
	}
	if len(shared) != 2 || !shared[forged.ID] || !shared[plain.ID] {
		t.Fatalf("shared queue replies %v, want exactly the forged one (%s) and the plain one (%s)", shared, forged.ID, plain.ID)
	}
	for _, q := range []job.Request{toHost, forged, toGone, plain} {
		if res := r.result(t, q.ID); res.Status != job.StatusDone {
			t.Errorf("result of %s: %+v", q.Name, res)
		}
	}
	if st := r.w.Stats(); st.Done != 4 || st.Retried != 0 {
		t.Errorf("stats %+v, want 4 done and nothing retried", st)
	}
}

// TestReplyForwarded: with the request queue in the same file as the
// reply queues, the reply and the request's deletion are one step
// (platform.Forwarder): each reply arrives where it should and every
// request is gone, including the one whose host queue was removed.
func TestReplyForwarded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	opts := sqlitequeue.Options{Visibility: time.Second, MaxReceives: 3, MaxBytes: 1024}
	requests, err := sqlitequeue.Open(path, "requests", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer requests.Close()
	shared, err := sqlitequeue.Open(path, "replies", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	fam, host, hostAddr, goneAddr := hostQueues(t, path)

	in, out := newMemStore(), newMemStore()
	w, err := New(testConfig(), Deps{Requests: requests, Replies: shared, Input: in, Output: out, Recognizer: &fakeRecognizer{}, ReplyFamily: fam})
	if err != nil {
		t.Fatal(err)
	}
	submit := func(name, replyTo string) string { return queueRequest(t, in, requests, name, replyTo) }
	toHost, toGone, plain := submit("Ana", hostAddr), submit("Cy", goneAddr), submit("Dee", "")

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	waitFor(t, func() bool { st := w.Stats(); return st.Done+st.Failed+st.Retried >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}

	for q, want := range map[platform.Queue]string{host: toHost, shared: plain} {
		msgs, err := q.Receive(ctx, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var rep job.Reply
		if len(msgs) != 1 || job.Decode(msgs[0].Body, &rep) != nil || rep.ID != want {
			t.Fatalf("%d replies (%v), want one to %s", len(msgs), msgs, want)
		}
	}
	if d, err := requests.Depth(ctx); err != nil || d != (platform.Depth{}) {
		t.Fatalf("request queue after the run: %+v, %v; want empty (every request deleted)", d, err)
	}
	if _, err := out.Get(ctx, job.ResultKey(toGone)); err != nil {
		t.Errorf("result of the request whose host is gone: %v", err)
	}
	if st := w.Stats(); st.Done != 3 || st.Retried != 0 {
		t.Errorf("stats %+v, want 3 done and nothing retried", st)
	}
}

// queueRequest stores the image of one face named name in in and queues a
// request for it on requests (replying to replyTo, when set), as the web
// agent does; it returns the request's id.
func queueRequest(t *testing.T, in *memStore, requests platform.Queue, name, replyTo string) string {
	t.Helper()
	ctx := context.Background()
	req := job.NewRequest(job.NewID(), name, false, time.Now())
	if replyTo != "" {
		req = req.WithReplyTo(replyTo)
	}
	if err := in.Put(ctx, req.Input, []byte("face:"+name), ""); err != nil {
		t.Fatal(err)
	}
	b, err := job.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := requests.Send(ctx, b); err != nil {
		t.Fatal(err)
	}
	return req.ID
}
