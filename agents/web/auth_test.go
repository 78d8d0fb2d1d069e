package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
)

func bearer(key string) http.Header {
	if key == "" {
		return http.Header{}
	}
	return http.Header{"Authorization": {"Bearer " + key}}
}

// TestWhoMayCallWhat runs every route with no key, a wrong key, and keys of
// each scope, with and without --open-recognition.
func TestWhoMayCallWhat(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"a": "Paul"}})
	recognize, enroll := e.newKey(keys.Recognize), e.newKey(keys.Enroll)
	revoked := e.newKey(keys.Admin)
	revokedID := strings.Split(revoked, "_")[1]
	if err := e.keys.Revoke(context.Background(), revokedID); err != nil {
		t.Fatal(err)
	}
	wrong := []byte(testKey)
	wrong[len(wrong)-1] ^= 1
	_, closed := e.server(testConfig())
	openCfg := testConfig()
	openCfg.OpenRecognition = true
	_, opened := e.server(openCfg)
	img := pngImage(t, 32, 32)
	type call struct {
		method, path string
		ct           string
		body         func() []byte
	}
	form := func() ([]byte, string) {
		r, ct := multipartBody(t, filePart{"inputFile", "a.png", img})
		var b bytes.Buffer
		_, _ = b.ReadFrom(r)
		return b.Bytes(), ct
	}
	formBody := func() []byte { return nil } // marks a form: built per call, with its boundary
	id := job.NewID()
	calls := map[string]call{
		"POST /":                    {"POST", "/?nearest=1", "form", formBody},
		"POST /v1/recognitions":     {"POST", "/v1/recognitions?wait=0", "image/png", func() []byte { return img }},
		"GET /v1/recognitions/id":   {"GET", "/v1/recognitions/" + id, "", nil},
		"DELETE /v1/recognitions":   {"DELETE", "/v1/recognitions/" + id, "", nil},
		"POST /v1/gallery/Paul":     {"POST", "/v1/gallery/Paul?wait=0", "form", formBody},
		"GET /v1/gallery":           {"GET", "/v1/gallery", "", nil},
		"GET /v1/gallery/Nobody":    {"GET", "/v1/gallery/Nobody", "", nil},
		"DELETE /v1/gallery/Nobody": {"DELETE", "/v1/gallery/Nobody", "", nil},
		"DELETE a face":             {"DELETE", "/v1/gallery/Nobody/abc", "", nil},
		"GET /v1/keys":              {"GET", "/v1/keys", "", nil},
		"DELETE /v1/keys/id":        {"DELETE", "/v1/keys/aaaaaaaaaaaaaaaa", "", nil},
		"GET /metrics":              {"GET", "/metrics", "", nil},
		"GET /healthz":              {"GET", "/healthz", "", nil},
		"GET /readyz":               {"GET", "/readyz", "", nil},
		"GET / (page)":              {"GET", "/", "", nil},
	}
	// What each call answers when allowed through.
	ok := map[string]int{
		"POST /": 200, "POST /v1/recognitions": 202, "GET /v1/recognitions/id": 404, "DELETE /v1/recognitions": 200,
		"POST /v1/gallery/Paul": 202, "GET /v1/gallery": 200, "GET /v1/gallery/Nobody": 404, "DELETE /v1/gallery/Nobody": 200,
		"DELETE a face": 200, "GET /v1/keys": 200, "DELETE /v1/keys/id": 404, "GET /metrics": 200,
		"GET /healthz": 200, "GET /readyz": 200, "GET / (page)": 200,
	}
	public := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET / (page)": true}
	recognition := map[string]bool{"POST /": true, "POST /v1/recognitions": true, "GET /v1/recognitions/id": true}
	enrolment := map[string]bool{"POST /v1/gallery/Paul": true}
	callers := map[string]struct {
		key    string
		allows func(call string) bool
	}{
		"no key":        {"", func(c string) bool { return public[c] }},
		"wrong key":     {string(wrong), func(c string) bool { return public[c] }},
		"revoked key":   {revoked, func(c string) bool { return public[c] }},
		"recognize key": {recognize, func(c string) bool { return public[c] || recognition[c] }},
		"enroll key":    {enroll, func(c string) bool { return public[c] || enrolment[c] }},
		"admin key":     {testKey, func(string) bool { return true }},
	}
	for _, server := range []struct {
		name string
		url  string
		open bool
	}{{"closed", closed.URL, false}, {"open recognition", opened.URL, true}} {
		for who, caller := range callers {
			for name, c := range calls {
				t.Run(server.name+"/"+who+"/"+name, func(t *testing.T) {
					ct, body := c.ct, []byte(nil)
					if c.body != nil {
						body = c.body()
					}
					if ct == "form" {
						body, ct = form()
					}
					r := doAs(t, bearer(caller.key), c.method, server.url+c.path, ct, bytes.NewReader(body))
					want := ok[name]
					switch {
					case caller.allows(name):
					case server.open && caller.key == "" && recognition[name]:
					case caller.key == "" || caller.key == string(wrong) || caller.key == revoked:
						want = http.StatusUnauthorized
					default:
						want = http.StatusForbidden
					}
					if r.status != want {
						t.Fatalf("%s %s = %d %q, want %d", c.method, c.path, r.status, r.body, want)
					}
					if want == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("401 without WWW-Authenticate: Bearer")
					}
					if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
						t.Errorf("X-Content-Type-Options %q, want nosniff", got)
					}
				})
			}
		}
	}
}

// TestKeyHeaders checks both ways of presenting a key, and that anything
// else presented counts as a wrong key.
func TestKeyHeaders(t *testing.T) {
	e := newEnv(t)
	_, hs := e.server(testConfig())
	tests := map[string]struct {
		h    http.Header
		want int
	}{
		"bearer":            {http.Header{"Authorization": {"Bearer " + testKey}}, 200},
		"bearer lower case": {http.Header{"Authorization": {"bearer " + testKey}}, 200},
		"x-api-key":         {http.Header{"X-Api-Key": {testKey}}, 200},
		"both, same":        {http.Header{"Authorization": {"Bearer " + testKey}, "X-Api-Key": {testKey}}, 200},
		"both, different":   {http.Header{"Authorization": {"Bearer " + testKey}, "X-Api-Key": {e.newKey(keys.Admin) + "x"}}, 401},
		"basic auth":        {http.Header{"Authorization": {"Basic " + testKey}}, 401},
		"empty bearer":      {http.Header{"Authorization": {"Bearer "}}, 401},
		"in the query only": {http.Header{}, 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := doAs(t, tc.h, http.MethodGet, hs.URL+"/v1/gallery?key="+testKey, "", nil)
			if r.status != tc.want {
				t.Fatalf("GET /v1/gallery = %d %q, want %d", r.status, r.body, tc.want)
			}
		})
	}
}

// TestRateLimitPerKey spends one key's burst: the next call is 429 with a
// Retry-After of whole seconds, while another key still gets through.
func TestRateLimitPerKey(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.KeyRate, cfg.KeyBurst = 0.1, 3 // a token every 10 s
	_, hs := e.server(cfg)
	busy, calm := e.newKey(keys.Admin), e.newKey(keys.Admin)
	for i := range cfg.KeyBurst {
		if r := doAs(t, bearer(busy), http.MethodGet, hs.URL+"/v1/gallery", "", nil); r.status != 200 {
			t.Fatalf("call %d within the burst = %d %q", i+1, r.status, r.body)
		}
	}
	r := doAs(t, bearer(busy), http.MethodGet, hs.URL+"/v1/gallery", "", nil)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("call past the burst = %d %q, want 429", r.status, r.body)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 10 {
		t.Fatalf("Retry-After %q, want whole seconds 1..10", r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, "over its rate") {
		t.Errorf("429 body %q does not say why", r.body)
	}
	if r := doAs(t, bearer(calm), http.MethodGet, hs.URL+"/v1/gallery", "", nil); r.status != 200 {
		t.Fatalf("another key = %d, want 200: limits are per key", r.status)
	}
}

// TestCrossOriginRefused: with --open-recognition a browser page of
// another origin cannot make its visitors upload (403), while the
// service's own page, non-browser clients and any request with a key in a
// header get through.
func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"a": "Paul"}})
	cfg := testConfig()
	cfg.OpenRecognition = true
	_, hs := e.server(cfg)
	self := hs.URL
	tests := map[string]struct {
		h    http.Header
		want int
	}{
		"cross-site fetch":           {http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}, 403},
		"same-site, other origin":    {http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://other.localhost"}}, 403},
		"old browser, other Origin":  {http.Header{"Origin": {"https://evil.example"}}, 403},
		"own page":                   {http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {self}}, 200},
		"typed in the address bar":   {http.Header{"Sec-Fetch-Site": {"none"}}, 200},
		"course generator (no hint)": {http.Header{}, 200},
		"cross-site with a key":      {http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}, "X-Api-Key": {testKey}}, 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body, ct := multipartBody(t, filePart{"inputFile", "a.png", pngImage(t, 32, 32)})
			r := doAs(t, tc.h, http.MethodPost, hs.URL+"/", ct, body)
			if r.status != tc.want {
				t.Fatalf("POST / = %d %q, want %d", r.status, r.body, tc.want)
			}
		})
	}
	// The worker deletes each request after its reply, which may be after
	// the call has returned.
	waitFor(t, "the request queue empty", func() bool { d := e.depth("requests"); return d.Visible+d.InFlight == 0 })
}

// TestKeysAPI creates a key through the API, uses it, lists it (no secret,
// no hash) and revokes it: the next call with it is 401.
func TestKeysAPI(t *testing.T) {
	e := newEnv(t)
	_, hs := e.server(testConfig())
	r := do(t, http.MethodPost, hs.URL+"/v1/keys", "application/json", strings.NewReader(`{"name":"ci","scopes":["recognize","enroll"]}`))
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/keys = %d %q", r.status, r.body)
	}
	created := decodeJSON[struct {
		Key    string   `json:"key"`
		ID     string   `json:"id"`
		Scopes []string `json:"scopes"`
	}](t, r)
	if !strings.HasPrefix(created.Key, "fc_"+created.ID+"_") || len(created.Scopes) != 2 {
		t.Fatalf("created %+v", created)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("the answer holding a new key may be cached")
	}
	if r := doAs(t, bearer(created.Key), http.MethodGet, hs.URL+"/v1/recognitions/"+job.NewID(), "", nil); r.status != 404 {
		t.Fatalf("new key on a recognition route = %d %q, want 404 (allowed, unknown id)", r.status, r.body)
	}
	if r := doAs(t, bearer(created.Key), http.MethodGet, hs.URL+"/v1/keys", "", nil); r.status != 403 {
		t.Fatalf("new key on /v1/keys = %d, want 403", r.status)
	}
	list := do(t, http.MethodGet, hs.URL+"/v1/keys", "", nil)
	if list.status != 200 || !strings.Contains(list.body, created.ID) || strings.Contains(list.body, created.Key) || strings.Contains(list.body, "sha256") {
		t.Fatalf("GET /v1/keys = %d %q: want the id, never the key or its hash", list.status, list.body)
	}
	for name, body := range map[string]string{"unknown scope": `{"name":"x","scopes":["root"]}`, "no scope": `{"name":"x"}`, "not json": `name=x`, "extra field": `{"name":"x","scopes":["admin"],"hash":"x"}`} {
		if r := do(t, http.MethodPost, hs.URL+"/v1/keys", "application/json", strings.NewReader(body)); r.status != 400 {
			t.Errorf("%s: POST /v1/keys = %d %q, want 400", name, r.status, r.body)
		}
	}
	if r := do(t, http.MethodDelete, hs.URL+"/v1/keys/"+created.ID, "", nil); r.status != 200 {
		t.Fatalf("DELETE /v1/keys/id = %d %q", r.status, r.body)
	}
	if r := doAs(t, bearer(created.Key), http.MethodGet, hs.URL+"/v1/recognitions/"+job.NewID(), "", nil); r.status != 401 {
		t.Fatalf("revoked key = %d, want 401", r.status)
	}
	if r := do(t, http.MethodDelete, hs.URL+"/v1/keys/"+created.ID, "", nil); r.status != 404 {
		t.Fatalf("second revoke = %d, want 404", r.status)
	}
}

// TestRevokedOnEveryHost is two web agents on one store, each with its own
// key ring: a key revoked through one is refused by the other after the
// other's next refresh (which `facecloud web` runs every --keys-refresh).
func TestRevokedOnEveryHost(t *testing.T) {
	e := newEnv(t)
	_, hsA := e.server(testConfig())
	other := keys.NewRing(keys.NewStore(e.store), nil)
	if _, err := other.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	deps := e.deps()
	deps.Keys = other
	b, err := New(testConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := do(t, http.MethodPost, hsA.URL+"/v1/keys", "application/json", strings.NewReader(`{"name":"roaming","scopes":["admin"]}`))
	k := decodeJSON[struct{ Key, ID string }](t, r)
	callB := func() int {
		req, _ := http.NewRequest(http.MethodGet, "/v1/gallery", nil)
		req.Header.Set("X-API-Key", k.Key)
		rec := newRecorder()
		b.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if code := callB(); code != 401 {
		t.Fatalf("host B before its refresh = %d, want 401 (the key is not known there yet)", code)
	}
	if _, err := other.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := callB(); code != 200 {
		t.Fatalf("host B after its refresh = %d, want 200", code)
	}
	if r := do(t, http.MethodDelete, hsA.URL+"/v1/keys/"+k.ID, "", nil); r.status != 200 {
		t.Fatalf("revoke on host A = %d %q", r.status, r.body)
	}
	if _, err := other.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := callB(); code != 401 {
		t.Fatalf("host B after the revocation and a refresh = %d, want 401", code)
	}
}

// TestKeyNeverLogged serves real requests with a key (accepted, refused
// for scope, rate-limited, a near miss) through a server that logs every
// level, and finds neither the key nor its secret part in any log line.
func TestKeyNeverLogged(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"a": "Paul"}})
	var logs bytes.Buffer
	deps := e.deps()
	deps.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig()
	cfg.KeyBurst = 5
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := e.serve(s)
	key := e.newKey(keys.Recognize)
	near := []byte(key)
	near[len(near)-1] ^= 1
	for range 8 { // past the burst of 5
		body, ct := multipartBody(t, filePart{"inputFile", "a.png", pngImage(t, 32, 32)})
		doAs(t, bearer(key), http.MethodPost, l+"/", ct, body)
	}
	doAs(t, bearer(key), http.MethodGet, l+"/v1/gallery", "", nil)
	doAs(t, bearer(string(near)), http.MethodGet, l+"/v1/gallery", "", nil)
	doAs(t, http.Header{"Authorization": {"Basic " + key}}, http.MethodGet, l+"/v1/gallery", "", nil)
	r := do(t, http.MethodPost, l+"/v1/keys", "application/json", strings.NewReader(`{"name":"made here","scopes":["admin"]}`))
	made := decodeJSON[struct{ Key, ID string }](t, r)
	do(t, http.MethodDelete, l+"/v1/keys/"+made.ID, "", nil)
	if !strings.Contains(logs.String(), `"msg":"queued"`) || !strings.Contains(logs.String(), "API key revoked") {
		t.Fatalf("the log did not record the calls at debug level:\n%s", logs.String())
	}
	for _, secret := range []string{key, string(near), made.Key, testKey} {
		tail := secret[len(secret)-32:]
		for i, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, tail) {
				t.Errorf("log line %d holds a key: %s", i+1, line)
			}
		}
	}
}

// TestErasureThroughTheAPI enrols Paul and recognises him twice (the fake
// worker stands in for the engine), then erases him with ?purge=1: no
// object of the store names him afterwards, and Ann's request stays.
func TestErasureThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"p1": "Paul", "p2": "Paul", "a1": "Ann"}})
	_, hs := e.server(testConfig())
	body, ct := multipartBody(t, filePart{"file", "paul.png", pngImage(t, 40, 40)})
	if r := do(t, http.MethodPost, hs.URL+"/v1/gallery/Paul", ct, body); r.status != 200 {
		t.Fatalf("enrol = %d %q", r.status, r.body)
	}
	var ann string
	for _, n := range []string{"p1", "p2", "a1"} {
		r := do(t, http.MethodPost, hs.URL+"/v1/recognitions?name="+n, "image/png", bytes.NewReader(pngImage(t, 32, 32)))
		if r.status != 200 {
			t.Fatalf("recognise %s = %d %q", n, r.status, r.body)
		}
		if n == "a1" {
			ann = decodeJSON[job.Result](t, r).ID
		}
	}
	p := do(t, http.MethodGet, hs.URL+"/v1/gallery/Paul", "", nil)
	if p.status != 200 || !strings.Contains(p.body, `"faces":[{"id":"`) {
		t.Fatalf("GET /v1/gallery/Paul = %d %q", p.status, p.body)
	}
	r := do(t, http.MethodDelete, hs.URL+"/v1/gallery/Paul?purge=1", "", nil)
	if r.status != 200 {
		t.Fatalf("DELETE = %d %q", r.status, r.body)
	}
	var rep struct{ Faces, Inputs, Results int }
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil || rep.Faces != 1 || rep.Inputs != 3 || rep.Results != 3 {
		t.Fatalf("erasure report %s, want 1 face, 3 inputs and 3 results", r.body)
	}
	ctx := context.Background()
	all, err := e.store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		b, _ := e.store.Get(ctx, k)
		if strings.Contains(k, "Paul") || strings.Contains(string(b), "Paul") {
			t.Errorf("%s still names Paul: %s", k, b)
		}
	}
	if r := do(t, http.MethodGet, hs.URL+"/v1/recognitions/"+ann, "", nil); r.status != 200 {
		t.Errorf("Ann's result = %d, want it kept", r.status)
	}
	if r := do(t, http.MethodDelete, hs.URL+"/v1/recognitions/"+ann, "", nil); r.status != 200 || !strings.Contains(r.body, `"inputs":1,"results":1`) {
		t.Errorf("DELETE Ann's recognition = %d %q", r.status, r.body)
	}
	if r := do(t, http.MethodGet, hs.URL+"/v1/recognitions/"+ann, "", nil); r.status != 404 {
		t.Errorf("Ann's result after deletion = %d, want 404", r.status)
	}
	if r := do(t, http.MethodDelete, hs.URL+"/v1/gallery/Paul?purge=maybe", "", nil); r.status != 400 {
		t.Errorf("purge=maybe = %d, want 400", r.status)
	}
}

// TestTLS serves HTTPS from a certificate file pair: a client that trusts
// the certificate is answered, and TLS below 1.2 is refused.
func TestTLS(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	l := e.listen(cfg)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + l.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET https://.../healthz = %d (TLS %v)", resp.StatusCode, resp.TLS != nil)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + l.addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	cfg.TLSKey = filepath.Join(dir, "missing.pem")
	if _, err := New(cfg, e.deps()); err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Fatalf("New with a missing key file: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "facecloud test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
