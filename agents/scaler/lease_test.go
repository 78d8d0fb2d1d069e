package scaler

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

// memRegister stands in for the S3 object the scalers share: an in-memory
// compare-and-swap record (S3's conditional writes are tested against moto
// in s3register). down makes every call fail, as an unreachable S3.
type memRegister struct {
	mu      sync.Mutex
	value   []byte
	version int
	reads   int
	writes  int
	down    bool
}

func (r *memRegister) Read(context.Context) ([]byte, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	if r.down {
		return nil, "", errors.New("connection refused")
	}
	if r.version == 0 {
		return nil, "", platform.ErrNotFound
	}
	return append([]byte(nil), r.value...), strconv.Itoa(r.version), nil
}

func (r *memRegister) Write(_ context.Context, v []byte, version string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if r.down {
		return "", errors.New("connection refused")
	}
	cur := ""
	if r.version > 0 {
		cur = strconv.Itoa(r.version)
	}
	if version != cur {
		return "", fmt.Errorf("version %q, record at %q: %w", version, cur, platform.ErrConflict)
	}
	r.version++
	r.value = append([]byte(nil), v...)
	return strconv.Itoa(r.version), nil
}

func (r *memRegister) Close() error { return nil }

func (r *memRegister) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads + r.writes
}

// clock is a manual clock shared by the contenders of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLeaseT(t *testing.T, reg platform.Register, holder string, c *clock) *Lease {
	t.Helper()
	l, err := NewLease(reg, holder, 10*time.Second, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func step(t *testing.T, l *Lease) bool {
	t.Helper()
	ok, err := l.Step(context.Background())
	if err != nil {
		t.Fatalf("%s: Step: %v", l.Holder(), err)
	}
	return ok
}

// TestLeaseOneLeaderAtATime steps three contenders in lock step through a
// holder that renews, then stops without releasing (killed), then a new
// holder that releases: at no instant do two of them lead, and the lease
// changes hands only as the rules say.
func TestLeaseOneLeaderAtATime(t *testing.T) {
	reg := &memRegister{}
	c := &clock{t: time.Unix(1000, 0)}
	a, b, d := newLeaseT(t, reg, "a", c), newLeaseT(t, reg, "b", c), newLeaseT(t, reg, "d", c)
	check := func(when string) {
		t.Helper()
		n := 0
		for _, l := range []*Lease{a, b, d} {
			if l.Leading() {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("%s: %d contenders lead at once", when, n)
		}
	}
	if !step(t, a) || step(t, b) || step(t, d) {
		t.Fatal("the first to step must take a lease nobody holds, and only it")
	}
	// a renews every second for a minute: nobody else ever leads.
	for i := range 60 {
		c.advance(time.Second)
		step(t, a)
		if step(t, b) || step(t, d) {
			t.Fatalf("second %d: a follower took a lease its holder renews", i)
		}
		check(fmt.Sprintf("second %d", i))
	}
	// a is killed: it steps no more. A follower takes over only after it
	// has seen the same version for the whole time to live, by which time
	// a no longer counts itself the leader.
	var took time.Duration
	for i := 1; i <= 30; i++ {
		c.advance(500 * time.Millisecond)
		lb, ld := step(t, b), step(t, d)
		check(fmt.Sprintf("%s after a stopped", time.Duration(i)*500*time.Millisecond))
		if lb || ld {
			took = time.Duration(i) * 500 * time.Millisecond
			break
		}
	}
	if took < 10*time.Second || took > 12*time.Second {
		t.Fatalf("a follower took over %s after the holder stopped, want after 10s (the time to live) and soon after", took)
	}
	if a.Leading() {
		t.Fatal("the stopped holder still counts itself the leader")
	}
	leader, other := b, d
	if d.Leading() {
		leader, other = d, b
	}
	// The new leader releases it: the other takes it at its next step.
	if err := leader.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if leader.Leading() {
		t.Fatal("leading after release")
	}
	if !step(t, other) {
		t.Fatal("a released lease was not taken at the next step")
	}
	check("after release")
	// The old holder comes back (it was only frozen): it sees someone
	// else's record and follows.
	if step(t, a) {
		t.Fatal("the old holder took the lease back")
	}
	check("old holder back")
}

// TestLeaseRenewsSparingly: a holder calls the register only when half of
// its time to live has passed, and a holder that cannot reach the register
// stops leading before a follower may take over.
func TestLeaseRenewsSparingly(t *testing.T) {
	reg := &memRegister{}
	c := &clock{t: time.Unix(1000, 0)}
	a := newLeaseT(t, reg, "a", c)
	step(t, a)
	calls := reg.calls()
	for range 40 { // 4 s of 100 ms polls: under half of 10 s
		c.advance(100 * time.Millisecond)
		step(t, a)
	}
	if reg.calls() != calls {
		t.Fatalf("%d register calls while the lease was fresh, want 0", reg.calls()-calls)
	}
	c.advance(1500 * time.Millisecond)
	step(t, a)
	if reg.calls() != calls+2 {
		t.Fatalf("renewal made %d calls, want a read and a write", reg.calls()-calls)
	}
	reg.mu.Lock()
	reg.down = true
	reg.mu.Unlock()
	lastWrite := c.now()
	for c.now().Sub(lastWrite) < 10*time.Second {
		c.advance(100 * time.Millisecond)
		leading, _ := a.Step(context.Background())
		if leading && c.now().Sub(lastWrite) >= 7500*time.Millisecond {
			t.Fatalf("still leading %s after the last renewal with the register down", c.now().Sub(lastWrite))
		}
	}
	if a.Leading() {
		t.Fatal("leading a whole time to live after the last renewal")
	}
}

// TestTwoScalersOneActs runs two scaler loops on one lease, as on two web
// hosts: only the holder sets the fleet's size; when it stops (releasing
// the lease) the other takes over and acts.
func TestTwoScalersOneActs(t *testing.T) {
	reg := &memRegister{}
	q := &fakeQueue{}
	q.set(40, 0)
	type scaler struct {
		fleet  *fakeFleet
		loop   *Loop
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(name string) *scaler {
		s := &scaler{fleet: &fakeFleet{size: platform.FleetSize{Max: 10}}, done: make(chan struct{})}
		lease, err := NewLease(reg, name, time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig
		cfg.Interval = 100 * time.Millisecond
		loop, err := New(cfg, Deps{Queue: q, Fleet: s.fleet, Lease: lease, Metrics: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		s.loop = loop
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		go func() { defer close(s.done); _ = loop.Run(ctx) }()
		return s
	}
	a := start("a")
	waitFor(t, func() bool { return len(a.fleet.setCalls()) > 0 })
	b := start("b")
	leader := func(s *scaler) float64 { return testutil.ToFloat64(s.loop.gauges.leader) }
	waitFor(t, func() bool { return leader(b) == 0 && len(b.fleet.setCalls()) == 0 })
	// b polls for several times to live and never acts while a holds it.
	for range 30 {
		q.set(40+len(a.fleet.setCalls()), 0)
		time.Sleep(100 * time.Millisecond)
		if n := len(b.fleet.setCalls()); n != 0 {
			t.Fatalf("the standing-by scaler set the fleet %d times", n)
		}
	}
	a.cancel()
	<-a.done
	waitFor(t, func() bool { return leader(b) == 1 && len(b.fleet.setCalls()) > 0 })
	b.cancel()
	<-b.done
}

// waitFor polls cond until it holds, failing after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCollectsDeadHostsReplyQueues: the acting scaler removes reply queues
// untouched for the expiry and keeps the others.
func TestCollectsDeadHostsReplyQueues(t *testing.T) {
	ctx := context.Background()
	u := &url.URL{Scheme: "sqlite", Path: filepath.ToSlash(filepath.Join(t.TempDir(), "queue.db")), RawQuery: "name=reply-"}
	fam, err := sqlitequeue.OpenFamily(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer fam.Close()
	q, addr, err := fam.Create(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	reg := prometheus.NewRegistry()
	at := time.Now()
	cfg := DefaultConfig
	loop, err := New(cfg, Deps{Queue: &fakeQueue{}, Fleet: &fakeFleet{size: platform.FleetSize{Max: 4}}, Replies: fam, Metrics: reg,
		Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	loop.collect(ctx)
	if ms, _ := fam.Members(ctx); len(ms) != 1 {
		t.Fatalf("a fresh queue was removed: members %v", ms)
	}
	at = at.Add(cfg.ReplyExpiry + time.Minute)
	loop.collect(ctx)
	if ms, _ := fam.Members(ctx); len(ms) != 0 {
		t.Fatalf("a queue untouched for over the expiry is still there: %v (%s)", ms, addr)
	}
	if n := testutil.ToFloat64(loop.gauges.collected); n != 1 {
		t.Fatalf("removed counter %v, want 1", n)
	}
}
