package web

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/facecloud/facecloud/agents/imagefiles"
)

// zipMagic starts every zip archive.
var zipMagic = []byte("PK\x03\x04")

// expandArchives replaces each upload that is a .zip archive with the
// images in it (by extension, hidden entries and macOS metadata left out),
// each charged to the upload memory budget before it is read and bound by
// the body limit; the archive's own bytes go back to the budget. At most
// cfg.MaxEnrollImages images in all.
func (s *Server) expandArchives(ctx context.Context, in *intake, ups []upload) ([]upload, *httpError) {
	var out []upload
	for _, u := range ups {
		if !bytes.HasPrefix(u.data, zipMagic) {
			out = append(out, u)
			continue
		}
		zr, err := zip.NewReader(bytes.NewReader(u.data), int64(len(u.data)))
		if err != nil {
			return nil, refuse(http.StatusUnprocessableEntity, "corrupt", "%s: not a readable zip archive: %v", u.filename, err)
		}
		found := 0
		for _, f := range zr.File {
			base := path.Base(f.Name)
			if f.FileInfo().IsDir() || strings.HasPrefix(base, ".") || strings.Contains(f.Name, "__MACOSX/") || !imagefiles.IsImageName(base) {
				continue
			}
			found++
			if len(out)+1 > s.cfg.MaxEnrollImages {
				return nil, refuse(http.StatusBadRequest, "too_many_files", "more than %d images in one request", s.cfg.MaxEnrollImages)
			}
			if f.UncompressedSize64 > uint64(s.cfg.MaxBodyBytes) {
				return nil, refuse(http.StatusRequestEntityTooLarge, "too_large", "%s in %s is %d bytes, larger than the limit of %d", f.Name, u.filename, f.UncompressedSize64, s.cfg.MaxBodyBytes)
			}
			if err := in.take(ctx, int64(f.UncompressedSize64)); err != nil {
				return nil, s.bodyError(err)
			}
			rc, err := f.Open()
			if err != nil {
				return nil, refuse(http.StatusUnprocessableEntity, "corrupt", "%s in %s: %v", f.Name, u.filename, err)
			}
			data, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
			rc.Close()
			if err != nil || uint64(len(data)) != f.UncompressedSize64 {
				return nil, refuse(http.StatusUnprocessableEntity, "corrupt", "%s in %s does not read back as its header says (%v)", f.Name, u.filename, err)
			}
			out = append(out, upload{field: u.field, filename: base, data: data})
		}
		if found == 0 {
			return nil, refuse(http.StatusBadRequest, "empty", "%s holds no image files", u.filename)
		}
		in.give(int64(len(u.data)))
	}
	return out, nil
}
