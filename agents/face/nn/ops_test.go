package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randTensor(r *rand.Rand, h, w, c int) Tensor {
	return Tensor{H: h, W: w, C: c, Data: randSlice(r, h*w*c)}
}

func (x Tensor) at(y, xx, c int) float64 {
	if y < 0 || y >= x.H || xx < 0 || xx >= x.W {
		return 0
	}
	return float64(x.Data[(y*x.W+xx)*x.C+c])
}

func closeTo(t *testing.T, got Tensor, want []float64, h, w int) {
	t.Helper()
	if got.H != h || got.W != w || len(got.Data) != len(want) {
		t.Fatalf("shape %dx%dx%d (%d values), want %dx%d (%d values)", got.H, got.W, got.C, len(got.Data), h, w, len(want))
	}
	for i := range want {
		if math.Abs(float64(got.Data[i])-want[i]) > 1e-4 {
			t.Fatalf("value %d = %v, want %v", i, got.Data[i], want[i])
		}
	}
}

func TestConv2D(t *testing.T) {
	tests := map[string]struct {
		h, w, cin, cout, k, stride int
		pad                        Pad
	}{
		"3x3 same":           {9, 7, 5, 17, 3, 1, Same1},
		"7x7 stride 2 valid": {20, 18, 3, 32, 7, 2, Pad{}},
		"3x3 stride 2 valid": {9, 9, 8, 16, 3, 2, Pad{}},
		"1x1 pointwise":      {5, 6, 12, 25, 1, 1, Pad{}},
		"1x1 wide":           {7, 9, 24, 70, 1, 1, Pad{}},
		"3x3 stride 2 wide":  {11, 11, 16, 64, 3, 2, Pad{}},
		// Outputs at least implicitMinWidth wide run without im2col.
		"implicit 3x3 same":          {5, 20, 5, 17, 3, 1, Same1},
		"implicit 7x7 stride 2":      {20, 40, 3, 32, 7, 2, Pad{}},
		"implicit uneven padding":    {6, 18, 4, 8, 3, 1, Pad{0, 1, 2, 1}},
		"implicit 3x3 stride 2 wide": {9, 37, 16, 64, 3, 2, Pad{}},
		"uneven padding":             {6, 5, 4, 8, 3, 1, Pad{0, 1, 2, 1}},
	}
	eachKernelSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				x := randTensor(r, tc.h, tc.w, tc.cin)
				f := randSlice(r, tc.k*tc.k*tc.cin*tc.cout)
				bias := randSlice(r, tc.cout)
				got := NewConv2D(f, tc.k, tc.k, tc.cin, tc.cout, tc.stride, bias).Forward(x, tc.pad, new(Scratch))
				oh := (tc.h+tc.pad.Top+tc.pad.Bottom-tc.k)/tc.stride + 1
				ow := (tc.w+tc.pad.Left+tc.pad.Right-tc.k)/tc.stride + 1
				var want []float64
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						for o := 0; o < tc.cout; o++ {
							s := float64(bias[o])
							for ky := 0; ky < tc.k; ky++ {
								for kx := 0; kx < tc.k; kx++ {
									for c := 0; c < tc.cin; c++ {
										s += x.at(oy*tc.stride+ky-tc.pad.Top, ox*tc.stride+kx-tc.pad.Left, c) *
											float64(f[((ky*tc.k+kx)*tc.cin+c)*tc.cout+o])
									}
								}
							}
							want = append(want, s)
						}
					}
				}
				closeTo(t, got, want, oh, ow)
			})
		}
	})
}

func TestDepthwise3x3(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for name, c := range map[string]int{"vector channels": 16, "odd channels": 5} {
			t.Run(name, func(t *testing.T) {
				for _, size := range [][2]int{{7, 6}, {1, 1}, {3, 1}} {
					x := randTensor(r, size[0], size[1], c)
					f := randSlice(r, 9*c)
					got := Depthwise3x3(x, f, new(Scratch))
					var want []float64
					for oy := 0; oy < x.H; oy++ {
						for ox := 0; ox < x.W; ox++ {
							for ch := 0; ch < c; ch++ {
								s := 0.0
								for ky := 0; ky < 3; ky++ {
									for kx := 0; kx < 3; kx++ {
										s += x.at(oy+ky-1, ox+kx-1, ch) * float64(f[(ky*3+kx)*c+ch])
									}
								}
								want = append(want, s)
							}
						}
					}
					closeTo(t, got, want, x.H, x.W)
				}
			})
		}
	})
}

func TestPools(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tests := map[string]struct {
		h, w, c, k, stride int
		same               bool
	}{
		"2x2 stride 2 same, odd size": {7, 5, 3, 2, 2, true},
		"2x2 stride 1 same":           {5, 5, 3, 2, 1, true},
		"3x3 stride 2 valid":          {8, 9, 3, 3, 2, false},
		"3x3 stride 2 same":           {8, 7, 3, 3, 2, true},
		"2x2 stride 2, 16 channels":   {7, 9, 16, 2, 2, true},
		"2x2 stride 1, 32 channels":   {4, 3, 32, 2, 1, true},
		"3x3 stride 2 valid, 32 ch":   {9, 11, 32, 3, 2, false},
		"2x2 on one pixel":            {1, 1, 8, 2, 2, true},
	}
	eachKernelSet(t, func(t *testing.T) {
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				x := randTensor(r, tc.h, tc.w, tc.c)
				got := MaxPool(x, tc.k, tc.stride, tc.same, nil)
				var oh, ow, pt, pl int
				if tc.same {
					oh, ow = (tc.h+tc.stride-1)/tc.stride, (tc.w+tc.stride-1)/tc.stride
					pt = max((oh-1)*tc.stride+tc.k-tc.h, 0) / 2
					pl = max((ow-1)*tc.stride+tc.k-tc.w, 0) / 2
				} else {
					oh, ow = (tc.h-tc.k)/tc.stride+1, (tc.w-tc.k)/tc.stride+1
				}
				var want []float64
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						for c := 0; c < tc.c; c++ {
							m := math.Inf(-1)
							for ky := 0; ky < tc.k; ky++ {
								for kx := 0; kx < tc.k; kx++ {
									y, xx := oy*tc.stride+ky-pt, ox*tc.stride+kx-pl
									if y >= 0 && y < tc.h && xx >= 0 && xx < tc.w {
										m = max(m, x.at(y, xx, c))
									}
								}
							}
							want = append(want, m)
						}
					}
				}
				closeTo(t, got, want, oh, ow)
			})
		}
	})
	t.Run("average 2x2 valid", func(t *testing.T) {
		x := randTensor(r, 5, 4, 2)
		got := AvgPoolValid(x, 2, nil)
		var want []float64
		for oy := 0; oy < 2; oy++ {
			for ox := 0; ox < 2; ox++ {
				for c := 0; c < 2; c++ {
					want = append(want, (x.at(2*oy, 2*ox, c)+x.at(2*oy+1, 2*ox, c)+x.at(2*oy, 2*ox+1, c)+x.at(2*oy+1, 2*ox+1, c))/4)
				}
			}
		}
		closeTo(t, got, want, 2, 2)
	})
}

func TestActivations(t *testing.T) {
	eachKernelSet(t, testActivations)
}

func testActivations(t *testing.T) {
	x := []float32{-2, 0, 3}
	Leaky(x)
	if x[0] != -0.2 || x[1] != 0 || x[2] != 3 {
		t.Errorf("Leaky = %v", x)
	}
	ReLU(x)
	if x[0] != 0 || x[2] != 3 {
		t.Errorf("ReLU = %v", x)
	}
}

func TestActivationsLong(t *testing.T) {
	eachKernelSet(t, testActivationsLong)
}

func testActivationsLong(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := randSlice(r, 37) // vector part and a tail
	y := append([]float32(nil), x...)
	Leaky(y)
	for i, v := range x {
		want := v
		if v < 0 {
			want = v * 0.1
		}
		if y[i] != want {
			t.Fatalf("Leaky[%d] = %v, want %v", i, y[i], want)
		}
	}
	ReLU(x)
	for i, v := range x {
		if v < 0 || (y[i] >= 0 && v != y[i]) {
			t.Fatalf("ReLU[%d] = %v", i, v)
		}
	}
}

func TestScratchReuse(t *testing.T) {
	s := new(Scratch)
	a := s.Tensor(4, 4, 2)
	a.Data[0] = 7
	s.Release(a)
	b := s.Tensor(2, 2, 2)
	if &b.Data[0] != &a.Data[0] {
		t.Error("released buffer not reused")
	}
	if b.Data[0] != 0 {
		t.Error("reused buffer not zeroed")
	}
	if c := s.Tensor(8, 8, 8); len(c.Data) != 512 {
		t.Errorf("len %d", len(c.Data))
	}
	var none *Scratch
	if d := none.Tensor(1, 2, 3); len(d.Data) != 6 {
		t.Errorf("nil scratch: len %d", len(d.Data))
	}
	none.Release(a)
}

func TestForwardLeakyMaxPool2(t *testing.T) {
	tests := map[string]struct {
		h, w, cin, cout, k, stride, poolStride int
		pad                                    Pad
	}{
		"3x3 valid, pool 2":       {21, 20, 3, 16, 3, 1, 2, Pad{}},
		"3x3 valid, odd, pool 2":  {20, 21, 3, 16, 3, 1, 2, Pad{}},
		"pointwise, pool 2":       {7, 9, 16, 32, 1, 1, 2, Pad{}},
		"pointwise, pool 1":       {5, 6, 24, 40, 1, 1, 1, Pad{}},
		"3x3 same, pool 1":        {6, 17, 8, 16, 3, 1, 1, Same1},
		"narrow, unfused, pool 2": {7, 7, 4, 8, 3, 1, 2, Pad{}},
	}
	eachKernelSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				x := randTensor(r, tc.h, tc.w, tc.cin)
				cv := NewConv2D(randSlice(r, tc.k*tc.k*tc.cin*tc.cout), tc.k, tc.k, tc.cin, tc.cout, tc.stride, randSlice(r, tc.cout))
				y := cv.Forward(x, tc.pad, nil)
				Leaky(y.Data)
				want := MaxPool(y, 2, tc.poolStride, true, nil)
				got := cv.ForwardLeakyMaxPool2(x, tc.pad, tc.poolStride, new(Scratch))
				if got.H != want.H || got.W != want.W || got.C != want.C {
					t.Fatalf("shape %dx%dx%d, want %dx%dx%d", got.H, got.W, got.C, want.H, want.W, want.C)
				}
				for i, w := range want.Data {
					if math.Abs(float64(got.Data[i]-w)) > 1e-5 {
						t.Fatalf("value %d = %v, want %v", i, got.Data[i], w)
					}
				}
			})
		}
	})
}
