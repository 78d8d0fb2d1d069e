package sqlitequeue

import (
	"sync"

	"github.com/fsnotify/fsnotify"
)

// walWatch wakes the receivers waiting on a queue handle when any
// connection, in this process or another, commits to the file: in WAL mode
// every commit writes to "<file>-wal", and the kernel reports the write
// (inotify on Linux, kqueue on BSD and macOS). Waiting costs no CPU, and a
// message sent to an idle receiver is picked up within about a millisecond.
//
// A commit to any queue of the file wakes every waiting receiver of every
// queue in it, to look (one indexed read) and most likely wait again;
// Receive bounds how often (minLookGap). Without a watch (no kernel
// support, the per-user inotify limit reached, or the log removed after
// the last connection closed) Receive polls instead.
type walWatch struct {
	w    *fsnotify.Watcher
	done chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed at the next change, then replaced
	lost    bool          // the log file went away: the watch sees no more
}

func newWALWatch(dbPath string) (*walWatch, error) {
	// Buffered: a commit is several writes, each an event, and they are
	// taken together below.
	w, err := fsnotify.NewBufferedWatcher(64)
	if err != nil {
		return nil, err
	}
	if err := w.Add(dbPath + "-wal"); err != nil {
		w.Close()
		return nil, err
	}
	ww := &walWatch{w: w, done: make(chan struct{}), changed: make(chan struct{})}
	go ww.run()
	return ww, nil
}

func (ww *walWatch) run() {
	defer close(ww.done)
	gone := func(ev fsnotify.Event) bool { return ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) }
	for {
		select {
		case ev, ok := <-ww.w.Events:
			if !ok {
				ww.fire(true)
				return
			}
			lost := gone(ev)
			// Take the other writes of the same commit with this one.
		drain:
			for {
				select {
				case ev, ok := <-ww.w.Events:
					if !ok {
						ww.fire(true)
						return
					}
					lost = lost || gone(ev)
				default:
					break drain
				}
			}
			ww.fire(lost)
		case _, ok := <-ww.w.Errors:
			// An overflowed event queue loses events, not the watch:
			// waking everyone is the safe reading of it.
			ww.fire(!ok)
			if !ok {
				return
			}
		}
	}
}

// fire wakes the waiters; lost marks the watch as no longer seeing writes.
func (ww *walWatch) fire(lost bool) {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	if ww.lost {
		return
	}
	close(ww.changed)
	ww.changed = make(chan struct{})
	ww.lost = lost
}

// next returns a channel closed at the next change of the file, or nil
// when the watch no longer sees changes.
func (ww *walWatch) next() <-chan struct{} {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	if ww.lost {
		return nil
	}
	return ww.changed
}

func (ww *walWatch) close() {
	ww.w.Close()
	<-ww.done
}

// watch returns the handle's watch on its log, making one if there is
// none or the last one was lost; nil when none can be made (Receive then
// polls).
func (q *Queue) watch() *walWatch {
	q.walMu.Lock()
	defer q.walMu.Unlock()
	if q.wal != nil && q.wal.next() != nil {
		return q.wal
	}
	if q.wal != nil {
		q.wal.close()
		q.wal = nil
	}
	ww, err := newWALWatch(q.path)
	if err != nil {
		return nil
	}
	q.wal = ww
	return ww
}
