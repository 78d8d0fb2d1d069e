package web

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/image/bmp"
)

// rawUpload is a client that writes a multipart POST by hand, so it can
// send its body as slowly as it likes.
type rawUpload struct {
	conn net.Conn
	body []byte // the whole multipart body
	sent int
}

// startUpload connects to addr and sends the headers of a POST to path
// whose body carries data in field inputFile, and none of the body yet.
func startUpload(t *testing.T, addr, path string, data []byte) *rawUpload {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="inputFile"; filename="slow.png"`)
	pw, _ := mw.CreatePart(h)
	pw.Write(data)
	mw.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, testKey, mw.FormDataContentType(), b.Len())
	return &rawUpload{conn: c, body: b.Bytes()}
}

// send writes the next n bytes of the body (fewer at its end).
func (u *rawUpload) send(n int) error {
	n = min(n, len(u.body)-u.sent)
	_, err := u.conn.Write(u.body[u.sent : u.sent+n])
	u.sent += n
	return err
}

// response reads the server's answer; the guard only keeps a broken server
// from hanging the test.
func (u *rawUpload) response(t *testing.T) response {
	t.Helper()
	_ = u.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(u.conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// TestSlowSendersAreCut: a sender that stays silent, and one that trickles
// below the minimum rate, are answered 408 with a one-line reason; one a
// little above the rate gets its answer.
func TestSlowSendersAreCut(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"slow": "Ana"}})
	cfg := testConfig()
	cfg.MinUploadRate = 2 << 10 // 2 KiB/s
	cfg.UploadIdle = 500 * time.Millisecond
	l := e.listen(cfg)
	// A valid image padded to 8 KB (decoders stop at its end): 8 s at the
	// trickle's rate, under a second at the brisk one's.
	img := append(pngImage(t, 32, 32), make([]byte, 8000)...)

	silent := startUpload(t, l.addr, "/", img)
	trickle := startUpload(t, l.addr, "/v1/recognitions", img)
	brisk := startUpload(t, l.addr, "/", img)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // 100 bytes every 100 ms: 1 KB/s, half the rate
		for trickle.sent < len(trickle.body) {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if trickle.send(100) != nil {
				return
			}
		}
	}()
	go func() { // 1000 bytes every 100 ms: 10 KB/s
		for brisk.sent < len(brisk.body) {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if brisk.send(1000) != nil {
				return
			}
		}
	}()
	for name, u := range map[string]*rawUpload{"silent": silent, "trickle": trickle} {
		r := u.response(t)
		if r.status != http.StatusRequestTimeout || !strings.Contains(r.body, "upload cut") {
			t.Errorf("%s sender: %d %q, want 408 saying the upload was cut", name, r.status, r.body)
		}
		oneLineBody(t, r)
	}
	if r := brisk.response(t); r.status != 200 || r.body != "slow:Ana" {
		t.Errorf("sender above the rate: %d %q, want its answer", r.status, r.body)
	}
	if got := counter(l.s.metrics.rejected, "too_slow"); got != 2 {
		t.Errorf("rejected{too_slow} = %v, want 2", got)
	}
	waitFor(t, "upload memory returned", func() bool { return testutil.ToFloat64(l.s.metrics.uploadBytes) == 0 })
}

// budgetServer serves with a 256 KiB upload memory budget; uploads are cut
// only by a pause of 3 s.
func budgetServer(t *testing.T, answers map[string]string, memoryWait time.Duration) listening {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: answers})
	cfg := testConfig()
	cfg.MaxBodyBytes = 256 << 10
	cfg.UploadMemory = 256 << 10
	cfg.MemoryWait = memoryWait
	cfg.MinUploadRate = 1
	cfg.UploadIdle = 3 * time.Second
	return e.listen(cfg)
}

// stall starts n uploads of data that stop after sending part bytes.
func stall(t *testing.T, addr string, n int, data []byte, part int) []*rawUpload {
	t.Helper()
	var out []*rawUpload
	for range n {
		u := startUpload(t, addr, "/", data)
		if err := u.send(part); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// TestUploadMemoryEviction: large uploads stalled half-way hold the whole
// budget; a small call still gets through, by cutting the largest of them
// (503, retry later); the budget is never overdrawn.
func TestUploadMemoryEviction(t *testing.T) {
	// The small call waits for the memory its eviction frees, however
	// slowly a loaded machine gets round to it.
	l := budgetServer(t, map[string]string{"ok": "Bo"}, time.Minute)
	big := append(pngImage(t, 32, 32), make([]byte, 100<<10)...)
	// 40 KiB each: 64 KiB charged each (their buffers doubled past 32
	// KiB), four of them the whole budget.
	stalled := stall(t, l.addr, 4, big, 40<<10)
	waitFor(t, "the stalled uploads to hold the budget", func() bool {
		return testutil.ToFloat64(l.s.metrics.uploadBytes) == 256<<10
	})
	if r := postImage(t, "http://"+l.addr, "ok.png", pngImage(t, 32, 32)); r.status != 200 || r.body != "ok:Bo" {
		t.Fatalf("small call with the budget held by stalled uploads: %d %q, want its answer", r.status, r.body)
	}
	cut := 0
	for _, u := range stalled {
		r := u.response(t)
		switch {
		case r.status == http.StatusServiceUnavailable && strings.Contains(r.body, "cut to make room"):
			cut++
			oneLineBody(t, r)
		case r.status != http.StatusRequestTimeout: // the others pause too long
			t.Errorf("stalled upload: %d %q", r.status, r.body)
		}
	}
	if cut != 1 || counter(l.s.metrics.rejected, "evicted") != 1 {
		t.Errorf("%d stalled uploads cut to make room (counter %v), want 1", cut, counter(l.s.metrics.rejected, "evicted"))
	}
	waitFor(t, "upload memory returned", func() bool { return testutil.ToFloat64(l.s.metrics.uploadBytes) == 0 })
}

// TestUploadMemoryExhausted: when the budget is held by uploads no larger
// than a new call's, nothing is cut for it: it waits, then gets 503 with
// Retry-After; once the stalled senders are cut, memory comes back.
func TestUploadMemoryExhausted(t *testing.T) {
	// Nothing can be evicted for it: the call waits MemoryWait, then 503.
	l := budgetServer(t, map[string]string{"ok": "Bo"}, 200*time.Millisecond)
	img := append(pngImage(t, 32, 32), make([]byte, 20<<10)...)
	// 10 KiB each: the first 16 KiB buffer each, sixteen of them the budget.
	stalled := stall(t, l.addr, 16, img, 10<<10)
	waitFor(t, "the stalled uploads to hold the budget", func() bool {
		return testutil.ToFloat64(l.s.metrics.uploadBytes) == 256<<10
	})
	r := postImage(t, "http://"+l.addr, "ok.png", pngImage(t, 32, 32))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "short of upload memory") {
		t.Fatalf("call with the budget exhausted: %d %q (Retry-After %q), want 503 saying so", r.status, r.body, r.header.Get("Retry-After"))
	}
	oneLineBody(t, r)
	if got := counter(l.s.metrics.rejected, "memory"); got != 1 {
		t.Errorf("rejected{memory} = %v, want 1", got)
	}
	for _, u := range stalled {
		if r := u.response(t); r.status != http.StatusRequestTimeout {
			t.Errorf("stalled sender: %d %q, want 408", r.status, r.body)
		}
	}
	waitFor(t, "upload memory returned", func() bool { return testutil.ToFloat64(l.s.metrics.uploadBytes) == 0 })
	if r := postImage(t, "http://"+l.addr, "ok.png", pngImage(t, 32, 32)); r.status != 200 || r.body != "ok:Bo" {
		t.Fatalf("after the memory came back: %d %q", r.status, r.body)
	}
}

// TestSlotTakenAfterTheBody: uploads still arriving hold no in-flight
// slot, so slow senders cannot lock others out of them.
func TestSlotTakenAfterTheBody(t *testing.T) {
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"ok": "Cy"}})
	cfg := testConfig()
	cfg.MaxInFlight = 1
	l := e.listen(cfg)
	img := pngImage(t, 32, 32)
	for range 3 {
		u := startUpload(t, l.addr, "/", img)
		if err := u.send(100); err != nil {
			t.Fatal(err)
		}
	}
	if r := postImage(t, "http://"+l.addr, "ok.png", img); r.status != 200 || r.body != "ok:Cy" {
		t.Fatalf("with 3 uploads arriving and 1 slot: %d %q, want the answer", r.status, r.body)
	}
}

// TestLargeImagesCheckedByHeader: a JPEG or PNG cut short is refused 422
// whatever its size (checking that it is whole decodes nothing); an image
// of another format is decoded to be checked, unless its decoding would
// take over half the memory budget: then it is checked from its header
// only (a worker finds broken pixels), while a smaller broken one is still
// refused 422 here.
func TestLargeImagesCheckedByHeader(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{answers: map[string]string{"large": "Dee"}}
	e.startWorker(w)
	cfg := testConfig()
	cfg.MaxBodyBytes, cfg.UploadMemory = 1<<20, 1<<20
	_, hs := e.server(cfg)
	largePNG := pngImage(t, 600, 600) // decoding: 600*600*4*2 bytes, over half of 1 MiB
	large := bmpImage(t, 600, 600)    // decoding: 600*600*4 bytes, over half of 1 MiB
	small := bmpImage(t, 100, 100)
	if r := postImage(t, hs.URL, "large.png", largePNG[:len(largePNG)/2]); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "truncated") {
		t.Errorf("large PNG cut in half: %d %q, want 422 truncated", r.status, r.body)
	}
	if r := postImage(t, hs.URL, "large.bmp", large[:len(large)/2]); r.status != 200 || r.body != "large:Dee" {
		t.Errorf("large BMP cut in half: %d %q, want it queued (its header is sound)", r.status, r.body)
	}
	if r := postImage(t, hs.URL, "small.bmp", small[:len(small)/2]); r.status != http.StatusUnprocessableEntity {
		t.Errorf("small BMP cut in half: %d %q, want 422", r.status, r.body)
	}
}

// bmpImage is a w x h BMP: a format the web agent checks by decoding.
func bmpImage(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(i)
	}
	var b bytes.Buffer
	if err := bmp.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLongWaitOutlivesUploadDeadline: once its body has arrived, a call may
// wait for its answer far longer than the upload's idle limit: the read
// deadline that metered the upload must not end the call.
func TestLongWaitOutlivesUploadDeadline(t *testing.T) {
	e := newEnv(t)
	w := &fakeWorker{answers: map[string]string{"late": "Eve"}}
	w.hold.Store(true)
	e.startWorker(w)
	cfg := testConfig()
	cfg.UploadIdle = 200 * time.Millisecond
	l := e.listen(cfg)
	done := make(chan response, 1)
	go func() { done <- postImage(t, "http://"+l.addr, "late.png", pngImage(t, 32, 32)) }()
	waitFor(t, "the request queued", func() bool { return e.depth("requests").Visible == 1 })
	// Well past the idle limit (and any deadline it set) before answering.
	time.Sleep(10 * cfg.UploadIdle)
	w.hold.Store(false)
	if r := <-done; r.status != 200 || r.body != "late:Eve" {
		t.Fatalf("answer after a long wait: %d %q", r.status, r.body)
	}
}
