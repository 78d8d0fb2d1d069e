package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/imagefiles"
)

// fakeWeb is a test double for the web agent's POST / route: it answers
// "<stem>:<name>" from a fixed table and can be told to fail some attempts,
// answer 4xx, or cross-wire answers, so the client's retry and checking
// logic can be exercised without the real service.
type fakeWeb struct {
	names map[string]string // stem -> answer name
	// failFirst makes the first n attempts for each stem answer status failStatus.
	failFirst  int
	failStatus int
	// badRequest stems are answered 400 every time.
	badRequest map[string]bool
	// crossWire maps a stem to the stem whose answer it gets.
	crossWire map[string]string

	mu       sync.Mutex
	attempts map[string]int
	parts    []partSeen
	inFlight atomic.Int32
	peak     atomic.Int32
}

type partSeen struct {
	field, filename, contentType string
}

func (f *fakeWeb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	mr, err := r.MultipartReader()
	if err != nil {
		http.Error(w, "error: not multipart", http.StatusBadRequest)
		return
	}
	part, err := mr.NextPart()
	if err != nil {
		http.Error(w, "error: no part", http.StatusBadRequest)
		return
	}
	data, _ := io.ReadAll(part)
	stem := strings.TrimSuffix(part.FileName(), filepath.Ext(part.FileName()))
	f.mu.Lock()
	f.parts = append(f.parts, partSeen{part.FormName(), part.FileName(), part.Header.Get("Content-Type")})
	f.attempts[stem]++
	attempt := f.attempts[stem]
	f.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // let requests overlap
	switch {
	case len(data) == 0:
		http.Error(w, "error: empty file", http.StatusBadRequest)
	case f.badRequest[stem]:
		w.WriteHeader(http.StatusUnsupportedMediaType)
		fmt.Fprint(w, "error: not an image")
	case attempt <= f.failFirst:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(f.failStatus)
		fmt.Fprint(w, "error: busy")
	default:
		answerFor := stem
		if other, ok := f.crossWire[stem]; ok {
			answerFor = other
		}
		fmt.Fprintf(w, "%s:%s", answerFor, f.names[answerFor])
	}
}

func newFakeWeb() *fakeWeb {
	return &fakeWeb{names: map[string]string{}, attempts: map[string]int{}, badRequest: map[string]bool{}, crossWire: map[string]string{}}
}

// writeImages writes n small files test_00.jpg... into a new directory.
func writeImages(t *testing.T, n int) (dir string, files []imagefiles.File) {
	t.Helper()
	dir = t.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("test_%02d.jpg", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("image %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, imagefiles.OSFile(p))
	}
	return dir, files
}

func testConfig(url string) Config {
	cfg := DefaultConfig(url)
	cfg.Concurrency = 8
	cfg.RetryWaitMin, cfg.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	return cfg
}

func TestRun(t *testing.T) {
	people := []string{"Paul", "Emily", "Bob", "Gerry"}
	tests := map[string]struct {
		setup       func(f *fakeWeb)
		labels      func(l map[string]string)
		noLabels    bool
		want        Summary
		wantVerdict map[string]Verdict
		wantTries   map[string]int
	}{
		"all correct": {
			want: Summary{Requests: 20, Completed: 20, Correct: 20, Labelled: true},
		},
		"503 with Retry-After is retried": {
			setup:     func(f *fakeWeb) { f.failFirst, f.failStatus = 2, http.StatusServiceUnavailable },
			want:      Summary{Requests: 20, Completed: 20, Correct: 20, Labelled: true},
			wantTries: map[string]int{"test_00": 3, "test_19": 3},
		},
		"429 with Retry-After is retried": {
			setup:     func(f *fakeWeb) { f.failFirst, f.failStatus = 2, http.StatusTooManyRequests },
			want:      Summary{Requests: 20, Completed: 20, Correct: 20, Labelled: true},
			wantTries: map[string]int{"test_00": 3, "test_07": 3},
		},
		"500 is retried": {
			setup:     func(f *fakeWeb) { f.failFirst, f.failStatus = 1, http.StatusInternalServerError },
			want:      Summary{Requests: 20, Completed: 20, Correct: 20, Labelled: true},
			wantTries: map[string]int{"test_05": 2},
		},
		"5xx beyond the retries fails": {
			setup:       func(f *fakeWeb) { f.failFirst, f.failStatus = 100, http.StatusBadGateway },
			want:        Summary{Requests: 20, Failed: 20, Labelled: true},
			wantVerdict: map[string]Verdict{"test_00": Failed},
			wantTries:   map[string]int{"test_00": 3}, // 1 + RetryMax 2
		},
		"4xx is not retried": {
			setup:       func(f *fakeWeb) { f.badRequest["test_03"] = true },
			want:        Summary{Requests: 20, Completed: 19, Failed: 1, Correct: 19, Labelled: true},
			wantVerdict: map[string]Verdict{"test_03": Failed},
			wantTries:   map[string]int{"test_03": 1},
		},
		"cross-wired answer is wrong even when the name matches": {
			// test_00 and test_04 are both Paul: the name alone would pass.
			setup:       func(f *fakeWeb) { f.crossWire["test_00"] = "test_04" },
			want:        Summary{Requests: 20, Completed: 20, Correct: 19, Wrong: 1, Labelled: true},
			wantVerdict: map[string]Verdict{"test_00": Wrong, "test_04": Correct},
		},
		"wrong name": {
			labels:      func(l map[string]string) { l["test_07"] = "Nobody" },
			want:        Summary{Requests: 20, Completed: 20, Correct: 19, Wrong: 1, Labelled: true},
			wantVerdict: map[string]Verdict{"test_07": Wrong},
		},
		"missing label is wrong": {
			labels:      func(l map[string]string) { delete(l, "test_08") },
			want:        Summary{Requests: 20, Completed: 20, Correct: 19, Wrong: 1, Labelled: true},
			wantVerdict: map[string]Verdict{"test_08": Wrong},
		},
		"without labels only the stem is checked": {
			noLabels:    true,
			setup:       func(f *fakeWeb) { f.crossWire["test_01"] = "test_02" },
			want:        Summary{Requests: 20, Completed: 20, Correct: 19, Wrong: 1},
			wantVerdict: map[string]Verdict{"test_01": Wrong},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, files := writeImages(t, 20)
			fw := newFakeWeb()
			labels := map[string]string{}
			for i := range 20 {
				stem := fmt.Sprintf("test_%02d", i)
				fw.names[stem] = people[i%len(people)]
				labels[stem] = people[i%len(people)]
			}
			if tc.setup != nil {
				tc.setup(fw)
			}
			if tc.labels != nil {
				tc.labels(labels)
			}
			srv := httptest.NewServer(fw)
			defer srv.Close()
			cfg := testConfig(srv.URL + "/")
			cfg.RetryMax = 2
			if !tc.noLabels {
				cfg.Labels = labels
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			calls := 0
			got, outcomes := c.Run(context.Background(), files, func(Outcome) { calls++ })
			if calls != len(files) {
				t.Errorf("done called %d times, want %d", calls, len(files))
			}
			if got.Requests != tc.want.Requests || got.Completed != tc.want.Completed || got.Failed != tc.want.Failed ||
				got.Correct != tc.want.Correct || got.Wrong != tc.want.Wrong || got.Labelled != tc.want.Labelled {
				t.Errorf("summary = %+v, want counts %+v", got, tc.want)
			}
			if got.Completed > 0 && (got.P50MS <= 0 || got.P50MS > got.P95MS || got.P95MS > got.P99MS) {
				t.Errorf("latencies p50 %v p95 %v p99 %v not positive and ordered", got.P50MS, got.P95MS, got.P99MS)
			}
			byStem := map[string]Outcome{}
			for i, o := range outcomes {
				if o.File != files[i].Name {
					t.Fatalf("outcome %d is for %s, want %s", i, o.File, files[i].Name)
				}
				byStem[o.Stem] = o
			}
			for stem, v := range tc.wantVerdict {
				if o := byStem[stem]; o.Verdict != v || (v != Correct && o.Reason == "") {
					t.Errorf("%s: verdict %q reason %q, want %q with a reason", stem, o.Verdict, o.Reason, v)
				}
			}
			for stem, n := range tc.wantTries {
				fw.mu.Lock()
				tries := fw.attempts[stem]
				fw.mu.Unlock()
				if tries != n {
					t.Errorf("%s: %d attempts, want %d", stem, tries, n)
				}
			}
			if got.OK() != (tc.want.Failed == 0 && tc.want.Wrong == 0 && tc.want.Correct == tc.want.Requests) {
				t.Errorf("OK() = %v for %+v", got.OK(), got)
			}
		})
	}
}

func TestRunSendsLikeTheCourseGenerator(t *testing.T) {
	_, files := writeImages(t, 30)
	fw := newFakeWeb()
	srv := httptest.NewServer(fw)
	defer srv.Close()
	cfg := testConfig(srv.URL + "/")
	cfg.Concurrency = 10
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Run(context.Background(), files, nil)
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if len(fw.parts) != 30 {
		t.Fatalf("server saw %d requests, want 30", len(fw.parts))
	}
	for _, p := range fw.parts {
		if p.field != "inputFile" || !strings.HasPrefix(p.filename, "test_") || !strings.HasSuffix(p.filename, ".jpg") || p.contentType != "" {
			t.Errorf("part field=%q filename=%q content-type=%q, want inputFile, test_NN.jpg, none", p.field, p.filename, p.contentType)
		}
	}
	if peak := fw.peak.Load(); peak > 10 || peak < 2 {
		t.Errorf("peak concurrency %d, want 2..10", peak)
	}
}

func TestRunCancelled(t *testing.T) {
	_, files := writeImages(t, 5)
	fw := newFakeWeb()
	srv := httptest.NewServer(fw)
	defer srv.Close()
	c, err := New(testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, outcomes := c.Run(ctx, files, nil)
	if s.Failed != 5 || s.Completed != 0 {
		t.Fatalf("cancelled run: %+v, want 5 failed", s)
	}
	for _, o := range outcomes {
		if o.Reason == "" {
			t.Errorf("%s: failed without a reason", o.File)
		}
	}
}

func TestRunUnreadableFileFails(t *testing.T) {
	fw := newFakeWeb()
	srv := httptest.NewServer(fw)
	defer srv.Close()
	c, err := New(testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	s, outcomes := c.Run(context.Background(), []imagefiles.File{imagefiles.OSFile(filepath.Join(t.TempDir(), "gone.jpg"))}, nil)
	if s.Failed != 1 || !strings.Contains(outcomes[0].Reason, "read image") {
		t.Fatalf("summary %+v reason %q, want one failure reading the image", s, outcomes[0].Reason)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		edit func(c *Config)
		want string // substring of the error; "" = valid
	}{
		"default":          {edit: func(c *Config) {}},
		"no scheme":        {edit: func(c *Config) { c.URL = "localhost:8080" }, want: "http:// or https://"},
		"zero concurrency": {edit: func(c *Config) { c.Concurrency = 0 }, want: "1..10000"},
		"huge concurrency": {edit: func(c *Config) { c.Concurrency = 10001 }, want: "1..10000"},
		"empty field":      {edit: func(c *Config) { c.Field = "" }, want: "field"},
		"negative timeout": {edit: func(c *Config) { c.Timeout = -time.Second }, want: "timeout"},
		"retries":          {edit: func(c *Config) { c.RetryMax = 101 }, want: "0..100"},
		"waits":            {edit: func(c *Config) { c.RetryWaitMax = 0 }, want: "min <= max"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig("http://127.0.0.1:8080/")
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	tests := map[string]struct {
		lat  []time.Duration
		p    int
		want float64
	}{
		"p50 of 1..100": {lat, 50, 50},
		"p95 of 1..100": {lat, 95, 95},
		"p99 of 1..100": {lat, 99, 99},
		"p99 of one":    {lat[:1], 99, 1},
		"p50 of two":    {lat[:2], 50, 1},
		"p95 of three":  {lat[:3], 95, 3},
		"empty is zero": {nil, 50, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := percentileMS(tc.lat, tc.p); got != tc.want {
				t.Fatalf("percentileMS(p%d) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestRunRetriesConnectionErrors(t *testing.T) {
	_, files := writeImages(t, 1)
	ln := httptest.NewServer(http.NotFoundHandler())
	url := ln.URL
	ln.Close() // nothing listens there any more
	cfg := testConfig(url)
	cfg.RetryMax = 2
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, outcomes := c.Run(context.Background(), files, nil)
	if s.Failed != 1 || outcomes[0].Status != 0 || !strings.Contains(outcomes[0].Reason, "gave up after 3 attempt(s)") {
		t.Fatalf("summary %+v reason %q, want one failure after 3 attempts", s, outcomes[0].Reason)
	}
}

// TestRunSendsTheKey checks that --api-key travels as a bearer token on
// every request, and that without it a web agent that wants one refuses
// (401 is not retried).
func TestRunSendsTheKey(t *testing.T) {
	const key = "fc_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	fw := newFakeWeb()
	fw.names["test_00"], fw.names["test_01"] = "Paul", "Ann"
	var refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			refused.Add(1)
			http.Error(w, "error: an API key is required", http.StatusUnauthorized)
			return
		}
		fw.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, files := writeImages(t, 2)
	for name, tc := range map[string]struct {
		key               string
		correct, refusals int
	}{
		"with key":    {key, 2, 0},
		"without key": {"", 0, 2},
	} {
		t.Run(name, func(t *testing.T) {
			refused.Store(0)
			cfg := testConfig(srv.URL + "/")
			cfg.APIKey = tc.key
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, _ := c.Run(context.Background(), files, nil)
			if s.Correct != tc.correct || int(refused.Load()) != tc.refusals {
				t.Fatalf("summary %+v with %d refusals, want %d correct and %d refusals", s, refused.Load(), tc.correct, tc.refusals)
			}
		})
	}
}

// Requests refused together by one rate limit must not all come back
// together: the wait a Retry-After asks for is spread over [n, 2n).
func TestSpreadBackoff(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}}
	seen := map[time.Duration]bool{}
	for range 50 {
		w := spreadBackoff(time.Millisecond, time.Minute, 1, resp)
		if w < time.Second || w >= 2*time.Second {
			t.Fatalf("wait %s after Retry-After: 1, want 1s..2s", w)
		}
		seen[w] = true
	}
	if len(seen) < 10 {
		t.Fatalf("%d distinct waits in 50, want them spread", len(seen))
	}
	if w := spreadBackoff(time.Second, time.Minute, 0, &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}}); w != time.Second {
		t.Fatalf("wait %s without Retry-After, want the plain backoff 1s", w)
	}
}
