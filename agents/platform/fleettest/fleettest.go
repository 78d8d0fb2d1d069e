// Package fleettest is the conformance suite of the Fleet port, in the
// manner of gocloud.dev's drivertest: local child processes and an EC2 Auto
// Scaling group (on moto) are held to one contract. What only the adapter
// can do (make a worker retire itself, or crash) comes in through Setup.
package fleettest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// Setup is one fresh fleet with desired 0 and no workers.
type Setup struct {
	Fleet platform.Fleet
	// Max is the fleet's maximum size; at least 2.
	Max int
	// Retire makes one running worker retire itself through its
	// platform.Retirer, as an idle worker does, and returns what Retire
	// returned to the worker. Nil skips the tests that need it.
	Retire func(ctx context.Context) error
	// Crash ends one running worker abruptly (as a crash or a lost
	// instance) without retiring it, and returns once the fleet has seen
	// it go: Size shows one fewer running, or (a fleet that replaces a
	// lost worker within the same call, as moto's Auto Scaling does) the
	// worker is no longer in the fleet. Nil skips the test.
	Crash func(ctx context.Context) error
	// Settle bounds how long a launch takes to show as running, and a
	// retirement or crash to show at all.
	Settle time.Duration
	// WithMin, for an adapter whose fleet can have a minimum size, makes
	// another fresh fleet like this one but with a minimum of min workers
	// (1 <= min < Max), with its own Retire; it arranges its cleanup as
	// NewFleet does. Nil skips the test of refused retirements.
	WithMin func(t *testing.T, min int) Setup
}

// NewFleet makes a Setup for one subtest and arranges (t.Cleanup) to close
// the fleet and remove its workers.
type NewFleet func(t *testing.T) Setup

// Run runs every clause of the Fleet contract.
func Run(t *testing.T, newFleet NewFleet) {
	tests := map[string]func(t *testing.T, s Setup){
		"Clamp":                   testClamp,
		"LaunchToDesired":         testLaunch,
		"LowerDesiredKeepsBusy":   testLowerKeeps,
		"RetireLowersDesired":     testRetire,
		"RetireRefusedAtMin":      testRetireRefused,
		"CrashIsReplaced":         testCrash,
		"CancelledContextRefused": testCancelled,
	}
	for _, name := range slices.Sorted(maps.Keys(tests)) {
		t.Run(name, func(t *testing.T) {
			s := newFleet(t)
			if s.Fleet == nil || s.Max < 2 {
				t.Fatalf("Setup needs a Fleet and Max of at least 2: %+v", s)
			}
			tests[name](t, s)
		})
	}
}

func ctxFor(t *testing.T, s Setup) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute+10*s.Settle)
	t.Cleanup(cancel)
	return ctx
}

func size(t *testing.T, ctx context.Context, f platform.Fleet) platform.FleetSize {
	t.Helper()
	sz, err := f.Size(ctx)
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	return sz
}

// waitFor polls Size until ok holds or Settle (plus a margin) has passed.
func waitFor(t *testing.T, ctx context.Context, s Setup, what string, ok func(platform.FleetSize) bool) platform.FleetSize {
	t.Helper()
	deadline := time.Now().Add(s.Settle + 5*time.Second)
	for {
		sz := size(t, ctx, s.Fleet)
		if ok(sz) {
			return sz
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: fleet is %+v", what, sz)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// holds checks that ok keeps holding for d (a worker must not come back).
func holds(t *testing.T, ctx context.Context, s Setup, d time.Duration, what string, ok func(platform.FleetSize) bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if sz := size(t, ctx, s.Fleet); !ok(sz) {
			t.Fatalf("%s no longer holds: fleet is %+v", what, sz)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func setDesired(t *testing.T, ctx context.Context, f platform.Fleet, n, want int) {
	t.Helper()
	got, err := f.SetDesired(ctx, n)
	if err != nil {
		t.Fatalf("SetDesired(%d): %v", n, err)
	}
	if got != want {
		t.Fatalf("SetDesired(%d) = %d, want %d", n, got, want)
	}
}

func running(n int) func(platform.FleetSize) bool {
	return func(sz platform.FleetSize) bool { return sz.Running == n && sz.Pending == 0 }
}

func testClamp(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	sz := size(t, ctx, s.Fleet)
	if sz != (platform.FleetSize{Max: s.Max}) {
		t.Fatalf("new fleet is %+v, want empty with Max %d", sz, s.Max)
	}
	cases := []struct{ in, want int }{{-3, 0}, {0, 0}, {s.Max + 5, s.Max}, {-1, 0}}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.in), func(t *testing.T) {
			setDesired(t, ctx, s.Fleet, c.in, c.want)
			if sz := size(t, ctx, s.Fleet); sz.Desired != c.want || sz.Max != s.Max {
				t.Fatalf("after SetDesired(%d) fleet is %+v, want Desired %d, Max %d", c.in, sz, c.want, s.Max)
			}
		})
	}
}

func testLaunch(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	setDesired(t, ctx, s.Fleet, 2, 2)
	// Launches may take Settle to show; the desired count may not.
	if sz := size(t, ctx, s.Fleet); sz.Desired != 2 {
		t.Fatalf("after SetDesired(2) fleet is %+v", sz)
	}
	waitFor(t, ctx, s, "2 running", running(2))
	// Setting the same count again launches nothing more.
	setDesired(t, ctx, s.Fleet, 2, 2)
	holds(t, ctx, s, 500*time.Millisecond, "2 workers", func(sz platform.FleetSize) bool {
		return sz.Running+sz.Pending == 2 && sz.Desired == 2
	})
}

func testLowerKeeps(t *testing.T, s Setup) {
	ctx := ctxFor(t, s)
	setDesired(t, ctx, s.Fleet, 2, 2)
	waitFor(t, ctx, s, "2 running", running(2))
	// Workers leave by retiring; lowering desired must not stop busy ones.
	setDesired(t, ctx, s.Fleet, 0, 0)
	holds(t, ctx, s, time.Second+s.Settle, "2 running after SetDesired(0)", func(sz platform.FleetSize) bool {
		return sz.Running == 2 && sz.Desired == 0
	})
}

func testRetire(t *testing.T, s Setup) {
	if s.Retire == nil {
		t.Skip("adapter set up without a way to retire a worker")
	}
	ctx := ctxFor(t, s)
	setDesired(t, ctx, s.Fleet, 2, 2)
	waitFor(t, ctx, s, "2 running", running(2))
	if err := s.Retire(ctx); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	waitFor(t, ctx, s, "desired 1 and 1 running", func(sz platform.FleetSize) bool {
		return sz.Desired == 1 && sz.Running == 1 && sz.Pending == 0
	})
	// The retired worker is not replaced.
	holds(t, ctx, s, time.Second+s.Settle, "1 worker after a retirement", func(sz platform.FleetSize) bool {
		return sz.Desired == 1 && sz.Running+sz.Pending == 1
	})
}

func testCrash(t *testing.T, s Setup) {
	if s.Crash == nil {
		t.Skip("adapter set up without a way to crash a worker")
	}
	ctx := ctxFor(t, s)
	setDesired(t, ctx, s.Fleet, 2, 2)
	waitFor(t, ctx, s, "2 running", running(2))
	if err := s.Crash(ctx); err != nil {
		t.Fatalf("Crash: %v", err)
	}
	// The crash is made good; desired stays, since the worker did not retire.
	sz := waitFor(t, ctx, s, "a replacement", running(2))
	if sz.Desired != 2 {
		t.Fatalf("after a crash and replacement desired is %d, want 2", sz.Desired)
	}
}

func testCancelled(t *testing.T, s Setup) {
	ctx, cancel := context.WithCancel(ctxFor(t, s))
	cancel()
	if _, err := s.Fleet.SetDesired(ctx, 1); err == nil {
		t.Fatal("SetDesired with a cancelled context succeeded")
	}
	if sz := size(t, ctxFor(t, s), s.Fleet); sz.Desired != 0 {
		t.Fatalf("a refused SetDesired changed desired to %d", sz.Desired)
	}
}

// testRetireRefused: a fleet at its minimum refuses a retirement with
// ErrRetireRefused and keeps the worker (running, not replaced); above the
// minimum a retirement is granted. SetDesired clamps to the minimum.
func testRetireRefused(t *testing.T, s Setup) {
	if s.WithMin == nil {
		t.Skip("adapter set up without a fleet with a minimum size")
	}
	m := s.WithMin(t, 1)
	if m.Fleet == nil || m.Retire == nil {
		t.Fatalf("WithMin needs to give a Fleet and a Retire: %+v", m)
	}
	ctx := ctxFor(t, m)
	setDesired(t, ctx, m.Fleet, 0, 1)
	setDesired(t, ctx, m.Fleet, 2, 2)
	waitFor(t, ctx, m, "2 running", running(2))
	if err := m.Retire(ctx); err != nil {
		t.Fatalf("Retire above the minimum: %v", err)
	}
	waitFor(t, ctx, m, "desired 1 and 1 running", func(sz platform.FleetSize) bool {
		return sz.Desired == 1 && sz.Running == 1 && sz.Pending == 0
	})
	err := m.Retire(ctx)
	if !errors.Is(err, platform.ErrRetireRefused) {
		t.Fatalf("Retire at the minimum = %v, want an error wrapping ErrRetireRefused", err)
	}
	// The refused worker stays: nothing leaves, nothing is launched.
	holds(t, ctx, m, time.Second+m.Settle, "1 running after a refused retirement", func(sz platform.FleetSize) bool {
		return sz.Desired == 1 && sz.Running == 1 && sz.Pending == 0
	})
}
