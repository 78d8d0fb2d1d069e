// Handlers shared by the route groups: the upload page and the query
// parameters; the routes themselves are in recognitions.go and gallery.go.

package web

import (
	_ "embed"
	"net/http"
	"strconv"
	"time"

	"github.com/facecloud/facecloud/agents/job"
)

//go:embed index.html
var indexHTML []byte

// storeTimeout bounds storing an accepted upload and queueing its request,
// which go on even if the client hangs up meanwhile, so an accepted image
// is either fully queued or not at all.
const storeTimeout = 30 * time.Second

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob:; connect-src 'self'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(indexHTML)
}

// nearestParam reads ?nearest= (default cfg.Nearest).
func (s *Server) nearestParam(r *http.Request) (bool, *httpError) {
	v := r.URL.Query().Get("nearest")
	if v == "" {
		return s.cfg.Nearest, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, refuse(http.StatusBadRequest, "bad_param", "nearest=%q must be true or false (1 or 0)", truncate(v, 20))
	}
	return b, nil
}

// boolParam reads ?name= as a boolean (default false).
func boolParam(r *http.Request, name string) (bool, *httpError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, refuse(http.StatusBadRequest, "bad_param", "%s=%q must be true or false (1 or 0)", name, truncate(v, 20))
	}
	return b, nil
}

// qualityParam reads ?quality= (none, low, medium or high; empty for the
// worker's default).
func qualityParam(r *http.Request) (string, *httpError) {
	v := r.URL.Query().Get("quality")
	if err := job.ValidQuality(v); err != nil {
		return "", refuse(http.StatusBadRequest, "bad_param", "%v", err)
	}
	return v, nil
}

// waitParam reads ?wait= as a duration ("30s") or whole seconds ("30"),
// within 0..cfg.MaxWait.
func (s *Server) waitParam(r *http.Request, def time.Duration) (time.Duration, *httpError) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, refuse(http.StatusBadRequest, "bad_param", "wait=%q is not a duration such as 30s", truncate(v, 20))
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > s.cfg.MaxWait {
		return 0, refuse(http.StatusBadRequest, "bad_param", "wait=%s out of range 0s..%s", v, s.cfg.MaxWait)
	}
	return d, nil
}

// openAPIDoc is the OpenAPI 3.1 document of every route, served at
// /openapi.json; a test holds it and the server to each other.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document the server serves.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDoc)
}
