package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// waiters maps a job id to the calls waiting for it. A reply wakes its
// waiters with the Result it carries (nil when it carries none, and they
// read the Result from the output store, which stays the record).
type waiters struct {
	mu sync.Mutex
	m  map[string]map[chan *job.Result]struct{}
}

// add registers a waiter for id; call the returned function when done.
func (w *waiters) add(id string) (<-chan *job.Result, func()) {
	ch := make(chan *job.Result, 1)
	w.mu.Lock()
	if w.m[id] == nil {
		w.m[id] = map[chan *job.Result]struct{}{}
	}
	w.m[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.m[id], ch)
		if len(w.m[id]) == 0 {
			delete(w.m, id)
		}
		w.mu.Unlock()
	}
}

// count is how many ids have waiters.
func (w *waiters) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}

// wake signals every waiter of id with res (which may be nil). It first
// calls found with whether there is any, so that what found records (a
// metric) is there before a woken caller answers.
func (w *waiters) wake(id string, res *job.Result, found func(bool)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	found(len(w.m[id]) > 0)
	for ch := range w.m[id] {
		select {
		case ch <- res:
		default: // already signalled
		}
	}
}

// hostReplies is the reply queue the consumer reads: Deps.Replies, or the
// server's own member of Deps.ReplyFamily and its address, which requests
// carry as ReplyTo. A member removed under the server's feet (a garbage
// collector that took it for a dead host's) is replaced by a new one.
type hostReplies struct {
	mu    sync.Mutex
	queue platform.Queue
	addr  string
}

// replyQueue is the queue replies come on now.
func (s *Server) replyQueue() platform.Queue {
	s.replies.mu.Lock()
	defer s.replies.mu.Unlock()
	return s.replies.queue
}

// replyTo is the address requests name for their reply ("" without a family).
func (s *Server) replyTo() string {
	s.replies.mu.Lock()
	defer s.replies.mu.Unlock()
	return s.replies.addr
}

// openReplies sets up the reply queue: Deps.Replies, or a new member of
// Deps.ReplyFamily named "<host>-<random tag>" (a tag per start, since SQS
// refuses for a minute to recreate a name it has just deleted).
func (s *Server) openReplies() error {
	if s.deps.ReplyFamily == nil {
		s.replies.queue = s.deps.Replies
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	suffix := hostTag(s.deps.Host)
	q, addr, err := s.deps.ReplyFamily.Create(ctx, suffix)
	if err != nil {
		return fmt.Errorf("web: create this host's reply queue: %w", err)
	}
	s.replies.mu.Lock()
	old := s.replies.queue
	s.replies.queue, s.replies.addr = q, addr
	s.replies.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	s.log.Info("reply queue created", "reply_queue", addr)
	return nil
}

// closeReplies removes the server's own reply queue (a clean stop); the
// calls it served are over, and nothing else reads it.
func (s *Server) closeReplies() {
	if s.deps.ReplyFamily == nil {
		return
	}
	s.replies.mu.Lock()
	q, addr := s.replies.queue, s.replies.addr
	s.replies.mu.Unlock()
	_ = q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.deps.ReplyFamily.Remove(ctx, addr); err != nil {
		s.log.Warn("remove reply queue; the garbage collector will", "reply_queue", addr, "err", err)
		return
	}
	s.log.Info("reply queue removed", "reply_queue", addr)
}

// touchReplies marks the server's reply queue alive every cfg.ReplyTouch,
// so the collector of dead hosts' queues leaves it alone.
func (s *Server) touchReplies(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReplyTouch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addr := s.replyTo()
		err := s.deps.ReplyFamily.Touch(ctx, addr)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, platform.ErrNotFound):
			s.log.Warn("reply queue was removed; creating a new one", "reply_queue", addr)
			if err := s.openReplies(); err != nil {
				s.log.Warn("recreate reply queue", "err", err)
			}
		default:
			s.log.Warn("touch reply queue", "reply_queue", addr, "err", err)
		}
	}
}

// hostTag is a reply queue suffix: the host's name (its first label,
// reduced to the characters queue names allow) and 8 random hex digits.
func hostTag(host string) string {
	if host == "" {
		host, _ = os.Hostname()
	}
	host, _, _ = strings.Cut(host, ".")
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, host)
	if len(host) > 31 {
		host = host[:31]
	}
	if host == "" {
		host = "web"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// consumeReplies is the one reply consumer: it receives replies, wakes the
// calls waiting for them and deletes every reply (as it takes them where
// the queue is a platform.Taker, else in one batch call afterwards),
// including those nobody here waits for (another web host's, or from
// before a restart): their results are in the output store, where any
// later call finds them.
func (s *Server) consumeReplies(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		select {
		case <-ctx.Done():
			return
		default:
		}
		q := s.replyQueue()
		// A reply is worth nothing once this host is gone (its waiting
		// calls go with it), so where the queue can, it is taken and
		// deleted in one step.
		tk, taking := q.(platform.Taker)
		var msgs []platform.Message
		var err error
		if taking {
			msgs, err = tk.Take(ctx, s.cfg.ReplyBatch, s.cfg.ReplyWait)
		} else {
			msgs, err = q.Receive(ctx, s.cfg.ReplyBatch, s.cfg.ReplyWait)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 10*time.Second)
			if errors.Is(err, platform.ErrNotFound) && s.deps.ReplyFamily != nil && q == s.replyQueue() {
				s.log.Warn("reply queue is gone; creating a new one", "reply_queue", s.replyTo(), "err", err)
				if err := s.openReplies(); err == nil {
					backoff = 0
				}
				continue
			}
			s.log.Warn("receive replies", "err", err, "retry_in", backoff)
			continue
		}
		backoff = 0
		if len(msgs) == 0 {
			continue
		}
		for _, m := range msgs {
			s.routeReply(m)
		}
		if taking {
			continue // already deleted
		}
		receipts := make([]string, len(msgs))
		for i, m := range msgs {
			receipts[i] = m.Receipt
		}
		if err := platform.DeleteAll(ctx, q, receipts); err != nil && ctx.Err() == nil {
			s.log.Warn("delete replies", "count", len(receipts), "err", err)
		}
	}
}

func (s *Server) routeReply(m platform.Message) {
	var rep job.Reply
	if err := job.Decode(m.Body, &rep); err != nil {
		s.log.Warn("dropping invalid reply", "message", m.ID, "err", err)
		s.metrics.replies.WithLabelValues("invalid").Inc()
		return
	}
	s.waiters.wake(rep.ID, rep.Result, func(waiting bool) {
		if !waiting {
			s.metrics.replies.WithLabelValues("orphaned").Inc()
			s.log.Debug("reply with no waiter here; result stays in the store", "id", rep.ID)
			return
		}
		s.metrics.replies.WithLabelValues("routed").Inc()
	})
}

// errWaitTimeout means no result came within the call's wait limit.
var errWaitTimeout = errors.New("no result yet")

// errStopping means the server stopped before the result came.
var errStopping = errors.New("server is shutting down")

// await waits up to limit for id's Result, woken by its reply (ch), which
// carries the Result or sends the caller to the store for it, or finding
// it by polling the output store with a growing interval, so a lost reply
// delays an answer but never loses it.
func (s *Server) await(ctx context.Context, id string, ch <-chan *job.Result, limit time.Duration) (job.Result, error) {
	s.metrics.waiting.Inc()
	defer s.metrics.waiting.Dec()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	interval := s.cfg.PollInterval
	poll := time.NewTimer(interval)
	defer poll.Stop()
	for {
		via := "store"
		select {
		case <-ctx.Done():
			return job.Result{}, fmt.Errorf("waiting for %s: %w", id, context.Cause(ctx))
		case <-s.stop.Done():
			return job.Result{}, errStopping
		case <-deadline.C:
			return job.Result{}, errWaitTimeout
		case res := <-ch:
			if res != nil && res.ID == id {
				s.metrics.answers.WithLabelValues("reply").Inc()
				return *res, nil
			}
			via = "reply"
		case <-poll.C:
			interval = min(2*interval, s.cfg.PollMax)
			poll.Reset(interval)
		}
		res, found, err := s.result(ctx, id)
		if err != nil {
			s.log.Warn("read result", "id", id, "err", err)
			continue
		}
		if found {
			s.metrics.answers.WithLabelValues(via).Inc()
			return res, nil
		}
		if via == "reply" {
			// A reply whose result is not visible yet (an eventually
			// consistent store): look again soon.
			poll.Reset(s.cfg.PollInterval)
		}
	}
}

// result reads id's Result from the output store.
func (s *Server) result(ctx context.Context, id string) (job.Result, bool, error) {
	data, err := s.deps.Outputs.Get(ctx, job.ResultKey(id))
	if errors.Is(err, platform.ErrNotFound) {
		return job.Result{}, false, nil
	}
	if err != nil {
		return job.Result{}, false, fmt.Errorf("get result %s: %w", id, err)
	}
	var res job.Result
	if err := job.Decode(data, &res); err != nil {
		return job.Result{}, false, fmt.Errorf("result %s: %w", id, err)
	}
	if res.ID != id {
		return job.Result{}, false, fmt.Errorf("result stored under %s is for %s", id, res.ID)
	}
	return res, true, nil
}
