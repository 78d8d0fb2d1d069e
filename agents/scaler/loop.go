package scaler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/prometheus/client_golang/prometheus"
)

// DepthReader is the part of the request queue the scaler reads.
type DepthReader interface {
	Depth(ctx context.Context) (platform.Depth, error)
}

// Fleet is the part of the worker fleet the scaler drives.
type Fleet interface {
	Size(ctx context.Context) (platform.FleetSize, error)
	SetDesired(ctx context.Context, n int) (int, error)
}

// Config paces the loop.
type Config struct {
	Policy Policy
	// Interval is the time between two polls.
	Interval time.Duration
	// ReplyExpiry is how long a web host's reply queue may go untouched
	// before the scaler removes it as a dead host's (with Deps.Replies);
	// 0 never removes any.
	ReplyExpiry time.Duration
	// StatusEvery is how often, at most, the scaler writes its report to
	// Deps.Status (a decision that changes the fleet is written at once);
	// 0 writes it at every poll.
	StatusEvery time.Duration
}

// DefaultConfig polls every second with DefaultPolicy.
var DefaultConfig = Config{Policy: DefaultPolicy, Interval: time.Second, ReplyExpiry: 10 * time.Minute, StatusEvery: 5 * time.Second}

// Validate states the allowed ranges.
func (c Config) Validate() error {
	if c.Interval < 100*time.Millisecond || c.Interval > 5*time.Minute {
		return fmt.Errorf("scaler interval %s out of range 100ms..5m", c.Interval)
	}
	if c.ReplyExpiry != 0 && (c.ReplyExpiry < 5*time.Second || c.ReplyExpiry > 24*time.Hour) {
		return fmt.Errorf("reply queue expiry %s out of range 5s..24h (or 0: never)", c.ReplyExpiry)
	}
	if c.StatusEvery < 0 || c.StatusEvery > 5*time.Minute {
		return fmt.Errorf("status interval %s out of range 0..5m", c.StatusEvery)
	}
	return c.Policy.Validate()
}

// Loop polls the queue and the fleet and applies Decide's decisions.
type Loop struct {
	cfg    Config
	queue  DepthReader
	fleet  Fleet
	now    func() time.Time
	log    *slog.Logger
	gauges *gauges

	lastOut, lastIn time.Time
	lastAction      string

	lease   *Lease
	replies platform.QueueFamily
	leading bool
	polled  bool
	lastGC  time.Time

	// report is what the scaler publishes for operators; nil without
	// Deps.Status.
	report *reporter
}

// Deps are the loop's collaborators. Now and Metrics may be nil.
type Deps struct {
	Queue DepthReader
	Fleet Fleet
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics, when set, receives gauges of the fleet and the backlog and a
	// counter of decisions by action.
	Metrics prometheus.Registerer
	// Lease, when set, elects the one scaler of several that acts: the
	// others poll only the lease, so two scalers with different views of
	// the queue never set the fleet's size against each other.
	Lease *Lease
	// Replies, when set, is the web hosts' reply queue family: the acting
	// scaler removes members untouched for Config.ReplyExpiry (hosts that
	// died without removing theirs).
	Replies platform.QueueFamily
	// Status, when set, receives the scaler's report (status.ScalerKey):
	// the queue and fleet it polled, its decisions and their reasons, for
	// the web agents' console and `facecloud status`.
	Status platform.Store
	// DeadLetters, when set, is the request queue's dead-letter queue: its
	// depth goes into the report and the facecloud_scaler_dead_letters
	// gauge.
	DeadLetters DepthReader
	// Name names this scaler in its report when it holds no lease.
	Name string
}

type gauges struct {
	backlog, desired, running, pending, leader prometheus.Gauge
	decisions                                  *prometheus.CounterVec
	collected                                  prometheus.Counter
	// deadLetters is registered only with Deps.DeadLetters.
	deadLetters prometheus.Gauge
}

// New returns a loop; it validates cfg.
func New(cfg Config, deps Deps) (*Loop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Queue == nil || deps.Fleet == nil {
		return nil, fmt.Errorf("scaler needs a queue and a fleet")
	}
	l := &Loop{cfg: cfg, queue: deps.Queue, fleet: deps.Fleet, now: deps.Now, log: deps.Logger, lease: deps.Lease, replies: deps.Replies}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics != nil {
		g := &gauges{
			backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "facecloud_scaler_backlog", Help: "Requests visible or in flight in the request queue at the last poll."}),
			desired: prometheus.NewGauge(prometheus.GaugeOpts{Name: "facecloud_fleet_desired", Help: "Desired worker count after the last poll."}),
			running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "facecloud_fleet_running", Help: "Running workers at the last poll."}),
			pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "facecloud_fleet_pending", Help: "Starting workers at the last poll."}),
			decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "facecloud_scaler_decisions_total", Help: "Scaling decisions by action."},
				[]string{"action"}),
			leader:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "facecloud_scaler_leader", Help: "1 while this scaler acts (holds the lease, or runs without one), 0 while it stands by."}),
			collected: prometheus.NewCounter(prometheus.CounterOpts{Name: "facecloud_scaler_reply_queues_removed_total", Help: "Reply queues of web hosts removed after going untouched for the expiry."}),
		}
		cs := []prometheus.Collector{g.backlog, g.desired, g.running, g.pending, g.decisions, g.leader, g.collected}
		if deps.DeadLetters != nil {
			g.deadLetters = prometheus.NewGauge(prometheus.GaugeOpts{Name: "facecloud_scaler_dead_letters", Help: "Requests in the request queue's dead-letter queue at the last status report."})
			cs = append(cs, g.deadLetters)
		}
		for _, c := range cs {
			if err := deps.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("register scaler metrics: %w", err)
			}
		}
		l.gauges = g
	}
	if deps.Status != nil {
		name := deps.Name
		if name == "" {
			name = "scaler"
		}
		l.report = newReporter(deps.Status, deps.DeadLetters, cfg.StatusEvery, name)
	}
	return l, nil
}

// Run polls until ctx is done, then returns nil. Errors reading the queue or
// the fleet are logged and retried at the next poll.
func (l *Loop) Run(ctx context.Context) error {
	l.log.Info("scaler started", "interval", l.cfg.Interval, "min", l.cfg.Policy.Min, "max", l.cfg.Policy.Max,
		"target_backlog", l.cfg.Policy.TargetBacklog, "scale_in_cooldown", l.cfg.Policy.ScaleInCooldown)
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	if l.report != nil {
		l.report.seed(ctx, l.now())
		wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); l.report.write(wctx, l.log.Warn, l.log.Info) }()
		defer func() { stopWriter(); <-done }()
	}
	for {
		if l.lead(ctx) {
			if _, err := l.Step(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("scaler poll failed", "err", err)
			}
			if l.report != nil && ctx.Err() == nil {
				l.report.due(ctx, l.now(), l.cfg, l.holderName(), l.gauges, l.log.Warn)
			}
			l.collect(ctx)
		}
		select {
		case <-ctx.Done():
			if l.lease != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if err := l.lease.Release(rctx); err != nil {
					l.log.Warn("release scaler lease", "err", err)
				}
				cancel()
			}
			l.log.Info("scaler stopped")
			return nil
		case <-t.C:
		}
	}
}

// lead reports whether this scaler acts at this poll: always without a
// lease, else while it holds it. It logs each change.
func (l *Loop) lead(ctx context.Context) bool {
	leading := true
	if l.lease != nil {
		var err error
		leading, err = l.lease.Step(ctx)
		if err != nil && ctx.Err() == nil {
			l.log.Warn("scaler lease", "err", err, "leading", leading)
		}
	}
	if leading != l.leading || !l.polled {
		if leading {
			l.log.Info("scaler leading", "holder", l.holderName())
		} else if l.lease != nil {
			l.log.Info("scaler standing by", "holder", l.holderName(), "leader", l.lease.OtherHolder())
		}
	}
	l.leading, l.polled = leading, true
	if l.gauges != nil {
		l.gauges.leader.Set(map[bool]float64{true: 1}[leading])
	}
	return leading
}

func (l *Loop) holderName() string {
	if l.lease == nil {
		return ""
	}
	return l.lease.Holder()
}

// collect removes the reply queues of web hosts that stopped touching
// them, at most every tenth of the expiry.
func (l *Loop) collect(ctx context.Context) {
	now := l.now()
	if l.replies == nil || l.cfg.ReplyExpiry == 0 || (!l.lastGC.IsZero() && now.Sub(l.lastGC) < l.cfg.ReplyExpiry/10) {
		return
	}
	l.lastGC = now
	members, err := l.replies.Members(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("list reply queues", "err", err)
		}
		return
	}
	for _, m := range members {
		if now.Sub(m.Touched) < l.cfg.ReplyExpiry {
			continue
		}
		if err := l.replies.Remove(ctx, m.Address); err != nil {
			l.log.Warn("remove a dead host's reply queue", "reply_queue", m.Address, "err", err)
			continue
		}
		if l.gauges != nil {
			l.gauges.collected.Inc()
		}
		l.log.Info("reply queue of a dead host removed", "reply_queue", m.Address, "untouched_for", now.Sub(m.Touched).Round(time.Second))
	}
}

// Step makes one observation and applies its decision.
func (l *Loop) Step(ctx context.Context) (Decision, error) {
	d, err := l.step(ctx)
	if err != nil && l.report != nil {
		l.report.failed(err)
	}
	return d, err
}

func (l *Loop) step(ctx context.Context) (Decision, error) {
	depth, err := l.queue.Depth(ctx)
	if err != nil {
		return Decision{}, fmt.Errorf("read queue depth: %w", err)
	}
	size, err := l.fleet.Size(ctx)
	if err != nil {
		return Decision{}, fmt.Errorf("read fleet size: %w", err)
	}
	obs := Observation{
		Visible: depth.Visible, InFlight: depth.InFlight,
		Desired: size.Desired, Running: size.Running, Pending: size.Pending,
		Now: l.now(), LastScaleOut: l.lastOut, LastScaleIn: l.lastIn,
	}
	d := Decide(obs, l.cfg.Policy)
	if l.gauges != nil {
		l.gauges.backlog.Set(float64(depth.Visible + depth.InFlight))
		l.gauges.running.Set(float64(size.Running))
		l.gauges.pending.Set(float64(size.Pending))
		l.gauges.desired.Set(float64(size.Desired))
		l.gauges.decisions.WithLabelValues(d.Action).Inc()
	}
	if d.Action == Hold {
		if l.lastAction != Hold {
			l.log.Debug("scaler holds", "desired", d.Desired, "running", size.Running, "pending", size.Pending, "reason", d.Reason)
		}
		l.lastAction = Hold
		l.noteReport(obs, size, d)
		return d, nil
	}
	set, err := l.fleet.SetDesired(ctx, d.Desired)
	if err != nil {
		return d, fmt.Errorf("set desired workers to %d: %w", d.Desired, err)
	}
	d.Desired = set
	if set == size.Desired {
		// The fleet clamped the change away (its own maximum is lower).
		d.Action = Hold
		d.Reason += fmt.Sprintf("; fleet keeps %d", set)
		l.lastAction = Hold
		l.noteReport(obs, size, d)
		return d, nil
	}
	if d.Action == ScaleOut {
		l.lastOut = obs.Now
	} else {
		l.lastIn = obs.Now
	}
	l.lastAction = d.Action
	if l.gauges != nil {
		l.gauges.desired.Set(float64(set))
	}
	l.log.Info("scaler decision", "action", d.Action, "from", size.Desired, "to", set,
		"visible", depth.Visible, "in_flight", depth.InFlight, "running", size.Running, "pending", size.Pending, "reason", d.Reason)
	l.noteReport(obs, size, d)
	return d, nil
}

// noteReport gives one poll's observation and decision to the report.
func (l *Loop) noteReport(obs Observation, size platform.FleetSize, d Decision) {
	if l.report != nil {
		l.report.polled(obs.Now, obs, size, d, d.Desired)
	}
}
