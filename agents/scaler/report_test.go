package scaler

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
	"github.com/facecloud/facecloud/agents/status"
)

// failingStore stands in for a status store the scaler may not write (an
// IAM policy without the grant): every Put fails.
type failingStore struct {
	platform.Store
	mu   sync.Mutex
	puts int
}

func (s *failingStore) Put(context.Context, string, []byte, string) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	return errors.New("AccessDenied")
}

func (s *failingStore) Get(context.Context, string) ([]byte, error) { return nil, platform.ErrNotFound }

func (s *failingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// untilTrue polls cond until it holds, failing t after 10 s.
func untilTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunWritesItsReport(t *testing.T) {
	ctx := context.Background()
	store, err := blobstore.OpenURL(ctx, &url.URL{Scheme: "file", Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	q, dead := &fakeQueue{}, &fakeQueue{}
	q.set(9, 2)
	dead.set(3, 0)
	f := &fakeFleet{size: platform.FleetSize{Max: 4}}
	reg := prometheus.NewRegistry()
	cfg := Config{Policy: Policy{Max: 4, TargetBacklog: 4, ScaleInCooldown: time.Second}, Interval: 100 * time.Millisecond, StatusEvery: 0}
	run := func() (stop func()) {
		l, err := New(cfg, Deps{Queue: q, Fleet: f, Status: store, DeadLetters: dead, Name: "test-scaler", Metrics: reg})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = l.Run(rctx); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := run()
	var rep status.ScalerReport
	untilTrue(t, "a report with the scale-out", func() bool {
		rep, err = status.ReadScaler(ctx, store)
		return err == nil && len(rep.Decisions) > 0 && rep.Queue.DeadLetter != nil
	})
	stop()
	d := rep.Decisions[0]
	if d.Action != ScaleOut || d.From != 0 || d.To != 3 || d.Backlog != 11 || !strings.Contains(d.Reason, "backlog 11 wants 3 workers") {
		t.Fatalf("decision %+v: want scale-out 0->3 for a backlog of 11", d)
	}
	if rep.Holder != "test-scaler" || rep.Queue.Visible != 9 || *rep.Queue.DeadLetter != 3 || rep.Fleet.Max != 4 || rep.Policy.TargetBacklog != 4 {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Steps) == 0 || rep.Steps[len(rep.Steps)-1].Backlog != 11 {
		t.Fatalf("steps %+v", rep.Steps)
	}
	if got := gathered(t, reg, "facecloud_scaler_dead_letters"); got != 3 {
		t.Fatalf("dead letters gauge %v, want 3", got)
	}

	// A new scaler (restart, or another host taking the lease) continues
	// the decisions already reported.
	reg = prometheus.NewRegistry()
	q.set(0, 0)
	f.mu.Lock()
	f.size.Desired, f.size.Running = 0, 0
	f.mu.Unlock()
	q.set(20, 0)
	stop = run()
	untilTrue(t, "the second scaler's decision after the first's", func() bool {
		rep, err = status.ReadScaler(ctx, store)
		return err == nil && len(rep.Decisions) >= 2
	})
	stop()
	if rep.Decisions[0].To != 4 || rep.Decisions[1].To != 3 {
		t.Fatalf("decisions %+v: want the new scale-out to 4 before the old one to 3", rep.Decisions)
	}
}

// gathered is the value of the unlabelled gauge name in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}

func TestScalingGoesOnWhenTheReportCannotBeWritten(t *testing.T) {
	q := &fakeQueue{}
	q.set(8, 0)
	f := &fakeFleet{size: platform.FleetSize{Max: 4}}
	st := &failingStore{}
	l, err := New(Config{Policy: DefaultPolicy, Interval: 100 * time.Millisecond}, Deps{Queue: q, Fleet: f, Status: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.Run(ctx); close(done) }()
	untilTrue(t, "several polls with failing writes", func() bool { return st.count() >= 3 })
	cancel()
	<-done
	if got := f.setCalls(); len(got) == 0 || got[0] != 2 {
		t.Fatalf("SetDesired calls %v: want scale-out to 2 despite the failing store", got)
	}
}
