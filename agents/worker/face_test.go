package worker

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image/jpeg"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
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

// TestFaceRecognizer runs every kind of request through the worker's real
// Recognizer (face engine + collections in a file store): it enrols the
// course gallery into two collections, recognises and searches requests
// of the 1000-image set, detects faces with their landmarks and verifies
// pairs of images and images against persons.
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
	fr := &FaceRecognizer{Engine: engine, Gallery: gallery.NewFollower(store), Store: store, Threshold: gallery.DefaultThreshold}
	run := func(req job.Request, images ...[]byte) (Recognition, error) {
		if req.ID == "" {
			req.ID = job.NewID()
		}
		return fr.Process(ctx, req, images)
	}

	stems := make([]string, 0, len(gal))
	for s := range gal {
		stems = append(stems, s)
	}
	sort.Strings(stems)
	// The default collection gets every face; "half" only the even ones,
	// under the client's ids.
	for i, s := range stems {
		rec, err := run(job.Request{Kind: job.KindEnroll, Person: galLabels[s], Name: s}, gal[s])
		if err != nil {
			t.Fatalf("enrol %s: %v", s, err)
		}
		if len(rec.Faces) != 1 || rec.Faces[0].Name != galLabels[s] || rec.Faces[0].FaceID != gallery.ContentID(gal[s]) {
			t.Fatalf("enrol %s answered %+v", s, rec.Faces)
		}
		if i%2 == 0 {
			if _, err := run(job.Request{Kind: job.KindEnroll, Collection: "half", Person: galLabels[s], FaceID: "ext-" + s, Name: s}, gal[s]); err != nil {
				t.Fatalf("enrol %s in half: %v", s, err)
			}
		}
		// Each enrolment keeps its own thumbnail, under its collection,
		// person and face.
		keys := []string{thumbs.Key(gallery.DefaultCollection, galLabels[s], gallery.ContentID(gal[s]))}
		if i%2 == 0 {
			keys = append(keys, thumbs.Key("half", galLabels[s], "ext-"+s))
		}
		for _, k := range keys {
			jpg, err := store.Get(ctx, k)
			if err != nil {
				t.Fatalf("enrol %s wrote no thumbnail %s: %v", s, k, err)
			}
			if m, err := jpeg.Decode(bytes.NewReader(jpg)); err != nil || m.Bounds().Dx() != thumbs.Side {
				t.Fatalf("enrol %s: thumbnail %s does not decode to %d pixels wide: %v", s, k, thumbs.Side, err)
			}
		}
	}
	// The course's 100 images are 10 photos repeated: enrolling the same
	// photo again keeps one face.
	distinct := map[string]bool{}
	for _, s := range stems {
		distinct[gallery.ContentID(gal[s])] = true
	}
	if n := fr.Gallery.View(gallery.DefaultCollection).Len(); n != len(distinct) {
		t.Fatalf("gallery has %d faces after enrolling %d photos: enrolments must be visible at once", n, len(distinct))
	}
	// Enrolling again under the same id (a retry) adds nothing.
	if _, err := run(job.Request{Kind: job.KindEnroll, Collection: "half", Person: galLabels[stems[0]], FaceID: "ext-" + stems[0]}, gal[stems[0]]); err != nil {
		t.Fatal(err)
	}
	if n := fr.Gallery.View("half").Len(); n != (len(gal)+1)/2 {
		t.Fatalf("collection half has %d faces, want %d", n, (len(gal)+1)/2)
	}

	checked := 0
	for s, img := range reqs {
		if checked == 100 {
			break
		}
		checked++
		rec, err := run(job.Request{}, img)
		if err != nil {
			t.Fatalf("recognise %s: %v", s, err)
		}
		if len(rec.Faces) == 0 || rec.Faces[0].Name != reqLabels[s] || rec.Faces[0].FaceID == "" || rec.Faces[0].Similarity < 0.5 {
			t.Errorf("%s: faces %+v, want %s", s, rec.Faces, reqLabels[s])
		}
		if rec.Elapsed <= 0 || rec.Width == 0 {
			t.Errorf("%s: no engine time or size: %+v", s, rec)
		}
	}

	t.Run("quality filter", func(t *testing.T) {
		img := reqs["test_000"]
		for _, kind := range []string{job.KindRecognize, job.KindSearch} {
			for q, want := range map[string]string{"": reqLabels["test_000"], "medium": reqLabels["test_000"], "high": job.LowQuality} {
				rec, err := run(job.Request{Kind: kind, Quality: q}, img)
				if err != nil {
					t.Fatal(err)
				}
				if len(rec.Faces) != 1 || rec.Faces[0].Name != want || rec.Faces[0].Quality != "medium" {
					t.Errorf("%s at quality %q: faces %+v, want one medium-quality face named %s", kind, q, rec.Faces, want)
				}
				// A filtered face is not searched: it has no candidates.
				if searched := len(rec.Faces) == 1 && len(rec.Faces[0].Candidates) > 0; kind == job.KindSearch && searched == (want == job.LowQuality) {
					t.Errorf("search at quality %q: candidates %+v", q, rec.Faces)
				}
			}
		}
		if _, err := run(job.Request{Quality: "auto"}, img); err == nil {
			t.Error("quality auto: no error")
		}
	})
	t.Run("search", func(t *testing.T) {
		s := stems[3]
		rec, err := run(job.Request{Kind: job.KindSearch, Collection: "half", Limit: 5}, gal[s])
		if err != nil {
			t.Fatal(err)
		}
		cs := rec.Faces[0].Candidates
		if len(cs) != 5 {
			t.Fatalf("%d candidates, want 5", len(cs))
		}
		for i, c := range cs {
			if !strings.HasPrefix(c.FaceID, "ext-") || i > 0 && c.Distance < cs[i-1].Distance || c.Similarity != gallery.Similarity(c.Distance) {
				t.Fatalf("candidates %+v", cs)
			}
		}
		// A tight threshold names no one; the candidates stay.
		rec, err = run(job.Request{Kind: job.KindSearch, Limit: 2, Threshold: job.MinThreshold}, reqs[anyStem(reqs)])
		if err != nil {
			t.Fatal(err)
		}
		if f := rec.Faces[0]; len(f.Candidates) != 2 || (f.Distance > job.MinThreshold) != (f.Name == gallery.Unknown) || rec.Threshold != job.MinThreshold {
			t.Fatalf("search at threshold %v: %+v", job.MinThreshold, rec)
		}
		// An unknown collection is empty: every face is unknown.
		rec, err = run(job.Request{Kind: job.KindSearch, Collection: "nobody"}, gal[s])
		if err != nil || rec.Faces[0].Name != gallery.Unknown || len(rec.Faces[0].Candidates) != 0 {
			t.Fatalf("search of an empty collection = %+v, %v", rec, err)
		}
	})
	t.Run("detect", func(t *testing.T) {
		photo, err := os.ReadFile(filepath.Join(dir, "demo", "sample1.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		described, err := engine.Describe(ctx, photo)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := run(job.Request{Kind: job.KindDetect}, photo)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Detections) != len(described.Faces) || len(rec.Detections) < 2 {
			t.Fatalf("%d detections, the recognition found %d faces", len(rec.Detections), len(described.Faces))
		}
		for i, d := range rec.Detections {
			if d.Box != box(described.Faces[i].Box) || len(d.Landmarks) != 68 {
				t.Fatalf("detection %d: %+v, face %+v", i, d.Box, described.Faces[i].Box)
			}
			// The landmarks lie on the face: within its box grown by a third.
			b := d.Box
			for _, p := range d.Landmarks {
				if p.X < b.X-b.W/3 || p.X > b.X+b.W*4/3 || p.Y < b.Y-b.H/3 || p.Y > b.Y+b.H*4/3 {
					t.Fatalf("detection %d: landmark %+v outside box %+v", i, p, b)
				}
			}
		}
	})
	t.Run("verify", func(t *testing.T) {
		// Many of the course's ten people are closer than the threshold at
		// 64 px: take the two farthest apart.
		type shot struct {
			img  []byte
			desc face.Descriptor
		}
		shots := map[string][]shot{}
		seen := map[string]bool{}
		for _, s := range stems {
			if seen[gallery.ContentID(gal[s])] {
				continue
			}
			seen[gallery.ContentID(gal[s])] = true
			rec, err := engine.Describe(ctx, gal[s])
			if err != nil {
				t.Fatal(err)
			}
			shots[galLabels[s]] = append(shots[galLabels[s]], shot{gal[s], rec.Faces[0].Descriptor})
		}
		// who, and a photo of someone else far from every photo of who.
		var who string
		var stranger []byte
		far := 0.0
		for a, as := range shots {
			for b, bs := range shots {
				if a == b {
					continue
				}
				for _, sb := range bs {
					near := math.Inf(1)
					for _, sa := range as {
						near = min(near, face.Distance(sa.desc, sb.desc))
					}
					if near > far {
						far, who, stranger = near, a, sb.img
					}
				}
			}
		}
		if far <= gallery.DefaultThreshold {
			t.Fatalf("no two people are beyond the threshold")
		}
		photo := func(person string, set map[string][]byte, labels map[string]string) []byte {
			for _, s := range slices.Sorted(maps.Keys(set)) {
				if labels[s] == person {
					return set[s]
				}
			}
			t.Fatalf("no photo of %s", person)
			return nil
		}
		tests := map[string]struct {
			req    job.Request
			images [][]byte
			match  bool
			// low: a face is below the request's quality filter.
			low bool
		}{
			"two photos of one person": {job.Request{Kind: job.KindVerify, Input2: "x"}, [][]byte{photo(who, gal, galLabels), photo(who, reqs, reqLabels)}, true, false},
			"two people":               {job.Request{Kind: job.KindVerify, Input2: "x"}, [][]byte{shots[who][0].img, stranger}, false, false},
			"photo and its person":     {job.Request{Kind: job.KindVerify, Person: who}, [][]byte{photo(who, reqs, reqLabels)}, true, false},
			"photo and another person": {job.Request{Kind: job.KindVerify, Person: who, Collection: gallery.DefaultCollection}, [][]byte{stranger}, false, false},
			// The course's 64 px crops are below high quality (too few
			// pixels): the same pair is then no match.
			"one person below the quality asked":  {job.Request{Kind: job.KindVerify, Input2: "x", Quality: "high"}, [][]byte{photo(who, gal, galLabels), photo(who, reqs, reqLabels)}, false, true},
			"photo and its person, quality high":  {job.Request{Kind: job.KindVerify, Person: who, Quality: "high"}, [][]byte{photo(who, reqs, reqLabels)}, false, true},
			"one person, quality none lets it in": {job.Request{Kind: job.KindVerify, Input2: "x", Quality: "none"}, [][]byte{photo(who, gal, galLabels), photo(who, reqs, reqLabels)}, true, false},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				rec, err := run(tc.req, tc.images...)
				if err != nil {
					t.Fatal(err)
				}
				v := rec.Verification
				if v == nil || v.Match != tc.match || v.LowQuality != tc.low || v.Threshold != gallery.DefaultThreshold || v.Similarity != gallery.Similarity(v.Distance) || len(rec.Faces) != len(tc.images) {
					t.Fatalf("verification %+v faces %+v, want match %v, low quality %v", v, rec.Faces, tc.match, tc.low)
				}
				if tc.low && !slices.ContainsFunc(rec.Faces, func(f job.Face) bool { return f.Name == job.LowQuality }) {
					t.Fatalf("faces %+v: none named %q", rec.Faces, job.LowQuality)
				}
				if tc.low && v.Distance > tc.req.Threshold && v.Distance > gallery.DefaultThreshold {
					t.Fatalf("distance %v: the pair must be near, so that only the quality says no", v.Distance)
				}
				if tc.req.Person != "" && (v.Person != tc.req.Person || v.FaceID == "") {
					t.Fatalf("verification against %s names %s/%s", tc.req.Person, v.Person, v.FaceID)
				}
			})
		}
		_, err := run(job.Request{Kind: job.KindVerify, Person: "Nobody"}, photo(who, reqs, reqLabels))
		if err == nil || isRetryable(err) || !strings.Contains(err.Error(), "no face of Nobody in collection default") {
			t.Fatalf("verification against an unknown person = %v", err)
		}
	})
	t.Run("bad image is a permanent error", func(t *testing.T) {
		for _, kind := range []string{job.KindRecognize, job.KindEnroll, job.KindDetect, job.KindSearch} {
			req := job.Request{Kind: kind}
			if kind == job.KindEnroll {
				req.Person = "Ada"
			}
			_, err := run(req, []byte("this is not an image"))
			if err == nil || isRetryable(err) {
				t.Fatalf("%s of text = %v, want a permanent error", kind, err)
			}
		}
	})
	t.Run("gallery store failure is retryable", func(t *testing.T) {
		broken := newMemStore()
		broken.setPutErr(errors.New("disk full"))
		fr := &FaceRecognizer{Engine: engine, Gallery: gallery.NewFollower(broken), Store: broken, Threshold: gallery.DefaultThreshold}
		_, err := fr.Process(ctx, job.Request{ID: job.NewID(), Kind: job.KindEnroll, Person: "Ada"}, [][]byte{gal[stems[0]]})
		if err == nil || !isRetryable(err) || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Enroll with a failing store = %v, want a retryable error", err)
		}
	})
}

func anyStem(m map[string][]byte) string {
	for s := range m {
		return s
	}
	return ""
}
