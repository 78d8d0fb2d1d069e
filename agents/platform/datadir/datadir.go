// Package datadir guards a local data directory (the SQLite queue file and
// the file store of facecloud local) against two owners at once. Any number
// of workers may serve one directory, but only one process may consume its
// reply queue: two would take each other's replies and answer only through
// the slow store poll. That process (facecloud local, or facecloud web
// --data) holds an exclusive lock on DIR/facecloud.lock (flock(2), released
// by the kernel when the process ends however it ends), with its pid and
// start time written in the file so a refusal can name it.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LockFile is the lock's name inside the data directory.
const LockFile = "facecloud.lock"

// ErrInUse means another process holds the directory.
var ErrInUse = errors.New("data directory in use")

// Lock is a held lock; Release (or the end of the process) frees it.
type Lock struct{ f *os.File }

// Acquire takes dir's lock for the command named by owner (e.g. "local"),
// creating dir if needed. If another process holds it, the error wraps
// ErrInUse and names that process, its pid and the directory.
func Acquire(dir, owner string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is used by %s; stop that process first, or give this one another data directory", ErrInUse, abs(dir), describe(string(holder)))
		}
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	info := fmt.Sprintf("pid=%d command=%s since=%s\n", os.Getpid(), owner, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(info), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release frees the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}

// describe turns the lock file's "pid=... command=... since=..." into
// words.
func describe(holder string) string {
	kv := map[string]string{}
	for _, f := range strings.Fields(holder) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	pid, err := strconv.Atoi(kv["pid"])
	if err != nil {
		return "another facecloud process"
	}
	s := fmt.Sprintf("facecloud %s (pid %d", kv["command"], pid)
	if kv["since"] != "" {
		s += ", since " + kv["since"]
	}
	return s + ")"
}

func abs(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
