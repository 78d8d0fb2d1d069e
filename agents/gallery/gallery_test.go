package gallery

import (
	"context"
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
)

// openStore opens the real file store adapter in a temporary directory.
func openStore(t *testing.T) platform.Store {
	t.Helper()
	return openStoreDir(t, t.TempDir())
}

func openStoreDir(t *testing.T, dir string) platform.Store {
	t.Helper()
	s, err := blobstore.OpenURL(context.Background(), &url.URL{Scheme: "file", Path: filepath.ToSlash(dir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// axis is a unit descriptor along dimension i, scaled by s: axes are
// sqrt(2)*s apart from each other.
func axis(i int, s float32) face.Descriptor {
	var d face.Descriptor
	d[i] = s
	return d
}

// describerDouble stands in for the face engine: it answers each image's
// bytes with a preset descriptor, or with no face.
type describerDouble map[string]face.Descriptor

func (s describerDouble) Describe(_ context.Context, image []byte) (face.Recognition, error) {
	d, ok := s[string(image)]
	if !ok {
		return face.Recognition{Width: 64, Height: 64}, nil
	}
	return face.Recognition{Width: 64, Height: 64, Whole: true, Faces: []face.Found{{Box: face.Box{W: 64, H: 64}, Score: 1, Descriptor: d}}}, nil
}

func TestMatchAndSimilarity(t *testing.T) {
	v := ViewOf(DefaultCollection, []Entry{
		{Person: "Paul", ID: "id0", Descriptor: axis(0, 1)},
		{Person: "Emily", ID: "id1", Descriptor: axis(1, 1)},
		{Person: "Emily", ID: "id2", Descriptor: axis(2, 1)},
		{Person: "Bob", ID: "id3", Descriptor: axis(3, 1)},
	})
	if v.Len() != 4 || len(v.Persons()) != 3 || v.Persons()[0] != (PersonCount{"Bob", 1}) {
		t.Fatalf("view of %d faces, persons %v", v.Len(), v.Persons())
	}
	near := axis(2, 1)
	near[0] = 0.3 // 0.3 from Emily's id2, ~1.04 from Paul
	far := axis(10, 1)
	tests := map[string]struct {
		d         face.Descriptor
		threshold float64
		nearest   bool
		name      string
		dist      float64
	}{
		"exact":                 {axis(0, 1), DefaultThreshold, false, "Paul", 0},
		"close":                 {near, DefaultThreshold, false, "Emily", 0.3},
		"beyond threshold":      {far, DefaultThreshold, false, Unknown, math.Sqrt2},
		"beyond but nearest":    {far, DefaultThreshold, true, "Bob", math.Sqrt2}, // ties go to the first person
		"tight threshold":       {near, 0.2, false, Unknown, 0.3},
		"just within threshold": {near, 0.3001, false, "Emily", 0.3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, dist := v.Match(tc.d, tc.threshold, tc.nearest)
			if got != tc.name || math.Abs(dist-tc.dist) > 1e-6 {
				t.Errorf("Match = %s %.6f, want %s %.6f", got, dist, tc.name, tc.dist)
			}
		})
	}
	if name, dist := ViewOf("x", nil).Match(axis(0, 1), DefaultThreshold, true); name != Unknown || dist != -1 {
		t.Errorf("empty gallery Match = %s %v, want unknown -1", name, dist)
	}
	sims := map[float64]float64{0: 1, DefaultThreshold: 0.5, 2 * DefaultThreshold: 1.0 / 17, -1: 0}
	for d, want := range sims {
		if got := Similarity(d); math.Abs(got-want) > 1e-12 {
			t.Errorf("Similarity(%v) = %v, want %v", d, got, want)
		}
	}
	for d := 0.0; d < 2; d += 0.01 {
		if Similarity(d+0.01) >= Similarity(d) {
			t.Fatalf("Similarity is not decreasing at %v", d)
		}
	}
}

func TestPutLegacyRejects(t *testing.T) {
	st := openStore(t)
	nan := axis(0, 1)
	nan[5] = float32(math.NaN())
	tests := map[string]Entry{
		"reserved name":   {Person: "unknown", ID: "a", Descriptor: axis(0, 1)},
		"slash in name":   {Person: "a/b", ID: "a", Descriptor: axis(0, 1)},
		"empty id":        {Person: "Paul", Descriptor: axis(0, 1)},
		"dots in id":      {Person: "Paul", ID: "../x", Descriptor: axis(0, 1)},
		"zero descriptor": {Person: "Paul", ID: "a"},
		"NaN descriptor":  {Person: "Paul", ID: "a", Descriptor: nan},
		"future version":  {V: 2, Person: "Paul", ID: "a", Descriptor: axis(0, 1)},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			if err := PutLegacy(context.Background(), st, e); err == nil {
				t.Fatal("PutLegacy accepted a bad entry")
			}
			if err := AddFace(context.Background(), st, DefaultCollection, e); err == nil {
				t.Fatal("AddFace accepted a bad entry")
			}
		})
	}
	for _, prefix := range []string{Prefix, CollectionsPrefix} {
		keys, err := st.List(context.Background(), prefix)
		if err != nil || len(keys) != 0 {
			t.Errorf("store holds %v after rejected puts (err %v)", keys, err)
		}
	}
}

func TestLoadRejectsMalformedLegacyEntry(t *testing.T) {
	ctx := context.Background()
	tests := map[string]string{
		"not json":      "{",
		"wrong person":  `{"v":1,"person":"Bob","id":"x","descriptor":[1]}`,
		"bad version":   `{"v":9,"person":"Paul","id":"x","descriptor":[1]}`,
		"no descriptor": `{"v":1,"person":"Paul","id":"x"}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			st := openStore(t)
			if err := PutLegacy(ctx, st, Entry{Person: "Paul", ID: "good", Descriptor: axis(0, 1)}); err != nil {
				t.Fatal(err)
			}
			if err := st.Put(ctx, Key("Paul", "x"), []byte(body), ""); err != nil {
				t.Fatal(err)
			}
			_, err := Load(ctx, st)
			if err == nil || !strings.Contains(err.Error(), Key("Paul", "x")) {
				t.Fatalf("Load = %v, want an error naming %s", err, Key("Paul", "x"))
			}
		})
	}
}

func TestEnroll(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	d := describerDouble{"paul.jpg bytes": axis(0, 1)}
	e, _, err := Enroll(ctx, st, d, DefaultCollection, "Paul", "", "paul.jpg", []byte("paul.jpg bytes"))
	if err != nil {
		t.Fatal(err)
	}
	// The same image again keeps one face.
	if _, _, err := Enroll(ctx, st, d, DefaultCollection, "Paul", "", "copy.jpg", []byte("paul.jpg bytes")); err != nil {
		t.Fatal(err)
	}
	f := NewIndexFollower(st)
	if _, err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	faces := f.View(DefaultCollection).Faces("Paul")
	if len(faces) != 1 || faces[0].ID != e.ID || faces[0].Source != "copy.jpg" {
		t.Fatalf("faces %+v, want one face %s from copy.jpg", faces, e.ID)
	}
	if _, _, err := Enroll(ctx, st, d, DefaultCollection, "Paul", "", "blank.jpg", []byte("no face here")); !errors.Is(err, ErrNoFace) {
		t.Errorf("Enroll(no face) = %v, want ErrNoFace", err)
	}
	if _, _, err := Enroll(ctx, st, d, DefaultCollection, "unknown", "", "x", []byte("paul.jpg bytes")); err == nil {
		t.Error("Enroll accepted the reserved name")
	}
	if _, _, err := Enroll(ctx, st, d, "no/such", "Paul", "", "x", []byte("paul.jpg bytes")); err == nil {
		t.Error("Enroll accepted a bad collection name")
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFromCSV(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"test_00.jpg", "test_01.JPG", "test_02.png", "dup.jpg", "dup.png", "notes.txt"} {
		write(t, filepath.Join(dir, n), "x")
	}
	tests := map[string]struct {
		csv  string
		want string // "person:file ..." or an error fragment after "!"
	}{
		"course format":      {"Image,Results\ntest_00,Paul\ntest_01,Emily\ntest_02,Bob\n", "Paul:test_00.jpg Emily:test_01.JPG Bob:test_02.png"},
		"bom and spaces":     {"\ufeffImage, Results\r\ntest_00, Paul\r\n", "Paul:test_00.jpg"},
		"name with ext":      {"Image,Results\ndup.png,Bob\n", "Bob:dup.png"},
		"repeated same":      {"Image,Results\ntest_00,Paul\ntest_00,Paul\n", "Paul:test_00.jpg"},
		"missing image":      {"Image,Results\ntest_09,Paul\n", "!line 2: no image test_09"},
		"ambiguous stem":     {"Image,Results\ndup,Paul\n", "!ambiguous"},
		"conflicting labels": {"Image,Results\ntest_00,Paul\ntest_00,Bob\n", "!labelled both Paul and Bob"},
		"bad header":         {"file,name\ntest_00,Paul\n", "!want Image,Results"},
		"empty":              {"", "!empty file"},
		"header only":        {"Image,Results\n", "!no rows"},
		"three columns":      {"Image,Results\ntest_00,Paul,x\n", "!wrong number of fields"},
		"reserved name":      {"Image,Results\ntest_00,unknown\n", "!reserved"},
		"not a txt image":    {"Image,Results\nnotes,Paul\n", "!no image notes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			labels := filepath.Join(t.TempDir(), "labels.csv")
			write(t, labels, tc.csv)
			got, err := FromCSV(dir, labels)
			if frag, isErr := strings.CutPrefix(tc.want, "!"); isErr {
				if err == nil || !strings.Contains(err.Error(), frag) {
					t.Fatalf("FromCSV = %v, %v; want error containing %q", got, err, frag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, l := range got {
				parts = append(parts, l.Person+":"+l.Image.Base())
			}
			if s := strings.Join(parts, " "); s != tc.want {
				t.Errorf("FromCSV = %s, want %s", s, tc.want)
			}
		})
	}
}

func TestFromFolders(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "Paul", "a.jpg"), "x")
	write(t, filepath.Join(root, "Paul", "b.png"), "x")
	write(t, filepath.Join(root, "Paul", "notes.txt"), "x")
	write(t, filepath.Join(root, "Emily Blunt", "c.jpeg"), "x")
	write(t, filepath.Join(root, ".hidden", "d.jpg"), "x")
	write(t, filepath.Join(root, "stray.jpg"), "x")
	got, err := FromFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, l := range got {
		parts = append(parts, l.Person+":"+l.Image.Base())
	}
	if s := strings.Join(parts, " "); s != "Emily Blunt:c.jpeg Paul:a.jpg Paul:b.png" {
		t.Errorf("FromFolders = %s", s)
	}
	write(t, filepath.Join(root, "Empty", "readme.md"), "x")
	if _, err := FromFolders(root); err == nil || !strings.Contains(err.Error(), "Empty has no images") {
		t.Errorf("FromFolders with an empty person = %v", err)
	}
	if _, err := FromFolders(filepath.Join(root, "nope")); err == nil {
		t.Error("FromFolders on a missing folder succeeded")
	}
}
