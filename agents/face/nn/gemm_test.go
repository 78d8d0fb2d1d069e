package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// eachKernelSet runs f once with each kernel set this CPU and build offer
// active (on an AVX-512 machine: avx512, avx2 and portable), so every path
// is tested wherever the tests run.
func eachKernelSet(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, s := range sets {
		t.Run(s.name, func(t *testing.T) {
			saved := current.Load()
			current.Store(s)
			defer current.Store(saved)
			f(t)
		})
	}
}

func naiveGemm(m, k, n int, a, b, c []float32) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[i*k+p]) * float64(b[p*n+j])
			}
			c[i*n+j] += float32(s)
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

func TestGemm(t *testing.T) {
	sizes := map[string]struct{ m, k, n int }{
		"one tile":          {6, 8, 16},
		"one wide tile":     {12, 8, 32},
		"edges in m and n":  {7, 5, 17},
		"single row":        {1, 3, 1},
		"fewer rows":        {2, 40, 64},
		"k over one block":  {13, 2*blockK + 7, 40},
		"m over one block":  {blockM + 11, 27, 25},
		"layer-like 3x3x32": {35, 288, 32},
		"winograd-like":     {25, 64, 64},
		"tail of four":      {16, 19, 96},
		"nine rows":         {9, 70, 64},
		"four rows":         {4, 33, 48},
		"25 rows":           {25, 64, 64},
	}
	kernels := map[string]*gemmKernel{}
	for _, s := range sets {
		for _, g := range []*gemmKernel{s.gemm, s.narrow} {
			if g != nil {
				kernels[g.name] = g
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for kname, kern := range kernels {
		for name, sz := range sizes {
			t.Run(kname+"/"+name, func(t *testing.T) {
				// A and C with row strides wider than the matrix, as the
				// convolutions pass them.
				lda, ldc := sz.k+3, sz.n+5
				a, b := randSlice(r, sz.m*lda), randSlice(r, sz.k*sz.n)
				c0 := randSlice(r, sz.m*ldc)
				dense := make([]float32, sz.m*sz.k)
				for i := 0; i < sz.m; i++ {
					copy(dense[i*sz.k:(i+1)*sz.k], a[i*lda:])
				}
				want := make([]float32, sz.m*sz.n)
				for i := 0; i < sz.m; i++ {
					copy(want[i*sz.n:(i+1)*sz.n], c0[i*ldc:])
				}
				naiveGemm(sz.m, sz.k, sz.n, dense, b, want)
				got := slices.Clone(c0)
				Gemm(sz.m, a, lda, packB(kern, b, sz.k, sz.n), got, ldc)
				for i := 0; i < sz.m; i++ {
					for j := 0; j < ldc; j++ {
						g := float64(got[i*ldc+j])
						if j >= sz.n {
							if g != float64(c0[i*ldc+j]) {
								t.Fatalf("c[%d][%d] beyond the matrix changed", i, j)
							}
							continue
						}
						if d := math.Abs(g - float64(want[i*sz.n+j])); d > 1e-4*math.Sqrt(float64(sz.k)) {
							t.Fatalf("c[%d][%d] = %v, want %v", i, j, g, want[i*sz.n+j])
						}
					}
				}
			})
		}
	}
}

// TestColumn reads every column of packed matrices back, with each
// kernel set's panel width.
func TestColumn(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range []int{1, 7, 16, 33, 100} {
			const k = 9
			b := randSlice(r, k*n)
			p := PackB(b, k, n)
			col := make([]float32, k)
			for j := range n {
				p.Column(j, col)
				for i := range k {
					if col[i] != b[i*n+j] {
						t.Fatalf("n=%d: column %d row %d = %v, want %v", n, j, i, col[i], b[i*n+j])
					}
				}
			}
		}
	})
}

func TestPick(t *testing.T) {
	if s, err := pick(""); err != nil || s != sets[0] {
		t.Errorf("pick(\"\") = %v, %v; want the first set", s, err)
	}
	if s, err := pick("portable"); err != nil || s != portable {
		t.Errorf("pick(portable) = %v, %v", s, err)
	}
	if _, err := pick("sse9"); err == nil {
		t.Error("pick(sse9) succeeded")
	}
	names := Kernels()
	if names[0] != sets[0].name || names[len(names)-1] != "portable" || !slices.Contains(names, Kernel()) {
		t.Errorf("Kernels() = %v, Kernel() = %s", names, Kernel())
	}
}

// BenchmarkGemm measures the product at the size of a 3×3, 64-channel layer
// of the recognition net on a 17×17 map, on each kernel set.
func BenchmarkGemm(b *testing.B) {
	m, k, n := 289, 576, 64
	r := rand.New(rand.NewPCG(1, 2))
	a, bm := randSlice(r, m*k), randSlice(r, k*n)
	for _, s := range sets {
		b.Run(s.name, func(b *testing.B) {
			p, c := packB(s.gemmFor(n), bm, k, n), make([]float32, m*n)
			for b.Loop() {
				Gemm(m, a, k, p, c, n)
			}
			b.ReportMetric(float64(2*m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}
