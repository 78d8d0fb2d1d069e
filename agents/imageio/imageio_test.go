package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// quadrants is a w x h image with a distinct colour in each quadrant, so
// rotations and flips can be told apart: red top-left, green top-right,
// blue bottom-left, white bottom-right.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 0, 0, 255}
			switch {
			case x >= w/2 && y < h/2:
				c = color.RGBA{0, 255, 0, 255}
			case x < w/2 && y >= h/2:
				c = color.RGBA{0, 0, 255, 255}
			case x >= w/2 && y >= h/2:
				c = color.RGBA{255, 255, 255, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func encodeJPEG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngHeaderOnly is a PNG signature and a valid IHDR claiming w x h RGB
// pixels, with no image data: what a decompression bomb's header looks like.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit truecolour
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// withOrientation inserts an APP1 EXIF segment with orientation o right
// after a JPEG's SOI marker.
func withOrientation(jpg []byte, o uint16, order binary.ByteOrder) []byte {
	var t bytes.Buffer
	if order == binary.LittleEndian {
		t.WriteString("II*\x00")
	} else {
		t.WriteString("MM\x00*")
	}
	_ = binary.Write(&t, order, uint32(8)) // IFD0 offset
	_ = binary.Write(&t, order, uint16(2)) // two entries
	// An unrelated tag first (ImageWidth, LONG), then Orientation (SHORT).
	_ = binary.Write(&t, order, []uint16{0x0100, 4})
	_ = binary.Write(&t, order, []uint32{1, 64})
	_ = binary.Write(&t, order, []uint16{0x0112, 3})
	_ = binary.Write(&t, order, uint32(1))
	_ = binary.Write(&t, order, []uint16{o, 0})
	_ = binary.Write(&t, order, uint32(0)) // no next IFD
	seg := append([]byte("Exif\x00\x00"), t.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2])
	out.Write([]byte{0xFF, 0xE1})
	_ = binary.Write(&out, binary.BigEndian, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(jpg[2:])
	return out.Bytes()
}

// near reports whether two colours differ by at most tol in each channel
// (JPEG is lossy).
func near(c color.RGBA, r, g, b uint8, tol int) bool {
	d := func(a, b uint8) bool { x := int(a) - int(b); return x <= tol && x >= -tol }
	return d(c.R, r) && d(c.G, g) && d(c.B, b) && c.A == 255
}

func TestDecodeRejects(t *testing.T) {
	good := encodeJPEG(t, quadrants(64, 64))
	tests := map[string]struct {
		data []byte
		lim  Limits
		want error
	}{
		"zero bytes":             {nil, DefaultLimits, ErrEmpty},
		"text named .jpg":        {[]byte("this is not a picture, just text\n"), DefaultLimits, ErrUnsupported},
		"truncated jpeg":         {good[:len(good)/2], DefaultLimits, ErrCorrupt},
		"jpeg header only":       {good[:20], DefaultLimits, ErrCorrupt},
		"png header 30000x30000": {pngHeaderOnly(30000, 30000), DefaultLimits, ErrTooManyPixels},
		"png header 0x10":        {pngHeaderOnly(0, 10), DefaultLimits, ErrCorrupt},
		"1x1 png":                {encodePNG(t, image.NewRGBA(image.Rect(0, 0, 1, 1))), DefaultLimits, ErrTooSmall},
		"15x64 png":              {encodePNG(t, image.NewGray(image.Rect(0, 0, 15, 64))), DefaultLimits, ErrTooSmall},
		"over byte limit":        {good, Limits{MaxBytes: 100, MaxPixels: 1 << 20}, ErrTooLarge},
		"over pixel limit":       {good, Limits{MaxBytes: 1 << 20, MaxPixels: 63 * 64}, ErrTooManyPixels},
		"png with broken data":   {append(pngHeaderOnly(64, 64), []byte("\x00\x00\x00\x04IDATjunk\x00\x00\x00\x00")...), DefaultLimits, ErrCorrupt},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := Decode(tc.data, tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, %v; want error %v", m.Bounds(), err, tc.want)
			}
			if m != nil {
				t.Errorf("Decode returned an image with error %v", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := map[string]struct {
		lim Limits
		ok  bool
	}{
		"default":     {DefaultLimits, true},
		"zero":        {Limits{}, false},
		"tiny pixels": {Limits{MaxBytes: 10, MaxPixels: 10}, false},
		"huge bytes":  {Limits{MaxBytes: 2 << 30, MaxPixels: 1000}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.lim.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tc.lim, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "outside") {
				t.Errorf("error does not state the range: %v", err)
			}
		})
	}
}

func TestDecodeFormats(t *testing.T) {
	q := quadrants(64, 48)
	gray := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range gray.Pix {
		gray.Pix[i] = 100
	}
	wide := image.NewNRGBA64(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			wide.SetNRGBA64(x, y, color.NRGBA64{0xFFFF, 0x8000, 0x0000, 0xFFFF})
		}
	}
	pal := image.NewPaletted(image.Rect(0, 0, 32, 32), color.Palette{color.RGBA{0, 0, 255, 255}, color.RGBA{255, 255, 0, 255}})
	var gifBuf, bmpBuf, tiffBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, pal, nil); err != nil {
		t.Fatal(err)
	}
	if err := bmp.Encode(&bmpBuf, q); err != nil {
		t.Fatal(err)
	}
	if err := tiff.Encode(&tiffBuf, q, nil); err != nil {
		t.Fatal(err)
	}
	// Top-left pixel's expected colour.
	tests := map[string]struct {
		data    []byte
		w, h    int
		r, g, b uint8
		tol     int
	}{
		"jpeg":       {encodeJPEG(t, q), 64, 48, 255, 0, 0, 8},
		"png":        {encodePNG(t, q), 64, 48, 255, 0, 0, 0},
		"gray jpeg":  {encodeJPEG(t, gray), 32, 32, 100, 100, 100, 2},
		"gray png":   {encodePNG(t, gray), 32, 32, 100, 100, 100, 0},
		"16-bit png": {encodePNG(t, wide), 32, 32, 255, 128, 0, 0},
		"gif":        {gifBuf.Bytes(), 32, 32, 0, 0, 255, 0},
		"bmp":        {bmpBuf.Bytes(), 64, 48, 255, 0, 0, 0},
		"tiff":       {tiffBuf.Bytes(), 64, 48, 255, 0, 0, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := Decode(tc.data, DefaultLimits)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if m.Rect != image.Rect(0, 0, tc.w, tc.h) {
				t.Fatalf("bounds %v, want %dx%d", m.Rect, tc.w, tc.h)
			}
			if c := m.RGBAAt(1, 1); !near(c, tc.r, tc.g, tc.b, tc.tol) {
				t.Errorf("pixel (1,1) = %v, want ~(%d,%d,%d)", c, tc.r, tc.g, tc.b)
			}
		})
	}
}

func TestDecodeAlphaOnWhite(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			switch {
			case x < 16: // fully transparent (its colour must not show)
				m.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 0})
			case y < 16: // opaque red
				m.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 255})
			default: // half-transparent black
				m.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 128})
			}
		}
	}
	got, err := Decode(encodePNG(t, m), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		x, y    int
		r, g, b uint8
	}{{2, 2, 255, 255, 255}, {20, 2, 255, 0, 0}, {20, 20, 127, 127, 127}} {
		if px := got.RGBAAt(c.x, c.y); !near(px, c.r, c.g, c.b, 1) {
			t.Errorf("pixel (%d,%d) = %v, want (%d,%d,%d)", c.x, c.y, px, c.r, c.g, c.b)
		}
	}
}

func TestDecodeCMYK(t *testing.T) {
	// testdata/cmyk.jpg: a 4-channel Adobe CMYK JPEG, 48x32, red on the
	// left half and blue on the right (made with ImageMagick).
	data, err := os.ReadFile(filepath.Join("testdata", "cmyk.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.ColorModel != color.CMYKModel {
		t.Fatalf("fixture is not a CMYK JPEG: %v %v", cfg.ColorModel, err)
	}
	m, err := Decode(data, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.RGBAAt(4, 16); !near(c, 255, 0, 0, 40) {
		t.Errorf("left = %v, want red", c)
	}
	if c := m.RGBAAt(44, 16); !near(c, 0, 0, 255, 40) {
		t.Errorf("right = %v, want blue", c)
	}
}

func TestDecodeEXIFOrientation(t *testing.T) {
	base := encodeJPEG(t, quadrants(64, 32)) // red TL, green TR, blue BL, white BR
	type corner struct{ r, g, b uint8 }
	red, green, blue, white := corner{255, 0, 0}, corner{0, 255, 0}, corner{0, 0, 255}, corner{255, 255, 255}
	tests := map[string]struct {
		o      uint16
		order  binary.ByteOrder
		w, h   int
		tl, tr corner // display's top-left and top-right
	}{
		"1 as stored":        {1, binary.BigEndian, 64, 32, red, green},
		"2 mirrored":         {2, binary.LittleEndian, 64, 32, green, red},
		"3 rotated 180":      {3, binary.BigEndian, 64, 32, white, blue},
		"4 flipped":          {4, binary.LittleEndian, 64, 32, blue, white},
		"5 transposed":       {5, binary.BigEndian, 32, 64, red, blue},
		"6 rotate clockwise": {6, binary.LittleEndian, 32, 64, blue, red},
		"7 transverse":       {7, binary.BigEndian, 32, 64, white, green},
		"8 rotate anticlock": {8, binary.BigEndian, 32, 64, green, white},
		"9 invalid ignored":  {9, binary.BigEndian, 64, 32, red, green},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := withOrientation(base, tc.o, tc.order)
			info, err := Inspect(data, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if info.Width != tc.w || info.Height != tc.h {
				t.Errorf("Inspect size %dx%d, want %dx%d", info.Width, info.Height, tc.w, tc.h)
			}
			m, err := Decode(data, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rect.Dx() != tc.w || m.Rect.Dy() != tc.h {
				t.Fatalf("Decode size %v, want %dx%d", m.Rect, tc.w, tc.h)
			}
			if c := m.RGBAAt(2, 2); !near(c, tc.tl.r, tc.tl.g, tc.tl.b, 12) {
				t.Errorf("top-left %v, want %v", c, tc.tl)
			}
			if c := m.RGBAAt(tc.w-3, 2); !near(c, tc.tr.r, tc.tr.g, tc.tr.b, 12) {
				t.Errorf("top-right %v, want %v", c, tc.tr)
			}
		})
	}
}

func TestJPEGOrientationMalformed(t *testing.T) {
	base := encodeJPEG(t, quadrants(32, 32))
	good := withOrientation(base, 6, binary.BigEndian)
	tests := map[string][]byte{
		"no exif":           base,
		"segment too long":  append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF}, []byte("Exif\x00\x00MM")...),
		"bad tiff magic":    bytes.Replace(good, []byte("MM\x00*"), []byte("XX\x00*"), 1),
		"ifd past the end":  bytes.Replace(good, []byte("MM\x00*\x00\x00\x00\x08"), []byte("MM\x00*\x00\x00\xff\x08"), 1),
		"not a jpeg":        []byte("GIF89a"),
		"only soi":          {0xFF, 0xD8},
		"garbage after soi": {0xFF, 0xD8, 0x00, 0x01, 0x02, 0x03},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if o := jpegOrientation(data); o != 1 {
				t.Errorf("orientation %d, want 1", o)
			}
		})
	}
	if o := jpegOrientation(good); o != 6 {
		t.Errorf("well-formed orientation 6 read as %d", o)
	}
}

// FuzzDecode feeds arbitrary bytes to Decode: it must return an image or one
// of the sentinel errors, never panic, and never exceed the pixel limit.
func FuzzDecode(f *testing.F) {
	q := quadrants(32, 32)
	jpg := encodeJPEG(f, q)
	f.Add(jpg)
	f.Add(jpg[:len(jpg)/3])
	f.Add(withOrientation(jpg, 6, binary.LittleEndian))
	f.Add(encodePNG(f, q))
	f.Add(pngHeaderOnly(30000, 30000))
	f.Add([]byte("not an image"))
	f.Add([]byte{})
	var g bytes.Buffer
	_ = gif.Encode(&g, image.NewPaletted(image.Rect(0, 0, 20, 20), color.Palette{color.Black, color.White}), nil)
	f.Add(g.Bytes())
	if cmyk, err := os.ReadFile(filepath.Join("testdata", "cmyk.jpg")); err == nil {
		f.Add(cmyk)
	}
	lim := Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}
	sentinels := []error{ErrEmpty, ErrTooLarge, ErrUnsupported, ErrCorrupt, ErrTooManyPixels, ErrTooSmall}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, lim)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if n := m.Rect.Dx() * m.Rect.Dy(); n > lim.MaxPixels || m.Rect.Dx() < MinSide || m.Rect.Dy() < MinSide {
			t.Fatalf("decoded %v outside limits", m.Rect)
		}
	})
}

// BenchmarkDecode measures Decode on a 1920x1280 photo-sized JPEG, and the
// standard library's decoding alone, to show what checks, conversion to RGBA
// and orientation add.
func BenchmarkDecode(b *testing.B) {
	m := image.NewRGBA(image.Rect(0, 0, 1920, 1280))
	for i := range m.Pix {
		m.Pix[i] = uint8(i*7 + i/4096)
	}
	data := encodeJPEG(b, m)
	b.Run("imageio", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Decode(data, DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
