package blobstore

import (
	"context"
	"errors"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"gocloud.dev/blob"
)

func openFileStore(t *testing.T) *Store {
	t.Helper()
	u := &url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())}
	s, err := OpenURL(context.Background(), u)
	if err != nil {
		t.Fatalf("OpenURL(%s): %v", u, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFileListDirectoryCreatedBehindWalk writes, while a listing is under
// way, a key in a directory that did not exist when the listing read its
// parent, then deletes a key the listing had not reached yet (a gallery's
// first compaction: its first manifest, then the log event it folded).
// S3 lists the new key, which sorts after the deleted one; so must a file
// store.
func TestFileListDirectoryCreatedBehindWalk(t *testing.T) {
	ctx := t.Context()
	s := openFileStore(t)
	for _, k := range []string{"c/default/log/1.json", "c/other/log/1.json"} {
		if err := s.Put(ctx, k, []byte("{}"), ""); err != nil {
			t.Fatal(err)
		}
	}
	done := false
	s.afterReadDir = func(keyDir string) {
		if keyDir != "c/default/" || done {
			return
		}
		done = true
		// Put creates manifests/; Delete removes log/, left empty.
		if err := s.Put(ctx, "c/default/manifests/1.json", []byte("{}"), ""); err != nil {
			t.Error(err)
		}
		if err := s.Delete(ctx, "c/default/log/1.json"); err != nil {
			t.Error(err)
		}
	}
	got, err := s.List(ctx, "c/")
	if err != nil {
		t.Fatal(err)
	}
	if !done {
		t.Fatal("the listing never read c/default/")
	}
	want := []string{"c/default/manifests/1.json", "c/other/log/1.json"}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q: the manifest written behind the walk is missing", got, want)
	}
}

// TestFileListEscapedKeys holds the file store's listing to fileblob's
// names for keys it escapes on disk (control characters, text that reads
// as an escape): both list the keys that were written.
func TestFileListEscapedKeys(t *testing.T) {
	ctx := t.Context()
	s := openFileStore(t)
	keys := []string{
		"gallery/__0x41__/1.json",
		"gallery/a\x01b/2.json",
		"gallery/a__0x2f__b__0x__c/3.json",
		"gallery/__0xZZ__/4.json",
		"gallery/___0x41___/5.json",
		"gallery/é ü/6.json",
		"plain",
	}
	for _, k := range keys {
		if err := s.Put(ctx, k, []byte(k), ""); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	want := slices.Sorted(slices.Values(keys))
	got, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	var theirs []string
	it := s.bucket.List(&blob.ListOptions{})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		theirs = append(theirs, obj.Key)
	}
	slices.Sort(theirs)
	if !slices.Equal(got, theirs) {
		t.Fatalf("List = %q, fileblob lists %q", got, theirs)
	}
	for _, k := range keys {
		if b, err := s.Get(ctx, k); err != nil || string(b) != k {
			t.Fatalf("Get(%q) = %q, %v", k, b, err)
		}
	}
}

func TestUnescapeName(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":          {"abc", "abc"},
		"escape":         {"__0x41__", "A"},
		"inside":         {"x__0x2f__y", "x/y"},
		"two":            {"__0x41____0x42__", "AB"},
		"no digits":      {"__0x__", "__0x__"},
		"not hex":        {"__0xZZ__", "__0xZZ__"},
		"unterminated":   {"__0x41_", "__0x41_"},
		"extra score":    {"___0x41__", "_A"},
		"escaped escape": {"__0x5f___0x41__", "__0x41__"},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			if got := unescapeName(c.in); got != c.want {
				t.Fatalf("unescapeName(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
