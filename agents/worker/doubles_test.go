package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// memQueue stands in for the request and reply queues (SQLite or SQS): an
// in-memory at-least-once queue with visibility timeouts and receive counts,
// which lets tests fail and redeliver messages on cue.
type memQueue struct {
	mu         sync.Mutex
	msgs       []*memMsg
	seq        int
	visibility time.Duration
	extends    int
	deletes    int
	failSend   error
}

type memMsg struct {
	id, receipt string
	body        []byte
	receives    int
	visibleAt   time.Time
	deleted     bool
}

func newMemQueue() *memQueue { return &memQueue{visibility: time.Hour} }

func (q *memQueue) Send(_ context.Context, body []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failSend != nil {
		return q.failSend
	}
	q.seq++
	q.msgs = append(q.msgs, &memMsg{id: fmt.Sprint("m", q.seq), body: append([]byte(nil), body...)})
	return nil
}

func (q *memQueue) Receive(ctx context.Context, max int, wait time.Duration) ([]platform.Message, error) {
	if max < 1 || max > platform.MaxBatch {
		// As every adapter does (SQS refuses more than 10).
		return nil, fmt.Errorf("receive: max %d out of range 1..%d", max, platform.MaxBatch)
	}
	deadline := time.Now().Add(wait)
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if out := q.take(max); len(out) > 0 {
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (q *memQueue) take(max int) []platform.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var out []platform.Message
	for _, m := range q.msgs {
		if len(out) == max {
			break
		}
		if m.deleted || now.Before(m.visibleAt) {
			continue
		}
		q.seq++
		m.receives++
		m.receipt = fmt.Sprint("r", q.seq)
		m.visibleAt = now.Add(q.visibility)
		out = append(out, platform.Message{ID: m.id, Body: m.body, Receipt: m.receipt, ReceiveCount: m.receives})
	}
	return out
}

// abandon delivers every visible message once and makes it visible again,
// as a worker that died holding it leaves it: its next delivery is a
// redelivery.
func (q *memQueue) abandon() {
	q.take(platform.MaxBatch)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		m.visibleAt = time.Time{}
	}
}

func (q *memQueue) find(receipt string) *memMsg {
	for _, m := range q.msgs {
		if m.receipt == receipt {
			return m
		}
	}
	return nil
}

func (q *memQueue) Delete(_ context.Context, receipt string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m := q.find(receipt); m != nil {
		m.deleted = true
		q.deletes++
	}
	return nil
}

func (q *memQueue) Extend(_ context.Context, receipt string, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.find(receipt)
	if m == nil || m.deleted {
		return fmt.Errorf("receipt %s: %w", receipt, platform.ErrNotFound)
	}
	m.visibleAt = time.Now().Add(d)
	q.extends++
	return nil
}

func (q *memQueue) Depth(context.Context) (platform.Depth, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var d platform.Depth
	now := time.Now()
	for _, m := range q.msgs {
		switch {
		case m.deleted:
		case now.Before(m.visibleAt):
			d.InFlight++
		default:
			d.Visible++
		}
	}
	return d, nil
}

func (q *memQueue) Close() error { return nil }

// bodies returns every message ever sent, in order.
func (q *memQueue) bodies() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out [][]byte
	for _, m := range q.msgs {
		out = append(out, m.body)
	}
	return out
}

// undelivered makes every in-flight message visible again, as an expired
// visibility timeout would.
func (q *memQueue) expire() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		m.visibleAt = time.Time{}
	}
}

func (q *memQueue) live() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, m := range q.msgs {
		if !m.deleted {
			n++
		}
	}
	return n
}

// memStore stands in for the input and output stores (files or S3); putErr
// makes Put fail, to play a store outage.
type memStore struct {
	mu     sync.Mutex
	objs   map[string][]byte
	putErr error
	getErr error
}

func newMemStore() *memStore { return &memStore{objs: map[string][]byte{}} }

func (s *memStore) Put(_ context.Context, key string, data []byte, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.putErr != nil {
		return s.putErr
	}
	s.objs[key] = append([]byte(nil), data...)
	return nil
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	b, ok := s.objs[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, platform.ErrNotFound)
	}
	return append([]byte(nil), b...), nil
}

func (s *memStore) Exists(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objs[key]
	return ok, nil
}

func (s *memStore) List(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, key)
	return nil
}

func (s *memStore) Close() error { return nil }

func (s *memStore) setPutErr(err error) {
	s.mu.Lock()
	s.putErr = err
	s.mu.Unlock()
}

// fakeRecognizer stands in for the face engine and gallery: an image's
// bytes are "face:<name>" for one face of that name, "noface" for none,
// "bad" for an undecodable image; anything can be made to block.
type fakeRecognizer struct {
	mu       sync.Mutex
	calls    int
	running  int
	peak     int
	block    chan struct{} // when set, every call waits for it to close
	enrolled map[string]string
	enrolErr error
}

func (r *fakeRecognizer) enter(ctx context.Context) error {
	r.mu.Lock()
	r.calls++
	r.running++
	r.peak = max(r.peak, r.running)
	block := r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			r.leave()
			return ctx.Err()
		}
	}
	return nil
}

func (r *fakeRecognizer) leave() {
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
}

func (r *fakeRecognizer) Process(ctx context.Context, req job.Request, images [][]byte) (Recognition, error) {
	if req.Kind == job.KindEnroll {
		return r.enroll(ctx, req.ID, req.Person, images[0])
	}
	return r.recognize(ctx, images[0])
}

func (r *fakeRecognizer) recognize(ctx context.Context, image []byte) (Recognition, error) {
	if err := r.enter(ctx); err != nil {
		return Recognition{}, err
	}
	defer r.leave()
	s := string(image)
	switch {
	case s == "panic":
		var m map[string]int
		m["boom"]++ // a nil-map write, as a bug in an engine might do
		return Recognition{}, nil
	case s == "bad":
		return Recognition{}, errors.New("decode image: unexpected EOF\nat byte 3")
	case s == "noface":
		return Recognition{Width: 64, Height: 64, Elapsed: time.Millisecond}, nil
	case strings.HasPrefix(s, "face:"):
		return Recognition{Width: 64, Height: 64, Elapsed: 3 * time.Millisecond,
			Faces: []job.Face{{Name: strings.TrimPrefix(s, "face:"), Distance: 0.3, Score: 1}}}, nil
	}
	return Recognition{}, fmt.Errorf("not an image: %q", s)
}

func (r *fakeRecognizer) enroll(ctx context.Context, id, person string, image []byte) (Recognition, error) {
	if err := r.enter(ctx); err != nil {
		return Recognition{}, err
	}
	defer r.leave()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.enrolErr != nil {
		return Recognition{}, r.enrolErr
	}
	if !strings.HasPrefix(string(image), "face:") {
		return Recognition{}, errors.New("no face found to enrol")
	}
	if r.enrolled == nil {
		r.enrolled = map[string]string{}
	}
	r.enrolled[id] = person
	return Recognition{Width: 64, Height: 64, Faces: []job.Face{{Name: person, Score: 1}}}, nil
}

func (r *fakeRecognizer) stats() (calls, peak int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.peak
}

// fakeRetirer stands in for a fleet's self-termination.
type fakeRetirer struct {
	mu      sync.Mutex
	retired int
}

func (r *fakeRetirer) Retire(context.Context) error {
	r.mu.Lock()
	r.retired++
	r.mu.Unlock()
	return nil
}
