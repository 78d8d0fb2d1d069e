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
	// Score is the detector's confidence, 1 when the whole image was taken
	// as the face.
	Score float64
	// Landmarks are the landmark net's 68 points (iBUG 300-W order).
	Landmarks [68]Point
}

// Detection is the engine's answer to Detect.
type Detection struct {
	Width, Height int
	// Whole is true when the image was small enough to be taken as one face.
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
// DescribeImage — an image of at most Options.WholeMaxSide pixels is one
// face, a larger one goes through the detector — except that a larger
// image in which the detector finds nothing has no face. Each face's
// landmarks come from the landmark net on its box, as for alignment.
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
	if max(m.W, m.H) <= e.opts.WholeMaxSide {
		d.Whole = true
		f := Detected{Box: Box{W: float64(m.W), H: float64(m.H)}, Score: 1}
		for i, p := range e.landmarker.landmarks(m, s) {
			f.Landmarks[i] = Point(p)
		}
		d.Faces = []Detected{f}
		d.Timings.Describe = time.Since(t0)
		return d, nil
	}
	dets := e.detector.detect(m, e.opts.DetectorInputSize, e.opts.ScoreThreshold, s)
	d.Timings.Detect = time.Since(t0)
	sortByArea(dets)
	t0 = time.Now()
	for _, det := range dets {
		if err := ctx.Err(); err != nil {
			return d, err
		}
		lr := clipFloor(det.Box.X, det.Box.Y, det.Box.W, det.Box.H, m.W, m.H)
		if lr.Empty() {
			continue
		}
		f := Detected{Box: det.Box, Score: det.Score}
		// As alignedRect: points in the crop's pixels, shifted back by the
		// box's unrounded corner.
		for i, p := range e.landmarker.landmarks(m.crop(lr), s) {
			f.Landmarks[i] = Point{p.X + det.Box.X, p.Y + det.Box.Y}
		}
		d.Faces = append(d.Faces, f)
	}
	d.Timings.Describe = time.Since(t0)
	return d, nil
}
