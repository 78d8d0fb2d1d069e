package sqlitequeue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/queuetest"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

var testOptions = sqlitequeue.Options{Visibility: time.Second, MaxReceives: 2, MaxBytes: 1024}

func open(t testing.TB, path, name string, opts sqlitequeue.Options) *sqlitequeue.Queue {
	t.Helper()
	q, err := sqlitequeue.Open(path, name, opts)
	if err != nil {
		t.Fatalf("Open(%s, %s): %v", path, name, err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queuetest.Setup {
		path := filepath.Join(t.TempDir(), "queue.db")
		q := open(t, path, "requests", testOptions)
		dlq, err := q.DeadLetter()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dlq.Close() })
		// A neighbour in the same file must not disturb the queue under test.
		other := open(t, path, "replies", testOptions)
		if err := other.Send(context.Background(), []byte("neighbour")); err != nil {
			t.Fatal(err)
		}
		return queuetest.Setup{
			Queue:       q,
			DeadLetter:  dlq,
			Visibility:  testOptions.Visibility,
			MaxReceives: testOptions.MaxReceives,
			MaxBytes:    testOptions.MaxBytes,
		}
	})
}

// TestTakerConformance: the web host's reply queue takes its replies in
// one step.
func TestTakerConformance(t *testing.T) {
	queuetest.RunTaker(t, func(t *testing.T) queuetest.Setup {
		q := open(t, filepath.Join(t.TempDir(), "queue.db"), "replies", testOptions)
		return queuetest.Setup{Queue: q, Visibility: testOptions.Visibility, MaxReceives: testOptions.MaxReceives, MaxBytes: testOptions.MaxBytes}
	})
}

// TestForwarderConformance: a worker replies to a web host's queue (a
// family member) and deletes the request in one step; a queue of another
// file cannot be reached that way.
func TestForwarderConformance(t *testing.T) {
	queuetest.RunForwarder(t, forwardSetup)
}

// TestForwardReceiverConformance: a worker replies, deletes the request
// and takes its next one in one step.
func TestForwardReceiverConformance(t *testing.T) {
	queuetest.RunForwardReceiver(t, forwardSetup)
}

// forwardSetup is a request queue and a family of reply queues in one
// file, and a queue of another file.
func forwardSetup(t *testing.T) queuetest.ForwardSetup {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "queue.db")
	u := &url.URL{Scheme: "sqlite", Path: filepath.ToSlash(path), RawQuery: "name=reply-"}
	f, err := sqlitequeue.OpenFamily(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	member := func(suffix string) platform.Queue {
		q, _, err := f.Create(ctx, suffix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	removed := member("gone")
	if err := f.Remove(ctx, f.Prefix()+"gone"); err != nil {
		t.Fatal(err)
	}
	return queuetest.ForwardSetup{
		From:       open(t, path, "requests", testOptions),
		To:         member("host"),
		Removed:    removed,
		Elsewhere:  open(t, filepath.Join(dir, "other.db"), "replies", testOptions),
		Visibility: testOptions.Visibility,
		MaxBytes:   testOptions.MaxBytes,
	}
}

// TestPersistsAcrossHandles: a message sent through one handle is received
// through another opened later, as processes do.
func TestPersistsAcrossHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	a, err := sqlitequeue.Open(path, "requests", testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, []byte("survives")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := open(t, path, "requests", testOptions)
	msgs, err := b.Receive(ctx, 1, time.Second)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "survives" {
		t.Fatalf("Receive from a new handle = %v, %v; want the message sent before", msgs, err)
	}
}

// TestOpenNewFileTogether opens a new file from several handles at once,
// round after round, as a web agent and workers started together on a new
// data directory do: every Open succeeds, and the queues work. The first
// connections to a file turn it to WAL mode, and SQLite can fail one of
// two connections doing that at once with SQLITE_BUSY instead of making it
// wait; before Open tried again, a handle was lost so within the first 40
// rounds in each of three runs.
func TestOpenNewFileTogether(t *testing.T) {
	ctx := context.Background()
	const rounds, handles = 200, 8
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "queue.db")
		qs := make([]*sqlitequeue.Queue, handles)
		errs := make([]error, handles)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range handles {
			wg.Go(func() {
				<-start
				qs[i], errs[i] = sqlitequeue.Open(path, fmt.Sprintf("q%d", i%2), testOptions)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: handle %d of %d opening a new file together: %v", round, i+1, handles, err)
			}
		}
		if err := qs[0].Send(ctx, []byte("first")); err != nil {
			t.Fatalf("round %d: Send: %v", round, err)
		}
		if msgs, err := qs[2].Receive(ctx, 1, 0); err != nil || len(msgs) != 1 || string(msgs[0].Body) != "first" {
			t.Fatalf("round %d: Receive through another handle of the queue = %v, %v; want the message sent", round, msgs, err)
		}
		for _, q := range qs {
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.ToSlash(filepath.Join(dir, "queue.db"))
	tests := map[string]struct {
		raw     string
		want    sqlitequeue.Options
		wantErr string
	}{
		"defaults":      {raw: "sqlite://" + abs + "?name=requests", want: sqlitequeue.DefaultOptions},
		"dlq default":   {raw: "sqlite://" + abs + "?name=requests-dlq", want: sqlitequeue.Options{Visibility: 30 * time.Second, MaxReceives: 0, MaxBytes: 1024}},
		"all options":   {raw: "sqlite://" + abs + "?name=r&visibility=2s&max_receives=3&max_bytes=2048&sync=full", want: sqlitequeue.Options{Visibility: 2 * time.Second, MaxReceives: 3, MaxBytes: 2048, FullSync: true}},
		"bad sync":      {raw: "sqlite://" + abs + "?name=r&sync=sometimes", wantErr: `option sync="sometimes": want normal or full`},
		"no name":       {raw: "sqlite://" + abs, wantErr: "missing ?name=QUEUE"},
		"bad name":      {raw: "sqlite://" + abs + "?name=a%20b", wantErr: "want 1..80 characters"},
		"unknown":       {raw: "sqlite://" + abs + "?name=r&colour=red", wantErr: `unknown option "colour"`},
		"short vis":     {raw: "sqlite://" + abs + "?name=r&visibility=10ms", wantErr: "visibility 10ms out of range 1s..12h0m0s"},
		"bad duration":  {raw: "sqlite://" + abs + "?name=r&visibility=soon", wantErr: `option visibility="soon"`},
		"receives":      {raw: "sqlite://" + abs + "?name=r&max_receives=-1", wantErr: "max_receives -1 out of range 0..1000"},
		"bytes":         {raw: "sqlite://" + abs + "?name=r&max_bytes=0", wantErr: "max_bytes 0 out of range 1..262144"},
		"host":          {raw: "sqlite://host/x.db?name=r", wantErr: "want sqlite:///ABSOLUTE/PATH"},
		"no path":       {raw: "sqlite://?name=r", wantErr: "missing the file path"},
		"wrong scheme":  {raw: "file://" + abs + "?name=r", wantErr: "scheme must be sqlite"},
		"path is a dir": {raw: "sqlite://" + filepath.ToSlash(dir) + "?name=r", wantErr: "open queue file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			q, err := sqlitequeue.OpenURL(context.Background(), u)
			if tc.wantErr != "" {
				if err == nil {
					q.Close()
					t.Fatalf("OpenURL(%s) succeeded, want error containing %q", tc.raw, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("OpenURL(%s) error %q, want it to contain %q", tc.raw, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenURL(%s): %v", tc.raw, err)
			}
			defer q.Close()
			if got := q.Options(); got != tc.want {
				t.Fatalf("options = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDeadLetterKeepsMessage: a dead letter can be inspected and moved on;
// the dead-letter queue itself never dead-letters.
func TestDeadLetterKeepsMessage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q := open(t, path, "requests", sqlitequeue.Options{Visibility: time.Second, MaxReceives: 1, MaxBytes: 1024})
	if err := q.Send(ctx, []byte("poison")); err != nil {
		t.Fatal(err)
	}
	m, err := q.Receive(ctx, 1, time.Second)
	if err != nil || len(m) != 1 {
		t.Fatalf("first receive: %v, %v", m, err)
	}
	if err := q.Extend(ctx, m[0].Receipt, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := q.Receive(ctx, 1, 100*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("receive after the limit = %v, %v; want nothing", got, err)
	}
	dlq, err := q.DeadLetter()
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	if d, err := dlq.Depth(ctx); err != nil || d != (platform.Depth{Visible: 1}) {
		t.Fatalf("dead-letter depth = %+v, %v; want 1 visible", d, err)
	}
	for i := 1; i <= 3; i++ {
		got, err := dlq.Receive(ctx, 1, time.Second)
		if err != nil || len(got) != 1 || got[0].ReceiveCount != i || got[0].ID != m[0].ID {
			t.Fatalf("dead-letter receive %d = %+v, %v; want the message (same ID) with count %d", i, got, err, i)
		}
		if err := dlq.Extend(ctx, got[0].Receipt, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTakeGoesOnPastDeadLetters: a receive that reaches a message already
// received MaxReceives times moves it to the dead-letter queue (keeping its
// ID) and returns the next visible message in the same call, on Receive
// and on Take alike.
func TestTakeGoesOnPastDeadLetters(t *testing.T) {
	for name, take := range map[string]bool{"Receive": false, "Take": true} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "queue.db")
			q := open(t, path, "requests", sqlitequeue.Options{Visibility: time.Second, MaxReceives: 1, MaxBytes: 1024})
			if err := q.Send(ctx, []byte("poison")); err != nil {
				t.Fatal(err)
			}
			first, err := q.Receive(ctx, 1, 0)
			if err != nil || len(first) != 1 {
				t.Fatalf("first receive: %v, %v", first, err)
			}
			if err := q.Extend(ctx, first[0].Receipt, 0); err != nil {
				t.Fatal(err)
			}
			// Sent after the poison became visible again, so the poison is
			// the oldest visible message and the next take reaches it first.
			if err := q.Send(ctx, []byte("good")); err != nil {
				t.Fatal(err)
			}
			receive := q.Receive
			if take {
				receive = q.Take
			}
			got, err := receive(ctx, 1, 0)
			if err != nil || len(got) != 1 || string(got[0].Body) != "good" || got[0].ReceiveCount != 1 {
				t.Fatalf("receive past the poison = %+v, %v; want the good message, first delivery", got, err)
			}
			dlq, err := q.DeadLetter()
			if err != nil {
				t.Fatal(err)
			}
			defer dlq.Close()
			dead, err := dlq.Receive(ctx, 10, 0)
			if err != nil || len(dead) != 1 || dead[0].ID != first[0].ID || string(dead[0].Body) != "poison" || dead[0].ReceiveCount != 1 {
				t.Fatalf("dead-letter queue holds %+v, %v; want the poison (ID %s), first delivery there", dead, err, first[0].ID)
			}
			want := platform.Depth{}
			if !take {
				want.InFlight = 1 // the good message, received and not deleted
			}
			if d, err := q.Depth(ctx); err != nil || d != want {
				t.Fatalf("depth after = %+v, %v; want %+v", d, err, want)
			}
		})
	}
}

func TestEmptyBodyRefused(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "queue.db"), "r", testOptions)
	if err := q.Send(context.Background(), nil); err == nil || errors.Is(err, platform.ErrTooLarge) {
		t.Fatalf("Send(empty) error = %v, want a refusal", err)
	}
}

// BenchmarkSendReceiveDelete is one message's whole life in the queue file:
// what each request costs on each of the local system's two queues.
func BenchmarkSendReceiveDelete(b *testing.B) {
	for name, full := range map[string]bool{"sync=normal": false, "sync=full": true} {
		b.Run(name, func(b *testing.B) {
			opts := sqlitequeue.DefaultOptions
			opts.FullSync = full
			benchLife(b, opts, 0)
		})
	}
}

// BenchmarkReceiveBehindBacklog is one message's life in a queue that
// holds a backlog of other messages, as the request queue does when the
// web agent takes requests faster than the workers finish them. A receive
// reads only the rows it takes, so the time per message should not grow
// with the backlog.
func BenchmarkReceiveBehindBacklog(b *testing.B) {
	for _, backlog := range []int{0, 100, 1000} {
		b.Run("backlog="+strconv.Itoa(backlog), func(b *testing.B) {
			benchLife(b, sqlitequeue.DefaultOptions, backlog)
		})
	}
}

// benchLife sends, receives and deletes one message at a time, behind
// backlog messages sent first and never received.
func benchLife(b *testing.B, opts sqlitequeue.Options, backlog int) {
	ctx := context.Background()
	q, err := sqlitequeue.Open(filepath.Join(b.TempDir(), "queue.db"), "requests", opts)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	body := bytes.Repeat([]byte("r"), 240) // a course request, with its reply address
	for range backlog {
		if err := q.Send(ctx, body); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := q.Send(ctx, body); err != nil {
			b.Fatal(err)
		}
		msgs, err := q.Receive(ctx, 1, time.Second)
		if err != nil || len(msgs) != 1 {
			b.Fatalf("Receive: %v, %v", msgs, err)
		}
		if err := q.Delete(ctx, msgs[0].Receipt); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeleteBatch: one batch holding a fresh receipt, the stale receipt of
// a message received again since, an already deleted one and garbage
// deletes what Delete would and reports the stale and garbage receipts as
// not found, leaving the redelivered message to its current holder; more
// than MaxBatch receipts are refused whole. A reply queue of the family is
// a BatchDeleter, so the web agent's platform.DeleteAll takes this path.
func TestDeleteBatch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q := open(t, path, "requests", sqlitequeue.DefaultOptions)
	for _, b := range []string{"fresh", "redelivered", "deleted"} {
		if err := q.Send(ctx, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := q.Receive(ctx, 3, 0)
	if err != nil || len(first) != 3 {
		t.Fatalf("Receive = %d messages, %v; want 3", len(first), err)
	}
	receipt := map[string]string{}
	for _, m := range first {
		receipt[string(m.Body)] = m.Receipt
	}
	if err := q.Delete(ctx, receipt["deleted"]); err != nil {
		t.Fatal(err)
	}
	if err := q.Extend(ctx, receipt["redelivered"], 0); err != nil {
		t.Fatal(err)
	}
	again, err := q.Receive(ctx, 1, 0)
	if err != nil || len(again) != 1 || string(again[0].Body) != "redelivered" {
		t.Fatalf("Receive again = %v, %v; want the redelivered message", again, err)
	}

	err = q.DeleteBatch(ctx, []string{receipt["fresh"], receipt["redelivered"], receipt["deleted"], "garbage"})
	if !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("DeleteBatch = %v, want an error wrapping ErrNotFound", err)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 2 {
		t.Fatalf("DeleteBatch reported %d failed receipts (%v), want 2: the stale one and the garbage", n, err)
	}
	if d, err := q.Depth(ctx); err != nil || d != (platform.Depth{InFlight: 1}) {
		t.Fatalf("Depth after the batch = %+v, %v; want only the redelivered message, in flight", d, err)
	}
	if err := q.Delete(ctx, again[0].Receipt); err != nil {
		t.Fatalf("the current holder's Delete after the batch: %v", err)
	}

	// More than MaxBatch receipts: refused, nothing deleted.
	var receipts []string
	for i := range platform.MaxBatch + 1 {
		if err := q.Send(ctx, []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	for len(receipts) < platform.MaxBatch+1 {
		msgs, err := q.Receive(ctx, platform.MaxBatch, 0)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("Receive = %d messages, %v", len(msgs), err)
		}
		for _, m := range msgs {
			receipts = append(receipts, m.Receipt)
		}
	}
	if err := q.DeleteBatch(ctx, receipts); err == nil || errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("DeleteBatch of %d receipts = %v, want a refusal", len(receipts), err)
	}
	if d, err := q.Depth(ctx); err != nil || d.InFlight != platform.MaxBatch+1 {
		t.Fatalf("Depth after the refused batch = %+v, %v; want %d in flight", d, err, platform.MaxBatch+1)
	}

	f, err := sqlitequeue.OpenFamily(ctx, &url.URL{Scheme: "sqlite", Path: filepath.ToSlash(path), RawQuery: "name=reply-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	member, _, err := f.Create(ctx, "host-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { member.Close() })
	if _, ok := member.(platform.BatchDeleter); !ok {
		t.Fatalf("a family member (%T) is not a platform.BatchDeleter", member)
	}
}
