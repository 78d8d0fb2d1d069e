// Package imageio turns untrusted image bytes into pixels the face engine can
// use, or into a one-line error that says what is wrong with them.
//
// It reads JPEG (baseline, progressive, grayscale, CMYK/YCCK), PNG (8/16-bit,
// gray, palette, alpha), GIF (first frame), WebP, BMP and TIFF. The size in
// bytes and the pixel count are checked from the header before any pixel is
// decoded, so a small file that claims 30000x30000 (a decompression bomb)
// costs nothing. Every image comes back as an opaque *image.RGBA in display
// orientation: a JPEG's EXIF orientation is applied, and transparent pixels
// are composited on white, as a browser shows them.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"

	// Decoders registered with image.Decode.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Sentinel errors; Decode wraps one of them with a one-line reason.
var (
	// ErrEmpty means there were no bytes at all.
	ErrEmpty = errors.New("empty image")
	// ErrTooLarge means the data exceeds Limits.MaxBytes.
	ErrTooLarge = errors.New("image file too large")
	// ErrUnsupported means the data is not an image in a supported format.
	ErrUnsupported = errors.New("not a supported image")
	// ErrCorrupt means the format was recognised but the data is truncated or broken.
	ErrCorrupt = errors.New("corrupt image")
	// ErrTooManyPixels means the header claims more than Limits.MaxPixels.
	ErrTooManyPixels = errors.New("image has too many pixels")
	// ErrTooSmall means a side is shorter than MinSide pixels.
	ErrTooSmall = errors.New("image too small")
)

// MinSide is the shortest side accepted, in pixels. Below it no face can be
// told apart (the course's faces are 64x64; face-api's detector cells are 32).
const MinSide = 16

// Limits bound what Decode accepts.
type Limits struct {
	// MaxBytes is the largest encoded size.
	MaxBytes int
	// MaxPixels is the largest width*height.
	MaxPixels int
}

// DefaultLimits accept 10 MiB and 40 megapixels: any phone photo, and at
// most 160 MB of decoded RGBA.
var DefaultLimits = Limits{MaxBytes: 10 << 20, MaxPixels: 40_000_000}

// Validate reports limits outside the allowed ranges.
func (l Limits) Validate() error {
	if l.MaxBytes < 1 || l.MaxBytes > 1<<30 {
		return fmt.Errorf("image limits: MaxBytes %d outside 1..%d", l.MaxBytes, 1<<30)
	}
	if l.MaxPixels < MinSide*MinSide || l.MaxPixels > 500_000_000 {
		return fmt.Errorf("image limits: MaxPixels %d outside %d..500000000", l.MaxPixels, MinSide*MinSide)
	}
	return nil
}

// Info is what the header says about an image.
type Info struct {
	// Format is the decoder's name: jpeg, png, gif, webp, bmp or tiff.
	Format string
	// Width and Height are in display orientation (after EXIF rotation).
	Width, Height int
	// Orientation is the EXIF orientation, 1 (as stored) to 8.
	Orientation int
}

// Inspect checks data against lim from its header alone, without decoding
// pixels: cheap enough for a web front end to reject bad uploads.
func Inspect(data []byte, lim Limits) (Info, error) {
	if err := lim.Validate(); err != nil {
		return Info{}, err
	}
	if len(data) == 0 {
		return Info{}, fmt.Errorf("%w: 0 bytes", ErrEmpty)
	}
	if len(data) > lim.MaxBytes {
		return Info{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if errors.Is(err, image.ErrFormat) {
		return Info{}, fmt.Errorf("%w: unknown format (accepted: JPEG, PNG, GIF, WebP, BMP, TIFF)", ErrUnsupported)
	}
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s header: %s", ErrCorrupt, formatOf(data), reason(err))
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 {
		return Info{}, fmt.Errorf("%w: %s header says %dx%d", ErrCorrupt, format, w, h)
	}
	if int64(w)*int64(h) > int64(lim.MaxPixels) {
		return Info{}, fmt.Errorf("%w: %dx%d is %d pixels, limit %d", ErrTooManyPixels, w, h, int64(w)*int64(h), lim.MaxPixels)
	}
	if w < MinSide || h < MinSide {
		return Info{}, fmt.Errorf("%w: %dx%d, need at least %dx%d", ErrTooSmall, w, h, MinSide, MinSide)
	}
	info := Info{Format: format, Width: w, Height: h, Orientation: 1}
	if format == "jpeg" {
		info.Orientation = jpegOrientation(data)
		if info.Orientation >= 5 {
			info.Width, info.Height = h, w
		}
	}
	return info, nil
}

// Decode checks data with Inspect, then decodes it into an opaque RGBA image
// in display orientation whose bounds start at (0, 0).
func Decode(data []byte, lim Limits) (*image.RGBA, error) {
	info, err := Inspect(data, lim)
	if err != nil {
		return nil, err
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrCorrupt, info.Format, reason(err))
	}
	b := src.Bounds()
	// The header and the pixels must agree; a GIF frame may be smaller than
	// its screen, never larger.
	if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > int64(lim.MaxPixels) {
		return nil, fmt.Errorf("%w: %s decoded to %dx%d", ErrCorrupt, info.Format, b.Dx(), b.Dy())
	}
	rgba := toRGBA(src)
	return orient(rgba, info.Orientation), nil
}

// toRGBA converts any image to opaque RGBA, compositing on white.
func toRGBA(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if opaque(src) {
		draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
		return dst
	}
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Over)
	return dst
}

func opaque(m image.Image) bool {
	if o, ok := m.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// reason is an error's text on one line.
func reason(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "truncated data"
	}
	return oneLine(err.Error())
}

func oneLine(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, []byte(s)))
}

// formatOf names the format by its magic bytes, for error messages about
// data whose header could not be parsed.
func formatOf(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8")):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("\x89PNG")):
		return "png"
	case bytes.HasPrefix(data, []byte("GIF8")):
		return "gif"
	case len(data) >= 12 && bytes.HasPrefix(data, []byte("RIFF")) && string(data[8:12]) == "WEBP":
		return "webp"
	case bytes.HasPrefix(data, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return "tiff"
	}
	return "image"
}
