package main

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/imageio"
)

func init() {
	register(command{
		name:    "bench",
		summary: "measure the face engine on this machine: descriptors per second per core",
		run:     runBench,
	})
}

// benchPhoto is the model's demo photo whose largest face is described.
const benchPhoto = "demo/sample1.jpg"

func runBench(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "bench")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: facecloud bench [flags]

Describes one fixed face (the largest face of the model's %s) -n
times on each of --cores cores at once and prints descriptors per second
per core, the milliseconds one takes, the kernels in use (avx512, avx2,
neon or portable; %s picks another) and GOARCH. Run it on the
instance type to be measured, with nothing else running.

flags:
`, benchPhoto, nn.EnvKernel)
		fs.PrintDefaults()
	}
	modelsDir := fs.String("models", modelsDirDefault(env), "model cache directory (env FACECLOUD_MODELS)")
	n := fs.Int("n", 200, "descriptors per core (1..100000)")
	cores := fs.Int("cores", runtime.GOMAXPROCS(0), fmt.Sprintf("cores to run on at once (1..%d)", runtime.GOMAXPROCS(0)))
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError(env, fs, "takes no arguments")
	case *n < 1 || *n > 100000:
		return usageError(env, fs, fmt.Sprintf("-n %d outside 1..100000", *n))
	case *cores < 1 || *cores > runtime.GOMAXPROCS(0):
		return usageError(env, fs, fmt.Sprintf("--cores %d outside 1..%d", *cores, runtime.GOMAXPROCS(0)))
	}
	e, err := loadEngine(ctx, newLogger(env), *modelsDir)
	if err != nil {
		return err
	}
	faceImg, err := benchFace(ctx, e, filepath.Join(*modelsDir, filepath.FromSlash(benchPhoto)))
	if err != nil {
		return err
	}
	if _, err := e.DescribeFace(faceImg); err != nil { // warm up
		return fmt.Errorf("describe %s: %w", benchPhoto, err)
	}
	elapsed, err := describeTimes(ctx, e, faceImg, *n, *cores)
	if err != nil {
		return err
	}
	perCore := float64(*n) / elapsed.Seconds()
	fmt.Fprintf(env.stdout, "kernel %s (this machine runs %s), GOARCH %s, %d of %d cores\n",
		nn.Kernel(), strings.Join(nn.Kernels(), ", "), runtime.GOARCH, *cores, runtime.NumCPU())
	fmt.Fprintf(env.stdout, "%d descriptors in %.2f s: %.1f per second per core, %.2f ms each\n",
		*n**cores, elapsed.Seconds(), perCore, 1e3/perCore)
	return nil
}

// benchFace is the largest face the engine finds in the photo at path,
// cropped to its box.
func benchFace(ctx context.Context, e *face.Engine, path string) (image.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench photo: %w (run facecloud models fetch)", err)
	}
	img, err := imageio.Decode(data, imageio.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	rec, err := e.DescribeImage(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", path, err)
	}
	if len(rec.Faces) == 0 || rec.Whole {
		return nil, fmt.Errorf("no face detected in %s", path)
	}
	b := rec.Faces[0].Box
	return img.SubImage(image.Rect(int(b.X), int(b.Y), int(b.X+b.W), int(b.Y+b.H))), nil
}

// describeTimes describes img n times on each of cores goroutines, all
// started together, and returns the time until the last one finished.
func describeTimes(ctx context.Context, e *face.Engine, img image.Image, n, cores int) (time.Duration, error) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, cores)
	for c := range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range n {
				if err := ctx.Err(); err != nil {
					errs[c] = err
					return
				}
				if _, err := e.DescribeFace(img); err != nil {
					errs[c] = err
					return
				}
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("describe: %w", err)
		}
	}
	return elapsed, nil
}
