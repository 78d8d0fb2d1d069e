// The service's live state for operators: every call is noted (answered,
// failed and why) in a live.Recorder, which the agent writes to the
// output store as its live.WebReport; GET /v1/status merges it with the
// other web hosts' reports, the scaler's and a read of the queue.

package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	live "github.com/facecloud/facecloud/agents/status"
)

// workRoutes are the routes whose calls are the service's work: counted in
// the throughput and latency of the status, besides their failures.
var workRoutes = map[string]bool{"root": true, "recognitions": true, "enroll": true}

// call is what a handler tells the status about its call.
type call struct {
	mu       sync.Mutex
	answered bool   // a Result was delivered
	failed   string // the delivered Result failed, with this error
	id       string // the request's id
}

type callKey struct{}

// noteResult tells the call's status that res was delivered to the client.
func noteResult(ctx context.Context, res job.Result) {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered, c.id = true, res.ID
	if res.Status == job.StatusFailed && c.failed == "" {
		c.failed = res.Error
	}
}

// noteID tells the call's status the id of the request it made.
func noteID(ctx context.Context, id string) {
	if c, _ := ctx.Value(callKey{}).(*call); c != nil {
		c.mu.Lock()
		c.id = id
		c.mu.Unlock()
	}
}

// observe notes each call of h in the recorder: answered work calls with
// their duration, and every failed call (a refusal, or a failed Result)
// with its one-line reason.
func (s *Server) observe(route string, h http.Handler) http.Handler {
	if route == "unknown" {
		// A path the service does not serve (a browser's favicon, a
		// scanner's probes) is no call of the service, and would push
		// its real failures out of the list.
		return h
	}
	work := workRoutes[route]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{}
		rw := &statusWriter{ResponseWriter: w}
		t0 := time.Now()
		h.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
		d := time.Since(t0)
		now := s.deps.Now()
		pattern := r.Pattern
		if _, p, ok := strings.Cut(pattern, " "); ok {
			pattern = p
		}
		if pattern == "/{$}" {
			pattern = "/"
		}
		if pattern == "" {
			pattern = "(no route)"
		}
		c.mu.Lock()
		answered, failedResult, id := c.answered, c.failed, c.id
		c.mu.Unlock()
		code := rw.code
		if code == 0 {
			code = http.StatusOK
		}
		// The call's route pattern, not its path: a path may name a person.
		f := live.Failure{At: now, Call: r.Method + " " + pattern, Status: code, ID: id}
		switch {
		case code == StatusClientClosedRequest:
		case code >= 400:
			f.Reason = rw.reason()
			if work && r.Method == http.MethodPost {
				s.recorder.Failed(f)
			} else {
				s.recorder.Failure(f)
			}
		case failedResult != "":
			f.Reason = "request failed: " + failedResult
			s.recorder.Failed(f)
		case answered && work && r.Method == http.MethodPost:
			s.recorder.Answered(now, d)
		}
	})
}

// statusWriter notes the status code of an answer and, for an error, the
// start of its body (the one-line reason).
type statusWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.code >= 400 && w.body.Len() < 1024 {
		w.body.Write(p[:min(len(p), 1024-w.body.Len())])
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (the upload
// rate cut sets read deadlines through it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reason is the error's one-line reason: the text of "error: <reason>" or
// of {"error": "<reason>"}, else the status's name.
func (w *statusWriter) reason() string {
	b := w.body.Bytes()
	var j struct {
		Error string `json:"error"`
	}
	switch {
	case json.Unmarshal(b, &j) == nil && j.Error != "":
		return j.Error
	case bytes.HasPrefix(b, []byte("error: ")):
		return strings.TrimSpace(string(b[len("error: "):]))
	}
	return http.StatusText(w.code)
}

// host names this agent in its status report.
func (s *Server) host() string {
	if s.deps.Host != "" {
		return s.deps.Host
	}
	h, _ := os.Hostname()
	if h == "" {
		h = "web"
	}
	return h
}

// statusCache keeps the store's reports for a short while, so consoles
// polling GET /v1/status do not each read the store every time.
type statusCache struct {
	mu       sync.Mutex
	scaler   *live.ScalerReport
	scalerE  error
	scalerAt time.Time
	web      []live.WebReport
	webE     error
	webAt    time.Time
}

// How long the cached reports are reused: the scaler's changes every
// second or so; other web hosts' are written every few seconds, and
// listing them costs more.
const (
	scalerCache = time.Second
	webCache    = 10 * time.Second
)

// liveStatus merges this host's figures, the other hosts' and the
// scaler's reports and a read of the request queue.
func (s *Server) liveStatus(ctx context.Context) live.Status {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := s.deps.Now()
	src := live.Sources{Now: now}
	if d, err := s.deps.Requests.Depth(ctx); err != nil {
		src.LiveErr = err
	} else {
		src.Live = &live.Queue{Visible: d.Visible, InFlight: d.InFlight}
	}
	c := &s.statusCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.scalerAt) >= scalerCache {
		r, err := live.ReadScaler(ctx, s.deps.Outputs)
		c.scaler, c.scalerE, c.scalerAt = nil, err, time.Now()
		if err == nil {
			c.scaler = &r
		}
	}
	own := live.WebKey(s.host())
	if time.Since(c.webAt) >= webCache {
		c.web, c.webE = live.ReadWeb(ctx, s.deps.Outputs, own)
		c.webAt = time.Now()
	}
	src.Scaler, src.ScalerErr = c.scaler, c.scalerE
	src.Web = append([]live.WebReport{s.recorder.Report(now, s.cfg.StatusEvery)}, c.web...)
	src.WebErr = c.webE
	return live.Merge(src)
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) *httpError {
	st := s.liveStatus(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
	return nil
}

// statusHeartbeat is how often the report is written even when nothing
// happened, so readers can tell an idle host from a stopped one.
const statusHeartbeat = time.Minute

// publishStatus writes this host's report every cfg.StatusEvery while calls
// come, else every statusHeartbeat, until ctx ends. A failing write is
// logged at its first failure and then every ten minutes.
func (s *Server) publishStatus(ctx context.Context) {
	key := live.WebKey(s.host())
	t := time.NewTicker(s.cfg.StatusEvery)
	defer t.Stop()
	var last, failing time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.deps.Now()
		if !last.IsZero() && !s.recorder.Changed(last) && now.Sub(last) < statusHeartbeat {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := live.Put(wctx, s.deps.Outputs, key, s.recorder.Report(now, s.cfg.StatusEvery))
		cancel()
		switch {
		case err == nil:
			if !failing.IsZero() {
				s.log.Info("status report written again", "key", key)
				failing = time.Time{}
			}
			last = now
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return
		case failing.IsZero() || time.Since(failing) > 10*time.Minute:
			s.log.Warn("cannot write this host's status report for the console and facecloud status of other hosts", "key", key, "err", err)
			failing = time.Now()
		}
	}
}
