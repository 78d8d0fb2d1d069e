package scaler

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	p := Policy{Min: 0, Max: 10, TargetBacklog: 4, ScaleInCooldown: 10 * time.Second}
	tests := map[string]struct {
		obs    Observation
		policy Policy
		action string
		want   int
	}{
		"no backlog, empty fleet holds": {
			obs: Observation{Now: t0}, policy: p, action: Hold, want: 0,
		},
		"no backlog, min 2 raises a fresh fleet to min": {
			obs: Observation{Now: t0}, policy: Policy{Min: 2, Max: 10, TargetBacklog: 4}, action: ScaleOut, want: 2,
		},
		"one request from zero starts one worker": {
			obs: Observation{Visible: 1, Now: t0}, policy: p, action: ScaleOut, want: 1,
		},
		"exactly target backlog wants one worker": {
			obs: Observation{Visible: 4, Desired: 1, Running: 1, Now: t0}, policy: p, action: Hold, want: 1,
		},
		"one over target wants two": {
			obs: Observation{Visible: 3, InFlight: 2, Desired: 1, Running: 1, Now: t0}, policy: p, action: ScaleOut, want: 2,
		},
		"burst is clamped to max": {
			obs: Observation{Visible: 1000, Now: t0}, policy: p, action: ScaleOut, want: 10,
		},
		"in-flight work counts as backlog": {
			obs: Observation{InFlight: 8, Desired: 2, Running: 2, Now: t0}, policy: p, action: Hold, want: 2,
		},
		"no backlog with running workers holds: they retire themselves": {
			obs: Observation{Desired: 3, Running: 3, Now: t0}, policy: p, action: Hold, want: 3,
		},
		"drops unstarted workers only": {
			obs:    Observation{Visible: 1, Desired: 6, Running: 2, Pending: 1, Now: t0, LastScaleOut: t0.Add(-time.Minute)},
			policy: p, action: ScaleIn, want: 3,
		},
		"drops unstarted down to needed": {
			obs:    Observation{Visible: 12, Desired: 8, Running: 1, Now: t0, LastScaleOut: t0.Add(-time.Minute)},
			policy: p, action: ScaleIn, want: 3,
		},
		"scale-in waits for cooldown": {
			obs:    Observation{Desired: 6, Running: 2, Now: t0, LastScaleOut: t0.Add(-9 * time.Second)},
			policy: p, action: Hold, want: 6,
		},
		"scale-in at the cooldown boundary": {
			obs:    Observation{Desired: 6, Running: 2, Now: t0, LastScaleOut: t0.Add(-10 * time.Second)},
			policy: p, action: ScaleIn, want: 2,
		},
		"scale-in cooldown counts from the last scale-in too": {
			obs:    Observation{Desired: 6, Running: 2, Now: t0, LastScaleOut: t0.Add(-time.Hour), LastScaleIn: t0.Add(-time.Second)},
			policy: p, action: Hold, want: 6,
		},
		"scale-out waits for its cooldown": {
			obs:    Observation{Visible: 20, Desired: 1, Running: 1, Now: t0, LastScaleOut: t0.Add(-time.Second)},
			policy: Policy{Max: 10, TargetBacklog: 4, ScaleOutCooldown: 5 * time.Second}, action: Hold, want: 1,
		},
		"scale-out right at its cooldown boundary": {
			obs:    Observation{Visible: 20, Desired: 1, Running: 1, Now: t0, LastScaleOut: t0.Add(-5 * time.Second)},
			policy: Policy{Max: 10, TargetBacklog: 4, ScaleOutCooldown: 5 * time.Second}, action: ScaleOut, want: 5,
		},
		"desired above a lowered max is clamped": {
			obs:    Observation{Visible: 100, Desired: 12, Running: 12, Now: t0},
			policy: p, action: ScaleIn, want: 10,
		},
		"min equals max pins the fleet": {
			obs:    Observation{Visible: 100, Desired: 3, Running: 3, Now: t0},
			policy: Policy{Min: 3, Max: 3, TargetBacklog: 1}, action: Hold, want: 3,
		},
		"negative depth from an approximate queue counts as zero": {
			obs: Observation{Visible: -1, InFlight: -3, Now: t0}, policy: p, action: Hold, want: 0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.policy.Validate(); err != nil {
				t.Fatalf("policy invalid: %v", err)
			}
			d := Decide(tc.obs, tc.policy)
			if d.Action != tc.action || d.Desired != tc.want {
				t.Errorf("Decide = %s to %d (%s), want %s to %d", d.Action, d.Desired, d.Reason, tc.action, tc.want)
			}
			if d.Reason == "" {
				t.Error("decision has no reason")
			}
			if d.Desired < tc.policy.Min || d.Desired > tc.policy.Max {
				t.Errorf("desired %d outside policy bounds %d..%d", d.Desired, tc.policy.Min, tc.policy.Max)
			}
		})
	}
}

// TestDecideNeverStopsExistingWorkers checks the scale-in rule over a grid of
// observations: the desired count never drops below running + pending.
func TestDecideNeverStopsExistingWorkers(t *testing.T) {
	p := Policy{Min: 0, Max: 8, TargetBacklog: 3}
	now := time.Now()
	for backlog := 0; backlog < 30; backlog++ {
		for desired := 0; desired <= 8; desired++ {
			for running := 0; running <= desired; running++ {
				for pending := 0; running+pending <= desired; pending++ {
					obs := Observation{Visible: backlog, Desired: desired, Running: running, Pending: pending, Now: now}
					d := Decide(obs, p)
					if d.Desired < running+pending {
						t.Fatalf("%+v: desired %d below running+pending %d", obs, d.Desired, running+pending)
					}
				}
			}
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := map[string]struct {
		p    Policy
		want string
	}{
		"default":          {p: DefaultPolicy},
		"max zero":         {p: Policy{Max: 0, TargetBacklog: 1}, want: "out of range 1..100"},
		"max too big":      {p: Policy{Max: 101, TargetBacklog: 1}, want: "out of range 1..100"},
		"min above max":    {p: Policy{Min: 5, Max: 4, TargetBacklog: 1}, want: "out of range 0..4"},
		"negative min":     {p: Policy{Min: -1, Max: 4, TargetBacklog: 1}, want: "out of range 0..4"},
		"zero backlog":     {p: Policy{Max: 4}, want: "out of range 1..10000"},
		"negative cooling": {p: Policy{Max: 4, TargetBacklog: 1, ScaleInCooldown: -time.Second}, want: "out of range 0..1h"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
