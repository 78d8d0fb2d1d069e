//go:build !purego

package nn

// The arm64 kernels (Advanced SIMD): the product's micro-kernels in
// gemm_neon_arm64.s, the rest in kernel_arm64.s. Go's arm64
// assembler has no vector FADD, FMUL or FMAX, so the kernels are written
// with what it has: FMLA / FMLS (a + b·1 is an exact addition), loads and
// stores, and bit selects for the activations.

// neonGemm is the NEON family (gemm_neon_arm64.s, written by
// gen_kernels.go): 6 × 16 tiles in 24 of the 32 vector registers, and
// 4 × 16 and 3 × 16 for the rows left over.
var neonGemm = &gemmKernel{name: "neon", nr: 16, tiles: []tile{
	{6, kernel6x16NEON}, {4, kernel4x16NEON}, {3, kernel3x16NEON},
}}

// The micro-kernels compute C[mr×16] += A[mr×k]·B[k×16]; k ≥ 1, lda and
// ldc in floats.

//go:noescape
func kernel6x16NEON(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func kernel4x16NEON(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func kernel3x16NEON(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func mulAddTiledAsmNEON(dst, src, f *float32, n, c int)

func mulAddTiledNEON(dst, src, f []float32, n int) {
	c := len(f)
	if c%8 != 0 || n < 1 {
		mulAddTiledGo(dst, src, f, n)
		return
	}
	_, _ = dst[n*c-1], src[n*c-1]
	mulAddTiledAsmNEON(&dst[0], &src[0], &f[0], n, c)
}

//go:noescape
func reluAsmNEON(x *float32, n int)

//go:noescape
func leakyAsmNEON(x *float32, n int)

func reluNEON(x []float32) {
	n := len(x) &^ 15
	if n > 0 {
		reluAsmNEON(&x[0], n)
	}
	reluGo(x[n:])
}

func leakyNEON(x []float32) {
	n := len(x) &^ 15
	if n > 0 {
		leakyAsmNEON(&x[0], n)
	}
	leakyGo(x[n:])
}

//go:noescape
func winoInAsmNEON(src *float32, rowStride, c int, dst *float32, dstStride int, tmp *float32)

//go:noescape
func winoOutAsmNEON(src *float32, srcStride, c int, bias, dst *float32, dstRowStride int, relu bool, tmp *float32)

func winoInNEON(src []float32, rowStride, c int, dst []float32, dstStride int) {
	if c%4 != 0 {
		winoInGo(src, rowStride, c, dst, dstStride)
		return
	}
	_ = src[5*rowStride+6*c-1]
	_ = dst[(winoPoints-1)*dstStride+c-1]
	var tmp [winoPoints * 4]float32
	winoInAsmNEON(&src[0], rowStride, c, &dst[0], dstStride, &tmp[0])
}

func winoOutNEON(src []float32, srcStride, c int, bias []float32, dst []float32, dstRowStride int, relu bool) {
	if c%4 != 0 {
		winoOutGo(src, srcStride, c, bias, dst, dstRowStride, relu)
		return
	}
	_ = src[(winoPoints-1)*srcStride+c-1]
	_ = dst[3*dstRowStride+4*c-1]
	_ = bias[c-1]
	var tmp [winoIn * winoTile * 4]float32
	winoOutAsmNEON(&src[0], srcStride, c, &bias[0], &dst[0], dstRowStride, relu, &tmp[0])
}

//go:noescape
func maxTapsAsmNEON(dst, src *float32, n, c, step, k, tapStride int)

func maxTapsNEON(dst, src []float32, n, c, step, k, tapStride int) {
	if c%4 != 0 {
		maxTapsGo(dst, src, n, c, step, k, tapStride)
		return
	}
	_ = dst[n*c-1]
	_ = src[(n-1)*step+(k-1)*tapStride+c-1]
	maxTapsAsmNEON(&dst[0], &src[0], n, c, step, k, tapStride)
}
