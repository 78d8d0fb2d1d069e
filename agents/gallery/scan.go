package gallery

import (
	"math"

	"github.com/facecloud/facecloud/agents/face"
)

// The search scans an 8-bit copy of the descriptors and re-measures the
// best few from a 16-bit one.
//
// Each face is held in memory as 16-bit fixed point with a scale of its
// own: v[k] = round(x[k]/scale), |v[k]| ≤ fixedMax, scale = peak/fixedMax
// with peak the face's largest |x[k]|, so that the largest component uses
// the whole range whatever the face's spread (and comes back exactly).
// v is split into a high byte, hi = round(v/256), and a low one, lo = v − 256·hi
// (−128..127). The high bytes alone are the face at 8 bits (hi·256·scale
// is x within 128·scale, half a step of 8-bit rounding): the scan reads
// only them, 128 bytes a face. Both bytes together are the face at 16 bits,
// within scale/2 (about 8e-6 per component for components under 0.5): the
// candidates are measured again from them, in float64. Two bytes a face per
// component in all — what float16 alone would take — and the scan's bytes
// are not stored twice.

// fixedMax is the largest |v|: 127·256, so that hi stays within −127..127.
const fixedMax = 127 * 256

// queryMax is the largest |component| of a query quantised for the scan.
// The scan's sums stay within int32: 128 × 32767 × 127 < 2³¹.
const queryMax = 32767

// quantise writes x as 16-bit fixed point, its high and low bytes in hi
// and lo (face.DescriptorSize each), and returns its peak (largest |x[k]|)
// and its squared norm (of x as given).
func quantise(x *face.Descriptor, hi, lo []int8) (peak, norm float32) {
	var m float32
	var n float64
	for _, c := range x {
		n += float64(c) * float64(c)
		if a := float32(math.Abs(float64(c))); a > m {
			m = a
		}
	}
	if !(m > 0) || math.IsInf(float64(m), 0) {
		// Zero, or not finite (never a descriptor the engine makes): store
		// zeros rather than garbage.
		clear(hi[:len(x)])
		clear(lo[:len(x)])
		return 0, float32(n)
	}
	inv := fixedMax / float64(m)
	for k, c := range x {
		v := int32(math.Round(float64(c) * inv))
		v = min(max(v, -fixedMax), fixedMax)
		h := (v + 128) >> 8
		hi[k], lo[k] = int8(h), int8(v-h<<8)
	}
	return m, float32(n)
}

// quantiseQuery is q at up to ±queryMax for the scan, and its step.
func quantiseQuery(q *face.Descriptor, out *[face.DescriptorSize]int16) (step float32) {
	var m float64
	for _, c := range q {
		m = max(m, math.Abs(float64(c)))
	}
	if !(m > 0) || math.IsInf(m, 0) {
		clear(out[:])
		return 0
	}
	inv := queryMax / m
	for k, c := range q {
		out[k] = int16(min(max(math.Round(float64(c)*inv), -queryMax), queryMax))
	}
	return float32(m / queryMax)
}

// dotsGo is the portable scan: out[j] = Σ q[k]·codes[j·128+k] for every
// face j of codes (len(out) faces).
func dotsGo(q *[face.DescriptorSize]int16, codes []int8, out []int32) {
	const dim = face.DescriptorSize
	codes = codes[:len(out)*dim]
	for j := range out {
		g := (*[dim]int8)(codes[j*dim:])
		var s0, s1, s2, s3 int32
		for k := 0; k < dim; k += 4 {
			s0 += int32(q[k]) * int32(g[k])
			s1 += int32(q[k+1]) * int32(g[k+1])
			s2 += int32(q[k+2]) * int32(g[k+2])
			s3 += int32(q[k+3]) * int32(g[k+3])
		}
		out[j] = s0 + s1 + s2 + s3
	}
}

// scanKernel is a scan kernel this CPU and build can run.
type scanKernel struct {
	name string
	dots func(q *[face.DescriptorSize]int16, codes []int8, out []int32)
}

// scanKernels lists the kernels this CPU and build run, best first; the
// portable one is always last.
func scanKernels() []scanKernel {
	return append(archScanKernels(), scanKernel{"portable", dotsGo})
}

// dots is the scan kernel in use: the first of scanKernels.
var dots = scanKernels()[0].dots
