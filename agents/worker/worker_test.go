package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

type rig struct {
	req, rep *memQueue
	in, out  *memStore
	rec      *fakeRecognizer
	ret      *fakeRetirer
	w        *Worker
}

func testConfig() Config {
	c := DefaultConfig
	c.Name = "test-worker"
	c.Concurrency = 2
	c.ReceiveWait = 20 * time.Millisecond
	c.Visibility = time.Second
	c.Heartbeat = 50 * time.Millisecond
	c.MaxReceives = 3
	c.RetryDelay = 0
	c.DrainTimeout = 10 * time.Second
	return c
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{req: newMemQueue(), rep: newMemQueue(), in: newMemStore(), out: newMemStore(), rec: &fakeRecognizer{}, ret: &fakeRetirer{}}
	w, err := New(cfg, Deps{Requests: r.req, Replies: r.rep, Input: r.in, Output: r.out, Recognizer: r.rec, Retirer: r.ret})
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	return r
}

// submit stores image and queues a request for it, as the web agent does.
func (r *rig) submit(t *testing.T, name, image string, mutate func(*job.Request)) job.Request {
	t.Helper()
	id := job.NewID()
	req := job.NewRequest(id, name, false, time.Now())
	if mutate != nil {
		mutate(&req)
	}
	if image != "" {
		if err := r.in.Put(context.Background(), req.Input, []byte(image), ""); err != nil {
			t.Fatal(err)
		}
	}
	b, err := job.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.req.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return req
}

// storeResult stores res as an earlier worker that died before replying would have.
func (r *rig) storeResult(t *testing.T, res job.Result) {
	t.Helper()
	b, err := job.Encode(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.out.Put(context.Background(), job.ResultKey(res.ID), b, ""); err != nil {
		t.Fatal(err)
	}
}

// runUntil runs the worker until cond holds, then stops it and returns Run's error.
func (r *rig) runUntil(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	waitFor(t, cond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *rig) result(t *testing.T, id string) job.Result {
	t.Helper()
	b, err := r.out.Get(context.Background(), job.ResultKey(id))
	if err != nil {
		t.Fatalf("result of %s: %v", id, err)
	}
	var res job.Result
	if err := job.Decode(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func (r *rig) replies(t *testing.T) []job.Reply {
	t.Helper()
	var out []job.Reply
	for _, b := range r.rep.bodies() {
		var rep job.Reply
		if err := job.Decode(b, &rep); err != nil {
			t.Fatalf("reply %s: %v", b, err)
		}
		out = append(out, rep)
	}
	return out
}

func TestAnswers(t *testing.T) {
	tests := map[string]struct {
		image   string
		mutate  func(*job.Request)
		status  string
		answer  string
		errPart string
	}{
		"known face":         {image: "face:Paul", status: job.StatusDone, answer: "Paul"},
		"no face":            {image: "noface", status: job.StatusDone, answer: AnswerNoFace},
		"unmatched face":     {image: "face:unknown", status: job.StatusDone, answer: AnswerUnknown},
		"undecodable":        {image: "bad", status: job.StatusFailed, errPart: "decode image: unexpected EOF"},
		"engine panics":      {image: "panic", status: job.StatusFailed, errPart: "internal error while processing the image"},
		"missing input":      {image: "", status: job.StatusFailed, errPart: "does not exist"},
		"enrol":              {image: "face:x", mutate: func(r *job.Request) { r.Kind, r.Person = job.KindEnroll, "Ada" }, status: job.StatusDone, answer: "Ada"},
		"enrol with no face": {image: "noface", mutate: func(r *job.Request) { r.Kind, r.Person = job.KindEnroll, "Ada" }, status: job.StatusFailed, errPart: "no face found to enrol"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, testConfig())
			req := r.submit(t, "test_00", tc.image, tc.mutate)
			r.runUntil(t, func() bool { return r.req.live() == 0 })
			res := r.result(t, req.ID)
			if res.Status != tc.status || res.Answer != tc.answer || !strings.Contains(res.Error, tc.errPart) {
				t.Errorf("result = %+v, want status %q answer %q error containing %q", res, tc.status, tc.answer, tc.errPart)
			}
			if strings.ContainsAny(res.Error, "\r\n") {
				t.Errorf("error %q is not one line", res.Error)
			}
			if res.Name != "test_00" || res.Worker != "test-worker" || res.ID != req.ID {
				t.Errorf("result identity = %q %q %q", res.Name, res.Worker, res.ID)
			}
			reps := r.replies(t)
			if len(reps) != 1 || reps[0].ID != req.ID || reps[0].Status != tc.status || reps[0].Output != job.ResultKey(req.ID) {
				t.Errorf("replies = %+v, want one for %s", reps, req.ID)
			}
		})
	}
}

func TestAnswerObjects(t *testing.T) {
	tests := map[string]struct {
		enabled bool
		name    string
		image   string
		want    string // "" means no answer object
	}{
		"course layout":    {enabled: true, name: "test_00", image: "face:Paul", want: "Paul"},
		"unknown face":     {enabled: true, name: "test_01", image: "face:unknown", want: AnswerUnknown},
		"off by default":   {enabled: false, name: "test_02", image: "face:Paul"},
		"failed job":       {enabled: true, name: "test_03", image: "bad"},
		"not a plain stem": {enabled: true, name: "..", image: "face:Paul"},
		"shadows a prefix": {enabled: true, name: "results", image: "face:Paul"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AnswerObjects = tc.enabled
			r := newRig(t, cfg)
			r.submit(t, tc.name, tc.image, nil)
			r.runUntil(t, func() bool { return r.req.live() == 0 })
			got, err := r.out.Get(context.Background(), tc.name)
			switch {
			case tc.want == "" && !errors.Is(err, platform.ErrNotFound):
				t.Errorf("answer object %q = %q, %v; want none", tc.name, got, err)
			case tc.want != "" && (err != nil || string(got) != tc.want):
				t.Errorf("answer object %q = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		})
	}
}

// A redelivered request whose result is stored but whose answer object is
// missing (the worker died between the two puts) gets its answer object.
func TestAnswerObjectRestoredOnRedelivery(t *testing.T) {
	cfg := testConfig()
	cfg.AnswerObjects = true
	r := newRig(t, cfg)
	req := r.submit(t, "test_00", "face:Paul", nil)
	r.storeResult(t, job.Result{V: job.Version, ID: req.ID, Name: req.Name, Status: job.StatusDone, Answer: "Paul", Finished: time.Now()})
	r.req.abandon()
	r.runUntil(t, func() bool { return r.req.live() == 0 })
	if got, err := r.out.Get(context.Background(), "test_00"); err != nil || string(got) != "Paul" {
		t.Fatalf("answer object = %q, %v; want Paul", got, err)
	}
	if calls, _ := r.rec.stats(); calls != 0 {
		t.Errorf("the engine ran %d times for a stored result", calls)
	}
}

func TestEnrolUsesRequestID(t *testing.T) {
	r := newRig(t, testConfig())
	req := r.submit(t, "ada1", "face:x", func(q *job.Request) { q.Kind, q.Person = job.KindEnroll, "Ada" })
	r.runUntil(t, func() bool { return r.req.live() == 0 })
	if got := r.rec.enrolled[req.ID]; got != "Ada" {
		t.Fatalf("enrolled %v, want entry %s for Ada", r.rec.enrolled, req.ID)
	}
}

func TestInvalidMessageDroppedUnanswered(t *testing.T) {
	r := newRig(t, testConfig())
	for _, body := range []string{"not json", `{"v":1,"id":"nope","input":"x"}`, `{"v":99}`} {
		if err := r.req.Send(context.Background(), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	r.runUntil(t, func() bool { return r.req.live() == 0 })
	if st := r.w.Stats(); st.Invalid != 3 || st.Done+st.Failed != 0 {
		t.Errorf("stats = %+v, want 3 invalid and nothing answered", st)
	}
	if keys, _ := r.out.List(context.Background(), ""); len(keys) != 0 {
		t.Errorf("stored %v for invalid messages", keys)
	}
	if n := len(r.rep.bodies()); n != 0 {
		t.Errorf("%d replies for invalid messages", n)
	}
}

func TestRedeliveryResendsStoredResult(t *testing.T) {
	r := newRig(t, testConfig())
	req := r.submit(t, "test_01", "face:Ana", nil)
	// A worker died after storing the result, before replying and deleting.
	r.storeResult(t, job.Result{V: job.Version, ID: req.ID, Name: "test_01", Status: job.StatusDone, Answer: "Ana", Worker: "earlier", Finished: time.Now()})
	r.req.abandon()
	r.runUntil(t, func() bool { return r.req.live() == 0 })
	if calls, _ := r.rec.stats(); calls != 0 {
		t.Errorf("recognizer ran %d times for an answered request", calls)
	}
	if res := r.result(t, req.ID); res.Worker != "earlier" {
		t.Errorf("stored result was overwritten by %q", res.Worker)
	}
	if reps := r.replies(t); len(reps) != 1 || reps[0].ID != req.ID {
		t.Errorf("replies = %+v, want the one re-sent", reps)
	}
	if st := r.w.Stats(); st.Resent != 1 {
		t.Errorf("stats = %+v, want 1 resent", st)
	}
}

// A first delivery does not look for a stored Result (only a redelivery
// can have one): a Result under its id is computed again and replaced.
func TestFirstDeliveryComputes(t *testing.T) {
	r := newRig(t, testConfig())
	req := r.submit(t, "test_01", "face:Ana", nil)
	r.storeResult(t, job.Result{V: job.Version, ID: req.ID, Name: "test_01", Status: job.StatusDone, Answer: "Ana", Worker: "earlier", Finished: time.Now()})
	r.runUntil(t, func() bool { return r.req.live() == 0 })
	if calls, _ := r.rec.stats(); calls != 1 {
		t.Errorf("recognizer ran %d times for a first delivery, want 1", calls)
	}
	if res := r.result(t, req.ID); res.Worker == "earlier" {
		t.Errorf("stored result was not replaced")
	}
	if st := r.w.Stats(); st.Resent != 0 || st.Done != 1 {
		t.Errorf("stats = %+v, want 1 done", st)
	}
}

func TestTransientFailureIsRetriedThenAnswered(t *testing.T) {
	r := newRig(t, testConfig())
	r.out.setPutErr(errors.New("disk full"))
	req := r.submit(t, "test_02", "face:Ana", nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	// First failure leaves the message in flight, unanswered.
	waitFor(t, func() bool { return r.w.Stats().Retried == 1 })
	if r.req.live() != 1 || len(r.rep.bodies()) != 0 {
		t.Fatalf("after a transient failure: %d live messages, %d replies; want 1, 0", r.req.live(), len(r.rep.bodies()))
	}
	// Second delivery fails the same way.
	r.req.expire()
	waitFor(t, func() bool { return r.w.Stats().Retried == 2 })
	// The store heals before the last delivery: the real answer is stored.
	r.out.setPutErr(nil)
	r.req.expire()
	waitFor(t, func() bool { return r.req.live() == 0 })
	res := r.result(t, req.ID)
	if res.Status != job.StatusDone || res.Answer != "Ana" {
		t.Errorf("third delivery result = %+v, want done Ana once the store healed", res)
	}
}

func TestLastReceiveAnswersFailed(t *testing.T) {
	r := newRig(t, testConfig())
	r.rec.enrolErr = Retryable(errors.New("gallery store unreachable"))
	req := r.submit(t, "ada", "face:x", func(q *job.Request) { q.Kind, q.Person = job.KindEnroll, "Ada" })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for i := 1; i < 3; i++ {
		waitFor(t, func() bool { return r.w.Stats().Retried == int64(i) })
		if _, err := r.out.Get(context.Background(), job.ResultKey(req.ID)); !errors.Is(err, platform.ErrNotFound) {
			t.Fatalf("after attempt %d a result exists (%v); transient failures must be retried", i, err)
		}
		r.req.expire()
	}
	waitFor(t, func() bool { return r.req.live() == 0 })
	res := r.result(t, req.ID)
	if res.Status != job.StatusFailed || !strings.HasPrefix(res.Error, "gave up after 3 attempts: gallery store unreachable") {
		t.Errorf("result = %+v, want failed after 3 attempts", res)
	}
	if reps := r.replies(t); len(reps) != 1 || reps[0].Status != job.StatusFailed {
		t.Errorf("replies = %+v, want one failed", reps)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Concurrency = 3
	r := newRig(t, cfg)
	r.rec.block = make(chan struct{})
	for i := 0; i < 10; i++ {
		r.submit(t, "img", "face:Bo", nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	waitFor(t, func() bool { _, peak := r.rec.stats(); return peak == 3 })
	time.Sleep(50 * time.Millisecond) // give an over-eager receive the chance to show
	if d, _ := r.req.Depth(ctx); d.InFlight != 3 || d.Visible != 7 {
		t.Errorf("depth while 3 jobs block = %+v, want 3 in flight, 7 visible", d)
	}
	close(r.rec.block)
	waitFor(t, func() bool { return r.req.live() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, peak := r.rec.stats(); peak != 3 {
		t.Errorf("peak concurrency %d, want 3", peak)
	}
	if st := r.w.Stats(); st.Done != 10 {
		t.Errorf("stats = %+v, want 10 done", st)
	}
}

// TestMoreSlotsThanOneReceive: a worker with more free slots than one
// Receive may return (SQS's 10) fills them over several receives instead of
// asking for all at once and being refused.
func TestMoreSlotsThanOneReceive(t *testing.T) {
	cfg := testConfig()
	cfg.Concurrency = 16
	r := newRig(t, cfg)
	r.rec.block = make(chan struct{})
	for i := 0; i < 20; i++ {
		r.submit(t, "img", "face:Bo", nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	waitFor(t, func() bool { _, peak := r.rec.stats(); return peak == 16 })
	close(r.rec.block)
	waitFor(t, func() bool { return r.req.live() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := r.w.Stats(); st.Done != 20 || st.Retried != 0 {
		t.Errorf("stats = %+v, want 20 done", st)
	}
}

func TestHeartbeatExtendsWhileWorking(t *testing.T) {
	r := newRig(t, testConfig())
	r.rec.block = make(chan struct{})
	r.submit(t, "img", "face:Bo", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	waitFor(t, func() bool { r.req.mu.Lock(); defer r.req.mu.Unlock(); return r.req.extends >= 2 })
	close(r.rec.block)
	waitFor(t, func() bool { return r.req.live() == 0 })
	cancel()
	<-done
}

func TestDrainFinishesInFlightJobs(t *testing.T) {
	r := newRig(t, testConfig())
	r.rec.block = make(chan struct{})
	req := r.submit(t, "img", "face:Cy", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	waitFor(t, func() bool { calls, _ := r.rec.stats(); return calls == 1 })
	cancel() // SIGTERM
	r.submit(t, "late", "face:Dee", nil)
	time.Sleep(50 * time.Millisecond)
	close(r.rec.block)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if res := r.result(t, req.ID); res.Answer != "Cy" {
		t.Errorf("drained job result = %+v", res)
	}
	if calls, _ := r.rec.stats(); calls != 1 {
		t.Errorf("worker took %d jobs; after stop it must take none", calls)
	}
	if r.req.live() != 1 {
		t.Errorf("%d live messages, want only the late one", r.req.live())
	}
}

func TestIdleExitRetires(t *testing.T) {
	cfg := testConfig()
	cfg.IdleExit = 200 * time.Millisecond
	r := newRig(t, cfg)
	r.submit(t, "img", "face:Bo", nil)
	done := make(chan error, 1)
	go func() { done <- r.w.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRetired) {
			t.Fatalf("Run = %v, want ErrRetired", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("idle worker did not retire")
	}
	if r.ret.retired != 1 {
		t.Errorf("Retire called %d times, want 1", r.ret.retired)
	}
	if st := r.w.Stats(); st.Done != 1 {
		t.Errorf("stats = %+v: the job must be done before retiring", st)
	}
}

func TestReplyFailureKeepsMessage(t *testing.T) {
	r := newRig(t, testConfig())
	r.rep.failSend = errors.New("queue locked")
	req := r.submit(t, "img", "face:Bo", nil)
	r.runUntil(t, func() bool { return r.w.Stats().Retried >= 1 })
	if r.req.live() != 1 {
		t.Fatal("request deleted although its reply was not sent")
	}
	// The result is stored, so the web agent can still find it by id.
	if res := r.result(t, req.ID); res.Answer != "Bo" {
		t.Errorf("result = %+v", res)
	}
}

func TestManyRequestsEachAnsweredOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Concurrency = 8
	r := newRig(t, cfg)
	want := map[string]string{}
	names := []string{"Ana", "Bo", "Cy", "Dee"}
	for i := 0; i < 200; i++ {
		req := r.submit(t, "img", "face:"+names[i%4], nil)
		want[req.ID] = names[i%4]
	}
	r.runUntil(t, func() bool { return r.req.live() == 0 })
	seen := map[string]int{}
	var mu sync.Mutex
	for _, rep := range r.replies(t) {
		mu.Lock()
		seen[rep.ID]++
		mu.Unlock()
	}
	for id, name := range want {
		if seen[id] != 1 {
			t.Errorf("%s answered %d times", id, seen[id])
		}
		if res := r.result(t, id); res.Answer != name {
			t.Errorf("%s answered %q, want %q", id, res.Answer, name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"default":           {mutate: func(*Config) {}},
		"zero concurrency":  {mutate: func(c *Config) { c.Concurrency = 0 }, want: "1..256"},
		"long wait":         {mutate: func(c *Config) { c.ReceiveWait = time.Minute }, want: "0..20s"},
		"slow heartbeat":    {mutate: func(c *Config) { c.Heartbeat = 20 * time.Second }, want: "at most half"},
		"no receives":       {mutate: func(c *Config) { c.MaxReceives = 0 }, want: "1..1000"},
		"negative idle":     {mutate: func(c *Config) { c.IdleExit = -time.Second }, want: "0..24h"},
		"empty name":        {mutate: func(c *Config) { c.Name = "" }, want: "1..128"},
		"retry beyond hide": {mutate: func(c *Config) { c.RetryDelay = time.Hour }, want: "retry delay"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// refusingRetirer stands in for a fleet at its minimum size, which refuses
// to let a worker go the first times it asks.
type refusingRetirer struct {
	mu      sync.Mutex
	refuse  int
	retired int
}

func (r *refusingRetirer) Retire(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse > 0 {
		r.refuse--
		return errors.New("group at its minimum size")
	}
	r.retired++
	return nil
}

func TestRefusedRetirementKeepsWorking(t *testing.T) {
	cfg := testConfig()
	cfg.IdleExit = 100 * time.Millisecond
	r := newRig(t, cfg)
	ret := &refusingRetirer{refuse: 2}
	w, err := New(cfg, Deps{Requests: r.req, Replies: r.rep, Input: r.in, Output: r.out, Recognizer: r.rec, Retirer: ret})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRetired) {
			t.Fatalf("Run = %v, want ErrRetired after the fleet let it go", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("worker never retired")
	}
	if ret.retired != 1 || ret.refuse != 0 {
		t.Errorf("retired %d, refusals left %d; want 1 and 0", ret.retired, ret.refuse)
	}
}
