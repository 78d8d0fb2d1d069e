package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// RunTaker runs the clauses of platform.Taker on an adapter that has it;
// newQueue's queues must implement it.
func RunTaker(t *testing.T, newQueue NewQueue) {
	tests := map[string]func(t *testing.T, s Setup){
		"TakeDeletes":      testTakeDeletes,
		"TakeWaits":        testTakeWaits,
		"TakeRedelivery":   testTakeRedelivery,
		"TakeInvalidLimit": testTakeInvalid,
	}
	runClauses(t, tests, newQueue, func(s Setup) error {
		if _, ok := s.Queue.(platform.Taker); !ok || s.Visibility <= 0 {
			return fmt.Errorf("Setup needs a platform.Taker (got %T) and Visibility", s.Queue)
		}
		return nil
	})
}

// take takes until n messages came or patience ran out.
func take(t *testing.T, ctx context.Context, s Setup, tk platform.Taker, n int) []platform.Message {
	t.Helper()
	var got []platform.Message
	deadline := time.Now().Add(s.patience())
	for len(got) < n && time.Now().Before(deadline) {
		msgs, err := tk.Take(ctx, platform.MaxBatch, time.Second)
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		got = append(got, msgs...)
	}
	if len(got) != n {
		t.Fatalf("Take returned %d messages in all, want %d", len(got), n)
	}
	return got
}

// testTakeDeletes: what Take returns is gone for good, not hidden for the
// visibility timeout.
func testTakeDeletes(t *testing.T, s Setup) {
	tk := s.Queue.(platform.Taker)
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "a", "b")
	got := take(t, ctx, s, tk, 2)
	var bodies []string
	for _, m := range got {
		if m.ReceiveCount != 1 || m.ID == "" {
			t.Errorf("taken message %q: ReceiveCount %d, ID %q; want 1 and an id", m.Body, m.ReceiveCount, m.ID)
		}
		bodies = append(bodies, string(m.Body))
	}
	slices.Sort(bodies)
	if strings.Join(bodies, ",") != "a,b" {
		t.Fatalf("Take returned %v, want a and b", bodies)
	}
	waitDepth(t, ctx, s, platform.Depth{})
	expectNone(t, ctx, s.Queue, s.Visibility+time.Second, "after Take, once the visibility timeout has passed")
}

// testTakeWaits: Take waits for a message sent while it waits.
func testTakeWaits(t *testing.T, s Setup) {
	tk := s.Queue.(platform.Taker)
	ctx := ctxFor(t, s)
	type result struct {
		msgs []platform.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := tk.Take(ctx, 1, s.patience())
		done <- result{msgs, err}
	}()
	time.Sleep(200 * time.Millisecond)
	send(t, ctx, s.Queue, "late")
	r := <-done
	if r.err != nil || len(r.msgs) != 1 || string(r.msgs[0].Body) != "late" {
		t.Fatalf("Take waiting for a message sent later = %d messages, %v; want the one sent", len(r.msgs), r.err)
	}
}

// testTakeRedelivery: a message whose earlier delivery lapsed is taken as
// its next delivery.
func testTakeRedelivery(t *testing.T, s Setup) {
	tk := s.Queue.(platform.Taker)
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "again")
	first := receiveOne(t, ctx, s.Queue, s.patience())
	if err := s.Queue.Extend(ctx, first.Receipt, 0); err != nil {
		t.Fatalf("Extend(0): %v", err)
	}
	got := take(t, ctx, s, tk, 1)
	if got[0].ID != first.ID || got[0].ReceiveCount != 2 {
		t.Fatalf("Take after a lapsed delivery: id %s count %d, want %s count 2", got[0].ID, got[0].ReceiveCount, first.ID)
	}
	waitDepth(t, ctx, s, platform.Depth{})
}

func testTakeInvalid(t *testing.T, s Setup) {
	tk := s.Queue.(platform.Taker)
	ctx := ctxFor(t, s)
	send(t, ctx, s.Queue, "untouched")
	for name, args := range map[string]struct {
		max  int
		wait time.Duration
	}{"max 0": {0, 0}, "max 11": {11, 0}, "negative wait": {1, -time.Second}} {
		if msgs, err := tk.Take(ctx, args.max, args.wait); err == nil || len(msgs) != 0 {
			t.Errorf("Take with %s = %d messages, %v; want an error", name, len(msgs), err)
		}
	}
	m := receiveOne(t, ctx, s.Queue, s.patience())
	if string(m.Body) != "untouched" || m.ReceiveCount != 1 {
		t.Fatalf("after refused Takes got %q count %d, want the untouched message on its first delivery", m.Body, m.ReceiveCount)
	}
}

// ForwardSetup is a queue that forwards and where it forwards to.
type ForwardSetup struct {
	// From implements platform.Forwarder; it and To are empty and used by
	// one subtest only.
	From, To platform.Queue
	// Removed is a queue From could forward to, now removed.
	Removed platform.Queue
	// Elsewhere is a queue From cannot forward to in one step (another
	// adapter's, or another file's).
	Elsewhere platform.Queue
	// Visibility is From's visibility timeout, MaxBytes To's size limit.
	Visibility time.Duration
	MaxBytes   int
}

// NewForward makes a ForwardSetup for one subtest and arranges (t.Cleanup)
// to close and remove its queues.
type NewForward func(t *testing.T) ForwardSetup

// RunForwarder runs the clauses of platform.Forwarder.
func RunForwarder(t *testing.T, newSetup NewForward) {
	tests := map[string]func(t *testing.T, s ForwardSetup){
		"Forward":            testForward,
		"ForwardStale":       testForwardStale,
		"ForwardRemoved":     testForwardRemoved,
		"ForwardUnsupported": testForwardUnsupported,
		"ForwardTooLarge":    testForwardTooLarge,
	}
	runClauses(t, tests, newSetup, func(s ForwardSetup) error {
		if _, ok := s.From.(platform.Forwarder); !ok || s.To == nil || s.Removed == nil || s.Elsewhere == nil || s.Visibility <= 0 || s.MaxBytes <= 0 {
			return fmt.Errorf("ForwardSetup needs From (a platform.Forwarder, got %T), To, Removed, Elsewhere, Visibility and MaxBytes", s.From)
		}
		return nil
	})
}

func (s ForwardSetup) setup() Setup { return Setup{Queue: s.From, Visibility: s.Visibility} }

// held sends body to s.From and receives it.
func (s ForwardSetup) held(t *testing.T, ctx context.Context, body string) platform.Message {
	t.Helper()
	send(t, ctx, s.From, body)
	return receiveOne(t, ctx, s.From, s.setup().patience())
}

// stillHeld checks that the delivery m is neither deleted nor lapsed.
func stillHeld(t *testing.T, ctx context.Context, q platform.Queue, m platform.Message) {
	t.Helper()
	if err := q.Extend(ctx, m.Receipt, time.Minute); err != nil {
		t.Fatalf("the delivery of %q is no longer held: Extend: %v", m.Body, err)
	}
}

func testForward(t *testing.T, s ForwardSetup) {
	fw := s.From.(platform.Forwarder)
	ctx := ctxFor(t, s.setup())
	m := s.held(t, ctx, "job")
	if sendErr, delErr := fw.Forward(ctx, s.To, []byte("reply"), m.Receipt); sendErr != nil || delErr != nil {
		t.Fatalf("Forward = %v, %v; want nil, nil", sendErr, delErr)
	}
	if r := receiveOne(t, ctx, s.To, s.setup().patience()); string(r.Body) != "reply" {
		t.Fatalf("To received %q, want reply", r.Body)
	}
	if err := s.From.Extend(ctx, m.Receipt, time.Minute); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Extend of the forwarded delivery: %v, want ErrNotFound (deleted)", err)
	}
	expectNone(t, ctx, s.From, s.Visibility+time.Second, "after Forward deleted it")
}

// testForwardStale: a receipt a later delivery superseded fails the delete
// alone; the body is sent and the later delivery stays its holder's.
func testForwardStale(t *testing.T, s ForwardSetup) {
	fw := s.From.(platform.Forwarder)
	ctx := ctxFor(t, s.setup())
	first := s.held(t, ctx, "job")
	if err := s.From.Extend(ctx, first.Receipt, 0); err != nil {
		t.Fatalf("Extend(0): %v", err)
	}
	second := receiveOne(t, ctx, s.From, s.setup().patience())
	sendErr, delErr := fw.Forward(ctx, s.To, []byte("reply"), first.Receipt)
	if sendErr != nil || !errors.Is(delErr, platform.ErrNotFound) {
		t.Fatalf("Forward with a stale receipt = %v, %v; want nil and ErrNotFound", sendErr, delErr)
	}
	if r := receiveOne(t, ctx, s.To, s.setup().patience()); string(r.Body) != "reply" {
		t.Fatalf("To received %q, want reply", r.Body)
	}
	stillHeld(t, ctx, s.From, second)
}

// testForwardRemoved: a destination that is gone sends nothing, and the
// delivery is deleted all the same.
func testForwardRemoved(t *testing.T, s ForwardSetup) {
	fw := s.From.(platform.Forwarder)
	ctx := ctxFor(t, s.setup())
	m := s.held(t, ctx, "job")
	sendErr, delErr := fw.Forward(ctx, s.Removed, []byte("reply"), m.Receipt)
	if !errors.Is(sendErr, platform.ErrNotFound) || delErr != nil {
		t.Fatalf("Forward to a removed queue = %v, %v; want ErrNotFound and nil", sendErr, delErr)
	}
	if err := s.From.Extend(ctx, m.Receipt, time.Minute); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Extend of the forwarded delivery: %v, want ErrNotFound (deleted)", err)
	}
}

// testForwardUnsupported: a destination From cannot reach in one step gets
// nothing, and the delivery stays held.
func testForwardUnsupported(t *testing.T, s ForwardSetup) {
	fw := s.From.(platform.Forwarder)
	ctx := ctxFor(t, s.setup())
	m := s.held(t, ctx, "job")
	sendErr, delErr := fw.Forward(ctx, s.Elsewhere, []byte("reply"), m.Receipt)
	if !errors.Is(sendErr, errors.ErrUnsupported) || delErr != nil {
		t.Fatalf("Forward elsewhere = %v, %v; want ErrUnsupported and nil", sendErr, delErr)
	}
	stillHeld(t, ctx, s.From, m)
	expectNone(t, ctx, s.Elsewhere, 200*time.Millisecond, "after a Forward it refused")
}

// testForwardTooLarge: a body over To's limit fails the whole step.
func testForwardTooLarge(t *testing.T, s ForwardSetup) {
	fw := s.From.(platform.Forwarder)
	ctx := ctxFor(t, s.setup())
	m := s.held(t, ctx, "job")
	sendErr, delErr := fw.Forward(ctx, s.To, []byte(strings.Repeat("x", s.MaxBytes+1)), m.Receipt)
	if !errors.Is(sendErr, platform.ErrTooLarge) || delErr != nil {
		t.Fatalf("Forward of %d bytes = %v, %v; want ErrTooLarge and nil", s.MaxBytes+1, sendErr, delErr)
	}
	stillHeld(t, ctx, s.From, m)
	expectNone(t, ctx, s.To, 200*time.Millisecond, "after a Forward too large")
}

// RunForwardReceiver runs the clauses of platform.ForwardReceiver, on the
// same setups as RunForwarder.
func RunForwardReceiver(t *testing.T, newSetup NewForward) {
	tests := map[string]func(t *testing.T, s ForwardSetup){
		"ForwardReceive":            testForwardReceive,
		"ForwardReceiveNothing":     testForwardReceiveNothing,
		"ForwardReceiveRemoved":     testForwardReceiveRemoved,
		"ForwardReceiveUnsupported": testForwardReceiveUnsupported,
		"ForwardReceiveTooLarge":    testForwardReceiveTooLarge,
	}
	runClauses(t, tests, newSetup, func(s ForwardSetup) error {
		if _, ok := s.From.(platform.ForwardReceiver); !ok || s.To == nil || s.Removed == nil || s.Elsewhere == nil || s.Visibility <= 0 || s.MaxBytes <= 0 {
			return fmt.Errorf("ForwardSetup needs From (a platform.ForwardReceiver, got %T), To, Removed, Elsewhere, Visibility and MaxBytes", s.From)
		}
		return nil
	})
}

// forwardReceiveOne sends job and next to s.From, receives job (sent
// first, so visible first) and returns its delivery; next stays visible.
func (s ForwardSetup) forwardReceiveOne(t *testing.T, ctx context.Context) platform.Message {
	t.Helper()
	m := s.held(t, ctx, "job")
	send(t, ctx, s.From, "next")
	return m
}

// testForwardReceive: the reply is sent, the job deleted and the next
// message delivered, as Receive would deliver it.
func testForwardReceive(t *testing.T, s ForwardSetup) {
	fr := s.From.(platform.ForwardReceiver)
	ctx := ctxFor(t, s.setup())
	m := s.forwardReceiveOne(t, ctx)
	next, sendErr, delErr := fr.ForwardReceive(ctx, s.To, []byte("reply"), m.Receipt, 10)
	if sendErr != nil || delErr != nil {
		t.Fatalf("ForwardReceive = %v, %v; want nil, nil", sendErr, delErr)
	}
	if len(next) != 1 || string(next[0].Body) != "next" || next[0].ReceiveCount != 1 || next[0].ID == "" || next[0].Receipt == "" {
		t.Fatalf("ForwardReceive took %+v, want the one message next on its first delivery", next)
	}
	if r := receiveOne(t, ctx, s.To, s.setup().patience()); string(r.Body) != "reply" {
		t.Fatalf("To received %q, want reply", r.Body)
	}
	if err := s.From.Extend(ctx, m.Receipt, time.Minute); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Extend of the forwarded delivery: %v, want ErrNotFound (deleted)", err)
	}
	// Held like a received message: hidden, and its receipt deletes it.
	expectNone(t, ctx, s.From, 200*time.Millisecond, "while ForwardReceive's delivery is held")
	if err := s.From.Delete(ctx, next[0].Receipt); err != nil {
		t.Fatalf("Delete of the delivery ForwardReceive took: %v", err)
	}
	expectNone(t, ctx, s.From, s.Visibility+time.Second, "after both were deleted")
}

// testForwardReceiveNothing: with nothing visible the step is Forward.
func testForwardReceiveNothing(t *testing.T, s ForwardSetup) {
	fr := s.From.(platform.ForwardReceiver)
	ctx := ctxFor(t, s.setup())
	m := s.held(t, ctx, "job")
	next, sendErr, delErr := fr.ForwardReceive(ctx, s.To, []byte("reply"), m.Receipt, 1)
	if sendErr != nil || delErr != nil || len(next) != 0 {
		t.Fatalf("ForwardReceive with nothing else queued = %+v, %v, %v; want nothing and nil, nil", next, sendErr, delErr)
	}
	if r := receiveOne(t, ctx, s.To, s.setup().patience()); string(r.Body) != "reply" {
		t.Fatalf("To received %q, want reply", r.Body)
	}
}

// testForwardReceiveRemoved: a destination that is gone sends nothing;
// the step is done all the same, so the next message is taken.
func testForwardReceiveRemoved(t *testing.T, s ForwardSetup) {
	fr := s.From.(platform.ForwardReceiver)
	ctx := ctxFor(t, s.setup())
	m := s.forwardReceiveOne(t, ctx)
	next, sendErr, delErr := fr.ForwardReceive(ctx, s.Removed, []byte("reply"), m.Receipt, 1)
	if !errors.Is(sendErr, platform.ErrNotFound) || delErr != nil {
		t.Fatalf("ForwardReceive to a removed queue = %v, %v; want ErrNotFound and nil", sendErr, delErr)
	}
	if len(next) != 1 || string(next[0].Body) != "next" {
		t.Fatalf("ForwardReceive to a removed queue took %+v, want next", next)
	}
}

// testForwardReceiveUnsupported: a step Forward refuses takes nothing.
func testForwardReceiveUnsupported(t *testing.T, s ForwardSetup) {
	fr := s.From.(platform.ForwardReceiver)
	ctx := ctxFor(t, s.setup())
	m := s.forwardReceiveOne(t, ctx)
	next, sendErr, delErr := fr.ForwardReceive(ctx, s.Elsewhere, []byte("reply"), m.Receipt, 1)
	if !errors.Is(sendErr, errors.ErrUnsupported) || delErr != nil || len(next) != 0 {
		t.Fatalf("ForwardReceive elsewhere = %+v, %v, %v; want nothing, ErrUnsupported and nil", next, sendErr, delErr)
	}
	stillHeld(t, ctx, s.From, m)
	if r := receiveOne(t, ctx, s.From, s.setup().patience()); string(r.Body) != "next" || r.ReceiveCount != 1 {
		t.Fatalf("after a refused ForwardReceive got %q count %d, want next on its first delivery", r.Body, r.ReceiveCount)
	}
}

// testForwardReceiveTooLarge: a step that fails takes nothing.
func testForwardReceiveTooLarge(t *testing.T, s ForwardSetup) {
	fr := s.From.(platform.ForwardReceiver)
	ctx := ctxFor(t, s.setup())
	m := s.forwardReceiveOne(t, ctx)
	next, sendErr, delErr := fr.ForwardReceive(ctx, s.To, []byte(strings.Repeat("x", s.MaxBytes+1)), m.Receipt, 1)
	if !errors.Is(sendErr, platform.ErrTooLarge) || delErr != nil || len(next) != 0 {
		t.Fatalf("ForwardReceive of %d bytes = %+v, %v, %v; want nothing, ErrTooLarge and nil", s.MaxBytes+1, next, sendErr, delErr)
	}
	stillHeld(t, ctx, s.From, m)
	if r := receiveOne(t, ctx, s.From, s.setup().patience()); string(r.Body) != "next" || r.ReceiveCount != 1 {
		t.Fatalf("after a failed ForwardReceive got %q count %d, want next on its first delivery", r.Body, r.ReceiveCount)
	}
}
