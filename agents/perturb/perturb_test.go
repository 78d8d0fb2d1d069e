package perturb

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"github.com/facecloud/facecloud/agents/imageio"
)

// gradient is a 64x64 test picture with detail in both directions.
func gradient() *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			m.SetRGBA(x, y, color.RGBA{uint8(4 * x), uint8(4 * y), uint8(2 * (x + y)), 255})
		}
	}
	return m
}

func TestVariants(t *testing.T) {
	src := gradient()
	sizes := map[string]image.Point{"resize48": {48, 48}, "resize128": {128, 128}, "crop80": {52, 52}, "cropcorner": {54, 54}}
	for _, v := range Variants {
		t.Run(v.Name, func(t *testing.T) {
			a, err := v.Encode(src)
			if err != nil {
				t.Fatal(err)
			}
			b, err := v.Encode(src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatal("two encodings of the same input differ")
			}
			m, err := imageio.Decode(a, imageio.DefaultLimits)
			if err != nil {
				t.Fatalf("copy does not decode: %v", err)
			}
			want, ok := sizes[v.Name]
			if !ok {
				want = image.Pt(64, 64)
			}
			if m.Rect.Size() != want {
				t.Errorf("size %v, want %v", m.Rect.Size(), want)
			}
			if v.Name != "png" && v.Name != "jpeg25" && bytes.Equal(a, mustEncode(t, Variant{Ext: v.Ext, Quality: v.Quality, Apply: identity}, src)) {
				t.Error("variant left the image unchanged")
			}
		})
	}
}

func mustEncode(t *testing.T, v Variant, src image.Image) []byte {
	t.Helper()
	b, err := v.Encode(src)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPixelOps(t *testing.T) {
	src := gradient()
	tests := map[string]struct {
		fn      func(image.Image) image.Image
		x, y    int
		r, g, b uint8
	}{
		"mirror moves right edge left": {mirror, 0, 10, 252, 40, 146},
		"brightness clamps":            {brightness(1.3), 63, 0, 255, 0, 164},
		"gray is luma":                 {grayscale, 10, 20, 66, 66, 66},
		"crop shifts origin":           {crop(0.25, 0.25, 0.5), 0, 0, 64, 64, 64},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := tc.fn(src)
			r, g, b, _ := m.At(tc.x, tc.y).RGBA()
			if uint8(r>>8) != tc.r || uint8(g>>8) != tc.g || uint8(b>>8) != tc.b {
				t.Errorf("pixel (%d,%d) = %d,%d,%d want %d,%d,%d", tc.x, tc.y, r>>8, g>>8, b>>8, tc.r, tc.g, tc.b)
			}
		})
	}
	// Rotation keeps the centre and fills uncovered corners with gray.
	m := rotate(7)(src).(*image.RGBA)
	if c := m.RGBAAt(0, 0); c != (color.RGBA{128, 128, 128, 255}) {
		t.Errorf("rotated corner %v, want mid-gray", c)
	}
	if c, want := m.RGBAAt(32, 32), src.RGBAAt(32, 32); absDiff(c.R, want.R) > 4 || absDiff(c.G, want.G) > 4 {
		t.Errorf("rotated centre %v, want about %v", c, want)
	}
	// Blur keeps a flat image flat and softens an edge.
	edge := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			v := uint8(0)
			if x >= 16 {
				v = 255
			}
			edge.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	bl := blur(1)(edge).(*image.RGBA)
	if c := bl.RGBAAt(2, 5); c.R != 0 {
		t.Errorf("blur changed a flat area: %v", c)
	}
	if c := bl.RGBAAt(15, 5); c.R == 0 || c.R >= 128 {
		t.Errorf("blur did not soften the edge: %v", c)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
