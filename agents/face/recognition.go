package face

import (
	"fmt"

	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/face/tfjs"
)

// recognitionSize is the side of the recognition net's input.
const recognitionSize = 150

// recognitionMean is the mean colour the recognition net subtracts.
var recognitionMean = [3]float32{122.782, 117.001, 104.298}

// residual is one residual block of the recognition net: two 3×3
// convolutions; a "down" block halves the map with a stride-2 first
// convolution and adds the 2×2 average of its input, zero-extended in
// channels (and, where the strided map is one smaller, in space).
type residual struct {
	conv1, conv2 *nn.Conv2D
	down         bool
}

// recognizer is FaceRecognitionNet: a ResNet-34-like network (dlib's) that
// maps a 150 × 150 face to a 128-d descriptor.
type recognizer struct {
	stem   *nn.Conv2D // 7×7, stride 2, 3 → 32
	blocks []residual
	fc     *nn.PackedB // 256 → 128
}

// scaledConv loads prefix/conv/{filters,bias} and prefix/scale/{weights,biases}
// and folds the per-channel scale into the filter and bias:
// (conv(x)+b)·s + t = conv_{f·s}(x) + (b·s + t). With winograd (3 × 3,
// stride 1 only) the convolution runs Winograd's algorithm.
func scaledConv(w tfjs.Weights, prefix string, k, cin, cout, stride int, winograd bool) (*nn.Conv2D, error) {
	f, err := w.Get(prefix+"/conv/filters", k, k, cin, cout)
	if err != nil {
		return nil, err
	}
	b, err := w.Get(prefix+"/conv/bias", cout)
	if err != nil {
		return nil, err
	}
	s, err := w.Get(prefix+"/scale/weights", cout)
	if err != nil {
		return nil, err
	}
	t, err := w.Get(prefix+"/scale/biases", cout)
	if err != nil {
		return nil, err
	}
	folded := make([]float32, len(f))
	for i, v := range f {
		folded[i] = v * s[i%cout]
	}
	bias := make([]float32, cout)
	for o := range bias {
		bias[o] = b[o]*s[o] + t[o]
	}
	if winograd {
		return nn.NewConv2DWinograd(folded, cin, cout, bias), nil
	}
	return nn.NewConv2D(folded, k, k, cin, cout, stride, bias), nil
}

// winogradMaxC is the widest layer run with Winograd's algorithm: the
// 32-, 64- and 128-channel layers work on 35 × 35, 17 × 17 and 8 × 8 maps,
// where it does 2–2.25× fewer multiplications; the 256-channel ones on
// 3 × 3 maps (a single tile), where its 4× larger filter costs more to read
// than the products it saves.
const winogradMaxC = 128

func newRecognizer(w tfjs.Weights) (*recognizer, error) {
	r := &recognizer{}
	var err error
	if r.stem, err = scaledConv(w, "conv32_down", 7, 3, 32, 2, false); err != nil {
		return nil, err
	}
	layout := []struct {
		name      string
		cin, cout int
	}{
		{"conv32_1", 32, 32}, {"conv32_2", 32, 32}, {"conv32_3", 32, 32},
		{"conv64_down", 32, 64}, {"conv64_1", 64, 64}, {"conv64_2", 64, 64}, {"conv64_3", 64, 64},
		{"conv128_down", 64, 128}, {"conv128_1", 128, 128}, {"conv128_2", 128, 128},
		{"conv256_down", 128, 256}, {"conv256_1", 256, 256}, {"conv256_2", 256, 256},
		{"conv256_down_out", 256, 256},
	}
	for _, l := range layout {
		down := l.cin != l.cout || l.name == "conv256_down_out"
		stride := 1
		if down {
			stride = 2
		}
		wino := l.cout <= winogradMaxC
		c1, err := scaledConv(w, l.name+"/conv1", 3, l.cin, l.cout, stride, wino && !down)
		if err != nil {
			return nil, err
		}
		c2, err := scaledConv(w, l.name+"/conv2", 3, l.cout, l.cout, 1, wino)
		if err != nil {
			return nil, err
		}
		r.blocks = append(r.blocks, residual{conv1: c1, conv2: c2, down: down})
	}
	fc, err := w.Get("fc", 256, DescriptorSize)
	if err != nil {
		return nil, err
	}
	r.fc = nn.PackB(fc, 256, DescriptorSize)
	return r, nil
}

// describe runs the net on a face image (padded to a square, resized to 150).
func (r *recognizer) describe(m rgb, s *nn.Scratch) Descriptor {
	x := netInput(m, recognitionSize, true, recognitionMean, s)
	step := func(y nn.Tensor) { s.Release(x); x = y }
	step(r.stem.Forward(x, nn.Pad{}, s))
	nn.ReLU(x.Data)
	step(nn.MaxPool(x, 3, 2, false, s))
	for _, b := range r.blocks {
		step(b.forward(x, s))
	}
	defer s.Release(x)
	// Global average over the map, then the fully connected layer.
	mean := globalMean(x)
	var d Descriptor
	nn.Gemm(1, mean, x.C, r.fc, d[:], DescriptorSize)
	return d
}

// forward returns the block's output in a new tensor; x is left intact.
func (b residual) forward(x nn.Tensor, s *nn.Scratch) nn.Tensor {
	var mid nn.Tensor
	if !b.down {
		mid = b.conv1.ForwardReLU(x, nn.Same1, s)
	} else {
		mid = b.conv1.ForwardReLU(x, nn.Pad{}, s)
	}
	out := b.conv2.Forward(mid, nn.Same1, s)
	s.Release(mid)
	short := x
	if b.down {
		short = nn.AvgPoolValid(x, 2, s)
		defer s.Release(short)
		if out.H != short.H || out.W != short.W {
			padded := padTo(out, short.H, short.W, s)
			s.Release(out)
			out = padded
		}
	}
	if out.H != short.H || out.W != short.W || short.C > out.C {
		panic(fmt.Sprintf("face: residual shapes %dx%dx%d and %dx%dx%d", out.H, out.W, out.C, short.H, short.W, short.C))
	}
	for i := 0; i < out.H*out.W; i++ {
		dst := out.Data[i*out.C : i*out.C+short.C]
		for c, v := range short.Data[i*short.C : (i+1)*short.C] {
			dst[c] += v
		}
	}
	nn.ReLU(out.Data)
	return out
}

// padTo zero-extends x at the bottom and right to h × w.
func padTo(x nn.Tensor, h, w int, s *nn.Scratch) nn.Tensor {
	out := s.Tensor(h, w, x.C)
	for y := 0; y < x.H; y++ {
		copy(out.Data[y*w*x.C:(y*w+x.W)*x.C], x.Data[y*x.W*x.C:(y+1)*x.W*x.C])
	}
	return out
}
