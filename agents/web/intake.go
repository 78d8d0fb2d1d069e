// Taking uploads in within bounded memory: one byte budget across all
// calls, charged as bytes arrive and before an image is decoded, and a
// minimum transfer rate that cuts slow senders.

package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// budget is the memory all calls' uploads may hold at once: their bytes as
// they arrive and the working memory of checking their images. The
// semaphore is FIFO, so a large charge is not starved by small ones.
//
// When it runs out, the call asking does not simply wait for others to
// finish: the largest upload still arriving that holds more than the asker
// would is cut (503, retry later) to make room, so a crowd of large slow
// uploads cannot lock small ones out.
type budget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration

	mu      sync.Mutex
	readers map[*intake]struct{} // calls whose body is still arriving
}

func newBudget(size int64, wait time.Duration) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size, wait: wait, readers: map[*intake]struct{}{}}
}

// errShort means the budget stayed exhausted for the whole wait.
var errShort = errors.New("server short of upload memory")

// errEvicted means the upload was cut to make room for a smaller one.
var errEvicted = errors.New("upload cut to make room for smaller ones: server short of upload memory")

// intake is one call's upload in progress: its share of the budget and the
// metered body it reads.
type intake struct {
	s       *Server
	held    atomic.Int64
	body    *meteredBody
	evicted atomic.Bool

	mu         sync.Mutex
	cancelWait context.CancelFunc // ends a take waiting for memory
}

// newIntake meters r's body (rate cut, size limit) and opens the call's
// account with the budget; release it when the upload's bytes are dropped.
func (s *Server) newIntake(w http.ResponseWriter, r *http.Request) *intake {
	in := &intake{s: s}
	in.body = &meteredBody{
		rc:    r.Body,
		ctl:   http.NewResponseController(w),
		rate:  s.cfg.MinUploadRate,
		grace: s.cfg.UploadIdle,
	}
	in.body.start(time.Now())
	r.Body = http.MaxBytesReader(w, in.body, s.cfg.MaxBodyBytes)
	s.budget.mu.Lock()
	s.budget.readers[in] = struct{}{}
	s.budget.mu.Unlock()
	return in
}

// arrived marks the body read: the upload can no longer be cut for room.
func (in *intake) arrived() {
	in.s.budget.mu.Lock()
	delete(in.s.budget.readers, in)
	in.s.budget.mu.Unlock()
}

// take charges n more bytes to the budget. When it is exhausted it cuts
// the largest arriving upload that holds more than this call would, and
// waits up to the budget's wait for memory; the wait does not count
// against the sender's transfer rate.
func (in *intake) take(ctx context.Context, n int64) error {
	b := in.s.budget
	if n > b.size {
		return fmt.Errorf("%w: %d bytes asked, %d in all", errShort, n, b.size)
	}
	if in.evicted.Load() {
		return errEvicted
	}
	if !b.sem.TryAcquire(n) {
		b.evictFor(in, n)
		t0 := time.Now()
		wctx, cancel := context.WithTimeout(ctx, b.wait)
		in.mu.Lock()
		in.cancelWait = cancel
		in.mu.Unlock()
		err := b.sem.Acquire(wctx, n)
		cancel()
		in.body.pause(time.Since(t0))
		switch {
		case err == nil && in.evicted.Load():
			b.sem.Release(n)
			return errEvicted
		case err == nil:
		case in.evicted.Load():
			return errEvicted
		case ctx.Err() != nil:
			return context.Cause(ctx)
		default:
			in.s.metrics.rejected.WithLabelValues("memory").Inc()
			return fmt.Errorf("%w: all %d bytes in use for %s", errShort, b.size, b.wait)
		}
	}
	in.held.Add(n)
	in.s.metrics.uploadBytes.Add(float64(n))
	return nil
}

// evictFor cuts the largest arriving upload other than asker that holds
// more than asker would after taking n.
func (b *budget) evictFor(asker *intake, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var victim *intake
	most := asker.held.Load() + n
	for in := range b.readers {
		if h := in.held.Load(); in != asker && !in.evicted.Load() && h > most {
			victim, most = in, h
		}
	}
	if victim == nil {
		return
	}
	victim.evicted.Store(true)
	delete(b.readers, victim)
	victim.body.cut()
	victim.mu.Lock()
	if victim.cancelWait != nil {
		victim.cancelWait()
	}
	victim.mu.Unlock()
	victim.s.metrics.rejected.WithLabelValues("evicted").Inc()
}

// give returns n bytes of the call's share.
func (in *intake) give(n int64) {
	n = min(n, in.held.Load())
	if n <= 0 {
		return
	}
	in.held.Add(-n)
	in.s.budget.sem.Release(n)
	in.s.metrics.uploadBytes.Sub(float64(n))
}

// release returns the call's whole share.
func (in *intake) release() {
	in.arrived()
	in.give(in.held.Load())
}

// readAll reads src to its end into memory charged to the budget: the
// buffer grows by doubling, each growth charged before it is made. The
// budget counts the buffers calls hold; the garbage a growth leaves is the
// collector's, bounded by the process's memory limit (see the web
// command).
func (in *intake) readAll(ctx context.Context, src io.Reader) ([]byte, error) {
	const first = 16 << 10
	if err := in.take(ctx, first); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, first)
	for {
		if len(buf) == cap(buf) {
			if err := in.take(ctx, int64(cap(buf))); err != nil {
				return nil, err
			}
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// meteredBody is a request body that must keep arriving at a minimum
// rate: every read moves the connection's read deadline on by the time the
// bytes read are worth at that rate, but never more than grace past now.
// A sender slower than rate on average, or silent for grace, has its read
// fail with errTooSlow.
type meteredBody struct {
	rc    io.ReadCloser
	ctl   *http.ResponseController
	rate  int64
	grace time.Duration

	mu       sync.Mutex
	deadline time.Time
	cutOff   bool // cut for room: the deadline stays in the past
	// done is set once the body has been read to its end: the deadline is
	// cleared and stays so, since net/http then reads the connection in the
	// background to notice a client that hangs up, and a deadline there
	// would end the call's context while it waits for its answer. (A body
	// cut short keeps its expired deadline, so that net/http gives up
	// reading the rest and closes the connection after answering.)
	done bool
}

// errTooSlow means the sender fell below the minimum transfer rate.
var errTooSlow = errors.New("upload slower than the minimum transfer rate")

func (m *meteredBody) start(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deadline = now.Add(m.grace)
	m.set()
}

// set applies the deadline; m.mu is held. A server that cannot set
// deadlines (a test recorder) runs without the rate cut; net/http's can.
func (m *meteredBody) set() {
	if m.done {
		return
	}
	if m.cutOff {
		_ = m.ctl.SetReadDeadline(time.Unix(1, 0))
		return
	}
	_ = m.ctl.SetReadDeadline(m.deadline)
}

// pause moves the deadline on by d: time the server, not the sender, spent.
func (m *meteredBody) pause(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deadline = m.deadline.Add(d)
	m.set()
}

// cut ends the upload at once: its pending and next reads fail.
func (m *meteredBody) cut() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cutOff = true
	m.set()
}

func (m *meteredBody) Read(p []byte) (int, error) {
	n, err := m.rc.Read(p)
	m.mu.Lock()
	defer m.mu.Unlock()
	if errors.Is(err, io.EOF) && !m.cutOff {
		m.done = true
		_ = m.ctl.SetReadDeadline(time.Time{})
		return n, err
	}
	if n > 0 {
		m.deadline = m.deadline.Add(time.Duration(float64(n) / float64(m.rate) * float64(time.Second)))
		if limit := time.Now().Add(m.grace); m.deadline.After(limit) {
			m.deadline = limit
		}
		m.set()
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if m.cutOff {
			return n, errEvicted
		}
		return n, errTooSlow
	}
	return n, err
}

func (m *meteredBody) Close() error { return m.rc.Close() }
