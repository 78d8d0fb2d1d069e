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
	"time"

	"golang.org/x/sync/semaphore"
)

// budget is the memory all calls' uploads may hold at once: their bytes as
// they arrive and the working memory of checking their images. The
// semaphore is FIFO, so a large charge is not starved by small ones.
type budget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
}

// errShort means the budget stayed exhausted for the whole wait.
var errShort = errors.New("server short of upload memory")

// intake is one call's upload in progress: its share of the budget and the
// metered body it reads.
type intake struct {
	s    *Server
	held int64
	body *meteredBody // nil for calls without a body
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
	return in
}

// take charges n more bytes to the budget, waiting up to the budget's wait
// for others to release theirs; the wait does not count against the
// sender's transfer rate.
func (in *intake) take(ctx context.Context, n int64) error {
	b := in.s.budget
	if n > b.size {
		return fmt.Errorf("%w: %d bytes asked, %d in all", errShort, n, b.size)
	}
	if !b.sem.TryAcquire(n) {
		t0 := time.Now()
		wctx, cancel := context.WithTimeout(ctx, b.wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		if in.body != nil {
			in.body.pause(time.Since(t0))
		}
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			in.s.metrics.rejected.WithLabelValues("memory").Inc()
			return fmt.Errorf("%w: all %d bytes in use for %s", errShort, b.size, b.wait)
		}
	}
	in.held += n
	in.s.metrics.uploadBytes.Add(float64(n))
	return nil
}

// give returns n bytes of the call's share.
func (in *intake) give(n int64) {
	n = min(n, in.held)
	if n <= 0 {
		return
	}
	in.held -= n
	in.s.budget.sem.Release(n)
	in.s.metrics.uploadBytes.Sub(float64(n))
}

// release returns the call's whole share.
func (in *intake) release() { in.give(in.held) }

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
	rc       io.ReadCloser
	ctl      *http.ResponseController
	rate     int64
	grace    time.Duration
	deadline time.Time
	slow     bool
}

// errTooSlow means the sender fell below the minimum transfer rate.
var errTooSlow = errors.New("upload slower than the minimum transfer rate")

func (m *meteredBody) start(now time.Time) {
	m.deadline = now.Add(m.grace)
	m.set()
}

func (m *meteredBody) set() {
	// A server that cannot set deadlines (a test recorder) runs without
	// the rate cut; net/http's always can.
	_ = m.ctl.SetReadDeadline(m.deadline)
}

// pause moves the deadline on by d: time the server, not the sender, spent.
func (m *meteredBody) pause(d time.Duration) {
	m.deadline = m.deadline.Add(d)
	m.set()
}

func (m *meteredBody) Read(p []byte) (int, error) {
	n, err := m.rc.Read(p)
	if n > 0 {
		now := time.Now()
		m.deadline = m.deadline.Add(time.Duration(float64(n) / float64(m.rate) * float64(time.Second)))
		if limit := now.Add(m.grace); m.deadline.After(limit) {
			m.deadline = limit
		}
		m.set()
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		m.slow = true
		return n, errTooSlow
	}
	return n, err
}

func (m *meteredBody) Close() error { return m.rc.Close() }
