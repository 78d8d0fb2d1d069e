package sim

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// queue is the request queue: visible messages in order, a count of those
// in flight, and the workers' long polls waiting for a message.
type queue struct {
	visible  []int // request indexes
	inFlight int
	pollers  []*poller
}

// poller is one worker's ReceiveMessage call waiting for messages.
type poller struct {
	w   *workerAgent
	max int
}

// depthReader is the scaler's view of the request queue: SQS's
// GetQueueAttributes, exact here (SQS's counts are approximate).
type depthReader struct{ s *sim }

func (d depthReader) Depth(context.Context) (platform.Depth, error) {
	d.s.calls.add(sqsDepth, 1, 1)
	return platform.Depth{Visible: len(d.s.queue.visible), InFlight: d.s.queue.inFlight}, nil
}

// makeVisible puts request i in the queue and hands it to a waiting poll.
func (s *sim) makeVisible(i int) {
	s.queue.visible = append(s.queue.visible, i)
	s.deliver()
}

// deliver hands visible messages to waiting polls, oldest poll first; a
// long poll returns as soon as a message is there, with up to its maximum.
func (s *sim) deliver() {
	for len(s.queue.pollers) > 0 && len(s.queue.visible) > 0 {
		p := s.queue.pollers[0]
		s.queue.pollers = s.queue.pollers[1:]
		n := min(p.max, len(s.queue.visible))
		msgs := slices.Clone(s.queue.visible[:n])
		s.queue.visible = s.queue.visible[n:]
		s.queue.inFlight += n
		s.calls.add(sqsReceive, 1, s.sizes.chunks(n*s.sizes.request))
		w := p.w
		w.polling = nil
		s.after(s.io(s.cfg.Params.IO.SQS), func() { w.received(msgs) })
	}
}

// cancelPoll removes p if it is still waiting and reports whether it was.
func (s *sim) cancelPoll(p *poller) bool {
	i := slices.Index(s.queue.pollers, p)
	if i < 0 {
		return false
	}
	s.queue.pollers = slices.Delete(s.queue.pollers, i, i+1)
	return true
}

// sizes are the encoded sizes of the messages and objects of one request,
// taken from the real message schema.
type sizes struct {
	request, reply, result, answer, image int
	chunk                                 int
	// replyCarries: the reply holds the Result (job.NewReply), so the web
	// answers without reading it from the store.
	replyCarries bool
}

// chunks is how many billed SQS requests a payload of n bytes is.
func (z sizes) chunks(n int) int64 {
	if n <= z.chunk {
		return 1
	}
	return int64((n + z.chunk - 1) / z.chunk)
}

func messageSizes(cfg Config) (sizes, error) {
	id := job.NewID()
	req := job.NewRequest(id, "test_00", false, Epoch)
	res := job.Result{
		V: job.Version, ID: id, Name: "test_00", Status: job.StatusDone, Answer: "Paul",
		Faces: []job.Face{{Box: job.Box{W: 64, H: 64}, Score: 1, Name: "Paul", Distance: 0.31234567}},
		Width: 64, Height: 64, RecognitionMS: 13.8, Worker: "ip-10-20-1-23.ec2.internal-1234", Finished: Epoch,
	}
	rb, err := job.Encode(req)
	if err != nil {
		return sizes{}, fmt.Errorf("message sizes: request: %w", err)
	}
	resb, err := job.Encode(res)
	if err != nil {
		return sizes{}, fmt.Errorf("message sizes: result: %w", err)
	}
	// The worker's reply: with a copy of the Result when it fits.
	repb, err := job.NewReply(res)
	if err != nil {
		return sizes{}, fmt.Errorf("message sizes: reply: %w", err)
	}
	var rep job.Reply
	if err := job.Decode(repb, &rep); err != nil {
		return sizes{}, fmt.Errorf("message sizes: reply: %w", err)
	}
	z := sizes{
		request: len(rb), reply: len(repb), result: len(resb), answer: len(res.Answer),
		image: cfg.Params.Request.ImageBytes.Value, chunk: cfg.Prices.SQSChunkBytes.Value,
		replyCarries: rep.Result != nil,
	}
	if cfg.Options.ImageInMessage {
		// The image rides in the message as base64 in a JSON field.
		z.request += base64.StdEncoding.EncodedLen(z.image) + len(`,"image":""`)
	}
	if cfg.Options.NoResultObject && !z.replyCarries {
		z.reply += z.result
	}
	return z, nil
}

// counts are the API calls of a run by kind, and SQS's billed requests.
type counts struct {
	n        map[string]int64
	sqsUnits int64
}

// Call kinds, in the order reports list them.
const (
	s3PutInput     = "S3 PUT input image (web)"
	s3PutResult    = "S3 PUT result (worker)"
	s3PutAnswer    = "S3 PUT answer object (worker)"
	s3GetCheck     = "S3 GET result check before work (worker)"
	s3GetInput     = "S3 GET input image (worker)"
	s3GetResult    = "S3 GET result after its reply (web)"
	s3GetPoll      = "S3 GET result, polling (web)"
	s3ListGallery  = "S3 LIST gallery refresh (worker)"
	s3GetGallery   = "S3 GET gallery entries at start (worker)"
	s3GetAgent     = "S3 GET agent binary at first boot"
	sqsSend        = "SQS SendMessage request (web)"
	sqsReceive     = "SQS ReceiveMessage with requests (worker)"
	sqsReceiveNone = "SQS ReceiveMessage empty (worker)"
	sqsExtend      = "SQS ChangeMessageVisibility heartbeat (worker)"
	sqsReply       = "SQS SendMessage reply (worker)"
	sqsDelete      = "SQS DeleteMessage request (worker)"
	sqsReplyRecv   = "SQS ReceiveMessage with replies (web)"
	sqsReplyNone   = "SQS ReceiveMessage empty, replies (web)"
	sqsReplyDelete = "SQS DeleteMessageBatch replies (web)"
	sqsDepth       = "SQS GetQueueAttributes depth (scaler)"
	sqsOpen        = "SQS GetQueueAttributes at start (worker)"
)

var callOrder = []string{
	s3PutInput, s3PutResult, s3PutAnswer, s3GetCheck, s3GetInput, s3GetResult, s3GetPoll,
	s3ListGallery, s3GetGallery, s3GetAgent,
	sqsSend, sqsReceive, sqsReceiveNone, sqsExtend, sqsReply, sqsDelete,
	sqsReplyRecv, sqsReplyNone, sqsReplyDelete, sqsDepth, sqsOpen,
}

func (c *counts) add(kind string, calls, sqsUnits int64) {
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[kind] += calls
	if strings.HasPrefix(kind, "SQS ") {
		c.sqsUnits += sqsUnits
	}
}
