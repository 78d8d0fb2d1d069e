// Package nn holds the numeric kernels of the face networks: a blocked
// single-precision matrix product with register-tiled micro-kernels (AVX-512
// or AVX2 + FMA assembly on amd64, NEON on arm64, portable Go elsewhere),
// Winograd and im2col convolutions built on it, and the pooling and
// element-wise operations around them, all on HWC float32 tensors of one
// image.
//
// The layouts follow TensorFlow.js so published weights drop in unchanged:
// activations are height × width × channels, convolution filters are
// kh × kw × in × out, which is exactly the right-hand matrix of the product
// of an im2col patch matrix and the filter.
package nn

import (
	"sync"
	"unsafe"
)

//go:generate go run gen_kernels.go

const (
	// blockK bounds the slice of K one pass of a micro-kernel walks, so the
	// packed B panel it reads (blockK × nr floats, 16–32 KiB) stays in L1.
	blockK = 256
	// blockM bounds the rows of A one B panel is applied to, so they stay in
	// L2; a whole number of the largest tiles (6 or 12 rows).
	blockM = 96
)

// tileFunc computes C[mr × nr] += A[mr × k]·Bpanel[k × nr] for one
// micro-kernel: k ≥ 1, A rows lda floats apart, the panel's rows nr floats
// apart, C rows ldc floats apart.
type tileFunc func(k int, a *float32, lda int, b *float32, c *float32, ldc int)

// tile is one micro-kernel and the number of rows of A it covers.
type tile struct {
	mr int
	fn tileFunc
}

// gemmKernel is a family of micro-kernels sharing one panel width nr (so
// one packing of B): tiles in decreasing mr, the first for the bulk of the
// rows, the others for what is left over.
type gemmKernel struct {
	name  string
	nr    int
	tiles []tile
}

// PackedB is the right-hand matrix of a product, K × N, laid out once in
// panels of nr columns (the last one zero-padded), each panel K rows of nr
// contiguous values: the order in which the micro-kernel reads it. It
// remembers the kernel it was packed for, so products use that kernel
// whatever is selected later.
type PackedB struct {
	K, N   int
	kern   *gemmKernel
	panels []float32
}

// PackB lays out the row-major K × N matrix b for Gemm with the kernel the
// active instruction set prefers for N columns.
func PackB(b []float32, k, n int) *PackedB {
	return packB(active().gemmFor(n), b, k, n)
}

func packB(kern *gemmKernel, b []float32, k, n int) *PackedB {
	nr := kern.nr
	np := (n + nr - 1) / nr
	p := &PackedB{K: k, N: n, kern: kern, panels: make([]float32, np*k*nr)}
	for j := 0; j < np; j++ {
		panel := p.panels[j*k*nr : (j+1)*k*nr]
		cols := min(nr, n-j*nr)
		for r := 0; r < k; r++ {
			copy(panel[r*nr:r*nr+cols], b[r*n+j*nr:r*n+j*nr+cols])
		}
	}
	return p
}

// Column copies column j of the packed matrix (its K values) into dst,
// for a caller that needs one column exactly, not through a product.
func (p *PackedB) Column(j int, dst []float32) {
	nr := p.kern.nr
	panel := p.panels[(j/nr)*p.K*nr:]
	for r, c := 0, j%nr; r < p.K; r++ {
		dst[r] = panel[r*nr+c]
	}
}

// Gemm sets C = A·B + C for the m × K matrix A (row stride lda) and the
// packed K × N matrix B, with C m × N (row stride ldc). Callers that want
// C = A·B (plus a bias) initialise C first.
func Gemm(m int, a []float32, lda int, b *PackedB, c []float32, ldc int) {
	traceProduct(m, 0, b.K, b)
	gemmRows(m, a, lda, b, 0, b.K, c, ldc)
}

// gemmRows is Gemm with rows kOff to kOff+k of B only: C = A·B[kOff:kOff+k] + C
// for the m × k matrix A.
func gemmRows(m int, a []float32, lda int, b *PackedB, kOff, k int, c []float32, ldc int) {
	n := b.N
	if m == 0 || n == 0 || k == 0 {
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	kern := b.kern
	nr := kern.nr
	small := kern.tiles[len(kern.tiles)-1]
	if m < small.mr {
		gemmFewRows(m, a, lda, b, kOff, k, c, ldc)
		return
	}
	// An edge tile (fewer rows or columns left than the tile has) is
	// computed into edge from zero and added to C: its rows are the last
	// mr rows of A, overlapping the tile before, so A is never copied.
	var edge *[maxMR * maxNR]float32
	np := (n + nr - 1) / nr
	for k0 := 0; k0 < k; k0 += blockK {
		kc := min(blockK, k-k0)
		for i0 := 0; i0 < m; i0 += blockM {
			i1 := min(i0+blockM, m)
			for j := 0; j < np; j++ {
				bp := &b.panels[(j*b.K+kOff+k0)*nr]
				col := j * nr
				cols := min(nr, n-col)
				for i := i0; i < i1; {
					rows := i1 - i
					t := small
					for _, tt := range kern.tiles {
						if tt.mr <= rows {
							t = tt
							break
						}
					}
					if t.mr <= rows && cols == nr {
						t.fn(kc, &a[i*lda+k0], lda, bp, &c[i*ldc+col], ldc)
						i += t.mr
						continue
					}
					rows = min(rows, t.mr)
					first := i + rows - t.mr // ≥ 0 as m ≥ small.mr
					if edge == nil {
						edge = edgePool.Get().(*[maxMR * maxNR]float32)
						defer edgePool.Put(edge)
					}
					addTile(t, kc, &a[first*lda+k0], lda, bp, nr, edge[:t.mr*nr], i-first, c[i*ldc+col:], ldc, cols)
					i += rows
				}
			}
		}
	}
}

// edgePool holds edge tiles: a local array would escape to the heap, as the
// micro-kernel is called through a function value.
var edgePool = sync.Pool{New: func() any { return new([maxMR * maxNR]float32) }}

// addTile computes the tile t with A at a into ec from zero and adds its
// rows from skip on, cols columns of each, to C from c on.
func addTile(t tile, kc int, a *float32, lda int, bp *float32, nr int, ec []float32, skip int, c []float32, ldc, cols int) {
	clear(ec)
	t.fn(kc, a, lda, bp, &ec[0], nr)
	for r := skip; r < t.mr; r++ {
		dst := c[(r-skip)*ldc : (r-skip)*ldc+cols]
		for x, v := range ec[r*nr : r*nr+cols] {
			dst[x] += v
		}
	}
}

// maxMR and maxNR bound the micro-kernels' tile sizes.
const (
	maxMR = 16
	maxNR = 32
)

// gemmFewRows is Gemm for fewer rows than the smallest tile (a fully
// connected layer's single row). One row is read mr times over (row
// stride 0) into an edge tile; more are copied into a zero-padded tile.
func gemmFewRows(m int, a []float32, lda int, b *PackedB, kOff, k int, c []float32, ldc int) {
	n := b.N
	t := b.kern.tiles[len(b.kern.tiles)-1]
	nr := b.kern.nr
	if m == 1 {
		edge := edgePool.Get().(*[maxMR * maxNR]float32)
		defer edgePool.Put(edge)
		for k0 := 0; k0 < k; k0 += blockK {
			kc := min(blockK, k-k0)
			for j := 0; j*nr < n; j++ {
				addTile(t, kc, &a[k0], 0, &b.panels[(j*b.K+kOff+k0)*nr], nr, edge[:t.mr*nr], t.mr-1, c[j*nr:], ldc, min(nr, n-j*nr))
			}
		}
		return
	}
	pad := make([]float32, t.mr*k)
	for r := 0; r < m; r++ {
		copy(pad[r*k:(r+1)*k], a[r*lda:r*lda+k])
	}
	out := make([]float32, t.mr*n)
	for r := 0; r < m; r++ {
		copy(out[r*n:(r+1)*n], c[r*ldc:r*ldc+n])
	}
	gemmRows(t.mr, pad, k, b, kOff, k, out, n)
	for r := 0; r < m; r++ {
		copy(c[r*ldc:r*ldc+n], out[r*n:(r+1)*n])
	}
}

// portableGemm is the Go micro-kernel family: 6 × 16 tiles and 3 × 16 for
// the rows left over.
var portableGemm = &gemmKernel{name: "portable", nr: 16, tiles: []tile{{6, kernelGo6x16}, {3, kernelGo3x16}}}

func kernelGo6x16(k int, a *float32, lda int, b *float32, c *float32, ldc int) {
	kernelGo3x16(k, a, lda, b, c, ldc)
	kernelGo3x16(k, (*float32)(unsafe.Add(unsafe.Pointer(a), 3*lda*4)), lda, b, (*float32)(unsafe.Add(unsafe.Pointer(c), 3*ldc*4)), ldc)
}

// kernelGo3x16 is the portable micro-kernel: C[3×16] += A[3×k]·Bpanel[k×16].
// It walks k once per 3 × 2 sub-tile, so the six sums, three values of A and
// two of B stay in registers even on amd64's 15 usable ones (larger sub-tiles
// spill there and run slower), and steps k two at a time. Offsets from the
// operands' starts instead of slices keep the loop free of bounds checks
// (Gemm checked the bounds); every pointer formed stays inside its operand.
func kernelGo3x16(k int, a *float32, lda int, b *float32, c *float32, ldc int) {
	const nr = 16
	la := uintptr(lda) * 4
	cs := unsafe.Slice(c, 2*ldc+nr)
	a0p := unsafe.Pointer(a)
	a1p := unsafe.Add(a0p, la)
	a2p := unsafe.Add(a0p, 2*la)
	for j := 0; j < nr; j += 2 {
		var s00, s01, s10, s11, s20, s21 float32
		bj := unsafe.Add(unsafe.Pointer(b), j*4)
		p := 0
		for ; p+2 <= k; p += 2 {
			ao, bo := uintptr(p)*4, uintptr(p)*nr*4
			a0 := (*[2]float32)(unsafe.Add(a0p, ao))
			a1 := (*[2]float32)(unsafe.Add(a1p, ao))
			a2 := (*[2]float32)(unsafe.Add(a2p, ao))
			bv0 := (*[2]float32)(unsafe.Add(bj, bo))
			bv1 := (*[2]float32)(unsafe.Add(bj, bo+nr*4))
			x0, x1, x2 := a0[0], a1[0], a2[0]
			b0, b1 := bv0[0], bv0[1]
			s00 += x0 * b0
			s01 += x0 * b1
			s10 += x1 * b0
			s11 += x1 * b1
			s20 += x2 * b0
			s21 += x2 * b1
			x0, x1, x2 = a0[1], a1[1], a2[1]
			b0, b1 = bv1[0], bv1[1]
			s00 += x0 * b0
			s01 += x0 * b1
			s10 += x1 * b0
			s11 += x1 * b1
			s20 += x2 * b0
			s21 += x2 * b1
		}
		if p < k {
			ao, bo := uintptr(p)*4, uintptr(p)*nr*4
			x0 := *(*float32)(unsafe.Add(a0p, ao))
			x1 := *(*float32)(unsafe.Add(a1p, ao))
			x2 := *(*float32)(unsafe.Add(a2p, ao))
			bv := (*[2]float32)(unsafe.Add(bj, bo))
			b0, b1 := bv[0], bv[1]
			s00 += x0 * b0
			s01 += x0 * b1
			s10 += x1 * b0
			s11 += x1 * b1
			s20 += x2 * b0
			s21 += x2 * b1
		}
		c0 := cs[j : j+2 : j+2]
		c1 := cs[ldc+j : ldc+j+2 : ldc+j+2]
		c2 := cs[2*ldc+j : 2*ldc+j+2 : 2*ldc+j+2]
		c0[0], c0[1] = c0[0]+s00, c0[1]+s01
		c1[0], c1[1] = c1[0]+s10, c1[1]+s11
		c2[0], c2[1] = c2[0]+s20, c2[1]+s21
	}
}
