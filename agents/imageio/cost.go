package imageio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
)

// DecodeCost is an upper bound of the bytes the standard decoders allocate
// to decode data, whose header Inspect read as info: the pixels in the
// decoder's own layout (1 byte a pixel for gray and paletted images, 3 for
// JPEG colour, 4 for CMYK or 8-bit RGBA, 8 for 16-bit), twice that for PNG
// (an interlaced image is decoded pass by pass), and for a progressive JPEG
// its coefficients too (4 bytes a pixel per component), which it keeps
// until the last scan, plus a fixed allowance for the decoder's own state.
// A web front end charges it to its memory budget
// before checking that the pixels decode.
func DecodeCost(data []byte, info Info) int64 {
	pixels := int64(info.Width) * int64(info.Height)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	model := cfg.ColorModel
	if err != nil {
		model = nil
	}
	var perPixel int64
	switch info.Format {
	case "jpeg":
		comps := int64(3)
		switch model {
		case color.GrayModel:
			comps = 1
		case color.CMYKModel:
			comps = 4
		}
		perPixel = comps
		if jpegProgressive(data) {
			perPixel += 4 * comps
		}
	case "png":
		perPixel = 2 * bytesPerPixel(model)
	case "gif":
		perPixel = 1
	case "tiff":
		perPixel = 8
	default: // webp, bmp
		perPixel = 4
	}
	return pixels*perPixel + int64(len(data)) + decoderOverhead
}

// decoderOverhead bounds what a decoder allocates beside the pixels: its
// state, Huffman or LZ77 tables and read buffers (measured in the hundreds
// of bytes to a few KiB for the standard decoders; 64 KiB leaves room).
const decoderOverhead = 64 << 10

func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// jpegProgressive reports whether a JPEG's frame header is progressive
// (SOF2, or the rarer SOF6, SOF10, SOF14), walking the marker segments up
// to the first scan.
func jpegProgressive(data []byte) bool {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return false
	}
	for p := 2; p+4 <= len(data); {
		if data[p] != 0xFF {
			return false
		}
		marker := data[p+1]
		switch {
		case marker == 0xFF:
			p++
			continue
		case marker == 0xD9 || marker == 0xDA:
			return false
		case marker >= 0xD0 && marker <= 0xD7 || marker == 0x01:
			p += 2
			continue
		case marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE:
			return true
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 {
			return false
		}
		p += 2 + n
	}
	return false
}

// Check tells whether data decodes within lim, as Decode would, without
// keeping the pixels or converting them: what a front end needs to refuse
// a broken image before queueing it, at DecodeCost.
func Check(data []byte, lim Limits) (Info, error) {
	info, err := Inspect(data, lim)
	if err != nil {
		return info, err
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return info, fmt.Errorf("%w: %s: %s", ErrCorrupt, info.Format, reason(err))
	}
	b := src.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > int64(lim.MaxPixels) {
		return info, fmt.Errorf("%w: %s decoded to %dx%d", ErrCorrupt, info.Format, b.Dx(), b.Dy())
	}
	return info, nil
}
