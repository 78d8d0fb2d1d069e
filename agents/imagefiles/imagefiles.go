// Package imagefiles finds the images a command is given: image files,
// folders of them, and .zip archives of them, read in place (a downloaded
// dataset needs no unzip tool, and nothing is extracted that could be left
// half done). Archives stay open until the process ends: the commands that
// use this package run once.
package imagefiles

import (
	"archive/zip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/job"
)

// exts are the file extensions picked from folders and archives.
var exts = []string{".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}

// IsImageName reports whether a file name has an image extension.
func IsImageName(name string) bool {
	return slices.Contains(exts, strings.ToLower(filepath.Ext(name)))
}

// File is one image: a file on disk or an entry of an archive.
type File struct {
	// Name is what people see: the path as given, or ARCHIVE.zip/ENTRY.
	Name string
	fsys fs.FS  // nil: the operating system's files
	path string // in fsys, or on disk
}

// OSFile is the file at p on disk, taken as an image whatever its name.
func OSFile(p string) File { return File{Name: p, path: p} }

// Base is the file's own name, without folders.
func (f File) Base() string { return path.Base(filepath.ToSlash(f.path)) }

// Stem is Base without its extension: the name answers are keyed by.
func (f File) Stem() string { return job.Stem(f.Base()) }

// Read returns the file's bytes, refusing one larger than maxBytes
// (imageio.ErrTooLarge) before reading it; maxBytes <= 0 means no limit.
func (f File) Read(maxBytes int) ([]byte, error) {
	var info fs.FileInfo
	var err error
	if f.fsys == nil {
		info, err = os.Stat(f.path)
	} else {
		info, err = fs.Stat(f.fsys, f.path)
	}
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", f.Name)
	}
	if maxBytes > 0 && info.Size() > int64(maxBytes) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", imageio.ErrTooLarge, info.Size(), maxBytes)
	}
	if f.fsys == nil {
		return os.ReadFile(f.path)
	}
	return fs.ReadFile(f.fsys, f.path)
}

// List expands args: an image file is taken as given (any name), a folder
// contributes its image files (recursively, by extension, sorted), and a
// .zip archive its image entries (likewise, without macOS metadata). A
// folder or archive without images is an error, as is no argument.
func List(args []string) ([]File, error) {
	if len(args) == 0 {
		return nil, errors.New("no images given")
	}
	var out []File
	for _, a := range args {
		info, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		var found []File
		switch {
		case info.IsDir():
			found, err = walk(os.DirFS(a), a, func(p string) string { return filepath.Join(a, filepath.FromSlash(p)) })
		case strings.EqualFold(filepath.Ext(a), ".zip"):
			found, err = archive(a)
		default:
			out = append(out, OSFile(a))
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s holds no image files (%s)", a, strings.Join(exts, " "))
		}
		out = append(out, found...)
	}
	return out, nil
}

// Index maps the image files of a folder or .zip archive (recursively) by
// stem and by full file name, for labels that name images either way.
func Index(dirOrZip string) (byStem map[string][]File, byName map[string]File, err error) {
	files, err := List([]string{dirOrZip})
	if err != nil {
		return nil, nil, err
	}
	byStem, byName = map[string][]File{}, map[string]File{}
	for _, f := range files {
		byName[f.Base()] = f
		byStem[f.Stem()] = append(byStem[f.Stem()], f)
	}
	return byStem, byName, nil
}

// archive lists the images of the zip at p.
func archive(p string) ([]File, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, fmt.Errorf("images: %s: %w", p, err)
	}
	files, err := walk(zr, p, func(e string) string { return p + "/" + e })
	if err != nil {
		zr.Close()
		return nil, err
	}
	return files, nil
}

// walk lists fsys's image files, skipping hidden entries and macOS's
// __MACOSX folders; name turns a path in fsys into what people see.
func walk(fsys fs.FS, root string, name func(string) string) ([]File, error) {
	var out []File
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := path.Base(p)
		if p != "." && (strings.HasPrefix(base, ".") || base == "__MACOSX") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && IsImageName(base) {
			out = append(out, File{Name: name(p), fsys: fsys, path: p})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("images: %s: %w", root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
