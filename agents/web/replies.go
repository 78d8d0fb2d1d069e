package web

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// waiters maps a job id to the calls waiting for it. A reply only wakes its
// waiters; they read the Result from the output store, which stays the one
// source of truth.
type waiters struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

// add registers a waiter for id; call the returned function when done.
func (w *waiters) add(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.m[id] == nil {
		w.m[id] = map[chan struct{}]struct{}{}
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

// wake signals every waiter of id and reports whether there was any.
func (w *waiters) wake(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[id] {
		select {
		case ch <- struct{}{}:
		default: // already signalled
		}
	}
	return len(w.m[id]) > 0
}

// consumeReplies is the one reply consumer: it receives replies, wakes the
// calls waiting for them and deletes every reply, including those nobody
// here waits for (another web host's, or from before a restart): their
// results are in the output store, where any later call finds them.
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
		msgs, err := s.deps.Replies.Receive(ctx, s.cfg.ReplyBatch, s.cfg.ReplyWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 10*time.Second)
			s.log.Warn("receive replies", "err", err, "retry_in", backoff)
			continue
		}
		backoff = 0
		for _, m := range msgs {
			s.routeReply(ctx, m)
		}
	}
}

func (s *Server) routeReply(ctx context.Context, m platform.Message) {
	var rep job.Reply
	outcome := "invalid"
	if err := job.Decode(m.Body, &rep); err != nil {
		s.log.Warn("dropping invalid reply", "message", m.ID, "err", err)
	} else if s.waiters.wake(rep.ID) {
		outcome = "routed"
	} else {
		outcome = "orphaned"
		s.log.Debug("reply with no waiter here; result stays in the store", "id", rep.ID)
	}
	s.metrics.replies.WithLabelValues(outcome).Inc()
	if err := s.deps.Replies.Delete(ctx, m.Receipt); err != nil && ctx.Err() == nil {
		s.log.Warn("delete reply", "message", m.ID, "err", err)
	}
}

// errWaitTimeout means no result came within the call's wait limit.
var errWaitTimeout = errors.New("no result yet")

// errStopping means the server stopped before the result came.
var errStopping = errors.New("server is shutting down")

// await waits up to limit for id's Result, woken by its reply (ch) or
// finding it by polling the output store with a growing interval, so a
// lost reply delays an answer but never loses it.
func (s *Server) await(ctx context.Context, id string, ch <-chan struct{}, limit time.Duration) (job.Result, error) {
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
		case <-ch:
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
