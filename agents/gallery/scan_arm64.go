//go:build !purego

package gallery

import "github.com/facecloud/facecloud/agents/face"

// archScanKernels offers the NEON scan: Advanced SIMD is part of every
// arm64 CPU (ARMv8-A), so there is nothing to detect.
func archScanKernels() []scanKernel { return []scanKernel{{"neon", dotsNEONFaces}} }

// dotsNEONFaces is dotsGo in assembly.
func dotsNEONFaces(q *[face.DescriptorSize]int16, codes []int8, out []int32) {
	codes = codes[:len(out)*face.DescriptorSize]
	if len(out) > 0 {
		dotsNEON(&q[0], &codes[0], &out[0], len(out))
	}
}

// dotsNEON computes out[j] = Σ q[k]·codes[j·128+k] for n ≥ 1 faces.
//
//go:noescape
func dotsNEON(q *int16, codes *int8, out *int32, n int)
