package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

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
	kernels := map[string]func(int, *float32, int, *float32, *float32, int){"selected": kernel, "portable": kernelGo}
	sizes := map[string]struct{ m, k, n int }{
		"one tile":          {6, 8, 16},
		"edges in m and n":  {7, 5, 17},
		"single row":        {1, 3, 1},
		"k over one block":  {13, 2*blockK + 7, 40},
		"m over one block":  {blockM + 11, 27, 25},
		"layer-like 3x3x32": {35, 288, 32},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for kname, kern := range kernels {
		for name, sz := range sizes {
			t.Run(kname+"/"+name, func(t *testing.T) {
				saved := kernel
				kernel = kern
				defer func() { kernel = saved }()
				a, b := randSlice(r, sz.m*sz.k), randSlice(r, sz.k*sz.n)
				c0 := randSlice(r, sz.m*sz.n)
				want := append([]float32(nil), c0...)
				naiveGemm(sz.m, sz.k, sz.n, a, b, want)
				got := append([]float32(nil), c0...)
				Gemm(sz.m, a, sz.k, PackB(b, sz.k, sz.n), got, sz.n)
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*math.Sqrt(float64(sz.k)) {
						t.Fatalf("c[%d] = %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// BenchmarkGemm measures the product at the size of a 3×3, 64-channel layer
// of the recognition net on a 17×17 map.
func BenchmarkGemm(b *testing.B) {
	m, k, n := 289, 576, 64
	r := rand.New(rand.NewPCG(1, 2))
	a, bm, c := randSlice(r, m*k), PackB(randSlice(r, k*n), k, n), make([]float32, m*n)
	b.SetBytes(0)
	for b.Loop() {
		Gemm(m, a, k, bm, c, n)
	}
	b.ReportMetric(float64(2*m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}
