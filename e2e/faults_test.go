package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// launchedRE finds a local fleet's worker processes in its log.
var launchedRE = regexp.MustCompile(`msg="worker launched".* worker=(\d+) pid=(\d+)`)

// TestWorkerKilled SIGKILLs a worker of facecloud local at a moment it
// provably holds requests it has not answered. The queue gives them back
// after the visibility timeout, the fleet replaces the worker, and every
// request is still answered, once, with its own answer.
func TestWorkerKilled(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	local, base := startLocal(t, data, "--open-recognition", "--min-workers", "2", "--max-workers", "2", "--worker-concurrency", "4",
		"--visibility", "4s", "--heartbeat", "1s")
	local.waitLog(t, regexp.MustCompile(`(?s)worker ready.*worker ready`), time.Minute)
	// Each process sized to its share of the cores: the workers split
	// them, the web agent takes a quarter (--web-procs, --worker-procs).
	m := local.waitLog(t, regexp.MustCompile(`msg="facecloud local running".* cores=(\d+) web_procs=(\d+) worker_procs=(\d+)`), time.Second)
	cores, _ := strconv.Atoi(m[1])
	if want := fmt.Sprintf("%d %d", max(cores/2, 1), (cores+3)/4); m[3]+" "+m[2] != want || cores < 1 {
		t.Fatalf("on %d cores: worker_procs=%s web_procs=%s; want %s", cores, m[3], m[2], want)
	}
	local.waitLog(t, regexp.MustCompile(fmt.Sprintf(`(?s)msg="worker ready".* procs=%s .*msg="worker ready".* procs=%s `, m[3], m[3])), time.Second)

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

	// The victim is frozen when it is seen holding requests it has not
	// replied to, then killed: those requests can only be answered by
	// being delivered again.
	launched := launchedRE.FindAllStringSubmatch(local.out.String(), -1)
	var workers []holder
	for _, m := range launched {
		pid, _ := strconv.Atoi(m[2])
		workers = append(workers, holder{pid: pid, name: "local-" + m[1], logs: local})
	}
	if len(workers) != 2 {
		t.Fatalf("local launched %d workers, want 2:\n%v", len(workers), launched)
	}
	victim, held := killHolder(t, workers, time.Minute)
	t.Logf("killed worker %s (pid %d) after %d answers, holding %d requests", victim.name, victim.pid, answered.Load(), len(held))
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
	// Every request the victim held is delivered a second time (to the
	// other worker or the victim's replacement).
	eventually(t, time.Minute, "the killed worker's requests delivered again", func() bool {
		return deliveredAgain(local.out.String(), held)
	})
	local.syncLog(t)
	logs := local.out.String()
	if !regexp.MustCompile(`worker crashed.*signal: killed`).MatchString(logs) {
		t.Error("the fleet did not notice the killed worker")
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
	for _, m := range launchedRE.FindAllStringSubmatch(local.out.String(), -1) {
		if pid, _ := strconv.Atoi(m[2]); alive(pid) {
			t.Errorf("worker local-%s (pid %d) outlived facecloud local", m[1], pid)
		}
	}
}
