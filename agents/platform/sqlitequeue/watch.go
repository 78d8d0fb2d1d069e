package sqlitequeue

import (
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// Each queue of a file has a doorbell: a one-byte file named after the
// queue in the directory "<file>-bells" beside it. A handle rings it (writes
// its byte) after every commit that may make a message of the queue
// visible sooner than its receivers expect: a Send, a change of visibility,
// a move to the dead-letter queue. A waiting receiver watches its queue's
// bell (inotify on Linux, kqueue on BSD and macOS), so it is woken only by
// its own queue, and only once the commit can be seen: a look after a ring
// finds the message. (Watching the file's write-ahead log instead wakes
// every receiver at every commit to any queue, and a moment before the
// commit is visible.)

// bellDir is the directory of the doorbells of the queue file at dbPath.
func bellDir(dbPath string) string { return dbPath + "-bells" }

// bellPath is the doorbell of queue name in the file at dbPath.
func bellPath(dbPath, name string) string { return filepath.Join(bellDir(dbPath), name) }

// openBell opens (creating if needed) the doorbell at path for writing.
func openBell(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	}
	return f, err
}

// bell rings one queue's doorbell.
type bell struct {
	path string

	mu sync.Mutex
	f  *os.File // opened at the first ring
}

// ring wakes the queue's waiting receivers, in every process. A ring that
// fails (the directory not writable) only delays them: they look at the
// latest after their safety-net interval.
func (b *bell) ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		f, err := openBell(b.path)
		if err != nil {
			return
		}
		b.f = f
	}
	if _, err := b.f.WriteAt([]byte{'.'}, 0); err != nil {
		// Opened anew at the next ring.
		b.f.Close()
		b.f = nil
	}
}

func (b *bell) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
}

// bellWatch wakes the receivers waiting on a queue handle when its
// doorbell rings. Waiting costs no CPU. Without a watch (no kernel
// support, the per-user inotify limit reached, or the bell removed with
// its queue) Receive polls instead.
type bellWatch struct {
	w    *fsnotify.Watcher
	done chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed at the next ring, then replaced
	lost    bool          // the bell went away: the watch sees no more
}

func newBellWatch(path string) (*bellWatch, error) {
	// The bell must exist to be watched.
	f, err := openBell(path)
	if err != nil {
		return nil, err
	}
	f.Close()
	// Buffered: rings that come together are taken together below.
	w, err := fsnotify.NewBufferedWatcher(64)
	if err != nil {
		return nil, err
	}
	if err := w.Add(path); err != nil {
		w.Close()
		return nil, err
	}
	bw := &bellWatch{w: w, done: make(chan struct{}), changed: make(chan struct{})}
	go bw.run()
	return bw, nil
}

func (bw *bellWatch) run() {
	defer close(bw.done)
	gone := func(ev fsnotify.Event) bool { return ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) }
	for {
		select {
		case ev, ok := <-bw.w.Events:
			if !ok {
				bw.fire(true)
				return
			}
			lost := gone(ev)
			// Take the rings that came with this one.
		drain:
			for {
				select {
				case ev, ok := <-bw.w.Events:
					if !ok {
						bw.fire(true)
						return
					}
					lost = lost || gone(ev)
				default:
					break drain
				}
			}
			bw.fire(lost)
		case _, ok := <-bw.w.Errors:
			// An overflowed event queue loses events, not the watch:
			// waking everyone is the safe reading of it.
			bw.fire(!ok)
			if !ok {
				return
			}
		}
	}
}

// fire wakes the waiters; lost marks the watch as no longer seeing rings.
func (bw *bellWatch) fire(lost bool) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if bw.lost {
		return
	}
	close(bw.changed)
	bw.changed = make(chan struct{})
	bw.lost = lost
}

// next returns a channel closed at the next ring, or nil when the watch no
// longer sees rings.
func (bw *bellWatch) next() <-chan struct{} {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if bw.lost {
		return nil
	}
	return bw.changed
}

func (bw *bellWatch) close() {
	bw.w.Close()
	<-bw.done
}

// watch returns the handle's watch on its doorbell, making one if there is
// none or the last one was lost; nil when none can be made (Receive then
// polls).
func (q *Queue) watch() *bellWatch {
	q.watchMu.Lock()
	defer q.watchMu.Unlock()
	if q.bellW != nil && q.bellW.next() != nil {
		return q.bellW
	}
	if q.bellW != nil {
		q.bellW.close()
		q.bellW = nil
	}
	bw, err := newBellWatch(bellPath(q.path, q.name))
	if err != nil {
		return nil
	}
	q.bellW = bw
	return bw
}
