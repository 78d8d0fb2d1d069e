package face

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/imageio"
)

// Point is a position in the pixels of the original image.
type Point struct{ X, Y float64 }

// Detected is a face found and located, not described.
type Detected struct {
	Box Box
	// Score is the detector's confidence (for a face crop, the crop
	// check's).
	Score float64
	// Landmarks are the landmark net's 68 points (iBUG 300-W order).
	Landmarks [68]Point
}

// Detection is the engine's answer to Detect.
type Detection struct {
	Width, Height int
	// Whole is true when the image was a face crop, taken as one face.
	Whole bool
	// Faces are sorted by box area, largest first.
	Faces   []Detected
	Timings Timings
}

// ErrNoLandmarks means the engine was loaded without its landmark net.
var ErrNoLandmarks = errors.New("face engine loaded without the landmark net (NoAlign): no landmarks")

// Detect decodes an image as Describe does and finds its faces and their
// landmarks without describing them.
func (e *Engine) Detect(ctx context.Context, data []byte) (Detection, error) {
	t0 := time.Now()
	img, err := imageio.Decode(data, e.opts.Limits)
	if err != nil {
		return Detection{}, fmt.Errorf("detect: %w", err)
	}
	decoded := time.Since(t0)
	d, err := e.DetectImage(ctx, img)
	d.Timings.Decode = decoded
	return d, err
}

// DetectImage finds the faces of a decoded image by the rules of
// DescribeImage — a small image is one face when it passes the crop check,
// a larger one goes through the detection pyramid (or, if that finds
// nothing, the crop check) — so that its faces are the ones Describe
// found, with the same boxes. Each face's landmarks come from the landmark
// net on its box, as for alignment (for a crop, on the crop check's box).
func (e *Engine) DetectImage(ctx context.Context, img image.Image) (Detection, error) {
	b := img.Bounds()
	d := Detection{Width: b.Dx(), Height: b.Dy()}
	if b.Dx() < 1 || b.Dy() < 1 {
		return d, fmt.Errorf("detect: empty image (%dx%d)", b.Dx(), b.Dy())
	}
	if e.landmarker == nil {
		return d, ErrNoLandmarks
	}
	if err := ctx.Err(); err != nil {
		return d, err
	}
	s := e.scratch.Get().(*nn.Scratch)
	defer e.scratch.Put(s)
	m := toRGB(img)
	t0 := time.Now()
	var dets []detection
	switch {
	case e.opts.Reference:
		dets = e.detector.detect(m, e.opts.DetectorInputSize, e.opts.ScoreThreshold, s)
	case max(m.W, m.H) <= e.opts.WholeMaxSide:
		score, cb := e.cropCheck(m, s)
		d.Timings.Detect = time.Since(t0)
		if score < e.opts.CropScoreThreshold {
			return d, nil
		}
		t0 = time.Now()
		d.Whole = true
		f := Detected{Box: wholeBox(image.Rect(0, 0, m.W, m.H)), Score: score}
		at := clampBox(cb, m.W, m.H)
		if clipFloor(at.X, at.Y, at.W, at.H, m.W, m.H).Empty() {
			at = f.Box
		}
		f.Landmarks = e.landmarksIn(m, at, s)
		d.Faces = []Detected{f}
		d.Timings.Describe = time.Since(t0)
		return d, nil
	default:
		dets = e.detectPyramid(m, s)
		if len(dets) == 0 {
			if score, box := e.cropCheck(m, s); score >= e.opts.CropScoreThreshold {
				dets = []detection{{Box: clampBox(box, m.W, m.H), Score: score}}
			}
		}
	}
	d.Timings.Detect = time.Since(t0)
	sortByArea(dets)
	t0 = time.Now()
	for _, det := range dets {
		if err := ctx.Err(); err != nil {
			return d, err
		}
		if clipFloor(det.Box.X, det.Box.Y, det.Box.W, det.Box.H, m.W, m.H).Empty() {
			continue
		}
		d.Faces = append(d.Faces, Detected{Box: det.Box, Score: det.Score, Landmarks: e.landmarksIn(m, det.Box, s)})
	}
	d.Timings.Describe = time.Since(t0)
	return d, nil
}

// landmarksIn runs the landmark net on box b of m (not empty once clipped)
// and returns its points in m's pixels: as alignedRect, points in the
// crop's pixels shifted back by the box's unrounded corner.
func (e *Engine) landmarksIn(m rgb, b Box, s *nn.Scratch) [68]Point {
	var out [68]Point
	lr := clipFloor(b.X, b.Y, b.W, b.H, m.W, m.H)
	for i, p := range e.landmarker.landmarks(m.crop(lr), s) {
		out[i] = Point{p.X + b.X, p.Y + b.Y}
	}
	return out
}
