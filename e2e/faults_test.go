package e2e

import (
	"context"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestWorkerKilled SIGKILLs a worker of facecloud local while it holds
// requests. The queue gives its requests back after the visibility timeout,
// the fleet replaces it, and every request is still answered, once, with
// its own answer.
func TestWorkerKilled(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	local, base := startLocal(t, data, "--min-workers", "2", "--max-workers", "2", "--worker-concurrency", "4",
		"--visibility", "4s", "--heartbeat", "1s")
	local.waitLog(t, regexp.MustCompile(`(?s)worker ready.*worker ready`), time.Minute)

	files := c.Files[:300]
	var answered atomic.Int64
	answers := make([][]string, len(files)) // every body each request got
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	client := &http.Client{}
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code, body, err := postFile(context.Background(), client, base+"/", "inputFile", f)
			if err != nil || code != http.StatusOK {
				t.Errorf("%s: %d %q %v", stem(f), code, body, err)
				return
			}
			answers[i] = append(answers[i], body)
			answered.Add(1)
		})
	}

	eventually(t, time.Minute, "first answers", func() bool { return answered.Load() >= 30 })
	kids := children(local.cmd.Process.Pid)
	if len(kids) != 2 {
		t.Fatalf("local has %d worker processes (%v), want 2", len(kids), kids)
	}
	victim := kids[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed worker pid %d after %d answers", victim, answered.Load())
	wg.Wait()

	for i, f := range files {
		if len(answers[i]) != 1 {
			t.Errorf("%s got %d answers", stem(f), len(answers[i]))
			continue
		}
		if err := textAnswer(c.Want, f, answers[i][0]); err != nil {
			t.Error(err)
		}
	}
	logs := local.out.String()
	if !regexp.MustCompile(`worker crashed.*signal: killed`).MatchString(logs) {
		t.Error("the fleet did not notice the killed worker")
	}
	if !regexp.MustCompile(`receive=2`).MatchString(logs) {
		t.Error("no request was delivered a second time: the kill did not hit a worker holding requests")
	}
	// Each request was computed at most once: a redelivered request whose
	// result was already stored is re-sent, not recomputed.
	done := map[string]int{}
	for _, m := range regexp.MustCompile(`msg="request done".* id=(\S+)`).FindAllStringSubmatch(logs, -1) {
		done[m[1]]++
	}
	for id, n := range done {
		if n > 1 {
			t.Errorf("request %s computed %d times", id, n)
		}
	}
	eventually(t, 30*time.Second, "fleet back to 2 running workers", func() bool {
		return metric(t, base, "facecloud_fleet_running") == 2
	})
	local.stop(t, 2*time.Minute)
	for _, pid := range kids[1:] {
		if alive(pid) {
			t.Errorf("worker %d outlived facecloud local", pid)
		}
	}
}
