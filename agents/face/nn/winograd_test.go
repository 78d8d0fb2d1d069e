package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveConv3x3 is the reference: a 3 × 3, stride-1 convolution with padding
// 1 in float64, plus bias.
func naiveConv3x3(x Tensor, f, bias []float32, cout int) []float64 {
	var out []float64
	for oy := 0; oy < x.H; oy++ {
		for ox := 0; ox < x.W; ox++ {
			for o := 0; o < cout; o++ {
				s := float64(bias[o])
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						for c := 0; c < x.C; c++ {
							s += x.at(oy+ky-1, ox+kx-1, c) * float64(f[((ky*3+kx)*x.C+c)*cout+o])
						}
					}
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func TestWinograd(t *testing.T) {
	tests := map[string]struct{ h, w, cin, cout int }{
		"35x35, 32 channels": {35, 35, 32, 32},
		"17x17, 64 channels": {17, 17, 64, 64},
		"8x8, 128 channels":  {8, 8, 128, 128},
		"one tile":           {4, 4, 8, 16},
		"smaller than tile":  {3, 2, 16, 8},
		"one pixel":          {1, 1, 8, 8},
		"uneven, odd chans":  {6, 9, 5, 3},
		"wide":               {5, 13, 24, 40},
	}
	eachKernelSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				x := randTensor(r, tc.h, tc.w, tc.cin)
				f := randSlice(r, 9*tc.cin*tc.cout)
				bias := randSlice(r, tc.cout)
				cv := NewConv2DWinograd(f, tc.cin, tc.cout, bias)
				want := naiveConv3x3(x, f, bias, tc.cout)
				// Sums of 9·cin products of values in [-1, 1]: allow a
				// relative error of 1e-5 of their typical size.
				tol := 1e-5 * 3 * math.Sqrt(float64(9*tc.cin))
				s := new(Scratch)
				for _, relu := range []bool{false, true} {
					var got Tensor
					if relu {
						got = cv.ForwardReLU(x, Same1, s)
					} else {
						got = cv.Forward(x, Same1, s)
					}
					if got.H != tc.h || got.W != tc.w || got.C != tc.cout {
						t.Fatalf("shape %dx%dx%d", got.H, got.W, got.C)
					}
					worst := 0.0
					for i, w := range want {
						if relu {
							w = max(w, 0)
						}
						d := math.Abs(float64(got.Data[i]) - w)
						worst = max(worst, d)
						if d > tol {
							t.Fatalf("relu %v: value %d = %v, want %v", relu, i, got.Data[i], w)
						}
					}
					t.Logf("relu %v: worst error %.2g (bound %.2g)", relu, worst, tol)
					s.Release(got)
				}
			})
		}
	})
}

func TestWinogradPadding(t *testing.T) {
	cv := NewConv2DWinograd(make([]float32, 9*8*8), 8, 8, make([]float32, 8))
	defer func() {
		if recover() == nil {
			t.Error("Forward with padding other than Same1 did not panic")
		}
	}()
	cv.Forward(NewTensor(4, 4, 8), Pad{}, nil)
}
