// The operator console at /console: a page, a script and a style sheet
// embedded in the binary, nothing fetched from elsewhere, served under a
// Content-Security-Policy that allows only them and calls to this server.
// The page holds no data: it asks the API for everything with the admin
// key the operator types, which it keeps in the tab's sessionStorage and
// sends in a header.

package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"net/http"
	"path"
	"time"

	galleries "github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/thumbs"
)

//go:embed console/index.html console/console.js console/console.css
var consoleFiles embed.FS

// consoleCSP lets the console run its own script and style sheet, show
// the images it builds from API answers (blob: URLs) and call this server,
// and nothing else: no inline script or style, no other origin, no frames.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file of the console with its type and ETag.
type asset struct {
	data        []byte
	contentType string
	etag        string
}

var consoleAssets = func() map[string]asset {
	types := map[string]string{
		"index.html":  "text/html; charset=utf-8",
		"console.js":  "text/javascript; charset=utf-8",
		"console.css": "text/css; charset=utf-8",
	}
	out := map[string]asset{}
	for name, ct := range types {
		b, err := consoleFiles.ReadFile("console/" + name)
		if err != nil {
			panic("console asset missing from the build: " + name)
		}
		sum := sha256.Sum256(b)
		out[name] = asset{data: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}()

func (s *Server) console(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, consoleAssets["index.html"])
}

func (s *Server) consoleAsset(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.PathValue("file"))
	a, ok := consoleAssets[name]
	if !ok || name == "index.html" {
		textErrors(w, refuse(http.StatusNotFound, "no_route", "no console file %q", name))
		return
	}
	serveAsset(w, r, a)
}

// serveAsset serves a with the console's headers; a browser revalidates it
// by ETag, so a new build is picked up at once.
func serveAsset(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}

// getThumbnail answers GET /v1/gallery/{person}/{face}/thumbnail: a
// face's thumbnail in the default collection.
func (s *Server) getThumbnail(w http.ResponseWriter, r *http.Request) *httpError {
	return s.thumbnail(w, r, galleries.DefaultCollection)
}

// getCollectionThumbnail answers GET
// /v1/collections/{collection}/persons/{person}/faces/{face}/thumbnail.
func (s *Server) getCollectionThumbnail(w http.ResponseWriter, r *http.Request) *httpError {
	return s.thumbnail(w, r, r.PathValue("collection"))
}

// thumbnail answers with the JPEG thumbnail of {person}'s face {face} in
// collection c, kept at enrolment (faces enrolled before thumbnails were
// kept have none: 404).
func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request, c string) *httpError {
	name, id, herr := s.faceParams(r, c)
	if herr != nil {
		return herr
	}
	// The face must still be enrolled: a thumbnail left by an erasure
	// under way is not shown, nor one an earlier version kept by face id
	// alone for a face that is not the person's.
	has := func(idx *galleries.Follower) bool {
		_, ok := idx.View(c).Face(name, id)
		return ok
	}
	idx, herr := s.collections(r.Context())
	if herr != nil {
		return herr
	}
	ok := has(idx)
	if !ok {
		if idx, herr = s.freshCollections(r.Context()); herr != nil {
			return herr
		}
		ok = has(idx)
	}
	if !ok {
		return refuse(http.StatusNotFound, "unknown_face", "no face %s enrolled as %q in collection %s", id, name, c)
	}
	jpg, err := thumbs.Get(r.Context(), s.deps.Gallery, c, name, id)
	if errors.Is(err, platform.ErrNotFound) {
		return refuse(http.StatusNotFound, "no_thumbnail", "face %s has no thumbnail (enrolled without one)", id)
	}
	if err != nil {
		return s.storeRefusal("read thumbnail", err)
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(jpg)
	return nil
}
