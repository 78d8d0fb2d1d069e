package e2e

import (
	"bytes"
	"context"
	enc "encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pngHeader is a valid PNG signature and IHDR chunk claiming w x h pixels
// and nothing else: a decompression bomb's first bytes.
var be = enc.BigEndian

func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	be.PutUint32(ihdr[0:], w)
	be.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	enc.Write(&b, be, uint32(len(ihdr)))
	b.Write(chunk)
	enc.Write(&b, be, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// TestBadInputOverHTTP sends what a careless or hostile client might to
// facecloud local and checks each gets the right 4xx with a one-line
// reason, that no worker crashes, and that nothing is left in the queue.
func TestBadInputOverHTTP(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	local, base := startLocal(t, data, "--open-recognition", "--min-workers", "1", "--max-workers", "1", "--max-body", "1MiB")
	local.waitLog(t, regexp.MustCompile(`msg="worker ready"`), time.Minute)
	workers := children(local.cmd.Process.Pid)
	if len(workers) != 1 {
		t.Fatalf("want 1 worker process, have %v", workers)
	}
	good, err := os.ReadFile(c.Files[0])
	if err != nil {
		t.Fatal(err)
	}

	multipartBody := func(field, filename string, data []byte) (string, io.Reader) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		if field != "" {
			fw, _ := mw.CreateFormFile(field, filename)
			fw.Write(data)
		} else {
			mw.WriteField("note", "no file here")
		}
		mw.Close()
		return mw.FormDataContentType(), &b
	}
	tests := map[string]struct {
		method, path string
		body         func() (string, io.Reader)
		status       int
	}{
		"missing field": {method: "POST", path: "/", status: http.StatusBadRequest,
			body: func() (string, io.Reader) { return multipartBody("", "", nil) }},
		"empty file": {method: "POST", path: "/", status: http.StatusBadRequest,
			body: func() (string, io.Reader) { return multipartBody("inputFile", "empty.jpg", nil) }},
		"text file": {method: "POST", path: "/", status: http.StatusUnsupportedMediaType,
			body: func() (string, io.Reader) {
				return multipartBody("inputFile", "notes.jpg", []byte(strings.Repeat("just some text\n", 20)))
			}},
		"oversized body": {method: "POST", path: "/", status: http.StatusRequestEntityTooLarge,
			body: func() (string, io.Reader) {
				return multipartBody("inputFile", "huge.jpg", append(append([]byte{}, good...), make([]byte, 2<<20)...))
			}},
		"cut image": {method: "POST", path: "/", status: http.StatusUnprocessableEntity,
			body: func() (string, io.Reader) { return multipartBody("inputFile", "cut.jpg", good[:len(good)/2]) }},
		"pixel bomb": {method: "POST", path: "/", status: http.StatusUnprocessableEntity,
			body: func() (string, io.Reader) { return multipartBody("inputFile", "bomb.png", pngHeader(60000, 60000)) }},
		"pixel bomb on the API": {method: "POST", path: "/v1/recognitions", status: http.StatusUnprocessableEntity,
			body: func() (string, io.Reader) { return "image/png", bytes.NewReader(pngHeader(60000, 60000)) }},
		"wrong method": {method: "PUT", path: "/", status: http.StatusMethodNotAllowed,
			body: func() (string, io.Reader) { return multipartBody("inputFile", "a.jpg", good) }},
		"unknown id": {method: "GET", path: "/v1/recognitions/01900000-0000-7000-8000-000000000000", status: http.StatusNotFound},
		"not an id":  {method: "GET", path: "/v1/recognitions/nope", status: http.StatusBadRequest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var body io.Reader
			ctype := ""
			if tc.body != nil {
				ctype, body = tc.body()
			}
			req, err := http.NewRequestWithContext(context.Background(), tc.method, base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			reason := strings.TrimRight(string(b), "\n")
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%q), want %d", resp.StatusCode, reason, tc.status)
			}
			if reason == "" || strings.Contains(reason, "\n") {
				t.Errorf("reason %q is not one line", reason)
			}
			t.Logf("%d %s", resp.StatusCode, reason)
		})
	}

	// A whole JPEG whose pixel data is broken passes the web agent's check,
	// which decodes no pixels, and the worker answers it as failed: 500 on
	// the text route, 200 with status "failed" on the JSON one.
	broken := append([]byte{}, good...)
	sos := bytes.Index(broken, []byte{0xFF, 0xDA})
	if sos < 0 {
		t.Fatal("no scan in the course image")
	}
	// A 0xFF not followed by 0x00 cannot occur in entropy-coded data.
	mid := sos + (len(broken)-sos)/2
	broken[mid], broken[mid+1] = 0xFF, 0x55
	code, body, err := postBytes(context.Background(), http.DefaultClient, base+"/", "inputFile", "broken.jpg", broken)
	if err != nil || code != http.StatusInternalServerError || !strings.Contains(body, "corrupt image") || strings.Contains(strings.TrimSpace(body), "\n") {
		t.Errorf("broken pixels on POST /: %d %q %v; want 500 naming a corrupt image, on one line", code, body, err)
	}
	code, body, err = postBytes(context.Background(), http.DefaultClient, base+"/v1/recognitions?wait=60s", "inputFile", "broken.jpg", broken)
	var res struct{ Status, Error string }
	if err == nil {
		err = json.Unmarshal([]byte(body), &res)
	}
	if err != nil || code != http.StatusOK || res.Status != "failed" || !strings.Contains(res.Error, "corrupt image") {
		t.Errorf("broken pixels on /v1/recognitions: %d %q %v; want 200 with status failed naming a corrupt image", code, body, err)
	}

	// A good request still works, from the same worker, and the queue is empty.
	code, body, err = postBytes(context.Background(), http.DefaultClient, base+"/", "inputFile", "test_000.jpg", good)
	if err != nil || code != http.StatusOK || textAnswer(c.Want, c.Files[0], body) != nil {
		t.Fatalf("good request after the bad ones: %d %q %v", code, body, err)
	}
	eventually(t, 10*time.Second, "empty request queue", func() bool {
		v, err := scrape(base, "facecloud_scaler_backlog")
		return err == nil && v == 0
	})
	if now := children(local.cmd.Process.Pid); len(now) != 1 || now[0] != workers[0] {
		t.Errorf("worker processes %v, want the same one as before (%v)", now, workers)
	}
	local.syncLog(t)
	if regexp.MustCompile(`worker crashed|panic`).MatchString(local.out.String()) {
		t.Error("a worker crashed")
	}
	local.stop(t, time.Minute)
}
