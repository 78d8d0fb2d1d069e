//go:build !purego

package nn

import "golang.org/x/sys/cpu"

// archSets offers AVX-512 (for products of 32 columns or more, with the
// AVX2 kernels for the rest) when the CPU and OS support it, and AVX2 + FMA.
func archSets() []*isa {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return nil
	}
	avx2 := &isa{
		name:        "avx2",
		gemm:        avx2Gemm,
		mulAddTiled: mulAddTiledAVX2,
		relu:        reluAVX2,
		leaky:       leakyAVX2,
		maxTaps:     maxTapsAVX2,
		winoIn:      winoInAVX2,
		winoOut:     winoOutAVX2,
	}
	if !cpu.X86.HasAVX512F {
		return []*isa{avx2}
	}
	avx512 := *avx2
	avx512.name = "avx512"
	avx512.gemm, avx512.narrow, avx512.wideN = avx512Gemm, avx2Gemm, 32
	return []*isa{&avx512, avx2}
}
