package sqlitequeue

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// TestDepthCountsASendDuringItsClockReadingAsVisible: a message that another
// process sends just after Depth has read its clock (here: sent from inside
// the clock, through a second handle) must not be counted as in flight; no
// message has ever been received, so nothing is in flight.
func TestDepthCountsASendDuringItsClockReadingAsVisible(t *testing.T) {
	ctx := context.Background()
	q, other := twoHandles(t)
	if err := other.Send(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}

	// The clock of q stands in for a clock reading that another process's
	// Send overtakes: it reads the time, then lets a Send stamped a few
	// milliseconds later commit, and returns the earlier reading.
	var sends atomic.Int32
	q.now = func() time.Time {
		at := time.Now()
		time.Sleep(3 * time.Millisecond)
		if err := other.Send(ctx, []byte("during")); err != nil {
			t.Error(err)
		}
		sends.Add(1)
		return at
	}
	for i := range 3 {
		d, err := q.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.InFlight != 0 {
			t.Fatalf("Depth %d = %+v with no receiver ever: messages sent during Depth counted as in flight", i, d)
		}
		// Each Depth sees the messages committed before it started, and
		// perhaps the one sent during it.
		if sent := 1 + int(sends.Load()); d.Visible < sent-1 || d.Visible > sent {
			t.Fatalf("Depth %d = %+v after %d sends", i, d, sent)
		}
	}
	q.now = time.Now
	if d, err := q.Depth(ctx); err != nil || d.Visible != 4 || d.InFlight != 0 {
		t.Fatalf("Depth at rest = %+v, %v; want 4 visible", d, err)
	}

	// A received message is in flight until its visibility ends.
	msgs, err := q.Receive(ctx, 1, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %v, %v", msgs, err)
	}
	if d, err := q.Depth(ctx); err != nil || d.Visible != 3 || d.InFlight != 1 {
		t.Fatalf("Depth after a receive = %+v, %v; want 3 visible, 1 in flight", d, err)
	}
	if err := q.Extend(ctx, msgs[0].Receipt, 0); err != nil {
		t.Fatal(err)
	}
	if d, err := q.Depth(ctx); err != nil || d.Visible != 4 || d.InFlight != 0 {
		t.Fatalf("Depth after handing back = %+v, %v; want 4 visible", d, err)
	}
}

// TestReceiveAfterTheWatchIsLost: when the watch on the log stops seeing
// writes (the log was removed and made anew), a waiting Receive still gets
// what another handle sends, through a new watch or by polling.
func TestReceiveAfterTheWatchIsLost(t *testing.T) {
	ctx := context.Background()
	q, other := twoHandles(t)
	for i, body := range []string{"first", "second"} {
		if w := q.watch(); w != nil && i == 1 {
			w.fire(true) // as a Remove event does
		}
		go func() {
			time.Sleep(50 * time.Millisecond)
			if err := other.Send(ctx, []byte(body)); err != nil {
				t.Error(err)
			}
		}()
		msgs, err := q.Receive(ctx, 1, 5*time.Second)
		if err != nil || len(msgs) != 1 || string(msgs[0].Body) != body {
			t.Fatalf("Receive %d = %v, %v; want %q", i, msgs, err, body)
		}
	}
}

// twoHandles opens one queue file twice, as two processes would.
func twoHandles(t *testing.T) (q, other *Queue) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queue.db")
	for _, h := range []**Queue{&q, &other} {
		var err error
		if *h, err = Open(path, "requests", DefaultOptions); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*h).Close() })
	}
	return q, other
}

// TestDoorbells: a Send, an Extend and a move to the dead-letter queue ring
// the bell of the queue whose message became visible, and no other, and a
// waiting handle's watch sees a ring made through another handle.
func TestDoorbells(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	opts := Options{Visibility: time.Second, MaxReceives: 1, MaxBytes: 1024}
	open := func(name string) *Queue {
		q, err := Open(path, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	reqs, reqs2, replies := open("requests"), open("requests"), open("replies")
	rang := func(name string) bool {
		b, err := os.ReadFile(bellPath(path, name))
		return err == nil && len(b) > 0
	}
	clear := func(name string) {
		if err := os.WriteFile(bellPath(path, name), nil, 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	w := reqs.watch()
	if w == nil {
		t.Fatal("no watch on the requests bell")
	}
	changed := w.next()
	if err := replies.Send(ctx, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	if !rang("replies") || rang("requests") {
		t.Fatalf("after a reply: replies rang %v, requests rang %v; want only replies", rang("replies"), rang("requests"))
	}
	if err := reqs2.Send(ctx, []byte("job")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch on requests did not see the other handle's Send")
	}

	clear("requests")
	msgs, err := reqs.Receive(ctx, 1, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %v, %v", msgs, err)
	}
	if rang("requests") {
		t.Error("a receive rang the bell")
	}
	if err := reqs.Extend(ctx, msgs[0].Receipt, 0); err != nil {
		t.Fatal(err)
	}
	if !rang("requests") {
		t.Error("handing a message back did not ring the bell")
	}
	// Received once already (MaxReceives 1): the next receive moves it to
	// the dead-letter queue, whose bell rings.
	if msgs, err := reqs.Receive(ctx, 1, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("Receive = %v, %v; want the message dead-lettered", msgs, err)
	}
	if !rang("requests" + DeadLetterSuffix) {
		t.Error("dead-lettering did not ring the dead-letter queue's bell")
	}
}

// TestRemoveTakesTheBell: a removed family member leaves no doorbell behind.
func TestRemoveTakesTheBell(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	u, err := url.Parse("sqlite://" + filepath.ToSlash(path) + "?name=reply-")
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFamily(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q, addr, err := f.Create(ctx, "host-1")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Send(ctx, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	bell := bellPath(path, "reply-host-1")
	if _, err := os.Stat(bell); err != nil {
		t.Fatalf("no bell after a send: %v", err)
	}
	if err := f.Remove(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bell); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bell of a removed member: %v, want it gone", err)
	}
}

// TestOldestVisibleFirst: receives take the message visible the longest
// first: one handed back (its visibility cut short) comes after those
// visible before it and before those sent after it; messages visible from
// the same millisecond come in the order they were sent.
func TestOldestVisibleFirst(t *testing.T) {
	ctx := context.Background()
	q, err := Open(filepath.Join(t.TempDir(), "queue.db"), "requests", Options{Visibility: time.Minute, MaxReceives: 5, MaxBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	clock := time.UnixMilli(1_000_000)
	q.now = func() time.Time { return clock }
	send := func(body string) {
		t.Helper()
		if err := q.Send(ctx, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	// receive takes one message at a time until none is visible.
	receive := func() []string {
		t.Helper()
		var bodies []string
		for {
			msgs, err := q.Receive(ctx, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				return bodies
			}
			bodies = append(bodies, string(msgs[0].Body))
		}
	}
	send("a")
	send("b") // the same millisecond as a
	msgs, err := q.Receive(ctx, 1, 0)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "a" {
		t.Fatalf("first receive = %+v, %v; want a (sent first in the same millisecond)", msgs, err)
	}
	clock = clock.Add(time.Second)
	if err := q.Extend(ctx, msgs[0].Receipt, 0); err != nil { // a handed back at t+1s
		t.Fatal(err)
	}
	clock = clock.Add(time.Second)
	send("c") // visible from t+2s
	msgs, err = q.Receive(ctx, 1, 0)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "b" {
		t.Fatalf("second receive = %+v, %v; want b (visible since t)", msgs, err)
	}
	if got, want := receive(), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("then took %q, want %q (a visible again since t+1s, c since t+2s)", got, want)
	}
}

// A receiver whose last take found all it asked for takes at once, without
// a look first; a take that comes back short turns the look back on, and
// a receive that finds nothing at once still waits for the message in
// flight that becomes visible.
func TestTakeFirstOnlyBehindABacklog(t *testing.T) {
	ctx := context.Background()
	q, err := Open(filepath.Join(t.TempDir(), "queue.db"), "requests", DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, body := range []string{"a", "b", "c"} {
		if err := q.Send(ctx, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		n         int
		want      []string
		takeFirst bool // after the receive
	}{
		{1, []string{"a"}, true},   // all it asked for: more are likely waiting
		{1, []string{"b"}, true},   // taken at once
		{10, []string{"c"}, false}, // short of ten: the backlog is gone
		{1, nil, false},
	}
	var last platform.Message
	for i, s := range steps {
		msgs, err := q.Receive(ctx, s.n, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, string(m.Body))
			last = m
		}
		if !slices.Equal(got, s.want) || q.found.Load() != s.takeFirst {
			t.Fatalf("receive %d of %d: %q, take first next %v; want %q, %v", i+1, s.n, got, q.found.Load(), s.want, s.takeFirst)
		}
	}
	// c, handed back to become visible in 300 ms, after a take that found
	// all it asked for: the take at once finds nothing, and the look then
	// says when c comes back.
	if err := q.Send(ctx, []byte("d")); err != nil {
		t.Fatal(err)
	}
	if msgs, err := q.Receive(ctx, 1, 0); err != nil || len(msgs) != 1 || !q.found.Load() {
		t.Fatalf("receive of d = %+v, %v, take first next %v; want d and true", msgs, err, q.found.Load())
	}
	if err := q.Extend(ctx, last.Receipt, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, 5*time.Second)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "c" || msgs[0].ReceiveCount != 2 {
		t.Fatalf("receive while c is in flight = %+v, %v; want c on its second delivery", msgs, err)
	}
}
