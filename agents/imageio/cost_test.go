package imageio

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"
)

// TestDecodeCostBoundsDecoding: the estimate is at least what decoding
// allocates, for the layouts the web front end meets, and not wildly more.
func TestDecodeCostBoundsDecoding(t *testing.T) {
	const w, h = 1200, 900
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			rgba.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
			gray.SetGray(x, y, color.Gray{uint8(x ^ y)})
		}
	}
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	tests := map[string][]byte{
		"jpeg colour": enc(func(b *bytes.Buffer) error { return jpeg.Encode(b, rgba, &jpeg.Options{Quality: 90}) }),
		"jpeg gray":   enc(func(b *bytes.Buffer) error { return jpeg.Encode(b, gray, nil) }),
		"png rgba":    enc(func(b *bytes.Buffer) error { return png.Encode(b, rgba) }),
		"png gray":    enc(func(b *bytes.Buffer) error { return png.Encode(b, gray) }),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			info, err := Inspect(data, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			cost := DecodeCost(data, info)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if _, err := Check(data, DefaultLimits); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			used := int64(after.TotalAlloc - before.TotalAlloc)
			if cost < used {
				t.Fatalf("DecodeCost %d < %d bytes allocated by decoding", cost, used)
			}
			if cost > 4*used+int64(len(data)) {
				t.Fatalf("DecodeCost %d is over 4x the %d bytes decoding allocated", cost, used)
			}
			t.Logf("%s: cost %d, allocated %d", name, cost, used)
		})
	}
}

func TestJPEGProgressive(t *testing.T) {
	baseline := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x04, 0, 0, 0xFF, 0xDA}
	progressive := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0, 0xFF, 0xC2, 0x00, 0x04, 0, 0}
	if jpegProgressive(baseline) || !jpegProgressive(progressive) || jpegProgressive([]byte("nope")) {
		t.Fatal("progressive detection wrong")
	}
}
