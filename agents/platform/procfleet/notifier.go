package procfleet

import (
	"bufio"
	"context"
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
// ready, and asks to retire. It is the worker's platform.Retirer locally.
type Notifier struct {
	mu sync.Mutex
	f  *os.File
	r  *bufio.Reader
	// owed counts answers the fleet still owes to retire requests whose
	// wait was cut short; they are skipped before reading the next one.
	owed int
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
	// Non-blocking, so that the runtime's poller serves it and waiting for
	// an answer can be cut short when the context ends.
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("%s=%d: %w", FDEnv, fd, err)
	}
	f := os.NewFile(uintptr(fd), "fleet")
	return &Notifier{f: f, r: bufio.NewReader(f)}, nil
}

func (n *Notifier) sendLocked(word string) error {
	if _, err := n.f.WriteString(word + "\n"); err != nil {
		return fmt.Errorf("tell the fleet %q: %w", word, err)
	}
	return nil
}

// Ready tells the fleet the worker takes jobs now.
func (n *Notifier) Ready() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sendLocked(wordReady)
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
	if err := n.sendLocked(wordRetire); err != nil {
		return err
	}
	n.owed++
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	// A read deadline in the past wakes the read below when ctx ends.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			n.f.SetReadDeadline(time.Now())
		case <-done:
		}
	})
	defer func() {
		close(done)
		wg.Wait()
		n.f.SetReadDeadline(time.Time{})
	}()
	for {
		line, err := n.r.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for the fleet's answer: %w", context.Cause(ctx))
			}
			return fmt.Errorf("waiting for the fleet's answer: %w", err)
		}
		n.owed--
		if n.owed > 0 {
			continue // the answer to an earlier request we stopped waiting for
		}
		word, detail, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch word {
		case wordGranted:
			return nil
		case wordRefused:
			return fmt.Errorf("the fleet keeps this worker (%s): %w", detail, platform.ErrRetireRefused)
		default:
			return fmt.Errorf("unexpected answer %q from the fleet", strings.TrimSpace(line))
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
)
