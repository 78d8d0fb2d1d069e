package e2e

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestShutdownLosesNothing stops facecloud local in each way it can be
// asked to while calls wait for their answers: Ctrl-C in a terminal
// (SIGINT to the whole process group, workers included), SIGTERM to the
// parent alone, SIGTERM to every process at once; with the fleet still
// starting from zero, or with busy workers (frozen with SIGSTOP until after
// the signal, so the calls are provably still waiting). Every accepted call
// must get its own right answer, and local must exit cleanly as soon as the
// work is done (it logs whether it drained) with no worker left.
func TestShutdownLosesNothing(t *testing.T) {
	c := courseSet(t)
	tests := map[string]struct {
		minWorkers string
		freeze     bool // freeze the workers before the signal
		group      bool // signal the whole process group
		sig        syscall.Signal
	}{
		"Ctrl-C to the group, fleet starting from zero": {minWorkers: "0", group: true, sig: syscall.SIGINT},
		"Ctrl-C to the group, workers busy":             {minWorkers: "2", freeze: true, group: true, sig: syscall.SIGINT},
		"SIGTERM to the parent, fleet starting":         {minWorkers: "0", sig: syscall.SIGTERM},
		"SIGTERM to every process, workers busy":        {minWorkers: "2", freeze: true, group: true, sig: syscall.SIGTERM},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := t.TempDir()
			enrollCourse(t, data)
			local, base := startLocal(t, data, "--open-recognition", "--min-workers", tc.minWorkers, "--max-workers", "2", "--interval", "500ms")
			var workers []int
			if tc.minWorkers != "0" {
				local.waitLog(t, regexp.MustCompile(`(?s)worker ready.*worker ready`), time.Minute)
				for _, m := range launchedRE.FindAllStringSubmatch(local.out.String(), -1) {
					pid, _ := strconv.Atoi(m[2])
					workers = append(workers, pid)
				}
			}
			if tc.freeze {
				for _, pid := range workers {
					if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
						t.Fatal(err)
					}
					if err := waitState(pid, 'T'); err != nil {
						t.Fatal(err)
					}
				}
			}

			files := c.Files[:60]
			codes, bodies := make([]int, len(files)), make([]string, len(files))
			var wg sync.WaitGroup
			for i, f := range files {
				wg.Go(func() {
					code, body, err := postFile(context.Background(), &http.Client{}, base+"/", "inputFile", f)
					if err != nil {
						body = err.Error()
					}
					codes[i], bodies[i] = code, body
				})
			}
			// Every call is accepted (stored and queued) and waiting.
			eventually(t, time.Minute, "60 calls waiting", func() bool {
				v, err := scrape(base, "facecloud_web_waiting_calls")
				return err == nil && v == float64(len(files))
			})
			target := local.cmd.Process.Pid
			if tc.group {
				target = -target
			}
			if err := syscall.Kill(target, tc.sig); err != nil {
				t.Fatal(err)
			}
			local.waitLog(t, regexp.MustCompile(`web agent draining`), 30*time.Second)
			for _, pid := range workers {
				if tc.freeze {
					_ = syscall.Kill(pid, syscall.SIGCONT)
				}
			}
			wg.Wait()
			for i, f := range files {
				if codes[i] != http.StatusOK {
					t.Errorf("%s: %d %s", stem(f), codes[i], bodies[i])
				} else if err := textAnswer(c.Want, f, bodies[i]); err != nil {
					t.Error(err)
				}
			}
			select {
			case <-local.done:
			case <-time.After(2 * time.Minute):
				t.Fatal("facecloud local still running 2 minutes after the signal")
			}
			if local.err != nil {
				t.Errorf("facecloud local exited with %v", local.err)
			}
			if !regexp.MustCompile(`msg="web agent stopped".* drained=true`).MatchString(local.out.String()) {
				t.Error("the web agent did not drain: some call was cut")
			}
			launched := launchedRE.FindAllStringSubmatch(local.out.String(), -1)
			if len(workers) > 0 && len(launched) != len(workers) {
				// A worker that stopped at the signal would have been
				// replaced to finish the queued jobs.
				t.Errorf("%d workers launched in all, want the %d that ran at the signal to have kept working", len(launched), len(workers))
			}
			for _, m := range launched {
				if pid, _ := strconv.Atoi(m[2]); alive(pid) {
					t.Errorf("worker local-%s (pid %d) outlived facecloud local", m[1], pid)
				}
			}
		})
	}
}
