package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imagefiles"
	"github.com/facecloud/facecloud/agents/job"
)

func init() {
	register(command{
		name:    "recognize",
		summary: "name the faces in images from the gallery of a data directory",
		run:     runRecognize,
	})
}

// Answers when there is no single name to give (as the worker answers).
const answerNoFace = "no face"

// recognition is one image's outcome, printed by --json as one line.
type recognition struct {
	File   string     `json:"file"`
	Name   string     `json:"name"`
	Answer string     `json:"answer,omitempty"`
	Error  string     `json:"error,omitempty"`
	Width  int        `json:"width,omitempty"`
	Height int        `json:"height,omitempty"`
	Whole  bool       `json:"whole,omitempty"`
	Faces  []job.Face `json:"faces,omitempty"`
	// Milliseconds spent decoding, detecting and describing.
	DecodeMS   float64 `json:"decode_ms"`
	DetectMS   float64 `json:"detect_ms"`
	DescribeMS float64 `json:"describe_ms"`
}

func runRecognize(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "recognize")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud recognize --data DIR [flags] IMG|DIR|ZIP...

Prints one line per image, "<file name without extension>:<name>", in the
order given (folders in name order). The name is the largest face's nearest
gallery person, "unknown" beyond the threshold, "low quality" when the face
is below --quality, or "no face" when the image has none. An image that
fails prints "<stem>:error: <reason>" on stderr; the others still run and the
exit status is 1.

flags:`)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "data directory; the gallery lives in DIR/store")
	modelsDir := fs.String("models", modelsDirDefault(env), "model cache directory")
	threshold := fs.Float64("threshold", gallery.DefaultThreshold, "largest descriptor distance taken as a match (0..2)")
	collection := fs.String("collection", gallery.DefaultCollection, "collection (named gallery) to name the faces from")
	nearest := fs.Bool("nearest", false, "always answer the nearest gallery name, even beyond --threshold")
	quality := fs.String("quality", gallery.DefaultQuality, "least face quality matched: none, low, medium or high (a face below is \"low quality\")")
	asJSON := fs.Bool("json", false, "print one JSON object per image: faces, boxes, names, distances and timings")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "images recognised at once (1..256)")
	var maxBody int64
	var maxPixels int
	imageLimitFlags(fs, &maxBody, &maxPixels)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	switch {
	case *data == "":
		return usageError(env, fs, "--data is required")
	case fs.NArg() == 0:
		return usageError(env, fs, "give image files, folders or .zip archives")
	case math.IsNaN(*threshold) || *threshold < 0 || *threshold > 2:
		return usageError(env, fs, fmt.Sprintf("--threshold %v outside 0..2", *threshold))
	case *workers < 1 || *workers > 256:
		return usageError(env, fs, fmt.Sprintf("--workers %d outside 1..256", *workers))
	}
	minQuality, err := gallery.ParseQuality(*quality)
	if err != nil {
		return usageError(env, fs, "--quality: "+err.Error())
	}
	if err := existingDataDir(*data); err != nil {
		return err
	}
	if err := gallery.ValidCollection(*collection); err != nil {
		return usageError(env, fs, err.Error())
	}
	files, err := imagefiles.List(fs.Args())
	if err != nil {
		return err
	}
	log := newLogger(env)
	store, err := openStore(ctx, env, localStoreURL(*data))
	if err != nil {
		return err
	}
	defer store.Close()
	followed, err := gallery.Load(ctx, store)
	if err != nil {
		return err
	}
	g := followed.View(*collection)
	if g.Len() == 0 {
		log.Warn("the collection is empty: every face will be unknown (run facecloud enroll)", "data", *data, "collection", *collection)
	}
	engine, err := loadEngine(ctx, log, *modelsDir)
	if err != nil {
		return err
	}
	d := engineDescriber{engine: engine, limits: imageLimits(maxBody, maxPixels)}

	recognize := func(f imagefiles.File) recognition {
		r := recognition{File: f.Name, Name: f.Stem()}
		data, err := f.Read(d.limits.MaxBytes)
		if err == nil {
			rec, derr := d.Describe(ctx, data)
			err = derr
			r.Width, r.Height, r.Whole = rec.Width, rec.Height, rec.Whole
			r.DecodeMS = ms(rec.Timings.Decode)
			r.DetectMS = ms(rec.Timings.Detect)
			r.DescribeMS = ms(rec.Timings.Describe)
			if err == nil {
				r.Faces = g.FacesWith(rec, gallery.MatchOptions{Threshold: *threshold, Nearest: *nearest, MinQuality: minQuality})
				r.Answer = answerNoFace
				if len(r.Faces) > 0 {
					r.Answer = r.Faces[0].Name
				}
			}
		}
		if err != nil {
			r.Error = oneLineErr(err)
		}
		return r
	}

	failed := 0
	out := json.NewEncoder(env.stdout)
	emit := func(r recognition) error {
		if r.Error != "" {
			failed++
			fmt.Fprintf(env.stderr, "%s:error: %s\n", r.Name, r.Error)
		}
		switch {
		case *asJSON:
			return out.Encode(r)
		case r.Error == "":
			_, err := fmt.Fprintf(env.stdout, "%s:%s\n", r.Name, r.Answer)
			return err
		}
		return nil
	}
	t0 := time.Now()
	if err := inOrder(ctx, files, *workers, recognize, emit); err != nil {
		return err
	}
	log.Debug("recognised", "images", len(files), "failed", failed, "took", time.Since(t0).Round(time.Millisecond))
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errSomeFailed, failed, len(files))
	}
	return nil
}

// inOrder runs fn on every item with n goroutines and hands the results to
// emit in the items' order as soon as each one's predecessors are done.
func inOrder[T, R any](ctx context.Context, items []T, n int, fn func(T) R, emit func(R) error) error {
	type done struct {
		i int
		r R
	}
	work := make(chan int)
	results := make(chan done)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Go(func() {
			for i := range work {
				r := fn(items[i])
				select {
				case results <- done{i, r}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(work)
		for i := range items {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	pending := map[int]R{}
	next := 0
	var emitErr error
	for d := range results {
		pending[d.i] = d.r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if emitErr == nil {
				emitErr = emit(r)
			}
		}
	}
	if emitErr != nil {
		return fmt.Errorf("print results: %w", emitErr)
	}
	if next < len(items) {
		return ctx.Err()
	}
	return nil
}

// existingDataDir refuses a data directory that does not exist, for the
// commands that only read one: a typo must not create an empty gallery.
func existingDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("data directory %s does not exist (enrol into it with facecloud enroll --data %s, or check the path)", dir, dir)
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("data directory %s is not a folder", dir)
	}
	return nil
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// oneLineErr is err's text with line breaks flattened.
func oneLineErr(err error) string {
	b := []byte(err.Error())
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
