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
	at := func(py, px, ch int) float32 {
		y, x := py-offY, px-offX
		if y < 0 || y >= m.H || x < 0 || x >= m.W {
			return 0
		}
		return float32(m.Pix[3*(y*m.W+x)+ch])
	}
	out := s.Tensor(size, size, 3)
	scale := float32(side) / float32(size)
	for r := 0; r < size; r++ {
		fy := scale * float32(r)
		y0 := int(fy)
		y1 := min(side-1, int(math.Ceil(float64(fy))))
		dy := fy - float32(y0)
		for c := 0; c < size; c++ {
			fx := scale * float32(c)
			x0 := int(fx)
			x1 := min(side-1, int(math.Ceil(float64(fx))))
			dx := fx - float32(x0)
			for ch := 0; ch < 3; ch++ {
				tl, tr := at(y0, x0, ch), at(y0, x1, ch)
				bl, br := at(y1, x0, ch), at(y1, x1, ch)
				top := tl + (tr-tl)*dx
				bottom := bl + (br-bl)*dx
				v := top + (bottom-top)*dy
				out.Data[(r*size+c)*3+ch] = (v - mean[ch]) / 255
			}
		}
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
