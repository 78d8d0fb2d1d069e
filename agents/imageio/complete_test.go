package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image/gif"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// TestCompleteAcceptsWholeFiles: whole images pass, also with bytes after
// their end, and the formats Complete does not look into say so.
func TestCompleteAcceptsWholeFiles(t *testing.T) {
	m := quadrants(64, 48)
	cmyk, err := os.ReadFile(filepath.Join("testdata", "cmyk.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	jpg, png := encodeJPEG(t, m), encodePNG(t, m)
	tests := map[string]struct {
		data    []byte
		checked bool
	}{
		"jpeg":                {jpg, true},
		"jpeg with exif":      {withOrientation(jpg, 6, binary.BigEndian), true},
		"jpeg cmyk":           {cmyk, true},
		"jpeg trailing bytes": {append(append([]byte{}, jpg...), "trailer"...), true},
		"jpeg progressive":    {progressiveJPEG(), true},
		"png":                 {png, true},
		"png trailing bytes":  {append(append([]byte{}, png...), 0, 0, 0), true},
		"gif":                 {enc(func(b *bytes.Buffer) error { return gif.Encode(b, m, nil) }), false},
		"bmp":                 {enc(func(b *bytes.Buffer) error { return bmp.Encode(b, m) }), false},
		"tiff":                {enc(func(b *bytes.Buffer) error { return tiff.Encode(b, m, nil) }), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			info := Info{Format: formatOf(tc.data)}
			checked, err := Complete(tc.data, info)
			if err != nil || checked != tc.checked {
				t.Fatalf("Complete = %v, %v; want %v, nil", checked, err, tc.checked)
			}
		})
	}
}

// TestCompleteRefusesEveryCut: a JPEG or PNG cut at any byte before its
// end is refused as corrupt.
func TestCompleteRefusesEveryCut(t *testing.T) {
	m := quadrants(40, 30)
	for name, data := range map[string][]byte{
		"jpeg":             encodeJPEG(t, m),
		"png":              encodePNG(t, m),
		"jpeg progressive": progressiveJPEG(),
	} {
		t.Run(name, func(t *testing.T) {
			info := Info{Format: formatOf(data)}
			for n := range len(data) {
				checked, err := Complete(data[:n], info)
				if !checked || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("cut at %d of %d bytes: Complete = %v, %v; want ErrCorrupt", n, len(data), checked, err)
				}
			}
		})
	}
}

// TestCompleteLeavesBrokenPixelsToDecode: pixel data broken inside a
// whole file passes Complete, and Decode refuses it; the web agent's check
// and a worker's decoding split the work so.
func TestCompleteLeavesBrokenPixelsToDecode(t *testing.T) {
	data := encodeJPEG(t, quadrants(64, 64))
	sos := bytes.Index(data, []byte{0xFF, 0xDA})
	if sos < 0 {
		t.Fatal("no scan in the encoded JPEG")
	}
	broken := append([]byte{}, data...)
	// A 0xFF not followed by 0x00 or a restart marker cannot occur in
	// entropy-coded data.
	mid := sos + (len(data)-sos)/2
	broken[mid], broken[mid+1] = 0xFF, 0x55
	info, err := Inspect(broken, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if checked, err := Complete(broken, info); !checked || err != nil {
		t.Fatalf("Complete = %v, %v; want a whole file", checked, err)
	}
	if _, err := Decode(broken, DefaultLimits); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode = %v, want ErrCorrupt", err)
	}
}

// progressiveJPEG is the marker structure of a progressive JPEG (SOI,
// SOF2, DHT, two scans, EOI) with stand-in entropy-coded bytes: what
// Complete walks, not an image a decoder draws.
func progressiveJPEG() []byte {
	seg := func(marker byte, payload ...byte) []byte {
		b := []byte{0xFF, marker, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(2+len(payload)))
		return append(b, payload...)
	}
	var b []byte
	b = append(b, 0xFF, 0xD8)
	b = append(b, seg(0xC2, 8, 0, 16, 0, 16, 1, 1, 0x11, 0)...)
	b = append(b, seg(0xC4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)...)
	b = append(b, seg(0xDA, 1, 1, 0, 0, 0, 0)...)
	b = append(b, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56)
	b = append(b, seg(0xDA, 1, 1, 0, 1, 63, 0)...)
	b = append(b, 0x78, 0x9A)
	return append(b, 0xFF, 0xD9)
}

// BenchmarkWholeFileCheck compares the web agent's two ways of finding a
// truncated image: walking a JPEG's markers or a PNG's chunks (Complete)
// and decoding it (Check), on images the size of the course's faces.
//
//	go test -run '^$' -bench WholeFileCheck ./agents/imageio/
func BenchmarkWholeFileCheck(b *testing.B) {
	m := quadrants(160, 160)
	for name, data := range map[string][]byte{"jpeg": encodeJPEG(b, m), "png": encodePNG(b, m)} {
		info, err := Inspect(data, DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/complete", func(b *testing.B) {
			for b.Loop() {
				if _, err := Complete(data, info); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode", func(b *testing.B) {
			for b.Loop() {
				if _, err := Check(data, DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
