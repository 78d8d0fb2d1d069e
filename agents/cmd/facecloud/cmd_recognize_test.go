package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/models"

	"github.com/facecloud/facecloud/internal/testenv"
)

// runCLI runs facecloud in-process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &environment{stdout: &out, stderr: &errOut, getenv: os.Getenv}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	code = run(ctx, env, args)
	return code, out.String(), errOut.String()
}

// needModels fetches the model files once (npm pack on first use).
func needModels(t *testing.T) string {
	t.Helper()
	dir := models.DefaultDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := models.Ensure(ctx, dir); err != nil {
		t.Fatalf("model files: %v", err)
	}
	return dir
}

// unzip extracts the zip's files flat into a new folder under dir.
func unzip(t *testing.T, zipPath, dir string) string {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(zipPath), ".zip"))
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, filepath.Base(f.Name)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestCourseWorkload enrols the course's 100 labelled images and recognises
// its 1000 requests with the CLI: every answer must agree with
// classification_1000.csv.
func TestCourseWorkload(t *testing.T) {
	dataset := testenv.Dataset(t)
	modelsDir := needModels(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	imgs100 := unzip(t, filepath.Join(dataset, "face_images_100.zip"), tmp)
	imgs1000 := unzip(t, filepath.Join(dataset, "face_images_1000.zip"), tmp)

	code, out, errOut := runCLI(t, "enroll", "--data", data, "--models", modelsDir,
		"--images", imgs100, "--labels", filepath.Join(dataset, "classification_100.csv"))
	if code != 0 {
		t.Fatalf("enroll exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 100 {
		t.Errorf("enroll printed %d lines, want 100", n)
	}

	t0 := time.Now()
	code, out, errOut = runCLI(t, "recognize", "--data", data, "--models", modelsDir, imgs1000)
	took := time.Since(t0)
	if code != 0 {
		t.Fatalf("recognize exit %d: %s", code, errOut)
	}
	fh, err := os.Open(filepath.Join(dataset, "classification_1000.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range rows[1:] {
		want[r[0]] = r[1]
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	agree, shown := 0, 0
	for _, l := range lines {
		stem, name, _ := strings.Cut(l, ":")
		if w, ok := want[stem]; ok && w == name {
			agree++
		} else if shown++; shown <= 10 {
			t.Logf("disagrees: %s (want %s)", l, w)
		}
	}
	t.Logf("course workload: %d of %d answers agree with classification_1000.csv; recognize took %v", agree, len(want), took.Round(time.Millisecond))
	if agree != len(want) || len(lines) != len(want) {
		t.Errorf("%d of %d answers agree (%d lines printed), want all", agree, len(want), len(lines))
	}
}

// testFace is one of the course's 64x64 faces (as the reference decoded
// them, in testdata/reference) re-encoded as a JPEG: the engine takes it as
// a face crop and describes it whole.
func testFace(t *testing.T, n int) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "testdata", "reference", "pixels", fmt.Sprintf("face-test_%02d.png", n)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRecognizeBadInputsAndJSON(t *testing.T) {
	modelsDir := needModels(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	good := filepath.Join(tmp, "good.jpg")
	other := filepath.Join(tmp, "other.jpg")
	truncated := filepath.Join(tmp, "truncated.jpg")
	text := filepath.Join(tmp, "text.jpg")
	empty := filepath.Join(tmp, "empty.png")
	face1, face2 := testFace(t, 0), testFace(t, 2)
	for p, b := range map[string][]byte{good: face1, other: face2, truncated: face1[:len(face1)/2], text: []byte("hello, not an image\n"), empty: nil} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Enrol one good image; the bad one fails alone.
	code, out, errOut := runCLI(t, "enroll", "--data", data, "--models", modelsDir, "--person", "Alice", good, text)
	if code != 1 || out != "good:Alice\n" || !strings.Contains(errOut, "text:error: not a supported image") {
		t.Fatalf("enroll exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut = runCLI(t, "recognize", "--data", data, "--models", modelsDir, "--workers", "3", "--threshold", "0.0001", good, truncated, text, other, empty)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if out != "good:Alice\nother:unknown\n" {
		t.Errorf("stdout %q", out)
	}
	for _, want := range []string{"truncated:error: corrupt image: jpeg: ", "text:error: not a supported image: unknown format", "empty:error: empty image: 0 bytes"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	code, out, _ = runCLI(t, "recognize", "--data", data, "--models", modelsDir, "--json", "--nearest", good, other)
	if code != 0 {
		t.Fatalf("json exit %d", code)
	}
	var recs []recognition
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r recognition
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 || recs[0].Name != "good" || recs[1].Name != "other" {
		t.Fatalf("json records %+v", recs)
	}
	g := recs[0]
	// The enrolled image itself: distance 0 but for the gallery's 16-bit
	// copy of its descriptor (under 1e-4, docs/gallery.md).
	if !g.Whole || g.Width != 64 || len(g.Faces) != 1 || g.Faces[0].Name != "Alice" || g.Faces[0].Distance > 1e-4 || g.DescribeMS <= 0 {
		t.Errorf("good image record %+v", g)
	}
	if o := recs[1]; o.Answer != "Alice" || o.Faces[0].Distance <= 0 {
		t.Errorf("--nearest record %+v, want Alice at a positive distance", o)
	}
}

func TestCLIUsage(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		args []string
		code int
		want string
	}{
		"recognize without data":  {[]string{"recognize", "x.jpg"}, 2, "--data is required"},
		"recognize without files": {[]string{"recognize", "--data", dir}, 2, "give image files"},
		"threshold out of range":  {[]string{"recognize", "--data", dir, "--threshold", "3", "x.jpg"}, 2, "outside 0..2"},
		"unknown quality":         {[]string{"recognize", "--data", dir, "--quality", "auto", "x.jpg"}, 2, "none, low, medium or high"},
		"recognize missing file":  {[]string{"recognize", "--data", dir, filepath.Join(dir, "nope.jpg")}, 1, "no such file"},
		"enroll two modes":        {[]string{"enroll", "--data", dir, "--person", "A", "--folders", dir}, 2, "exactly one of"},
		"enroll labels alone":     {[]string{"enroll", "--data", dir, "--labels", "x.csv"}, 2, "go together"},
		"enroll reserved person":  {[]string{"enroll", "--data", dir, "--person", "unknown", "x.jpg"}, 1, "reserved"},
		"models unknown sub":      {[]string{"models", "frob"}, 2, "unknown subcommand"},
		"models verify empty dir": {[]string{"models", "verify", "--dir", dir}, 1, "models fetch"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

func TestInOrder(t *testing.T) {
	items := make([]int, 200)
	for i := range items {
		items[i] = i
	}
	var got []int
	err := inOrder(context.Background(), items, 8, func(i int) int {
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		return i * 2
	}, func(r int) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r != 2*i {
			t.Fatalf("result %d is %d, want %d (order lost)", i, r, 2*i)
		}
	}
	if len(got) != len(items) {
		t.Fatalf("%d results, want %d", len(got), len(items))
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = inOrder(ctx, items, 2, func(i int) int {
		if i == 10 {
			cancel()
		}
		return i
	}, func(int) error { n++; return nil })
	if err == nil || n >= len(items) {
		t.Errorf("cancelled run: err %v after %d results", err, n)
	}
}
