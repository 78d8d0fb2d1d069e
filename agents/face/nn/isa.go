package nn

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// EnvKernel names the environment variable that picks the kernels at start-up
// instead of the best the CPU offers: "avx512", "avx2", "neon" or "portable"
// (one this CPU and build can run; see Kernels). Tests and benchmarks use it
// to run one path on a machine that would pick another.
const EnvKernel = "FACECLOUD_KERNEL"

// isa is one set of kernels: the product's micro-kernels and the vector
// loops around it. Every field is set; the portable set is plain Go.
type isa struct {
	name string
	// gemm is the micro-kernel family for products of at least wideN
	// columns; narrow (when set) for fewer, where gemm's panels would be
	// mostly padding.
	gemm   *gemmKernel
	narrow *gemmKernel
	wideN  int
	// mulAddTiled sets dst[i] += src[i]·f[i mod len(f)] for n pixels.
	mulAddTiled func(dst, src, f []float32, n int)
	// relu and leaky apply the activations in place.
	relu, leaky func(x []float32)
	// maxTaps is the maximum over pooling taps (see maxTapsGo).
	maxTaps func(dst, src []float32, n, c, step, k, tapStride int)
	// winoIn and winoOut are the Winograd F(4×4, 3×3) transforms of one
	// tile (see winograd.go).
	winoIn  func(src []float32, rowStride, c int, dst []float32, dstStride int)
	winoOut func(src []float32, srcStride, c int, bias []float32, dst []float32, dstRowStride int, relu bool)
}

// gemmFor is the micro-kernel family for a product with n columns.
func (s *isa) gemmFor(n int) *gemmKernel {
	if s.narrow != nil && n < s.wideN {
		return s.narrow
	}
	return s.gemm
}

var portable = &isa{
	name:        "portable",
	gemm:        portableGemm,
	mulAddTiled: mulAddTiledGo,
	relu:        reluGo,
	leaky:       leakyGo,
	maxTaps:     maxTapsGo,
	winoIn:      winoInGo,
	winoOut:     winoOutGo,
}

// sets lists the kernel sets this build and CPU can run, best first: the
// architecture's own (archSets, by CPU feature) and then the portable one.
var sets = append(archSets(), portable)

// current is the set in use, chosen at start-up; the tests switch it to run
// every set (hence atomic).
var current atomic.Pointer[isa]

func init() {
	s, err := pick(os.Getenv(EnvKernel))
	if err != nil {
		panic("nn: " + err.Error())
	}
	current.Store(s)
}

// pick returns the set named name, or the best one when name is empty.
func pick(name string) (*isa, error) {
	if name == "" {
		return sets[0], nil
	}
	for _, s := range sets {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s=%q: this CPU and build run %s", EnvKernel, name, strings.Join(Kernels(), ", "))
}

func active() *isa { return current.Load() }

// Kernel names the kernels in use: "avx512", "avx2", "neon" or "portable".
func Kernel() string { return active().name }

// Kernels lists the kernel sets this CPU and build can run, best first.
func Kernels() []string {
	names := make([]string, len(sets))
	for i, s := range sets {
		names[i] = s.name
	}
	return names
}
