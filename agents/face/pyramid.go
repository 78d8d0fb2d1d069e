package face

import (
	"image"
	"math"
	"slices"

	"github.com/facecloud/facecloud/agents/face/nn"
)

// The detection pyramid. TinyFaceDetector at one input size sees faces from
// about 5 % to 80 % of the photo's longer side: it needs context around a
// face (a face that fills the frame scores low) and a face needs about 25
// pixels of its 416-pixel input. The engine therefore runs up to three
// passes and merges their boxes:
//
//   - close-up: the photo centred in a grey square twice its size, at input
//     closeUpInput, for faces that fill the frame (they then fill half of it);
//   - the reference pass at Options.DetectorInputSize (416), what face-api
//     runs;
//   - fine: for photos whose longer side exceeds 1.5 × that size, the photo
//     in overlapping tiles at up to Options.FineInputSize pixels a side
//     (1664), for faces a few percent of its side.
//
// A box is kept unless a better-scoring one overlaps it by more than
// detectorIoU, or covers more than mergeCover of its area (the passes see
// one face at different scales and may box it a little differently).
const (
	closeUpInput = 224
	closeUpGrey  = 128
	mergeCover   = 0.7
)

// DefaultFineInputSize is the resolution of the pyramid's fine pass: the
// photo is looked at as if its longer side were this many pixels (never
// more than its own size), in overlapping tiles of the reference input.
const DefaultFineInputSize = 1664

// fineScale is the scale of the fine pass for a photo whose longer side is
// side, or 0 when the reference pass already sees it at that resolution.
func (o Options) fineScale(side int) float64 {
	res := o.FineInputSize
	if res == 0 {
		res = DefaultFineInputSize
	}
	if res < 0 || 2*min(side, res) <= 3*o.DetectorInputSize {
		return 0
	}
	return float64(min(side, res)) / float64(side)
}

// fineTiles runs the reference detector on overlapping tiles of m, each
// tile resized to the reference input, so that the photo is seen at
// scale; boxes are in m's pixels. Tiles overlap by a quarter, so a face up
// to a quarter of a tile is whole in one of them; larger faces are the
// reference pass's.
func (e *Engine) fineTiles(m rgb, scale float64, s *nn.Scratch) []detection {
	in := e.opts.DetectorInputSize
	t := int(math.Ceil(float64(in) / scale))
	stride := t * 3 / 4
	starts := func(n int) []int {
		if n <= t {
			return []int{0}
		}
		k := (n - t + stride - 1) / stride
		out := make([]int, k+1)
		for i := range out {
			out[i] = i * (n - t) / k
		}
		return out
	}
	var dets []detection
	for _, y := range starts(m.H) {
		for _, x := range starts(m.W) {
			r := image.Rect(x, y, min(m.W, x+t), min(m.H, y+t))
			for _, d := range e.detector.detect(m.crop(r), in, e.opts.ScoreThreshold, s) {
				d.Box.X += float64(x)
				d.Box.Y += float64(y)
				dets = append(dets, d)
			}
		}
	}
	return dets
}

// shrink averages f × f blocks of m (box filter), so that a later bilinear
// resize by at most 2 does not alias; f ≤ 1 returns m.
func shrink(m rgb, f int) rgb {
	if f <= 1 {
		return m
	}
	w, h := m.W/f, m.H/f
	out := rgb{W: max(w, 1), H: max(h, 1), Pix: make([]uint8, 3*max(w, 1)*max(h, 1))}
	sums := make([]int, 3*out.W)
	for y := 0; y < out.H; y++ {
		clear(sums)
		for dy := 0; dy < f; dy++ {
			row := m.Pix[3*(y*f+dy)*m.W:]
			for x := 0; x < out.W; x++ {
				for dx := 0; dx < f; dx++ {
					p := 3 * (x*f + dx)
					sums[3*x] += int(row[p])
					sums[3*x+1] += int(row[p+1])
					sums[3*x+2] += int(row[p+2])
				}
			}
		}
		n := f * f
		for i, v := range sums {
			out.Pix[3*y*out.W+i] = uint8((v + n/2) / n)
		}
	}
	return out
}

// closeUp runs the detector on m centred in a grey square of k times its
// longer side, at the given input size, and returns boxes in m's pixels.
// Large photos are first shrunk by whole factors so that the square's
// resize to the input does not alias.
func (e *Engine) closeUp(m rgb, k float64, input int, threshold float64, s *nn.Scratch) []detection {
	f := int(k * float64(max(m.W, m.H)) / float64(2*input))
	sm := shrink(m, f)
	side := int(math.Round(k * float64(max(sm.W, sm.H))))
	cv := canvas{Side: side, OffX: (side - sm.W) / 2, OffY: (side - sm.H) / 2, Fill: closeUpGrey}
	dets := e.detector.detectCanvas(sm, input, cv, threshold, s)
	if f > 1 {
		sx, sy := float64(m.W)/float64(sm.W), float64(m.H)/float64(sm.H)
		for i := range dets {
			b := &dets[i].Box
			b.X, b.W, b.Y, b.H = b.X*sx, b.W*sx, b.Y*sy, b.H*sy
		}
	}
	// Only boxes centred on the photo: the grey around it holds no face.
	kept := dets[:0]
	for _, d := range dets {
		cx, cy := d.Box.X+d.Box.W/2, d.Box.Y+d.Box.H/2
		if cx >= 0 && cy >= 0 && cx <= float64(m.W) && cy <= float64(m.H) {
			kept = append(kept, d)
		}
	}
	return kept
}

// detectPyramid runs the passes described above and merges their boxes.
// The fine pass sees texture in detail and takes some for faces (retinal
// vessels, graffiti): a box only it found is kept if the crop check passes
// on the box with half its size of context around it.
func (e *Engine) detectPyramid(m rgb, s *nn.Scratch) []detection {
	th := e.opts.ScoreThreshold
	dets := e.detector.detect(m, e.opts.DetectorInputSize, th, s)
	dets = append(dets, e.closeUp(m, 2, closeUpInput, th, s)...)
	sc := e.opts.fineScale(max(m.W, m.H))
	if sc == 0 {
		return mergeDetections(dets)
	}
	base := mergeDetections(dets)
	dets = base
next:
	for _, d := range mergeDetections(e.fineTiles(m, sc, s)) {
		for _, b := range base {
			if IoU(d.Box, b.Box) > detectorIoU || cover(d.Box, b.Box) > mergeCover {
				dets = append(dets, d)
				continue next
			}
		}
		r := image.Rect(int(d.Box.X-d.Box.W/2), int(d.Box.Y-d.Box.H/2), int(d.Box.X+1.5*d.Box.W), int(d.Box.Y+1.5*d.Box.H)).Intersect(image.Rect(0, 0, m.W, m.H))
		if r.Empty() {
			continue
		}
		if score, _ := e.cropCheck(m.crop(r), s); score >= th {
			dets = append(dets, d)
		}
	}
	return mergeDetections(dets)
}

// mergeDetections keeps the best-scoring box of each group of overlapping
// ones.
func mergeDetections(dets []detection) []detection {
	slices.SortStableFunc(dets, func(a, b detection) int { return -cmpFloat(a.Score, b.Score) })
	var kept []detection
next:
	for _, d := range dets {
		for _, k := range kept {
			if IoU(d.Box, k.Box) > detectorIoU || cover(d.Box, k.Box) > mergeCover {
				continue next
			}
		}
		kept = append(kept, d)
	}
	return kept
}

// cover is the area of the intersection of a and b over the smaller one's.
func cover(a, b Box) float64 {
	w := max(0, min(a.X+a.W, b.X+b.W)-max(a.X, b.X))
	h := max(0, min(a.Y+a.H, b.Y+b.H)-max(a.Y, b.Y))
	small := min(a.W*a.H, b.W*b.H)
	if small <= 0 {
		return 0
	}
	return w * h / small
}

// cropCheck asks whether m is one face that fills most of it (a face
// crop) and returns the detector's best score for such a face, with its
// box. Tight crops give the detector too little context on their own, and
// it misses small blurred faces; so the crop is reduced to at most
// cropCheckSide pixels, sharpened (an unsharp mask of radius 1.5 pixels in
// a 64-pixel face), and centred in grey squares of 2 and 1.5 times its
// side at inputs 224 and 160. Only boxes centred on the crop and at least
// minCropFace of its longer side count. Faces score like faces in photos
// there; flat colours, noise, gradients, text and textures near 0.
func (e *Engine) cropCheck(m rgb, s *nn.Scratch) (float64, Box) {
	sm := shrink(m, max(m.W, m.H)/cropCheckSide)
	side := max(sm.W, sm.H)
	sm = unsharp(sm, 1.5*float64(side)/64, 3)
	best, bestBox := 0.0, Box{}
	for _, p := range []struct {
		k     float64
		input int
	}{{2, 224}, {1.5, 160}} {
		if best >= e.opts.ScoreThreshold {
			break // sure enough: the second view would not change the answer
		}
		for _, d := range e.closeUp(sm, p.k, p.input, cropCandidateScore, s) {
			if d.Box.W >= minCropFace*float64(side) && d.Score > best {
				best, bestBox = d.Score, d.Box
			}
		}
	}
	sx, sy := float64(m.W)/float64(sm.W), float64(m.H)/float64(sm.H)
	bestBox.X, bestBox.W, bestBox.Y, bestBox.H = bestBox.X*sx, bestBox.W*sx, bestBox.Y*sy, bestBox.H*sy
	return best, bestBox
}

// cropCheckSide bounds the side of the image the crop check looks at.
const cropCheckSide = 224

// unsharp sharpens m: m + amount × (m − gaussian(m, sigma)), with edges
// extended.
func unsharp(m rgb, sigma, amount float64) rgb {
	r := max(1, int(math.Ceil(3*sigma)))
	k := make([]float32, 2*r+1)
	var sum float32
	for i := range k {
		x := float64(i - r)
		k[i] = float32(math.Exp(-x * x / (2 * sigma * sigma)))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	tmp := make([]float32, len(m.Pix))
	for y := 0; y < m.H; y++ {
		row := m.Pix[3*y*m.W : 3*(y+1)*m.W]
		for x := 0; x < m.W; x++ {
			var a, b, c float32
			for i, w := range k {
				xx := 3 * min(max(x+i-r, 0), m.W-1)
				a += w * float32(row[xx])
				b += w * float32(row[xx+1])
				c += w * float32(row[xx+2])
			}
			o := 3 * (y*m.W + x)
			tmp[o], tmp[o+1], tmp[o+2] = a, b, c
		}
	}
	out := rgb{W: m.W, H: m.H, Pix: make([]uint8, len(m.Pix))}
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			var bl [3]float32
			for i, w := range k {
				o := 3 * (min(max(y+i-r, 0), m.H-1)*m.W + x)
				bl[0] += w * tmp[o]
				bl[1] += w * tmp[o+1]
				bl[2] += w * tmp[o+2]
			}
			o := 3 * (y*m.W + x)
			for c := range 3 {
				p := float32(m.Pix[o+c])
				v := p + float32(amount)*(p-bl[c])
				out.Pix[o+c] = uint8(min(255, max(0, v+0.5)))
			}
		}
	}
	return out
}

// Crop check bounds: candidates below cropCandidateScore are not decoded,
// and a face crop's face is at least minCropFace of its longer side.
const (
	cropCandidateScore = 0.05
	minCropFace        = 0.3
)

// clampBox clips b to a w × h image.
func clampBox(b Box, w, h int) Box {
	x0, y0 := max(0, b.X), max(0, b.Y)
	x1, y1 := min(float64(w), b.X+b.W), min(float64(h), b.Y+b.H)
	return Box{X: x0, Y: y0, W: max(0, x1-x0), H: max(0, y1-y0)}
}

// wholeBox is the box of a whole w × h image.
func wholeBox(r image.Rectangle) Box { return Box{W: float64(r.Dx()), H: float64(r.Dy())} }
