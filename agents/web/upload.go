package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/job"
)

// fileFields are the multipart fields that carry the image: the course's
// generator sends inputFile, older course clients myfile.
var fileFields = []string{"inputFile", "myfile", "file"}

// upload is one image taken from a request, checked and ready to store.
type upload struct {
	field    string // the multipart field it came in; empty for a raw body
	filename string
	name     string // job.Name: the file name's stem
	data     []byte
}

// httpError is a refusal with its status and a one-line reason; reason
// labels the rejection metric.
type httpError struct {
	status int
	msg    string
	reason string
}

func (e *httpError) Error() string { return e.msg }

func refuse(status int, reason, format string, args ...any) *httpError {
	return &httpError{status: status, reason: reason, msg: oneLine(fmt.Sprintf(format, args...))}
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}

// bodyError maps a failure reading the body to 413, 408 (too slow), 503
// (upload memory exhausted) or 400.
func (s *Server) bodyError(err error) *httpError {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "request body is larger than the limit of %d bytes", tooLarge.Limit)
	case errors.Is(err, errTooSlow):
		return refuse(http.StatusRequestTimeout, "too_slow", "upload cut: it must arrive at %d bytes/s or more, without pausing for %s", s.cfg.MinUploadRate, s.cfg.UploadIdle)
	case errors.Is(err, errShort), errors.Is(err, errEvicted):
		return refuse(http.StatusServiceUnavailable, "", "%v; retry later", err)
	}
	// The body ends early only when the connection does: the client is gone.
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		return clientGone(fmt.Errorf("while sending the body: %w", err))
	}
	return refuse(http.StatusBadRequest, "bad_body", "cannot read request body: %v", err)
}

// readMultipart returns the file parts of a multipart request: the first
// one in fileFields when all is false, else every part with a file name or
// a fileFields name, up to max, read into memory charged to in. The body
// must be in's.
func (s *Server) readMultipart(r *http.Request, in *intake, all bool, max int) ([]upload, *httpError) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, refuse(http.StatusUnsupportedMediaType, "not_multipart",
			"request must be multipart/form-data with the image in field %s (%v)", fileFields[0], err)
	}
	var ups []upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.bodyError(err)
		}
		wanted := isFileField(part.FormName()) || (all && part.FileName() != "")
		if !wanted || (!all && len(ups) == 1) {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, s.bodyError(err)
			}
			continue
		}
		if len(ups) == max {
			return nil, refuse(http.StatusBadRequest, "too_many_files", "more than %d images in one request", max)
		}
		data, err := in.readAll(r.Context(), part)
		if err != nil {
			return nil, s.bodyError(err)
		}
		ups = append(ups, upload{field: part.FormName(), filename: part.FileName(), data: data})
	}
	in.arrived()
	if len(ups) == 0 {
		return nil, refuse(http.StatusBadRequest, "missing_field",
			"missing file field %s (also accepted: %s)", fileFields[0], strings.Join(fileFields[1:], ", "))
	}
	return ups, nil
}

func isFileField(name string) bool {
	for _, f := range fileFields {
		if name == f {
			return true
		}
	}
	return false
}

// readRaw takes the whole body as one image (Content-Type image/* or
// application/octet-stream); the name comes from ?name= or the
// Content-Disposition file name.
func (s *Server) readRaw(r *http.Request, in *intake) ([]upload, *httpError) {
	data, err := in.readAll(r.Context(), r.Body)
	if err != nil {
		return nil, s.bodyError(err)
	}
	in.arrived()
	name := r.URL.Query().Get("name")
	if name == "" {
		if _, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
			name = params["filename"]
		}
	}
	return []upload{{filename: name, data: data}}, nil
}

// isMultipart reports whether the request says it is multipart/form-data.
func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// isRawImage reports whether the request body is meant to be one image.
func isRawImage(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (strings.HasPrefix(mt, "image/") || mt == "application/octet-stream")
}

// check names an upload after its file name's stem (empty when it has no
// file name: the request id stands in) and checks the image within the
// limits (decodeCheck), so that nothing that is not a whole image of an
// accepted size ever reaches the queue.
func (s *Server) check(ctx context.Context, in *intake, u *upload) *httpError {
	label := u.filename
	if label == "" {
		label = "image"
	}
	u.name = job.Stem(u.filename)
	if len(u.name) > 255 {
		return refuse(http.StatusBadRequest, "bad_name", "file name %q is %d bytes, at most 255 allowed", truncate(u.name, 40), len(u.name))
	}
	if strings.ContainsFunc(u.name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return refuse(http.StatusBadRequest, "bad_name", "file name %q contains control characters", u.name)
	}
	if len(u.data) == 0 {
		return refuse(http.StatusBadRequest, "empty", "%s is empty", label)
	}
	err := s.decodeCheck(ctx, in, u.data)
	switch {
	case errors.Is(err, errShort), errors.Is(err, errEvicted):
		return refuse(http.StatusServiceUnavailable, "", "%v; retry later", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return clientGone(err)
	case err == nil:
		return nil
	case errors.Is(err, imageio.ErrTooLarge):
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "%s: %v", label, err)
	case errors.Is(err, imageio.ErrEmpty):
		return refuse(http.StatusBadRequest, "empty", "%s: %v", label, err)
	case errors.Is(err, imageio.ErrUnsupported) && u.field != "" && u.filename == "" && looksLikeFileName(u.data):
		// curl -F inputFile=photo.jpg sends the text "photo.jpg", not the file.
		return refuse(http.StatusUnsupportedMediaType, "not_image",
			"field %s holds the text %q, not a file; with curl, put @ before the file name: -F %s=@%s", u.field, truncate(string(u.data), 60), u.field, truncate(string(u.data), 60))
	case errors.Is(err, imageio.ErrUnsupported):
		return refuse(http.StatusUnsupportedMediaType, "not_image", "%s: %v", label, err)
	case errors.Is(err, imageio.ErrTooManyPixels):
		return refuse(http.StatusUnprocessableEntity, "too_many_pixels", "%s: %v", label, err)
	case errors.Is(err, imageio.ErrTooSmall):
		return refuse(http.StatusUnprocessableEntity, "too_small", "%s: %v", label, err)
	case errors.Is(err, imageio.ErrCorrupt):
		return refuse(http.StatusUnprocessableEntity, "corrupt", "%s: %v", label, err)
	default:
		return refuse(http.StatusUnprocessableEntity, "undecodable", "%s: %v", label, err)
	}
}

// looksLikeFileName reports whether data is a short line of text, as a form
// field holding a file's name rather than the file is.
func looksLikeFileName(data []byte) bool {
	if len(data) == 0 || len(data) > 1024 || !utf8.Valid(data) {
		return false
	}
	return !strings.ContainsFunc(string(data), func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// decodeCheck checks data's header (format, size, pixel count), then that
// the file is whole: for JPEG and PNG by walking its markers or chunks
// (imageio.Complete), without decoding a pixel, since the worker decodes
// it anyway and answers pixel data broken inside a whole file with a
// failed Result; other formats by decoding them within the memory budget.
// Decoding is charged to the budget first (imageio.DecodeCost); an image
// whose decoding would take more than half the budget is checked from its
// header only, and a worker, which has the memory, finds out if its pixels
// are broken.
func (s *Server) decodeCheck(ctx context.Context, in *intake, data []byte) error {
	lim := imageio.Limits{MaxBytes: int(s.cfg.MaxBodyBytes), MaxPixels: s.cfg.MaxPixels}
	info, err := imageio.Inspect(data, lim)
	if err != nil {
		return err
	}
	if checked, err := imageio.Complete(data, info); checked {
		return err
	}
	cost := imageio.DecodeCost(data, info) - int64(len(data)) // the bytes are charged already
	if cost > s.budget.size/2 {
		s.log.Debug("image too large to decode here; header checked only", "pixels", info.Width*info.Height, "cost", cost)
		return nil
	}
	if err := in.take(ctx, cost); err != nil {
		return err
	}
	defer in.give(cost)
	// Decoding costs CPU too: a few at a time, however many uploads wait.
	select {
	case s.decodes <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-s.decodes }()
	_, err = imageio.Check(data, lim)
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
