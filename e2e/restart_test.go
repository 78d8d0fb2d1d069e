package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestWebRestartKeepsResults kills the web agent (SIGKILL) while requests
// it accepted are provably not answered yet (the worker is frozen with
// SIGSTOP from halfway through and thawed after the kill), starts a new
// one on the same data directory, and fetches every accepted request's
// result by id.
func TestWebRestartKeepsResults(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)

	worker := start(t, "worker", "worker", "--data", data, "--concurrency", "2", "--visibility", "6s", "--heartbeat", "2s")
	web1 := start(t, "web-1", "web", "--addr", "127.0.0.1:0", "--data", data, "--open-recognition")
	base := web1.baseURL(t)

	// Post until 150 are accepted, then kill the web agent with calls in
	// flight; calls refused or cut by the kill were not accepted.
	const accept = 150
	files := c.Files[:400]
	var (
		mu         sync.Mutex
		accepted   = map[string]string{} // id -> file
		count      atomic.Int64
		killOnce   sync.Once
		freezeOnce sync.Once
	)
	client := &http.Client{Timeout: time.Minute}
	ctx := context.Background()
	work := make(chan string)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for f := range work {
				code, body, err := postFile(ctx, client, base+"/v1/recognitions?wait=0", "inputFile", f)
				if err != nil || code != http.StatusAccepted {
					continue
				}
				var st struct{ ID, Status string }
				if err := json.Unmarshal([]byte(body), &st); err != nil || st.ID == "" {
					t.Errorf("202 body %q: %v", body, err)
					continue
				}
				mu.Lock()
				accepted[st.ID] = f
				mu.Unlock()
				switch n := count.Add(1); {
				case n == accept/2:
					// Freeze the worker: what is accepted from now on is
					// surely not answered when the web agent dies.
					freezeOnce.Do(func() { freeze(t, worker) })
				case n >= accept:
					killOnce.Do(web1.kill)
				}
			}
		})
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	killOnce.Do(web1.kill)
	if len(accepted) < accept {
		t.Fatalf("only %d requests accepted before the kill, want at least %d", len(accepted), accept)
	}
	// With the worker frozen, count the accepted requests without a result.
	pending := 0
	for id := range accepted {
		if _, err := os.Stat(filepath.Join(data, "store", "results", id+".json")); err != nil {
			pending++
		}
	}
	t.Logf("%d requests accepted before the web agent was killed, %d of them not answered yet", len(accepted), pending)
	if pending < accept/2 {
		t.Fatalf("only %d accepted requests were pending when the web agent was killed, want at least %d", pending, accept/2)
	}
	if err := worker.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	web2 := start(t, "web-2", "web", "--addr", "127.0.0.1:0", "--data", data, "--open-recognition")
	base = web2.baseURL(t)
	for id, f := range accepted {
		var res struct {
			ID, Name, Status, Answer string
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			resp, err := client.Get(fmt.Sprintf("%s/v1/recognitions/%s?wait=30s", base, id))
			if err != nil {
				t.Fatalf("GET %s: %v", id, err)
			}
			code := resp.StatusCode
			err = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if code == http.StatusOK {
				if err != nil {
					t.Fatalf("GET %s: %v", id, err)
				}
				break
			}
			if code != http.StatusAccepted || time.Now().After(deadline) {
				t.Fatalf("GET %s: status %d", id, code)
			}
		}
		if res.ID != id || res.Name != stem(f) || res.Answer != c.Want[stem(f)] || res.Status != "done" {
			t.Errorf("result of %s (%s) = %+v, want %s", id, stem(f), res, c.Want[stem(f)])
		}
	}
	web2.stop(t, time.Minute)
	worker.stop(t, time.Minute)
}

// freeze stops p (SIGSTOP) and waits until it is stopped.
func freeze(t *testing.T, p *proc) {
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Errorf("freeze %s: %v", p.name, err)
		return
	}
	if err := waitState(p.cmd.Process.Pid, 'T'); err != nil {
		t.Error(err)
	}
}
