package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A file store lists its keys by walking its directory tree itself rather
// than through fileblob, for two reasons.
//
// Order. S3 lists keys in order behind a cursor: a key that is there when
// the cursor reaches its place is listed. Readers rely on that with pairs of
// writes, for example a gallery compaction writes a new manifest
// (collections/c/manifests/…) before it deletes the log events it folded
// (collections/c/log/…); a listing that missed an event therefore holds
// the manifest, which sorts after it. fileblob walks the tree with
// filepath.WalkDir, which reads a directory's entries once, before it
// descends into them: a directory created after that read (the collection's
// first manifests/) is never listed, even though it sorts after the cursor,
// and the listing can miss both the events and the manifest. listFiles
// reads a directory again when it changed while one of its subdirectories
// was walked, and goes on from where it was, as S3's cursor does.
//
// Cost. fileblob stats every file and looks for its metadata sidecar; a
// listing here reads directory entries only.
//
// Names on disk are fileblob's escaped keys (escapeKey in fileblob): a rune
// fileblob escapes is written "__0x<hex>__". unescapeName reverses that;
// TestFileListEscapedKeys holds the two to each other.

// listFiles returns the keys under prefix of the file store rooted at
// s.root, sorted.
func (s *Store) listFiles(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	if err := s.walkDir(ctx, s.root, "", prefix, &keys); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// recentlyChanged is how close to now a directory's modification time must
// be for the walk to read it again after a subdirectory whatever the time
// says: file systems stamp times from a clock that ticks every few
// milliseconds, so a change in the same tick as the last one leaves the
// time as it was.
const recentlyChanged = time.Second

// walkDir appends to keys the keys under dir (whose keys start with
// keyDir) that start with prefix.
func (s *Store) walkDir(ctx context.Context, dir, keyDir, prefix string, keys *[]string) error {
	after := "" // the last entry walked; names are never empty
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := os.Stat(dir)
		if gone(err) {
			return nil // removed (emptied) since its parent was read
		}
		if err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if gone(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if s.afterReadDir != nil {
			s.afterReadDir(keyDir)
		}
		reread := false
		for _, e := range entries {
			name := e.Name()
			if name <= after {
				continue
			}
			after = name
			key := keyDir + unescapeName(name)
			if e.IsDir() {
				sub := key + "/"
				if !strings.HasPrefix(sub, prefix) && !strings.HasPrefix(prefix, sub) {
					continue
				}
				if err := s.walkDir(ctx, filepath.Join(dir, name), sub, prefix, keys); err != nil {
					return err
				}
				if changedSince(dir, info) {
					reread = true
					break
				}
				continue
			}
			if !strings.HasPrefix(key, prefix) || strings.HasSuffix(name, attrsExt) || (s.hideTemp && fileblobTemp.MatchString(name)) {
				continue
			}
			*keys = append(*keys, key)
		}
		if !reread {
			return nil
		}
	}
}

// attrsExt ends the metadata sidecar files fileblob writes beside a key
// when metadata is not skipped (fileblob's attrsExt).
const attrsExt = ".attrs"

// changedSince reports whether dir may hold other entries than when info
// was taken.
func changedSince(dir string, info fs.FileInfo) bool {
	now, err := os.Stat(dir)
	if err != nil {
		return false // gone: nothing more to list in it
	}
	return !now.ModTime().Equal(info.ModTime()) || time.Since(now.ModTime()) < recentlyChanged
}

// gone reports whether err says a directory is not there (or is a file).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// unescapeName turns an entry name of a file store into its key segment:
// each "__0x<hex>__" that parses as a rune becomes that rune.
func unescapeName(name string) string {
	if !strings.Contains(name, "__0x") {
		return name
	}
	var b strings.Builder
	for {
		i := strings.Index(name, "__0x")
		if i < 0 {
			b.WriteString(name)
			return b.String()
		}
		b.WriteString(name[:i])
		rest := name[i+4:]
		j := strings.IndexByte(rest, '_')
		if j >= 0 && strings.HasPrefix(rest[j:], "__") {
			if r, err := strconv.ParseInt(rest[:j], 16, 32); err == nil {
				b.WriteRune(rune(r))
				name = rest[j+2:]
				continue
			}
		}
		// Not an escape: keep its first underscore and look again after it.
		b.WriteByte('_')
		name = name[i+1:]
	}
}
