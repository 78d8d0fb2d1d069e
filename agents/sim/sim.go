// Package sim is a discrete-event simulator of a facecloud deployment on AWS:
// the request queue, the worker instances (launch, warm-pool start, boot,
// model load, per-request engine and storage time), the web agent's reply
// path, and the workload. It runs the real scaling code against that model:
// the scaler's Loop (and so scaler.Decide) drives the real Auto Scaling
// adapter (asgfleet) over a simulated group, and idle workers retire through
// the same adapter's Retire, terminate-with-decrement included. Only the
// worker's receive loop is modelled here, after agents/worker: it cannot run
// on a simulated clock.
//
// Every run is seeded, so a run's figures are reproducible. Costs count every
// call the agents make to S3 and SQS, not only the instances.
package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/platform/asgfleet"
	"github.com/facecloud/facecloud/agents/scaler"
	"github.com/facecloud/facecloud/agents/web"
	"github.com/facecloud/facecloud/agents/worker"
)

// Policies a run can use.
const (
	// PolicyScaler is this repository's scaler and idle-retiring workers.
	PolicyScaler = "scaler"
	// PolicyLegacy is the controller of the design facecloud replaces: it
	// polls every 30 s, asks for one instance per queued message up to 19
	// and terminates every instance when the queue shows no message.
	PolicyLegacy = "legacy"
)

// Epoch is the wall-clock time of the simulation's start, as the scaler sees it.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Options are the cheaper paths a deployment may choose (see docs/benchmarks.md).
type Options struct {
	// AnswerObjects stores each answer as a text object too (the course preset).
	AnswerObjects bool
	// NoResultObject does not store the result: no result PUT, and no
	// result to look for on a redelivery (the reply carries the result in
	// every case when it fits). Only for callers that wait.
	NoResultObject bool
	// ImageInMessage carries the image in the request message instead of the
	// input bucket: no input PUT or GET.
	ImageInMessage bool
	// Batch has each worker send the replies and delete the requests of
	// one receive in one call each, once the receive's last job is done.
	// (The web agent deletes the replies of one receive in one call in
	// every case, as agents/web does.)
	Batch bool
}

// Config is one run.
type Config struct {
	Params Params
	Prices Prices
	// Policy is PolicyScaler or PolicyLegacy.
	Policy string
	// Scaler is the scaler's policy and poll interval (PolicyScaler).
	Scaler scaler.Config
	// WarmPool is the warm pool's minimum size (0: no warm pool).
	WarmPool int
	// WarmPoolMaxPrepared caps group plus pool; 0: the group's max size.
	WarmPoolMaxPrepared int
	// Worker is the worker's configuration: Concurrency, IdleExit, ReceiveWait,
	// Visibility, Heartbeat are used.
	Worker worker.Config
	// Web is the web agent's configuration: PollInterval, PollMax,
	// ReplyBatch, ReplyWait and TextWait are used.
	Web web.Config
	// GalleryRefresh is how often each worker lists the gallery.
	GalleryRefresh time.Duration
	Options        Options
	// LegacyWorker replaces the engine time with the old design's time per
	// request (Params.Legacy.Service) and runs one job at a time.
	LegacyWorker bool
	// StartWorkers are workers already taking jobs at the start.
	StartWorkers int
	Workload     Workload
	Seed         uint64
	// SampleEvery is the chart's time step; 0 picks one from the workload's span.
	SampleEvery time.Duration
	// Horizon bounds the run after the last arrival.
	Horizon time.Duration
}

// NewConfig returns the configuration of a deployment as params describe it,
// with the agents' own defaults for everything else.
func NewConfig(p Params, prices Prices) Config {
	sc := scaler.DefaultConfig
	sc.Policy.Min = p.Deployment.MinWorkers.Value
	sc.Policy.Max = p.Deployment.MaxWorkers.Value
	wc := worker.DefaultConfig
	wc.Concurrency = p.Deployment.Concurrency.Value
	if wc.Concurrency == 0 {
		wc.Concurrency = p.Instance.VCPUs.Value
	}
	wc.IdleExit = p.Deployment.IdleExit.Value
	return Config{
		Params: p, Prices: prices, Policy: PolicyScaler, Scaler: sc,
		WarmPool: p.Deployment.WarmPool.Value, WarmPoolMaxPrepared: p.Deployment.WarmPoolMaxPrepared.Value,
		Worker: wc, Web: web.DefaultConfig(), GalleryRefresh: p.Gallery.Refresh.Value,
		Horizon: 48 * time.Hour,
	}
}

// MaxRequests bounds a workload, so a run fits in memory.
const MaxRequests = 5_000_000

// Validate states the allowed ranges.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := c.Params.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Prices.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Policy {
	case PolicyScaler:
		if err := c.Scaler.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.StartWorkers > c.Scaler.Policy.Max {
			bad("start workers %d out of range 0..%d (max workers)", c.StartWorkers, c.Scaler.Policy.Max)
		}
		if c.WarmPool < 0 || c.WarmPool > c.Scaler.Policy.Max {
			bad("warm pool %d out of range 0..%d (max workers)", c.WarmPool, c.Scaler.Policy.Max)
		}
	case PolicyLegacy:
		if c.WarmPool != 0 {
			bad("the legacy policy has no warm pool (got %d)", c.WarmPool)
		}
	default:
		bad("policy %q unknown: use %s or %s", c.Policy, PolicyScaler, PolicyLegacy)
	}
	if c.WarmPoolMaxPrepared < 0 || c.WarmPoolMaxPrepared > 1000 {
		bad("warm pool max prepared %d out of range 0..1000", c.WarmPoolMaxPrepared)
	}
	if c.StartWorkers < 0 {
		bad("start workers %d must not be negative", c.StartWorkers)
	}
	w := c.Worker
	switch {
	case w.Concurrency < 1 || w.Concurrency > 256:
		bad("worker concurrency %d out of range 1..256", w.Concurrency)
	case w.IdleExit < 0 || w.IdleExit > 24*time.Hour:
		bad("idle exit %s out of range 0..24h (0: never)", w.IdleExit)
	case w.ReceiveWait < 0 || w.ReceiveWait > 20*time.Second:
		bad("receive wait %s out of range 0..20s", w.ReceiveWait)
	case w.Heartbeat <= 0 || 2*w.Heartbeat > w.Visibility:
		bad("heartbeat %s must be above 0 and at most half the visibility %s", w.Heartbeat, w.Visibility)
	}
	if c.Web.PollInterval <= 0 || c.Web.PollMax < c.Web.PollInterval {
		bad("web poll interval %s must be above 0 and at most the poll max %s", c.Web.PollInterval, c.Web.PollMax)
	}
	if c.Web.ReplyBatch < 1 || c.Web.ReplyBatch > 10 {
		bad("web reply batch %d out of range 1..10", c.Web.ReplyBatch)
	}
	if c.Web.ReplyWait < 0 || c.Web.ReplyWait > 20*time.Second {
		bad("web reply wait %s out of range 0..20s", c.Web.ReplyWait)
	}
	if err := awsres.ValidGalleryRefresh(c.GalleryRefresh); err != nil {
		bad("%v", err)
	}
	if n := len(c.Workload.Arrivals); n < 1 || n > MaxRequests {
		bad("workload has %d requests; allowed 1..%d", n, MaxRequests)
	}
	if c.SampleEvery < 0 || (c.SampleEvery > 0 && c.SampleEvery < 10*time.Millisecond) {
		bad("sample step %s out of range 10ms.. (0: automatic)", c.SampleEvery)
	}
	if c.Horizon < time.Minute || c.Horizon > 30*24*time.Hour {
		bad("horizon %s out of range 1m..720h", c.Horizon)
	}
	return errors.Join(errs...)
}

// event is one scheduled action; seq breaks ties in scheduling order, so a
// run is deterministic.
type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// request is one request's life.
type request struct {
	arrival, enqueued, started, stored, answered time.Duration
	isStored, isAnswered, answering              bool
	receives                                     int
}

// sim is one run's state.
type sim struct {
	cfg    Config
	ctx    context.Context
	now    time.Duration
	events eventHeap
	seq    uint64

	rngIO, rngEngine, rngBoot *rand.Rand

	reqs     []request
	arrived  int
	answered int

	queue   queue
	web     *webAgent
	fleet   []*instance // every instance ever
	group   *group      // PolicyScaler
	legacy  *legacyController
	nextID  int
	sizes   sizes
	calls   counts
	samples []Sample

	engineTime  time.Duration
	redelivered int

	done        bool
	truncated   bool
	end         time.Duration
	lastDesired int
}

func (s *sim) at(t time.Duration, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	heap.Push(&s.events, event{at: t, seq: s.seq, fn: fn})
}

func (s *sim) after(d time.Duration, fn func()) { s.at(s.now+d, fn) }

// wallclock is the simulated time as the scaler and the fleet adapter see it.
func (s *sim) wallclock() time.Time { return Epoch.Add(s.now) }

func (s *sim) io(d Dist) time.Duration   { return d.Sample(s.rngIO) }
func (s *sim) boot(d Dist) time.Duration { return d.Sample(s.rngBoot) }

// Run simulates cfg and returns its result.
func Run(cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.LegacyWorker {
		cfg.Worker.Concurrency = 1
	}
	s := &sim{
		cfg:       cfg,
		ctx:       context.Background(),
		rngIO:     rand.New(rand.NewPCG(cfg.Seed, 1)),
		rngEngine: rand.New(rand.NewPCG(cfg.Seed, 2)),
		rngBoot:   rand.New(rand.NewPCG(cfg.Seed, 3)),
		reqs:      make([]request, len(cfg.Workload.Arrivals)),
	}
	var err error
	if s.sizes, err = messageSizes(cfg); err != nil {
		return nil, err
	}
	s.web = &webAgent{s: s}
	if err := s.setUp(); err != nil {
		return nil, err
	}
	for i, a := range cfg.Workload.Arrivals {
		s.reqs[i].arrival = a
		s.at(a, func() { s.web.arrive(i) })
	}
	step := cfg.SampleEvery
	if step == 0 {
		step = autoStep(cfg.Workload.Arrivals[len(cfg.Workload.Arrivals)-1])
	}
	var sample func()
	sample = func() {
		s.sample()
		s.after(step, sample)
	}
	s.at(0, sample)
	s.web.poll()

	limit := cfg.Workload.Arrivals[len(cfg.Workload.Arrivals)-1] + cfg.Horizon
	for len(s.events) > 0 && !s.done {
		e := heap.Pop(&s.events).(event)
		if e.at > limit {
			s.truncated = true
			s.now = limit
			break
		}
		s.now = e.at
		e.fn()
		if s.atRest() {
			s.done = true
		}
	}
	s.end = s.now
	s.sample()
	return s.result()
}

// autoStep keeps a chart near a thousand samples.
func autoStep(span time.Duration) time.Duration {
	step := time.Second
	for span/step > 2000 {
		step *= 2
	}
	return step
}

// setUp builds the fleet and the controller.
func (s *sim) setUp() error {
	switch s.cfg.Policy {
	case PolicyScaler:
		g := newGroup(s)
		s.group = g
		for range s.cfg.StartWorkers {
			inst := s.newInstance()
			inst.inGroup = true
			g.members = append(g.members, inst)
			s.startReady(inst)
		}
		g.desired = s.cfg.StartWorkers
		for range g.poolTarget() {
			inst := s.newInstance()
			inst.pool = true
			inst.state = stateStopped
			inst.volumeSince = 0
			g.pool = append(g.pool, inst)
		}
		fleet, err := asgfleet.New(g, asgfleet.Config{Group: g.name, Now: s.wallclock}, nil)
		if err != nil {
			return fmt.Errorf("fleet adapter: %w", err)
		}
		loop, err := scaler.New(s.cfg.Scaler, scaler.Deps{Queue: depthReader{s}, Fleet: fleet, Now: s.wallclock})
		if err != nil {
			return fmt.Errorf("scaler: %w", err)
		}
		var tick func()
		tick = func() {
			if _, err := loop.Step(s.ctx); err != nil {
				panic(fmt.Sprintf("sim: scaler step failed against the simulated group: %v", err))
			}
			s.lastDesired = g.desired
			s.after(s.cfg.Scaler.Interval, tick)
		}
		// The first poll comes half an interval in: the mean phase.
		s.at(s.cfg.Scaler.Interval/2, tick)
	case PolicyLegacy:
		s.legacy = &legacyController{s: s}
		for range s.cfg.StartWorkers {
			inst := s.newInstance()
			s.legacy.members = append(s.legacy.members, inst)
			s.startReady(inst)
		}
		s.at(s.cfg.Params.Legacy.Phase.Value, s.legacy.tick)
	}
	return nil
}

// atRest reports whether every request is answered and the fleet has
// settled: nothing starting, no worker above the minimum.
func (s *sim) atRest() bool {
	// A message may still come back to the queue after its worker was lost.
	if s.answered < len(s.reqs) || len(s.queue.visible) > 0 || s.queue.inFlight > 0 {
		return false
	}
	live := 0
	for _, inst := range s.fleet {
		switch inst.state {
		case statePending, stateBooting, stateWarming:
			return false
		case stateReady:
			live++
		}
	}
	switch {
	case s.group != nil:
		return !s.group.reconciling && live <= s.cfg.Scaler.Policy.Min && s.group.desired == live
	default:
		return live == 0
	}
}

// Sample is the state at one time, for the chart.
type Sample struct {
	T time.Duration
	// Visible and InFlight are the request queue's depth.
	Visible, InFlight int
	// Desired is the fleet's desired count (the legacy controller's last target).
	Desired int
	// Up counts instances launched and not terminated (booting or taking jobs),
	// Ready those taking jobs.
	Up, Ready int
}

func (s *sim) sample() {
	sm := Sample{T: s.now, Visible: len(s.queue.visible), InFlight: s.queue.inFlight}
	for _, inst := range s.fleet {
		if inst.pool {
			continue
		}
		switch inst.state {
		case statePending, stateBooting:
			sm.Up++
		case stateReady:
			sm.Up++
			sm.Ready++
		}
	}
	if s.group != nil {
		sm.Desired = s.group.desired
	} else if s.legacy != nil {
		sm.Desired = s.legacy.target
	}
	if n := len(s.samples); n > 0 && s.samples[n-1].T == sm.T {
		s.samples[n-1] = sm
		return
	}
	s.samples = append(s.samples, sm)
}

// ceilSeconds rounds d up to whole seconds, as SQS counts waits.
func ceilSeconds(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}
