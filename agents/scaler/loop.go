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
}

// DefaultConfig polls every second with DefaultPolicy.
var DefaultConfig = Config{Policy: DefaultPolicy, Interval: time.Second}

// Validate states the allowed ranges.
func (c Config) Validate() error {
	if c.Interval < 100*time.Millisecond || c.Interval > 5*time.Minute {
		return fmt.Errorf("scaler interval %s out of range 100ms..5m", c.Interval)
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
}

type gauges struct {
	backlog, desired, running, pending prometheus.Gauge
	decisions                          *prometheus.CounterVec
}

// New returns a loop; it validates cfg.
func New(cfg Config, deps Deps) (*Loop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Queue == nil || deps.Fleet == nil {
		return nil, fmt.Errorf("scaler needs a queue and a fleet")
	}
	l := &Loop{cfg: cfg, queue: deps.Queue, fleet: deps.Fleet, now: deps.Now, log: deps.Logger}
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
		}
		for _, c := range []prometheus.Collector{g.backlog, g.desired, g.running, g.pending, g.decisions} {
			if err := deps.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("register scaler metrics: %w", err)
			}
		}
		l.gauges = g
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
	for {
		if _, err := l.Step(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("scaler poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			l.log.Info("scaler stopped")
			return nil
		case <-t.C:
		}
	}
}

// Step makes one observation and applies its decision.
func (l *Loop) Step(ctx context.Context) (Decision, error) {
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
	return d, nil
}
