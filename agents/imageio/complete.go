package imageio

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Complete checks, without decoding pixels, that data (whose header
// Inspect read as info) is whole: a JPEG has an end-of-image marker after
// its first scan, a PNG's chunks fit in data up to its IEND chunk. An
// upload cut short fails with ErrCorrupt ("truncated data"), at the cost
// of walking the file's markers or chunks, not decoding it. Pixel data
// broken inside a whole file passes; Decode finds it. checked is false
// for the other formats, which Complete does not look into.
func Complete(data []byte, info Info) (checked bool, err error) {
	switch info.Format {
	case "jpeg":
		if !jpegComplete(data) {
			return true, fmt.Errorf("%w: jpeg: truncated data (no end-of-image marker after the first scan)", ErrCorrupt)
		}
		return true, nil
	case "png":
		if !pngComplete(data) {
			return true, fmt.Errorf("%w: png: truncated data (the chunks end before IEND)", ErrCorrupt)
		}
		return true, nil
	}
	return false, nil
}

// jpegComplete walks the marker segments to the first start of scan and
// looks for an end-of-image marker after it. Inside entropy-coded data a
// 0xFF byte is always followed by 0x00 or a restart marker, so the first
// FF D9 after the scan header ends the image (a progressive JPEG's later
// scan headers and tables could hold those two bytes too, by chance: then
// a cut file passes, and the worker's decoder refuses it).
func jpegComplete(data []byte) bool {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return false
	}
	for p := 2; p+4 <= len(data); {
		if data[p] != 0xFF {
			return false
		}
		marker := data[p+1]
		switch {
		case marker == 0xFF: // fill byte
			p++
			continue
		case marker == 0xD9: // end of image before any scan
			return false
		case marker >= 0xD0 && marker <= 0xD7 || marker == 0x01: // no length
			p += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 || p+2+n > len(data) {
			return false
		}
		p += 2 + n
		if marker == 0xDA { // start of scan: its header is behind p
			return bytes.Contains(data[p:], []byte{0xFF, 0xD9})
		}
	}
	return false
}

// pngComplete walks the chunks after the signature (length, type, data,
// CRC) to IEND; CRCs are left to the decoder.
func pngComplete(data []byte) bool {
	const sig = 8
	if len(data) < sig {
		return false
	}
	for p := sig; p+12 <= len(data); {
		n := int64(binary.BigEndian.Uint32(data[p:]))
		end := int64(p) + 12 + n
		if end > int64(len(data)) {
			return false
		}
		if string(data[p+4:p+8]) == "IEND" {
			return true
		}
		p = int(end)
	}
	return false
}
