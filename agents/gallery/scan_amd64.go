//go:build !purego

package gallery

import (
	"golang.org/x/sys/cpu"

	"github.com/facecloud/facecloud/agents/face"
)

// archScanKernels offers the AVX2 scan when the CPU and OS support it.
func archScanKernels() []scanKernel {
	if !cpu.X86.HasAVX2 {
		return nil
	}
	return []scanKernel{{"avx2", dotsAVX2}}
}

// dotsAVX2 is dotsGo with the faces four at a time in assembly.
func dotsAVX2(q *[face.DescriptorSize]int16, codes []int8, out []int32) {
	const dim = face.DescriptorSize
	n := len(out) &^ 3
	codes = codes[:len(out)*dim]
	if n > 0 {
		dots4AVX2(&q[0], &codes[0], &out[0], n)
	}
	if n < len(out) {
		dotsGo(q, codes[n*dim:], out[n:])
	}
}

// dots4AVX2 computes out[j] = Σ q[k]·codes[j·128+k] for n faces, n a
// positive multiple of 4.
//
//go:noescape
func dots4AVX2(q *int16, codes *int8, out *int32, n int)
