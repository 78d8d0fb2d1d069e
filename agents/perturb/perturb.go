// Package perturb makes deterministic, altered copies of face images
// (mirror, resize, brightness, JPEG quality 25, small rotation, grayscale,
// crop, blur, PNG) for the robustness test: the Go engine and the reference
// engine are run on the same files, and the Go engine must name the person
// right at least as often. The same inputs always give byte-identical files,
// so the reference's recorded answers stay valid.
package perturb

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"

	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// Variant is one kind of alteration.
type Variant struct {
	Name string
	// Ext is the file extension the copy is written with: ".jpg" or ".png".
	Ext string
	// Quality is the JPEG quality (ignored for PNG).
	Quality int
	Apply   func(src image.Image) image.Image
}

// Variants are the alterations, in a fixed order.
var Variants = []Variant{
	{"mirror", ".jpg", 95, mirror},
	{"resize48", ".jpg", 95, resize(0.75)},
	{"resize128", ".jpg", 95, resize(2)},
	{"bright130", ".jpg", 95, brightness(1.3)},
	{"dark70", ".jpg", 95, brightness(0.7)},
	{"jpeg25", ".jpg", 25, identity},
	{"rotate+7", ".jpg", 95, rotate(7)},
	{"rotate-7", ".jpg", 95, rotate(-7)},
	{"gray", ".jpg", 95, grayscale},
	{"crop80", ".jpg", 95, crop(0.1, 0.1, 0.8)},
	{"cropcorner", ".jpg", 95, crop(0, 0, 0.85)},
	{"blur1", ".jpg", 95, blur(1)},
	{"blur1.5", ".jpg", 95, blur(1.5)},
	{"png", ".png", 0, identity},
}

// Copy is one written file.
type Copy struct {
	// File is the copy's file name in the output folder.
	File string
	// Source is the stem of the image it was made from.
	Source  string
	Variant string
}

// Encode applies v to src and encodes the result.
func (v Variant) Encode(src image.Image) ([]byte, error) {
	out := v.Apply(src)
	var buf bytes.Buffer
	var err error
	if v.Ext == ".png" {
		err = png.Encode(&buf, out)
	} else {
		err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: v.Quality})
	}
	if err != nil {
		return nil, fmt.Errorf("perturb %s: %w", v.Name, err)
	}
	return buf.Bytes(), nil
}

// Write makes every variant of every source image in dir as
// <stem>_<variant><ext> and returns the copies in order. sources maps a
// stem to its decoded image; stems are processed in the order given.
func Write(dir string, stems []string, sources map[string]image.Image) ([]Copy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("perturb: %w", err)
	}
	var copies []Copy
	for _, stem := range stems {
		src, ok := sources[stem]
		if !ok {
			return nil, fmt.Errorf("perturb: no image for %s", stem)
		}
		for _, v := range Variants {
			data, err := v.Encode(src)
			if err != nil {
				return nil, err
			}
			name := stem + "_" + v.Name + v.Ext
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return nil, fmt.Errorf("perturb: %w", err)
			}
			copies = append(copies, Copy{File: name, Source: stem, Variant: v.Name})
		}
	}
	return copies, nil
}

func identity(src image.Image) image.Image { return src }

// rgba copies src into a fresh RGBA image at the origin.
func rgba(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

func mirror(src image.Image) image.Image {
	s := rgba(src)
	w, h := s.Rect.Dx(), s.Rect.Dy()
	dst := image.NewRGBA(s.Rect)
	for y := range h {
		for x := range w {
			dst.SetRGBA(x, y, s.RGBAAt(w-1-x, y))
		}
	}
	return dst
}

func resize(f float64) func(image.Image) image.Image {
	return func(src image.Image) image.Image {
		b := src.Bounds()
		dst := image.NewRGBA(image.Rect(0, 0, int(math.Round(float64(b.Dx())*f)), int(math.Round(float64(b.Dy())*f))))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
		return dst
	}
}

func brightness(f float64) func(image.Image) image.Image {
	return func(src image.Image) image.Image {
		dst := rgba(src)
		for i := range dst.Pix {
			if i%4 == 3 {
				continue
			}
			dst.Pix[i] = uint8(min(255, math.Round(float64(dst.Pix[i])*f)))
		}
		return dst
	}
}

// rotate turns the image by deg degrees about its centre (positive is
// clockwise on screen), bilinear, with the uncovered corners mid-gray.
func rotate(deg float64) func(image.Image) image.Image {
	return func(src image.Image) image.Image {
		s := rgba(src)
		w, h := float64(s.Rect.Dx()), float64(s.Rect.Dy())
		dst := image.NewRGBA(s.Rect)
		draw.Draw(dst, dst.Bounds(), image.NewUniform(color.RGBA{128, 128, 128, 255}), image.Point{}, draw.Src)
		sin, cos := math.Sincos(deg * math.Pi / 180)
		cx, cy := w/2, h/2
		// dst = R (src - c) + c
		m := f64.Aff3{cos, -sin, cx - cos*cx + sin*cy, sin, cos, cy - sin*cx - cos*cy}
		draw.BiLinear.Transform(dst, m, s, s.Rect, draw.Over, nil)
		return dst
	}
}

func grayscale(src image.Image) image.Image {
	b := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

// crop keeps the square of side frac (of the width and height) whose
// top-left corner is at (fx, fy) fractions of the image.
func crop(fx, fy, frac float64) func(image.Image) image.Image {
	return func(src image.Image) image.Image {
		s := rgba(src)
		w, h := float64(s.Rect.Dx()), float64(s.Rect.Dy())
		r := image.Rect(int(math.Round(fx*w)), int(math.Round(fy*h)), int(math.Round((fx+frac)*w)), int(math.Round((fy+frac)*h)))
		return rgba(s.SubImage(r))
	}
}

// blur is a separable Gaussian blur of standard deviation sigma, edges
// clamped.
func blur(sigma float64) func(image.Image) image.Image {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	sum := 0.0
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	pass := func(s *image.RGBA, dx, dy int) *image.RGBA {
		w, h := s.Rect.Dx(), s.Rect.Dy()
		dst := image.NewRGBA(s.Rect)
		for y := range h {
			for x := range w {
				var acc [3]float64
				for i, kv := range k {
					sx := min(max(x+(i-r)*dx, 0), w-1)
					sy := min(max(y+(i-r)*dy, 0), h-1)
					o := s.PixOffset(sx, sy)
					for c := range 3 {
						acc[c] += kv * float64(s.Pix[o+c])
					}
				}
				o := dst.PixOffset(x, y)
				for c := range 3 {
					dst.Pix[o+c] = uint8(math.Round(min(255, max(0, acc[c]))))
				}
				dst.Pix[o+3] = 255
			}
		}
		return dst
	}
	return func(src image.Image) image.Image {
		return pass(pass(rgba(src), 1, 0), 0, 1)
	}
}
