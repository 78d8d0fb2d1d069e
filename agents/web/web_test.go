package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	galleries "github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
)

func TestTextRoute(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"test_00": "Paul"}})
	_, hs := e.server(testConfig())
	for _, field := range fileFields {
		t.Run(field, func(t *testing.T) {
			body, ct := multipartBody(t, filePart{"other", "", []byte("ignored")}, filePart{field, "test_00.png", pngImage(t, 64, 64)})
			r := do(t, http.MethodPost, hs.URL+"/", ct, body)
			if r.status != http.StatusOK || r.body != "test_00:Paul" {
				t.Fatalf("POST / = %d %q, want 200 \"test_00:Paul\" without newline", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
		})
	}
	// The worker deletes each request after its reply, which may be after
	// the call has returned.
	waitFor(t, "the request queue empty", func() bool { d := e.depth("requests"); return d.Visible+d.InFlight == 0 })
}

// pixelBomb is a valid PNG header claiming 30000x30000 pixels.
func pixelBomb() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 30000)
	binary.BigEndian.PutUint32(ihdr[4:], 30000)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	var chunk bytes.Buffer
	chunk.WriteString("IHDR")
	chunk.Write(ihdr)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk.Bytes())
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk.Bytes()))
	return b.Bytes()
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{}
	e.startWorker(w)
	cfg := testConfig()
	cfg.MaxBodyBytes = 64 << 10
	s, hs := e.server(cfg)
	good := pngImage(t, 64, 64)
	truncated := good[:len(good)/2]
	type req struct {
		method, path, ct string
		body             func(t *testing.T) ([]byte, string)
	}
	form := func(parts ...filePart) func(t *testing.T) ([]byte, string) {
		return func(t *testing.T) ([]byte, string) {
			r, ct := multipartBody(t, parts...)
			var b bytes.Buffer
			_, _ = b.ReadFrom(r)
			return b.Bytes(), ct
		}
	}
	raw := func(ct string, data []byte) func(t *testing.T) ([]byte, string) {
		return func(t *testing.T) ([]byte, string) { return data, ct }
	}
	tests := map[string]struct {
		req
		status int
		want   string // substring of the reason
		allow  string
	}{
		"text: missing field":         {req{"POST", "/", "", form(filePart{"photo", "a.png", good})}, 400, "missing file field inputFile", ""},
		"text: empty file":            {req{"POST", "/", "", form(filePart{"inputFile", "a.png", nil})}, 400, "empty", ""},
		"text: not multipart":         {req{"POST", "/", "", raw("text/plain", []byte("hello"))}, 415, "multipart/form-data", ""},
		"text: text file":             {req{"POST", "/", "", form(filePart{"inputFile", "notes.jpg", []byte("just some text, not an image at all")})}, 415, "notes.jpg", ""},
		"text: forgotten @":           {req{"POST", "/", "", form(filePart{"inputFile", "", []byte("photo.jpg")})}, 415, "-F inputFile=@photo.jpg", ""},
		"text: corrupt image":         {req{"POST", "/", "", form(filePart{"inputFile", "cut.png", truncated})}, 422, "cut.png", ""},
		"text: pixel bomb":            {req{"POST", "/", "", form(filePart{"inputFile", "bomb.png", pixelBomb()})}, 422, "bomb.png", ""},
		"text: too small":             {req{"POST", "/", "", form(filePart{"inputFile", "dot.png", pngImage(t, 2, 2)})}, 422, "dot.png", ""},
		"text: body too large":        {req{"POST", "/", "", form(filePart{"inputFile", "big.png", bytes.Repeat([]byte("x"), 100<<10)})}, 413, "limit of 65536 bytes", ""},
		"text: wrong method":          {req{"PUT", "/", "", raw("", nil)}, 405, "PUT not allowed", "GET, HEAD, POST"},
		"text: bad nearest":           {req{"POST", "/?nearest=maybe", "", form(filePart{"inputFile", "a.png", good})}, 400, "nearest", ""},
		"text: bad quality":           {req{"POST", "/?quality=auto", "", form(filePart{"inputFile", "a.png", good})}, 400, "none, low, medium or high", ""},
		"v1: bad quality":             {req{"POST", "/v1/recognitions?quality=best", "", raw("image/png", good)}, 400, "none, low, medium or high", ""},
		"unknown route":               {req{"GET", "/nope", "", raw("", nil)}, 404, "no route GET /nope", ""},
		"healthz wrong method":        {req{"POST", "/healthz", "", raw("", nil)}, 405, "not allowed", "GET, HEAD"},
		"v1: unknown route":           {req{"GET", "/v1/nope", "", raw("", nil)}, 404, "no route", ""},
		"v1: not an image type":       {req{"POST", "/v1/recognitions", "", raw("text/plain", []byte("hi"))}, 415, "image/*", ""},
		"v1: raw text as image":       {req{"POST", "/v1/recognitions", "", raw("image/jpeg", []byte("hi there"))}, 415, "image", ""},
		"v1: control chars in name":   {req{"POST", "/v1/recognitions?name=a%01b", "", raw("image/png", good)}, 400, "control characters", ""},
		"v1: name too long":           {req{"POST", "/v1/recognitions?name=" + strings.Repeat("n", 256), "", raw("image/png", good)}, 400, "at most 255", ""},
		"v1: raw empty":               {req{"POST", "/v1/recognitions", "", raw("image/png", nil)}, 400, "empty", ""},
		"v1: raw too large":           {req{"POST", "/v1/recognitions", "", raw("image/png", bytes.Repeat([]byte("x"), 100<<10))}, 413, "limit", ""},
		"v1: wrong method":            {req{"GET", "/v1/recognitions", "", raw("", nil)}, 405, "GET not allowed", "POST"},
		"v1: bad wait":                {req{"POST", "/v1/recognitions?wait=forever", "", raw("image/png", good)}, 400, "wait", ""},
		"v1: wait out of range":       {req{"POST", "/v1/recognitions?wait=11m", "", raw("image/png", good)}, 400, "out of range 0s..10m0s", ""},
		"v1: unknown id":              {req{"GET", "/v1/recognitions/" + job.NewID(), "", raw("", nil)}, 404, "no request with id", ""},
		"v1: not an id":               {req{"GET", "/v1/recognitions/12345", "", raw("", nil)}, 400, "not a request id", ""},
		"v1: v4 uuid is not an id":    {req{"GET", "/v1/recognitions/4d1a0d1e-3c1f-4b5e-9d2a-6f7e8a9b0c1d", "", raw("", nil)}, 400, "not a request id", ""},
		"v1: id wrong method":         {req{"PUT", "/v1/recognitions/" + job.NewID(), "", raw("", nil)}, 405, "not allowed", "DELETE, GET, HEAD"},
		"enrol: reserved person":      {req{"POST", "/v1/gallery/unknown", "", form(filePart{"file", "a.png", good})}, 400, "reserved", ""},
		"enrol: no images":            {req{"POST", "/v1/gallery/Paul", "", form()}, 400, "missing file field", ""},
		"enrol: one bad image of two": {req{"POST", "/v1/gallery/Paul", "", form(filePart{"a", "a.png", good}, filePart{"b", "b.png", truncated})}, 422, "b.png", ""},
		"enrol: not multipart":        {req{"POST", "/v1/gallery/Paul", "", raw("image/png", good)}, 415, "multipart", ""},
		"gallery: wrong method":       {req{"POST", "/v1/gallery", "", raw("", nil)}, 405, "not allowed", "GET, HEAD"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data, ct := tc.body(t)
			if tc.ct != "" {
				ct = tc.ct
			}
			r := do(t, tc.method, hs.URL+tc.path, ct, bytes.NewReader(data))
			if r.status != tc.status {
				t.Fatalf("%s %s = %d %q, want %d", tc.method, tc.path, r.status, r.body, tc.status)
			}
			oneLineBody(t, r)
			if strings.HasPrefix(tc.path, "/v1/") {
				got := decodeJSON[map[string]string](t, r)
				if !strings.Contains(got["error"], tc.want) {
					t.Errorf("error %q, want it to mention %q", got["error"], tc.want)
				}
			} else if !strings.HasPrefix(r.body, "error: ") || !strings.Contains(r.body, tc.want) {
				t.Errorf("body %q, want \"error: ...%s...\"", r.body, tc.want)
			}
			if tc.allow != "" && r.header.Get("Allow") != tc.allow {
				t.Errorf("Allow = %q, want %q", r.header.Get("Allow"), tc.allow)
			}
		})
	}
	if d := e.depth("requests"); d.Visible+d.InFlight != 0 {
		t.Errorf("bad input reached the request queue: %+v", d)
	}
	if n := w.seen.Load(); n != 0 {
		t.Errorf("worker saw %d requests from bad input, want 0", n)
	}
	if keys, _ := e.store.List(context.Background(), job.InputPrefix); len(keys) != 0 {
		t.Errorf("bad input stored: %v", keys)
	}
	if got := counter(s.metrics.rejected, "corrupt"); got != 2 {
		t.Errorf("rejected{corrupt} = %v, want 2", got)
	}
}

func TestManyConcurrentCallsGetTheirOwnAnswers(t *testing.T) {
	e := newEnv(t)
	const n = 60
	answers := map[string]string{}
	for i := range n {
		answers[fmt.Sprintf("img_%03d", i)] = fmt.Sprintf("Person%03d", i)
	}
	w := &fakeWorker{answers: answers}
	e.startWorker(w)
	s, hs := e.server(testConfig())
	img := pngImage(t, 32, 32)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("img_%03d", i)
			r := postImage(t, hs.URL, name+".png", img)
			if want := name + ":" + answers[name]; r.status != 200 || r.body != want {
				errs <- fmt.Sprintf("%s: got %d %q, want %q", name, r.status, r.body, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	// Each call is answered once, woken by its reply or (if polling the
	// store got there first) finding the result itself.
	if got := counter(s.metrics.answers, "reply") + counter(s.metrics.answers, "store"); got != n {
		t.Errorf("answers = %v, want %d", got, n)
	}
	waitFor(t, "every reply to be taken", func() bool {
		return counter(s.metrics.replies, "routed")+counter(s.metrics.replies, "orphaned") == n
	})
	if counter(s.metrics.replies, "routed") == 0 {
		t.Error("no reply was routed to its call")
	}
	// Replies are deleted in a batch after they are routed.
	waitFor(t, "every reply deleted", func() bool {
		d := e.depth("replies")
		return d.Visible+d.InFlight == 0
	})
	if w.wrongInput.Load() != 0 {
		t.Errorf("%d requests named inputs that were not stored", w.wrongInput.Load())
	}
}

func TestRecognitionsAPI(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{answers: map[string]string{"face": "Emily"}}
	w.hold.Store(true)
	e.startWorker(w)
	_, hs := e.server(testConfig())

	// wait=0: accepted at once, 202 with where to look.
	body, ct := multipartBody(t, filePart{"inputFile", "face.jpg", pngImage(t, 40, 40)})
	r := do(t, http.MethodPost, hs.URL+"/v1/recognitions?wait=0", ct, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST wait=0 = %d %q, want 202", r.status, r.body)
	}
	st := decodeJSON[status](t, r)
	if st.Status != "pending" || r.header.Get("Location") != "/v1/recognitions/"+st.ID || st.Location != r.header.Get("Location") {
		t.Fatalf("202 body %+v Location %q", st, r.header.Get("Location"))
	}
	if g := do(t, http.MethodGet, hs.URL+st.Location, "", nil); g.status != http.StatusAccepted {
		t.Fatalf("GET pending = %d %q, want 202", g.status, g.body)
	}
	w.hold.Store(false)
	// GET with wait returns the result once the worker has answered.
	g := do(t, http.MethodGet, hs.URL+st.Location+"?wait=10s", "", nil)
	if g.status != http.StatusOK {
		t.Fatalf("GET wait=10s = %d %q, want 200", g.status, g.body)
	}
	res := decodeJSON[job.Result](t, g)
	if res.ID != st.ID || res.Name != "face" || res.Answer != "Emily" || res.Status != job.StatusDone {
		t.Fatalf("result %+v", res)
	}
	if h := do(t, http.MethodHead, hs.URL+st.Location, "", nil); h.status != http.StatusOK {
		t.Errorf("HEAD = %d, want 200", h.status)
	}

	// Raw image body, named by ?name=, answered within the default wait.
	r = do(t, http.MethodPost, hs.URL+"/v1/recognitions?name=face&nearest=1", "image/png", bytes.NewReader(pngImage(t, 40, 40)))
	if r.status != http.StatusOK {
		t.Fatalf("raw POST = %d %q, want 200", r.status, r.body)
	}
	if res := decodeJSON[job.Result](t, r); res.Answer != "Emily" || res.Name != "face" {
		t.Fatalf("raw result %+v", res)
	}

	// No name at all: the id stands in.
	r = do(t, http.MethodPost, hs.URL+"/v1/recognitions", "application/octet-stream", bytes.NewReader(pngImage(t, 40, 40)))
	if res := decodeJSON[job.Result](t, r); r.status != 200 || res.Name != res.ID || res.Answer != "unknown" {
		t.Fatalf("unnamed raw POST = %d %+v, want the id as name", r.status, res)
	}
}

func TestWaitLimits(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{}
	w.hold.Store(true)
	e.startWorker(w)
	cfg := testConfig()
	cfg.TextWait = time.Second
	cfg.APIWait = 300 * time.Millisecond
	_, hs := e.server(cfg)
	r := postImage(t, hs.URL, "slow.png", pngImage(t, 32, 32))
	if r.status != http.StatusGatewayTimeout || !strings.Contains(r.body, "no answer within 1s") || !strings.Contains(r.body, "/v1/recognitions/") {
		t.Fatalf("POST / without worker = %d %q, want 504 naming the id", r.status, r.body)
	}
	oneLineBody(t, r)
	r = do(t, http.MethodPost, hs.URL+"/v1/recognitions", "image/png", bytes.NewReader(pngImage(t, 32, 32)))
	if r.status != http.StatusAccepted || !strings.HasPrefix(r.header.Get("Location"), "/v1/recognitions/") {
		t.Fatalf("POST /v1 past api wait = %d %q, want 202 with Location", r.status, r.body)
	}
}

func TestBusyAnswers503(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{answers: map[string]string{"first": "Paul"}}
	w.hold.Store(true)
	e.startWorker(w)
	cfg := testConfig()
	cfg.MaxInFlight = 1
	s, hs := e.server(cfg)
	done := make(chan response, 1)
	go func() { done <- postImage(t, hs.URL, "first.png", pngImage(t, 32, 32)) }()
	waitFor(t, "the first call to wait", func() bool { return s.waiters.count() == 1 })
	r := postImage(t, hs.URL, "second.png", pngImage(t, 32, 32))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" || !strings.Contains(r.body, "busy") {
		t.Fatalf("second call = %d %q Retry-After %q, want 503 busy with Retry-After 1", r.status, r.body, r.header.Get("Retry-After"))
	}
	oneLineBody(t, r)
	// Health stays answerable while busy.
	if h := do(t, http.MethodGet, hs.URL+"/healthz", "", nil); h.status != 200 {
		t.Errorf("healthz while busy = %d", h.status)
	}
	w.hold.Store(false)
	if r := <-done; r.body != "first:Paul" {
		t.Fatalf("first call = %d %q", r.status, r.body)
	}
	if r := postImage(t, hs.URL, "first.png", pngImage(t, 32, 32)); r.status != 200 {
		t.Fatalf("after the burst = %d %q, want 200", r.status, r.body)
	}
}

func TestFailedResult(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{fail: "gave up after 5 attempts: store unavailable"})
	_, hs := e.server(testConfig())
	r := postImage(t, hs.URL, "x.png", pngImage(t, 32, 32))
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "gave up after 5 attempts") {
		t.Fatalf("POST / failed job = %d %q, want 500 with the reason", r.status, r.body)
	}
	oneLineBody(t, r)
	r = do(t, http.MethodPost, hs.URL+"/v1/recognitions", "image/png", bytes.NewReader(pngImage(t, 32, 32)))
	if res := decodeJSON[job.Result](t, r); r.status != 200 || res.Status != job.StatusFailed || res.Error == "" {
		t.Fatalf("POST /v1 failed job = %d %+v, want 200 with status failed", r.status, res)
	}
}

func TestLostReplyIsFoundInStore(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"lost": "Bob"}, dropReplies: true})
	s, hs := e.server(testConfig())
	r := postImage(t, hs.URL, "lost.png", pngImage(t, 32, 32))
	if r.status != 200 || r.body != "lost:Bob" {
		t.Fatalf("POST / with lost reply = %d %q, want 200 lost:Bob", r.status, r.body)
	}
	if got := counter(s.metrics.answers, "store"); got != 1 {
		t.Errorf("answers via store = %v, want 1", got)
	}
}

// TestReplyCarriesResult: a reply that carries its Result answers the
// waiting call without reading the store; one without it sends the call
// to the store.
func TestReplyCarriesResult(t *testing.T) {
	for name, tc := range map[string]struct {
		w     *fakeWorker
		reply float64 // answers counted via reply
	}{
		"carried, not stored": {w: &fakeWorker{answers: map[string]string{"x": "Bob"}, unstored: true}, reply: 1},
		"bare reply, stored":  {w: &fakeWorker{answers: map[string]string{"x": "Bob"}, bareReplies: true}, reply: 1},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.startWorker(tc.w)
			s, hs := e.server(testConfig())
			r := postImage(t, hs.URL, "x.png", pngImage(t, 32, 32))
			if r.status != 200 || r.body != "x:Bob" {
				t.Fatalf("POST / = %d %q, want 200 x:Bob", r.status, r.body)
			}
			if got := counter(s.metrics.answers, "reply"); got != tc.reply {
				t.Errorf("answers via reply = %v, want %v", got, tc.reply)
			}
			if got := counter(s.metrics.answers, "store"); got != 0 {
				t.Errorf("answers via store polling = %v, want 0", got)
			}
		})
	}
}

func TestRestartKeepsResults(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{answers: map[string]string{"kept": "Gerry"}}
	w.hold.Store(true)
	e.startWorker(w)
	s1, hs1 := e.server(testConfig())
	r := do(t, http.MethodPost, hs1.URL+"/v1/recognitions?wait=0", "image/png", bytes.NewReader(pngImage(t, 32, 32)))
	id := decodeJSON[status](t, r).ID
	r2 := do(t, http.MethodPost, hs1.URL+"/v1/recognitions?wait=0&name=kept", "image/png", bytes.NewReader(pngImage(t, 32, 32)))
	id2 := decodeJSON[status](t, r2).ID
	hs1.Close()
	s1.Close()
	// The worker answers while no web agent runs: the replies are orphaned.
	w.hold.Store(false)
	waitFor(t, "the worker to answer both", func() bool { return w.seen.Load() == 2 })

	s2, hs2 := e.server(testConfig())
	for _, id := range []string{id, id2} {
		g := do(t, http.MethodGet, hs2.URL+"/v1/recognitions/"+id, "", nil)
		if g.status != 200 || decodeJSON[job.Result](t, g).ID != id {
			t.Fatalf("GET after restart = %d %q, want 200 with the result", g.status, g.body)
		}
	}
	// seen counts a request when the worker takes it, before its reply is
	// sent: wait for both replies, then for the queue to be clear.
	waitFor(t, "the new server to count both orphaned replies", func() bool { return counter(s2.metrics.replies, "orphaned") == 2 })
	waitFor(t, "the new server to clear the orphaned replies", func() bool {
		d := e.depth("replies")
		return d.Visible+d.InFlight == 0
	})
}

func TestInvalidReplyIsDropped(t *testing.T) {
	e := newEnv(t)
	s, _ := e.server(testConfig())
	if err := e.queue("replies").Send(context.Background(), []byte(`{"v":99}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the invalid reply to be dropped", func() bool { return counter(s.metrics.replies, "invalid") == 1 })
	waitFor(t, "the reply queue to empty", func() bool {
		d := e.depth("replies")
		return d.Visible+d.InFlight == 0
	})
}

func TestEnrolAndGallery(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{})
	_, hs := e.server(testConfig())
	// A listing before the enrolments: the ones after must still show them
	// (the host's own writes renew its copy of the index).
	if g := decodeJSON[galleryList](t, do(t, http.MethodGet, hs.URL+"/v1/gallery", "", nil)); g.Faces != 0 {
		t.Fatalf("gallery before enrolling %+v", g)
	}
	body, ct := multipartBody(t,
		filePart{"file", "paul1.png", pngImage(t, 32, 32)},
		filePart{"file", "paul2.png", pngImage(t, 40, 40)},
		filePart{"note", "", []byte("not a file, ignored")})
	r := do(t, http.MethodPost, hs.URL+"/v1/gallery/Paul%20Smith", ct, body)
	if r.status != http.StatusOK {
		t.Fatalf("enrol = %d %q, want 200", r.status, r.body)
	}
	got := decodeJSON[enrolment](t, r)
	if got.Person != "Paul Smith" || len(got.Results) != 2 || len(got.Pending) != 0 || got.Results[0].Name != "paul1" || got.Results[0].Answer != "Paul Smith" {
		t.Fatalf("enrolment %+v", got)
	}
	body, ct = multipartBody(t, filePart{"inputFile", "emily.png", pngImage(t, 32, 32)})
	if r := do(t, http.MethodPost, hs.URL+"/v1/gallery/Emily", ct, body); r.status != 200 {
		t.Fatalf("enrol Emily = %d %q", r.status, r.body)
	}
	g := do(t, http.MethodGet, hs.URL+"/v1/gallery", "", nil)
	gal := decodeJSON[galleryList](t, g)
	want := galleryList{Persons: []galleries.PersonCount{{Name: "Emily", Faces: 1}, {Name: "Paul Smith", Faces: 2}}, Faces: 3}
	if g.status != 200 || fmt.Sprint(gal) != fmt.Sprint(want) {
		t.Fatalf("gallery = %d %+v, want %+v", g.status, gal, want)
	}
}

func TestEnrolPending(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{}
	w.hold.Store(true)
	e.startWorker(w)
	_, hs := e.server(testConfig())
	body, ct := multipartBody(t, filePart{"file", "a.png", pngImage(t, 32, 32)}, filePart{"file", "b.png", pngImage(t, 32, 32)})
	r := do(t, http.MethodPost, hs.URL+"/v1/gallery/Ann?wait=0", ct, body)
	got := decodeJSON[enrolment](t, r)
	if r.status != http.StatusAccepted || len(got.Pending) != 2 || r.header.Get("Location") != got.Pending[0].Location {
		t.Fatalf("enrol wait=0 = %d %+v, want 202 with 2 pending", r.status, got)
	}
	if d := e.depth("requests"); d.Visible != 2 {
		t.Fatalf("request queue %+v, want 2 enrol requests", d)
	}
}

func TestHealthReadyMetricsPage(t *testing.T) {
	e := newEnv(t)
	_, hs := e.server(testConfig())
	if r := do(t, http.MethodGet, hs.URL+"/healthz", "", nil); r.status != 200 || r.body != "ok\n" {
		t.Errorf("healthz = %d %q", r.status, r.body)
	}
	if r := do(t, http.MethodGet, hs.URL+"/readyz", "", nil); r.status != 200 {
		t.Errorf("readyz = %d %q", r.status, r.body)
	}
	postImage(t, hs.URL, "x.txt", []byte("text")) // one rejection to count
	m := do(t, http.MethodGet, hs.URL+"/metrics", "", nil)
	for _, want := range []string{
		`facecloud_web_requests_total{code="200",method="get",route="healthz"} 1`,
		`facecloud_web_requests_total{code="415",method="post",route="root"} 1`,
		`facecloud_web_rejected_total{reason="not_image"} 1`,
		"facecloud_web_request_duration_seconds_bucket",
		"facecloud_web_in_flight_requests",
		"facecloud_web_waiting_calls 0",
		`facecloud_web_replies_total{outcome="orphaned"} 0`,
	} {
		if !strings.Contains(m.body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	p := do(t, http.MethodGet, hs.URL+"/", "", nil)
	if p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(p.body, `name="inputFile"`) || !strings.Contains(p.body, "/v1/recognitions") || strings.Contains(p.body, "http") {
		t.Errorf("upload page = %d %q: want HTML with an inputFile form, the API call, and no external assets", p.status, p.header.Get("Content-Type"))
	}
}

func TestNotReady(t *testing.T) {
	e := newEnv(t)
	s, err := New(testConfig(), Deps{Requests: failingQueue{}, Replies: e.queue("replies"), Inputs: e.store, Outputs: e.store, Keys: e.keys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := httptestRecorder(s, http.MethodGet, "/readyz")
	if rec.status != http.StatusServiceUnavailable || !strings.Contains(rec.body, "request queue: connection refused") {
		t.Fatalf("readyz with a dead queue = %d %q, want 503 naming the queue", rec.status, rec.body)
	}
	// A dead queue refuses work with 503 and stores... only the input.
	body, ct := multipartBody(t, filePart{"inputFile", "a.png", pngImage(t, 32, 32)})
	r := httptestDo(s, http.MethodPost, "/", ct, body)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "request queue unavailable") {
		t.Fatalf("POST / with a dead queue = %d %q, want 503 with Retry-After", r.status, r.body)
	}
}

func TestGracefulShutdownDeliversLateAnswers(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{answers: map[string]string{"late": "Paul"}}
	w.hold.Store(true)
	e.startWorker(w)
	l := e.listen(testConfig())
	answer := make(chan response, 1)
	go func() { answer <- postImage(t, "http://"+l.addr, "late.png", pngImage(t, 32, 32)) }()
	waitFor(t, "the call to wait", func() bool { return l.s.waiters.count() == 1 })
	l.stop() // shutdown begins while the call waits
	waitFor(t, "the drain to begin", l.s.Draining)
	// New work is refused, clearly, while the waiting call goes on.
	if r := postImage(t, "http://"+l.addr, "new.png", pngImage(t, 32, 32)); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "shutting down") || !strings.Contains(r.body, "not accepted") {
		t.Errorf("new request while draining = %d %q, want 503 saying it was not accepted", r.status, r.body)
	}
	w.hold.Store(false) // the answer arrives during the drain
	if r := <-answer; r.status != 200 || r.body != "late:Paul" {
		t.Fatalf("call answered during drain = %d %q, want 200 late:Paul", r.status, r.body)
	}
	if err := <-l.served; err != nil {
		t.Fatalf("Serve = %v, want nil after a clean drain", err)
	}
}

func TestShutdownAfterDrainTimeoutAnswers503(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{}
	w.hold.Store(true)
	e.startWorker(w)
	cfg := testConfig()
	cfg.DrainTimeout = 200 * time.Millisecond
	l := e.listen(cfg)
	answer := make(chan response, 1)
	go func() { answer <- postImage(t, "http://"+l.addr, "never.png", pngImage(t, 32, 32)) }()
	waitFor(t, "the call to wait", func() bool { return l.s.waiters.count() == 1 })
	l.stop()
	r := <-answer
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "shutting down") || !strings.Contains(r.body, "/v1/recognitions/") {
		t.Fatalf("call cut by shutdown = %d %q, want 503 naming where to poll", r.status, r.body)
	}
	if err := <-l.served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func TestNewRejectsBadSetup(t *testing.T) {
	e := newEnv(t)
	bad := testConfig()
	bad.MaxInFlight = 0
	if _, err := New(bad, e.deps()); err == nil || !strings.Contains(err.Error(), "1..100000") {
		t.Errorf("New with max in-flight 0 = %v, want a range error", err)
	}
	if _, err := New(testConfig(), Deps{Requests: e.queue("requests")}); err == nil {
		t.Error("New without replies and stores succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		edit func(c *Config)
		want string
	}{
		"default":           {func(c *Config) {}, ""},
		"empty addr":        {func(c *Config) { c.Addr = "" }, `addr "" is not an address`},
		"port alone":        {func(c *Config) { c.Addr = "18556" }, "127.0.0.1:18556"},
		"tiny body":         {func(c *Config) { c.MaxBodyBytes = 10 }, "1KiB..1GiB"},
		"pixels":            {func(c *Config) { c.MaxPixels = 0 }, "256..500000000"},
		"text wait":         {func(c *Config) { c.TextWait = 0 }, "text wait 0s out of range 1s..24h0m0s"},
		"api over max wait": {func(c *Config) { c.APIWait = c.MaxWait + 1 }, "api wait"},
		"poll max < poll":   {func(c *Config) { c.PollMax = c.PollInterval / 2 }, "poll max"},
		"reply batch":       {func(c *Config) { c.ReplyBatch = 11 }, "1..10"},
		"reply wait":        {func(c *Config) { c.ReplyWait = 21 * time.Second }, "reply wait"},
		"enrol images":      {func(c *Config) { c.MaxEnrollImages = 0 }, "1..1000"},
		"retry after":       {func(c *Config) { c.RetryAfter = 0 }, "retry-after"},
		"two at once":       {func(c *Config) { c.ReplyBatch, c.MaxPixels = 0, 0 }, "max pixels"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The body must arrive within ReadTimeout, but the wait for the answer may
// be far longer: the read deadline must not cut the waiting call.
func TestLongWaitOutlivesReadTimeout(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{answers: map[string]string{"patient": "Paul"}}
	w.hold.Store(true)
	e.startWorker(w)
	cfg := testConfig()
	cfg.ReadTimeout = time.Second
	l := e.listen(cfg)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		w.hold.Store(false)
	}()
	r := do(t, http.MethodPost, "http://"+l.addr+"/v1/recognitions?name=patient&wait=10s", "image/png", bytes.NewReader(pngImage(t, 32, 32)))
	if r.status != 200 || decodeJSON[job.Result](t, r).Answer != "Paul" {
		t.Fatalf("call waiting past the read timeout = %d %q, want 200 naming Paul", r.status, r.body)
	}
}

// BenchmarkPostText measures the web agent's own cost per POST / round
// trip on the real local queue and store, with a worker double that answers
// at once: upload check, store, queue, reply routing and result read. Run
// with -cpu to vary parallel callers.
func BenchmarkPostText(b *testing.B) {
	e := newEnv(b)
	e.startWorker(&fakeWorker{answers: map[string]string{"bench": "Paul"}})
	cfg := testConfig()
	// The key's rate limit would answer 429 past its burst: the benchmark
	// measures the call's cost, not the limit.
	cfg.KeyRate = 1e6
	_, hs := e.server(cfg)
	img := pngImage(b, 64, 64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := postImage(b, hs.URL, "bench.png", img); r.status != 200 || r.body != "bench:Paul" {
				b.Errorf("POST / = %d %q", r.status, r.body)
				return
			}
		}
	})
}

// TestClientGoneIsNotAServerError: a client that hangs up while its call
// waits is counted under 499, not as a 5xx an alarm would fire on.
func TestClientGoneIsNotAServerError(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{}
	w.hold.Store(true)
	e.startWorker(w)
	s, hs := e.server(testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		body, ct := multipartBody(t, filePart{"inputFile", "gone.png", pngImage(t, 32, 32)})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/", body)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the call to wait", func() bool { return s.waiters.count() == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled call got an answer")
	}
	waitFor(t, "the call to be counted", func() bool {
		return counter(s.metrics.requests, "root", "post", "499") == 1
	})
	if n := counter(s.metrics.requests, "root", "post", "503"); n != 0 {
		t.Errorf("a client that went away was counted as 503 (%v times)", n)
	}
}
