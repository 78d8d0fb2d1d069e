package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imagefiles"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/thumbs"
)

func init() {
	register(command{
		name:    "enroll",
		summary: "add labelled faces to the gallery of a data directory",
		run:     runEnroll,
	})
}

// errSomeFailed ends a command with status 1 after the per-image errors were
// printed and the other images were processed.
var errSomeFailed = errors.New("some images failed")

func runEnroll(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "enroll")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud enroll --data DIR (--images DIR|ZIP --labels FILE.csv | --folders DIR | --person NAME IMG|DIR|ZIP...)

Describes each labelled image's largest face and adds it to a collection
(--collection, default "default") of the gallery in DIR/store, as one event
of the collection's log. Enrolling the same image again for the same person
keeps one face.

  --images DIR|ZIP --labels FILE.csv
                                   the course's format: CSV "Image,Results", image names without
                                   extension; the images in a folder or a .zip archive read in place
  --folders DIR                    one folder per person: DIR/<person>/*.jpg
  --person NAME IMG|DIR|ZIP...     images (or folders or .zip archives of images) of one person

flags:`)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "data directory; the gallery lives in DIR/store")
	modelsDir := fs.String("models", modelsDirDefault(env), "model cache directory")
	images := fs.String("images", "", "folder or .zip archive of the images named in --labels")
	labels := fs.String("labels", "", "CSV with columns Image,Results")
	folders := fs.String("folders", "", "folder with one subfolder of images per person")
	person := fs.String("person", "", "name of the person in the image arguments")
	collection := fs.String("collection", gallery.DefaultCollection, "collection (named gallery) to enrol into")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "images described at once (1..256)")
	var maxBody int64
	var maxPixels int
	imageLimitFlags(fs, &maxBody, &maxPixels)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usageError(env, fs, "--data is required")
	}
	if *workers < 1 || *workers > 256 {
		return usageError(env, fs, fmt.Sprintf("--workers %d outside 1..256", *workers))
	}
	modes := 0
	for _, set := range []bool{*labels != "" || *images != "", *folders != "", *person != ""} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return usageError(env, fs, "give exactly one of --images/--labels, --folders or --person")
	}
	if err := gallery.ValidCollection(*collection); err != nil {
		return usageError(env, fs, err.Error())
	}
	var items []gallery.Labelled
	switch {
	case *labels != "" || *images != "":
		if *labels == "" || *images == "" {
			return usageError(env, fs, "--images and --labels go together")
		}
		if fs.NArg() > 0 {
			return usageError(env, fs, "no image arguments with --labels")
		}
		l, err := gallery.FromCSV(*images, *labels)
		if err != nil {
			return err
		}
		items = l
	case *folders != "":
		if fs.NArg() > 0 {
			return usageError(env, fs, "no image arguments with --folders")
		}
		l, err := gallery.FromFolders(*folders)
		if err != nil {
			return err
		}
		items = l
	default:
		if err := job.ValidPerson(*person); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usageError(env, fs, "--person needs image files, folders or .zip archives")
		}
		files, err := imagefiles.List(fs.Args())
		if err != nil {
			return err
		}
		for _, f := range files {
			items = append(items, gallery.Labelled{Person: *person, Image: f})
		}
	}

	log := newLogger(env)
	store, err := openStore(ctx, env, localStoreURL(*data))
	if err != nil {
		return err
	}
	defer store.Close()
	engine, err := loadEngine(ctx, log, *modelsDir)
	if err != nil {
		return err
	}
	d := engineDescriber{engine: engine, limits: imageLimits(maxBody, maxPixels)}

	type outcome struct {
		stem, person string
		err          error
	}
	failed := 0
	people := map[string]int{}
	err = inOrder(ctx, items, *workers, func(it gallery.Labelled) outcome {
		e, err := enrollFile(ctx, store, d, *collection, it)
		return outcome{it.Image.Stem(), e.Person, err}
	}, func(o outcome) error {
		if o.err != nil {
			failed++
			_, err := fmt.Fprintf(env.stderr, "%s:error: %s\n", o.stem, oneLineErr(o.err))
			return err
		}
		people[o.person]++
		_, err := fmt.Fprintf(env.stdout, "%s:%s\n", o.stem, o.person)
		return err
	})
	if err != nil {
		return err
	}
	log.Info("enrolled", "faces", len(items)-failed, "people", len(people), "failed", failed, "collection", *collection, "store", localStoreURL(*data))
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d not enrolled", errSomeFailed, failed, len(items))
	}
	return nil
}

// enrollFile enrols one labelled image under an id derived from its bytes.
func enrollFile(ctx context.Context, store platform.Store, d engineDescriber, collection string, it gallery.Labelled) (gallery.Entry, error) {
	data, err := it.Image.Read(d.limits.MaxBytes)
	if err != nil {
		return gallery.Entry{}, err
	}
	e, rec, err := gallery.Enroll(ctx, store, d, collection, it.Person, "", it.Image.Base(), data)
	if err != nil {
		return e, err
	}
	// The face's picture for the console, beside the entry.
	b := rec.Faces[0].Box
	jpg, err := thumbs.FromImage(data, job.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}, d.limits)
	if err == nil {
		err = thumbs.Put(ctx, store, collection, it.Person, e.ID, jpg)
	}
	return e, err
}
