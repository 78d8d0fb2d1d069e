package face

import (
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/facecloud/facecloud/agents/models"

	"github.com/facecloud/facecloud/agents/face/nn"
	"golang.org/x/image/draw"
)

// goldenFaces are the ten course faces as the reference decoded them.
func goldenFaces(t *testing.T) []image.Image {
	t.Helper()
	var out []image.Image
	for _, c := range loadGolden(t).Cases {
		if c.Kind == "face" && len(out) < 20 {
			out = append(out, readPNG(t, c.Pixels))
		}
	}
	return out
}

func scaled(src image.Image, w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(m, m.Bounds(), src, src.Bounds(), draw.Src, nil)
	return m
}

// TestCropCheck: the course's face crops pass the crop check at their own
// size and enlarged; flat colours, noise and gradients do not.
func TestCropCheck(t *testing.T) {
	e := loadEngine(t)
	s := new(nn.Scratch)
	for i, f := range goldenFaces(t) {
		for _, side := range []int{64, 150} {
			if score, _ := e.cropCheck(toRGB(scaled(f, side, side)), s); score < DefaultCropScore {
				t.Errorf("course face %d at %d px: crop check %.2f < %.2f", i, side, score, DefaultCropScore)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	noise := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(r.IntN(256))
	}
	grad := image.NewRGBA(image.Rect(0, 0, 120, 90))
	for y := range 90 {
		for x := range 120 {
			grad.Set(x, y, color.RGBA{uint8(2 * x), uint8(2 * y), 90, 255})
		}
	}
	red := image.NewRGBA(image.Rect(0, 0, 64, 64))
	draw.Draw(red, red.Bounds(), image.NewUniform(color.RGBA{255, 0, 0, 255}), image.Point{}, draw.Src)
	tests := map[string]image.Image{"noise": noise, "gradient": grad, "red square": red, "red square 600 px": scaled(red, 600, 600)}
	for name, img := range tests {
		t.Run(name, func(t *testing.T) {
			if score, _ := e.cropCheck(toRGB(img), s); score >= DefaultCropScore {
				t.Errorf("crop check %.2f ≥ %.2f on an image without a face", score, DefaultCropScore)
			}
			rec, err := e.DescribeImage(context.Background(), img)
			if err != nil || len(rec.Faces) != 0 {
				t.Errorf("faces %+v, err %v: want none", rec.Faces, err)
			}
		})
	}
}

// TestPyramidFindsCloseUpsAndSmallFaces: a course face enlarged to fill a
// large frame, which the reference pass misses, and faces a few percent of
// a large photo's side, which it is too coarse for, are both found.
func TestPyramidFindsCloseUpsAndSmallFaces(t *testing.T) {
	e := loadEngine(t)
	ref := loadReferenceEngine(t)
	ctx := context.Background()
	faces := goldenFaces(t)
	closeUps, refCloseUps := 0, 0
	for i := 0; i < len(faces); i += 2 { // the originals, not the mirror images
		big := scaled(faces[i], 640, 640)
		rec, err := e.DescribeImage(ctx, big)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Faces) == 1 && !rec.Whole && rec.Faces[0].Box.W > 320 {
			closeUps++
		}
		if r, _ := ref.DescribeImage(ctx, big); len(r.Faces) > 0 {
			refCloseUps++
		}
	}
	t.Logf("course faces enlarged to 640 px: found %d of %d (reference pass alone: %d)", closeUps, len(faces)/2, refCloseUps)
	if closeUps != len(faces)/2 {
		t.Errorf("found %d of %d close-ups", closeUps, len(faces)/2)
	}

	// A demo group photo reduced to a quarter of a 2400 × 1600 photo's
	// width, so its faces are about 3–6 % of the larger photo's side.
	src := describeDemoImage(t, "sample5.jpg")
	orig, err := ref.DescribeImage(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	canvas := image.NewRGBA(image.Rect(0, 0, 2400, 1600))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.RGBA{120, 130, 120, 255}), image.Point{}, draw.Src)
	b := src.Bounds()
	w := 600
	h := b.Dy() * w / b.Dx()
	at := image.Rect(900, 500, 900+w, 500+h)
	draw.CatmullRom.Scale(canvas, at, src, b, draw.Src, nil)
	scale := float64(w) / float64(b.Dx())
	count := func(rec Recognition) int {
		n := 0
		for _, o := range orig.Faces {
			cx := float64(at.Min.X) + scale*(o.Box.X+o.Box.W/2)
			cy := float64(at.Min.Y) + scale*(o.Box.Y+o.Box.H/2)
			for _, f := range rec.Faces {
				if cx >= f.Box.X && cx <= f.Box.X+f.Box.W && cy >= f.Box.Y && cy <= f.Box.Y+f.Box.H {
					n++
					break
				}
			}
		}
		return n
	}
	rec, err := e.DescribeImage(ctx, canvas)
	if err != nil {
		t.Fatal(err)
	}
	refRec, err := ref.DescribeImage(ctx, canvas)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d faces of %.0f px on average in 2400 × 1600: found %d (reference pass alone: %d)", len(orig.Faces), meanWidth(orig)*scale, count(rec), count(refRec))
	if count(rec) < len(orig.Faces)-1 || count(rec) <= count(refRec) {
		t.Errorf("found %d of %d small faces (reference pass alone %d)", count(rec), len(orig.Faces), count(refRec))
	}
}

func meanWidth(rec Recognition) float64 {
	s := 0.0
	for _, f := range rec.Faces {
		s += f.Box.W
	}
	return s / float64(max(1, len(rec.Faces)))
}

// describeDemoImage decodes a demo photo.
func describeDemoImage(t *testing.T, file string) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join(models.DefaultDir(), "demo", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestMergeDetections(t *testing.T) {
	tests := map[string]struct {
		in   []detection
		want int
	}{
		"disjoint kept":          {[]detection{{Box{0, 0, 10, 10}, 0.9}, {Box{50, 50, 10, 10}, 0.8}}, 2},
		"overlapping merged":     {[]detection{{Box{0, 0, 10, 10}, 0.7}, {Box{1, 1, 10, 10}, 0.9}}, 1},
		"nested box merged":      {[]detection{{Box{0, 0, 40, 40}, 0.9}, {Box{10, 10, 12, 12}, 0.6}}, 1},
		"touching boxes both":    {[]detection{{Box{0, 0, 10, 10}, 0.9}, {Box{10, 0, 10, 10}, 0.9}}, 2},
		"nothing gives nothing":  {nil, 0},
		"best of three on a row": {[]detection{{Box{0, 0, 10, 10}, 0.6}, {Box{2, 0, 10, 10}, 0.9}, {Box{4, 0, 10, 10}, 0.7}}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := mergeDetections(tc.in)
			if len(got) != tc.want {
				t.Fatalf("%d boxes kept, want %d: %+v", len(got), tc.want, got)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Score > got[i-1].Score {
					t.Errorf("not sorted by score: %+v", got)
				}
			}
		})
	}
}
