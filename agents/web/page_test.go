package web

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/internal/testenv"
)

// TestUploadPageInBrowser drives the upload page in headless Chromium:
// type the API key (or not), choose a file, submit, and see the answer the
// page's script fetched, or the reason the request failed.
func TestUploadPageInBrowser(t *testing.T) {
	chromium := testenv.Chromium(t)
	tests := map[string]struct {
		worker *fakeWorker
		key    func(e *env) string
		open   bool // --open-recognition
		want   string
	}{
		"answered": {worker: &fakeWorker{answers: map[string]string{"test_00": "Paul"}}, key: adminKey, want: "test_00: Paul"},
		"failed":   {worker: &fakeWorker{fail: "no face to enrol"}, key: adminKey, want: "failed: no face to enrol"},
		"recognize key": {worker: &fakeWorker{answers: map[string]string{"test_00": "Paul"}},
			key: func(e *env) string { return e.newKey(keys.Recognize) }, want: "test_00: Paul"},
		"no key":       {worker: &fakeWorker{}, key: noKey, want: "error: an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"},
		"enroll key":   {worker: &fakeWorker{}, key: func(e *env) string { return e.newKey(keys.Enroll) }, want: "error: API key "},
		"open, no key": {worker: &fakeWorker{answers: map[string]string{"test_00": "Paul"}}, key: noKey, open: true, want: "test_00: Paul"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.startWorker(tc.worker)
			cfg := testConfig()
			cfg.OpenRecognition = tc.open
			_, hs := e.server(cfg)
			img := filepath.Join(t.TempDir(), "test_00.png")
			if err := os.WriteFile(img, pngImage(t, 64, 64), 0o644); err != nil {
				t.Fatal(err)
			}
			answer, result := uploadInBrowser(t, chromium, hs.URL+"/", tc.key(e), img)
			if answer != tc.want && !(strings.HasSuffix(tc.want, " ") && strings.HasPrefix(answer, tc.want)) {
				t.Fatalf("page shows %q (result %s), want %q", answer, result, tc.want)
			}
		})
	}
}

func adminKey(*env) string { return testKey }
func noKey(*env) string    { return "" }

// uploadInBrowser opens the upload page at url, types key (unless empty)
// into its key field, submits img and returns
// the answer line and the result the page shows.
func uploadInBrowser(t *testing.T, chromium, url, key, img string) (answer, result string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("inputFile")),
	}
	if key != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.ID("apiKey"), key))
	}
	err := chromedp.Do(browser, append(steps,
		chromedp.SetUploadFiles(chromedp.ID("inputFile"), []string{img}),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("result")),
	)...)
	if err != nil {
		t.Fatalf("driving the upload page: %v", err)
	}
	if answer, err = chromedp.Run(browser, chromedp.Text(chromedp.ID("answer"))); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if result, err = chromedp.Run(browser, chromedp.Text(chromedp.ID("result"))); err != nil {
		t.Fatalf("reading the result: %v", err)
	}
	return answer, result
}
