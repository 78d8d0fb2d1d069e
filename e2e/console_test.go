package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/facecloud/facecloud/internal/browsertest"
	"github.com/facecloud/facecloud/internal/testenv"
)

// TestConsoleDuringCourseRun opens the console of facecloud local, with
// the course gallery enrolled and the real engine, while the course's 1000
// requests run: the Live view follows the run, `facecloud status` prints
// the same figures, the Gallery shows the enrolled faces' thumbnails and
// Try draws the faces and landmarks the engine finds in a demo photo. The
// screenshots go to docs/console/course-*.png.
func TestConsoleDuringCourseRun(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	_, base := startLocal(t, data, "--open-recognition")
	key := readAdminKey(t, data)
	shot := func(b *browsertest.Tab, name string) {
		b.Screenshot(filepath.Join(testenv.RepoRoot(), "docs", "console", "course-"+name+".png"))
	}

	submit := exec.Command(binary(t), "submit", "--url", base+"/", "--concurrency", "100", "--labels", c.Labels1000, c.Requests)
	var submitOut, submitErr strings.Builder
	submit.Stdout, submit.Stderr = &submitOut, &submitErr
	if err := submit.Start(); err != nil {
		t.Fatal(err)
	}
	submitted := false
	t.Cleanup(func() {
		if !submitted {
			_ = submit.Process.Kill()
			_ = submit.Wait()
		}
	})

	b := browsertest.Open(t)
	b.Do("sign in",
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)),
	)
	// The run under way: workers running and answers counted.
	b.Wait("the run on the Live view", `Number(document.getElementById("f-running").textContent) >= 1 &&
		parseInt(document.getElementById("r-note").textContent, 10) >= 400`)
	out, err := exec.Command(binary(t), "status", "--url", base+"/", "--api-key", key).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "answered") || !strings.Contains(string(out), "dead letter") {
		t.Fatalf("facecloud status during the run: %v\n%s", err, out)
	}
	t.Logf("facecloud status during the run:\n%s", out)
	shot(b, "live")

	if err := submit.Wait(); err != nil {
		t.Fatalf("facecloud submit: %v\n%s\n%s", err, submitOut.String(), tail(submitErr.String(), 20))
	}
	submitted = true
	if !strings.Contains(submitOut.String(), "Total number of correct predictions : 1000") {
		t.Fatalf("facecloud submit:\n%s", submitOut.String())
	}
	b.Wait("every answer on the Live view", `parseInt(document.getElementById("r-note").textContent, 10) >= 1000 &&
		document.getElementById("r-failed").textContent === "0"`)
	// The web agent writes its figures to the data directory every 5 s
	// (--status-every): facecloud status --data sees them then.
	eventually(t, 30*time.Second, "facecloud status --data to count every answer", func() bool {
		out, err := exec.Command(binary(t), "status", "--data", data, "--json").Output()
		var st struct {
			Requests struct{ OK, Failed int }
		}
		return err == nil && json.Unmarshal(out, &st) == nil && st.Requests.OK == 1000 && st.Requests.Failed == 0
	})
	out, err = exec.Command(binary(t), "status", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1000 answered, 0 failed") {
		t.Fatalf("facecloud status after the run: %v\n%s", err, out)
	}
	t.Logf("facecloud status after the run:\n%s", out)

	// The course gallery: its 8 people, each face with its thumbnail.
	b.Do("gallery tab", chromedp.Click(chromedp.CSS(`a[data-tab="gallery"]`)))
	b.Wait("the persons", `document.getElementById("gallery-count").textContent.startsWith("8 persons, ")`)
	b.Wait("the thumbnails", `(() => {
		const imgs = [...document.querySelectorAll(".person img")];
		return imgs.length >= 8 && imgs.every((i) => i.complete && i.naturalWidth > 0);
	})()`)
	shot(b, "gallery")

	// A demo photo of several people, with landmarks.
	models, err := exec.Command(binary(t), "models", "path").Output()
	if err != nil {
		t.Fatalf("facecloud models path: %v", err)
	}
	photo := filepath.Join(strings.TrimSpace(string(models)), "demo", "sample1.jpg")
	b.Do("try a photo",
		chromedp.Click(chromedp.CSS(`a[data-tab="try"]`)),
		chromedp.WaitVisible(chromedp.CSS("#try-form")),
		chromedp.Click(chromedp.CSS("#try-landmarks")),
		chromedp.SetUploadFiles(chromedp.CSS("#try-file"), []string{photo}),
	)
	b.Wait("the drawing", `document.getElementById("try-canvas").dataset.drawn !== undefined`)
	drawn := browsertest.Eval[[]string](b, "read the drawing", `(() => { const c = document.getElementById("try-canvas"); return [c.dataset.drawn, c.dataset.landmarks]; })()`)
	if drawn[0] == "0" || drawn[0] != drawn[1] {
		t.Errorf("%s faces drawn, %s with landmarks: want several, each with its landmarks", drawn[0], drawn[1])
	}
	shot(b, "try")
	b.NoErrors()
}
