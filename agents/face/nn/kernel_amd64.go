//go:build !purego

package nn

// The amd64 kernels: the product's micro-kernels in gemm_avx2_amd64.s and
// gemm_avx512_amd64.s (written by gen_kernels.go), the rest in
// kernel_amd64.s and winograd_amd64.s; isa_amd64.go offers them by CPU
// feature.

// avx2Gemm is the AVX2 + FMA family: 6 × 16 tiles in 12 accumulator
// registers, and 4 × 16 and 3 × 16 for the rows left over (a 3 × 3 map's
// 9 pixels, an 8 × 8 map's 4 Winograd tiles).
var avx2Gemm = &gemmKernel{name: "avx2", nr: 16, tiles: []tile{
	{6, kernel6x16AVX2}, {4, kernel4x16AVX2}, {3, kernel3x16AVX2},
}}

// avx512Gemm is the AVX-512 family: 12 × 32 tiles in 24 of the 32 zmm
// registers, and 9 × 32 and 4 × 32 for the rows left over.
var avx512Gemm = &gemmKernel{name: "avx512", nr: 32, tiles: []tile{
	{12, kernel12x32AVX512}, {9, kernel9x32AVX512}, {4, kernel4x32AVX512},
}}

// The micro-kernels compute C[mr×nr] += A[mr×k]·B[k×nr]; k ≥ 1, lda and
// ldc in floats.

//go:noescape
func kernel6x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func kernel4x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func kernel3x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func kernel12x32AVX512(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func kernel9x32AVX512(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func kernel4x32AVX512(k int, a *float32, lda int, b *float32, c *float32, ldc int)

//go:noescape
func mulAddTiledAsmAVX2(dst, src, f *float32, n, c int)

func mulAddTiledAVX2(dst, src, f []float32, n int) {
	c := len(f)
	if c%8 != 0 || n < 1 {
		mulAddTiledGo(dst, src, f, n)
		return
	}
	_, _ = dst[n*c-1], src[n*c-1]
	mulAddTiledAsmAVX2(&dst[0], &src[0], &f[0], n, c)
}

//go:noescape
func reluAsmAVX2(x *float32, n int)

//go:noescape
func leakyAsmAVX2(x *float32, n int)

func reluAVX2(x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		reluAsmAVX2(&x[0], n)
	}
	reluGo(x[n:])
}

func leakyAVX2(x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		leakyAsmAVX2(&x[0], n)
	}
	leakyGo(x[n:])
}

//go:noescape
func winoInAsmAVX2(src *float32, rowStride, c int, dst *float32, dstStride int)

//go:noescape
func winoOutAsmAVX2(src *float32, srcStride, c int, bias, dst *float32, dstRowStride int, relu bool)

func winoInAVX2(src []float32, rowStride, c int, dst []float32, dstStride int) {
	if c%8 != 0 {
		winoInGo(src, rowStride, c, dst, dstStride)
		return
	}
	_ = src[5*rowStride+6*c-1]
	_ = dst[(winoPoints-1)*dstStride+c-1]
	winoInAsmAVX2(&src[0], rowStride, c, &dst[0], dstStride)
}

func winoOutAVX2(src []float32, srcStride, c int, bias []float32, dst []float32, dstRowStride int, relu bool) {
	if c%8 != 0 {
		winoOutGo(src, srcStride, c, bias, dst, dstRowStride, relu)
		return
	}
	_ = src[(winoPoints-1)*srcStride+c-1]
	_ = dst[3*dstRowStride+4*c-1]
	_ = bias[c-1]
	winoOutAsmAVX2(&src[0], srcStride, c, &bias[0], &dst[0], dstRowStride, relu)
}

//go:noescape
func maxTapsAsmAVX2(dst, src *float32, n, c, step, k, tapStride int)

func maxTapsAVX2(dst, src []float32, n, c, step, k, tapStride int) {
	if c%8 != 0 {
		maxTapsGo(dst, src, n, c, step, k, tapStride)
		return
	}
	_ = dst[n*c-1]
	_ = src[(n-1)*step+(k-1)*tapStride+c-1]
	maxTapsAsmAVX2(&dst[0], &src[0], n, c, step, k, tapStride)
}
