// Package procfleet is the Fleet port as child processes of the scaler, for
// the whole system on one machine (facecloud local).
//
// The fleet launches a worker process per missing worker and never stops
// one to shrink: workers leave by retiring themselves, as on AWS. A worker
// talks with its fleet over a Unix socket the fleet passes as file
// descriptor 3 (named in the environment as FACECLOUD_FLEET_FD=3), one word
// per line:
//
//	ready    worker → fleet: it takes jobs now (until then it is pending)
//	retire   worker → fleet: it is idle and asks to leave
//	granted  fleet → worker: it no longer counts, and desired has dropped
//	         by one if desired still counted it; the worker exits
//	refused  fleet → worker, followed by the reason: desired is at
//	         Config.Min, so the worker stays and keeps taking jobs
//
// The worker side is Notifier (NotifierFromEnv). A socket rather than
// stdout leaves the worker's output alone, and the fleet decides on a
// retirement before the process exits, in the same step, as the port asks.
//
// A worker that exits with status 0 without a granted retirement is handled
// as if it had asked at that moment: if the fleet would have let it go, it
// counts as retired; at Min it is replaced, since desired still says so. One
// that crashes (non-zero status or a signal) is replaced while desired says
// so. Each replacement waits a pause that doubles with each loss in a row
// (up to 30 s), so a worker that cannot start does not spin.
//
// The fleet owns its workers' shutdown: a worker started by a fleet stops
// when the fleet says "stop" over the socket (Close does), or when the
// fleet's end of the socket is gone, and not on SIGINT or SIGTERM. So
// Ctrl-C in a terminal (SIGINT to the whole process group) or a SIGTERM
// sent to every process at once reaches the fleet's owner, which drains
// first (facecloud local answers its waiting calls, with the workers still
// taking the queued jobs) and then closes the fleet. Close waits for the
// workers to finish the jobs in hand, then SIGKILLs whoever is left, and
// reaps every child. On Linux each child also gets SIGTERM if the owner
// dies without closing the fleet (PR_SET_PDEATHSIG); the closed socket is
// what stops a worker then.
package procfleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/facecloud/facecloud/agents/platform"
)

// FDEnv names the environment variable that tells a worker which file
// descriptor reaches its fleet.
const FDEnv = "FACECLOUD_FLEET_FD"

// notifyFD is the descriptor of the pipe in the child: ExtraFiles[0].
const notifyFD = 3

// Limits of Config.
const (
	MaxMax         = 1024
	MaxStopTimeout = 5 * time.Minute
	maxCrashDelay  = 30 * time.Second
)

// Config sets up a Fleet.
type Config struct {
	// Command returns a new, unstarted command for worker n (1, 2, ...,
	// counting every launch). It may set Stdout, Stderr, Env and Dir; the
	// fleet adds the notification pipe.
	Command func(n int) *exec.Cmd
	// Max is the most workers at once (1..1024).
	Max int
	// Min is the fewest (0..Max): SetDesired never sets fewer, and a
	// retirement that would take desired below Min is refused, so an idle
	// worker at the minimum keeps running instead of being replaced.
	Min int
	// StopTimeout is how long Close waits after SIGTERM before SIGKILL
	// (0..5m; 0 kills at once).
	StopTimeout time.Duration
	// CrashDelay is the pause before replacing a crashed worker, doubled
	// for each further crash in a row (0 means 500ms; at most 30s).
	CrashDelay time.Duration
	// Logger receives launches, exits and crashes; nil discards them.
	Logger *slog.Logger
}

// Validate states the allowed ranges.
func (c Config) Validate() error {
	switch {
	case c.Command == nil:
		return errors.New("fleet command is missing")
	case c.Max < 1 || c.Max > MaxMax:
		return fmt.Errorf("fleet max %d out of range 1..%d", c.Max, MaxMax)
	case c.Min < 0 || c.Min > c.Max:
		return fmt.Errorf("fleet min %d out of range 0..%d (max)", c.Min, c.Max)
	case c.StopTimeout < 0 || c.StopTimeout > MaxStopTimeout:
		return fmt.Errorf("fleet stop timeout %s out of range 0..%s", c.StopTimeout, MaxStopTimeout)
	case c.CrashDelay < 0 || c.CrashDelay > maxCrashDelay:
		return fmt.Errorf("fleet crash delay %s out of range 0..%s", c.CrashDelay, maxCrashDelay)
	}
	return nil
}

// Fleet is a set of worker processes.
type Fleet struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	desired  int
	serial   int
	workers  map[int]*worker
	closing  bool
	crashes  int       // crashes in a row, for the restart pause
	holdTill time.Time // no launches before this, after a crash
	retry    *time.Timer
	reaped   sync.WaitGroup
}

type worker struct {
	n        int
	cmd      *exec.Cmd
	conn     *os.File // the fleet's end of the worker's socket
	started  time.Time
	ready    bool
	retiring bool
}

var _ platform.Fleet = (*Fleet)(nil)

// New returns an empty fleet (desired 0).
func New(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CrashDelay == 0 {
		cfg.CrashDelay = 500 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{cfg: cfg, log: log, workers: map[int]*worker{}}, nil
}

// Size counts workers: pending until they say ready, and neither once they
// retire.
func (f *Fleet) Size(ctx context.Context) (platform.FleetSize, error) {
	if err := ctx.Err(); err != nil {
		return platform.FleetSize{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := platform.FleetSize{Desired: f.desired, Max: f.cfg.Max}
	for _, w := range f.workers {
		switch {
		case w.retiring:
		case w.ready:
			s.Running++
		default:
			s.Pending++
		}
	}
	return s, nil
}

// SetDesired sets the count to converge to, clamped to [Min, Max], and
// launches workers up to it. It never stops a worker.
func (f *Fleet) SetDesired(ctx context.Context, n int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n = max(f.cfg.Min, min(n, f.cfg.Max))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return 0, errors.New("fleet is closed")
	}
	if n != f.desired {
		f.log.Info("fleet desired", "from", f.desired, "to", n)
	}
	f.desired = n
	f.reconcileLocked()
	return n, nil
}

// reconcileLocked launches workers until those not retiring match desired.
func (f *Fleet) reconcileLocked() {
	if f.closing {
		return
	}
	if wait := time.Until(f.holdTill); wait > 0 {
		if f.retry == nil {
			f.retry = time.AfterFunc(wait, func() {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.retry = nil
				f.reconcileLocked()
			})
		}
		return
	}
	live := 0
	for _, w := range f.workers {
		if !w.retiring {
			live++
		}
	}
	for ; live < f.desired; live++ {
		if err := f.launchLocked(); err != nil {
			f.log.Error("fleet launch failed", "err", err)
			f.crashedLocked()
			f.reconcileLocked() // schedules the retry
			return
		}
	}
}

func (f *Fleet) crashedLocked() {
	delay := f.cfg.CrashDelay << min(f.crashes, 10)
	f.crashes++
	f.holdTill = time.Now().Add(min(delay, maxCrashDelay))
}

func (f *Fleet) launchLocked() error {
	f.serial++
	n := f.serial
	cmd := f.cfg.Command(n)
	if cmd == nil {
		return fmt.Errorf("worker %d: command returned nil", n)
	}
	r, w, err := socketPair()
	if err != nil {
		return fmt.Errorf("worker %d: fleet socket: %w", n, err)
	}
	cmd.ExtraFiles = []*os.File{w}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", FDEnv, notifyFD))
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("worker %d: start %s: %w", n, cmd.Path, err)
	}
	w.Close() // the child holds its end now
	wk := &worker{n: n, cmd: cmd, conn: r, started: time.Now()}
	f.workers[n] = wk
	f.log.Info("worker launched", "worker", n, "pid", cmd.Process.Pid)
	f.reaped.Add(1)
	go f.watch(wk, r)
	return nil
}

// watch reads a worker's notifications, reaps it when it exits and decides
// whether it is replaced.
func (f *Fleet) watch(wk *worker, r *os.File) {
	defer f.reaped.Done()
	read := make(chan struct{})
	go func() {
		defer close(read)
		s := bufio.NewScanner(r)
		for s.Scan() {
			f.notified(wk, r, strings.TrimSpace(s.Text()))
		}
	}()
	err := wk.cmd.Wait()
	// The socket ends when the worker exits, unless a process it started
	// holds it; read what the worker said last, but do not wait on others.
	select {
	case <-read:
	case <-time.After(time.Second):
	}
	r.Close()
	<-read
	f.mu.Lock()
	defer f.mu.Unlock()
	if wk.ready {
		f.crashes = 0 // it started fine: not a crash loop
	}
	// A worker that left on purpose without asking is decided as if it had
	// asked now, while it still counts among the workers.
	left, why := false, ""
	if err == nil && !wk.retiring && !f.closing {
		left, why = f.retireLocked(wk)
	}
	delete(f.workers, wk.n)
	switch {
	case f.closing:
		f.log.Info("worker stopped", "worker", wk.n, "status", exitStatus(err))
	case left:
		f.log.Info("worker left with status 0; counted as retired", "worker", wk.n, "desired", f.desired)
	case wk.retiring:
		f.log.Info("worker retired", "worker", wk.n, "status", exitStatus(err))
	case err == nil:
		f.log.Warn("worker left with status 0 at the fleet's minimum; replacing it", "worker", wk.n, "reason", why)
		f.crashedLocked()
		f.reconcileLocked()
	default:
		f.log.Warn("worker crashed", "worker", wk.n, "status", exitStatus(err), "ran", time.Since(wk.started).Round(time.Millisecond))
		f.crashedLocked()
		f.reconcileLocked()
	}
}

// notified handles one line from a worker, answering a retire request on
// conn.
func (f *Fleet) notified(wk *worker, conn *os.File, word string) {
	f.mu.Lock()
	answer := ""
	switch word {
	case wordReady:
		wk.ready = true
		f.log.Info("worker ready", "worker", wk.n, "after", time.Since(wk.started).Round(time.Millisecond))
	case wordRetire:
		if ok, why := f.retireLocked(wk); ok {
			answer = wordGranted
		} else {
			answer = wordRefused + " " + why
			f.log.Info("worker asked to retire; kept at the fleet's minimum", "worker", wk.n, "reason", why)
		}
	default:
		f.log.Warn("worker sent an unknown notification", "worker", wk.n, "line", word)
	}
	f.mu.Unlock()
	if answer == "" {
		return
	}
	// A worker that does not read its answers must not hold up the fleet.
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.WriteString(answer + "\n"); err != nil {
		f.log.Warn("could not answer a worker", "worker", wk.n, "answer", answer, "err", err)
	}
}

// retireLocked decides whether wk, one of f.workers, may leave. It may
// unless desired counts it and is at Min; then it is kept, and why says
// so. Let go, wk stops counting, and desired drops by one if it still
// counted wk (the workers not retiring were no more than desired), so that
// wk is not replaced; a worker beyond desired (the scaler lowered desired
// while it was busy) leaves desired as it is.
func (f *Fleet) retireLocked(wk *worker) (ok bool, why string) {
	if wk.retiring {
		return true, ""
	}
	live := 0
	for _, w := range f.workers {
		if !w.retiring {
			live++
		}
	}
	switch {
	case live > f.desired:
	case f.desired > f.cfg.Min:
		f.desired--
	default:
		return false, fmt.Sprintf("desired %d is the minimum", f.desired)
	}
	wk.retiring = true
	f.log.Info("worker retiring", "worker", wk.n, "desired", f.desired)
	return true, ""
}

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}

// Close stops every worker: it tells each over its socket to stop (finish
// the jobs in hand and exit), SIGKILLs those still running after
// StopTimeout, and returns once all are reaped.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		f.reaped.Wait()
		return nil
	}
	f.closing = true
	if f.retry != nil {
		f.retry.Stop()
	}
	conns := make([]*os.File, 0, len(f.workers))
	for _, w := range f.workers {
		conns = append(conns, w.conn)
	}
	f.mu.Unlock()
	for _, c := range conns {
		// A worker that is gone or does not read must not hold up the rest.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.WriteString(wordStop + "\n")
	}
	done := make(chan struct{})
	go func() {
		f.reaped.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(f.cfg.StopTimeout):
	}
	f.mu.Lock()
	left := len(f.workers)
	for _, w := range f.workers {
		w.cmd.Process.Kill()
	}
	f.mu.Unlock()
	<-done
	if left > 0 {
		return fmt.Errorf("fleet close: %d worker(s) killed after not stopping within %s", left, f.cfg.StopTimeout)
	}
	return nil
}

// socketPair returns the fleet's end of a new worker socket, served by the
// runtime's poller (so Close wakes a blocked read), and the worker's end,
// to pass as a child's descriptor.
func socketPair() (fleetEnd, workerEnd *os.File, err error) {
	// Under ForkLock, so that no child started meanwhile inherits them
	// before they are marked close-on-exec.
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "worker socket"), os.NewFile(uintptr(fds[1]), "fleet socket"), nil
}
