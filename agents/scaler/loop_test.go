package scaler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeQueue stands in for the request queue: it reports a settable depth.
type fakeQueue struct {
	mu    sync.Mutex
	depth platform.Depth
	err   error
}

func (q *fakeQueue) Depth(context.Context) (platform.Depth, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.depth, q.err
}

func (q *fakeQueue) set(visible, inFlight int) {
	q.mu.Lock()
	q.depth = platform.Depth{Visible: visible, InFlight: inFlight}
	q.mu.Unlock()
}

// fakeFleet stands in for a worker fleet: SetDesired clamps to max and
// records every call; workers "start" at once.
type fakeFleet struct {
	mu    sync.Mutex
	size  platform.FleetSize
	calls []int
}

func (f *fakeFleet) Size(context.Context) (platform.FleetSize, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size, nil
}

func (f *fakeFleet) SetDesired(_ context.Context, n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n = min(max(n, 0), f.size.Max)
	f.calls = append(f.calls, n)
	f.size.Desired = n
	f.size.Running = n
	return n, nil
}

func (f *fakeFleet) setCalls() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.calls...)
}

func TestStepScalesOutAtFirstPoll(t *testing.T) {
	q := &fakeQueue{}
	f := &fakeFleet{size: platform.FleetSize{Max: 3}}
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := New(Config{Policy: Policy{Max: 5, TargetBacklog: 2, ScaleInCooldown: time.Second}, Interval: time.Second},
		Deps{Queue: q, Fleet: f, Now: func() time.Time { return now }, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	d, err := l.Step(ctx)
	if err != nil || d.Action != Hold {
		t.Fatalf("idle Step = %+v, %v; want hold", d, err)
	}
	q.set(5, 0)
	d, err = l.Step(ctx)
	if err != nil || d.Action != ScaleOut || d.Desired != 3 {
		t.Fatalf("burst Step = %+v, %v; want scale-out to 3 (policy wants 3)", d, err)
	}
	// Policy wants 5 but the fleet holds 3: no repeated SetDesired noise
	// beyond one call per poll, and the decision reports hold.
	q.set(10, 0)
	d, err = l.Step(ctx)
	if err != nil || d.Action != Hold || d.Desired != 3 {
		t.Fatalf("clamped Step = %+v, %v; want hold at fleet max 3", d, err)
	}
	if got := testutil.ToFloat64(l.gauges.desired); got != 3 {
		t.Errorf("desired gauge = %v, want 3", got)
	}
	if got := testutil.ToFloat64(l.gauges.decisions.WithLabelValues(ScaleOut)); got != 2 {
		t.Errorf("scale-out decisions = %v, want 2", got)
	}
	if got := f.setCalls(); len(got) != 2 || got[0] != 3 {
		t.Errorf("SetDesired calls = %v, want [3 3]", got)
	}
}

func TestStepReportsQueueErrors(t *testing.T) {
	q := &fakeQueue{err: errors.New("disk gone")}
	l, err := New(DefaultConfig, Deps{Queue: q, Fleet: &fakeFleet{size: platform.FleetSize{Max: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Step(context.Background()); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("Step = %v, want the queue's error", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	q := &fakeQueue{}
	q.set(1, 0)
	f := &fakeFleet{size: platform.FleetSize{Max: 4}}
	l, err := New(Config{Policy: DefaultPolicy, Interval: 100 * time.Millisecond}, Deps{Queue: q, Fleet: f})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for len(f.setCalls()) == 0 {
		select {
		case <-deadline:
			t.Fatal("Run made no decision")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{Policy: DefaultPolicy, Interval: time.Millisecond}, Deps{Queue: &fakeQueue{}, Fleet: &fakeFleet{}})
	if err == nil || !strings.Contains(err.Error(), "100ms..5m") {
		t.Fatalf("New = %v, want interval range error", err)
	}
}
