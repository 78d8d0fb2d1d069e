package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform/blobstore"
)

func TestHistogramQuantiles(t *testing.T) {
	tests := map[string]struct {
		durations []time.Duration
		q         float64
		want      float64 // ms
	}{
		"one value":          {[]time.Duration{1500 * time.Millisecond}, 0.5, 1500},
		"median of a spread": {spread(1, 1000), 0.5, 500},
		"p95 of a spread":    {spread(1, 1000), 0.95, 950},
		"sub-millisecond":    {[]time.Duration{300 * time.Microsecond}, 0.5, 1},
		"minutes":            {[]time.Duration{4 * time.Minute, 5 * time.Minute}, 0.5, 240000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			for _, d := range tc.durations {
				h.Add(d)
			}
			got, ok := h.Quantile(tc.q)
			if !ok {
				t.Fatal("no quantile from a histogram with counts")
			}
			if math.Abs(got-tc.want)/tc.want > 0.19 {
				t.Errorf("q%.2f = %.1f ms, want %.1f within 19%%", tc.q, got, tc.want)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		if _, ok := (Histogram{}).Quantile(0.5); ok {
			t.Fatal("an empty histogram has a quantile")
		}
	})
}

// spread is lo..hi milliseconds, one of each.
func spread(lo, hi int) []time.Duration {
	var out []time.Duration
	for ms := lo; ms <= hi; ms++ {
		out = append(out, time.Duration(ms)*time.Millisecond)
	}
	return out
}

func TestHistogramJSON(t *testing.T) {
	var h Histogram
	for _, d := range spread(1, 300) {
		h.Add(d)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	a, _ := h.Quantile(0.9)
	c, _ := back.Quantile(0.9)
	if back.Count() != 300 || a != c {
		t.Fatalf("round trip: count %d q90 %v, want 300 and %v (%s)", back.Count(), c, a, b)
	}
	for name, bad := range map[string]string{"bucket": `[[999,1]]`, "count": `[[3,-1]]`, "shape": `{"3":1}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s: %s decoded", name, bad)
		}
	}
}

func TestRecorderKeepsTheWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := NewRecorder("web-1", t0)
	r.Answered(t0.Add(time.Second), 200*time.Millisecond)
	r.Answered(t0.Add(2*time.Second), 400*time.Millisecond)
	r.Failed(Failure{At: t0.Add(3 * time.Second), Call: "POST /", Status: 422, Reason: "not an image"})
	later := t0.Add(Window + 30*time.Second)
	r.Answered(later, time.Second)
	rep := r.Report(later, 5*time.Second)
	if len(rep.Steps) != 1 || rep.Steps[0].OK != 1 {
		t.Fatalf("steps older than the window kept: %+v", rep.Steps)
	}
	if len(rep.Failures) != 0 {
		t.Fatalf("failures older than the window reported: %+v", rep.Failures)
	}
	if f := r.Report(t0.Add(time.Minute), time.Second).Failures; len(f) != 1 || f[0].Host != "web-1" {
		t.Fatalf("failures %+v", f)
	}
	if !r.Changed(later) || r.Changed(later.Add(time.Millisecond)) {
		t.Fatal("Changed does not follow the latest record")
	}
	for i := range MaxFailures + 5 {
		r.Failure(Failure{At: later.Add(time.Duration(i) * time.Millisecond), Call: "GET /v1/x", Status: 404, Reason: "no route"})
	}
	if n := len(r.Report(later, time.Second).Failures); n != MaxFailures {
		t.Fatalf("%d failures kept, want %d", n, MaxFailures)
	}
}

func TestMerge(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 10, 5, 0, time.UTC)
	a, b := NewRecorder("web-a", now.Add(-time.Hour)), NewRecorder("web-b", now.Add(-time.Hour))
	for i := range 30 {
		a.Answered(now.Add(-time.Duration(i)*time.Second), time.Duration(100+i)*time.Millisecond)
		b.Answered(now.Add(-time.Duration(i)*time.Second), 2*time.Second)
	}
	b.Failed(Failure{At: now.Add(-2 * time.Second), Call: "POST /", Status: 500, Reason: "request x failed: no face", ID: "x"})
	dead := 3
	scaler := &ScalerReport{V: Version, Holder: "scaler-1", Written: now.Add(-2 * time.Second), EveryMS: 5000, IntervalMS: 1000,
		Policy: Policy{Min: 0, Max: 4, TargetBacklog: 4}, Polled: now.Add(-2 * time.Second),
		Queue: Queue{Visible: 9, InFlight: 8, DeadLetter: &dead}, Fleet: Fleet{Desired: 4, Running: 3, Pending: 1, Max: 4},
		Last:      Decision{Action: "hold", From: 4, To: 4, Reason: "backlog 17 wants 4 workers"},
		Decisions: []Decision{{At: now.Add(-time.Minute), Action: "scale-out", From: 1, To: 4, Backlog: 16, Reason: "backlog 16 wants 4 workers at 4 each"}},
	}
	gone := WebReport{V: Version, Host: "web-gone", Written: now.Add(-time.Hour), Steps: []Step{{T: now.Add(-time.Hour), OK: 99}}}
	st := Merge(Sources{
		Now:    now,
		Live:   &Queue{Visible: 10, InFlight: 8},
		Scaler: scaler,
		Web:    []WebReport{a.Report(now, 5*time.Second), b.Report(now, 5*time.Second), gone},
	})
	if st.Queue == nil || st.Queue.Visible != 10 || st.Queue.Source != "queue" || st.Queue.DeadLetter == nil || *st.Queue.DeadLetter != 3 {
		t.Fatalf("queue %+v: want the live depth with the scaler's dead letters", st.Queue)
	}
	if st.Fleet == nil || st.Fleet.Running != 3 {
		t.Fatalf("fleet %+v", st.Fleet)
	}
	if st.Requests.OK != 60 || st.Requests.Failed != 1 {
		t.Fatalf("requests %+v, want 60 answered and 1 failed from two hosts", st.Requests)
	}
	if st.Requests.P50MS == nil || *st.Requests.P50MS < 100 || *st.Requests.P95MS < 1600 {
		t.Fatalf("latency p50 %v p95 %v: half the calls took 2 s", st.Requests.P50MS, st.Requests.P95MS)
	}
	if len(st.Steps) != int(Window/StepLength) || !st.Steps[len(st.Steps)-1].T.Equal(now.Truncate(StepLength)) {
		t.Fatalf("%d steps ending %v", len(st.Steps), st.Steps[len(st.Steps)-1].T)
	}
	if len(st.Hosts) != 2 || st.Hosts[0].Host != "web-a" {
		t.Fatalf("hosts %+v: want web-a and web-b, not the one gone an hour ago", st.Hosts)
	}
	if len(st.Failures) != 1 || st.Failures[0].Host != "web-b" {
		t.Fatalf("failures %+v", st.Failures)
	}
	if st.Scaler == nil || st.Scaler.Stale || len(st.Problems) != 0 {
		t.Fatalf("scaler %+v problems %v", st.Scaler, st.Problems)
	}

	t.Run("stale scaler, no live read", func(t *testing.T) {
		old := *scaler
		old.Written = now.Add(-time.Minute)
		st := Merge(Sources{Now: now, Scaler: &old, LiveErr: errors.New("queue down")})
		if st.Scaler == nil || !st.Scaler.Stale || st.Queue == nil || st.Queue.Source != "scaler" || len(st.Problems) != 2 {
			t.Fatalf("scaler %+v queue %+v problems %v", st.Scaler, st.Queue, st.Problems)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		st := Merge(Sources{Now: now, ScalerErr: ErrNone})
		if st.Queue != nil || st.Fleet != nil || st.Requests.OK != 0 || len(st.Problems) != 1 {
			t.Fatalf("%+v", st)
		}
		var out bytes.Buffer
		if err := WriteText(&out, st); err != nil || !strings.Contains(out.String(), "queue     unknown") {
			t.Fatalf("text %q %v", out.String(), err)
		}
	})

	var out bytes.Buffer
	if err := WriteText(&out, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"queue     10 visible, 8 in flight, 3 dead letters",
		"fleet     4 desired, 3 running, 1 starting (0..4 workers, 4 requests each)",
		"60 answered, 1 failed, latency p50",
		"(2 web hosts)",
		"scale-out 1->4: backlog 16 wants 4 workers at 4 each",
		"POST / 500: request x failed: no face [x]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReportsInTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := blobstore.OpenURL(ctx, &url.URL{Scheme: "file", Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := ReadScaler(ctx, st); !errors.Is(err, ErrNone) {
		t.Fatalf("ReadScaler of an empty store = %v, want ErrNone", err)
	}
	now := time.Now().UTC()
	if err := Put(ctx, st, ScalerKey, ScalerReport{V: Version, Holder: "h", Written: now}); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"web-1", "ip-10-0-0-1.ec2.internal", "../evil/host"} {
		if err := Put(ctx, st, WebKey(host), WebReport{V: Version, Host: host, Written: now}); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
	}
	if err := st.Put(ctx, WebKey("future"), []byte(`{"v":99}`), ""); err != nil {
		t.Fatal(err)
	}
	r, err := ReadScaler(ctx, st)
	if err != nil || r.Holder != "h" {
		t.Fatalf("ReadScaler = %+v, %v", r, err)
	}
	webs, err := ReadWeb(ctx, st, WebKey("web-1"))
	if len(webs) != 2 || err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("ReadWeb = %d reports, %v; want 2 and the newer schema named", len(webs), err)
	}
	if k := WebKey("../evil/host"); strings.Count(k, "/") != 2 || strings.Contains(k, "..") {
		t.Fatalf("WebKey kept path parts: %s", k)
	}
}
