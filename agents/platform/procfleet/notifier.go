package procfleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/facecloud/facecloud/agents/platform"
)

// answerTimeout bounds how long Retire waits for the fleet's answer; the
// fleet answers at once unless it is gone.
const answerTimeout = 30 * time.Second

// Notifier is the worker's side of the fleet: it says when the worker is
// ready, asks to retire, and tells the worker when the fleet wants it to
// stop (Stopping). It is the worker's platform.Retirer locally.
type Notifier struct {
	f *os.File
	// mu serialises Ready and Retire.
	mu sync.Mutex
	// answers carries the fleet's answers to retire requests, read by the
	// one reader goroutine.
	answers chan string
	// owed counts answers the fleet still owes to retire requests whose
	// wait was cut short; they are skipped before reading the next one.
	owed int
	// stopping is closed when the fleet says stop, or when its end of the
	// socket is gone (the fleet's process died).
	stopping chan struct{}
	// why says which, once stopping is closed.
	why string
}

var _ platform.Retirer = (*Notifier)(nil)

// NotifierFromEnv returns the notifier of a worker started by a Fleet, or
// nil and no error when the process was not started by one.
func NotifierFromEnv() (*Notifier, error) {
	v := os.Getenv(FDEnv)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: want a file descriptor number of 3 or more", FDEnv, v)
	}
	// The descriptor is the worker's alone: processes it starts must not
	// inherit it, or they would keep the fleet's socket open after it exits.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil, fmt.Errorf("%s=%d: not an open file descriptor: %w", FDEnv, fd, err)
	}
	unix.CloseOnExec(fd)
	// Non-blocking, so that the runtime's poller serves it and Close wakes
	// the reader.
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("%s=%d: %w", FDEnv, fd, err)
	}
	n := &Notifier{f: os.NewFile(uintptr(fd), "fleet"), answers: make(chan string, 16), stopping: make(chan struct{})}
	go n.read()
	return n, nil
}

// read takes the fleet's lines: answers go to Retire, "stop" (or the end
// of the socket) closes stopping.
func (n *Notifier) read() {
	defer close(n.answers)
	s := bufio.NewScanner(n.f)
	stop := func(why string) {
		select {
		case <-n.stopping:
		default:
			n.why = why
			close(n.stopping)
		}
	}
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == wordStop {
			stop("the fleet asked it to stop")
			continue
		}
		n.answers <- line
	}
	stop("the fleet is gone")
}

// Stopping is closed when the fleet wants the worker to stop: it said so,
// or it is gone. The worker then takes no new job, finishes those in hand
// and exits.
func (n *Notifier) Stopping() <-chan struct{} { return n.stopping }

// StopReason says why Stopping was closed.
func (n *Notifier) StopReason() string {
	<-n.stopping
	return n.why
}

func (n *Notifier) send(word string) error {
	if _, err := n.f.WriteString(word + "\n"); err != nil {
		return fmt.Errorf("tell the fleet %q: %w", word, err)
	}
	return nil
}

// Ready tells the fleet the worker takes jobs now.
func (n *Notifier) Ready() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.send(wordReady)
}

// Retire asks the fleet to let the worker go and waits for its answer.
// Granted (nil), the fleet has stopped counting the worker, lowering its
// desired count by one if it still counted it, and the worker exits. At
// the fleet's minimum the answer is an error wrapping
// platform.ErrRetireRefused, and the worker keeps working.
func (n *Notifier) Retire(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.send(wordRetire); err != nil {
		return err
	}
	n.owed++
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	for {
		var line string
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the fleet's answer: %w", context.Cause(ctx))
		case l, ok := <-n.answers:
			if !ok {
				return errors.New("waiting for the fleet's answer: the fleet is gone")
			}
			line = l
		}
		n.owed--
		if n.owed > 0 {
			continue // the answer to an earlier request we stopped waiting for
		}
		word, detail, _ := strings.Cut(line, " ")
		switch word {
		case wordGranted:
			return nil
		case wordRefused:
			return fmt.Errorf("the fleet keeps this worker (%s): %w", detail, platform.ErrRetireRefused)
		default:
			return fmt.Errorf("unexpected answer %q from the fleet", line)
		}
	}
}

// Close closes the worker's end of the socket.
func (n *Notifier) Close() error { return n.f.Close() }

// The words of the protocol between a worker and its fleet, one per line.
const (
	wordReady   = "ready"   // worker → fleet: taking jobs now
	wordRetire  = "retire"  // worker → fleet: may I leave?
	wordGranted = "granted" // fleet → worker: yes, exit now
	wordRefused = "refused" // fleet → worker: no (followed by why)
	wordStop    = "stop"    // fleet → worker: finish the jobs in hand and exit
)
