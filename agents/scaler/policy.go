// Package scaler sizes the worker fleet from the request queue's backlog.
//
// The decision is a pure function, Decide, of an Observation (queue depth,
// fleet size, time) and a Policy (bounds, target backlog per worker,
// cooldowns), so it is tested on its own; Loop polls the queue and the fleet
// and applies the decisions.
//
// Scale-out is immediate: the first poll that sees more backlog than the
// fleet can take raises the desired count. Scale-in is mostly not the
// scaler's job: a worker that has been idle for a while retires itself and
// lowers the desired count by one in the same step, so no busy worker is ever
// stopped. The scaler lowers the desired count only by workers that do not
// exist yet (desired above running + pending), which cannot stop anyone.
package scaler

import (
	"fmt"
	"time"
)

// Observation is what the scaler sees at one poll.
type Observation struct {
	// Visible and InFlight are the request queue's depth.
	Visible, InFlight int
	// Desired, Running and Pending are the fleet's size.
	Desired, Running, Pending int
	// Now is the time of the observation.
	Now time.Time
	// LastScaleOut and LastScaleIn are when the scaler last raised or
	// lowered the desired count (zero if never).
	LastScaleOut, LastScaleIn time.Time
}

// Policy bounds and paces the fleet.
type Policy struct {
	// Min and Max bound the desired count.
	Min, Max int
	// TargetBacklog is how many queued or in-flight requests one worker
	// should have; the fleet wants ceil(backlog / TargetBacklog) workers.
	TargetBacklog int
	// ScaleOutCooldown is the least time between two raises; 0 reacts at
	// every poll.
	ScaleOutCooldown time.Duration
	// ScaleInCooldown is the least time since the last change of either
	// kind before the scaler lowers the desired count.
	ScaleInCooldown time.Duration
}

// DefaultPolicy suits one machine with a few CPUs: up to 4 workers, each
// taking up to 4 requests of backlog, reacting at once to a burst.
var DefaultPolicy = Policy{
	Min:              0,
	Max:              4,
	TargetBacklog:    4,
	ScaleOutCooldown: 0,
	ScaleInCooldown:  10 * time.Second,
}

// Validate states the allowed ranges.
func (p Policy) Validate() error {
	switch {
	case p.Max < 1 || p.Max > 100:
		return fmt.Errorf("max workers %d out of range 1..100", p.Max)
	case p.Min < 0 || p.Min > p.Max:
		return fmt.Errorf("min workers %d out of range 0..%d (max workers)", p.Min, p.Max)
	case p.TargetBacklog < 1 || p.TargetBacklog > 10000:
		return fmt.Errorf("target backlog per worker %d out of range 1..10000", p.TargetBacklog)
	case p.ScaleOutCooldown < 0 || p.ScaleOutCooldown > time.Hour:
		return fmt.Errorf("scale-out cooldown %s out of range 0..1h", p.ScaleOutCooldown)
	case p.ScaleInCooldown < 0 || p.ScaleInCooldown > time.Hour:
		return fmt.Errorf("scale-in cooldown %s out of range 0..1h", p.ScaleInCooldown)
	}
	return nil
}

// Actions a Decision can take.
const (
	Hold     = "hold"
	ScaleOut = "scale-out"
	ScaleIn  = "scale-in"
)

// Decision is what the scaler does after one observation.
type Decision struct {
	// Action is Hold, ScaleOut or ScaleIn.
	Action string
	// Desired is the count to set; it equals the observed Desired on Hold.
	Desired int
	// Needed is the count the backlog asks for, within [Min, Max].
	Needed int
	// Reason says why, in a few words, for the log.
	Reason string
}

// Decide returns the desired worker count for obs under p. p must be valid.
func Decide(obs Observation, p Policy) Decision {
	backlog := max(obs.Visible, 0) + max(obs.InFlight, 0)
	needed := (backlog + p.TargetBacklog - 1) / p.TargetBacklog
	needed = min(max(needed, p.Min), p.Max)
	d := Decision{Action: Hold, Desired: obs.Desired, Needed: needed}

	switch {
	case obs.Desired < p.Min || obs.Desired > p.Max:
		// Out of bounds (a fresh fleet, or bounds changed): fix at once,
		// without cooldown; clamping down only drops unlaunched workers
		// when Max was lowered, which is the operator's explicit wish.
		d.Action, d.Desired = ScaleOut, max(needed, p.Min)
		if obs.Desired > p.Max {
			d.Action, d.Desired = ScaleIn, p.Max
		}
		d.Reason = fmt.Sprintf("desired %d outside %d..%d", obs.Desired, p.Min, p.Max)
	case needed > obs.Desired:
		if p.ScaleOutCooldown > 0 && !obs.LastScaleOut.IsZero() && obs.Now.Sub(obs.LastScaleOut) < p.ScaleOutCooldown {
			d.Reason = fmt.Sprintf("backlog %d wants %d workers, scale-out cooldown", backlog, needed)
			return d
		}
		d.Action, d.Desired = ScaleOut, needed
		d.Reason = fmt.Sprintf("backlog %d wants %d workers at %d each", backlog, needed, p.TargetBacklog)
	case needed < obs.Desired:
		// Only workers that do not exist yet may be dropped: lowering
		// below running+pending could stop a busy worker on some fleets.
		floor := max(needed, obs.Running+obs.Pending)
		if floor >= obs.Desired {
			d.Reason = fmt.Sprintf("backlog %d wants %d workers; idle ones retire themselves", backlog, needed)
			return d
		}
		last := obs.LastScaleOut
		if obs.LastScaleIn.After(last) {
			last = obs.LastScaleIn
		}
		if !last.IsZero() && obs.Now.Sub(last) < p.ScaleInCooldown {
			d.Reason = fmt.Sprintf("backlog %d wants %d workers, scale-in cooldown", backlog, needed)
			return d
		}
		d.Action, d.Desired = ScaleIn, floor
		d.Reason = fmt.Sprintf("backlog %d wants %d workers; dropping %d not yet started", backlog, needed, obs.Desired-floor)
	default:
		d.Reason = fmt.Sprintf("backlog %d matches %d workers", backlog, needed)
	}
	return d
}
