//go:build !purego

package nn

// archSets offers the NEON kernels: Advanced SIMD is part of every arm64
// CPU (ARMv8-A), so there is nothing to detect.
func archSets() []*isa {
	return []*isa{{
		name:        "neon",
		gemm:        neonGemm,
		mulAddTiled: mulAddTiledNEON,
		relu:        reluNEON,
		leaky:       leakyNEON,
		maxTaps:     maxTapsNEON,
		winoIn:      winoInNEON,
		winoOut:     winoOutNEON,
	}}
}
