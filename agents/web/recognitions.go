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

	galleries "github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
)

// pending is an accepted upload whose Result is awaited.
type pending struct {
	id   string
	ch   <-chan *job.Result
	done func()
}

// enqueue stores ups (one image, or two for a verification) and queues
// the request tmpl describes (its kind and parameters), registering the
// waiter before the request is sent so even the fastest reply finds it.
func (s *Server) enqueue(ctx context.Context, ups []upload, tmpl job.Request) (pending, *httpError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	id := job.NewID()
	noteID(ctx, id)
	name := ups[0].name
	if name == "" {
		name = id
	}
	req := job.NewRequest(id, name, tmpl.Nearest, s.deps.Now()).WithReplyTo(s.replyTo())
	req.Kind, req.Person, req.Collection, req.FaceID, req.Limit, req.Threshold = tmpl.Kind, tmpl.Person, tmpl.Collection, tmpl.FaceID, tmpl.Limit, tmpl.Threshold
	req.Landmarks = tmpl.Landmarks
	if len(ups) > 1 {
		// The second image has an id of its own, so retention expires it
		// by its age like any input.
		req.Input2 = job.InputKey(job.NewID())
	}
	// Last, so the schema version is the one the fields set above need.
	req = req.WithQuality(tmpl.Quality)
	body, err := job.Encode(req)
	if err != nil {
		return pending{}, refuse(http.StatusBadRequest, "bad_request", "%v", err)
	}
	for i, key := range []string{req.Input, req.Input2}[:len(ups)] {
		if err := s.deps.Inputs.Put(ctx, key, ups[i].data, http.DetectContentType(ups[i].data)); err != nil {
			s.log.Error("store input", "id", id, "err", err)
			return pending{}, refuse(http.StatusServiceUnavailable, "", "input store unavailable, try again")
		}
	}
	ch, done := s.waiters.add(id)
	if err := s.deps.Requests.Send(ctx, body); err != nil {
		done()
		s.log.Error("queue request", "id", id, "err", err)
		return pending{}, refuse(http.StatusServiceUnavailable, "", "request queue unavailable, try again")
	}
	s.log.Debug("queued", "id", id, "name", name, "kind", req.Kind, "bytes", len(ups[0].data))
	return pending{id: id, ch: ch, done: done}, nil
}

// enqueueChecked checks the uploaded images, takes the call's in-flight
// slot and queues them as the request tmpl describes: the shared front
// half of the routes that queue one job. The upload's memory is returned
// to the budget once the images are stored.
func (s *Server) enqueueChecked(r *http.Request, in *intake, ups []upload, tmpl job.Request) (pending, *httpError) {
	defer in.release()
	for i := range ups {
		if herr := s.check(r.Context(), in, &ups[i]); herr != nil {
			return pending{}, herr
		}
	}
	if herr := s.takeSlot(r); herr != nil {
		return pending{}, herr
	}
	return s.enqueue(r.Context(), ups, tmpl)
}

// postText is the course's contract: multipart field inputFile in,
// "<stem>:<name>" out, without a newline, waiting as long as it takes (up
// to cfg.TextWait).
func (s *Server) postText(w http.ResponseWriter, r *http.Request) *httpError {
	in := s.newIntake(w, r)
	defer in.release()
	if herr := s.allowCollection(r, galleries.DefaultCollection); herr != nil {
		return herr
	}
	nearest, herr := s.nearestParam(r)
	if herr != nil {
		return herr
	}
	threshold, herr := thresholdParam(r)
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
	p, herr := s.enqueueChecked(r, in, ups, job.Request{Nearest: nearest, Threshold: threshold, Quality: quality})
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
	if herr := s.allowCollection(r, galleries.DefaultCollection); herr != nil {
		return herr
	}
	nearest, herr := s.nearestParam(r)
	if herr != nil {
		return herr
	}
	threshold, herr := thresholdParam(r)
	if herr != nil {
		return herr
	}
	quality, herr := qualityParam(r)
	if herr != nil {
		return herr
	}
	landmarks, herr := boolParam(r, "landmarks")
	if herr != nil {
		return herr
	}
	return s.queueOne(w, r, job.Request{Nearest: nearest, Threshold: threshold, Quality: quality, Landmarks: landmarks})
}

// queueOne reads one image (multipart or raw), queues the request tmpl
// describes and answers its Result, or 202 after ?wait=.
func (s *Server) queueOne(w http.ResponseWriter, r *http.Request, tmpl job.Request) *httpError {
	in := s.newIntake(w, r)
	defer in.release()
	wait, herr := s.waitParam(r, s.cfg.APIWait)
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
	p, herr := s.enqueueChecked(r, in, ups, tmpl)
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
			if herr := s.allowResult(r, res); herr != nil {
				return herr
			}
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
		if herr := s.allowResult(r, res); herr != nil {
			return herr
		}
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
		if herr := s.allowResult(r, res); herr != nil {
			return herr
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	return s.answerJSON(w, r, pending{id: id, ch: ch}, wait)
}
