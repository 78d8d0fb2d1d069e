package face

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/facecloud/facecloud/agents/models"
	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// perturbation changes a photo and maps a point of the result back to the
// original's pixels.
type perturbation struct {
	name string
	f    func(img *image.RGBA) (image.Image, func(x, y float64) (float64, float64))
}

func identity(x, y float64) (float64, float64) { return x, y }

// TestAlignmentRobustness is the measurement behind the default of
// Options.NoAlign: on perturbed copies of the demo photos (mirror, half size,
// brighter, JPEG quality 25, 7° rotation, crop, blur, grayscale) each face
// found is matched to the face of the original at the same place, and we
// count how often its nearest descriptor among all 20 original faces is that
// face. Landmark alignment must do at least as well as margin crops and
// re-identify at least 95%.
func TestAlignmentRobustness(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (runs the engine on 96 full-size photos); skipped with -short")
	}
	plain := loadMarginEngine(t)
	aligned := loadReferenceEngine(t)
	perts := []perturbation{
		{"mirror", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			b := m.Bounds()
			o := image.NewRGBA(b)
			for y := 0; y < b.Dy(); y++ {
				for x := 0; x < b.Dx(); x++ {
					o.Set(b.Dx()-1-x, y, m.At(x, y))
				}
			}
			return o, func(x, y float64) (float64, float64) { return float64(b.Dx()) - x, y }
		}},
		{"half size", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			b := m.Bounds()
			o := image.NewRGBA(image.Rect(0, 0, b.Dx()/2, b.Dy()/2))
			draw.BiLinear.Scale(o, o.Bounds(), m, b, draw.Src, nil)
			return o, func(x, y float64) (float64, float64) { return 2 * x, 2 * y }
		}},
		{"brighter", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			o := image.NewRGBA(m.Bounds())
			for i, v := range m.Pix {
				o.Pix[i] = uint8(min(255, int(v)+30))
			}
			return o, identity
		}},
		{"jpeg q25", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 25}); err != nil {
				return m, identity
			}
			o, err := jpeg.Decode(&buf)
			if err != nil {
				return m, identity
			}
			return o, identity
		}},
		{"rotate 7", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			b := m.Bounds()
			cx, cy := float64(b.Dx())/2, float64(b.Dy())/2
			a := 7 * math.Pi / 180
			c, s := math.Cos(a), math.Sin(a)
			// src -> dst
			aff := f64.Aff3{c, -s, cx - c*cx + s*cy, s, c, cy - s*cx - c*cy}
			o := image.NewRGBA(b)
			draw.BiLinear.Transform(o, aff, m, b, draw.Src, nil)
			return o, func(x, y float64) (float64, float64) {
				dx, dy := x-cx, y-cy
				return cx + c*dx + s*dy, cy - s*dx + c*dy
			}
		}},
		{"crop", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			b := m.Bounds()
			ox, oy := b.Dx()/10, b.Dy()/10
			o := image.NewRGBA(image.Rect(0, 0, b.Dx()-ox, b.Dy()-oy))
			draw.Draw(o, o.Bounds(), m, image.Pt(ox, oy), draw.Src)
			return o, func(x, y float64) (float64, float64) { return x + float64(ox), y + float64(oy) }
		}},
		{"blur", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			b := m.Bounds()
			o := image.NewRGBA(b)
			w, h := b.Dx(), b.Dy()
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					for ch := 0; ch < 3; ch++ {
						s, n := 0, 0
						for dy := -2; dy <= 2; dy++ {
							for dx := -2; dx <= 2; dx++ {
								xx, yy := x+dx, y+dy
								if xx >= 0 && yy >= 0 && xx < w && yy < h {
									s += int(m.Pix[(yy*w+xx)*4+ch])
									n++
								}
							}
						}
						o.Pix[(y*w+x)*4+ch] = uint8(s / n)
					}
					o.Pix[(y*w+x)*4+3] = 255
				}
			}
			return o, identity
		}},
		{"gray", func(m *image.RGBA) (image.Image, func(x, y float64) (float64, float64)) {
			o := image.NewRGBA(m.Bounds())
			for i := 0; i < len(m.Pix); i += 4 {
				l := uint8((299*int(m.Pix[i]) + 587*int(m.Pix[i+1]) + 114*int(m.Pix[i+2])) / 1000)
				o.Pix[i], o.Pix[i+1], o.Pix[i+2], o.Pix[i+3] = l, l, l, 255
			}
			return o, identity
		}},
	}
	score := map[string]int{}
	for _, eng := range []struct {
		name string
		e    *Engine
	}{{"margin", plain}, {"aligned", aligned}} {
		var all []Found
		var originals [][]Found
		var imgs []*image.RGBA
		for n := 1; n <= 6; n++ {
			data, err := os.ReadFile(filepath.Join(models.DefaultDir(), "demo", fmt.Sprintf("sample%d.jpg", n)))
			if err != nil {
				t.Fatal(err)
			}
			src, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			m := image.NewRGBA(src.Bounds())
			draw.Draw(m, m.Bounds(), src, image.Point{}, draw.Src)
			imgs = append(imgs, m)
			rec, err := eng.e.DescribeImage(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			originals = append(originals, rec.Faces)
			all = append(all, rec.Faces...)
		}
		for _, p := range perts {
			total, found, right := 0, 0, 0
			sum := 0.0
			for i, m := range imgs {
				pi, back := p.f(m)
				rec, err := eng.e.DescribeImage(context.Background(), pi)
				if err != nil {
					t.Fatal(err)
				}
				total += len(originals[i])
				for _, f := range rec.Faces {
					x, y := back(f.Box.X+f.Box.W/2, f.Box.Y+f.Box.H/2)
					gi := -1
					for j, o := range originals[i] {
						if x >= o.Box.X && x <= o.Box.X+o.Box.W && y >= o.Box.Y && y <= o.Box.Y+o.Box.H {
							gi = j
						}
					}
					if gi < 0 {
						continue
					}
					found++
					g := originals[i][gi]
					sum += Distance(f.Descriptor, g.Descriptor)
					best, bd := -1, math.Inf(1)
					for j, o := range all {
						if d := Distance(o.Descriptor, f.Descriptor); d < bd {
							best, bd = j, d
						}
					}
					if all[best].Descriptor == g.Descriptor {
						right++
					}
				}
			}
			score[eng.name] += right
			score[eng.name+" found"] += found
			t.Logf("%-8s %-10s faces %d/%d, re-identified %d, mean distance to the original %.3f", eng.name, p.name, found, total, right, sum/float64(max(found, 1)))
		}
	}
	t.Logf("re-identified: margin %d of %d, aligned %d of %d", score["margin"], score["margin found"], score["aligned"], score["aligned found"])
	if score["aligned"] < score["margin"] {
		t.Errorf("aligned crops re-identify %d faces, margin crops %d", score["aligned"], score["margin"])
	}
	if 100*score["aligned"] < 95*score["aligned found"] {
		t.Errorf("aligned crops re-identify %d of %d faces, want at least 95%%", score["aligned"], score["aligned found"])
	}
}
