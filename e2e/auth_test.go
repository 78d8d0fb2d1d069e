package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/job"
)

// adminKeys maps the base URL of a facecloud local under test to the admin
// key it created in its data directory on its first start.
var adminKeys sync.Map

func adminKeyOf(base string) string {
	k, _ := adminKeys.Load(base)
	s, _ := k.(string)
	return s
}

// readAdminKey reads DIR/admin.key, checking it is readable only by its owner.
func readAdminKey(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(data, "admin.key")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("facecloud local wrote no admin key: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// call sends one request with headers h and returns status, headers and body.
func call(t *testing.T, method, url string, h http.Header, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func withKey(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

// createKey runs facecloud keys create and returns the key and its id.
func createKey(t *testing.T, data, scopes string) (key, id string) {
	t.Helper()
	cmd := exec.Command(binary(t), "keys", "create", "--data", data, "--scopes", scopes, "--name", "e2e "+scopes)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("facecloud keys create: %v\n%s", err, stderr.String())
	}
	key = strings.TrimSuffix(string(out), "\n")
	if !regexp.MustCompile(`^fc_[a-z2-7]{16}_[a-z2-7]{32}$`).MatchString(key) {
		t.Fatalf("keys create printed %q, want the key alone on one line", out)
	}
	if strings.Contains(stderr.String(), key) {
		t.Fatalf("keys create wrote the key on stderr too: %s", stderr.String())
	}
	return key, strings.Split(key, "_")[1]
}

// logLines are the structured log lines of an output (slog's text form).
func logLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "time=") || strings.HasPrefix(l, `{"time"`) {
			lines = append(lines, l)
		}
	}
	return lines
}

// assertNotLogged fails when any log line of any process holds a key's
// secret part.
func assertNotLogged(t *testing.T, procs []*proc, keys ...string) {
	t.Helper()
	for _, p := range procs {
		p.syncLog(t)
		lines := logLines(p.out.String())
		if len(lines) == 0 {
			t.Fatalf("%s logged nothing: the check would prove nothing", p.name)
		}
		for _, k := range keys {
			secret := k[len(k)-32:]
			for _, l := range lines {
				if strings.Contains(l, secret) {
					t.Errorf("%s logged a key: %s", p.name, l)
				}
			}
		}
	}
}

// TestCourseWorkloadNeedsOpenRecognition runs facecloud local without
// --open-recognition: the course's unauthenticated workload is refused
// with 401 (every one of its 1000 requests), and the same workload with a
// key of scope recognize, created while the service runs, is answered.
// The admin key local made on its first start is in DIR/admin.key (0600),
// was shown once and is in no log line.
func TestCourseWorkloadNeedsOpenRecognition(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	local, base := startLocal(t, data, "--keys-refresh", "1s", "--idle-exit", "30s")
	admin := adminKeyOf(base)
	local.syncLog(t)
	if n := strings.Count(local.out.String(), admin); n != 1 {
		t.Fatalf("the admin key appears %d times in local's output, want once (the line that shows it)", n)
	}
	if !strings.Contains(local.out.String(), "shown this once") {
		t.Error("local did not say the admin key is shown once")
	}

	t.Run("without a key: 401", func(t *testing.T) {
		cmd := exec.Command(binary(t), "submit", "--url", base+"/", "--concurrency", "100", "--json", c.Requests)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err == nil {
			t.Fatal("submit without a key succeeded")
		}
		var s struct{ Requests, Failed, Correct int }
		if err := json.Unmarshal(out, &s); err != nil || s.Requests != 1000 || s.Failed != 1000 {
			t.Fatalf("summary %s (%v), want 1000 failed", out, err)
		}
		if !strings.Contains(stderr.String(), "HTTP 401: error: an API key is required") {
			t.Fatalf("failures are not 401s:\n%s", tail(stderr.String(), 5))
		}
		code, _, body := callFile(t, base+"/", nil, c.Files[0])
		if code != http.StatusUnauthorized {
			t.Fatalf("plain multipart POST / without a key = %d %q, want 401", code, body)
		}
	})

	t.Run("with a recognize key", func(t *testing.T) {
		key, _ := createKey(t, data, "recognize")
		// The running service takes the new key at its next key refresh.
		eventually(t, 30*time.Second, "the new key accepted", func() bool {
			code, _, _ := call(t, http.MethodGet, base+"/v1/recognitions/"+job.NewID(), withKey(key), nil)
			return code == http.StatusNotFound
		})
		cmd := exec.Command(binary(t), "submit", "--url", base+"/", "--concurrency", "100", "--labels", c.Labels1000, "--json", c.Requests)
		cmd.Env = append(os.Environ(), "FACECLOUD_API_KEY="+key)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("submit with FACECLOUD_API_KEY: %v\n%s\n%s", err, out, tail(stderr.String(), 10))
		}
		var s struct{ Requests, Correct int }
		if err := json.Unmarshal(out, &s); err != nil || s.Requests != 1000 || s.Correct != 1000 {
			t.Fatalf("summary %s (%v), want 1000 correct", out, err)
		}
		if code, _, _ := call(t, http.MethodGet, base+"/v1/gallery", withKey(key), nil); code != http.StatusForbidden {
			t.Fatalf("recognize key on GET /v1/gallery = %d, want 403", code)
		}
		if strings.Contains(stderr.String(), key[len(key)-32:]) {
			t.Error("submit wrote the key on stderr")
		}
		assertNotLogged(t, []*proc{local}, key, admin)
	})
	local.stop(t, 2*time.Minute)
}

// callFile posts path to url as the course's generator does, with headers h.
func callFile(t *testing.T, url string, h http.Header, path string) (int, http.Header, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body, ct := formBody(filepath.Base(path), data)
	if h == nil {
		h = http.Header{}
	}
	h = h.Clone()
	h.Set("Content-Type", ct)
	return call(t, http.MethodPost, url, h, body)
}

// TestKeysAcrossWebHosts runs two web agents on one store, as web hosts
// share their buckets (each with a reply queue of its own, since a data
// directory has one reply consumer): keys made with the CLI reach both; a call
// without a key is 401, with a key lacking the scope 403, past the key's
// rate 429 with Retry-After; a key revoked with the CLI is refused by both
// within their key refresh; a cross-origin browser POST is refused where
// recognition is open; and no key is ever in a log line.
func TestKeysAcrossWebHosts(t *testing.T) {
	data := t.TempDir()
	binary(t)
	admin, _ := createKey(t, data, "admin")
	recognize, _ := createKey(t, data, "recognize")
	limited, _ := createKey(t, data, "enroll,admin")
	flags := []string{"--addr", "127.0.0.1:0", "--keys-refresh", "1s", "--key-rate", "0.2", "--key-burst", "20"}
	web1 := start(t, "web-1", append([]string{"web", "--data", data}, flags...)...)
	own := t.TempDir() // web-2's reply queue
	store := "file://" + filepath.Join(data, "store")
	web2 := start(t, "web-2", append([]string{"web", "--open-recognition",
		"--requests", "sqlite://" + filepath.Join(data, "queue.db") + "?name=requests",
		"--replies", "sqlite://" + filepath.Join(own, "queue.db") + "?name=replies",
		"--input", store, "--output", store}, flags...)...)
	hosts := []string{web1.baseURL(t), web2.baseURL(t)}

	for i, base := range hosts {
		host := fmt.Sprintf("web-%d", i+1)
		if code, _, _ := call(t, http.MethodGet, base+"/v1/gallery", nil, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: GET /v1/gallery without a key = %d, want 401", host, code)
		}
		if code, _, _ := call(t, http.MethodGet, base+"/metrics", nil, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: GET /metrics without a key = %d, want 401", host, code)
		}
		if code, _, _ := call(t, http.MethodGet, base+"/v1/gallery", withKey(admin), nil); code != http.StatusOK {
			t.Errorf("%s: GET /v1/gallery with the admin key = %d, want 200", host, code)
		}
		if code, _, _ := call(t, http.MethodGet, base+"/metrics", withKey(recognize), nil); code != http.StatusForbidden {
			t.Errorf("%s: GET /metrics with a recognize key = %d, want 403", host, code)
		}
		if code, h, _ := call(t, http.MethodGet, base+"/healthz", nil, nil); code != http.StatusOK || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: /healthz = %d, nosniff %q", host, code, h.Get("X-Content-Type-Options"))
		}
	}

	t.Run("429 past the key's rate", func(t *testing.T) {
		var last int
		var retry string
		for range 21 { // a burst of 20
			code, h, _ := call(t, http.MethodGet, hosts[0]+"/v1/gallery", withKey(limited), nil)
			last, retry = code, h.Get("Retry-After")
		}
		if last != http.StatusTooManyRequests {
			t.Fatalf("call 21 of a burst of 20 = %d, want 429", last)
		}
		if n, err := strconv.Atoi(retry); err != nil || n < 1 {
			t.Fatalf("Retry-After %q, want whole seconds", retry)
		}
		if code, _, _ := call(t, http.MethodGet, hosts[0]+"/v1/gallery", withKey(admin), nil); code != http.StatusOK {
			t.Fatalf("another key = %d, want 200", code)
		}
	})

	t.Run("cross-origin POST refused", func(t *testing.T) {
		img := pngBytes(t)
		evil := http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"image/png"}}
		code, _, body := call(t, http.MethodPost, hosts[1]+"/v1/recognitions?wait=0", evil, strings.NewReader(string(img)))
		if code != http.StatusForbidden || !strings.Contains(body, "cross-origin") {
			t.Fatalf("cross-origin POST on the open host = %d %q, want 403", code, body)
		}
		code, _, _ = call(t, http.MethodPost, hosts[1]+"/v1/recognitions?wait=0", http.Header{"Content-Type": {"image/png"}}, strings.NewReader(string(img)))
		if code != http.StatusAccepted {
			t.Fatalf("POST without a key or an Origin on the open host = %d, want 202", code)
		}
		code, _, _ = call(t, http.MethodPost, hosts[0]+"/v1/recognitions?wait=0", http.Header{"Content-Type": {"image/png"}}, strings.NewReader(string(img)))
		if code != http.StatusUnauthorized {
			t.Fatalf("POST without a key on the closed host = %d, want 401", code)
		}
		evil.Set("X-API-Key", recognize)
		code, _, _ = call(t, http.MethodPost, hosts[0]+"/v1/recognitions?wait=0", evil, strings.NewReader(string(img)))
		if code != http.StatusAccepted {
			t.Fatalf("POST with the key in a header and a foreign Origin = %d, want 202 (no page can send that header)", code)
		}
	})

	t.Run("revoked on every host", func(t *testing.T) {
		key, id := createKey(t, data, "recognize")
		for _, base := range hosts {
			eventually(t, 30*time.Second, "the new key accepted on "+base, func() bool {
				code, _, _ := call(t, http.MethodGet, base+"/v1/recognitions/"+job.NewID(), withKey(key), nil)
				return code == http.StatusNotFound
			})
		}
		out, err := exec.Command(binary(t), "keys", "revoke", "--data", data, id).CombinedOutput()
		if err != nil {
			t.Fatalf("keys revoke: %v\n%s", err, out)
		}
		revokedAt := time.Now()
		for i, base := range hosts {
			eventually(t, 30*time.Second, "the revoked key refused on "+base, func() bool {
				code, _, _ := call(t, http.MethodGet, base+"/v1/recognitions/"+job.NewID(), withKey(key), nil)
				return code == http.StatusUnauthorized
			})
			t.Logf("web-%d refuses the revoked key %s after the revocation (--keys-refresh 1s)", i+1, time.Since(revokedAt).Round(10*time.Millisecond))
		}
		assertNotLogged(t, []*proc{web1, web2}, admin, recognize, limited, key)
	})
}

// TestErasure enrols the course gallery, recognises Ranil (and others),
// enrols one more photo of Ranil through the API, then erases Ranil with
// DELETE /v1/gallery/Ranil?purge=1: no object of the store names Ranil or
// holds the images sent of Ranil, the others' data stays, and every worker
// stops matching Ranil at its next gallery refresh.
func TestErasure(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	local, base := startLocal(t, data, "--min-workers", "2", "--max-workers", "2", "--gallery-refresh", "2s")
	admin := adminKeyOf(base)
	local.waitLog(t, regexp.MustCompile(`(?s)worker ready.*worker ready`), time.Minute)
	const person = "Ranil"
	var ranil, others []string
	for _, f := range c.Files {
		switch {
		case c.Want[stem(f)] == person && len(ranil) < 6:
			ranil = append(ranil, f)
		case c.Want[stem(f)] != person && len(others) < 4:
			others = append(others, f)
		}
	}
	var ranilIDs, otherIDs []string
	for _, f := range append(append([]string{}, ranil[:5]...), others...) {
		code, h, body := callFile(t, base+"/", withKey(admin), f)
		if code != 200 {
			t.Fatalf("POST %s = %d %q", stem(f), code, body)
		}
		if err := textAnswer(c.Want, f, body); err != nil {
			t.Fatal(err)
		}
		if c.Want[stem(f)] == person {
			ranilIDs = append(ranilIDs, h.Get("X-Request-Id"))
		} else {
			otherIDs = append(otherIDs, h.Get("X-Request-Id"))
		}
	}
	code, _, body := callFileField(t, base+"/v1/gallery/"+person, withKey(admin), "file", ranil[5])
	if code != 200 {
		t.Fatalf("enrol through the API = %d %q", code, body)
	}
	store := filepath.Join(data, "store")
	if !storeMentions(t, store, person) {
		t.Fatal("before the erasure the store does not name Ranil: the check would prove nothing")
	}
	faces := func() int {
		_, _, b := call(t, http.MethodGet, base+"/v1/gallery", withKey(admin), nil)
		var g struct{ Faces int }
		_ = json.Unmarshal([]byte(b), &g)
		return g.Faces
	}
	left := faces()
	// A face's id comes from its image, so the API enrolment of a photo the
	// gallery already holds adds no face: count Ranil's faces as listed.
	code, _, body = call(t, http.MethodGet, base+"/v1/gallery/"+person, withKey(admin), nil)
	var listed struct{ Faces []struct{ ID string } }
	if err := json.Unmarshal([]byte(body), &listed); code != 200 || err != nil || len(listed.Faces) == 0 {
		t.Fatalf("GET /v1/gallery/%s = %d %q", person, code, body)
	}

	code, _, body = call(t, http.MethodDelete, base+"/v1/gallery/"+person+"?purge=1", withKey(admin), nil)
	if code != 200 {
		t.Fatalf("DELETE /v1/gallery/%s?purge=1 = %d %q", person, code, body)
	}
	erasedAt := time.Now()
	var rep struct{ Faces, Inputs, Results, Scanned int }
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Inputs != 6 || rep.Results != 6 || rep.Faces != len(listed.Faces) {
		t.Fatalf("erasure report %s, want 6 inputs and 6 results (5 recognitions, 1 enrolment) and the %d faces listed", body, len(listed.Faces))
	}
	t.Logf("erasure: %s", strings.TrimSpace(body))
	if storeMentions(t, store, person) {
		t.Fatal("an object of the store still names Ranil")
	}
	for _, id := range ranilIDs {
		if _, err := os.Stat(filepath.Join(store, job.InputKey(id))); !os.IsNotExist(err) {
			t.Errorf("input %s of a Ranil request is still stored", id)
		}
	}
	for _, id := range otherIDs {
		if code, _, _ := call(t, http.MethodGet, base+"/v1/recognitions/"+id, withKey(admin), nil); code != 200 {
			t.Errorf("another person's result %s = %d, want it kept", id, code)
		}
	}
	if n := faces(); n != left-rep.Faces {
		t.Errorf("gallery has %d faces after erasing %d of %d", n, rep.Faces, left)
	}

	// A worker logs its gallery's size when it starts ("worker ready") and
	// whenever a refresh changes it ("gallery loaded"): wait until both
	// workers have logged the size without Ranil.
	dropped := regexp.MustCompile(fmt.Sprintf(`msg="(worker ready|gallery loaded)".* (gallery_)?faces=%d `, left-rep.Faces))
	eventually(t, time.Minute, "both workers to drop Ranil", func() bool {
		local.syncLog(t)
		return len(dropped.FindAllString(local.out.String(), -1)) >= 2
	})
	t.Logf("both workers dropped Ranil %s after the erasure (--gallery-refresh 2s)", time.Since(erasedAt).Round(10*time.Millisecond))
	for _, f := range ranil[:3] {
		code, _, body := callFile(t, base+"/", withKey(admin), f)
		if code != 200 || strings.HasSuffix(body, ":"+person) {
			t.Fatalf("after the erasure %s = %d %q, want another answer than %s", stem(f), code, body, person)
		}
	}
	local.stop(t, 2*time.Minute)
}

// storeMentions reports whether any file under dir names s in its path or
// its content.
func storeMentions(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(p, s) {
			t.Logf("names %s: %s", s, p)
			found = true
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), s) {
			t.Logf("mentions %s: %s", s, p)
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// callFileField posts path as multipart field to url with headers h.
func callFileField(t *testing.T, url string, h http.Header, field, path string) (int, http.Header, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body, ct := formField(field, filepath.Base(path), data)
	h = h.Clone()
	h.Set("Content-Type", ct)
	return call(t, http.MethodPost, url, h, body)
}

// formBody is a multipart body with the image in field inputFile.
func formBody(filename string, data []byte) (io.Reader, string) {
	return formField("inputFile", filename, data)
}

func formField(field, filename string, data []byte) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile(field, filename)
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// pngBytes is a 64x64 image, valid for the web agent's checks.
func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
