package face

import (
	"cmp"
	"math"
	"slices"

	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/face/tfjs"
)

// detectorMean is the mean colour the TinyFaceDetector subtracts.
var detectorMean = [3]float32{117.001, 114.697, 97.404}

// detectorAnchors are the five box priors (width, height in grid cells).
var detectorAnchors = [5][2]float64{
	{1.603231, 2.094468},
	{6.041143, 7.080126},
	{2.882459, 3.518061},
	{4.266906, 5.178857},
	{9.041765, 10.66308},
}

// detectorIoU is the overlap above which non-max suppression drops the
// weaker of two boxes.
const detectorIoU = 0.4

// detector is TinyFaceDetector: a Tiny-YOLOv2 with depthwise-separable
// convolutions predicting 5 boxes per cell of a 13 × 13 (at input 416) grid.
type detector struct {
	conv0 *nn.Conv2D
	seps  []separable
	conv8 *nn.Conv2D
}

func newDetector(w tfjs.Weights) (*detector, error) {
	d := &detector{}
	var err error
	if d.conv0, err = conv(w, "conv0", 3, 3, 16, 1); err != nil {
		return nil, err
	}
	chans := []int{16, 32, 64, 128, 256, 512}
	for i := 1; i < len(chans); i++ {
		cin, cout := chans[i-1], chans[i]
		p := "conv" + string(rune('0'+i))
		sp, err := loadSeparable(w, p, cin, cout)
		if err != nil {
			return nil, err
		}
		d.seps = append(d.seps, sp)
	}
	if d.conv8, err = conv(w, "conv8", 1, 512, 5*len(detectorAnchors), 1); err != nil {
		return nil, err
	}
	return d, nil
}

// detection is one face the detector found, in the original image's pixels.
type detection struct {
	Box   Box
	Score float64
}

// detect finds faces in m at the given input size (a multiple of 32) and
// keeps those scoring above threshold, after non-max suppression, in the
// order the reference returns them (by score, best first).
func (d *detector) detect(m rgb, inputSize int, threshold float64, s *nn.Scratch) []detection {
	x := netInput(m, inputSize, false, detectorMean, s)
	out := d.forward(x, s)
	defer s.Release(out)
	// The reference's boxes are relative to the part of the square input
	// the image covers, then scaled to the image's pixels.
	scale := float64(inputSize) / float64(max(m.W, m.H))
	rw := math.Round(float64(m.W) * scale)
	rh := math.Round(float64(m.H) * scale)
	cands := decodeBoxes(out, threshold, float64(inputSize)/rw, float64(inputSize)/rh)
	res := suppress(cands, detectorIoU)
	for i := range res {
		b := &res[i].Box
		b.X, b.W = b.X*float64(m.W), b.W*float64(m.W)
		b.Y, b.H = b.Y*float64(m.H), b.H*float64(m.H)
	}
	return res
}

// detectCanvas finds faces in m placed in the canvas cv (see canvas), the
// whole canvas resized to inputSize; boxes are in m's pixels.
func (d *detector) detectCanvas(m rgb, inputSize int, cv canvas, threshold float64, s *nn.Scratch) []detection {
	x := netInputCanvas(m, inputSize, cv, detectorMean, s)
	out := d.forward(x, s)
	defer s.Release(out)
	res := suppress(decodeBoxes(out, threshold, 1, 1), detectorIoU)
	side := float64(cv.Side)
	for i := range res {
		b := &res[i].Box
		b.X, b.Y = b.X*side-float64(cv.OffX), b.Y*side-float64(cv.OffY)
		b.W, b.H = b.W*side, b.H*side
	}
	return res
}

// forward runs the network on x (which it releases) and returns its output
// map: 5 boxes per cell, each (x, y, w, h, score) before activation.
func (d *detector) forward(x nn.Tensor, s *nn.Scratch) nn.Tensor {
	step := func(y nn.Tensor) { s.Release(x); x = y }
	// Each layer is a convolution, leaky ReLU and 2 × 2 max pool (stride 2,
	// the last stride 1), fused so the full-size maps are never stored.
	step(d.conv0.ForwardLeakyMaxPool2(x, nn.Pad{}, 2, s))
	for i, sp := range d.seps {
		step(nn.Depthwise3x3(x, sp.depthwise, s))
		stride := 2
		if i == len(d.seps)-1 {
			stride = 1
		}
		step(sp.pointwise.ForwardLeakyMaxPool2(x, nn.Pad{}, stride, s))
	}
	out := d.conv8.Forward(x, nn.Pad{}, s)
	s.Release(x)
	return out
}

// cand is a box relative to the network's input square (0..1; corrected by
// corrX, corrY for the part the image covers) and its score.
type cand struct {
	x0, y0, x1, y1 float64
	score          float64
}

// decodeBoxes turns the output map into the boxes scoring above threshold.
func decodeBoxes(out nn.Tensor, threshold, corrX, corrY float64) []cand {
	cells := out.H
	var cands []cand
	for row := 0; row < cells; row++ {
		for col := 0; col < out.W; col++ {
			for a, anc := range detectorAnchors {
				v := out.Data[(row*out.W+col)*out.C+5*a:]
				score := sigmoid(float64(v[4]))
				if score <= threshold {
					continue
				}
				cx := (float64(col) + sigmoid(float64(v[0]))) / float64(cells) * corrX
				cy := (float64(row) + sigmoid(float64(v[1]))) / float64(cells) * corrY
				w := math.Exp(float64(v[2])) * anc[0] / float64(cells) * corrX
				h := math.Exp(float64(v[3])) * anc[1] / float64(cells) * corrY
				x0, y0 := cx-w/2, cy-h/2
				cands = append(cands, cand{x0, y0, x0 + w, y0 + h, score})
			}
		}
	}
	return cands
}

// suppress is non-max suppression as the reference does it: a stable
// ascending sort, then repeatedly take the last (best) and drop what
// overlaps it by more than maxIoU. Boxes stay relative.
func suppress(cands []cand, maxIoU float64) []detection {
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(cands[i].score, cands[j].score) })
	var res []detection
	for len(order) > 0 {
		cur := order[len(order)-1]
		order = order[:len(order)-1]
		c := cands[cur]
		res = append(res, detection{Box: Box{X: c.x0, Y: c.y0, W: c.x1 - c.x0, H: c.y1 - c.y0}, Score: c.score})
		kept := order[:0]
		for _, o := range order {
			b := cands[o]
			if iou(c.x0, c.y0, c.x1, c.y1, b.x0, b.y0, b.x1, b.y1) <= maxIoU {
				kept = append(kept, o)
			}
		}
		order = kept
	}
	return res
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// iou is the intersection over union of two boxes given by their corners;
// the scale does not matter (the reference uses input pixels).
func iou(ax0, ay0, ax1, ay1, bx0, by0, bx1, by1 float64) float64 {
	w := max(0, min(ax1, bx1)-max(ax0, bx0))
	h := max(0, min(ay1, by1)-max(ay0, by0))
	inter := w * h
	return inter / ((ax1-ax0)*(ay1-ay0) + (bx1-bx0)*(by1-by0) - inter)
}

// IoU is the intersection over union of two boxes.
func IoU(a, b Box) float64 {
	return iou(a.X, a.Y, a.X+a.W, a.Y+a.H, b.X, b.Y, b.X+b.W, b.Y+b.H)
}
