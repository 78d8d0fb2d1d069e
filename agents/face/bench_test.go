package face

import (
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/models"
	"golang.org/x/image/draw"
)

// The benchmarks use the same inputs as `scripts/golden.sh bench`: the course
// faces for descriptors, the demo photos for detection. Run them on one core
// (`-cpu 1`) to compare with the single-threaded reference.

func benchFaces(b *testing.B) []rgb {
	g := loadGolden(b)
	var faces []rgb
	for _, c := range g.Cases {
		if c.Kind == "face" {
			faces = append(faces, toRGB(readPNG(b, c.Pixels)))
		}
	}
	return faces
}

func BenchmarkDescribe(b *testing.B) {
	e := loadEngine(b)
	// scripts/bench-face.sh reads this line (go test -v).
	b.Logf("kernel %s of: %s", nn.Kernel(), strings.Join(nn.Kernels(), " "))
	benchEach(b, benchFaces(b), "descriptor", func(m rgb, s *nn.Scratch) { e.recognizer.describe(m, s) })
}

func BenchmarkDetect(b *testing.B) {
	e := loadEngine(b)
	var photos []rgb
	for n := 1; n <= 6; n++ {
		f, err := os.Open(filepath.Join(models.DefaultDir(), "demo", "sample"+string(rune('0'+n))+".jpg"))
		if err != nil {
			b.Fatal(err)
		}
		img, err := jpeg.Decode(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		photos = append(photos, toRGB(img))
	}
	benchEach(b, photos, "detection", func(m rgb, s *nn.Scratch) {
		e.detector.detect(m, DefaultDetectorInputSize, DefaultScoreThreshold, s)
	})
}

// benchEach runs one net on the inputs in turn, sharing one scratch, and
// reports the time per run.
func benchEach(b *testing.B, inputs []rgb, what string, run func(rgb, *nn.Scratch)) {
	s := new(nn.Scratch)
	i := 0
	c0 := cpuTime()
	for b.Loop() {
		run(inputs[i%len(inputs)], s)
		i++
	}
	report(b, c0, what)
}

// report gives wall and CPU milliseconds per operation.
func report(b *testing.B, cpu0 time.Duration, what string) { reportEach(b, cpu0, what, 1) }

// reportEach gives wall and CPU milliseconds per what, each operation
// doing n of them.
func reportEach(b *testing.B, cpu0 time.Duration, what string, n int) {
	per := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/per, "ms/"+what)
	if c := cpuTime(); c > 0 {
		b.ReportMetric(float64((c-cpu0).Microseconds())/1e3/per, "cpu-ms/"+what)
	}
}

// BenchmarkLandmarks measures the landmark net on the course faces (the
// aligned pipeline runs it once per detected face).
func BenchmarkLandmarks(b *testing.B) {
	e := loadEngine(b)
	benchEach(b, benchFaces(b), "landmarks", func(m rgb, s *nn.Scratch) { e.landmarker.landmarks(m, s) })
}

// BenchmarkDescribePhoto is the whole engine on a demo photo's JPEG bytes:
// decode, detect, align and describe every face (sample1: 3 faces).
func BenchmarkDescribePhoto(b *testing.B) {
	e := loadEngine(b)
	data, err := os.ReadFile(filepath.Join(models.DefaultDir(), "demo", "sample1.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	c0 := cpuTime()
	for b.Loop() {
		if _, err := e.Describe(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
	report(b, c0, "photo")
}

// BenchmarkPipeline is the whole engine (detection, alignment, descriptors)
// per image, before and after the detection pyramid and the crop check:
// "before" is face-api's one detector pass (Options.Reference; a face crop
// described whole without a check), "after" the default engine. Inputs: a
// course face (64 px), a demo photo (sample1, 3 faces) and that photo
// enlarged to 2400 × 1600 (where the fine pass runs).
func BenchmarkPipeline(b *testing.B) {
	e := loadEngine(b)
	ref := loadReferenceEngine(b)
	crop := readPNG(b, loadGolden(b).Cases[0].Pixels)
	f, err := os.Open(filepath.Join(models.DefaultDir(), "demo", "sample1.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	photo, err := jpeg.Decode(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	large := image.NewRGBA(image.Rect(0, 0, 2400, 1600))
	draw.BiLinear.Scale(large, large.Bounds(), photo, photo.Bounds(), draw.Src, nil)
	ctx := context.Background()
	for _, in := range []struct {
		name string
		img  image.Image
	}{{"crop64", crop}, {"photo", photo}, {"photo2400", large}} {
		for _, p := range []struct {
			name string
			run  func() error
		}{
			{"before", func() error {
				if in.name == "crop64" {
					_, err := ref.DescribeFace(in.img)
					return err
				}
				_, err := ref.DescribeImage(ctx, in.img)
				return err
			}},
			{"after", func() error { _, err := e.DescribeImage(ctx, in.img); return err }},
		} {
			b.Run(in.name+"/"+p.name, func(b *testing.B) {
				c0 := cpuTime()
				for b.Loop() {
					if err := p.run(); err != nil {
						b.Fatal(err)
					}
				}
				report(b, c0, "image")
			})
		}
	}
}

// BenchmarkBatchBound bounds what running several course faces through the
// networks at once (one call for a worker's queued requests) would save.
// It records the matrix products the default engine runs on one course
// face (crop check, landmarks, descriptor) and runs them again with batch
// times the rows, as a batch of that many faces would: the products' time
// per face at each batch size, beside the whole engine's per face
// (pipeline). Only the products can gain: the rest of the engine
// (Winograd transforms, depthwise layers, pooling, resizing) does the same
// work per face in a batch, so pipeline minus what the products save is
// the best a batched engine could do.
func BenchmarkBatchBound(b *testing.B) {
	e := loadEngine(b)
	crop := readPNG(b, loadGolden(b).Cases[0].Pixels)
	ctx := context.Background()
	stop := nn.TraceProducts()
	_, err := e.DescribeImage(ctx, crop)
	products := stop()
	if err != nil {
		b.Fatal(err)
	}
	if len(products) == 0 {
		b.Fatal("the engine ran no matrix product")
	}
	b.Run("pipeline", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			if _, err := e.DescribeImage(ctx, crop); err != nil {
				b.Fatal(err)
			}
		}
		report(b, c0, "face")
	})
	for _, batch := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("products/batch=%d", batch), func(b *testing.B) {
			// Operands sized for the largest product; their values do not
			// change the time.
			na, nc := 0, 0
			for _, p := range products {
				na = max(na, batch*p.M*p.K)
				nc = max(nc, batch*p.M*p.B.N)
			}
			a, c := make([]float32, na), make([]float32, nc)
			for i := range a {
				a[i] = float32(i%7) / 64
			}
			c0 := cpuTime()
			for b.Loop() {
				for _, p := range products {
					nn.Replay(p, batch*p.M, a, c)
				}
			}
			reportEach(b, c0, "face", batch)
		})
	}
}
