package procfleet

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/facecloud/facecloud/agents/platform"
)

// Notifier is the worker's side of the fleet: it says when the worker is
// ready and when it retires. It is the worker's platform.Retirer locally.
type Notifier struct {
	mu sync.Mutex
	f  *os.File
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
	// inherit it, or they would keep the fleet's pipe open after it exits.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil, fmt.Errorf("%s=%d: not an open file descriptor: %w", FDEnv, fd, err)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "fleet")
	return &Notifier{f: f}, nil
}

func (n *Notifier) send(word string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.f.WriteString(word + "\n"); err != nil {
		return fmt.Errorf("tell the fleet %q: %w", word, err)
	}
	return nil
}

// Ready tells the fleet the worker takes jobs now.
func (n *Notifier) Ready() error { return n.send("ready") }

// Retire tells the fleet the worker is leaving, which lowers the fleet's
// desired count by one; the worker then exits.
func (n *Notifier) Retire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return n.send("retire")
}

// Close closes the worker's end of the pipe.
func (n *Notifier) Close() error { return n.f.Close() }
