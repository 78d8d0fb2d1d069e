package face

import (
	"context"
	"fmt"
	"image"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/face/tfjs"
	"github.com/facecloud/facecloud/agents/imageio"
)

// Options tune the engine; the zero value means the defaults.
type Options struct {
	// DetectorInputSize is the side the detector resizes photos to: a
	// multiple of 32 from 128 to 1024 (default 416, the reference's).
	DetectorInputSize int
	// ScoreThreshold is the detector confidence a face needs, in (0, 1)
	// (default 0.5, the reference's).
	ScoreThreshold float64
	// WholeMaxSide: images whose longer side is at most this many pixels are
	// taken as face crops: checked for a face (the crop check, see
	// CropScoreThreshold) and, if they hold one, described whole as one
	// face (default 160; negative: always detect).
	WholeMaxSide int
	// CropScoreThreshold is the score the crop check needs to take an image
	// as a face crop, in (0, 1) (default 0.3). The check runs the detector
	// on the image centred in a grey square and asks for a box filling most
	// of it; it runs on every face-crop-sized image, and on a larger one in
	// which the pyramid finds no face.
	CropScoreThreshold float64
	// FineInputSize is the resolution of the pyramid's fine pass for
	// photos whose longer side exceeds 1.5 × DetectorInputSize: the photo
	// is looked at, in overlapping tiles of DetectorInputSize, as if its
	// longer side were this many pixels (at most its own), from 128 to
	// 4096 (default DefaultFineInputSize); negative turns the pass off.
	FineInputSize int
	// AlignCrops describes face crops (see WholeMaxSide) aligned by their
	// landmarks, like faces in photos, instead of whole.
	AlignCrops bool
	// Reference runs face-api's own pipeline and nothing else: one detector
	// pass at DetectorInputSize on every image whatever its size, no crop
	// check, no close-up or fine pass. The reference comparison uses it.
	Reference bool
	// Margin grows each detected box by this fraction of its size on every
	// side before the crop is described, with NoAlign, in [0, 1] (default 0.2).
	Margin float64
	// NoAlign crops each detected face as its box grown by Margin instead
	// of aligning it. By default the engine does what face-api's own
	// pipeline does (detectAllFaces().withFaceLandmarks()
	// .withFaceDescriptors()): the 68-point landmark net runs on the
	// detector's box and the crop described is the square dlib-style box
	// around the eyes and mouth. On perturbed copies of the demo photos
	// that re-identifies faces more often (154 vs 143 of 154) and moves
	// descriptors less; see docs/face-engine.md.
	NoAlign bool
	// Limits bound what Describe decodes (default imageio.DefaultLimits).
	Limits imageio.Limits
}

// Defaults of Options.
const (
	DefaultDetectorInputSize = 416
	DefaultScoreThreshold    = 0.5
	DefaultWholeMaxSide      = 160
	DefaultMargin            = 0.2
	DefaultCropScore         = 0.3
)

func (o Options) withDefaults() Options {
	if o.DetectorInputSize == 0 {
		o.DetectorInputSize = DefaultDetectorInputSize
	}
	if o.ScoreThreshold == 0 {
		o.ScoreThreshold = DefaultScoreThreshold
	}
	if o.WholeMaxSide == 0 {
		o.WholeMaxSide = DefaultWholeMaxSide
	}
	if o.Margin == 0 {
		o.Margin = DefaultMargin
	}
	if o.CropScoreThreshold == 0 {
		o.CropScoreThreshold = DefaultCropScore
	}
	if o.Limits == (imageio.Limits{}) {
		o.Limits = imageio.DefaultLimits
	}
	return o
}

// Validate checks the options after defaults are applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.DetectorInputSize < 128 || o.DetectorInputSize > 1024 || o.DetectorInputSize%32 != 0:
		return fmt.Errorf("detector input size %d: want a multiple of 32 from 128 to 1024", o.DetectorInputSize)
	case o.ScoreThreshold <= 0 || o.ScoreThreshold >= 1:
		return fmt.Errorf("score threshold %v: want a number between 0 and 1, exclusive", o.ScoreThreshold)
	case o.CropScoreThreshold <= 0 || o.CropScoreThreshold >= 1:
		return fmt.Errorf("crop score threshold %v: want a number between 0 and 1, exclusive", o.CropScoreThreshold)
	case o.FineInputSize > 0 && (o.FineInputSize < 128 || o.FineInputSize > 4096):
		return fmt.Errorf("fine input size %d: want 128 to 4096 pixels (negative: off)", o.FineInputSize)
	case o.Margin < 0 || o.Margin > 1:
		return fmt.Errorf("margin %v: want a fraction from 0 to 1", o.Margin)
	}
	if err := o.Limits.Validate(); err != nil {
		return fmt.Errorf("image limits: %w", err)
	}
	return nil
}

// Model files the engine loads from its directory (and LandmarkManifest).
const (
	RecognitionManifest = "face_recognition_model-weights_manifest.json"
	DetectorManifest    = "tiny_face_detector_model-weights_manifest.json"
)

// Engine is the loaded face engine. It is immutable after Load and safe for
// concurrent use by many goroutines.
type Engine struct {
	opts        Options
	recognizer  *recognizer
	detector    *detector
	landmarker  *landmarker // nil with Options.NoAlign
	weightBytes int
	scratch     sync.Pool
}

// Load reads the networks' weights from dir (as `facecloud models fetch`
// leaves them) once; the engine then keeps them for the process's life.
func Load(dir string, opts Options) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("face engine options: %w", err)
	}
	e := &Engine{opts: opts.withDefaults()}
	e.scratch.New = func() any { return new(nn.Scratch) }
	rw, err := tfjs.LoadFile(filepath.Join(dir, RecognitionManifest))
	if err != nil {
		return nil, fmt.Errorf("load recognition net: %w", err)
	}
	if e.recognizer, err = newRecognizer(rw); err != nil {
		return nil, fmt.Errorf("load recognition net: %w", err)
	}
	dw, err := tfjs.LoadFile(filepath.Join(dir, DetectorManifest))
	if err != nil {
		return nil, fmt.Errorf("load face detector: %w", err)
	}
	if e.detector, err = newDetector(dw); err != nil {
		return nil, fmt.Errorf("load face detector: %w", err)
	}
	e.weightBytes = rw.Bytes() + dw.Bytes()
	if !e.opts.NoAlign {
		lw, err := tfjs.LoadFile(filepath.Join(dir, LandmarkManifest))
		if err != nil {
			return nil, fmt.Errorf("load landmark net: %w", err)
		}
		if e.landmarker, err = newLandmarker(lw); err != nil {
			return nil, fmt.Errorf("load landmark net: %w", err)
		}
		e.weightBytes += lw.Bytes()
	}
	return e, nil
}

// WeightBytes is the size of the loaded weights as float32 values.
func (e *Engine) WeightBytes() int { return e.weightBytes }

// Options returns the engine's options with defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Describe decodes an image with imageio.Decode (size and pixel limits
// checked before decoding, EXIF orientation applied, alpha composited on
// white) and describes the faces in it. Decoding errors wrap imageio's
// (ErrEmpty, ErrUnsupported, ErrCorrupt, ErrTooManyPixels, ...).
func (e *Engine) Describe(ctx context.Context, data []byte) (Recognition, error) {
	t0 := time.Now()
	img, err := imageio.Decode(data, e.opts.Limits)
	if err != nil {
		return Recognition{}, fmt.Errorf("describe: %w", err)
	}
	decoded := time.Since(t0)
	rec, err := e.DescribeImage(ctx, img)
	rec.Timings.Decode = decoded
	return rec, err
}

// DescribeImage describes the faces in an already decoded image.
//
// Small images (longer side at most Options.WholeMaxSide) are taken as face
// crops: the crop check (see Options.CropScoreThreshold) decides whether
// they hold a face, and one that does is described whole, as one face;
// one that does not has no faces. Larger images go through the detection
// pyramid (see detectPyramid); if it finds nothing, the crop check decides
// whether the image is a larger face crop. Each face found is aligned with
// its landmarks (or, with NoAlign, cropped with a margin) and described,
// largest first. Every face gets a Quality.
func (e *Engine) DescribeImage(ctx context.Context, img image.Image) (Recognition, error) {
	b := img.Bounds()
	rec := Recognition{Width: b.Dx(), Height: b.Dy()}
	if b.Dx() < 1 || b.Dy() < 1 {
		return rec, fmt.Errorf("describe: empty image (%dx%d)", b.Dx(), b.Dy())
	}
	if err := ctx.Err(); err != nil {
		return rec, err
	}
	// Every step from here is the engine's time (Timings), the colour
	// conversion and each face's quality measure included.
	t0 := time.Now()
	s := e.scratch.Get().(*nn.Scratch)
	defer e.scratch.Put(s)
	m := toRGB(img)
	full := image.Rect(0, 0, m.W, m.H)
	var dets []detection
	switch {
	case e.opts.Reference:
		dets = e.detector.detect(m, e.opts.DetectorInputSize, e.opts.ScoreThreshold, s)
	case max(m.W, m.H) <= e.opts.WholeMaxSide:
		score, cb := e.cropCheck(m, s)
		rec.Timings.Detect = time.Since(t0)
		if score < e.opts.CropScoreThreshold {
			return rec, nil
		}
		t0 = time.Now()
		box, r := wholeBox(full), full
		if e.opts.AlignCrops && e.landmarker != nil {
			if ar := e.alignedRect(m, clampBox(cb, m.W, m.H), s); !ar.Empty() {
				r = ar
			}
		}
		d := e.recognizer.describe(m.crop(r), s)
		q := measureQuality(m, box, score, r)
		rec.Timings.Describe = time.Since(t0)
		rec.Whole = r == full
		rec.Faces = []Found{{Box: box, Score: score, Descriptor: d, Quality: q}}
		return rec, nil
	default:
		dets = e.detectPyramid(m, s)
		if len(dets) == 0 {
			if score, box := e.cropCheck(m, s); score >= e.opts.CropScoreThreshold {
				dets = []detection{{Box: clampBox(box, m.W, m.H), Score: score}}
			}
		}
	}
	rec.Timings.Detect = time.Since(t0)
	sortByArea(dets)
	t0 = time.Now()
	rec.Faces = make([]Found, len(dets))
	keep := make([]bool, len(dets))
	// Faces of one photo are described in parallel, up to GOMAXPROCS at once.
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(len(dets), runtime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := e.scratch.Get().(*nn.Scratch)
			defer e.scratch.Put(ws)
			for i := range next {
				d := dets[i]
				r := cropRect(d.Box, m.W, m.H, e.opts.Margin)
				if e.landmarker != nil {
					r = e.alignedRect(m, d.Box, ws)
				}
				if r.Empty() {
					continue
				}
				rec.Faces[i] = Found{
					Box: d.Box, Score: d.Score,
					Descriptor: e.recognizer.describe(m.crop(r), ws),
					Quality:    measureQuality(m, clampBox(d.Box, m.W, m.H), d.Score, r),
				}
				keep[i] = true
			}
		}()
	}
	var err error
feed:
	for i := range dets {
		select {
		case next <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err != nil {
		return rec, err
	}
	faces := rec.Faces[:0]
	for i, f := range rec.Faces {
		if keep[i] {
			faces = append(faces, f)
		}
	}
	rec.Faces = faces
	rec.Timings.Describe = time.Since(t0)
	return rec, nil
}

// DescribeFace describes img whole as one face, skipping detection.
func (e *Engine) DescribeFace(img image.Image) (Descriptor, error) {
	b := img.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 {
		return Descriptor{}, fmt.Errorf("describe: empty image (%dx%d)", b.Dx(), b.Dy())
	}
	s := e.scratch.Get().(*nn.Scratch)
	defer e.scratch.Put(s)
	return e.recognizer.describe(toRGB(img), s), nil
}

// cropRect is the crop the engine describes for a detected box: the box
// grown by margin times its size on every side, clamped to the image, in
// whole pixels (the reference script uses the same rule).
func cropRect(b Box, w, h int, margin float64) image.Rectangle {
	x0 := max(0, int(floor(b.X-margin*b.W)))
	y0 := max(0, int(floor(b.Y-margin*b.H)))
	x1 := min(w, int(ceil(b.X+b.W+margin*b.W)))
	y1 := min(h, int(ceil(b.Y+b.H+margin*b.H)))
	return image.Rect(x0, y0, x1, y1)
}

func sortByArea(dets []detection) {
	slices.SortStableFunc(dets, func(a, b detection) int {
		return -cmpFloat(a.Box.W*a.Box.H, b.Box.W*b.Box.H)
	})
}

// Distance is the Euclidean distance between two descriptors.
func Distance(a, b Descriptor) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// clipFloor is face-api's Box.clipAtImageBorders: clip to the image, then
// floor x, y, width and height.
func clipFloor(x, y, w, h float64, iw, ih int) image.Rectangle {
	cx, cy := math.Max(x, 0), math.Max(y, 0)
	cw := math.Min(x+w-cx, float64(iw)-cx)
	ch := math.Min(y+h-cy, float64(ih)-cy)
	fx, fy := int(math.Floor(cx)), int(math.Floor(cy))
	fw, fh := int(math.Floor(cw)), int(math.Floor(ch))
	if fw <= 0 || fh <= 0 {
		return image.Rectangle{}
	}
	return image.Rect(fx, fy, fx+fw, fy+fh)
}

// alignedRect is the crop face-api describes for a detection: landmarks on
// the detector's box (clipped, floored), shifted back by the unrounded box
// corner, then the dlib-style box around eyes and mouth, clipped and floored.
func (e *Engine) alignedRect(m rgb, b Box, s *nn.Scratch) image.Rectangle {
	lr := clipFloor(b.X, b.Y, b.W, b.H, m.W, m.H)
	if lr.Empty() {
		return lr
	}
	pts := e.landmarker.landmarks(m.crop(lr), s)
	for i := range pts {
		pts[i].X += b.X
		pts[i].Y += b.Y
	}
	x, y, size := dlibBox(pts)
	w := math.Min(size, float64(lr.Dx())+x)
	h := math.Min(size, float64(lr.Dy())+y)
	return clipFloor(x, y, w, h, m.W, m.H)
}
