package face

import (
	"math"

	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/face/tfjs"
)

// LandmarkManifest is the landmark net's weights manifest in the model directory.
const LandmarkManifest = "face_landmark_68_model-weights_manifest.json"

const landmarkSize = 112

// landmarker is FaceLandmark68Net: four dense blocks of separable
// convolutions on a 112 × 112 face, then a fully connected layer giving 68
// (x, y) points.
type landmarker struct {
	stem   *nn.Conv2D // dense0/conv0, 3×3 stride 2, 3 → 32
	blocks [4][4]separable
	fc     *nn.PackedB
	fcBias []float32
}

func newLandmarker(w tfjs.Weights) (*landmarker, error) {
	l := &landmarker{}
	var err error
	if l.stem, err = conv(w, "dense0/conv0", 3, 3, 32, 2); err != nil {
		return nil, err
	}
	chans := []int{32, 64, 128, 256}
	for d := range 4 {
		for c := range 4 {
			if d == 0 && c == 0 {
				continue
			}
			cout := chans[d]
			cin := cout
			if c == 0 {
				cin = chans[d-1]
			}
			p := "dense" + string(rune('0'+d)) + "/conv" + string(rune('0'+c))
			if l.blocks[d][c], err = loadSeparable(w, p, cin, cout); err != nil {
				return nil, err
			}
		}
	}
	fw, err := w.Get("fc/weights", 256, 136)
	if err != nil {
		return nil, err
	}
	if l.fcBias, err = w.Get("fc/bias", 136); err != nil {
		return nil, err
	}
	l.fc = nn.PackB(fw, 256, 136)
	return l, nil
}

// samePad2 is TensorFlow's "same" padding of a 3×3, stride-2 window on x:
// the output is ceil(size/2) and the odd pixel of padding goes after.
func samePad2(x nn.Tensor) nn.Pad {
	pad := func(n int) (int, int) {
		total := max(((n+1)/2-1)*2+3-n, 0)
		return total / 2, total - total/2
	}
	t, b := pad(x.H)
	l, r := pad(x.W)
	return nn.Pad{Top: t, Left: l, Bottom: b, Right: r}
}

// forward applies the landmark net's separable convolution ("same" padding,
// no activation).
func (sc separable) forward(x nn.Tensor, stride int, s *nn.Scratch) nn.Tensor {
	if stride == 1 {
		x = nn.Depthwise3x3(x, sc.depthwise, nil)
	} else {
		x = nn.DepthwiseStrided(x, sc.depthwise, stride, samePad2(x), nil)
	}
	return sc.pointwise.Forward(x, nn.Pad{}, s)
}

// point is a position in an image's pixels.
type point struct{ X, Y float64 }

// landmarks returns the 68 points of the face in m, in m's pixels.
func (l *landmarker) landmarks(m rgb, s *nn.Scratch) [68]point {
	x := netInput(m, landmarkSize, true, recognitionMean, nil)
	var out1 nn.Tensor
	for d := range 4 {
		if d == 0 {
			out1 = l.stem.Forward(x, samePad2(x), s)
		} else {
			out1 = l.blocks[d][0].forward(x, 2, s)
		}
		nn.ReLU(out1.Data)
		// Dense connections: each conv sees relu(out1 + ... + its predecessor).
		sum := nn.Tensor{H: out1.H, W: out1.W, C: out1.C, Data: append([]float32(nil), out1.Data...)}
		in := out1
		for c := 1; c < 4; c++ {
			o := l.blocks[d][c].forward(in, 1, s)
			for i, v := range o.Data {
				sum.Data[i] += v
			}
			in = nn.Tensor{H: sum.H, W: sum.W, C: sum.C, Data: append([]float32(nil), sum.Data...)}
			nn.ReLU(in.Data)
		}
		x = in
	}
	// 7×7 average (the map is 7×7 at this point), then the dense layer.
	feat := globalMean(x)
	raw := append([]float32(nil), l.fcBias...)
	nn.Gemm(1, feat, len(feat), l.fc, raw, len(raw))

	// Undo the centred padding: the reference maps the net's [0,1] output
	// through the 112-pixel input to the crop's relative coordinates.
	scale := float64(landmarkSize) / float64(max(m.W, m.H))
	sw, sh := float64(m.W)*scale, float64(m.H)*scale
	var padX, padY float64
	if sw < sh {
		padX = math.Abs(sw-sh) / 2
	}
	if sh < sw {
		padY = math.Abs(sw-sh) / 2
	}
	var pts [68]point
	for i := range pts {
		rx := (float64(raw[2*i])*landmarkSize - padX) / sw
		ry := (float64(raw[2*i+1])*landmarkSize - padY) / sh
		pts[i] = point{rx * float64(m.W), ry * float64(m.H)}
	}
	return pts
}

func centroid(ps []point) point {
	var c point
	for _, p := range ps {
		c.X += p.X
		c.Y += p.Y
	}
	return point{c.X / float64(len(ps)), c.Y / float64(len(ps))}
}

// dlibBox is the reference's "dlib alignment" box for landmarks given in
// image pixels: a square whose side is the mean eye-to-mouth distance over
// 0.45, placed around the centre of the eyes and mouth (face-api's
// FaceLandmarks.align with useDlibAlignment). No rotation is applied.
func dlibBox(pts [68]point) (x, y, size float64) {
	le, re, mo := centroid(pts[36:42]), centroid(pts[42:48]), centroid(pts[48:68])
	dist := func(p point) float64 { return math.Hypot(mo.X-p.X, mo.Y-p.Y) }
	size = math.Floor((dist(le) + dist(re)) / 2 / 0.45)
	cx, cy := (le.X+re.X+mo.X)/3, (le.Y+re.Y+mo.Y)/3
	x = math.Floor(math.Max(0, cx-0.5*size))
	y = math.Floor(math.Max(0, cy-0.43*size))
	return x, y, size
}
