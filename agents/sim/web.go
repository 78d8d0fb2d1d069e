package sim

import "time"

// webAgent models agents/web's path of a request: the upload check, the
// input PUT, the send; the one reply consumer (long polls of up to
// ReplyBatch replies, each routed, then all deleted in one call); and each
// waiting call, woken by its reply or finding its result by polling the
// store at a doubling interval.
type webAgent struct {
	s       *sim
	replies []int
	polling bool
	routing bool
	gen     int
}

// arrive takes request i's upload.
func (wb *webAgent) arrive(i int) {
	s := wb.s
	p := s.cfg.Params.IO
	d := s.io(p.WebCheck)
	if !s.cfg.Options.ImageInMessage {
		s.calls.add(s3PutInput, 1, 0)
		d += s.io(p.S3Put)
	}
	d += s.io(p.SQS)
	s.calls.add(sqsSend, 1, s.sizes.chunks(s.sizes.request))
	s.after(d, func() {
		s.reqs[i].enqueued = s.now
		s.makeVisible(i)
		if !s.cfg.Options.NoResultObject {
			wb.pollStore(i, s.cfg.Web.PollInterval)
		}
	})
}

// pollStore is the waiting call's fallback: it looks in the store after
// interval, then at twice the interval up to PollMax.
func (wb *webAgent) pollStore(i int, interval time.Duration) {
	s := wb.s
	s.after(interval, func() {
		r := &s.reqs[i]
		if r.isAnswered {
			return
		}
		next := min(2*interval, s.cfg.Web.PollMax)
		s.calls.add(s3GetPoll, 1, 0)
		if r.isStored {
			s.answerAfter(i, s.io(s.cfg.Params.IO.S3Get))
			return
		}
		wb.pollStore(i, next)
	})
}

// replyVisible puts request i's reply on the reply queue.
func (wb *webAgent) replyVisible(i int) {
	wb.replies = append(wb.replies, i)
	if wb.polling {
		wb.take()
	}
}

// poll starts the consumer's next long poll.
func (wb *webAgent) poll() {
	s := wb.s
	if wb.polling || wb.routing {
		return
	}
	wb.polling = true
	if len(wb.replies) > 0 {
		wb.take()
		return
	}
	wb.gen++
	gen := wb.gen
	s.after(ceilSeconds(s.cfg.Web.ReplyWait), func() {
		if wb.polling && wb.gen == gen {
			wb.polling = false
			s.calls.add(sqsReplyNone, 1, 1)
			wb.poll()
		}
	})
}

// take receives a batch of replies and routes them.
func (wb *webAgent) take() {
	s := wb.s
	n := min(s.cfg.Web.ReplyBatch, len(wb.replies))
	batch := append([]int(nil), wb.replies[:n]...)
	wb.replies = wb.replies[n:]
	wb.polling, wb.routing = false, true
	wb.gen++
	s.calls.add(sqsReplyRecv, 1, s.sizes.chunks(n*s.sizes.reply))
	s.after(s.io(s.cfg.Params.IO.SQS), func() { wb.route(batch) })
}

// route wakes the waiting call of each reply of a receive, then deletes
// them all in one call, as agents/web does (platform.DeleteAll: one
// DeleteMessageBatch for up to 10 receipts).
func (wb *webAgent) route(batch []int) {
	s := wb.s
	for _, i := range batch {
		wb.wake(i)
	}
	s.calls.add(sqsReplyDelete, 1, 1)
	s.after(s.io(s.cfg.Params.IO.SQS), func() {
		wb.routing = false
		wb.poll()
	})
}

// wake answers request i's waiting call: from the reply itself when it
// carries the result, else by reading the stored result.
func (wb *webAgent) wake(i int) {
	s := wb.s
	if s.reqs[i].isAnswered {
		return
	}
	if s.cfg.Options.NoResultObject || s.sizes.replyCarries {
		s.answerAfter(i, 0)
		return
	}
	s.calls.add(s3GetResult, 1, 0)
	s.answerAfter(i, s.io(s.cfg.Params.IO.S3Get))
}

// answerAfter answers request i after d unless it is answered by then.
func (s *sim) answerAfter(i int, d time.Duration) {
	s.after(d, func() {
		r := &s.reqs[i]
		if r.isAnswered {
			return
		}
		r.isAnswered, r.answered = true, s.now
		s.answered++
	})
}
