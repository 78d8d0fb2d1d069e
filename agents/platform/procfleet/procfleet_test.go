package procfleet_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform/fleettest"
	"github.com/facecloud/facecloud/agents/platform/procfleet"
)

// The worker process of these tests is this test binary run again with
// roleEnv set. It stands in for `facecloud worker`: it says ready, records
// its pid in pidDirEnv, and then
//
//	SIGUSR1  retires through its Notifier, then exits with status 1 (as a
//	         worker whose command reports "retired" as an error would)
//	SIGUSR2  exits 0 without retiring
//	SIGTERM  exits 0 (drained), unless roleEnv is "stubborn", which
//	         ignores it
const (
	roleEnv   = "PROCFLEET_TEST_ROLE"
	pidDirEnv = "PROCFLEET_TEST_PIDS"
)

func TestHelperProcess(t *testing.T) {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	os.Exit(worker(role))
}

func worker(role string) int {
	if role == "fail" {
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM)
	n, err := procfleet.NotifierFromEnv()
	if err != nil || n == nil {
		fmt.Fprintln(os.Stderr, "worker: no fleet:", err)
		return 3
	}
	time.Sleep(50 * time.Millisecond) // pending for a moment
	pidFile := filepath.Join(os.Getenv(pidDirEnv), strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(pidFile, nil, 0o644); err != nil {
		return 3
	}
	if err := n.Ready(); err != nil {
		return 3
	}
	for s := range sigs {
		switch s {
		case syscall.SIGUSR1:
			if err := n.Retire(context.Background()); err != nil {
				return 3
			}
			return 1
		case syscall.SIGUSR2:
			return 0
		case syscall.SIGTERM:
			if role != "stubborn" {
				return 0
			}
		}
	}
	return 0
}

type harness struct {
	fleet    *procfleet.Fleet
	pidDir   string
	launches atomic.Int32
}

func newHarness(t *testing.T, role string, max int, stop time.Duration) *harness {
	t.Helper()
	h := &harness{pidDir: t.TempDir()}
	f, err := procfleet.New(procfleet.Config{
		Command: func(n int) *exec.Cmd {
			h.launches.Add(1)
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), roleEnv+"="+role, pidDirEnv+"="+h.pidDir)
			cmd.Stderr = os.Stderr
			return cmd
		},
		Max:         max,
		StopTimeout: stop,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.fleet = f
	t.Cleanup(func() { f.Close() })
	return h
}

// testWriter sends the fleet's log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// pids lists the workers that said ready and were not signalled yet.
func (h *harness) pids(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir(h.pidDir)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signalOne sends sig to one worker and forgets it.
func (h *harness) signalOne(t *testing.T, sig syscall.Signal) error {
	pids := h.pids(t)
	if len(pids) == 0 {
		return errors.New("no worker to signal")
	}
	os.Remove(filepath.Join(h.pidDir, strconv.Itoa(pids[0])))
	return syscall.Kill(pids[0], sig)
}

func TestConformance(t *testing.T) {
	fleettest.Run(t, func(t *testing.T) fleettest.Setup {
		h := newHarness(t, "worker", 3, 5*time.Second)
		return fleettest.Setup{
			Fleet:  h.fleet,
			Max:    3,
			Retire: func(context.Context) error { return h.signalOne(t, syscall.SIGUSR1) },
			Crash:  func(context.Context) error { return h.signalOne(t, syscall.SIGKILL) },
			Settle: 5 * time.Second,
		}
	})
}

func waitSize(t *testing.T, f *procfleet.Fleet, what string, ok func(running, pending, desired int) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		sz, err := f.Size(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ok(sz.Running, sz.Pending, sz.Desired) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %+v", what, sz)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestExitZeroCountsAsRetired(t *testing.T) {
	h := newHarness(t, "worker", 2, 5*time.Second)
	if _, err := h.fleet.SetDesired(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	waitSize(t, h.fleet, "2 running", func(r, p, d int) bool { return r == 2 })
	if err := h.signalOne(t, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitSize(t, h.fleet, "desired 1", func(r, p, d int) bool { return d == 1 && r == 1 })
	time.Sleep(time.Second)
	if n := h.launches.Load(); n != 2 {
		t.Fatalf("%d launches, want 2: a worker that exits 0 is not replaced", n)
	}
}

func TestCloseStopsWorkers(t *testing.T) {
	h := newHarness(t, "worker", 3, 10*time.Second)
	if _, err := h.fleet.SetDesired(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	waitSize(t, h.fleet, "3 running", func(r, p, d int) bool { return r == 3 })
	pids := h.pids(t)
	if err := h.fleet.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("worker %d still exists after Close (not stopped or not reaped)", pid)
		}
	}
	if _, err := h.fleet.SetDesired(context.Background(), 1); err == nil {
		t.Fatal("SetDesired after Close succeeded")
	}
	if err := h.fleet.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseKillsStubbornWorkers(t *testing.T) {
	h := newHarness(t, "stubborn", 2, 300*time.Millisecond)
	if _, err := h.fleet.SetDesired(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	waitSize(t, h.fleet, "2 running", func(r, p, d int) bool { return r == 2 })
	pids := h.pids(t)
	err := h.fleet.Close()
	if err == nil || !strings.Contains(err.Error(), "2 worker(s) killed") {
		t.Fatalf("Close error = %v, want it to report 2 workers killed", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("stubborn worker %d survived Close", pid)
		}
	}
}

// TestCrashLoopBacksOff: a worker that cannot start is retried with a
// pause that grows (0.5 s, then 1 s), not in a tight loop, and desired is
// kept. Only lower bounds are checked: a slow machine makes pauses longer.
func TestCrashLoopBacksOff(t *testing.T) {
	var mu sync.Mutex
	var starts []time.Time
	f, err := procfleet.New(procfleet.Config{
		Command: func(int) *exec.Cmd {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), roleEnv+"=fail")
			return cmd
		},
		Max:        1,
		CrashDelay: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.SetDesired(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	launches := func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(starts)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(launches()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d launches of a failing worker in 30 s, want it retried", len(launches()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := launches()
	if gap := s[1].Sub(s[0]); gap < 500*time.Millisecond {
		t.Errorf("second launch %s after the first, want at least the 500ms crash delay", gap)
	}
	if gap := s[2].Sub(s[1]); gap < time.Second {
		t.Errorf("third launch %s after the second, want at least 1s (doubled)", gap)
	}
	sz, _ := f.Size(context.Background())
	if sz.Desired != 1 {
		t.Fatalf("desired %d after crashes, want 1 kept", sz.Desired)
	}
}

func TestStartFailureIsRetried(t *testing.T) {
	var launches atomic.Int32
	missing := filepath.Join(t.TempDir(), "no-such-worker")
	f, err := procfleet.New(procfleet.Config{
		Command: func(int) *exec.Cmd {
			launches.Add(1)
			return exec.Command(missing)
		},
		Max: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.SetDesired(context.Background(), 1); err != nil || n != 1 {
		t.Fatalf("SetDesired = %d, %v; a failed launch is the fleet's to retry, not the caller's error", n, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for launches.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("a launch that failed to start was not retried")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	cmd := func(int) *exec.Cmd { return exec.Command("true") }
	tests := map[string]struct {
		cfg  procfleet.Config
		want string
	}{
		"no command":    {procfleet.Config{Max: 1}, "command is missing"},
		"max 0":         {procfleet.Config{Command: cmd}, "max 0 out of range 1..1024"},
		"max too big":   {procfleet.Config{Command: cmd, Max: 5000}, "max 5000 out of range 1..1024"},
		"negative stop": {procfleet.Config{Command: cmd, Max: 1, StopTimeout: -1}, "stop timeout -1ns out of range 0..5m0s"},
		"crash delay":   {procfleet.Config{Command: cmd, Max: 1, CrashDelay: time.Hour}, "crash delay 1h0m0s out of range 0..30s"},
		"ok":            {procfleet.Config{Command: cmd, Max: 1}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := procfleet.New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestNotifierFromEnv(t *testing.T) {
	t.Setenv(procfleet.FDEnv, "")
	if n, err := procfleet.NotifierFromEnv(); n != nil || err != nil {
		t.Fatalf("outside a fleet: %v, %v; want nil, nil", n, err)
	}
	t.Setenv(procfleet.FDEnv, "987")
	if _, err := procfleet.NotifierFromEnv(); err == nil || !strings.Contains(err.Error(), "not an open file descriptor") {
		t.Fatalf("closed fd: error %v", err)
	}
	t.Setenv(procfleet.FDEnv, "two")
	if _, err := procfleet.NotifierFromEnv(); err == nil || !strings.Contains(err.Error(), "want a file descriptor number") {
		t.Fatalf("bad fd: error %v", err)
	}
}
