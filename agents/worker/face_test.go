package worker

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image/jpeg"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/models"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
	"github.com/facecloud/facecloud/agents/thumbs"

	"github.com/facecloud/facecloud/internal/testenv"
)

// courseImages reads a zip of the course dataset into stem -> bytes, and its
// labels; it skips the test when the dataset is absent.
func courseImages(t *testing.T, set string) (map[string][]byte, map[string]string) {
	t.Helper()
	ds := testenv.Dataset(t)
	zr, err := zip.OpenReader(filepath.Join(ds, "face_images_"+set+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	images := map[string][]byte{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".jpg") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		images[job.Stem(f.Name)] = b
	}
	lf, err := os.Open(filepath.Join(ds, "classification_"+set+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	rows, err := csv.NewReader(lf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, r := range rows[1:] {
		labels[r[0]] = r[1]
	}
	return images, labels
}

// TestFaceRecognizer enrols the course gallery through the worker's real
// Recognizer (face engine + gallery in a file store) and recognises
// requests from the 1000-image set.
func TestFaceRecognizer(t *testing.T) {
	gal, galLabels := courseImages(t, "100")
	reqs, reqLabels := courseImages(t, "1000")
	ctx := context.Background()
	dir := models.DefaultDir()
	if err := models.Ensure(ctx, dir); err != nil {
		t.Fatalf("models: %v", err)
	}
	engine, err := face.Load(dir, face.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := blobstore.OpenURL(ctx, &url.URL{Scheme: "file", Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fr := &FaceRecognizer{Describer: engine, Gallery: gallery.NewReloader(store), Store: store, Threshold: gallery.DefaultThreshold}

	stems := make([]string, 0, len(gal))
	for s := range gal {
		stems = append(stems, s)
	}
	sort.Strings(stems)
	for _, s := range stems {
		id := job.NewID()
		rec, err := fr.Enroll(ctx, id, galLabels[s], s, gal[s])
		if err != nil {
			t.Fatalf("enrol %s: %v", s, err)
		}
		if len(rec.Faces) != 1 || rec.Faces[0].Name != galLabels[s] {
			t.Fatalf("enrol %s answered %+v", s, rec.Faces)
		}
		if ok, _ := store.Exists(ctx, gallery.Key(galLabels[s], id)); !ok {
			t.Fatalf("enrol %s wrote no gallery entry", s)
		}
		jpg, err := store.Get(ctx, thumbs.Key(id))
		if err != nil {
			t.Fatalf("enrol %s wrote no thumbnail: %v", s, err)
		}
		if m, err := jpeg.Decode(bytes.NewReader(jpg)); err != nil || m.Bounds().Dx() != thumbs.Side {
			t.Fatalf("enrol %s: thumbnail does not decode to %d pixels wide: %v", s, thumbs.Side, err)
		}
	}
	if n := fr.Gallery.Gallery().Len(); n != len(gal) {
		t.Fatalf("gallery has %d faces after %d enrolments: enrolments must be visible at once", n, len(gal))
	}

	checked := 0
	for s, img := range reqs {
		if checked == 100 {
			break
		}
		checked++
		rec, err := fr.Recognize(ctx, img, job.Request{})
		if err != nil {
			t.Fatalf("recognise %s: %v", s, err)
		}
		if len(rec.Faces) == 0 || rec.Faces[0].Name != reqLabels[s] {
			t.Errorf("%s: faces %+v, want %s", s, rec.Faces, reqLabels[s])
		}
		if rec.Elapsed <= 0 || rec.Width == 0 {
			t.Errorf("%s: no engine time or size: %+v", s, rec)
		}
	}

	t.Run("quality filter", func(t *testing.T) {
		img := reqs["test_000"]
		for q, want := range map[string]string{"": reqLabels["test_000"], "medium": reqLabels["test_000"], "high": job.LowQuality} {
			rec, err := fr.Recognize(ctx, img, job.Request{Quality: q})
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Faces) != 1 || rec.Faces[0].Name != want || rec.Faces[0].Quality != "medium" {
				t.Errorf("quality %q: faces %+v, want one medium-quality face named %s", q, rec.Faces, want)
			}
		}
		if _, err := fr.Recognize(ctx, img, job.Request{Quality: "auto"}); err == nil {
			t.Error("quality auto: no error")
		}
	})
	t.Run("bad image is a permanent error", func(t *testing.T) {
		_, err := fr.Recognize(ctx, []byte("this is not an image"), job.Request{})
		if err == nil || isRetryable(err) {
			t.Fatalf("Recognize(text) = %v, want a permanent error", err)
		}
		_, err = fr.Enroll(ctx, job.NewID(), "Ada", "notes", []byte("this is not an image"))
		if err == nil || isRetryable(err) {
			t.Fatalf("Enroll(text) = %v, want a permanent error", err)
		}
	})
	t.Run("gallery store failure is retryable", func(t *testing.T) {
		broken := newMemStore()
		broken.setPutErr(errors.New("disk full"))
		fr := &FaceRecognizer{Describer: engine, Gallery: gallery.NewReloader(broken), Store: broken, Threshold: gallery.DefaultThreshold}
		_, err := fr.Enroll(ctx, job.NewID(), "Ada", "ada", gal[stems[0]])
		if err == nil || !isRetryable(err) || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Enroll with a failing store = %v, want a retryable error", err)
		}
	})
}
