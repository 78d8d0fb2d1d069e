package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
	"github.com/facecloud/facecloud/agents/thumbs"
)

// env is one data directory with the real local adapters: a SQLite queue
// file with the request and reply queues and a file store, as `facecloud
// local` lays them out.
type env struct {
	t     testing.TB
	dir   string
	store platform.Store
	// keys is the store's key ring, which holds one admin key, testKey.
	keys *keys.Ring
}

// testKey is the admin key of the newest env, which do sends with every
// request; the tests of who may call what send their own (see doAs).
var testKey string

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := blobstore.OpenURL(context.Background(), &url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, "store"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ring := keys.NewRing(keys.NewStore(st), nil)
	key, _, err := ring.Create(context.Background(), "test admin", []keys.Scope{keys.Admin})
	if err != nil {
		t.Fatal(err)
	}
	testKey = key
	// The gallery's compactor, as the scaler runs it: erasures wait for it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&gallery.Compactor{Store: st, Interval: 20 * time.Millisecond}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &env{t: t, dir: dir, store: st, keys: ring}
}

// newKey creates a key with scopes in e's store, valid at once.
func (e *env) newKey(scopes ...keys.Scope) string {
	e.t.Helper()
	key, _, err := e.keys.Create(context.Background(), "test", scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

// collectionKey creates a key with scopes limited to collections.
func (e *env) collectionKey(collections []string, scopes ...keys.Scope) string {
	e.t.Helper()
	key, _, err := e.keys.Create(context.Background(), "test", scopes, collections...)
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

// queue opens a new handle on a queue of the data directory, as another
// process would.
func (e *env) queue(name string) *sqlitequeue.Queue {
	e.t.Helper()
	opts := sqlitequeue.DefaultOptions
	opts.Visibility = 5 * time.Second
	q, err := sqlitequeue.Open(filepath.Join(e.dir, "queue.db"), name, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { q.Close() })
	return q
}

func (e *env) depth(name string) platform.Depth {
	e.t.Helper()
	d, err := e.queue(name).Depth(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// testConfig is DefaultConfig with waits short enough for tests.
func testConfig() Config {
	c := DefaultConfig()
	c.Addr = "127.0.0.1:0"
	c.TextWait = 20 * time.Second
	c.APIWait = 10 * time.Second
	c.PollInterval = 50 * time.Millisecond
	c.PollMax = 200 * time.Millisecond
	c.ReplyWait = 200 * time.Millisecond
	c.DrainTimeout = 5 * time.Second
	return c
}

// server starts a web agent on e's queues and store, served by httptest.
func (e *env) server(cfg Config) (*Server, *httptest.Server) {
	e.t.Helper()
	s, err := New(cfg, e.deps())
	if err != nil {
		e.t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	e.t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, hs
}

// deps are the data directory's queues and store, with a fresh metrics
// registry.
func (e *env) deps() Deps {
	return Deps{
		Requests: e.queue("requests"),
		Replies:  e.queue("replies"),
		Inputs:   e.store,
		Outputs:  e.store,
		Registry: prometheus.NewRegistry(),
		Keys:     e.keys,
	}
}

// listening is a Server running its own Serve on a loopback port, for the
// tests of what Serve owns (graceful shutdown, connection timeouts), which
// an httptest server around Handler would not exercise.
type listening struct {
	s      *Server
	addr   string             // host:port it listens on
	stop   context.CancelFunc // begins the graceful shutdown
	served <-chan error       // Serve's result once it returns
}

func (e *env) listen(cfg Config) listening {
	e.t.Helper()
	s, err := New(cfg, e.deps())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	return listening{s: s, addr: ln.Addr().String(), stop: cancel, served: served}
}

// fakeWorker is a test double for the worker agent: it takes requests off
// the queue, reads the stored input and stores a Result whose answer comes
// from a table (no face model), adds a face and its thumbnail (of the
// whole image) to the collection for enrol requests, answers the other
// kinds with Results of their shape, then replies and deletes — the
// worker's protocol without its engine.
type fakeWorker struct {
	answers map[string]string // request name -> answer; missing -> "unknown"
	// dropReplies stores results but sends no reply (a lost reply).
	dropReplies bool
	// bareReplies sends replies without the Result, as an earlier worker
	// does or the worker for a Result too large to carry.
	bareReplies bool
	// unstored carries the Result in the reply without storing it: only a
	// web host that answers from the reply can answer.
	unstored bool
	// fail answers every request as failed with this error.
	fail string
	// hold, while set, keeps requests queued.
	hold atomic.Bool
	// seen counts requests handled.
	seen atomic.Int32
	// wrongInput counts requests whose input was missing from the store.
	wrongInput atomic.Int32
	// family, when set, holds the web hosts' own reply queues: a request
	// naming one of them is replied there, as the worker agent does.
	family platform.QueueFamily
	// faces counts the faces enrolled, each given its own descriptor.
	faces atomic.Int32
}

func (e *env) startWorker(w *fakeWorker) {
	e.t.Helper()
	reqs, reps := e.queue("requests"), e.queue("replies")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if w.hold.Load() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			msgs, err := reqs.Receive(ctx, 10, 100*time.Millisecond)
			if err != nil {
				continue
			}
			for _, m := range msgs {
				w.handle(ctx, e.store, reps, m)
				_ = reqs.Delete(ctx, m.Receipt)
			}
		}
	})
	e.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func (w *fakeWorker) handle(ctx context.Context, st platform.Store, reps platform.Queue, m platform.Message) {
	var req job.Request
	if err := job.Decode(m.Body, &req); err != nil {
		return
	}
	w.seen.Add(1)
	data, err := st.Get(ctx, req.Input)
	if err != nil {
		w.wrongInput.Add(1)
	}
	res := job.Result{V: job.Version, ID: req.ID, Name: req.Name, Status: job.StatusDone, Kind: req.Kind, Finished: time.Now().UTC()}
	c := req.Collection
	if c == "" {
		c = gallery.DefaultCollection
	}
	whole := job.Box{W: 64, H: 64}
	switch {
	case w.fail != "":
		res.Status, res.Error = job.StatusFailed, w.fail
	case req.Kind == job.KindEnroll:
		res.Answer, res.Collection = req.Person, c
		id := req.FaceID
		if id == "" {
			id = req.ID
		}
		w.faces.Add(1)
		var d face.Descriptor
		d[int(w.faces.Load())%128] = 1
		_ = gallery.AddFace(ctx, st, c, gallery.Entry{Person: req.Person, ID: id, Request: req.ID, Source: req.Name, Descriptor: d})
		if jpg, err := thumbs.FromImage(data, whole, imageio.DefaultLimits); err == nil {
			_ = thumbs.Put(ctx, st, c, req.Person, id, jpg)
		}
		res.Faces = []job.Face{{Box: whole, Score: 1, Name: req.Person, FaceID: id}}
	case req.Kind == job.KindDetect:
		res.Answer = "1 face"
		res.Detections = []job.Detection{{Box: whole, Score: 0.9, Landmarks: make([]job.Point, 68)}}
	case req.Kind == job.KindVerify:
		v := &job.Verification{Match: true, Distance: 0.3, Similarity: gallery.Similarity(0.3), Threshold: 0.6, Person: req.Person}
		res.Answer, res.Verification, res.Input2 = "match", v, req.Input2
		if req.Person != "" {
			res.Collection, v.FaceID = c, "f1"
		}
		res.Faces = []job.Face{{Box: whole, Score: 1, Distance: 0.3}}
	case req.Kind == job.KindSearch:
		res.Answer, res.Collection = "unknown", c
		res.Faces = []job.Face{{Box: whole, Score: 1, Name: "unknown", Distance: 0.9, Similarity: gallery.Similarity(0.9),
			Candidates: []job.Candidate{{Person: "Paul", FaceID: "f1", Distance: 0.9, Similarity: gallery.Similarity(0.9)}}}}
	default:
		res.Answer, res.Collection = w.answers[req.Name], c
		if res.Answer == "" {
			res.Answer = "unknown"
		}
	}
	body, _ := job.Encode(res)
	if !w.unstored {
		if err := st.Put(ctx, job.ResultKey(req.ID), body, "application/json"); err != nil {
			return
		}
	}
	if w.dropReplies {
		return
	}
	rep, _ := job.NewReply(res)
	if w.bareReplies {
		rep, _ = job.Encode(job.Reply{V: job.Version, ID: req.ID, Status: res.Status, Output: job.ResultKey(req.ID)})
	}
	if req.ReplyTo != "" && w.family != nil && w.family.Contains(req.ReplyTo) {
		if q, err := w.family.Open(ctx, req.ReplyTo); err == nil {
			_ = q.Send(ctx, rep)
			q.Close()
		}
		return
	}
	_ = reps.Send(ctx, rep)
}

// pngImage encodes a w x h image.
func pngImage(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// multipartBody builds a form with one file part per (field, filename, data).
func multipartBody(t testing.TB, parts ...filePart) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != "" {
			disp += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", disp)
		pw, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

type filePart struct {
	field, filename string
	data            []byte
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request with the admin key testKey.
func do(t testing.TB, method, url, contentType string, body io.Reader) response {
	t.Helper()
	return doAs(t, http.Header{"Authorization": {"Bearer " + testKey}}, method, url, contentType, body)
}

// doAs sends a request with the headers given (a key, an Origin, ...).
func doAs(t testing.TB, h http.Header, method, url, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// postImage sends one image to POST / as the course's generator does.
func postImage(t testing.TB, base, filename string, data []byte) response {
	t.Helper()
	body, ct := multipartBody(t, filePart{"inputFile", filename, data})
	return do(t, http.MethodPost, base+"/", ct, body)
}

func decodeJSON[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("body %q is not the JSON expected: %v", r.body, err)
	}
	return v
}

// counter reads one series of a counter vector.
func counter(c *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

// oneLineBody checks an error body is exactly one line.
func oneLineBody(t testing.TB, r response) {
	t.Helper()
	trimmed := strings.TrimSuffix(r.body, "\n")
	if trimmed == "" || strings.ContainsAny(trimmed, "\r\n") {
		t.Errorf("error body %q is not one line", r.body)
	}
}

// failingQueue is a test double for an unreachable queue service: every
// call fails.
type failingQueue struct{}

var errUnreachable = errors.New("connection refused")

func (failingQueue) Send(context.Context, []byte) error { return errUnreachable }
func (failingQueue) Receive(ctx context.Context, _ int, wait time.Duration) ([]platform.Message, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(min(wait, 50*time.Millisecond)):
	}
	return nil, errUnreachable
}
func (failingQueue) Delete(context.Context, string) error                { return errUnreachable }
func (failingQueue) Extend(context.Context, string, time.Duration) error { return errUnreachable }
func (failingQueue) Depth(context.Context) (platform.Depth, error) {
	return platform.Depth{}, errUnreachable
}
func (failingQueue) Close() error { return nil }

// httptestDo runs one request through s's handler without a network.
func httptestDo(s *Server, method, path, contentType string, body io.Reader) response {
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func httptestRecorder(s *Server, method, path string) response {
	return httptestDo(s, method, path, "", nil)
}
