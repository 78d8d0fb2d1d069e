// Package blobstore is the Store port over gocloud.dev/blob: a directory
// tree locally (fileblob) and an S3 bucket on AWS (s3blob), named by URL.
//
// Local stores are opened so that every Put is atomic and nothing but whole
// objects is ever listed: fileblob writes each object to a temporary file
// next to its final path and renames it into place (a temporary directory
// elsewhere may sit on another file system, where rename fails), and no
// metadata sidecar files are written, because fileblob rewrites those in
// place, so a Get racing a Put of the same key could read half of one.
package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob" // registers s3:// with blob.OpenBucket
	"gocloud.dev/gcerrors"

	"github.com/facecloud/facecloud/agents/platform"
)

// Store implements platform.Store over a blob.Bucket.
type Store struct {
	bucket *blob.Bucket
	// hideTemp leaves fileblob's in-progress temporary files out of List.
	hideTemp bool
	// root is the directory of a file store ("" for other buckets): Delete
	// removes the directories it leaves empty, so no file name (a person's
	// name in gallery/<person>/) outlives the objects under it.
	root string
	// dirs orders a file store's Puts (shared) against the removal of
	// empty directories (exclusive) within this process, so that no Put
	// finds its directory removed between making it and writing its file
	// there. Another process's Delete still can: Put then writes again.
	dirs sync.RWMutex
	// afterReadDir, when set (by tests), is called with a directory's key
	// prefix each time a file store's listing has read its entries.
	afterReadDir func(keyDir string)
}

var _ platform.Store = (*Store)(nil)

// New wraps bucket. The Store owns it: Close closes it.
func New(bucket *blob.Bucket) *Store { return &Store{bucket: bucket} }

// fileblobTemp matches the temporary files fileblob writes next to a key
// while a Put is in progress: "<key>.<hex nanoseconds>.tmp".
var fileblobTemp = regexp.MustCompile(`\.[0-9a-f]{1,16}\.tmp$`)

// OpenURL opens the store u names:
//
//	file:///DIR            a directory tree, created if missing
//	s3://BUCKET?prefix=P   an S3 bucket, optionally under a key prefix
//
// and any other scheme registered with gocloud.dev/blob. For file URLs the
// options create_dir, no_tmp_dir and metadata=skip are added unless given.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	if u.Scheme == "s3" {
		return openS3URL(ctx, u) // s3.go: endpoint override, SSE, checksums
	}
	hideTemp, root := false, ""
	if u.Scheme == fileblob.Scheme {
		root = filepath.FromSlash(u.Path)
		if u.Path == "" || (u.Host != "" && u.Host != "." && u.Host != "localhost") {
			return nil, fmt.Errorf("file store URL %q: want file:///ABSOLUTE/DIR", u.Redacted())
		}
		c := *u
		q := c.Query()
		for k, v := range map[string]string{"create_dir": "1", "no_tmp_dir": "1", "metadata": "skip"} {
			if !q.Has(k) {
				q.Set(k, v)
			}
		}
		c.RawQuery = q.Encode()
		u = &c
		hideTemp = q.Get("no_tmp_dir") != ""
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", u.Redacted(), err)
	}
	return &Store{bucket: b, hideTemp: hideTemp, root: root}, nil
}

// Bucket returns the underlying bucket, for adapter-specific options.
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// checkKey refuses keys that would mean different things to a file system
// and to S3, so a key that works locally works on AWS and back.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("key %q: want a non-empty slash path without a leading or trailing slash", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("key %q: path elements must not be empty, \".\" or \"..\"", key)
		}
	}
	return nil
}

// Put writes data under key atomically.
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if s.hideTemp && fileblobTemp.MatchString(key) {
		return fmt.Errorf("key %q: names ending in .<hex>.tmp are reserved for temporary files", key)
	}
	var opts *blob.WriterOptions
	if contentType != "" {
		opts = &blob.WriterOptions{ContentType: contentType}
	}
	if s.root != "" {
		s.dirs.RLock()
		defer s.dirs.RUnlock()
	}
	err := s.bucket.WriteAll(ctx, key, data, opts)
	// In a file store, a Delete of the directory's last object removes the
	// directory (removeEmptyDirs). In another process, that can come while
	// this write is under way (see dirs): a write into it then finds it
	// gone between creating it and creating its file in it, or finds it
	// created and removed again while it makes it (EEXIST from MkdirAll).
	// Writing again creates it again: a directory is only ever removed
	// when empty, so no written file is lost with it.
	for try := 0; try < 5 && err != nil && s.root != "" && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)); try++ {
		err = s.bucket.WriteAll(ctx, key, data, opts)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, mapErr(err))
	}
	return nil
}

// Get returns the object under key, or an error wrapping platform.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, mapErr(err))
	}
	defer r.Close()
	// One buffer of the object's size, read into once: a large object (a
	// gallery segment) does not pass through a growing, cleared buffer. The
	// read past the end checks the size did not change under the reader.
	b := make([]byte, r.Size()+1)
	n, err := io.ReadFull(r, b)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return b[:n:n], nil
	case err != nil:
		return nil, fmt.Errorf("get %s: %w", key, mapErr(err))
	}
	// Longer than it said: read the rest as it comes.
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, mapErr(err))
	}
	return append(b, rest...), nil
}

// Exists reports whether key holds an object.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ok, err := s.bucket.Exists(ctx, key)
	if err != nil {
		err = mapErr(err)
		if errors.Is(err, platform.ErrNotFound) {
			return false, nil // a key below an object ("a/b" under "a")
		}
		return false, fmt.Errorf("exists %s: %w", key, err)
	}
	return ok, nil
}

// List returns the keys that start with prefix, sorted. The listing is
// flat: keys in "subdirectories" are included with their full path. A key
// that is there from the start of a listing to its end is listed; so is a
// key written during it that sorts after every key the listing has reached
// (S3's order; a file store walks its tree to match it, see listFiles).
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if s.root != "" {
		return s.listFiles(ctx, prefix)
	}
	opts := &blob.ListOptions{Prefix: prefix}
	var keys []string
	// The last page comes with no token for another; S3 returns at most
	// 1,000 keys a page.
	for token := blob.FirstPageToken; len(token) > 0; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var page []*blob.ListObject
		var err error
		page, token, err = s.bucket.ListPage(ctx, token, 1000, opts)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, mapErr(err))
		}
		for _, obj := range page {
			if !obj.IsDir {
				keys = append(keys, obj.Key)
			}
		}
	}
	// Buckets list in lexicographic order already; sorting again costs
	// little and makes the contract independent of it.
	slices.Sort(keys)
	return keys, nil
}

// Delete removes the object under key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if s.root != "" {
		// On a file system a key may name a directory of other keys
		// ("dir" of "dir/obj"), which is no object: leave it alone.
		ok, err := s.Exists(ctx, key)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if !ok {
			return nil
		}
	}
	if err := s.bucket.Delete(ctx, key); err != nil {
		if err := mapErr(err); !errors.Is(err, platform.ErrNotFound) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
	}
	s.removeEmptyDirs(key)
	return nil
}

// removeEmptyDirs removes the directories of a file store that key's
// deletion left empty, deepest first, stopping at the first that is not
// empty. Top-level directories (inputs/, results/, gallery/) stay: a
// concurrent Put into them must never find its directory gone.
func (s *Store) removeEmptyDirs(key string) {
	if s.root == "" {
		return
	}
	s.dirs.Lock()
	defer s.dirs.Unlock()
	parts := strings.Split(key, "/")
	for n := len(parts) - 1; n >= 2; n-- {
		dir := filepath.Join(append([]string{s.root}, parts[:n]...)...)
		if os.Remove(dir) != nil { // not empty (or gone): the ones above are not empty either
			return
		}
	}
}

// Close closes the bucket.
func (s *Store) Close() error {
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("close bucket: %w", err)
	}
	return nil
}

// mapErr makes a missing object an error wrapping platform.ErrNotFound,
// keeping the bucket's own message.
func mapErr(err error) error {
	// A key below an existing object ("a/b" under file "a") is missing too.
	if gcerrors.Code(err) == gcerrors.NotFound || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: %w", platform.ErrNotFound, err)
	}
	return err
}
