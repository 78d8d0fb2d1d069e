package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLocal enrols the course gallery into a fresh data directory and runs
// facecloud local on a free port with extra flags; it returns the process
// and the base URL.
func startLocal(t *testing.T, data string, flags ...string) (*proc, string) {
	t.Helper()
	args := append([]string{"local", "--addr", "127.0.0.1:0", "--data", data}, flags...)
	p := start(t, "local", args...)
	base := p.baseURL(t)
	adminKeys.Store(base, readAdminKey(t, data))
	return p, base
}

// TestCourseWorkload runs the course's 1000 requests at concurrency 100
// through facecloud local twice: with facecloud submit, and as plain
// multipart POSTs the way the course's workload generator sends them. Every
// answer must be right and be the answer to its own request.
func TestCourseWorkload(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	local, base := startLocal(t, data, "--open-recognition", "--idle-exit", "30s")

	t.Run("submit", func(t *testing.T) {
		t0 := time.Now()
		cmd := exec.Command(binary(t), "submit", "--url", base+"/", "--concurrency", "100", "--labels", c.Labels1000, "--json", c.Requests)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("facecloud submit: %v\n%s\n%s", err, out, tail(stderr.String(), 20))
		}
		var s struct {
			Requests, Completed, Failed, Correct, Wrong int
			Throughput                                  float64 `json:"throughput_per_second"`
			P50                                         float64 `json:"p50_ms"`
			P99                                         float64 `json:"p99_ms"`
		}
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("submit summary %q: %v", out, err)
		}
		if s.Requests != 1000 || s.Correct != 1000 || s.Failed != 0 || s.Wrong != 0 {
			t.Fatalf("submit summary %+v, want 1000/1000 correct", s)
		}
		t.Logf("submit: 1000/1000 correct in %s, %.1f req/s, p50 %.0f ms, p99 %.0f ms", time.Since(t0).Round(time.Millisecond), s.Throughput, s.P50, s.P99)
	})

	t.Run("plain multipart", func(t *testing.T) {
		t0 := time.Now()
		client := &http.Client{} // no timeout, like the course's generator
		work := make(chan string)
		var (
			mu       sync.Mutex
			problems []string
			correct  int
		)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				for f := range work {
					code, body, err := postFile(context.Background(), client, base+"/", "inputFile", f)
					mu.Lock()
					switch {
					case err != nil:
						problems = append(problems, err.Error())
					case code != http.StatusOK:
						problems = append(problems, stem(f)+": status "+http.StatusText(code)+": "+body)
					default:
						if err := textAnswer(c.Want, f, body); err != nil {
							problems = append(problems, err.Error())
						} else {
							correct++
						}
					}
					mu.Unlock()
				}
			})
		}
		for _, f := range c.Files {
			work <- f
		}
		close(work)
		wg.Wait()
		if correct != 1000 {
			t.Fatalf("%d/1000 correct; first problems: %q", correct, problems[:min(len(problems), 10)])
		}
		t.Logf("plain multipart: 1000/1000 correct in %s", time.Since(t0).Round(time.Millisecond))
	})
	local.stop(t, 2*time.Minute)
}
