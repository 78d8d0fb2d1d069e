// Package worker is the worker agent: it takes recognition and enrolment
// requests from the request queue, runs them through a Recognizer, stores
// each Result in the output store and then replies on the reply queue.
//
// Delivery is at least once, so the worker is idempotent: a request whose
// Result is already stored is answered again from the store, never
// recomputed. A message is deleted only after its Result is stored and its
// Reply sent, and its visibility is extended while it is being worked on, so
// a worker that dies mid-job gives its messages back to the others.
//
// Errors come in two kinds. Permanent ones (a malformed image, an input that
// does not exist, an image with no face to enrol) can never succeed and are
// answered at once with a failed Result. Transient ones (the store or a queue
// failing) leave the message for redelivery; on the queue's last allowed
// receive the failure is answered as failed too, so every request gets an
// answer rather than sitting silently in the dead-letter queue.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// Recognizer runs the face engine and the gallery for the worker.
type Recognizer interface {
	// Process runs req (any kind) on its images: images[0] is the stored
	// req.Input, images[1] req.Input2 when the request has one; req.Quality
	// is the least quality a face needs to be matched. Enrolling
	// under the same face id again replaces the face, so a redelivered
	// request never adds a second one.
	Process(ctx context.Context, req job.Request, images [][]byte) (Recognition, error)
}

// Landmarker is a Recognizer that can also find the landmarks of the faces
// it recognised, for requests that ask for them.
type Landmarker interface {
	// Landmarks sets the Landmarks of each of faces (found in image by
	// Process) that it can find.
	Landmarks(ctx context.Context, image []byte, faces []job.Face) error
}

// errNoLandmarks refuses a request for landmarks a worker cannot find.
var errNoLandmarks = errors.New("this worker cannot find landmarks (its engine has no landmark net)")

// Recognition is a Recognizer's answer for one request.
type Recognition struct {
	// Width and Height are the (first) image's.
	Width, Height int
	// Faces are largest first; Name is "unknown" for a face that matched no
	// one, job.LowQuality for one below the request's quality filter.
	Faces []job.Face
	// Detections answer a detection.
	Detections []job.Detection
	// Verification answers a verification.
	Verification *job.Verification
	// Threshold is the match threshold applied, if any.
	Threshold float64
	// Elapsed is the engine's time, without queueing or I/O.
	Elapsed time.Duration
}

// Answers when there is no single name to give.
const (
	AnswerNoFace  = "no face"
	AnswerUnknown = "unknown"
	AnswerMatch   = "match"
	AnswerNoMatch = "no match"
)

// retryable marks a Recognizer error as transient.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// Retryable marks err as transient: the worker leaves the message for
// redelivery instead of answering it as failed. Recognizer errors are
// permanent unless marked (the engine is deterministic; a store it writes to
// is not).
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return retryable{err}
}

// errStored marks a failure after the Result was stored: the answer exists
// and must not be overwritten by a "gave up" Result; the web agent finds it
// in the store even if no reply ever arrives.
var errStored = errors.New("result is stored")

func isRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Config tunes the worker. Zero fields are not defaults: start from DefaultConfig.
type Config struct {
	// Name identifies this worker in Results and logs.
	Name string
	// Concurrency is how many jobs run at once.
	Concurrency int
	// ReceiveWait is the long-poll wait of one receive.
	ReceiveWait time.Duration
	// Visibility is how long each heartbeat hides a message being worked on;
	// Heartbeat is how often it is extended.
	Visibility, Heartbeat time.Duration
	// MaxReceives is the request queue's redrive limit: on that receive a
	// transient failure is answered as failed instead of retried.
	MaxReceives int
	// RetryDelay is how long a message that failed transiently stays hidden
	// before its next delivery, times its receive count (capped by Visibility).
	RetryDelay time.Duration
	// IdleExit retires the worker after this long without a job; 0 never.
	IdleExit time.Duration
	// DrainTimeout bounds how long in-flight jobs may run after a stop
	// request before they are cancelled (their messages then come back).
	DrainTimeout time.Duration
	// AnswerObjects also stores each recognition's answer as a text object
	// keyed by the request's file name without extension (the course's
	// output bucket layout: "test_00" holding "Paul").
	AnswerObjects bool
}

// DefaultConfig uses the queue settings shared with the AWS stack.
var DefaultConfig = Config{
	Name:         "worker",
	Concurrency:  runtime.GOMAXPROCS(0),
	ReceiveWait:  awsres.DefaultQueueSettings.ReceiveWait,
	Visibility:   awsres.DefaultQueueSettings.VisibilityTimeout,
	Heartbeat:    awsres.DefaultQueueSettings.Heartbeat,
	MaxReceives:  awsres.DefaultQueueSettings.MaxReceives,
	RetryDelay:   2 * time.Second,
	IdleExit:     0,
	DrainTimeout: 2 * time.Minute,
}

// Validate states the allowed ranges.
func (c Config) Validate() error {
	switch {
	case c.Name == "" || len(c.Name) > 128:
		return fmt.Errorf("worker name must be 1..128 bytes, got %d", len(c.Name))
	case c.Concurrency < 1 || c.Concurrency > 256:
		return fmt.Errorf("concurrency %d out of range 1..256", c.Concurrency)
	case c.ReceiveWait < 0 || c.ReceiveWait > 20*time.Second:
		return fmt.Errorf("receive wait %s out of range 0..20s", c.ReceiveWait)
	case c.Visibility < time.Second || c.Visibility > 12*time.Hour:
		return fmt.Errorf("visibility %s out of range 1s..12h", c.Visibility)
	case c.Heartbeat <= 0 || 2*c.Heartbeat > c.Visibility:
		return fmt.Errorf("heartbeat %s must be above 0 and at most half the visibility %s", c.Heartbeat, c.Visibility)
	case c.MaxReceives < 1 || c.MaxReceives > 1000:
		return fmt.Errorf("max receives %d out of range 1..1000", c.MaxReceives)
	case c.RetryDelay < 0 || c.RetryDelay > c.Visibility:
		return fmt.Errorf("retry delay %s out of range 0..%s (the visibility)", c.RetryDelay, c.Visibility)
	case c.IdleExit < 0 || c.IdleExit > 24*time.Hour:
		return fmt.Errorf("idle exit %s out of range 0..24h (0 = never)", c.IdleExit)
	case c.DrainTimeout < time.Second || c.DrainTimeout > time.Hour:
		return fmt.Errorf("drain timeout %s out of range 1s..1h", c.DrainTimeout)
	}
	return nil
}

// Deps are the worker's ports. Retirer, Now and Logger may be nil.
type Deps struct {
	Requests, Replies platform.Queue
	Input, Output     platform.Store
	Recognizer        Recognizer
	// ReplyFamily, when set, holds the web hosts' own reply queues: a
	// request whose ReplyTo the family contains is replied there; any other
	// is replied on Replies (so a forged ReplyTo cannot make the worker
	// write anywhere but its configured queues).
	ReplyFamily platform.QueueFamily
	// Retirer takes an idle worker out of its fleet; nil just stops (a
	// local fleet counts a worker that exits 0 as retired).
	Retirer platform.Retirer
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics, when set, receives the worker's series (requests by
	// outcome, jobs in hand, engine time).
	Metrics prometheus.Registerer
}

// Stats counts what a worker did, for logs and tests.
type Stats struct {
	// Done and Failed count Results this worker stored and replied.
	Done, Failed int64
	// Resent counts requests answered again from an already stored Result.
	Resent int64
	// Invalid counts messages that were not valid requests (deleted unanswered).
	Invalid int64
	// Retried counts transient failures left for redelivery.
	Retried int64
}

// Worker is one worker agent.
type Worker struct {
	cfg Config
	d   Deps
	log *slog.Logger

	hostMu     sync.Mutex
	hostQueues map[string]platform.Queue // opened ReplyFamily members by address

	busy                                   atomic.Int64
	lastWork                               atomic.Int64 // unix nanos of the last job's end (or start of Run)
	done, failed, resent, invalid, retried atomic.Int64
	engine                                 *prometheus.HistogramVec // nil without Deps.Metrics
}

// New returns a worker; it validates cfg and checks deps.
func New(cfg Config, deps Deps) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Requests == nil || deps.Replies == nil || deps.Input == nil || deps.Output == nil || deps.Recognizer == nil {
		return nil, errors.New("worker needs request and reply queues, input and output stores and a recognizer")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	w := &Worker{cfg: cfg, d: deps, log: deps.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("worker", cfg.Name)
	if deps.Metrics != nil {
		if err := w.register(deps.Metrics); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Stats returns the counts so far.
func (w *Worker) Stats() Stats {
	return Stats{Done: w.done.Load(), Failed: w.failed.Load(), Resent: w.resent.Load(), Invalid: w.invalid.Load(), Retried: w.retried.Load()}
}

// ErrRetired is returned by Run when the worker stopped because it was idle
// for Config.IdleExit and retired from its fleet.
var ErrRetired = errors.New("retired after being idle")

// Run takes jobs until ctx is done or the worker has been idle for IdleExit.
// On ctx done it stops receiving and finishes the jobs in flight (for up to
// DrainTimeout) before returning nil. After an idle retirement it returns
// ErrRetired. Other errors are not fatal: a failing receive is retried.
func (w *Worker) Run(ctx context.Context) error {
	// Jobs run on a context that outlives ctx, so a stop request drains
	// them instead of abandoning them half-way.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	slots := make(chan struct{}, w.cfg.Concurrency)
	w.lastWork.Store(w.d.Now().UnixNano())
	w.log.Info("worker taking jobs", "concurrency", w.cfg.Concurrency, "idle_exit", w.cfg.IdleExit,
		"visibility", w.cfg.Visibility, "heartbeat", w.cfg.Heartbeat, "max_receives", w.cfg.MaxReceives)

	err := w.receiveLoop(ctx, workCtx, &wg, slots)

	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	if n := w.busy.Load(); n > 0 {
		w.log.Info("worker draining", "in_flight", n)
	}
	select {
	case <-drained:
	case <-time.After(w.cfg.DrainTimeout):
		w.log.Warn("drain timeout: cancelling jobs in flight; their messages will be redelivered", "in_flight", w.busy.Load())
		cancelWork()
		<-drained
	}
	w.closeHostQueues()
	st := w.Stats()
	w.log.Info("worker stopped", "done", st.Done, "failed", st.Failed, "resent", st.Resent, "invalid", st.Invalid, "retried", st.Retried)
	return err
}

func (w *Worker) receiveLoop(ctx, workCtx context.Context, wg *sync.WaitGroup, slots chan struct{}) error {
	backoff := 100 * time.Millisecond
	for {
		// Wait for at least one free slot.
		select {
		case <-ctx.Done():
			return nil
		case slots <- struct{}{}:
			<-slots
		}
		if ctx.Err() != nil {
			return nil
		}
		// Every free slot, but no more than one Receive may return (SQS's
		// limit of 10): a worker of more slots fills them over several
		// receives.
		free := min(max(w.cfg.Concurrency-int(w.busy.Load()), 1), platform.MaxBatch)
		wait := w.cfg.ReceiveWait
		if w.cfg.IdleExit > 0 {
			if left := w.idleLeft(); left < wait {
				wait = max(left, 0)
			}
		}
		msgs, err := w.d.Requests.Receive(ctx, free, wait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("receive failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(msgs) == 0 {
			if w.cfg.IdleExit > 0 && w.busy.Load() == 0 && w.idleLeft() <= 0 {
				err := w.retire(ctx)
				switch {
				case errors.Is(err, ErrRetired):
					return err
				case ctx.Err() != nil:
					return nil
				}
				// The fleet is at its minimum (refused), or could not be
				// asked: stay and take jobs, and try again later.
				if errors.Is(err, platform.ErrRetireRefused) {
					w.log.Debug("fleet at its minimum; staying", "err", err)
				} else {
					w.log.Warn("could not retire; staying in the fleet", "err", err)
				}
				w.lastWork.Store(w.d.Now().UnixNano())
			}
			continue
		}
		for _, m := range msgs {
			slots <- struct{}{} // never blocks for long: we asked for at most the free count
			w.busy.Add(1)
			wg.Add(1)
			go func() {
				defer func() {
					w.busy.Add(-1)
					<-slots
					wg.Done()
				}()
				// A job's reply may take the slot's next job along
				// (delivery), until the worker stops receiving.
				for d := (&delivery{Message: m, receiving: ctx}); d != nil; d = d.following() {
					w.handle(workCtx, d)
					w.lastWork.Store(w.d.Now().UnixNano())
				}
			}()
		}
	}
}

// delivery is a request being handled. While the worker is receiving
// (the receiving context is not done), a reply that can take the next
// request in the same step (platform.ForwardReceiver) does, into next: a
// busy worker then spends one write on the queue per request instead of
// two, and does not look for work while a backlog waits.
type delivery struct {
	platform.Message
	receiving context.Context
	next      []platform.Message
}

// takeNext is whether the reply should take the next request along.
func (d *delivery) takeNext() bool { return d.receiving != nil && d.receiving.Err() == nil }

// following is the delivery the reply took along, or nil.
func (d *delivery) following() *delivery {
	if len(d.next) == 0 {
		return nil
	}
	return &delivery{Message: d.next[0], receiving: d.receiving}
}

func (w *Worker) idleLeft() time.Duration {
	if w.busy.Load() > 0 {
		return w.cfg.IdleExit
	}
	return w.cfg.IdleExit - w.d.Now().Sub(time.Unix(0, w.lastWork.Load()))
}

// retire leaves the fleet; it returns ErrRetired when the worker should exit.
func (w *Worker) retire(ctx context.Context) error {
	if w.d.Retirer != nil {
		if err := w.d.Retirer.Retire(ctx); err != nil {
			return fmt.Errorf("retire from fleet: %w", err)
		}
	}
	w.log.Info("worker idle; retired", "idle_for", w.cfg.IdleExit)
	return ErrRetired
}

// handle works one message to its end: answered and deleted, or left for
// redelivery.
func (w *Worker) handle(ctx context.Context, m *delivery) {
	var req job.Request
	if err := job.Decode(m.Body, &req); err != nil {
		// It can never succeed, and without a valid id there is no one to
		// answer: drop it so it does not cycle to the dead-letter queue.
		w.invalid.Add(1)
		w.log.Warn("invalid request dropped", "message", m.ID, "err", oneLine(err))
		if err := w.d.Requests.Delete(ctx, m.Receipt); err != nil {
			w.log.Warn("delete invalid request", "message", m.ID, "err", err)
		}
		return
	}
	log := w.log.With("id", req.ID, "receive", m.ReceiveCount)
	// Taken and (in reply) replied are what a watcher needs to tell which
	// requests this worker holds at a given moment.
	log.Debug("request taken", "kind", req.Kind)

	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); w.heartbeat(hbCtx, m.Message, log) }()
	defer func() { stopHeartbeat(); <-hbDone }()

	err := w.process(ctx, m, req, log)
	if err == nil {
		return
	}
	if m.ReceiveCount >= w.cfg.MaxReceives && ctx.Err() == nil && !errors.Is(err, errStored) {
		// Last chance: answer as failed rather than go silent in the DLQ.
		res := w.failedResult(req, fmt.Sprintf("gave up after %d attempts: %s", m.ReceiveCount, oneLine(err)))
		ferr := w.answer(ctx, m, req, res, log)
		if ferr == nil {
			log.Warn("request failed for good", "err", oneLine(err))
			return
		}
		log.Warn("could not answer a request that ran out of attempts; it goes to the dead-letter queue", "err", oneLine(ferr))
	}
	w.retried.Add(1)
	log.Warn("transient failure; leaving request for redelivery", "err", oneLine(err))
	if ctx.Err() == nil && w.cfg.RetryDelay > 0 {
		delay := min(w.cfg.RetryDelay*time.Duration(max(m.ReceiveCount, 1)), w.cfg.Visibility)
		stopHeartbeat()
		<-hbDone
		if err := w.d.Requests.Extend(ctx, m.Receipt, delay); err != nil && !errors.Is(err, platform.ErrNotFound) {
			log.Debug("set retry delay", "err", err)
		}
	}
}

// process answers req, returning only transient errors (the message stays).
func (w *Worker) process(ctx context.Context, m *delivery, req job.Request, log *slog.Logger) error {
	key := job.ResultKey(req.ID)
	// Only a redelivery can find its Result stored (an earlier attempt
	// stopped before deleting the request): a first delivery skips the
	// look, a store read (an S3 GET) per request. A duplicate first
	// delivery is computed again, to the same answer.
	stored, err := []byte(nil), platform.ErrNotFound
	if m.ReceiveCount != 1 {
		stored, err = w.d.Output.Get(ctx, key)
	}
	switch {
	case err == nil:
		var res job.Result
		if derr := job.Decode(stored, &res); derr == nil && res.ID == req.ID {
			// An earlier attempt may have stopped between the two puts.
			if err := w.putAnswerObject(ctx, req, res); err != nil {
				return err
			}
			if err := w.reply(ctx, m, req, res); err != nil {
				return err
			}
			w.resent.Add(1)
			log.Info("request already answered; reply sent again", "status", res.Status)
			return nil
		}
		log.Warn("stored result unreadable; recomputing", "key", key)
	case errors.Is(err, platform.ErrNotFound):
	default:
		return fmt.Errorf("look up result %s: %w", key, err)
	}

	res, err := w.compute(ctx, req)
	if err != nil {
		return err
	}
	if err := w.answer(ctx, m, req, res, log); err != nil {
		return err
	}
	if res.Status == job.StatusDone {
		log.Info("request done", "answer", res.Answer, "faces", len(res.Faces), "ms", res.RecognitionMS)
	} else {
		log.Info("request failed", "err", res.Error)
	}
	return nil
}

// compute runs the request; permanent failures come back as failed Results.
func (w *Worker) compute(ctx context.Context, req job.Request) (job.Result, error) {
	var images [][]byte
	for _, key := range []string{req.Input, req.Input2} {
		if key == "" {
			continue
		}
		data, err := w.d.Input.Get(ctx, key)
		switch {
		case errors.Is(err, platform.ErrNotFound):
			return w.failedResult(req, fmt.Sprintf("input %s does not exist", key)), nil
		case err != nil:
			return job.Result{}, fmt.Errorf("get input %s: %w", key, err)
		}
		images = append(images, data)
	}
	rec, err := w.recognize(ctx, req, images)
	if err != nil {
		if isRetryable(err) {
			return job.Result{}, err
		}
		return w.failedResult(req, oneLine(err)), nil
	}
	res := job.Result{
		V: job.Version, ID: req.ID, Name: req.Name, Status: job.StatusDone, Kind: req.Kind, Input2: req.Input2,
		Faces: rec.Faces, Detections: rec.Detections, Verification: rec.Verification, Threshold: rec.Threshold,
		Width: rec.Width, Height: rec.Height,
		RecognitionMS: float64(rec.Elapsed.Microseconds()) / 1000,
		Worker:        w.cfg.Name, Finished: w.d.Now().UTC(),
	}
	if req.Kind == "" || req.Kind == job.KindRecognize || req.Kind == job.KindEnroll || req.Kind == job.KindSearch || req.Kind == job.KindVerify && req.Person != "" {
		res.Collection = req.Collection
		if res.Collection == "" {
			res.Collection = DefaultCollection
		}
	}
	res.Answer = answer(req, rec)
	return res, nil
}

// DefaultCollection is the collection of requests that name none.
const DefaultCollection = "default"

// answer is the one-line answer of a done request: the first (largest)
// face's name for recognitions and searches, the person enrolled, the
// number of faces found, or whether a verification matched.
func answer(req job.Request, rec Recognition) string {
	switch {
	case req.Kind == job.KindEnroll:
		return req.Person
	case req.Kind == job.KindDetect:
		switch n := len(rec.Detections); n {
		case 0:
			return AnswerNoFace
		case 1:
			return "1 face"
		default:
			return fmt.Sprintf("%d faces", n)
		}
	case req.Kind == job.KindVerify && rec.Verification != nil:
		if rec.Verification.Match {
			return AnswerMatch
		}
		return AnswerNoMatch
	case len(rec.Faces) == 0:
		return AnswerNoFace
	default:
		return rec.Faces[0].Name
	}
}

// recognize runs the Recognizer. A panic in it (a bug the input
// triggers) becomes a permanent error for this request, so one bad image
// cannot crash the worker and every worker it is redelivered to.
func (w *Worker) recognize(ctx context.Context, req job.Request, images [][]byte) (rec Recognition, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("recognizer panicked; answering the request as failed", "id", req.ID, "panic", p, "stack", string(debug.Stack()))
			rec, err = Recognition{}, fmt.Errorf("internal error while processing the image: %v", p)
		}
	}()
	rec, err = w.d.Recognizer.Process(ctx, req, images)
	if err == nil && req.Landmarks {
		lm, ok := w.d.Recognizer.(Landmarker)
		if !ok {
			return rec, errNoLandmarks
		}
		t0 := time.Now()
		err = lm.Landmarks(ctx, images[0], rec.Faces)
		rec.Elapsed += time.Since(t0)
	}
	return rec, err
}

func (w *Worker) failedResult(req job.Request, reason string) job.Result {
	return job.Result{
		V: job.Version, ID: req.ID, Name: req.Name, Status: job.StatusFailed, Error: reason,
		Worker: w.cfg.Name, Finished: w.d.Now().UTC(),
	}
}

// answer stores res, replies and deletes the request.
func (w *Worker) answer(ctx context.Context, m *delivery, req job.Request, res job.Result, log *slog.Logger) error {
	b, err := job.Encode(res)
	if err != nil {
		// Our own Result is invalid: a bug, not the input's fault. Leave the
		// message; the last receive turns it into a failed answer.
		return fmt.Errorf("encode result: %w", err)
	}
	if err := w.d.Output.Put(ctx, job.ResultKey(req.ID), b, "application/json"); err != nil {
		return fmt.Errorf("put result: %w", err)
	}
	if err := w.putAnswerObject(ctx, req, res); err != nil {
		return err
	}
	if err := w.reply(ctx, m, req, res); err != nil {
		return err
	}
	if res.Status == job.StatusDone {
		w.done.Add(1)
	} else {
		w.failed.Add(1)
	}
	w.observe(req, res)
	return nil
}

// putAnswerObject stores res's answer under answerKey, when there is one.
func (w *Worker) putAnswerObject(ctx context.Context, req job.Request, res job.Result) error {
	key, ok := w.answerKey(req, res)
	if !ok {
		return nil
	}
	if err := w.d.Output.Put(ctx, key, []byte(res.Answer), "text/plain; charset=utf-8"); err != nil {
		return fmt.Errorf("put answer object %s: %w", key, err)
	}
	return nil
}

// answerKey is where AnswerObjects stores a done recognition's answer. Names
// that are not plain file stems (or that would shadow the store's own
// prefixes) get no answer object; their Result is stored all the same.
func (w *Worker) answerKey(req job.Request, res job.Result) (string, bool) {
	if !w.cfg.AnswerObjects || res.Status != job.StatusDone || req.Kind != "" && req.Kind != job.KindRecognize {
		return "", false
	}
	return job.AnswerKey(req.Name)
}

// reply sends the Reply for a stored Result and deletes the request.
func (w *Worker) reply(ctx context.Context, m *delivery, req job.Request, res job.Result) error {
	b, err := job.NewReply(res)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	q, err := w.replyQueue(ctx, req)
	switch {
	case errors.Is(err, platform.ErrNotFound):
		// The web host that sent it is gone, and its calls with it; the
		// result is in the store for whoever asks.
		w.log.Info("reply queue gone; result left in the store", "id", req.ID, "reply_to", req.ReplyTo)
	case err != nil:
		return fmt.Errorf("open reply queue (%w): %w", errStored, err)
	default:
		// Reply and delete in one step where the queues allow it (the
		// local queue file): one write instead of two, which also takes
		// this slot's next request while the worker is receiving.
		var delErr error
		forwarded := false
		if fr, ok := w.d.Requests.(platform.ForwardReceiver); ok && m.takeNext() {
			m.next, err, delErr = fr.ForwardReceive(ctx, q, b, m.Receipt, 1)
			forwarded = !errors.Is(err, errors.ErrUnsupported)
		} else if fw, ok := w.d.Requests.(platform.Forwarder); ok {
			err, delErr = fw.Forward(ctx, q, b, m.Receipt)
			forwarded = !errors.Is(err, errors.ErrUnsupported)
		}
		if !forwarded {
			err = q.Send(ctx, b)
		}
		if errors.Is(err, platform.ErrNotFound) && q != w.d.Replies {
			w.forgetHostQueue(req.ReplyTo)
			w.log.Info("reply queue gone; result left in the store", "id", req.ID, "reply_to", req.ReplyTo)
		} else if err != nil {
			return fmt.Errorf("send reply (%w): %w", errStored, err)
		}
		if forwarded {
			w.replied(req, delErr)
			return nil
		}
	}
	w.replied(req, w.d.Requests.Delete(ctx, m.Receipt))
	return nil
}

// replied logs a reply sent (or its queue found gone) and the deletion of
// the request it answers.
func (w *Worker) replied(req job.Request, delErr error) {
	w.log.Debug("request replied", "id", req.ID)
	if delErr != nil {
		// The answer is out; a redelivery will re-send it from the store.
		w.log.Warn("delete answered request", "id", req.ID, "err", delErr)
	}
}

// maxHostQueues bounds the reply queues a worker keeps open: one per web
// host, a handful in practice.
const maxHostQueues = 64

// replyQueue is where req's Reply goes: its ReplyTo when the reply family
// contains it, else the shared reply queue. ErrNotFound means ReplyTo's
// queue no longer exists.
func (w *Worker) replyQueue(ctx context.Context, req job.Request) (platform.Queue, error) {
	if req.ReplyTo == "" {
		return w.d.Replies, nil
	}
	if w.d.ReplyFamily == nil || !w.d.ReplyFamily.Contains(req.ReplyTo) {
		w.log.Warn("reply_to is not one of the configured reply queues; replying on the shared queue", "id", req.ID, "reply_to", req.ReplyTo)
		return w.d.Replies, nil
	}
	w.hostMu.Lock()
	defer w.hostMu.Unlock()
	if q, ok := w.hostQueues[req.ReplyTo]; ok {
		return q, nil
	}
	q, err := w.d.ReplyFamily.Open(ctx, req.ReplyTo)
	if err != nil {
		return nil, err
	}
	if w.hostQueues == nil {
		w.hostQueues = map[string]platform.Queue{}
	}
	if len(w.hostQueues) >= maxHostQueues {
		for addr, old := range w.hostQueues { // any one: hosts come and go
			_ = old.Close()
			delete(w.hostQueues, addr)
			break
		}
	}
	w.hostQueues[req.ReplyTo] = q
	return q, nil
}

func (w *Worker) forgetHostQueue(addr string) {
	w.hostMu.Lock()
	defer w.hostMu.Unlock()
	if q, ok := w.hostQueues[addr]; ok {
		_ = q.Close()
		delete(w.hostQueues, addr)
	}
}

func (w *Worker) closeHostQueues() {
	w.hostMu.Lock()
	defer w.hostMu.Unlock()
	for addr, q := range w.hostQueues {
		_ = q.Close()
		delete(w.hostQueues, addr)
	}
}

// heartbeat keeps m hidden while it is being worked on.
func (w *Worker) heartbeat(ctx context.Context, m platform.Message, log *slog.Logger) {
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.d.Requests.Extend(ctx, m.Receipt, w.cfg.Visibility); err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, platform.ErrNotFound) {
				// Redelivered to another worker; both answers are the same
				// and the stored Result makes the later one a re-send.
				log.Warn("lost hold of the request while working on it", "err", err)
				return
			}
			log.Warn("extend visibility failed", "err", err)
		}
	}
}

// oneLine keeps an error message to one line.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
