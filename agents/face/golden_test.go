package face

import (
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/models"
)

// golden is testdata/reference/golden.json, written by scripts/golden.sh
// from the reference (face-api 1.7.15 on tfjs 4.22.0, WebAssembly backend).
type golden struct {
	Reference struct {
		Detector struct {
			InputSize      int     `json:"inputSize"`
			ScoreThreshold float64 `json:"scoreThreshold"`
		} `json:"detector"`
		CropMargin float64 `json:"cropMargin"`
	} `json:"reference"`
	Cases []struct {
		Kind       string    `json:"kind"`
		File       string    `json:"file"`
		Pixels     string    `json:"pixels"`
		Width      int       `json:"width"`
		Height     int       `json:"height"`
		Descriptor []float32 `json:"descriptor"`
		Boxes      []struct {
			X, Y, W, H, Score float64
		} `json:"boxes"`
		Crops []struct {
			Box        struct{ X, Y, W, H int } `json:"box"`
			Pixels     string                   `json:"pixels"`
			Descriptor []float32                `json:"descriptor"`
		} `json:"crops"`
		Aligned []struct {
			Detection  struct{ X, Y, W, H float64 } `json:"detection"`
			Landmarks  [][2]float64                 `json:"landmarks"`
			Crop       struct{ X, Y, W, H int }     `json:"crop"`
			Pixels     string                       `json:"pixels"`
			Descriptor []float32                    `json:"descriptor"`
		} `json:"aligned"`
	} `json:"cases"`
}

const goldenDir = "../../testdata/reference"

var (
	engineOnce sync.Once
	testEngine *Engine
	engineErr  error

	marginOnce   sync.Once
	marginEngine *Engine
	marginErr    error

	refOnce   sync.Once
	refEngine *Engine
	refErr    error
)

// loadMarginEngine is face-api's pipeline (Options.Reference) with margin
// crops (Options.NoAlign): what the reference script describes.
func loadMarginEngine(t testing.TB) *Engine {
	t.Helper()
	loadEngine(t)
	marginOnce.Do(func() { marginEngine, marginErr = Load(models.DefaultDir(), Options{NoAlign: true, Reference: true}) })
	if marginErr != nil {
		t.Fatalf("load engine: %v", marginErr)
	}
	return marginEngine
}

// loadReferenceEngine is face-api's own pipeline (Options.Reference):
// detectAllFaces().withFaceLandmarks().withFaceDescriptors().
func loadReferenceEngine(t testing.TB) *Engine {
	t.Helper()
	loadEngine(t)
	refOnce.Do(func() { refEngine, refErr = Load(models.DefaultDir(), Options{Reference: true}) })
	if refErr != nil {
		t.Fatalf("load engine: %v", refErr)
	}
	return refEngine
}

// loadEngine loads the engine once for all tests, fetching the model first
// if the cache lacks it.
func loadEngine(t testing.TB) *Engine {
	t.Helper()
	engineOnce.Do(func() {
		dir := models.DefaultDir()
		if engineErr = models.Ensure(context.Background(), dir); engineErr != nil {
			return
		}
		testEngine, engineErr = Load(dir, Options{})
	})
	if engineErr != nil {
		t.Fatalf("load engine: %v", engineErr)
	}
	return testEngine
}

func loadGolden(t testing.TB) golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func readPNG(t testing.TB, rel string) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func maxAbsDiff(a Descriptor, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestGoldenDescriptors feeds the exact pixels the reference described (its
// own JPEG decoding, saved losslessly) to the Go net: every component must be
// within 1e-3 of the reference's.
func TestGoldenDescriptors(t *testing.T) {
	e := loadEngine(t)
	g := loadGolden(t)
	n, worst := 0, 0.0
	check := func(name, pixels string, want []float32) {
		t.Run(name, func(t *testing.T) {
			got, err := e.DescribeFace(readPNG(t, pixels))
			if err != nil {
				t.Fatal(err)
			}
			d := maxAbsDiff(got, want)
			worst = max(worst, d)
			n++
			if d > 1e-3 {
				t.Errorf("max |Δ| = %.2g, want ≤ 1e-3", d)
			}
		})
	}
	for _, c := range g.Cases {
		if c.Kind == "face" {
			check(c.File, c.Pixels, c.Descriptor)
		}
		for _, cr := range c.Crops {
			check(cr.Pixels, cr.Pixels, cr.Descriptor)
		}
		for _, a := range c.Aligned {
			if a.Pixels != "" {
				check(a.Pixels, a.Pixels, a.Descriptor)
			}
		}
	}
	t.Logf("%d descriptors on the %s kernels, worst component difference %.2g", n, nn.Kernel(), worst)
}

type detCase struct {
	name      string
	img       image.Image
	wantBoxes []Box
}

// checkDetections wants the same number of faces as the reference and each
// box overlapping one of the reference's by IoU ≥ 0.9.
func checkDetections(t *testing.T, e *Engine, c detCase, inputSize int, threshold float64) float64 {
	t.Helper()
	s := new(nn.Scratch)
	dets := e.detector.detect(toRGB(c.img), inputSize, threshold, s)
	if len(dets) != len(c.wantBoxes) {
		t.Fatalf("%d faces, reference has %d", len(dets), len(c.wantBoxes))
	}
	// Pair each box with the reference box it overlaps most (faces of
	// nearly equal area may swap places in the order of area).
	worst := 1.0
	used := make([]bool, len(c.wantBoxes))
	for i, d := range dets {
		best, bi := -1.0, -1
		for j, w := range c.wantBoxes {
			if v := IoU(d.Box, w); !used[j] && v > best {
				best, bi = v, j
			}
		}
		used[bi] = true
		worst = min(worst, best)
		if best < 0.9 {
			t.Errorf("face %d: box %+v, best reference %+v, IoU %.3f < 0.9", i, d.Box, c.wantBoxes[bi], best)
		}
	}
	return worst
}

// TestGoldenDetector compares boxes on the reference's own pixels (the
// course faces) and on the demo photos decoded by Go's image/jpeg (too big
// to keep as lossless pixels; the IoU bound absorbs the decoders' differences).
func TestGoldenDetector(t *testing.T) {
	e := loadEngine(t)
	g := loadGolden(t)
	in, th := g.Reference.Detector.InputSize, g.Reference.Detector.ScoreThreshold
	for _, c := range g.Cases {
		var want []Box
		for _, b := range c.Boxes {
			want = append(want, Box{b.X, b.Y, b.W, b.H})
		}
		t.Run(c.File, func(t *testing.T) {
			var img image.Image
			if c.Kind == "face" {
				img = readPNG(t, c.Pixels)
			} else {
				f, err := os.Open(filepath.Join(models.DefaultDir(), "demo", c.File))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if img, err = jpeg.Decode(f); err != nil {
					t.Fatal(err)
				}
			}
			w := checkDetections(t, e, detCase{c.File, img, want}, in, th)
			if len(want) > 0 {
				t.Logf("%d faces, lowest IoU %.4f", len(want), w)
			}
		})
	}
}

// describeDemo runs e on the JPEG bytes of the demo photo file.
func describeDemo(t *testing.T, e *Engine, file string) Recognition {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(models.DefaultDir(), "demo", file))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.Describe(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// closestFace returns the face (of at least one) whose box overlaps rb most:
// the Go face that matches a reference box, since faces of near-equal area
// may come in another order.
func closestFace(faces []Found, rb Box) Found {
	f := faces[0]
	for _, g := range faces[1:] {
		if IoU(g.Box, rb) > IoU(f.Box, rb) {
			f = g
		}
	}
	return f
}

// TestGoDecodedPhotos runs the engine with margin crops (NoAlign) on the demo
// photos' JPEG bytes (Go's decoder, Go's crop) and reports how far the
// descriptors land from the reference's; the bound is looser than the net's
// 1e-3 because the two JPEG decoders differ in IDCT and chroma upsampling and
// the boxes differ slightly.
func TestGoDecodedPhotos(t *testing.T) {
	e := loadMarginEngine(t)
	g := loadGolden(t)
	if g.Reference.CropMargin != e.opts.Margin {
		t.Fatalf("reference crop margin %v, engine %v", g.Reference.CropMargin, e.opts.Margin)
	}
	for _, c := range g.Cases {
		if c.Kind != "photo" {
			continue
		}
		t.Run(c.File, func(t *testing.T) {
			rec := describeDemo(t, e, c.File)
			if len(rec.Faces) != len(c.Boxes) {
				t.Fatalf("%d faces, reference %d", len(rec.Faces), len(c.Boxes))
			}
			for i, cr := range c.Crops {
				var ref Descriptor
				copy(ref[:], cr.Descriptor)
				// The crop belongs to the reference's i-th box.
				f := closestFace(rec.Faces, Box{c.Boxes[i].X, c.Boxes[i].Y, c.Boxes[i].W, c.Boxes[i].H})
				dist := Distance(f.Descriptor, ref)
				t.Logf("face %d: max |Δ| %.3g, distance %.4f", i, maxAbsDiff(f.Descriptor, cr.Descriptor), dist)
				if dist > 0.1 {
					t.Errorf("face %d: distance %.3f to the reference's descriptor, want ≤ 0.1", i, dist)
				}
			}
		})
	}
}

// TestGoldenLandmarks runs the landmark net on the reference's own pixels of
// each detection box (cut from the saved crop, which contains it) and wants
// every point within 0.05 px of the reference's, and then the same aligned
// crop rectangle, pixel for pixel.
func TestGoldenLandmarks(t *testing.T) {
	e := loadEngine(t)
	g := loadGolden(t)
	worst := 0.0
	for _, c := range g.Cases {
		for i, cr := range c.Crops {
			a := c.Aligned[i]
			t.Run(cr.Pixels, func(t *testing.T) {
				d := a.Detection
				lr := clipFloor(d.X, d.Y, d.W, d.H, c.Width, c.Height)
				outer := image.Rect(cr.Box.X, cr.Box.Y, cr.Box.X+cr.Box.W, cr.Box.Y+cr.Box.H)
				if !lr.In(outer) {
					t.Fatalf("detection %v not inside the saved crop %v", lr, outer)
				}
				m := toRGB(readPNG(t, cr.Pixels)).crop(lr.Sub(outer.Min))
				pts := e.landmarker.landmarks(m, new(nn.Scratch))
				for j := range pts {
					pts[j].X += d.X
					pts[j].Y += d.Y
					dd := math.Hypot(pts[j].X-a.Landmarks[j][0], pts[j].Y-a.Landmarks[j][1])
					worst = max(worst, dd)
					if dd > 0.05 {
						t.Errorf("point %d at (%.3f, %.3f), reference (%.3f, %.3f)", j, pts[j].X, pts[j].Y, a.Landmarks[j][0], a.Landmarks[j][1])
					}
				}
				x, y, size := dlibBox(pts)
				got := clipFloor(x, y, min(size, float64(lr.Dx())+x), min(size, float64(lr.Dy())+y), c.Width, c.Height)
				want := image.Rect(a.Crop.X, a.Crop.Y, a.Crop.X+a.Crop.W, a.Crop.Y+a.Crop.H)
				if got != want {
					t.Errorf("aligned crop %v, reference %v", got, want)
				}
			})
		}
	}
	t.Logf("worst landmark distance %.2g px", worst)
}

// TestGoDecodedAligned runs face-api's pipeline (Options.Reference: one
// detector pass, aligned crops) on the demo photos' JPEG bytes and compares
// with face-api's detectAllFaces().withFaceLandmarks().withFaceDescriptors()
// on its own decoding. The bound
// (0.3) is looser than for margin crops: the aligned box is snapped to whole
// pixels from landmarks, so the decoders' small differences can move the
// crop by a pixel, which moves the descriptor by up to about 0.22 here.
func TestGoDecodedAligned(t *testing.T) {
	e := loadReferenceEngine(t)
	g := loadGolden(t)
	for _, c := range g.Cases {
		if c.Kind != "photo" {
			continue
		}
		t.Run(c.File, func(t *testing.T) {
			rec := describeDemo(t, e, c.File)
			if len(rec.Faces) != len(c.Aligned) {
				t.Fatalf("%d faces, reference %d", len(rec.Faces), len(c.Aligned))
			}
			for i, a := range c.Aligned {
				var ref Descriptor
				copy(ref[:], a.Descriptor)
				f := closestFace(rec.Faces, Box{a.Detection.X, a.Detection.Y, a.Detection.W, a.Detection.H})
				dist := Distance(f.Descriptor, ref)
				t.Logf("face %d: max |Δ| %.3g, distance %.4f", i, maxAbsDiff(f.Descriptor, a.Descriptor), dist)
				if dist > 0.3 {
					t.Errorf("face %d: distance %.3f to the reference's descriptor, want ≤ 0.3", i, dist)
				}
			}
		})
	}
}
