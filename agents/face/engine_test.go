package face

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/models"
)

func TestOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		opts Options
		want string
	}{
		"defaults":             {Options{}, ""},
		"input not 32k":        {Options{DetectorInputSize: 400}, "multiple of 32 from 128 to 1024"},
		"input too big":        {Options{DetectorInputSize: 2048}, "multiple of 32 from 128 to 1024"},
		"threshold 1":          {Options{ScoreThreshold: 1}, "between 0 and 1"},
		"negative threshold":   {Options{ScoreThreshold: -0.1}, "between 0 and 1"},
		"margin over 1":        {Options{Margin: 1.5}, "fraction from 0 to 1"},
		"always detect":        {Options{WholeMaxSide: -1}, ""},
		"bad limits":           {Options{Limits: imageio.Limits{MaxBytes: -1, MaxPixels: 10}}, "image limits"},
		"custom input size":    {Options{DetectorInputSize: 608}, ""},
		"custom low threshold": {Options{ScoreThreshold: 0.3}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	loadEngine(t) // makes sure the model is in the cache
	src := models.DefaultDir()
	copyModel := func(t *testing.T, edit func(name string, b []byte) []byte) string {
		dir := t.TempDir()
		for _, n := range []string{RecognitionManifest, "face_recognition_model.bin", DetectorManifest, "tiny_face_detector_model.bin"} {
			b, err := os.ReadFile(filepath.Join(src, n))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n), edit(n, b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := map[string]struct {
		edit func(name string, b []byte) []byte
		want string
	}{
		"truncated shard": {func(n string, b []byte) []byte {
			if n == "face_recognition_model.bin" {
				return b[:len(b)-100]
			}
			return b
		}, "load recognition net"},
		"changed shape": {func(n string, b []byte) []byte {
			if n == DetectorManifest {
				return bytes.Replace(b, []byte(`"shape":[1,1,512,25]`), []byte(`"shape":[1,1,512,20]`), 1)
			}
			return b
		}, "load face detector"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(copyModel(t, tc.edit), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "none"), Options{}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := Load(src, Options{Margin: 2}); err == nil || !strings.Contains(err.Error(), "margin") {
			t.Fatalf("err = %v", err)
		}
	})
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDescribeRules(t *testing.T) {
	e := loadEngine(t)
	ctx := context.Background()
	g := loadGolden(t)

	t.Run("small face described whole", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(goldenDir, g.Cases[0].Pixels))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := e.Describe(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Whole || len(rec.Faces) != 1 || rec.Faces[0].Score < DefaultCropScore {
			t.Fatalf("whole=%v faces=%+v, want one whole face passing the crop check", rec.Whole, rec.Faces)
		}
		if d := maxAbsDiff(rec.Faces[0].Descriptor, g.Cases[0].Descriptor); d > 1e-3 {
			t.Errorf("max |Δ| = %v", d)
		}
	})

	t.Run("photo detected, largest first", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(models.DefaultDir(), "demo", "sample5.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := e.Describe(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Whole || len(rec.Faces) != 5 {
			t.Fatalf("whole=%v faces=%d, want 5 detected faces", rec.Whole, len(rec.Faces))
		}
		for i := 1; i < len(rec.Faces); i++ {
			a, b := rec.Faces[i-1].Box, rec.Faces[i].Box
			if a.W*a.H < b.W*b.H {
				t.Errorf("face %d (area %.0f) before a larger one (%.0f)", i-1, a.W*a.H, b.W*b.H)
			}
		}
		if rec.Timings.Detect <= 0 || rec.Timings.Describe <= 0 || rec.Timings.Decode <= 0 {
			t.Errorf("timings %+v, want all set", rec.Timings)
		}
	})

	t.Run("no face in a large image", func(t *testing.T) {
		img := image.NewRGBA(image.Rect(0, 0, 300, 200))
		for i := range img.Pix {
			img.Pix[i] = 200
		}
		rec, err := e.DescribeImage(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Whole || len(rec.Faces) != 0 {
			t.Errorf("whole=%v faces=%d, want no face", rec.Whole, len(rec.Faces))
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.DescribeImage(c, image.NewGray(image.Rect(0, 0, 10, 10))); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// TestDescribeBadInput: bad bytes give an error wrapping imageio's, tiny or
// odd images give a result; nothing panics.
func TestDescribeBadInput(t *testing.T) {
	e := loadEngine(t)
	face := encodePNG(t, readPNG(t, loadGolden(t).Cases[0].Pixels))
	gray := image.NewGray(image.Rect(0, 0, 40, 30))
	alpha := image.NewNRGBA(image.Rect(0, 0, 20, 20))
	for i := range alpha.Pix {
		alpha.Pix[i] = uint8(i)
	}
	tests := map[string]struct {
		data    []byte
		wantErr error
	}{
		"empty":          {nil, imageio.ErrEmpty},
		"text":           {[]byte("this is not an image\n"), imageio.ErrUnsupported},
		"truncated png":  {face[:len(face)/2], imageio.ErrCorrupt},
		"1x1":            {encodePNG(t, image.NewRGBA(image.Rect(0, 0, 1, 1))), nil},
		"grayscale":      {encodePNG(t, gray), nil},
		"alpha channel":  {encodePNG(t, alpha), nil},
		"one-pixel-high": {encodePNG(t, image.NewRGBA(image.Rect(0, 0, 500, 1))), nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec, err := e.Describe(context.Background(), tc.data)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if errors.Is(err, imageio.ErrTooSmall) {
				return // imageio's documented minimum size
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Width < 1 || rec.Height < 1 {
				t.Errorf("size %dx%d", rec.Width, rec.Height)
			}
		})
	}
}

// TestConcurrentDescribe runs one engine from many goroutines and wants the
// same descriptors as a serial run.
func TestConcurrentDescribe(t *testing.T) {
	e := loadEngine(t)
	g := loadGolden(t)
	var imgs []image.Image
	var want []Descriptor
	for _, c := range g.Cases {
		if c.Kind != "face" {
			continue
		}
		img := readPNG(t, c.Pixels)
		d, err := e.DescribeFace(img)
		if err != nil {
			t.Fatal(err)
		}
		imgs, want = append(imgs, img), append(want, d)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range imgs {
				j := (i + w) % len(imgs)
				rec, err := e.DescribeImage(context.Background(), imgs[j])
				if err != nil || len(rec.Faces) != 1 || rec.Faces[0].Descriptor != want[j] {
					errs <- "image " + g.Cases[j].File + " differs when described concurrently"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}
