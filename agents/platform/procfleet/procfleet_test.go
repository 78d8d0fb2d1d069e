package procfleet_test

import (
	"bufio"
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

	"golang.org/x/sys/unix"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/fleettest"
	"github.com/facecloud/facecloud/agents/platform/procfleet"
)

// The worker process of these tests is this test binary run again with
// roleEnv set. It stands in for `facecloud worker`: it says ready, records
// its pid in pidDirEnv, and then
//
//	SIGUSR1  asks to retire through its Notifier and writes the answer to
//	         a file named by its pid in answerDirEnv; granted, it exits
//	         with status 1 (as a worker whose command reports "retired" as
//	         an error would); refused, it keeps running
//	SIGUSR2  exits 0 without retiring
//	stop     (the fleet's word, or its socket closing) exits 0 (drained),
//	         unless roleEnv is "stubborn", which ignores it
const (
	roleEnv      = "PROCFLEET_TEST_ROLE"
	pidDirEnv    = "PROCFLEET_TEST_PIDS"
	answerDirEnv = "PROCFLEET_TEST_ANSWERS"
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
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM) // SIGTERM: ignored, as a worker of a fleet does
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
	stopping := n.Stopping()
	for {
		var s os.Signal
		select {
		case s = <-sigs:
		case <-stopping:
			if role != "stubborn" {
				return 0
			}
			stopping = nil
			continue
		}
		switch s {
		case syscall.SIGUSR1:
			err := n.Retire(context.Background())
			answer := "granted"
			switch {
			case errors.Is(err, platform.ErrRetireRefused):
				answer = "refused " + err.Error()
			case err != nil:
				answer = "error " + err.Error()
			}
			path := filepath.Join(os.Getenv(answerDirEnv), strconv.Itoa(os.Getpid()))
			if err := os.WriteFile(path+".tmp", []byte(answer), 0o644); err != nil {
				return 3
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				return 3
			}
			if err == nil {
				return 1
			}
		case syscall.SIGUSR2:
			return 0
		}
	}
}

type harness struct {
	fleet     *procfleet.Fleet
	pidDir    string
	answerDir string
	launches  atomic.Int32
}

func newHarness(t *testing.T, role string, max int, stop time.Duration) *harness {
	return newHarnessMin(t, role, 0, max, stop)
}

func newHarnessMin(t *testing.T, role string, min, max int, stop time.Duration) *harness {
	t.Helper()
	h := &harness{pidDir: t.TempDir(), answerDir: t.TempDir()}
	f, err := procfleet.New(procfleet.Config{
		Command: func(n int) *exec.Cmd {
			h.launches.Add(1)
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), roleEnv+"="+role, pidDirEnv+"="+h.pidDir, answerDirEnv+"="+h.answerDir)
			cmd.Stderr = os.Stderr
			return cmd
		},
		Min:         min,
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

// retireOne makes one worker ask to retire and returns the answer it got:
// nil when granted (the worker then exits and is forgotten), else an error
// that wraps platform.ErrRetireRefused if the worker's error did.
func (h *harness) retireOne(t *testing.T, ctx context.Context) error {
	pids := h.pids(t)
	if len(pids) == 0 {
		return errors.New("no worker to retire")
	}
	pid := pids[0]
	path := filepath.Join(h.answerDir, strconv.Itoa(pid))
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return err
	}
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			os.Remove(path)
			word, detail, _ := strings.Cut(string(b), " ")
			switch word {
			case "granted":
				os.Remove(filepath.Join(h.pidDir, strconv.Itoa(pid)))
				return nil
			case "refused":
				return fmt.Errorf("worker %d: %s: %w", pid, detail, platform.ErrRetireRefused)
			}
			return fmt.Errorf("worker %d: %s", pid, b)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("worker %d did not say how its retirement went: %w", pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestConformance(t *testing.T) {
	setup := func(t *testing.T, min int) fleettest.Setup {
		h := newHarnessMin(t, "worker", min, 3, 5*time.Second)
		return fleettest.Setup{
			Fleet:  h.fleet,
			Max:    3,
			Retire: func(ctx context.Context) error { return h.retireOne(t, ctx) },
			Crash: func(context.Context) error {
				if err := h.signalOne(t, syscall.SIGKILL); err != nil {
					return err
				}
				waitSize(t, h.fleet, "the crash to show", func(running, _, _ int) bool { return running < 2 })
				return nil
			},
			Settle: 5 * time.Second,
		}
	}
	fleettest.Run(t, func(t *testing.T) fleettest.Setup {
		s := setup(t, 0)
		s.WithMin = setup
		return s
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
		"min above max": {procfleet.Config{Command: cmd, Max: 2, Min: 3}, "min 3 out of range 0..2 (max)"},
		"negative min":  {procfleet.Config{Command: cmd, Max: 2, Min: -1}, "min -1 out of range 0..2 (max)"},
		"min is max":    {procfleet.Config{Command: cmd, Max: 2, Min: 2}, ""},
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

// TestRefusedWorkerKeepsRunning: at the minimum, an idle worker that asks
// to retire is told no and goes on; the fleet neither counts it out nor
// starts another, which is what kept a fleet at its minimum from
// restarting a worker every idle period.
func TestRefusedWorkerKeepsRunning(t *testing.T) {
	ctx := t.Context()
	h := newHarnessMin(t, "worker", 1, 2, 5*time.Second)
	if n, err := h.fleet.SetDesired(ctx, 0); err != nil || n != 1 {
		t.Fatalf("SetDesired(0) = %d, %v; want 1, the minimum", n, err)
	}
	waitSize(t, h.fleet, "1 running", func(r, p, d int) bool { return r == 1 && p == 0 })
	pid := h.pids(t)[0]
	for i := range 2 {
		err := h.retireOne(t, ctx)
		if !errors.Is(err, platform.ErrRetireRefused) {
			t.Fatalf("retirement %d at the minimum: %v, want ErrRetireRefused", i+1, err)
		}
	}
	time.Sleep(time.Second)
	if !alive(pid) {
		t.Fatalf("refused worker %d exited", pid)
	}
	if n := h.launches.Load(); n != 1 {
		t.Fatalf("%d launches, want 1: a refused worker is neither replaced nor joined", n)
	}
	if sz, _ := h.fleet.Size(ctx); sz.Desired != 1 || sz.Running != 1 {
		t.Fatalf("after refusals fleet is %+v, want desired 1, 1 running", sz)
	}
}

// TestExitZeroAtMinIsReplaced: a worker that exits 0 without a granted
// retirement is decided as if it had asked: at the minimum, desired stays
// and the worker is replaced.
func TestExitZeroAtMinIsReplaced(t *testing.T) {
	ctx := t.Context()
	h := newHarnessMin(t, "worker", 1, 2, 5*time.Second)
	if _, err := h.fleet.SetDesired(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitSize(t, h.fleet, "1 running", func(r, p, d int) bool { return r == 1 })
	if err := h.signalOne(t, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for h.launches.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("a worker that left at the minimum was not replaced")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitSize(t, h.fleet, "the replacement running", func(r, p, d int) bool { return r == 1 && d == 1 })
}

// TestSurplusRetirementKeepsDesired: when the scaler has lowered desired
// below the workers still busy, a worker that then retires was no longer
// counted, so desired stays where the scaler put it.
func TestSurplusRetirementKeepsDesired(t *testing.T) {
	ctx := t.Context()
	h := newHarness(t, "worker", 3, 5*time.Second)
	if _, err := h.fleet.SetDesired(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitSize(t, h.fleet, "2 running", func(r, p, d int) bool { return r == 2 })
	if _, err := h.fleet.SetDesired(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.retireOne(t, ctx); err != nil {
		t.Fatalf("retiring a surplus worker: %v", err)
	}
	waitSize(t, h.fleet, "1 running", func(r, p, d int) bool { return r == 1 })
	time.Sleep(time.Second)
	sz, _ := h.fleet.Size(ctx)
	if sz.Desired != 1 || sz.Running != 1 || h.launches.Load() != 2 {
		t.Fatalf("after a surplus retirement fleet is %+v with %d launches; want desired 1 kept, 1 running, 2 launches", sz, h.launches.Load())
	}
}

// TestNotifierSkipsStaleAnswers plays the fleet's side of the socket by
// hand: a Retire whose context ends before the answer returns at once,
// and the answer that comes later is not taken for the next request's.
func TestNotifierSkipsStaleAnswers(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	fleetEnd := os.NewFile(uintptr(fds[0]), "fleet end")
	defer fleetEnd.Close()
	t.Setenv(procfleet.FDEnv, strconv.Itoa(fds[1]))
	n, err := procfleet.NotifierFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	lines := bufio.NewScanner(fleetEnd)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := n.Retire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Retire without an answer = %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Retire took %s to give up after its context ended", took)
	}
	if !lines.Scan() || lines.Text() != "retire" {
		t.Fatalf("fleet read %q, want retire", lines.Text())
	}
	// The late answer to the first request, then a refusal of the second.
	go func() {
		if lines.Scan() && lines.Text() == "retire" {
			fleetEnd.WriteString("granted\nrefused desired 1 is the minimum\n")
		}
	}()
	err = n.Retire(t.Context())
	if !errors.Is(err, platform.ErrRetireRefused) || !strings.Contains(err.Error(), "desired 1 is the minimum") {
		t.Fatalf("second Retire = %v, want the refusal (the stale grant skipped)", err)
	}
}

// TestNotifierStopping: the worker learns that it should stop from the
// fleet's word, or from the fleet's end of the socket closing (its process
// died), and a retire request in flight then fails instead of hanging.
func TestNotifierStopping(t *testing.T) {
	tests := map[string]struct {
		fleet func(end *os.File)
		why   string
	}{
		"stop word":  {fleet: func(end *os.File) { end.WriteString("stop\n") }, why: "asked it to stop"},
		"fleet gone": {fleet: func(end *os.File) { end.Close() }, why: "the fleet is gone"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			fleetEnd := os.NewFile(uintptr(fds[0]), "fleet end")
			defer fleetEnd.Close()
			t.Setenv(procfleet.FDEnv, strconv.Itoa(fds[1]))
			n, err := procfleet.NotifierFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			select {
			case <-n.Stopping():
				t.Fatal("stopping before the fleet said anything")
			default:
			}
			tc.fleet(fleetEnd)
			select {
			case <-n.Stopping():
			case <-time.After(10 * time.Second):
				t.Fatal("not stopping 10s after the fleet said so")
			}
			if !strings.Contains(n.StopReason(), tc.why) {
				t.Errorf("stop reason %q, want %q", n.StopReason(), tc.why)
			}
		})
	}
}
