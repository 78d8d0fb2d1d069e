package web

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/facecloud/facecloud/agents/keys"
	live "github.com/facecloud/facecloud/agents/status"
	"github.com/facecloud/facecloud/agents/thumbs"
)

// openAPIValidator parses the served document and checks it is a valid
// OpenAPI 3.1 document.
func openAPIValidator(t *testing.T, doc []byte) validator.Validator {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if v := d.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("openapi.json: %s", e.Message)
		}
		t.FailNow()
	}
	return v
}

// documented lists the document's operations as "METHOD /path/{}".
func documented(t *testing.T, doc []byte) map[string]bool {
	t.Helper()
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for p, ops := range d.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			out[normalRoute(strings.ToUpper(m), p)] = true
		}
	}
	return out
}

// TestOpenAPIDocument holds the OpenAPI document served at /openapi.json
// and the server to each other, both ways: the document is valid OpenAPI
// 3.1 and names exactly the routes the server serves, and every
// documented operation, called the way the document says (checked too),
// answers with a status and a body the document gives for it — its
// successes and its refusals, with a fake worker behind the queue.
func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"paul": "Paul"}})
	cfg := testConfig()
	s, hs := e.server(cfg)
	got := do(t, http.MethodGet, hs.URL+"/openapi.json", "", nil)
	if got.status != 200 || got.header.Get("Content-Type") != "application/json" || got.body != string(OpenAPI()) {
		t.Fatalf("GET /openapi.json = %d %s", got.status, got.header.Get("Content-Type"))
	}
	doc := []byte(got.body)
	v := openAPIValidator(t, doc)

	ops := documented(t, doc)
	served := map[string]bool{}
	for _, r := range s.Routes() {
		served[normalRoute(r.Method, r.Pattern)] = true
	}
	for op := range ops {
		if !served[op] {
			t.Errorf("openapi.json documents %s, which the server does not serve", op)
		}
	}
	for op := range served {
		if !ops[op] {
			t.Errorf("the server serves %s, which openapi.json does not document", op)
		}
	}

	img := pngImage(t, 64, 64)
	form := func(parts ...filePart) func() (io.Reader, string) {
		return func() (io.Reader, string) { return multipartBody(t, parts...) }
	}
	one := form(filePart{"inputFile", "paul.png", img})
	two := form(filePart{"image1", "a.png", img}, filePart{"image2", "b.png", img})
	var archive bytes.Buffer
	zw := zip.NewWriter(&archive)
	for _, n := range []string{"p/one.png", "p/two.png", "__MACOSX/p/._one.png"} {
		w, _ := zw.Create(n)
		_, _ = w.Write(img)
	}
	_ = zw.Close()
	zipped := form(filePart{"file", "faces.zip", archive.Bytes()})
	rawImage := func() (io.Reader, string) { return bytes.NewReader(img), "image/png" }
	jsonBody := func(s string) func() (io.Reader, string) {
		return func() (io.Reader, string) { return strings.NewReader(s), "application/json" }
	}
	scopedAdmin := e.collectionKey([]string{"team-b"}, keys.Admin)
	// firstID is the first recognition's id, faceID the face enrolled as
	// Paul: the calls after them name them as {first} and {face}.
	var firstID, faceID string

	type call struct {
		method, path string
		body         func() (io.Reader, string)
		key          string // "" the admin key; "-" none
		status       int
	}
	calls := []call{
		{"GET", "/", nil, "-", 200},
		{"POST", "/", one, "", 200},
		{"POST", "/", one, "-", 401},
		{"POST", "/", rawImage, "", 415},
		{"GET", "/healthz", nil, "-", 200},
		{"GET", "/readyz", nil, "-", 200},
		{"GET", "/openapi.json", nil, "-", 200},
		{"GET", "/metrics", nil, "", 200},
		{"GET", "/metrics", nil, scopedAdmin, 403},
		{"POST", "/v1/recognitions", one, "", 200},
		{"POST", "/v1/recognitions?wait=0", rawImage, "", 202},
		{"POST", "/v1/recognitions?threshold=3", one, "", 400},
		{"POST", "/v1/recognitions", jsonBody("{}"), "", 415},
		{"POST", "/v1/recognitions", one, "-", 401},
		{"GET", "/v1/recognitions/{first}", nil, "", 200},
		{"GET", "/v1/recognitions/not-an-id", nil, "", 400},
		{"GET", "/v1/recognitions/0190f0e8-7a3c-7def-8000-000000000001", nil, "", 404},
		{"POST", "/v1/detections", one, "", 200},
		{"POST", "/v1/verifications", two, "", 200},
		{"POST", "/v1/verifications", one, "", 400},
		{"POST", "/v1/verifications?person=Nobody", one, "", 404},
		{"POST", "/v1/collections/team-a/persons/Ann/faces", zipped, "", 200},
		{"POST", "/v1/collections/team-a/persons/Ann/faces?externalId=ann-1", one, "", 200},
		{"POST", "/v1/collections/team-a/persons/Ann/faces?externalId=ann-2", zipped, "", 400},
		{"POST", "/v1/collections/team-a/persons/Ann/faces?wait=0", one, "", 202},
		{"POST", "/v1/collections/team-a/persons/Ann/faces", one, scopedAdmin, 403},
		{"POST", "/v1/verifications?person=Ann&collection=team-a&threshold=0.5", one, "", 200},
		{"POST", "/v1/collections/team-a/searches?limit=3", one, "", 200},
		{"POST", "/v1/collections/team-a/searches?limit=0", one, "", 400},
		{"POST", "/v1/collections/team-a/searches", one, "-", 401},
		{"POST", "/v1/collections/bad%20name/searches", one, "", 400},
		{"GET", "/v1/collections", nil, "", 200},
		{"GET", "/v1/collections", nil, scopedAdmin, 200},
		{"GET", "/v1/collections/team-a/persons?limit=1", nil, "", 200},
		{"GET", "/v1/collections/nothing/persons", nil, "", 404},
		{"GET", "/v1/collections/team-a/persons", nil, scopedAdmin, 403},
		{"GET", "/v1/collections/team-a/persons/Ann/faces?limit=1", nil, "", 200},
		{"GET", "/v1/collections/team-a/persons/Nobody/faces", nil, "", 404},
		{"GET", "/v1/collections/team-a/persons/Ann/faces/ann-1/thumbnail", nil, "", 200},
		{"GET", "/v1/collections/team-a/persons/Ann/faces/ann-1/thumbnail", nil, scopedAdmin, 403},
		{"GET", "/v1/collections/team-a/persons/Nobody/faces/ann-1/thumbnail", nil, "", 404},
		{"GET", "/v1/collections/team-b/persons/Ann/faces/ann-1/thumbnail", nil, "", 404},
		{"GET", "/v1/collections/team-a/persons/Ann/faces/not%20an%20id/thumbnail", nil, "", 400},
		{"POST", "/v1/gallery/Paul", one, "", 200},
		{"POST", "/v1/gallery/unknown", one, "", 400},
		{"GET", "/v1/gallery", nil, "", 200},
		{"GET", "/v1/gallery/Paul", nil, "", 200},
		{"GET", "/v1/gallery/Nobody", nil, "", 404},
		{"GET", "/v1/gallery/Paul/{face}/thumbnail", nil, "", 200},
		{"GET", "/v1/gallery/Paul/{face}/thumbnail", nil, scopedAdmin, 403},
		{"GET", "/v1/gallery/Nobody/{face}/thumbnail", nil, "", 404},
		{"GET", "/v1/gallery/Paul/not%20an%20id/thumbnail", nil, "", 400},
		{"GET", "/v1/gallery/Paul/{face}/thumbnail", nil, "-", 401},
		{"DELETE", "/v1/gallery/Paul/{first}", nil, "", 200},
		{"DELETE", "/v1/gallery/Paul?purge=1", nil, "", 200},
		{"DELETE", "/v1/gallery/Paul?purge=maybe", nil, "", 400},
		{"DELETE", "/v1/collections/team-a/persons/Ann/faces/ann-1", nil, "", 200},
		{"DELETE", "/v1/collections/team-a/persons/Ann?purge=1", nil, "", 200},
		{"DELETE", "/v1/collections/team-a/persons/Ann", nil, scopedAdmin, 403},
		{"DELETE", "/v1/recognitions/{first}", nil, "", 200},
		{"GET", "/v1/keys", nil, "", 200},
		{"GET", "/v1/keys", nil, scopedAdmin, 403},
		{"POST", "/v1/keys", jsonBody(`{"name":"ci","scopes":["recognize"],"collections":["team-a"]}`), "", 201},
		{"POST", "/v1/keys", jsonBody(`{"scopes":["root"]}`), "", 400},
		{"DELETE", "/v1/keys/aaaaaaaaaaaaaaaa", nil, "", 404},
		{"DELETE", "/v1/keys/nope", nil, "", 400},
		{"GET", "/v1/status", nil, "", 200},
		{"GET", "/v1/status", nil, scopedAdmin, 403},
		{"GET", "/v1/status", nil, "-", 401},
		{"GET", "/console", nil, "-", 200},
		{"GET", "/console/console.js", nil, "-", 200},
		{"GET", "/console/console.css", nil, "-", 200},
		{"GET", "/console/index.html", nil, "-", 404},
		{"GET", "/console/other.js", nil, "-", 404},
	}
	// checks look further into some answers than the document does, by
	// "METHOD path status" of the call.
	thumbnail := func(h http.Header, b []byte) error {
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("not a JPEG: %w", err)
		}
		if r := img.Bounds(); r.Dx() != thumbs.Side || r.Dy() != thumbs.Side {
			return fmt.Errorf("thumbnail is %v, want %d×%d", r, thumbs.Side, thumbs.Side)
		}
		return nil
	}
	// listed checks that each face listed names its thumbnail's path.
	listed := func(want string) func(h http.Header, b []byte) error {
		return func(h http.Header, b []byte) error {
			var l personFaces
			if err := json.Unmarshal(b, &l); err != nil {
				return err
			}
			for _, f := range l.Faces {
				if f.Thumbnail != strings.ReplaceAll(want, "{id}", f.ID) {
					return fmt.Errorf("face %s: thumbnail %q, want %q", f.ID, f.Thumbnail, want)
				}
			}
			return nil
		}
	}
	checks := map[string]func(h http.Header, b []byte) error{
		"GET /v1/gallery/Paul/{face}/thumbnail 200":                        thumbnail,
		"GET /v1/collections/team-a/persons/Ann/faces/ann-1/thumbnail 200": thumbnail,
		"GET /v1/gallery/Paul 200":                                         listed("/v1/gallery/Paul/{id}/thumbnail"),
		"GET /v1/collections/team-a/persons/Ann/faces?limit=1 200":         listed("/v1/collections/team-a/persons/Ann/faces/{id}/thumbnail"),
		"GET /v1/status 200": func(h http.Header, b []byte) error {
			var st live.Status
			if err := json.Unmarshal(b, &st); err != nil {
				return err
			}
			if h.Get("Cache-Control") != "no-store" {
				return fmt.Errorf("Cache-Control %q, want no-store", h.Get("Cache-Control"))
			}
			// The calls above, as this host recorded them: answered
			// recognitions, and the refused call just before, newest.
			if st.Queue == nil || st.Requests.OK == 0 || len(st.Hosts) != 1 {
				return fmt.Errorf("status %+v: want the queue, answered calls and this host", st)
			}
			if len(st.Failures) == 0 || st.Failures[0].Call != "DELETE /v1/keys/{id}" || st.Failures[0].Status != http.StatusBadRequest {
				return fmt.Errorf("failures %+v: want the 400 of DELETE /v1/keys/nope first", st.Failures)
			}
			return nil
		},
		"GET /console 200": func(h http.Header, b []byte) error {
			return servedAsset(h, b, "index.html")
		},
		"GET /console/console.js 200": func(h http.Header, b []byte) error {
			return servedAsset(h, b, "console.js")
		},
		"GET /console/console.css 200": func(h http.Header, b []byte) error {
			return servedAsset(h, b, "console.css")
		},
	}
	exercised := map[string]bool{}
	for _, c := range calls {
		path := strings.NewReplacer("{first}", firstID, "{face}", faceID).Replace(c.path)
		name := c.method + " " + path
		var body io.Reader
		ct := ""
		if c.body != nil {
			body, ct = c.body()
		}
		req, err := http.NewRequest(c.method, hs.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		switch c.key {
		case "":
			req.Header.Set("Authorization", "Bearer "+testKey)
		case "-":
		default:
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		// The request as sent must be one the document describes.
		check, _ := http.NewRequest(c.method, hs.URL+path, nil)
		check.Header = req.Header.Clone()
		if c.body != nil {
			b, _ := io.ReadAll(body)
			req.Body = io.NopCloser(bytes.NewReader(b))
			check.Body = io.NopCloser(bytes.NewReader(b))
		}
		if c.status < 400 {
			if ok, errs := v.ValidateHttpRequest(check); !ok {
				for _, e := range errs {
					t.Errorf("%s: the request is not as documented: %s (%s)", name, e.Message, e.Reason)
				}
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s = %d %s, want %d", name, resp.StatusCode, b, c.status)
			continue
		}
		if firstID == "" && c.method == "POST" && path == "/v1/recognitions" {
			var r struct{ ID string }
			_ = json.Unmarshal(b, &r)
			firstID = r.ID
		}
		if faceID == "" && c.method == "POST" && path == "/v1/gallery/Paul" {
			var r enrolment
			_ = json.Unmarshal(b, &r)
			if len(r.Results) == 1 && len(r.Results[0].Faces) == 1 {
				faceID = r.Results[0].Faces[0].FaceID
			}
		}
		if check := checks[fmt.Sprint(c.method, " ", c.path, " ", c.status)]; check != nil {
			if err := check(resp.Header, b); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		vreq, _ := http.NewRequest(c.method, hs.URL+path, nil)
		if ok, errs := v.ValidateHttpResponse(vreq, resp); !ok {
			for _, e := range errs {
				t.Errorf("%s: the answer %d is not as documented: %s (%s) %.300s", name, resp.StatusCode, e.Message, e.Reason, b)
			}
		}
		for _, r := range s.Routes() {
			if r.Method == c.method && matches(r.Pattern, strings.SplitN(path, "?", 2)[0]) {
				exercised[normalRoute(r.Method, r.Pattern)] = true
			}
		}
	}
	// The check can fail: a Result without its id is not as documented.
	bad := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"v":1,"name":"x","status":"done","recognition_ms":1,"finished":"2026-01-01T00:00:00Z"}`))}
	vreq, _ := http.NewRequest("GET", hs.URL+"/v1/recognitions/"+firstID, nil)
	if ok, _ := v.ValidateHttpResponse(vreq, bad); ok {
		t.Error("a Result without an id passed as documented")
	}
	var missing []string
	for op := range ops {
		if !exercised[op] {
			missing = append(missing, op)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("operations the test does not call: %v", missing)
	}
	_ = cfg
}

// servedAsset checks that an answer is the console's embedded file name,
// with its type and the console's Content-Security-Policy.
func servedAsset(h http.Header, b []byte, name string) error {
	a := consoleAssets[name]
	if !bytes.Equal(b, a.data) || h.Get("Content-Type") != a.contentType {
		return fmt.Errorf("answer is %d bytes of %s, want %s (%d bytes of %s)", len(b), h.Get("Content-Type"), name, len(a.data), a.contentType)
	}
	if h.Get("Content-Security-Policy") != consoleCSP {
		return fmt.Errorf("Content-Security-Policy %q, want the console's", h.Get("Content-Security-Policy"))
	}
	return nil
}

// matches reports whether a mux pattern ("/v1/x/{id}", "/{$}") covers path.
func matches(pattern, path string) bool {
	if pattern == "/{$}" {
		return path == "/"
	}
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}
