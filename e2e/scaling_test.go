package e2e

import (
	"context"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"
)

// TestScaleFromZeroAndBack starts facecloud local with no workers, sends a
// burst, and checks that the scaler starts workers at its next poll and
// that, once the work is done and the workers have been idle for
// --idle-exit, the fleet is back to zero with no worker process left.
func TestScaleFromZeroAndBack(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data)
	local, base := startLocal(t, data, "--open-recognition", "--min-workers", "0", "--max-workers", "2", "--idle-exit", "3s", "--interval", "1s")

	// The scaler has polled once and holds at zero.
	eventually(t, 30*time.Second, "first scaler poll", func() bool {
		_, err := scrape(base, "facecloud_fleet_desired")
		return err == nil
	})
	if d, r := metric(t, base, "facecloud_fleet_desired"), metric(t, base, "facecloud_fleet_running"); d != 0 || r != 0 {
		t.Fatalf("idle fleet: desired %v running %v, want 0 and 0", d, r)
	}
	if kids := children(local.cmd.Process.Pid); len(kids) != 0 {
		t.Fatalf("worker processes %v before any work", kids)
	}

	burst := c.Files[:40]
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, f := range burst {
		wg.Go(func() {
			code, body, err := postFile(context.Background(), http.DefaultClient, base+"/", "inputFile", f)
			if err != nil || code != http.StatusOK {
				t.Errorf("%s: %d %q %v", stem(f), code, body, err)
				return
			}
			if err := textAnswer(c.Want, f, body); err != nil {
				t.Error(err)
			}
		})
	}
	decided := eventually(t, 30*time.Second, "scale-out decision", func() bool {
		v, err := scrape(base, "facecloud_fleet_desired")
		return err == nil && v >= 1
	})
	started := eventually(t, 30*time.Second, "a worker process", func() bool {
		return len(children(local.cmd.Process.Pid)) >= 1
	})
	t.Logf("burst of %d from zero workers: desired raised after %s, first worker process after %s (scaler interval 1s)",
		len(burst), decided.Round(time.Millisecond), (decided + started).Round(time.Millisecond))
	m := local.waitLog(t, regexp.MustCompile(`msg="scaler decision".* action=scale-out from=0 to=(\d)`), 10*time.Second)
	if m[1] == "0" {
		t.Fatalf("scale-out decision to %s", m[1])
	}
	wg.Wait()
	t.Logf("burst answered after %s", time.Since(t0).Round(time.Millisecond))

	back := eventually(t, time.Minute, "fleet back to zero after idle exit", func() bool {
		d, err1 := scrape(base, "facecloud_fleet_desired")
		r, err2 := scrape(base, "facecloud_fleet_running")
		p, err3 := scrape(base, "facecloud_fleet_pending")
		return err1 == nil && err2 == nil && err3 == nil && d == 0 && r == 0 && p == 0 && len(children(local.cmd.Process.Pid)) == 0
	})
	t.Logf("fleet back to zero %s after the burst was answered (idle exit 3s)", back.Round(time.Millisecond))
	local.syncLog(t)
	if !regexp.MustCompile(`msg="worker idle; retired"`).MatchString(local.out.String()) {
		t.Error("no worker logged its retirement")
	}
	local.stop(t, time.Minute)
}
