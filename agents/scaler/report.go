package scaler

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/status"
)

// reporter keeps what the scaler tells operators — its view of the queue
// and fleet, its decisions and a short history — and writes it to the
// status store (status.ScalerKey) for the web agents' console and
// `facecloud status`. Writes go through a goroutine of their own, latest
// report first, so a slow store never delays a poll.
type reporter struct {
	store platform.Store
	dead  DepthReader
	every time.Duration
	name  string

	report    status.ScalerReport
	lastWrite time.Time
	urgent    bool // a decision changed the fleet: write at the next chance
	out       chan status.ScalerReport
}

func newReporter(store platform.Store, dead DepthReader, every time.Duration, name string) *reporter {
	return &reporter{store: store, dead: dead, every: every, name: name, out: make(chan status.ScalerReport, 1),
		report: status.ScalerReport{V: status.Version, Decisions: []status.Decision{}, Steps: []status.FleetStep{}}}
}

// seed continues the decisions and history of the report already in the
// store (a restarted or new acting scaler), so they survive a restart.
func (r *reporter) seed(ctx context.Context, now time.Time) {
	old, err := status.ReadScaler(ctx, r.store)
	if err != nil {
		return
	}
	for _, d := range old.Decisions {
		if d.At.After(now.Add(-status.Window)) && len(r.report.Decisions) < status.MaxDecisions {
			r.report.Decisions = append(r.report.Decisions, d)
		}
	}
	for _, s := range old.Steps {
		if s.T.After(now.Add(-status.Window)) {
			r.report.Steps = append(r.report.Steps, s)
		}
	}
}

// polled notes one poll and its decision.
func (r *reporter) polled(now time.Time, obs Observation, size platform.FleetSize, d Decision, set int) {
	rep := &r.report
	rep.Polled, rep.Error = now.UTC(), ""
	rep.Queue.Visible, rep.Queue.InFlight = obs.Visible, obs.InFlight
	rep.Fleet = status.Fleet{Desired: set, Running: size.Running, Pending: size.Pending, Max: size.Max}
	backlog := max(obs.Visible, 0) + max(obs.InFlight, 0)
	rep.Last = status.Decision{At: now.UTC(), Action: d.Action, From: obs.Desired, To: set, Backlog: backlog, Reason: d.Reason}
	if d.Action != Hold {
		rep.Decisions = append([]status.Decision{rep.Last}, rep.Decisions...)
		if len(rep.Decisions) > status.MaxDecisions {
			rep.Decisions = rep.Decisions[:status.MaxDecisions]
		}
		r.urgent = true
	}
	start := now.UTC().Truncate(status.StepLength)
	step := status.FleetStep{T: start, Backlog: backlog, Desired: set, Running: size.Running, Pending: size.Pending}
	if n := len(rep.Steps); n > 0 && !rep.Steps[n-1].T.Before(start) {
		step.Backlog = max(step.Backlog, rep.Steps[n-1].Backlog)
		rep.Steps[n-1] = step
	} else {
		rep.Steps = append(rep.Steps, step)
	}
	cut := 0
	for cut < len(rep.Steps) && !rep.Steps[cut].T.After(start.Add(-status.Window)) {
		cut++
	}
	rep.Steps = slices.Delete(rep.Steps, 0, cut)
}

// failed notes a poll that failed.
func (r *reporter) failed(err error) { r.report.Error = err.Error() }

// due hands the report to the writer when a decision changed the fleet,
// or StatusEvery has passed since the last write; it reads the dead-letter
// queue's depth first.
func (r *reporter) due(ctx context.Context, now time.Time, cfg Config, holder string, g *gauges, log func(string, ...any)) {
	if !r.urgent && now.Sub(r.lastWrite) < r.every {
		return
	}
	r.urgent, r.lastWrite = false, now
	if r.dead != nil {
		d, err := r.dead.Depth(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log("read the dead-letter queue's depth", "err", err)
			}
		} else {
			n := d.Visible + d.InFlight
			r.report.Queue.DeadLetter = &n
			if g != nil && g.deadLetters != nil {
				g.deadLetters.Set(float64(n))
			}
		}
	}
	rep := r.report
	rep.Holder = holder
	if rep.Holder == "" {
		rep.Holder = r.name
	}
	rep.Written = now.UTC()
	rep.EveryMS, rep.IntervalMS = r.every.Milliseconds(), cfg.Interval.Milliseconds()
	rep.Policy = status.Policy{Min: cfg.Policy.Min, Max: cfg.Policy.Max, TargetBacklog: cfg.Policy.TargetBacklog}
	rep.Decisions = slices.Clone(rep.Decisions)
	rep.Steps = slices.Clone(rep.Steps)
	if rep.Queue.DeadLetter != nil {
		n := *rep.Queue.DeadLetter
		rep.Queue.DeadLetter = &n
	}
	select {
	case <-r.out: // an unwritten older report: the new one replaces it
	default:
	}
	r.out <- rep
}

// write writes the reports handed to it until ctx ends. A failing write is
// logged at its first failure and then every ten minutes, and retried with
// the next report.
func (r *reporter) write(ctx context.Context, warn, info func(string, ...any)) {
	var failing time.Time
	for {
		var rep status.ScalerReport
		select {
		case <-ctx.Done():
			return
		case rep = <-r.out:
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := status.Put(wctx, r.store, status.ScalerKey, rep)
		cancel()
		switch {
		case err == nil && !failing.IsZero():
			info("scaler status written again", "key", status.ScalerKey)
			failing = time.Time{}
		case err == nil:
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return
		case failing.IsZero() || time.Since(failing) > 10*time.Minute:
			warn("cannot write the scaler's status for the console and facecloud status; scaling goes on", "key", status.ScalerKey, "err", err)
			failing = time.Now()
		}
	}
}
