package imagefiles_test

import (
	"archive/zip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/imagefiles"
	"github.com/facecloud/facecloud/agents/imageio"
)

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, p string, entries map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, data := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "faces", "b.jpg"), "B")
	write(t, filepath.Join(dir, "faces", "sub", "a.PNG"), "A")
	write(t, filepath.Join(dir, "faces", "notes.txt"), "x")
	write(t, filepath.Join(dir, "faces", ".hidden.jpg"), "x")
	write(t, filepath.Join(dir, "single.bin"), "S")
	writeZip(t, filepath.Join(dir, "set.zip"), map[string]string{
		"set/test_00.jpg": "Z0", "set/test_01.jpg": "Z1", "__MACOSX/set/._test_00.jpg": "junk", "readme.txt": "x",
	})
	files, err := imagefiles.List([]string{filepath.Join(dir, "faces"), filepath.Join(dir, "single.bin"), filepath.Join(dir, "set.zip")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		data, err := f.Read(0)
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		got = append(got, f.Stem()+"="+string(data))
	}
	if want := "b=B a=A single=S test_00=Z0 test_01=Z1"; strings.Join(got, " ") != want {
		t.Errorf("listed %q, want %q", strings.Join(got, " "), want)
	}
	if !strings.HasSuffix(files[3].Name, "set.zip/set/test_00.jpg") {
		t.Errorf("archive entry shown as %q", files[3].Name)
	}

	byStem, byName, err := imagefiles.Index(filepath.Join(dir, "set.zip"))
	if err != nil || len(byStem["test_01"]) != 1 || byName["test_00.jpg"].Stem() != "test_00" {
		t.Errorf("Index = %v %v, %v", byStem, byName, err)
	}

	if _, err := files[3].Read(1); !errors.Is(err, imageio.ErrTooLarge) {
		t.Errorf("Read over the limit = %v, want ErrTooLarge", err)
	}
	for name, args := range map[string][]string{
		"nothing":         nil,
		"missing":         {filepath.Join(dir, "missing")},
		"folder no image": {t.TempDir()},
	} {
		if _, err := imagefiles.List(args); err == nil {
			t.Errorf("%s: List succeeded", name)
		}
	}
}
