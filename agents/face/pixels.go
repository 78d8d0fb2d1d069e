package face

import (
	"image"
	"image/color"
	"math"

	"github.com/facecloud/facecloud/agents/face/nn"
)

// rgb is an image as 8-bit red, green, blue triples, row-major: the form the
// reference feeds its networks (jpeg-js / pngjs output without alpha).
type rgb struct {
	W, H int
	Pix  []uint8
}

// toRGB converts any image to rgb. Alpha is dropped, not composited: the
// straight (non-premultiplied) colour is kept, as the reference does.
func toRGB(img image.Image) rgb {
	b := img.Bounds()
	out := rgb{W: b.Dx(), H: b.Dy(), Pix: make([]uint8, 3*b.Dx()*b.Dy())}
	i := 0
	switch m := img.(type) {
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < out.W; x++ {
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = row[4*x], row[4*x+1], row[4*x+2]
				i += 3
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < out.W; x++ {
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = row[4*x], row[4*x+1], row[4*x+2]
				i += 3
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < out.W; x++ {
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = row[x], row[x], row[x]
				i += 3
			}
		}
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				i += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = c.R, c.G, c.B
				i += 3
			}
		}
	}
	return out
}

// crop returns the part of m inside r (already clamped to m).
func (m rgb) crop(r image.Rectangle) rgb {
	out := rgb{W: r.Dx(), H: r.Dy(), Pix: make([]uint8, 3*r.Dx()*r.Dy())}
	for y := 0; y < out.H; y++ {
		o := 3 * ((r.Min.Y+y)*m.W + r.Min.X)
		copy(out.Pix[3*y*out.W:3*(y+1)*out.W], m.Pix[o:o+3*out.W])
	}
	return out
}

// netInput is the tensor a network sees: the image zero-padded to a square
// (centred, or on the bottom/right), resized to size × size with TensorFlow's
// bilinear rule (align_corners and half_pixel_centers both false, no
// antialiasing), minus the mean colour, divided by 255. The padding is never
// materialised: out-of-image samples read as zero.
func netInput(m rgb, size int, centre bool, mean [3]float32, s *nn.Scratch) nn.Tensor {
	side := max(m.W, m.H)
	offX, offY := 0, 0
	if centre {
		diff := abs(m.H - m.W)
		after := int(math.Floor(float64(diff)*0.5 + 0.5)) // JavaScript Math.round
		if m.H > m.W {
			offX = diff - after
		} else {
			offY = diff - after
		}
	}
	return netInputCanvas(m, size, canvas{Side: side, OffX: offX, OffY: offY}, mean, s)
}

// canvas places an image in a square of Side × Side source pixels with its
// top-left corner at (OffX, OffY); the rest of the square reads as the grey
// level Fill (0 for the reference's black padding).
type canvas struct {
	Side, OffX, OffY int
	Fill             uint8
}

// netInputCanvas is netInput for an image placed in a canvas.
func netInputCanvas(m rgb, size int, cv canvas, mean [3]float32, s *nn.Scratch) nn.Tensor {
	side, offX, offY := cv.Side, cv.OffX, cv.OffY
	fill := float32(cv.Fill)
	out := s.TensorNoZero(size, size, 3)
	scale := float32(side) / float32(size)
	// The horizontal taps are the same for every row: the byte offsets of
	// the two source pixels in a row (-1 where they fall in the padding)
	// and the weight.
	type tap struct {
		o0, o1 int
		dx     float32
	}
	taps := make([]tap, size)
	for c := range taps {
		fx := scale * float32(c)
		x0 := int(fx)
		x1 := min(side-1, int(math.Ceil(float64(fx))))
		taps[c] = tap{pixelOffset(x0-offX, m.W), pixelOffset(x1-offX, m.W), fx - float32(x0)}
	}
	for r := 0; r < size; r++ {
		fy := scale * float32(r)
		y0 := int(fy)
		y1 := min(side-1, int(math.Ceil(float64(fy))))
		dy := fy - float32(y0)
		top, bot := m.row(y0-offY), m.row(y1-offY)
		dst := out.Data[r*size*3 : (r+1)*size*3]
		for c, t := range taps {
			tl0, tl1, tl2 := pixel(top, t.o0, fill)
			tr0, tr1, tr2 := pixel(top, t.o1, fill)
			bl0, bl1, bl2 := pixel(bot, t.o0, fill)
			br0, br1, br2 := pixel(bot, t.o1, fill)
			d := dst[3*c : 3*c+3 : 3*c+3]
			d[0] = lerp2(tl0, tr0, bl0, br0, t.dx, dy, mean[0])
			d[1] = lerp2(tl1, tr1, bl1, br1, t.dx, dy, mean[1])
			d[2] = lerp2(tl2, tr2, bl2, br2, t.dx, dy, mean[2])
		}
	}
	return out
}

// pixelOffset is the byte offset of column x in a row of width w, or -1
// outside it.
func pixelOffset(x, w int) int {
	if x < 0 || x >= w {
		return -1
	}
	return 3 * x
}

// row is row y's bytes, or nil outside the image.
func (m rgb) row(y int) []uint8 {
	if y < 0 || y >= m.H {
		return nil
	}
	return m.Pix[3*y*m.W : 3*(y+1)*m.W]
}

// pixel is the colour at byte offset o of row r; fill in the padding.
func pixel(r []uint8, o int, fill float32) (float32, float32, float32) {
	if r == nil || o < 0 {
		return fill, fill, fill
	}
	p := r[o : o+3 : o+3]
	return float32(p[0]), float32(p[1]), float32(p[2])
}

// lerp2 is TensorFlow's bilinear interpolation of one channel in float32,
// minus the mean, over 255.
func lerp2(tl, tr, bl, br, dx, dy, mean float32) float32 {
	top := tl + (tr-tl)*dx
	bottom := bl + (br-bl)*dx
	v := top + (bottom-top)*dy
	return (v - mean) / 255
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
