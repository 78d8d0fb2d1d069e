package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// findChromium returns the browser to drive, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FACECLOUD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found (apt-get install chromium, or set FACECLOUD_CHROMIUM): skipping the upload page test in a browser")
	return ""
}

// TestUploadPageInBrowser drives the upload page in headless Chromium:
// choose a file, submit, and see the answer the page's script fetched.
func TestUploadPageInBrowser(t *testing.T) {
	chromium := findChromium(t)
	e := newEnv(t)
	e.startWorker(&fakeWorker{answers: map[string]string{"test_00": "Paul"}})
	_, hs := e.server(testConfig())
	img := filepath.Join(t.TempDir(), "test_00.png")
	if err := os.WriteFile(img, pngImage(t, 64, 64), 0o644); err != nil {
		t.Fatal(err)
	}
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
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("inputFile")),
		chromedp.SetUploadFiles(chromedp.ID("inputFile"), []string{img}),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("result")),
	)
	if err != nil {
		t.Fatalf("driving the upload page: %v", err)
	}
	answer, err := chromedp.Run(browser, chromedp.Text(chromedp.ID("answer")))
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	result, err := chromedp.Run(browser, chromedp.Text(chromedp.ID("result")))
	if err != nil {
		t.Fatalf("reading the result: %v", err)
	}
	if answer != "test_00: Paul" {
		t.Fatalf("page shows %q (result %s), want \"test_00: Paul\"", answer, result)
	}
}
