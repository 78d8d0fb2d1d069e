//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

// Accelerated says whether the products run on the AVX2 + FMA micro-kernel.
var Accelerated = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel6x16AVX2 is the assembly micro-kernel, C[6×16] += A[6×k]·B[k×16];
// k ≥ 1, lda and ldc in elements.
//
//go:noescape
func kernel6x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int)

var kernel = kernelGo

func init() {
	if Accelerated {
		kernel = kernel6x16AVX2
	}
}

//go:noescape
func mulAddTiledAVX2(dst, src, f *float32, n, c int)

// mulAddTiled sets dst[i] += src[i]·f[i mod len(f)] for n pixels of len(f) channels.
func mulAddTiled(dst, src, f []float32, n int) {
	c := len(f)
	if !Accelerated || c%8 != 0 || n < 1 {
		mulAddTiledGo(dst, src, f, n)
		return
	}
	_, _ = dst[n*c-1], src[n*c-1]
	mulAddTiledAVX2(&dst[0], &src[0], &f[0], n, c)
}

//go:noescape
func reluAVX2(x *float32, n int)

//go:noescape
func leakyAVX2(x *float32, n int)

// vectorPrefix is how many leading values the vector activations handle.
func vectorPrefix(n int) int {
	if !Accelerated {
		return 0
	}
	return n &^ 7
}

func reluVec(x []float32)  { reluAVX2(&x[0], len(x)) }
func leakyVec(x []float32) { leakyAVX2(&x[0], len(x)) }
