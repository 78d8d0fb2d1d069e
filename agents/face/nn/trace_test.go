package nn

import (
	"math/rand/v2"
	"testing"
)

func TestTraceProducts(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))

	t.Run("a product replays to the same result", func(t *testing.T) {
		const m, k, n = 5, 19, 40
		b := PackB(randSlice(r, k*n), k, n)
		a := randSlice(r, m*k)
		stop := TraceProducts()
		want := make([]float32, m*n)
		Gemm(m, a, k, b, want, n)
		got := stop()
		if len(got) != 1 || got[0].M != m || got[0].K != k || got[0].KOff != 0 || got[0].B != b {
			t.Fatalf("trace = %+v, want one %d × %d product against b", got, m, k)
		}
		c := make([]float32, m*n)
		Replay(got[0], m, a, c)
		for i := range c {
			if c[i] != want[i] {
				t.Fatalf("replay c[%d] = %v, Gemm gave %v", i, c[i], want[i])
			}
		}
	})

	t.Run("an implicit convolution records a product per kernel row and output row", func(t *testing.T) {
		const h, w, cin, cout = 4, implicitMinWidth + 2, 3, 8
		cv := NewConv2D(randSlice(r, 3*3*cin*cout), 3, 3, cin, cout, 1, make([]float32, cout))
		stop := TraceProducts()
		cv.Forward(randTensor(r, h, w, cin), Same1, new(Scratch))
		got := stop()
		if len(got) != 3*h {
			t.Fatalf("%d products, want %d (3 kernel rows × %d output rows)", len(got), 3*h, h)
		}
		for i, p := range got {
			if p.M != w || p.K != 3*cin || p.KOff != (i%3)*3*cin || p.B != cv.W {
				t.Fatalf("product %d = %+v, want %d rows, K %d from %d", i, p, w, 3*cin, (i%3)*3*cin)
			}
		}
	})

	t.Run("nothing is recorded after stop, and one trace runs at a time", func(t *testing.T) {
		b := PackB(randSlice(r, 4*4), 4, 4)
		stop := TraceProducts()
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a second trace started while one was running")
				}
			}()
			TraceProducts()
		}()
		if got := stop(); len(got) != 0 {
			t.Fatalf("trace = %+v, want none", got)
		}
		Gemm(1, randSlice(r, 4), 4, b, make([]float32, 4), 4)
		stop = TraceProducts()
		if got := stop(); len(got) != 0 {
			t.Fatalf("a new trace holds %d products run before it", len(got))
		}
	})
}
