package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tarball builds a gzip-compressed tar in npm's layout from source path → content.
func tarball(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// visibleEntries lists every file and folder under dir (relative paths).
func visibleEntries(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestInstallRejectsBadArchives(t *testing.T) {
	// Every pinned path present, but with content that cannot match its sum.
	wrong := map[string][]byte{}
	for _, f := range Files {
		wrong[f.Source] = []byte("not the model: " + f.Name)
	}
	missing := map[string][]byte{"package/README.md": []byte("hello")}
	tests := map[string]struct {
		data []byte
		want error
	}{
		"checksum mismatch":  {tarball(t, wrong), ErrChecksum},
		"pinned file absent": {tarball(t, missing), ErrArchive},
		"not gzip":           {[]byte("plain text"), ErrArchive},
		"truncated gzip":     {tarball(t, wrong)[:40], ErrArchive},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := Install(context.Background(), dir, bytes.NewReader(tc.data))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Install error = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if got := visibleEntries(t, dir); len(got) != 0 {
				t.Errorf("Install left %v behind", got)
			}
		})
	}
}

func TestVerifyNamesBadFile(t *testing.T) {
	dir := t.TempDir()
	err := Verify(dir)
	if err == nil || !strings.Contains(err.Error(), Files[0].Name) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Verify(empty) = %v, want not-exist naming %s", err, Files[0].Name)
	}
}

func TestEnsureWithoutNPM(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := filepath.Join(t.TempDir(), "models")
	err := Ensure(context.Background(), dir)
	if !errors.Is(err, ErrNoNPM) {
		t.Fatalf("Ensure without npm = %v, want ErrNoNPM", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	if got := visibleEntries(t, dir); len(got) != 0 {
		t.Errorf("Ensure left %v behind", got)
	}
}

func TestEnsureNPMFailure(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not installed")
	}
	// An npm whose registry cannot be reached stands in for a network failure.
	t.Setenv("npm_config_registry", "http://127.0.0.1:9/")
	t.Setenv("npm_config_fetch_retries", "0")
	t.Setenv("npm_config_offline", "false")
	t.Setenv("npm_config_cache", t.TempDir())
	dir := filepath.Join(t.TempDir(), "models")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Ensure(ctx, dir)
	if !errors.Is(err, ErrFetch) {
		t.Fatalf("Ensure with unreachable registry = %v, want ErrFetch", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	if got := visibleEntries(t, dir); len(got) != 0 {
		t.Errorf("Ensure left %v behind", got)
	}
}

func TestEnsureFetchesAndRepairs(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not installed: cannot fetch " + Package)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "models")
	// Two at once: both must succeed and leave a valid cache.
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- Ensure(ctx, dir) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	if err := Verify(dir); err != nil {
		t.Fatalf("Verify after Ensure: %v", err)
	}
	for _, e := range visibleEntries(t, dir) {
		if strings.HasPrefix(filepath.Base(e), ".") {
			t.Errorf("staging leftover %s", e)
		}
	}
	// A damaged file is noticed and replaced.
	victim := filepath.Join(dir, Files[0].Name)
	if err := os.WriteFile(victim, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(dir); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Verify(damaged) = %v, want ErrChecksum", err)
	}
	if err := Ensure(ctx, dir); err != nil {
		t.Fatalf("Ensure(damaged): %v", err)
	}
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != Files[0].SHA256 {
		t.Errorf("%s not repaired", Files[0].Name)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(EnvDir, "/opt/models")
	if got := DefaultDir(); got != "/opt/models" {
		t.Errorf("DefaultDir with %s = %q", EnvDir, got)
	}
	t.Setenv(EnvDir, "")
	if got := DefaultDir(); !strings.HasSuffix(got, filepath.Join("facecloud", "face-api-1.7.15")) {
		t.Errorf("DefaultDir = %q", got)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, ".fetch-old")
	fresh := filepath.Join(dir, ".install-fresh")
	other := filepath.Join(dir, ".keep")
	for _, d := range []string{old, fresh, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleAfter)
	for _, d := range []string{old, other} {
		if err := os.Chtimes(d, past, past); err != nil {
			t.Fatal(err)
		}
	}
	removeStale(dir)
	for d, want := range map[string]bool{old: false, fresh: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

// engineDir writes the engine files (valid sums) from the cache the tests
// share into a new directory, without the demo photos: what a deployed
// host holds.
func engineDir(t *testing.T) string {
	t.Helper()
	src := DefaultDir()
	if err := VerifyEngine(src); err != nil {
		t.Skipf("no verified model cache to copy engine files from (run facecloud models fetch): %v", err)
	}
	dir := t.TempDir()
	for _, f := range EngineFiles() {
		b, err := os.ReadFile(filepath.Join(src, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestEnsureEngineOnDeployedDirectory: a directory holding only the engine
// files, as a deployed worker's does, is used as it is — no npm, nothing
// written — and a read-only one that lacks a file is refused with the file
// named instead of being fetched into.
func TestEnsureEngineOnDeployedDirectory(t *testing.T) {
	dir := engineDir(t)
	t.Setenv("PATH", t.TempDir()) // no npm to fall back on
	if err := EnsureEngine(context.Background(), dir); err != nil {
		t.Fatalf("engine-only directory refused: %v", err)
	}
	if err := Verify(dir); err == nil {
		t.Fatal("the directory holds the demo photos too; the test means one without")
	}
	if got := visibleEntries(t, dir); len(got) != len(EngineFiles()) {
		t.Errorf("directory changed: %v", got)
	}
	if err := os.Remove(filepath.Join(dir, "face_landmark_68_model.bin")); err != nil {
		t.Fatal(err)
	}
	// As the worker's unit runs it: the directory is not writable (the
	// test may run as root, whom permission bits do not stop, so the
	// answer is given here; the deployment rehearsal runs the real check
	// as an unprivileged user).
	writableDir = func(string) bool { return false }
	t.Cleanup(func() { writableDir = writable })
	err := EnsureEngine(context.Background(), dir)
	if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "face_landmark_68_model.bin") {
		t.Errorf("read-only directory without a file: %v, want ErrReadOnly naming the file", err)
	}
	if left := visibleEntries(t, dir); len(left) != len(EngineFiles())-1 {
		t.Errorf("directory changed: %v", left)
	}
}

// TestWritable: a directory of the test's own is writable, a missing one
// under it can be made, and one under a regular file cannot.
func TestWritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !writable(dir) || !writable(filepath.Join(dir, "new", "deeper")) {
		t.Error("own temporary directory not writable")
	}
	if writable(filepath.Join(file, "sub")) {
		t.Error("a directory under a file counted writable")
	}
}
