package sim

import (
	"errors"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/asgfleet"
)

// maxReceive is SQS's batch limit; the worker asks for at most its free slots.
const maxReceive = 10

// workerAgent models agents/worker's receive loop on one instance: it waits for
// a free slot, long-polls for up to that many messages (at most the time
// left before its idle exit), runs each job through its steps (result
// check, input, engine on a free core, result, answer object, reply,
// delete), and after an empty poll with no job for IdleExit retires through
// the real asgfleet adapter, which terminates the instance with a decrement
// of desired capacity, or refuses at the group's minimum.
type workerAgent struct {
	s        *sim
	inst     *instance
	slots    int
	busy     int
	cores    int
	coreBusy int
	coreWait []func()

	idleExit time.Duration
	lastWork time.Duration
	readyAt  time.Duration
	polling  *poller
	dead     bool
	jobs     map[*delivery]struct{}
	retirer  *asgfleet.Fleet
	refused  int
}

// delivery is one delivery of a request to this worker.
type delivery struct {
	req        int
	receivedAt time.Duration
	batch      *recvBatch
	dead       bool
}

// recvBatch gathers the jobs of one receive when replies and deletes are batched.
type recvBatch struct {
	left int
	done []*delivery
}

func newWorker(s *sim, inst *instance) *workerAgent {
	w := &workerAgent{
		s: s, inst: inst, slots: s.cfg.Worker.Concurrency, cores: s.cfg.Params.Instance.VCPUs.Value,
		idleExit: s.cfg.Worker.IdleExit, jobs: map[*delivery]struct{}{},
	}
	if s.group != nil {
		f, err := asgfleet.New(s.group, asgfleet.Config{Group: s.group.name, InstanceID: inst.id, Now: s.wallclock}, nil)
		if err != nil {
			panic("sim: worker's fleet adapter: " + err.Error())
		}
		w.retirer = f
	} else {
		// The replaced design's workers never leave by themselves.
		w.idleExit = 0
	}
	return w
}

func (w *workerAgent) start() {
	w.readyAt, w.lastWork = w.s.now, w.s.now
	w.poll()
}

// idleLeft is the time before the idle exit, as agents/worker computes it.
func (w *workerAgent) idleLeft() time.Duration {
	if w.busy > 0 {
		return w.idleExit
	}
	return w.idleExit - (w.s.now - w.lastWork)
}

// poll starts a receive when a slot is free and none is running.
func (w *workerAgent) poll() {
	s := w.s
	if w.dead || w.polling != nil || w.busy >= w.slots {
		return
	}
	wait := s.cfg.Worker.ReceiveWait
	if w.idleExit > 0 {
		wait = min(wait, max(w.idleLeft(), 0))
	}
	p := &poller{w: w, max: min(w.slots-w.busy, maxReceive)}
	w.polling = p
	s.queue.pollers = append(s.queue.pollers, p)
	s.deliver()
	if w.polling != p {
		return
	}
	d := ceilSeconds(wait)
	if d == 0 {
		d = s.io(s.cfg.Params.IO.SQS)
	}
	s.after(d, func() {
		if s.cancelPoll(p) {
			w.polling = nil
			s.calls.add(sqsReceiveNone, 1, 1)
			w.pollEmpty()
		}
	})
}

// pollEmpty is the loop's turn after an empty receive: retire when idle.
func (w *workerAgent) pollEmpty() {
	if w.dead {
		return
	}
	if w.idleExit > 0 && w.busy == 0 && w.idleLeft() <= 0 {
		err := w.retirer.Retire(w.s.ctx)
		if err == nil {
			return // terminated, with or without a decrement
		}
		if errors.Is(err, platform.ErrRetireRefused) {
			w.refused++
		}
		w.lastWork = w.s.now
	}
	w.poll()
}

// received starts the delivered jobs.
func (w *workerAgent) received(msgs []int) {
	s := w.s
	if w.dead {
		// The instance went away while the messages were on their way.
		for _, r := range msgs {
			s.redeliver(&delivery{req: r, receivedAt: s.now})
		}
		return
	}
	var b *recvBatch
	if s.cfg.Options.Batch {
		b = &recvBatch{left: len(msgs)}
	}
	for _, r := range msgs {
		j := &delivery{req: r, receivedAt: s.now, batch: b}
		w.busy++
		w.jobs[j] = struct{}{}
		rq := &s.reqs[r]
		if rq.receives == 0 {
			rq.started = s.now
		}
		rq.receives++
		w.run(j)
	}
	w.poll()
}

// run chains the job's steps as agents/worker's handle does them.
func (w *workerAgent) run(j *delivery) {
	s := w.s
	o := s.cfg.Options
	p := s.cfg.Params.IO
	r := &s.reqs[j.req]
	var steps []func(next func())
	get := func(kind string) func(func()) {
		return func(next func()) { s.calls.add(kind, 1, 0); w.wait(j, s.io(p.S3Get), next) }
	}
	put := func(kind string, then func()) func(func()) {
		return func(next func()) {
			s.calls.add(kind, 1, 0)
			w.wait(j, s.io(p.S3Put), func() {
				if then != nil {
					then()
				}
				next()
			})
		}
	}
	stored := func() {
		if !r.isStored {
			r.isStored, r.stored = true, s.now
		}
	}
	if !o.NoResultObject && r.receives > 1 {
		// Only a redelivery looks for its stored Result.
		steps = append(steps, get(s3GetCheck))
	}
	if r.isStored && !o.NoResultObject {
		// A redelivery of a stored answer: sent again from the store.
		if o.AnswerObjects {
			steps = append(steps, put(s3PutAnswer, nil))
		}
	} else {
		if !o.ImageInMessage {
			steps = append(steps, get(s3GetInput))
		}
		steps = append(steps, w.engine(j))
		if o.NoResultObject {
			steps = append(steps, func(next func()) { stored(); next() })
		} else {
			steps = append(steps, put(s3PutResult, stored))
		}
		if o.AnswerObjects {
			steps = append(steps, put(s3PutAnswer, nil))
		}
	}
	steps = append(steps, func(func()) { w.finish(j) })
	var step func(i int)
	step = func(i int) {
		if j.dead {
			return
		}
		steps[i](func() { step(i + 1) })
	}
	step(0)
}

func (w *workerAgent) wait(j *delivery, d time.Duration, next func()) {
	w.s.after(d, func() {
		if !j.dead {
			next()
		}
	})
}

// engine is the recognition step: it needs a core; jobs beyond the cores wait.
func (w *workerAgent) engine(j *delivery) func(func()) {
	return func(next func()) {
		s := w.s
		run := func() {
			if j.dead {
				w.releaseCore()
				return
			}
			var d time.Duration
			if s.cfg.LegacyWorker {
				d = s.cfg.Params.Legacy.Service.Sample(s.rngEngine)
			} else {
				d = s.cfg.Params.Engine.Sample(s.rngEngine)
			}
			s.engineTime += d
			s.after(d, func() {
				w.releaseCore()
				if !j.dead {
					next()
				}
			})
		}
		if w.coreBusy < w.cores {
			w.coreBusy++
			run()
			return
		}
		w.coreWait = append(w.coreWait, run)
	}
}

func (w *workerAgent) releaseCore() {
	if len(w.coreWait) > 0 {
		next := w.coreWait[0]
		w.coreWait = w.coreWait[1:]
		next()
		return
	}
	w.coreBusy--
}

// finish replies and deletes the request, one at a time or in a batch.
func (w *workerAgent) finish(j *delivery) {
	s := w.s
	sqs := s.cfg.Params.IO.SQS
	if j.batch == nil {
		s.calls.add(sqsReply, 1, s.sizes.chunks(s.sizes.reply))
		w.wait(j, s.io(sqs), func() {
			s.web.replyVisible(j.req)
			s.calls.add(sqsDelete, 1, 1)
			w.wait(j, s.io(sqs), func() {
				s.queue.inFlight--
				w.release(j)
				delete(w.jobs, j)
				w.extends(j)
			})
		})
		return
	}
	// Batched: the slot is free now; the batch's reply and delete calls go
	// out when its last job gets here.
	b := j.batch
	b.done = append(b.done, j)
	b.left--
	w.release(j)
	if b.left > 0 {
		return
	}
	s.calls.add(sqsReply, 1, s.sizes.chunks(len(b.done)*s.sizes.reply))
	s.after(s.io(sqs), func() {
		live := b.done[:0:0]
		for _, bj := range b.done {
			if !bj.dead {
				s.web.replyVisible(bj.req)
				live = append(live, bj)
			}
		}
		if len(live) == 0 {
			return
		}
		s.calls.add(sqsDelete, 1, 1)
		s.after(s.io(sqs), func() {
			for _, bj := range live {
				if bj.dead {
					continue
				}
				s.queue.inFlight--
				delete(w.jobs, bj)
				w.extends(bj)
			}
		})
	})
}

// release frees j's slot.
func (w *workerAgent) release(j *delivery) {
	w.busy--
	w.lastWork = w.s.now
	w.poll()
}

// extends counts the heartbeat's visibility extensions while j was held.
func (w *workerAgent) extends(j *delivery) {
	hb := w.s.cfg.Worker.Heartbeat
	if k := int64((w.s.now - j.receivedAt) / hb); k > 0 {
		w.s.calls.add(sqsExtend, k, k)
	}
}

// die stops the worker with its instance; the messages it held come back
// once their visibility runs out.
func (w *workerAgent) die() {
	if w.dead {
		return
	}
	s := w.s
	w.dead = true
	if w.polling != nil {
		s.cancelPoll(w.polling)
		w.polling = nil
	}
	w.countGallery()
	for j := range w.jobs {
		j.dead = true
		s.redeliver(j)
	}
	w.jobs = nil
}

// redeliver returns j's message to the queue when its visibility, last
// extended by the heartbeat, runs out.
func (s *sim) redeliver(j *delivery) {
	hb, vis := s.cfg.Worker.Heartbeat, s.cfg.Worker.Visibility
	k := (s.now - j.receivedAt) / hb
	if k > 0 {
		s.calls.add(sqsExtend, int64(k), int64(k))
	}
	s.at(j.receivedAt+k*hb+vis, func() {
		s.queue.inFlight--
		s.redelivered++
		s.makeVisible(j.req)
	})
}

// countGallery counts the gallery refreshes of the worker's life: one at
// start (the reloader's first pass) and one every refresh interval.
func (w *workerAgent) countGallery() {
	if n := int64((w.s.now - w.readyAt) / w.s.cfg.GalleryRefresh); n >= 0 {
		w.s.calls.add(s3ListGallery, n+1, 0)
	}
}
