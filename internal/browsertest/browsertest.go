// Package browsertest drives headless Chromium for the browser tests: a tab
// that records the errors its pages report (uncaught exceptions, failed
// scripts, Content-Security-Policy violations), with the waits, reads and
// screenshots the tests need.
package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/facecloud/facecloud/internal/testenv"
)

// Tab is one browser tab; it closes with the test.
type Tab struct {
	t   testing.TB
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// Width and Height are the window's size: the screenshots' too.
const (
	Width  = 1280
	Height = 900
)

// Open starts headless Chromium (testenv.Chromium: skipped, or failed where
// a browser is required, when there is none) with one tab.
func Open(t testing.TB) *Tab {
	t.Helper()
	chromium := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(Width, Height),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	b := &Tab{t: t, ctx: tab}
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A refused request is logged by the network (the tests make
			// some on purpose and check the page's answer to them).
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				b.mu.Lock()
				b.errors = append(b.errors, m.String())
				b.mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(tab, chromedp.EmulateViewport(Width, Height)); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	return b
}

// Do runs steps, failing the test with what on an error. Each call is
// bounded by a minute.
func (b *Tab) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a script in the page (awaiting it when it is a promise)
// and returns its value.
func Eval[T any](b *Tab, what, script string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Text is the text of the first element sel (a CSS selector) selects.
func (b *Tab) Text(sel string) string {
	b.t.Helper()
	return Eval[string](b, "read "+sel, `(() => { const e = document.querySelector(`+quote(sel)+`); return e ? e.textContent : "(no "+`+quote(sel)+`+")"; })()`)
}

// Wait waits until the script's value is true, for up to a minute.
func (b *Tab) Wait(what, script string) {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !Eval[bool](b, what, script) {
		if time.Now().After(deadline) {
			page := Eval[string](b, "read the page", `document.body.innerText.slice(0, 3000)`)
			b.mu.Lock()
			errs := b.errors
			b.mu.Unlock()
			b.t.Fatalf("%s: not within a minute (%s)\npage errors: %q\npage:\n%s", what, script, errs, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NoErrors fails the test for each error the pages reported.
func (b *Tab) NoErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		b.t.Errorf("page error: %s", e)
	}
}

// Screenshot takes the whole page as a PNG and writes it to path.
func (b *Tab) Screenshot(path string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return png
}

// quote writes s as a JavaScript string literal.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
