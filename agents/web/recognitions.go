// The recognition routes: POST / (the course's text contract),
// POST /v1/recognitions and GET /v1/recognitions/{id}.

package web

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/facecloud/facecloud/agents/job"
)

// pending is an accepted upload whose Result is awaited.
type pending struct {
	id   string
	ch   <-chan struct{}
	done func()
}

// enqueue stores u and queues its request, registering the waiter before
// the request is sent so even the fastest reply finds it.
func (s *Server) enqueue(ctx context.Context, u upload, kind, person string, nearest bool, quality string, landmarks bool) (pending, *httpError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	id := job.NewID()
	noteID(ctx, id)
	name := u.name
	if name == "" {
		name = id
	}
	req := job.NewRequest(id, name, nearest, s.deps.Now()).WithReplyTo(s.replyTo()).WithQuality(quality).WithLandmarks(landmarks)
	if kind == job.KindEnroll {
		req.Kind, req.Person = kind, person
	}
	body, err := job.Encode(req)
	if err != nil {
		return pending{}, refuse(http.StatusBadRequest, "bad_request", "%v", err)
	}
	if err := s.deps.Inputs.Put(ctx, req.Input, u.data, http.DetectContentType(u.data)); err != nil {
		s.log.Error("store input", "id", id, "err", err)
		return pending{}, refuse(http.StatusServiceUnavailable, "", "input store unavailable, try again")
	}
	ch, done := s.waiters.add(id)
	if err := s.deps.Requests.Send(ctx, body); err != nil {
		done()
		s.log.Error("queue request", "id", id, "err", err)
		return pending{}, refuse(http.StatusServiceUnavailable, "", "request queue unavailable, try again")
	}
	s.log.Debug("queued", "id", id, "name", name, "kind", req.Kind, "bytes", len(u.data))
	return pending{id: id, ch: ch, done: done}, nil
}

// enqueueRecognition checks one uploaded image, takes the call's in-flight
// slot and queues the image for recognition: the shared front half of the
// text and JSON endpoints. The upload's memory is returned to the budget
// once the image is stored.
func (s *Server) enqueueRecognition(r *http.Request, in *intake, u upload, nearest bool, quality string, landmarks bool) (pending, *httpError) {
	defer in.release()
	if herr := s.check(r.Context(), in, &u); herr != nil {
		return pending{}, herr
	}
	if herr := s.takeSlot(r); herr != nil {
		return pending{}, herr
	}
	return s.enqueue(r.Context(), u, job.KindRecognize, "", nearest, quality, landmarks)
}

// postText is the course's contract: multipart field inputFile in,
// "<stem>:<name>" out, without a newline, waiting as long as it takes (up
// to cfg.TextWait).
func (s *Server) postText(w http.ResponseWriter, r *http.Request) *httpError {
	in := s.newIntake(w, r)
	defer in.release()
	nearest, herr := s.nearestParam(r)
	if herr != nil {
		return herr
	}
	quality, herr := qualityParam(r)
	if herr != nil {
		return herr
	}
	if !isMultipart(r) {
		return refuse(http.StatusUnsupportedMediaType, "not_multipart", "request must be multipart/form-data with the image in field %s", fileFields[0])
	}
	ups, herr := s.readMultipart(r, in, false, 1)
	if herr != nil {
		return herr
	}
	p, herr := s.enqueueRecognition(r, in, ups[0], nearest, quality, false)
	if herr != nil {
		return herr
	}
	defer p.done()
	res, err := s.await(r.Context(), p.id, p.ch, s.cfg.TextWait)
	switch {
	case errors.Is(err, errWaitTimeout):
		return refuse(http.StatusGatewayTimeout, "", "no answer within %s for request %s; GET /v1/recognitions/%s later", s.cfg.TextWait, p.id, p.id)
	case errors.Is(err, errStopping):
		return refuse(http.StatusServiceUnavailable, "", "server shutting down before request %s was answered; GET /v1/recognitions/%s later", p.id, p.id)
	case err != nil:
		return clientGone(err)
	}
	if res.Status == job.StatusFailed {
		return refuse(http.StatusInternalServerError, "", "request %s failed: %s", p.id, res.Error)
	}
	noteResult(r.Context(), res)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Request-Id", p.id)
	fmt.Fprintf(w, "%s:%s", res.Name, res.Answer)
	return nil
}

// status is the JSON of a request not answered yet.
type status struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Location string `json:"location"`
}

func pendingStatus(id string) status {
	return status{ID: id, Status: "pending", Location: "/v1/recognitions/" + id}
}

func (s *Server) postRecognition(w http.ResponseWriter, r *http.Request) *httpError {
	in := s.newIntake(w, r)
	defer in.release()
	nearest, herr := s.nearestParam(r)
	if herr != nil {
		return herr
	}
	quality, herr := qualityParam(r)
	if herr != nil {
		return herr
	}
	wait, herr := s.waitParam(r, s.cfg.APIWait)
	if herr != nil {
		return herr
	}
	landmarks, herr := boolParam(r, "landmarks")
	if herr != nil {
		return herr
	}
	var ups []upload
	switch {
	case isMultipart(r):
		ups, herr = s.readMultipart(r, in, false, 1)
	case isRawImage(r):
		ups, herr = s.readRaw(r, in)
	default:
		herr = refuse(http.StatusUnsupportedMediaType, "not_multipart",
			"send multipart/form-data with the image in field %s, or the image itself with Content-Type image/*", fileFields[0])
	}
	if herr != nil {
		return herr
	}
	p, herr := s.enqueueRecognition(r, in, ups[0], nearest, quality, landmarks)
	if herr != nil {
		return herr
	}
	defer p.done()
	return s.answerJSON(w, r, p, wait)
}

// answerJSON waits up to wait for p's Result: 200 with it, else 202 with
// where to look later.
func (s *Server) answerJSON(w http.ResponseWriter, r *http.Request, p pending, wait time.Duration) *httpError {
	if wait > 0 {
		res, err := s.await(r.Context(), p.id, p.ch, wait)
		switch {
		case err == nil:
			noteResult(r.Context(), res)
			writeJSON(w, http.StatusOK, res)
			return nil
		case !errors.Is(err, errWaitTimeout) && !errors.Is(err, errStopping):
			return clientGone(err)
		}
	}
	st := pendingStatus(p.id)
	w.Header().Set("Location", st.Location)
	writeJSON(w, http.StatusAccepted, st)
	return nil
}

func (s *Server) getRecognition(w http.ResponseWriter, r *http.Request) *httpError {
	id := r.PathValue("id")
	if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
		return refuse(http.StatusBadRequest, "bad_id", "%q is not a request id (a UUIDv7)", truncate(id, 60))
	}
	wait, herr := s.waitParam(r, 0)
	if herr != nil {
		return herr
	}
	res, found, err := s.result(r.Context(), id)
	if err != nil {
		s.log.Error("read result", "id", id, "err", err)
		return refuse(http.StatusServiceUnavailable, "", "output store unavailable, try again")
	}
	if found {
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	queued, err := s.deps.Inputs.Exists(r.Context(), job.InputKey(id))
	if err != nil {
		s.log.Error("check input", "id", id, "err", err)
		return refuse(http.StatusServiceUnavailable, "", "input store unavailable, try again")
	}
	if !queued {
		return refuse(http.StatusNotFound, "unknown_id", "no request with id %s", id)
	}
	ch, done := s.waiters.add(id)
	defer done()
	// The result may have landed between the first look and add.
	if res, found, err := s.result(r.Context(), id); err == nil && found {
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	return s.answerJSON(w, r, pending{id: id, ch: ch}, wait)
}
