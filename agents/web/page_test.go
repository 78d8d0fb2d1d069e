package web

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/facecloud/facecloud/internal/testenv"
)

// TestUploadPageInBrowser drives the upload page in headless Chromium:
// choose a file, submit, and see the answer the page's script fetched, or
// the reason the request failed.
func TestUploadPageInBrowser(t *testing.T) {
	chromium := testenv.Chromium(t)
	tests := map[string]struct {
		worker *fakeWorker
		want   string
	}{
		"answered": {worker: &fakeWorker{answers: map[string]string{"test_00": "Paul"}}, want: "test_00: Paul"},
		"failed":   {worker: &fakeWorker{fail: "no face to enrol"}, want: "failed: no face to enrol"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.startWorker(tc.worker)
			_, hs := e.server(testConfig())
			img := filepath.Join(t.TempDir(), "test_00.png")
			if err := os.WriteFile(img, pngImage(t, 64, 64), 0o644); err != nil {
				t.Fatal(err)
			}
			answer, result := uploadInBrowser(t, chromium, hs.URL+"/", img)
			if answer != tc.want {
				t.Fatalf("page shows %q (result %s), want %q", answer, result, tc.want)
			}
		})
	}
}

// uploadInBrowser opens the upload page at url, submits img and returns
// the answer line and the result the page shows.
func uploadInBrowser(t *testing.T, chromium, url, img string) (answer, result string) {
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
	err := chromedp.Do(browser,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("inputFile")),
		chromedp.SetUploadFiles(chromedp.ID("inputFile"), []string{img}),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
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
