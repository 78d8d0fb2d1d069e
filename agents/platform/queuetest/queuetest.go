// Package queuetest is the conformance suite of the Queue port, in the
// manner of gocloud.dev's drivertest: every adapter's tests call Run, so the
// SQLite queue and SQS (on moto) are held to one contract. It knows nothing
// of any adapter; what differs between them (timeouts, limits) comes in
// through Setup.
package queuetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// Setup is one fresh, empty queue and what the suite must know about it.
type Setup struct {
	// Queue is empty and used by one subtest only.
	Queue platform.Queue
	// DeadLetter is Queue's dead-letter queue, also empty; nil skips the
	// dead-letter test.
	DeadLetter platform.Queue
	// Visibility is Queue's visibility timeout. Keep it short (1s locally,
	// a few seconds on a service): several tests wait for it to lapse.
	Visibility time.Duration
	// MaxReceives is Queue's redrive limit (deliveries before a message
	// goes to DeadLetter); 0 when it has none.
	MaxReceives int
	// MaxBytes is the largest body Queue accepts.
	MaxBytes int
	// Settle bounds how long the adapter may take to reflect a change in
	// Depth or make a sent message receivable (0 for exact local queues).
	Settle time.Duration
	// StaleExtendAccepted says the backing service may accept Extend with
	// a receipt that a later delivery superseded (moto's SQS does); the
	// suite then only requires that such an Extend leaves the current
	// delivery working, instead of failing with ErrNotFound.
	StaleExtendAccepted bool
	// DuplicateDeliveries says the backing service may, rarely, hand one
	// delivery to two receivers at once: SQS standard queues are
	// at-least-once, and moto's server does so under concurrent receives
	// of a message whose visibility just lapsed. The concurrent receivers
	// clause then requires only that every message arrives, and logs the
	// duplicates, instead of failing on them.
	DuplicateDeliveries bool
}

// NewQueue makes a Setup for one subtest and arranges (t.Cleanup) to close
// and remove its queues.
type NewQueue func(t *testing.T) Setup

// Run runs every clause of the Queue contract.
func Run(t *testing.T, newQueue NewQueue) {
	tests := map[string]func(t *testing.T, s Setup){
		"RoundTrip":           testRoundTrip,
		"BatchLimit":          testBatchLimit,
		"EmptyReceiveReturns": testEmptyReceive,
		"VisibilityTimeout":   testVisibilityTimeout,
		"ExtendKeepsHidden":   testExtendKeepsHidden,
		"ExtendZeroReleases":  testExtendZero,
		"StaleReceipt":        testStaleReceipt,
		"DeleteIdempotent":    testDeleteIdempotent,
		"DeleteAll":           testDeleteAll,
		"DeadLetter":          testDeadLetter,
		"Depth":               testDepth,
		"TooLarge":            testTooLarge,
		"CancelDuringReceive": testCancel,
		"ConcurrentReceivers": testConcurrentReceivers,
		"InvalidArguments":    testInvalidArguments,
	}
	runClauses(t, tests, newQueue, func(s Setup) error {
		if s.Queue == nil || s.Visibility <= 0 || s.MaxBytes <= 0 {
			return fmt.Errorf("Setup needs Queue, Visibility and MaxBytes: %+v", s)
		}
		return nil
	})
}

// runClauses runs each clause in parallel, in name order, on a setup of
// its own from newSetup, once check accepts it.
func runClauses[S any](t *testing.T, clauses map[string]func(*testing.T, S), newSetup func(*testing.T) S, check func(S) error) {
	for _, name := range slices.Sorted(maps.Keys(clauses)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			if err := check(s); err != nil {
				t.Fatal(err)
			}
			clauses[name](t, s)
		})
	}
}

// ctxFor bounds a subtest, so a hung adapter fails instead of stalling.
func ctxFor(t *testing.T, s Setup) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute+20*s.Visibility+10*s.Settle)
	t.Cleanup(cancel)
	return ctx
}

// patience is how long a receive waits for a message that should be there
// (or come back) soon.
func (s Setup) patience() time.Duration { return 3*s.Visibility + s.Settle + 2*time.Second }

func send(t *testing.T, ctx context.Context, q platform.Queue, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := q.Send(ctx, []byte(b)); err != nil {
			t.Fatalf("Send(%q): %v", b, err)
		}
	}
}

// receiveOne waits up to wait for exactly one message.
func receiveOne(t *testing.T, ctx context.Context, q platform.Queue, wait time.Duration) platform.Message {
	t.Helper()
	msgs, err := q.Receive(ctx, 1, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Receive(max 1, wait %s) = %d messages, want 1", wait, len(msgs))
	}
	return msgs[0]
}

// receiveAll receives until n messages came or patience ran out.
func receiveAll(t *testing.T, ctx context.Context, s Setup, q platform.Queue, n int) []platform.Message {
	t.Helper()
	var got []platform.Message
	deadline := time.Now().Add(s.patience())
	for len(got) < n && time.Now().Before(deadline) {
		msgs, err := q.Receive(ctx, min(10, n-len(got)), time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, msgs...)
	}
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

// expectNone checks that nothing is receivable for wait.
func expectNone(t *testing.T, ctx context.Context, q platform.Queue, wait time.Duration, why string) {
	t.Helper()
	msgs, err := q.Receive(ctx, 10, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 0 {
		t.Fatalf("%s, but Receive returned %d message(s), first %q (count %d)", why, len(msgs), msgs[0].Body, msgs[0].ReceiveCount)
	}
}

func testRoundTrip(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	bodies := []string{
		`{"v":1,"id":"0190f0e8-7a3c-7def-8000-000000000001","key":"inputs/test_00.jpg"}`,
		"plain text with\nnewlines\tand tabs",
		"unicode: Zoë Ångström 東京 🙂",
		`quotes " and ' and <xml> & entities`,
		strings.Repeat("m", s.MaxBytes), // exactly at the limit
	}
	send(t, ctx, s.Queue, bodies...)
	got := receiveAll(t, ctx, s, s.Queue, len(bodies))
	ids := map[string]bool{}
	var gotBodies []string
	for _, m := range got {
		if m.ID == "" || m.Receipt == "" {
			t.Errorf("message %q has ID %q and receipt %q; want both set", m.Body, m.ID, m.Receipt)
		}
		if ids[m.ID] {
			t.Errorf("ID %q delivered twice", m.ID)
		}
		ids[m.ID] = true
		if m.ReceiveCount != 1 {
			t.Errorf("first delivery of %q has ReceiveCount %d, want 1", m.Body, m.ReceiveCount)
		}
		gotBodies = append(gotBodies, string(m.Body))
		if err := s.Queue.Delete(ctx, m.Receipt); err != nil {
			t.Errorf("Delete: %v", err)
		}
	}
	slices.Sort(gotBodies)
	want := slices.Clone(bodies)
	slices.Sort(want)
	for i := range want {
		if !bytes.Equal([]byte(gotBodies[i]), []byte(want[i])) {
			t.Errorf("bodies differ: got %q, want %q", gotBodies[i], want[i])
		}
	}
}

func testBatchLimit(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	for i := range 5 {
		send(t, ctx, s.Queue, fmt.Sprintf("m%d", i))
	}
	seen := 0
	deadline := time.Now().Add(s.patience())
	for seen < 5 && time.Now().Before(deadline) {
		msgs, err := s.Queue.Receive(ctx, 2, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 2 {
			t.Fatalf("Receive(max 2) returned %d messages", len(msgs))
		}
		seen += len(msgs)
	}
	if seen != 5 {
		t.Fatalf("received %d of 5 messages in batches of up to 2", seen)
	}
}

func testEmptyReceive(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	for _, wait := range []time.Duration{0, 300 * time.Millisecond} {
		// Liveness guard, not a timing assertion: an empty Receive must
		// end by itself once its wait is over.
		guard, cancel := context.WithTimeout(ctx, wait+30*time.Second)
		msgs, err := s.Queue.Receive(guard, 1, wait)
		guardErr := guard.Err()
		cancel()
		if guardErr != nil {
			t.Fatalf("Receive(wait %s) on an empty queue did not return by itself", wait)
		}
		if err != nil || len(msgs) != 0 {
			t.Fatalf("Receive(wait %s) on an empty queue = %d messages, %v; want none and no error", wait, len(msgs), err)
		}
	}
}

func testVisibilityTimeout(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "comes back")
	first := receiveOne(t, ctx, s.Queue, s.patience())
	expectNone(t, ctx, s.Queue, 0, "a received message must be hidden")
	second := receiveOne(t, ctx, s.Queue, s.patience())
	if second.ID != first.ID || string(second.Body) != "comes back" {
		t.Fatalf("redelivery = %q (ID %q), want %q (ID %q)", second.Body, second.ID, "comes back", first.ID)
	}
	if second.ReceiveCount != 2 {
		t.Fatalf("redelivery ReceiveCount = %d, want 2", second.ReceiveCount)
	}
	if second.Receipt == first.Receipt {
		t.Fatalf("redelivery reused receipt %q", first.Receipt)
	}
}

func testExtendKeepsHidden(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "held")
	m := receiveOne(t, ctx, s.Queue, s.patience())
	// Hold it for three visibility timeouts, extending by two every half
	// of one (the margin keeps a slow machine from letting it lapse).
	end := time.Now().Add(3 * s.Visibility)
	for time.Now().Before(end) {
		if err := s.Queue.Extend(ctx, m.Receipt, 2*s.Visibility); err != nil {
			t.Fatalf("Extend: %v", err)
		}
		expectNone(t, ctx, s.Queue, s.Visibility/2, "an extended message must stay hidden")
	}
	if err := s.Queue.Delete(ctx, m.Receipt); err != nil {
		t.Fatalf("Delete after extending: %v", err)
	}
	expectNone(t, ctx, s.Queue, 2*s.Visibility+s.Settle+time.Second, "a deleted message must not come back")
}

func testExtendZero(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "released")
	m := receiveOne(t, ctx, s.Queue, s.patience())
	// Extend by 0 hands the message back at once (a worker giving up on a
	// transient error); it comes back well before the visibility timeout.
	if err := s.Queue.Extend(ctx, m.Receipt, 0); err != nil {
		t.Fatalf("Extend(0): %v", err)
	}
	again := receiveOne(t, ctx, s.Queue, s.patience())
	if again.ID != m.ID || again.ReceiveCount != 2 {
		t.Fatalf("after Extend(0) got ID %q count %d, want ID %q count 2", again.ID, again.ReceiveCount, m.ID)
	}
}

func testStaleReceipt(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "stale")
	old := receiveOne(t, ctx, s.Queue, s.patience())
	cur := receiveOne(t, ctx, s.Queue, s.patience()) // after the visibility lapsed
	if cur.ID != old.ID {
		t.Fatalf("redelivered ID %q, want %q", cur.ID, old.ID)
	}
	switch err := s.Queue.Extend(ctx, old.Receipt, s.Visibility); {
	case errors.Is(err, platform.ErrNotFound):
	case err == nil && s.StaleExtendAccepted:
		if err := s.Queue.Extend(ctx, cur.Receipt, s.Visibility); err != nil {
			t.Fatalf("a stale Extend was accepted, and the current receipt no longer works: %v", err)
		}
	default:
		t.Fatalf("Extend with a stale receipt: error %v, want one wrapping platform.ErrNotFound", err)
	}
	// A stale Delete either fails with ErrNotFound and leaves the message
	// to its current holder, or (SQS) is accepted; callers treat both as
	// "no longer mine". Either way it must not break the current delivery
	// when it reports failure.
	err := s.Queue.Delete(ctx, old.Receipt)
	switch {
	case errors.Is(err, platform.ErrNotFound):
		if err := s.Queue.Extend(ctx, cur.Receipt, s.Visibility); err != nil {
			t.Fatalf("stale Delete reported not found, yet the current receipt no longer works: %v", err)
		}
	case err != nil:
		t.Fatalf("Delete with a stale receipt: %v; want nil or an error wrapping platform.ErrNotFound", err)
	}
	if err := s.Queue.Delete(ctx, cur.Receipt); err != nil {
		t.Fatalf("Delete with the current receipt: %v", err)
	}
	expectNone(t, ctx, s.Queue, s.Visibility+s.Settle+time.Second, "a deleted message must not come back")
	if err := s.Queue.Extend(ctx, cur.Receipt, s.Visibility); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Extend after Delete: error %v, want one wrapping platform.ErrNotFound", err)
	}
}

func testDeleteIdempotent(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "once")
	m := receiveOne(t, ctx, s.Queue, s.patience())
	for i := range 2 {
		if err := s.Queue.Delete(ctx, m.Receipt); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	expectNone(t, ctx, s.Queue, s.Visibility+s.Settle+time.Second, "a deleted message must not come back")
	waitDepth(t, ctx, s, platform.Depth{})
}

// testDeleteAll: platform.DeleteAll (a batch call on adapters that are
// BatchDeleters) deletes every message of a received batch, reports a stale
// receipt among them as not found, and leaves nothing to come back.
func testDeleteAll(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	var bodies []string
	for i := range 12 {
		bodies = append(bodies, fmt.Sprintf("batch-%02d", i))
	}
	send(t, ctx, s.Queue, bodies...)
	got := receiveAll(t, ctx, s, s.Queue, len(bodies))
	receipts := make([]string, 0, len(got))
	for _, m := range got {
		receipts = append(receipts, m.Receipt)
	}
	if err := platform.DeleteAll(ctx, s.Queue, receipts); err != nil {
		t.Fatalf("DeleteAll of %d fresh receipts: %v", len(receipts), err)
	}
	if err := platform.DeleteAll(ctx, s.Queue, receipts[:3]); err != nil {
		t.Fatalf("DeleteAll again (already deleted is not an error): %v", err)
	}
	if err := platform.DeleteAll(ctx, s.Queue, []string{""}); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("DeleteAll of an empty receipt: %v, want ErrNotFound", err)
	}
	expectNone(t, ctx, s.Queue, s.Visibility+s.Settle+time.Second, "messages deleted by DeleteAll must not come back")
	waitDepth(t, ctx, s, platform.Depth{})
}

func testDeadLetter(t *testing.T, s Setup) {
	if s.DeadLetter == nil || s.MaxReceives <= 0 {
		t.Skip("adapter set up without a dead-letter queue")
	}
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "poison")
	var id string
	for n := 1; n <= s.MaxReceives; n++ {
		m := receiveOne(t, ctx, s.Queue, s.patience())
		if m.ReceiveCount != n || string(m.Body) != "poison" {
			t.Fatalf("delivery %d: %q with ReceiveCount %d", n, m.Body, m.ReceiveCount)
		}
		id = m.ID
	}
	expectNone(t, ctx, s.Queue, s.Visibility+s.Settle+2*time.Second,
		fmt.Sprintf("after %d deliveries the message must go to the dead-letter queue", s.MaxReceives))
	dead := receiveOne(t, ctx, s.DeadLetter, s.patience())
	if string(dead.Body) != "poison" {
		t.Fatalf("dead letter body %q, want %q (original ID %s)", dead.Body, "poison", id)
	}
	if err := s.DeadLetter.Delete(ctx, dead.Receipt); err != nil {
		t.Fatalf("Delete from the dead-letter queue: %v", err)
	}
}

// waitDepth polls Depth until it equals want or Settle has passed.
func waitDepth(t *testing.T, ctx context.Context, s Setup, want platform.Depth) {
	t.Helper()
	deadline := time.Now().Add(s.Settle)
	for {
		got, err := s.Queue.Depth(ctx)
		if err != nil {
			t.Fatalf("Depth: %v", err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Depth = %+v, want %+v", got, want)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func testDepth(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	waitDepth(t, ctx, s, platform.Depth{})
	send(t, ctx, s.Queue, "a", "b", "c")
	waitDepth(t, ctx, s, platform.Depth{Visible: 3})
	m := receiveOne(t, ctx, s.Queue, s.patience())
	if err := s.Queue.Extend(ctx, m.Receipt, s.Visibility+2*s.Settle+10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitDepth(t, ctx, s, platform.Depth{Visible: 2, InFlight: 1})
	if err := s.Queue.Delete(ctx, m.Receipt); err != nil {
		t.Fatal(err)
	}
	waitDepth(t, ctx, s, platform.Depth{Visible: 2})
}

func testTooLarge(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	err := s.Queue.Send(ctx, bytes.Repeat([]byte("x"), s.MaxBytes+1))
	if !errors.Is(err, platform.ErrTooLarge) {
		t.Fatalf("Send(%d bytes) error = %v, want one wrapping platform.ErrTooLarge", s.MaxBytes+1, err)
	}
	expectNone(t, ctx, s.Queue, s.Settle+500*time.Millisecond, "a refused message must not be enqueued")
	waitDepth(t, ctx, s, platform.Depth{})
}

// testCancel: a Receive whose context is done returns context.Canceled and
// takes nothing. "already done" runs first: some services (moto's SQS) keep
// a cancelled long poll running until its wait ends, and it would take a
// message sent after it.
func testCancel(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	t.Run("already done", func(t *testing.T) {
		send(t, ctx, s.Queue, "kept")
		rctx, cancel := context.WithCancel(ctx)
		cancel()
		msgs, err := s.Queue.Receive(rctx, 1, time.Second)
		if !errors.Is(err, context.Canceled) || len(msgs) != 0 {
			t.Fatalf("Receive with a done context = %d messages, %v; want none and context.Canceled", len(msgs), err)
		}
		// The message was not taken by the cancelled call.
		m := receiveOne(t, ctx, s.Queue, s.patience())
		if m.ReceiveCount != 1 {
			t.Fatalf("message after a cancelled Receive has ReceiveCount %d, want 1", m.ReceiveCount)
		}
	})
	t.Run("during wait", func(t *testing.T) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := s.Queue.Receive(rctx, 1, 20*time.Second)
			done <- err
		}()
		time.Sleep(200 * time.Millisecond)
		cancel()
		// Liveness guard: Receive must return on cancel, not after its
		// 20 s wait; 15 s leaves room for a slow machine.
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Receive after cancel: error %v, want context.Canceled", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Receive did not return after its context was cancelled")
		}
	})
}

// testConcurrentReceivers: receivers racing on one queue never get the same
// delivery; a message seen twice must be a redelivery (higher count).
func testConcurrentReceivers(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	const n, receivers = 40, 4
	for i := range n {
		send(t, ctx, s.Queue, fmt.Sprintf("job-%02d", i))
	}
	type delivery struct {
		id    string
		count int
	}
	var mu sync.Mutex
	seen := map[delivery]int{}
	bodies := map[string]bool{}
	rctx, cancel := context.WithTimeout(ctx, s.patience()+10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, receivers)
	for range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				finished := len(bodies) == n
				mu.Unlock()
				if finished || rctx.Err() != nil {
					return
				}
				msgs, err := s.Queue.Receive(rctx, 3, 500*time.Millisecond)
				if err != nil {
					if rctx.Err() == nil {
						errs <- err
					}
					return
				}
				for _, m := range msgs {
					mu.Lock()
					seen[delivery{m.ID, m.ReceiveCount}]++
					bodies[string(m.Body)] = true
					mu.Unlock()
					if err := s.Queue.Delete(rctx, m.Receipt); err != nil && !errors.Is(err, platform.ErrNotFound) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for d, k := range seen {
		switch {
		case k > 1 && s.DuplicateDeliveries:
			t.Logf("message %s delivered %d times with ReceiveCount %d (allowed: the service is at-least-once)", d.id, k, d.count)
		case k > 1:
			t.Errorf("message %s delivered %d times with ReceiveCount %d (concurrent receivers got it at once)", d.id, k, d.count)
		}
	}
	if len(bodies) != n {
		t.Fatalf("receivers got %d distinct messages, want %d", len(bodies), n)
	}
}

func testInvalidArguments(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "untouched")
	tests := map[string]func() error{
		"max 0":            func() error { _, err := s.Queue.Receive(ctx, 0, 0); return err },
		"max 11":           func() error { _, err := s.Queue.Receive(ctx, 11, 0); return err },
		"negative wait":    func() error { _, err := s.Queue.Receive(ctx, 1, -time.Second); return err },
		"empty receipt":    func() error { return s.Queue.Extend(ctx, "", time.Second) },
		"garbage receipt":  func() error { return s.Queue.Extend(ctx, "not a receipt", time.Second) },
		"negative extend":  func() error { return s.Queue.Extend(ctx, "x", -time.Second) },
		"extend over 12 h": func() error { return s.Queue.Extend(ctx, "x", 13*time.Hour) },
		"delete garbage":   func() error { return s.Queue.Delete(ctx, "") },
	}
	for name, op := range tests {
		t.Run(name, func(t *testing.T) {
			if err := op(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	m := receiveOne(t, ctx, s.Queue, s.patience())
	if string(m.Body) != "untouched" || m.ReceiveCount != 1 {
		t.Fatalf("after refused calls got %q count %d, want the untouched message on its first delivery", m.Body, m.ReceiveCount)
	}
}
