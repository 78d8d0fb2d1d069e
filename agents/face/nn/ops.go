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
// packed for Gemm (a direct convolution) or transformed for Winograd's
// algorithm.
type Conv2D struct {
	KH, KW, Cin, Cout, Stride int
	W                         *PackedB // nil for Winograd
	Bias                      []float32
	wino                      *winograd
}

// NewConv2D packs a filter in TensorFlow layout (kh × kw × cin × cout) for a
// direct convolution: products over im2col patches or, for outputs at least
// implicitMinWidth wide, over the input itself (forwardImplicit).
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
// a whole number of the largest tiles (6 or 12 rows).
func patchRows(k int) int {
	return max(12, (64*1024/k)/12*12)
}

// Forward applies the convolution to x with padding p. Scratch holds the
// working buffers between calls.
func (cv *Conv2D) Forward(x Tensor, p Pad, s *Scratch) Tensor {
	if cv.wino != nil {
		cv.checkWinoPad(p)
		return cv.winoForward(x, false, s)
	}
	oh := (x.H+p.Top+p.Bottom-cv.KH)/cv.Stride + 1
	ow := (x.W+p.Left+p.Right-cv.KW)/cv.Stride + 1
	out := s.TensorNoZero(oh, ow, cv.Cout) // each chunk starts as the bias
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
	if ow >= implicitMinWidth {
		cv.forwardImplicit(x, p, out, s)
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

// ForwardLeakyMaxPool2 is MaxPool(Leaky(Forward(x, p)), 2, stride, true),
// the detector's layer ending, computed a pair of convolution rows at a
// time so the convolution's full-size output (megabytes on the detector's
// first layers) is never stored. The arithmetic is Forward's, Leaky's and
// MaxPool's. Convolutions that Forward runs over im2col patches (outputs
// narrower than implicitMinWidth, except 1 × 1) take the unfused path.
func (cv *Conv2D) ForwardLeakyMaxPool2(x Tensor, p Pad, stride int, s *Scratch) Tensor {
	oh := (x.H+p.Top+p.Bottom-cv.KH)/cv.Stride + 1
	ow := (x.W+p.Left+p.Right-cv.KW)/cv.Stride + 1
	pointwise := cv.KH == 1 && cv.KW == 1 && cv.Stride == 1 && p == (Pad{})
	if cv.wino != nil || (!pointwise && ow < implicitMinWidth) {
		y := cv.Forward(x, p, s)
		Leaky(y.Data)
		out := MaxPool(y, 2, stride, true, s)
		s.Release(y)
		return out
	}
	// A 2 × 2 "same" pool has no leading padding; its last window may hang
	// over the bottom and right edges.
	ph, _ := poolOut(oh, 2, stride, true)
	pw, _ := poolOut(ow, 2, stride, true)
	cout, rs := cv.Cout, ow*cv.Cout
	out := s.TensorNoZero(ph, pw, cout)
	// rows holds two convolution rows, row y at (y mod 2)·rs.
	rows := s.grow(bufConvRows, 2*rs)
	have := [2]int{-1, -1}
	src, srs := cv.implicitInput(x, p, s)
	k := active()
	convRow := func(y int) []float32 {
		r := rows[(y%2)*rs : (y%2+1)*rs]
		if have[y%2] != y {
			fillRows(r, cv.Bias)
			if pointwise {
				Gemm(ow, x.Data[y*ow*cv.Cin:], cv.Cin, cv.W, r, cout)
			} else {
				cv.implicitRow(src, srs, y, r)
			}
			k.leaky(r)
			have[y%2] = y
		}
		return r
	}
	tmp := s.grow(bufPool, rs)
	full := 0
	if ow >= 2 {
		full = min(pw, (ow-2)/stride+1)
	}
	for py := 0; py < ph; py++ {
		y0 := py * stride
		line := convRow(y0)
		if y0+1 < oh {
			convRow(y0 + 1)
			k.maxTaps(tmp, rows, 1, rs, 0, 2, rs)
			line = tmp
		}
		dst := out.Data[py*pw*cout : (py+1)*pw*cout]
		if full > 0 {
			k.maxTaps(dst, line, full, cout, stride*cout, 2, cout)
		}
		for px := full; px < pw; px++ {
			x0 := px * stride
			k.maxTaps(dst[px*cout:(px+1)*cout], line[x0*cout:], 1, cout, 0, min(2, ow-x0), cout)
		}
	}
	return out
}

// implicitMinWidth is the narrowest output for which a convolution runs as
// one product per kernel row and output row (forwardImplicit) instead of
// over im2col patches: narrower rows make products too small to run well.
const implicitMinWidth = 16

// forwardImplicit computes the convolution without im2col patches: for
// output row oy and kernel row ky, the windows' ky-th rows are KW·Cin
// contiguous floats of input row oy·stride+ky, stride·Cin apart, so they
// are a matrix with overlapping rows that multiplies rows ky·KW·Cin to
// (ky+1)·KW·Cin of the filter directly. The output row starts as the bias
// and accumulates KH such products. A padded input is copied once into a
// bordered buffer first.
func (cv *Conv2D) forwardImplicit(x Tensor, p Pad, out Tensor, s *Scratch) {
	src, rs := cv.implicitInput(x, p, s)
	ow, cout := out.W, cv.Cout
	for oy := 0; oy < out.H; oy++ {
		c := out.Data[oy*ow*cout : (oy+1)*ow*cout]
		fillRows(c, cv.Bias)
		cv.implicitRow(src, rs, oy, c)
	}
}

// implicitInput is x's data with padding p applied (x's own data when there
// is none) and its row stride.
func (cv *Conv2D) implicitInput(x Tensor, p Pad, s *Scratch) ([]float32, int) {
	if p == (Pad{}) {
		return x.Data, x.W * x.C
	}
	w := x.W + p.Left + p.Right
	rs := w * x.C
	src := s.grow(bufPadded, (x.H+p.Top+p.Bottom)*rs)
	for y := 0; y < x.H+p.Top+p.Bottom; y++ {
		row := src[y*rs : (y+1)*rs]
		if iy := y - p.Top; iy < 0 || iy >= x.H {
			clear(row)
			continue
		}
		clear(row[:p.Left*x.C])
		copy(row[p.Left*x.C:], x.Data[(y-p.Top)*x.W*x.C:(y-p.Top+1)*x.W*x.C])
		clear(row[(p.Left+x.W)*x.C:])
	}
	return src, rs
}

// implicitRow adds output row oy's products to c (len(c) = ow·Cout) from
// the padded input src (rows rs floats apart).
func (cv *Conv2D) implicitRow(src []float32, rs, oy int, c []float32) {
	seg := cv.KW * cv.Cin
	ow := len(c) / cv.Cout
	for ky := 0; ky < cv.KH; ky++ {
		iy := oy*cv.Stride + ky
		traceProduct(ow, ky*seg, seg, cv.W)
		gemmRows(ow, src[iy*rs:], cv.Stride*cv.Cin, cv.W, ky*seg, seg, c, cv.Cout)
	}
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
	if pt == 0 && pl == 0 {
		return maxPoolTrailing(x, k, stride, oh, ow, s)
	}
	out := s.TensorNoZero(oh, ow, x.C)
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

// maxPoolTrailing is MaxPool without leading padding (windows may hang
// over the bottom and right edges and use the pixels they cover), in two
// passes per output row: the maximum of the window's rows over the whole
// width, then of each window's columns.
func maxPoolTrailing(x Tensor, k, stride, oh, ow int, s *Scratch) Tensor {
	c, rs := x.C, x.W*x.C
	out := s.TensorNoZero(oh, ow, c)
	tmp := s.grow(bufPool, rs)
	maxTaps := active().maxTaps
	// Output columns whose window lies inside the map.
	full := 0
	if x.W >= k {
		full = min(ow, (x.W-k)/stride+1)
	}
	for oy := 0; oy < oh; oy++ {
		y0 := oy * stride
		rows := min(k, x.H-y0)
		src := x.Data[y0*rs : (y0+1)*rs]
		if rows > 1 {
			maxTaps(tmp, x.Data[y0*rs:(y0+rows)*rs], 1, rs, 0, rows, rs)
			src = tmp
		}
		dst := out.Data[oy*ow*c : (oy+1)*ow*c]
		if full > 0 {
			maxTaps(dst, src, full, c, stride*c, k, c)
		}
		for ox := full; ox < ow; ox++ {
			x0 := ox * stride
			maxTaps(dst[ox*c:(ox+1)*c], src[x0*c:], 1, c, 0, min(k, x.W-x0), c)
		}
	}
	return out
}

// maxTapsGo sets dst[o·c + i] to the maximum of src[o·step + j·tapStride + i]
// over the k taps j, for n outputs o of c values each.
func maxTapsGo(dst, src []float32, n, c, step, k, tapStride int) {
	_ = dst[n*c-1]
	_ = src[(n-1)*step+(k-1)*tapStride+c-1]
	for o := 0; o < n; o++ {
		d := dst[o*c : (o+1)*c]
		copy(d, src[o*step:o*step+c])
		for j := 1; j < k; j++ {
			t := src[o*step+j*tapStride : o*step+j*tapStride+c]
			for i, v := range t {
				d[i] = max(d[i], v)
			}
		}
	}
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
	// Working buffers of the Winograd convolution and the pooling.
	bufs [numBufs][]float32
}

// Indexes of Scratch.bufs.
const (
	bufWinoPad  = iota // the padded input
	bufWinoV           // the transformed input
	bufWinoM           // the products
	bufWinoEdge        // one output tile
	bufPool            // one row of the pooling's first pass
	bufPadded          // a convolution's padded input
	bufConvRows        // two rows of a convolution's output
	numBufs
)

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

// grow returns n floats of buffer i (contents undefined), reallocating it
// when it is too small.
func (s *Scratch) grow(i, n int) []float32 {
	if s == nil {
		return make([]float32, n)
	}
	if cap(s.bufs[i]) < n {
		s.bufs[i] = make([]float32, n)
	}
	return s.bufs[i][:n]
}

// TensorNoZero is Tensor without the zeroing, for outputs the caller
// writes in full: a reused buffer keeps what it held.
func (s *Scratch) TensorNoZero(h, w, c int) Tensor {
	return s.tensor(h, w, c, false)
}

func (s *Scratch) floats(n int) []float32 {
	if s == nil {
		return make([]float32, n)
	}
	if cap(s.buf) < n {
		s.buf = make([]float32, n)
	}
	return s.buf[:n]
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
