package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/models"
)

// landmarking is the fake recognizer that also finds landmarks: one point
// at each face's box corner, for the worker's handling of the request.
type landmarking struct{ fakeRecognizer }

func (l *landmarking) Landmarks(_ context.Context, _ []byte, faces []job.Face) error {
	for i := range faces {
		faces[i].Landmarks = []job.Point{{X: faces[i].Box.X, Y: faces[i].Box.Y}}
	}
	return nil
}

func TestLandmarksOnRequest(t *testing.T) {
	tests := map[string]struct {
		rec       Recognizer
		landmarks bool
		want      int // landmarks of the face
		errPart   string
	}{
		"asked":                         {rec: &landmarking{}, landmarks: true, want: 1},
		"not asked":                     {rec: &landmarking{}, want: 0},
		"asked of a worker that cannot": {rec: &fakeRecognizer{}, landmarks: true, errPart: "cannot find landmarks"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, testConfig())
			reg := prometheus.NewRegistry()
			w, err := New(testConfig(), Deps{Requests: r.req, Replies: r.rep, Input: r.in, Output: r.out, Recognizer: tc.rec, Metrics: reg})
			if err != nil {
				t.Fatal(err)
			}
			r.w = w
			req := r.submit(t, "group", "face:Paul", func(q *job.Request) { *q = q.WithLandmarks(tc.landmarks) })
			r.runUntil(t, func() bool { return r.req.live() == 0 })
			res := r.result(t, req.ID)
			if tc.errPart != "" {
				if res.Status != job.StatusFailed || !strings.Contains(res.Error, tc.errPart) {
					t.Fatalf("result %+v, want failed with %q", res, tc.errPart)
				}
				return
			}
			if res.Status != job.StatusDone || len(res.Faces) != 1 || len(res.Faces[0].Landmarks) != tc.want {
				t.Fatalf("result %+v, want one face with %d landmarks", res, tc.want)
			}
		})
	}
}

func TestWorkerMetrics(t *testing.T) {
	r := newRig(t, testConfig())
	reg := prometheus.NewRegistry()
	w, err := New(testConfig(), Deps{Requests: r.req, Replies: r.rep, Input: r.in, Output: r.out, Recognizer: r.rec, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	r.submit(t, "a", "face:Paul", nil)
	r.submit(t, "b", "bad", nil)
	r.runUntil(t, func() bool { return r.req.live() == 0 })
	for outcome, want := range map[string]float64{"done": 1, "failed": 1, "retried": 0} {
		if got := counterOf(t, reg, "facecloud_worker_requests_total", outcome); got != want {
			t.Errorf("requests{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if n := testutil.CollectAndCount(w.engine, "facecloud_worker_engine_seconds"); n != 2 {
		t.Errorf("engine histogram series %d, want recognize and enroll", n)
	}
}

// counterOf reads one series of a counter family gathered from reg.
func counterOf(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{outcome=%q} not exported", name, outcome)
	return 0
}

// TestLandmarksOfDemoPhoto runs the real engine on a photo of several
// people: every face the detector described gets 68 landmarks, nearly all
// within its box.
func TestLandmarksOfDemoPhoto(t *testing.T) {
	ctx := context.Background()
	dir := models.DefaultDir()
	if err := models.Ensure(ctx, dir); err != nil {
		t.Fatalf("models: %v", err)
	}
	engine, err := face.Load(dir, face.Options{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(filepath.Join(dir, "demo", "sample1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	fr := &FaceRecognizer{Engine: engine, Gallery: gallery.NewFollower(newMemStore()), Store: newMemStore(), Threshold: gallery.DefaultThreshold}
	rec, err := fr.Process(ctx, job.Request{}, [][]byte{img})
	if err != nil || len(rec.Faces) < 2 {
		t.Fatalf("Process = %d faces, %v; want several", len(rec.Faces), err)
	}
	if err := fr.Landmarks(ctx, img, rec.Faces); err != nil {
		t.Fatal(err)
	}
	for i, f := range rec.Faces {
		if len(f.Landmarks) != 68 {
			t.Fatalf("face %d (%+v): %d landmarks, want 68", i, f.Box, len(f.Landmarks))
		}
		inside := 0
		b := f.Box
		for _, p := range f.Landmarks {
			if p.X >= b.X-0.2*b.W && p.X <= b.X+1.2*b.W && p.Y >= b.Y-0.2*b.H && p.Y <= b.Y+1.2*b.H {
				inside++
			}
		}
		if inside < 64 {
			t.Errorf("face %d: only %d of 68 landmarks near its box %+v", i, inside, b)
		}
	}
	if err := (&FaceRecognizer{}).Landmarks(ctx, img, rec.Faces); err == nil {
		t.Fatal("a recognizer without an engine found landmarks")
	}
}
