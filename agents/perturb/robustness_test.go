package perturb_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/models"
	"github.com/facecloud/facecloud/agents/perturb"

	"github.com/facecloud/facecloud/internal/testenv"
)

// referenceFile is what scripts/robustness.sh records from the reference.
type referenceFile struct {
	Reference struct {
		Threshold float64 `json:"threshold"`
	} `json:"reference"`
	Correct int `json:"correct"`
	Total   int `json:"total"`
	Answers []struct {
		File     string  `json:"file"`
		SHA256   string  `json:"sha256"`
		Want     string  `json:"want"`
		Got      string  `json:"got"`
		Distance float64 `json:"distance"`
	} `json:"answers"`
}

func loadEngine(t *testing.T) *face.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := models.DefaultDir()
	if err := models.Ensure(ctx, dir); err != nil {
		t.Fatalf("model files: %v", err)
	}
	e, err := face.Load(dir, face.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func describe(t *testing.T, e *face.Engine, data []byte) face.Recognition {
	t.Helper()
	img, err := imageio.Decode(data, imageio.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.DescribeImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestRobustness regenerates the perturbed copies of the course faces,
// checks they are byte-identical to the ones the reference was run on, and
// requires the Go engine to name the right person at least as often as the
// reference did.
func TestRobustness(t *testing.T) {
	dataset := testenv.Dataset(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "robustness", "reference.json"))
	if err != nil {
		t.Fatalf("reference answers (run scripts/robustness.sh): %v", err)
	}
	var ref referenceFile
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	course, err := perturb.LoadCourse(dataset)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copies, err := perturb.Write(dir, course.Stems, course.Images)
	if err != nil {
		t.Fatal(err)
	}
	if len(copies) != len(ref.Answers) || len(copies) != ref.Total {
		t.Fatalf("generated %d copies, the reference answered %d", len(copies), len(ref.Answers))
	}
	e := loadEngine(t)
	var entries []gallery.Entry
	for _, s := range course.Stems {
		rec := describe(t, e, course.Data[s])
		if !rec.Whole || len(rec.Faces) != 1 {
			t.Fatalf("gallery face %s: whole=%v faces=%d, want one whole-image face", s, rec.Whole, len(rec.Faces))
		}
		entries = append(entries, gallery.Entry{V: gallery.Version, Person: course.Labels[s], ID: s, Descriptor: rec.Faces[0].Descriptor})
	}
	g := gallery.ViewOf(gallery.DefaultCollection, entries)
	goRight := 0
	for i, c := range copies {
		a := ref.Answers[i]
		data, err := os.ReadFile(filepath.Join(dir, c.File))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if a.File != c.File || a.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("copy %s differs from the reference's %s: regenerate with scripts/robustness.sh", c.File, a.File)
		}
		rec := describe(t, e, data)
		got := gallery.Unknown
		dist := -1.0
		if len(rec.Faces) > 0 {
			got, dist = g.Match(rec.Faces[0].Descriptor, ref.Reference.Threshold, false)
		}
		if got == a.Want {
			goRight++
		}
		if got != a.Want || a.Got != a.Want {
			t.Logf("%-24s want %-7s go %-7s (%.3f)  reference %-7s (%.3f)", c.File, a.Want, got, dist, a.Got, a.Distance)
		}
	}
	t.Logf("robustness on %d copies: Go %d right (%.1f%%), reference %d right (%.1f%%)",
		len(copies), goRight, 100*float64(goRight)/float64(len(copies)), ref.Correct, 100*float64(ref.Correct)/float64(ref.Total))
	if goRight < ref.Correct {
		t.Errorf("Go named %d of %d right, fewer than the reference's %d", goRight, len(copies), ref.Correct)
	}
}
