package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/platform"
	live "github.com/facecloud/facecloud/agents/status"
)

// statusServer starts a web agent named host on e's queues and store.
func (e *env) statusServer(cfg Config, host string) *httptest.Server {
	e.t.Helper()
	deps := e.deps()
	deps.Host = host
	s, err := New(cfg, deps)
	if err != nil {
		e.t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	e.t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return hs
}

// TestStatusRoute makes calls of every kind on one host, puts another
// host's report and the scaler's in the store, and reads GET /v1/status:
// the queue read live, the dead letters and fleet from the scaler, the
// calls of both hosts, the failures with their reasons.
func TestStatusRoute(t *testing.T) {
	e := newEnv(t)
	w := e.startConsoleWorker()
	cfg := testConfig()
	cfg.StatusEvery = 0 // this host's figures come from memory here
	hs := e.statusServer(cfg, "web-1")
	ctx := context.Background()

	if r := postImage(t, hs.URL, "ok.png", pngImage(t, 64, 64)); r.status != http.StatusOK {
		t.Fatalf("POST / = %d %s", r.status, r.body)
	}
	if r := postImage(t, hs.URL, "notes.png", []byte("not an image")); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("POST / of text = %d", r.status)
	}
	if r := postImage(t, hs.URL, "fail-1.png", pngImage(t, 64, 64)); r.status != http.StatusInternalServerError {
		t.Fatalf("POST / of a failing image = %d %s", r.status, r.body)
	}
	body, ct := multipartBody(t, filePart{"inputFile", "fail-2.png", pngImage(t, 32, 32)})
	if r := do(t, http.MethodPost, hs.URL+"/v1/recognitions", ct, body); r.status != http.StatusOK {
		t.Fatalf("POST /v1/recognitions of a failing image = %d %s", r.status, r.body)
	}
	// Neither a path the service does not serve nor a call answered 202
	// counts.
	if r := do(t, http.MethodGet, hs.URL+"/favicon.ico", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET /favicon.ico = %d", r.status)
	}
	w.pause()
	body, ct = multipartBody(t, filePart{"inputFile", "queued.png", pngImage(t, 32, 32)})
	if r := do(t, http.MethodPost, hs.URL+"/v1/recognitions?wait=0", ct, body); r.status != http.StatusAccepted {
		t.Fatalf("queue a request: %d %s", r.status, r.body)
	}

	now := time.Now().UTC()
	other := live.NewRecorder("web-2", now.Add(-time.Hour))
	for i := range 5 {
		other.Answered(now.Add(-time.Duration(i)*time.Second), 2*time.Second)
	}
	if err := live.Put(ctx, e.store, live.WebKey("web-2"), other.Report(now, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	dead := 4
	err := live.Put(ctx, e.store, live.ScalerKey, live.ScalerReport{
		V: live.Version, Holder: "scaler-1", Written: now, Polled: now, EveryMS: 5000, IntervalMS: 1000,
		Policy: live.Policy{Max: 3, TargetBacklog: 4}, Queue: live.Queue{Visible: 9, DeadLetter: &dead},
		Fleet: live.Fleet{Desired: 3, Running: 2, Pending: 1, Max: 3},
		Last:  live.Decision{At: now, Action: "hold", From: 3, To: 3, Backlog: 1, Reason: "at the maximum"},
	})
	if err != nil {
		t.Fatal(err)
	}

	r := do(t, http.MethodGet, hs.URL+"/v1/status", "", nil)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /v1/status = %d %q: %s", r.status, r.header.Get("Cache-Control"), r.body)
	}
	st := decodeJSON[live.Status](t, r)
	if q := st.Queue; q == nil || q.Source != "queue" || q.Visible+q.InFlight != 1 || q.DeadLetter == nil || *q.DeadLetter != dead {
		t.Errorf("queue %+v: want the one queued request read live, the scaler's 4 dead letters", q)
	}
	if f := st.Fleet; f == nil || f.Desired != 3 || f.Running != 2 || f.Pending != 1 {
		t.Errorf("fleet %+v", f)
	}
	if st.Scaler == nil || st.Scaler.Holder != "scaler-1" || st.Scaler.Stale {
		t.Errorf("scaler %+v", st.Scaler)
	}
	// ok.png here, five on web-2; notes.png, fail-1 and fail-2 failed.
	if st.Requests.OK != 6 || st.Requests.Failed != 3 || st.Requests.P50MS == nil {
		t.Errorf("requests %+v: want 6 answered, 3 failed", st.Requests)
	}
	if len(st.Hosts) != 2 || st.Hosts[0].Host != "web-1" || st.Hosts[1].Host != "web-2" {
		t.Errorf("hosts %+v", st.Hosts)
	}
	want := map[string]bool{
		"POST /v1/recognitions 200 request failed: fail-2: no face found": false,
		"POST / 500 request ":       false, // its id follows
		"POST / 415 notes.png: not": false,
	}
	for _, f := range st.Failures {
		line := fmt.Sprintf("%s %d %s", f.Call, f.Status, f.Reason)
		if strings.Contains(line, "favicon") || f.Host != "web-1" || f.ID == "" && f.Status != http.StatusUnsupportedMediaType {
			t.Errorf("failure %+v", f)
		}
		for w := range want {
			if strings.HasPrefix(line, w) {
				want[w] = true
			}
		}
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("no failure %q in %+v", w, st.Failures)
		}
	}
	if len(st.Problems) != 0 {
		t.Errorf("problems %q", st.Problems)
	}

	for name, scopes := range map[string][]keys.Scope{"recognize": {keys.Recognize}, "enroll": {keys.Enroll}} {
		h := http.Header{"Authorization": {"Bearer " + e.newKey(scopes...)}}
		if r := doAs(t, h, http.MethodGet, hs.URL+"/v1/status", "", nil); r.status != http.StatusForbidden {
			t.Errorf("GET /v1/status with a %s key = %d, want 403", name, r.status)
		}
	}
	if r := doAs(t, http.Header{}, http.MethodGet, hs.URL+"/v1/status", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/status without a key = %d, want 401", r.status)
	}
}

// TestStatusWithoutReports: before any scaler has written, the status says
// so and still answers with the queue and this host's figures.
func TestStatusWithoutReports(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.StatusEvery = 0
	hs := e.statusServer(cfg, "web-1")
	st := decodeJSON[live.Status](t, do(t, http.MethodGet, hs.URL+"/v1/status", "", nil))
	if st.Queue == nil || st.Queue.DeadLetter != nil || st.Fleet != nil || st.Scaler != nil {
		t.Errorf("status %+v: want the queue without dead letters, no fleet, no scaler", st)
	}
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "no scaler report") {
		t.Errorf("problems %q", st.Problems)
	}
	if len(st.Hosts) != 1 || len(st.Steps) != int(live.Window/live.StepLength) {
		t.Errorf("hosts %+v, %d steps", st.Hosts, len(st.Steps))
	}
}

// TestStatusPublished: a web agent writes its report to the output store
// once it has calls to report, where another host's status finds them.
func TestStatusPublished(t *testing.T) {
	e := newEnv(t)
	e.startConsoleWorker()
	cfg := testConfig()
	cfg.StatusEvery = 20 * time.Millisecond
	one := e.statusServer(cfg, "web-1")
	cfg.StatusEvery = 0
	two := e.statusServer(cfg, "web-2")
	if r := postImage(t, one.URL, "ok.png", pngImage(t, 64, 64)); r.status != http.StatusOK {
		t.Fatalf("POST / = %d %s", r.status, r.body)
	}
	ctx := context.Background()
	for {
		b, err := e.store.Get(ctx, live.WebKey("web-1"))
		if err != nil && !errors.Is(err, platform.ErrNotFound) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"ok":1`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := decodeJSON[live.Status](t, do(t, http.MethodGet, two.URL+"/v1/status", "", nil))
	if st.Requests.OK != 1 || len(st.Hosts) != 2 {
		t.Fatalf("web-2's status %+v, hosts %+v: want web-1's answered call", st.Requests, st.Hosts)
	}
}
