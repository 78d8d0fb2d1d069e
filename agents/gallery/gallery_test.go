package gallery

import (
	"context"
	"errors"
	"fmt"
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
	s, err := blobstore.OpenURL(context.Background(), &url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())})
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

func TestPutLoadMatch(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	for i, p := range []string{"Paul", "Emily", "Emily", "Bob"} {
		e := Entry{Person: p, ID: fmt.Sprintf("id%d", i), Descriptor: axis(i, 1)}
		if err := Put(ctx, st, e); err != nil {
			t.Fatal(err)
		}
	}
	// Keys that are not entries are ignored.
	if err := st.Put(ctx, Prefix+"README.txt", []byte("hi"), ""); err != nil {
		t.Fatal(err)
	}
	g, err := Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 4 || strings.Join(g.People(), ",") != "Bob,Emily,Paul" {
		t.Fatalf("loaded %d entries of %v", g.Len(), g.People())
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
		"beyond but nearest":    {far, DefaultThreshold, true, "Bob", math.Sqrt2}, // ties go to the first key
		"tight threshold":       {near, 0.2, false, Unknown, 0.3},
		"just within threshold": {near, 0.3001, false, "Emily", 0.3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, dist := g.Match(tc.d, tc.threshold, tc.nearest)
			if got != tc.name || math.Abs(dist-tc.dist) > 1e-6 {
				t.Errorf("Match = %s %.6f, want %s %.6f", got, dist, tc.name, tc.dist)
			}
		})
	}
	if name, dist := New(nil).Match(axis(0, 1), DefaultThreshold, true); name != Unknown || dist != -1 {
		t.Errorf("empty gallery Match = %s %v, want unknown -1", name, dist)
	}
	faces := g.Faces(face.Recognition{Faces: []face.Found{{Box: face.Box{X: 1, Y: 2, W: 3, H: 4}, Score: 0.9, Descriptor: axis(3, 1)}}}, DefaultThreshold, false)
	if len(faces) != 1 || faces[0].Name != "Bob" || faces[0].Box.W != 3 || faces[0].Score != 0.9 {
		t.Errorf("Faces = %+v", faces)
	}
}

func TestPutRejects(t *testing.T) {
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
			if err := Put(context.Background(), st, e); err == nil {
				t.Fatal("Put accepted a bad entry")
			}
		})
	}
	keys, err := st.List(context.Background(), Prefix)
	if err != nil || len(keys) != 0 {
		t.Errorf("store holds %v after rejected puts (err %v)", keys, err)
	}
}

func TestLoadRejectsMalformedEntry(t *testing.T) {
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
			if err := Put(ctx, st, Entry{Person: "Paul", ID: "good", Descriptor: axis(0, 1)}); err != nil {
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

func TestReloader(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	r := NewReloader(st)
	if r.Gallery().Len() != 0 {
		t.Fatal("new reloader not empty")
	}
	if err := Put(ctx, st, Entry{Person: "Paul", ID: "p1", Descriptor: axis(0, 1)}); err != nil {
		t.Fatal(err)
	}
	step := func(wantChanged bool, wantLen int) {
		t.Helper()
		changed, err := r.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if changed != wantChanged || r.Gallery().Len() != wantLen {
			t.Fatalf("Refresh changed=%v len=%d, want %v %d", changed, r.Gallery().Len(), wantChanged, wantLen)
		}
	}
	step(true, 1)
	step(false, 1)
	before := r.Gallery()
	if err := Put(ctx, st, Entry{Person: "Bob", ID: "b1", Descriptor: axis(1, 1)}); err != nil {
		t.Fatal(err)
	}
	step(true, 2)
	if before.Len() != 1 {
		t.Error("an old snapshot changed under its reader")
	}
	if name, _ := r.Gallery().Match(axis(1, 1), DefaultThreshold, false); name != "Bob" {
		t.Errorf("new entry not matched: %s", name)
	}
	// A malformed entry fails the refresh and keeps the last good snapshot.
	if err := st.Put(ctx, Key("Eve", "e1"), []byte("{"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Refresh(ctx); err == nil {
		t.Fatal("Refresh accepted a malformed entry")
	}
	if r.Gallery().Len() != 2 {
		t.Errorf("failed refresh replaced the snapshot")
	}
}

func TestEnroll(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	d := describerDouble{"paul.jpg bytes": axis(0, 1)}
	e, _, err := Enroll(ctx, st, d, "Paul", "", "paul.jpg", []byte("paul.jpg bytes"))
	if err != nil {
		t.Fatal(err)
	}
	// The same image again keeps one entry.
	if _, _, err := Enroll(ctx, st, d, "Paul", "", "copy.jpg", []byte("paul.jpg bytes")); err != nil {
		t.Fatal(err)
	}
	keys, err := st.List(ctx, Prefix)
	if err != nil || len(keys) != 1 || keys[0] != Key("Paul", e.ID) {
		t.Fatalf("keys %v (err %v), want one entry %s", keys, err, Key("Paul", e.ID))
	}
	if _, _, err := Enroll(ctx, st, d, "Paul", "", "blank.jpg", []byte("no face here")); !errors.Is(err, ErrNoFace) {
		t.Errorf("Enroll(no face) = %v, want ErrNoFace", err)
	}
	if _, _, err := Enroll(ctx, st, d, "unknown", "", "x", []byte("paul.jpg bytes")); err == nil {
		t.Error("Enroll accepted the reserved name")
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
