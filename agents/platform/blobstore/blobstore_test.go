package blobstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
	"github.com/facecloud/facecloud/agents/platform/storetest"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
)

func openDir(t *testing.T, dir string) *blobstore.Store {
	t.Helper()
	u := &url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}
	s, err := blobstore.OpenURL(context.Background(), u)
	if err != nil {
		t.Fatalf("OpenURL(%s): %v", u, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) platform.Store {
		// A directory that does not exist yet: OpenURL creates it.
		return openDir(t, filepath.Join(t.TempDir(), "store", "nested"))
	})
}

// TestFileLayout checks what another process (or a person) sees on disk:
// plain files at their key paths and nothing else, and that in-progress
// temporary files are not listed.
func TestFileLayout(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	if err := s.Put(ctx, "inputs/x.jpg", []byte("jpeg"), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if !slices.Equal(files, []string{"inputs/x.jpg"}) {
		t.Fatalf("files on disk = %q, want only inputs/x.jpg (no sidecars, no temporaries)", files)
	}
	// A temporary file as fileblob names them, left by a writer that died.
	if err := os.WriteFile(filepath.Join(dir, "inputs", "y.jpg.18a2b3c4d5e6f708.tmp"), []byte("part"), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List(ctx, "inputs/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"inputs/x.jpg"}) {
		t.Fatalf("List = %q, want temporaries left out", keys)
	}
}

// TestDeleteLeavesNoName checks that deleting a file store's last object
// under a directory removes the directories it leaves empty, so a person's
// name (gallery/<person>/) is not left behind as a directory name, while
// the top-level directories stay for concurrent writers.
func TestDeleteLeavesNoName(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	ctx := context.Background()
	for _, k := range []string{"gallery/Paul/a/1.json", "gallery/Paul/2.json", "gallery/Zoe/1.json", "inputs/x"} {
		if err := s.Put(ctx, k, []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"gallery/Paul/a/1.json", "gallery/Paul/2.json", "inputs/x"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return nil
	})
	if want := []string{"gallery", "gallery/Zoe", "gallery/Zoe/1.json", "inputs"}; !slices.Equal(left, want) {
		t.Fatalf("on disk after deletes: %q, want %q", left, want)
	}
}

func TestBadInput(t *testing.T) {
	s := openDir(t, t.TempDir())
	ctx := context.Background()
	tests := map[string]struct {
		op      func() error
		wantSub string
	}{
		"empty key":          {func() error { return s.Put(ctx, "", []byte("x"), "") }, "non-empty slash path"},
		"leading slash":      {func() error { return s.Put(ctx, "/abs", []byte("x"), "") }, "leading or trailing slash"},
		"trailing slash":     {func() error { _, err := s.Get(ctx, "dir/"); return err }, "leading or trailing slash"},
		"escapes root":       {func() error { return s.Put(ctx, "../outside", []byte("x"), "") }, `".."`},
		"empty element":      {func() error { return s.Put(ctx, "a//b", []byte("x"), "") }, "must not be empty"},
		"reserved temp name": {func() error { return s.Put(ctx, "a.1f.tmp", []byte("x"), "") }, "reserved"},
		"reserved attrs":     {func() error { return s.Put(ctx, "a.attrs", []byte("x"), "") }, "reserved"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.op()
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, platform.ErrNotFound) {
				t.Fatalf("error %v claims not found", err)
			}
			if !strings.Contains(err.Error(), tc.wantSub) {
				t.Fatalf("error %q does not say %q", err, tc.wantSub)
			}
		})
	}
	keys, err := s.List(ctx, "")
	if err != nil || len(keys) != 0 {
		t.Fatalf("after refused puts List = %q, %v; want nothing stored", keys, err)
	}
}

func TestOpenURLErrors(t *testing.T) {
	tests := map[string]string{
		"remote host":    "file://otherhost/dir",
		"unknown param":  "file:///tmp/x?bogus=1",
		"unknown scheme": "nosuch://bucket",
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := blobstore.OpenURL(context.Background(), u); err == nil {
				s.Close()
				t.Fatalf("OpenURL(%s) succeeded", raw)
			}
		})
	}
}

// TestPutBesideDeleteOfLastObject writes into a directory while another
// writer keeps deleting the directory's last object, which removes the
// directory: every write must land, none may find its directory gone.
func TestPutBesideDeleteOfLastObject(t *testing.T) {
	s := openDir(t, t.TempDir())
	ctx := context.Background()
	const rounds = 2000
	errs := make(chan error, 2)
	for _, name := range []string{"a", "b"} {
		go func() {
			for i := range rounds {
				k := "collections/c/" + name + strconv.Itoa(i)
				if err := s.Put(ctx, k, []byte("x"), ""); err != nil {
					errs <- err
					return
				}
				if err := s.Delete(ctx, k); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestListManyFilePages lists a file store of more objects than its first
// page of a listing holds (the conformance suite's many-pages clause stays
// within it): every key comes back once, in order.
func TestListManyFilePages(t *testing.T) {
	const n = 25_000
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "inputs"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("inputs/%08d", i)
		// A key is a file at its path in a file store.
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(want[i])), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := openDir(t, dir).List(t.Context(), "inputs/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %d keys, want the %d keys inputs/00000000..inputs/%08d", len(got), n, n-1)
	}
}

// BenchmarkListFile lists file stores of n objects two ways side by side:
// Store.List, which walks the directory itself (filelist.go), and
// gocloud's iterator in fileblob's pages of 1,000 (the reference: fileblob
// walks the whole directory for every page and stats every file).
//
//	go test -run '^$' -bench ListFile ./agents/platform/blobstore/
func BenchmarkListFile(b *testing.B) {
	for _, n := range []int{1000, 5000, 20000} {
		dir := b.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "inputs"), 0o755); err != nil {
			b.Fatal(err)
		}
		// A key is a file at its path in a file store.
		for i := range n {
			if err := os.WriteFile(filepath.Join(dir, "inputs", fmt.Sprintf("%08d", i)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		u := &url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}
		s, err := blobstore.OpenURL(context.Background(), u)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		bucket, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bucket.Close() })
		b.Run(fmt.Sprintf("n=%d/store", n), func(b *testing.B) {
			for b.Loop() {
				keys, err := s.List(b.Context(), "inputs/")
				if err != nil || len(keys) != n {
					b.Fatalf("List = %d keys, %v; want %d", len(keys), err, n)
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/pages-of-1000", n), func(b *testing.B) {
			for b.Loop() {
				it := bucket.List(&blob.ListOptions{Prefix: "inputs/"})
				got := 0
				for {
					_, err := it.Next(b.Context())
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("listed %d, want %d", got, n)
				}
			}
		})
	}
}
