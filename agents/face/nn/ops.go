package nn

import "math"

// Tensor is one image's activations, height × width × channels, row-major.
type Tensor struct {
	H, W, C int
	Data    []float32
}

// NewTensor allocates a zeroed h × w × c tensor.
func NewTensor(h, w, c int) Tensor {
	return Tensor{H: h, W: w, C: c, Data: make([]float32, h*w*c)}
}

// Pad is the zero padding around a convolution's or pool's input, in pixels.
type Pad struct{ Top, Left, Bottom, Right int }

// Same1 pads a 3×3, stride-1 convolution so its output keeps the input's size.
var Same1 = Pad{1, 1, 1, 1}

// Conv2D is a convolution with one bias per output channel and its filter
// packed for Gemm (im2col) or transformed for Winograd's algorithm.
type Conv2D struct {
	KH, KW, Cin, Cout, Stride int
	W                         *PackedB // nil for Winograd
	Bias                      []float32
	wino                      *winograd
}

// NewConv2D packs a filter in TensorFlow layout (kh × kw × cin × cout) for a
// direct (im2col) convolution.
func NewConv2D(filter []float32, kh, kw, cin, cout, stride int, bias []float32) *Conv2D {
	return &Conv2D{KH: kh, KW: kw, Cin: cin, Cout: cout, Stride: stride, W: PackB(filter, kh*kw*cin, cout), Bias: bias}
}

// NewConv2DWinograd prepares a 3 × 3, stride-1 filter (TensorFlow layout
// 3 × 3 × cin × cout) for Winograd's F(4×4, 3×3), which does 2.25× fewer
// multiplications than im2col on maps whose sides divide by 4 but keeps 4×
// the filter's floats. It pays on maps of about 8 × 8 and more; on smaller
// maps the larger filter costs more to read than the products it saves.
// Its Forward takes padding Same1 only.
func NewConv2DWinograd(filter []float32, cin, cout int, bias []float32) *Conv2D {
	return &Conv2D{KH: 3, KW: 3, Cin: cin, Cout: cout, Stride: 1, Bias: bias, wino: newWinograd(filter, cin, cout)}
}

// Winograd says whether the convolution runs Winograd's algorithm.
func (cv *Conv2D) Winograd() bool { return cv.wino != nil }

// ForwardReLU is Forward followed by ReLU, fused into the Winograd output
// transform when the convolution has one.
func (cv *Conv2D) ForwardReLU(x Tensor, p Pad, s *Scratch) Tensor {
	if cv.wino != nil {
		cv.checkWinoPad(p)
		return cv.winoForward(x, true, s)
	}
	out := cv.Forward(x, p, s)
	ReLU(out.Data)
	return out
}

func (cv *Conv2D) checkWinoPad(p Pad) {
	if p != Same1 {
		panic("nn: a Winograd convolution takes padding Same1 only")
	}
}

// patchRows is how many output pixels one im2col chunk covers, so the patch
// matrix stays around 256 KiB whatever the image size; a multiple of 12,
// which every micro-kernel's row count divides.
func patchRows(k int) int {
	return max(12, (64*1024/k)/12*12)
}

// Forward applies the convolution to x with padding p. Scratch holds the
// im2col patches between calls.
func (cv *Conv2D) Forward(x Tensor, p Pad, s *Scratch) Tensor {
	if cv.wino != nil {
		cv.checkWinoPad(p)
		return cv.winoForward(x, false, s)
	}
	oh := (x.H+p.Top+p.Bottom-cv.KH)/cv.Stride + 1
	ow := (x.W+p.Left+p.Right-cv.KW)/cv.Stride + 1
	out := s.Tensor(oh, ow, cv.Cout)
	k := cv.KH * cv.KW * cv.Cin
	rows := patchRows(k)
	// Each chunk of output rows starts as the bias, filled just before its
	// product so it is still in cache.
	if cv.KH == 1 && cv.KW == 1 && cv.Stride == 1 && p == (Pad{}) {
		for r0 := 0; r0 < oh*ow; r0 += rows {
			n := min(rows, oh*ow-r0)
			c := out.Data[r0*cv.Cout : (r0+n)*cv.Cout]
			fillRows(c, cv.Bias)
			Gemm(n, x.Data[r0*cv.Cin:], cv.Cin, cv.W, c, cv.Cout)
		}
		return out
	}
	patches := s.floats(rows * k)
	for r0 := 0; r0 < oh*ow; r0 += rows {
		n := min(rows, oh*ow-r0)
		fillRows(out.Data[r0*cv.Cout:(r0+n)*cv.Cout], cv.Bias)
		for r := 0; r < n; r++ {
			oy, ox := (r0+r)/ow, (r0+r)%ow
			dst := patches[r*k : (r+1)*k]
			d := 0
			ix0 := ox*cv.Stride - p.Left
			inX := ix0 >= 0 && ix0+cv.KW <= x.W
			span := cv.KW * cv.Cin
			for ky := 0; ky < cv.KH; ky++ {
				iy := oy*cv.Stride + ky - p.Top
				switch {
				case iy < 0 || iy >= x.H:
					clear(dst[d : d+span])
				case inX:
					// The whole row of the window is one run of the input.
					o := (iy*x.W + ix0) * x.C
					copyShort(dst[d:d+span], x.Data[o:o+span])
				default:
					for kx := 0; kx < cv.KW; kx++ {
						ix := ix0 + kx
						if ix < 0 || ix >= x.W {
							clear(dst[d+kx*cv.Cin : d+(kx+1)*cv.Cin])
						} else {
							o := (iy*x.W + ix) * x.C
							copyShort(dst[d+kx*cv.Cin:d+(kx+1)*cv.Cin], x.Data[o:o+cv.Cin])
						}
					}
				}
				d += span
			}
		}
		Gemm(n, patches, k, cv.W, out.Data[r0*cv.Cout:], cv.Cout)
	}
	return out
}

// Depthwise3x3 is a 3×3, stride-1 depthwise convolution (one filter per
// channel, TensorFlow layout 3 × 3 × c × 1) with padding 1 on every side.
// It runs tap by tap over whole rows, so each step is one long
// multiply-add of a row by the tap's per-channel weights.
func Depthwise3x3(x Tensor, filter []float32, s *Scratch) Tensor {
	c, w := x.C, x.W
	out := s.Tensor(x.H, w, c)
	mulAddTiled := active().mulAddTiled
	for oy := 0; oy < x.H; oy++ {
		dst := out.Data[oy*w*c : (oy+1)*w*c]
		for ky := 0; ky < 3; ky++ {
			iy := oy + ky - 1
			if iy < 0 || iy >= x.H {
				continue
			}
			src := x.Data[iy*w*c : (iy+1)*w*c]
			f := filter[ky*3*c : (ky*3+3)*c]
			if w > 1 {
				mulAddTiled(dst[c:], src[:(w-1)*c], f[:c], w-1)      // left tap
				mulAddTiled(dst[:(w-1)*c], src[c:], f[2*c:3*c], w-1) // right tap
			}
			mulAddTiled(dst, src, f[c:2*c], w) // centre tap
		}
	}
	return out
}

// mulAddTiledGo sets dst[i] += src[i]·f[i mod len(f)] for n pixels of len(f) channels.
func mulAddTiledGo(dst, src, f []float32, n int) {
	c := len(f)
	for p := 0; p < n; p++ {
		d := dst[p*c : (p+1)*c : (p+1)*c]
		sr := src[p*c : (p+1)*c : (p+1)*c]
		for i, fv := range f {
			d[i] += sr[i] * fv
		}
	}
}

// poolOut is the output size and leading padding of a pool in TensorFlow's
// "same" mode (extra padding goes after) or "valid" mode.
func poolOut(in, k, stride int, same bool) (out, before int) {
	if !same {
		return (in-k)/stride + 1, 0
	}
	out = (in + stride - 1) / stride
	total := max((out-1)*stride+k-in, 0)
	return out, total / 2
}

// MaxPool takes the maximum over k × k windows; padded positions are ignored.
func MaxPool(x Tensor, k, stride int, same bool, s *Scratch) Tensor {
	oh, pt := poolOut(x.H, k, stride, same)
	ow, pl := poolOut(x.W, k, stride, same)
	if k == 2 && pt == 0 && pl == 0 {
		return maxPool2(x, stride, oh, ow, s)
	}
	out := s.Tensor(oh, ow, x.C)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			dst := out.Data[(oy*ow+ox)*x.C : (oy*ow+ox+1)*x.C]
			for i := range dst {
				dst[i] = float32(math.Inf(-1))
			}
			for ky := 0; ky < k; ky++ {
				iy := oy*stride + ky - pt
				if iy < 0 || iy >= x.H {
					continue
				}
				for kx := 0; kx < k; kx++ {
					ix := ox*stride + kx - pl
					if ix < 0 || ix >= x.W {
						continue
					}
					src := x.Data[(iy*x.W+ix)*x.C : (iy*x.W+ix+1)*x.C]
					for i, v := range src {
						dst[i] = max(dst[i], v)
					}
				}
			}
		}
	}
	return out
}

// AvgPoolValid averages k × k windows with stride k, dropping what does not fit.
func AvgPoolValid(x Tensor, k int, s *Scratch) Tensor {
	oh, ow := x.H/k, x.W/k
	out := s.Tensor(oh, ow, x.C)
	inv := float32(k * k)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			dst := out.Data[(oy*ow+ox)*x.C : (oy*ow+ox+1)*x.C]
			for ky := 0; ky < k; ky++ {
				for kx := 0; kx < k; kx++ {
					o := ((oy*k+ky)*x.W + ox*k + kx) * x.C
					for i, v := range x.Data[o : o+x.C] {
						dst[i] += v
					}
				}
			}
			for i := range dst {
				dst[i] /= inv
			}
		}
	}
	return out
}

// ReLU clamps x at zero in place.
func ReLU(x []float32) { active().relu(x) }

// Leaky is the detector's leaky ReLU with slope 0.1 (max(v, 0.1·v)), in place.
func Leaky(x []float32) { active().leaky(x) }

func reluGo(x []float32) {
	for i, v := range x {
		x[i] = max(v, 0)
	}
}

func leakyGo(x []float32) {
	for i, v := range x {
		x[i] = max(v, v*0.1)
	}
}

// fillRows sets dst to row repeated, doubling the filled part each step so a
// few large copies do the work of many small ones.
func fillRows(dst, row []float32) {
	if len(row) == 0 {
		return
	}
	n := copy(dst, row)
	for n < len(dst) {
		n += copy(dst[n:], dst[:n])
	}
}

// copyShort copies short runs without a call to memmove.
func copyShort(dst, src []float32) {
	if len(src) > 32 {
		copy(dst, src)
		return
	}
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = v
	}
}

// Scratch is reusable working memory for one goroutine's forward passes:
// the im2col buffer and released activation tensors. Reusing activations
// matters for the detector, whose first maps are megabytes: fresh memory
// from the OS costs a page fault per 4 KiB on first touch. A nil *Scratch
// allocates every time.
type Scratch struct {
	buf  []float32
	free [][]float32
	// The Winograd convolution's padded input, transformed input and
	// products, and edge tile.
	wpad, wv, wm, wedge []float32
}

// maxFree bounds how many released buffers a Scratch keeps.
const maxFree = 8

// Tensor returns a zeroed h × w × c tensor, reusing the smallest released
// buffer that is big enough.
func (s *Scratch) Tensor(h, w, c int) Tensor { return s.tensor(h, w, c, true) }

func (s *Scratch) tensor(h, w, c int, zero bool) Tensor {
	n := h * w * c
	if s != nil {
		best := -1
		for i, b := range s.free {
			if cap(b) >= n && (best < 0 || cap(b) < cap(s.free[best])) {
				best = i
			}
		}
		if best >= 0 {
			b := s.free[best][:n]
			s.free = append(s.free[:best], s.free[best+1:]...)
			if zero {
				clear(b)
			}
			return Tensor{H: h, W: w, C: c, Data: b}
		}
	}
	return NewTensor(h, w, c)
}

// Release hands t's memory back for reuse; t must not be used afterwards.
func (s *Scratch) Release(t Tensor) {
	if s == nil || cap(t.Data) == 0 {
		return
	}
	if len(s.free) == maxFree {
		// Drop the smallest; large buffers are the ones worth keeping.
		small := 0
		for i, b := range s.free {
			if cap(b) < cap(s.free[small]) {
				small = i
			}
		}
		if cap(s.free[small]) >= cap(t.Data) {
			return
		}
		s.free = append(s.free[:small], s.free[small+1:]...)
	}
	s.free = append(s.free, t.Data[:0])
}

// grow returns (*b)[:n], reallocating *b when it is too small.
func (s *Scratch) grow(b *[]float32, n int) []float32 {
	if s == nil {
		return make([]float32, n)
	}
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	return (*b)[:n]
}

// tensorNoClear is Tensor for outputs the caller writes in full.
func (s *Scratch) tensorNoClear(h, w, c int) Tensor {
	return s.tensor(h, w, c, false)
}

func (s *Scratch) floats(n int) []float32 {
	if cap(s.buf) < n {
		s.buf = make([]float32, n)
	}
	return s.buf[:n]
}

// maxPool2 is MaxPool for 2 × 2 windows without leading padding: windows
// that hang over the bottom or right edge use the pixels they cover.
func maxPool2(x Tensor, stride, oh, ow int, s *Scratch) Tensor {
	c := x.C
	out := s.Tensor(oh, ow, c)
	for oy := 0; oy < oh; oy++ {
		y0 := oy * stride
		y1 := min(y0+1, x.H-1)
		for ox := 0; ox < ow; ox++ {
			x0 := ox * stride
			x1 := min(x0+1, x.W-1)
			a := x.Data[(y0*x.W+x0)*c : (y0*x.W+x0+1)*c]
			b := x.Data[(y0*x.W+x1)*c : (y0*x.W+x1+1)*c]
			d := x.Data[(y1*x.W+x0)*c : (y1*x.W+x0+1)*c]
			e := x.Data[(y1*x.W+x1)*c : (y1*x.W+x1+1)*c]
			dst := out.Data[(oy*ow+ox)*c : (oy*ow+ox+1)*c]
			for i := range dst {
				dst[i] = max(max(a[i], b[i]), max(d[i], e[i]))
			}
		}
	}
	return out
}

// DepthwiseStrided is a 3×3 depthwise convolution with any stride and
// padding; the landmark net's stride-2 layers use it on small maps.
func DepthwiseStrided(x Tensor, filter []float32, stride int, p Pad, s *Scratch) Tensor {
	c := x.C
	oh := (x.H+p.Top+p.Bottom-3)/stride + 1
	ow := (x.W+p.Left+p.Right-3)/stride + 1
	out := s.Tensor(oh, ow, c)
	mulAddTiled := active().mulAddTiled
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			dst := out.Data[(oy*ow+ox)*c : (oy*ow+ox+1)*c]
			for ky := 0; ky < 3; ky++ {
				iy := oy*stride + ky - p.Top
				if iy < 0 || iy >= x.H {
					continue
				}
				for kx := 0; kx < 3; kx++ {
					ix := ox*stride + kx - p.Left
					if ix < 0 || ix >= x.W {
						continue
					}
					mulAddTiled(dst, x.Data[(iy*x.W+ix)*c:(iy*x.W+ix+1)*c], filter[(ky*3+kx)*c:(ky*3+kx+1)*c], 1)
				}
			}
		}
	}
	return out
}
