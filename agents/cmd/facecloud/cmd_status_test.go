package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
	"github.com/facecloud/facecloud/agents/status"
)

// statusDataDir lays out a data directory as facecloud local leaves it
// while it works: requests queued, one dead letter, and the reports of the
// scaler and the web agent in the store.
func statusDataDir(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	env := &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: func(string) string { return "" }}
	for name, n := range map[string]int{RequestQueueName: 3, RequestQueueName + DeadLetterSuffix: 1} {
		q, err := sqlitequeue.Open(filepath.Join(dir, localQueueFile), name, sqlitequeue.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := q.Send(ctx, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		q.Close()
	}
	store, err := openStore(ctx, env, localStoreURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	rec := status.NewRecorder("laptop", now.Add(-time.Hour))
	for i := range 12 {
		rec.Answered(now.Add(-time.Duration(i)*time.Second), 1500*time.Millisecond)
	}
	rec.Failed(status.Failure{At: now, Call: "POST /", Status: 422, Reason: "x.jpg: image is 8x8 pixels, at least 16 needed"})
	if err := status.Put(ctx, store, status.WebKey("laptop"), rec.Report(now, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	err = status.Put(ctx, store, status.ScalerKey, status.ScalerReport{
		V: status.Version, Holder: "local", Written: now, Polled: now, EveryMS: 5000, IntervalMS: 1000,
		Policy: status.Policy{Max: 4, TargetBacklog: 4}, Fleet: status.Fleet{Desired: 1, Running: 1, Max: 4},
		Last:      status.Decision{At: now, Action: "hold", From: 1, To: 1, Backlog: 3, Reason: "backlog 3 matches 1 workers"},
		Decisions: []status.Decision{{At: now.Add(-time.Minute), Action: "scale-out", From: 0, To: 1, Backlog: 3, Reason: "backlog 3 wants 1 workers at 4 each"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStatusOfADataDirectory(t *testing.T) {
	dir := statusDataDir(t)
	code, out, errOut := runCmd(t, "status", "--data", dir)
	if code != 0 {
		t.Fatalf("status = %d: %s", code, errOut)
	}
	for _, want := range []string{
		"queue     3 visible, 0 in flight, 1 dead letter\n",
		"fleet     1 desired, 1 running, 0 starting (0..4 workers, 4 requests each)",
		"12 answered, 1 failed, latency p50 1.",
		"scale-out 0->1: backlog 3 wants 1 workers at 4 each",
		"POST / 422: x.jpg: image is 8x8 pixels",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n > 10 {
		t.Errorf("status takes %d lines, want a few:\n%s", n, out)
	}
	code, out, _ = runCmd(t, "status", "--data", dir, "--json")
	var st status.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json = %d, %v:\n%s", code, err, out)
	}
	if st.Queue == nil || st.Queue.Visible != 3 || *st.Queue.DeadLetter != 1 || st.Fleet.Desired != 1 || st.Requests.OK != 12 || len(st.Failures) != 1 {
		t.Fatalf("status --json = %+v", st)
	}
}

func TestStatusOfAWebAgent(t *testing.T) {
	now := time.Now().UTC()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" || r.Header.Get("Authorization") != "Bearer fc_right" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid API key (malformed, unknown or revoked)"}` + "\n"))
			return
		}
		_ = json.NewEncoder(w).Encode(status.Merge(status.Sources{Now: now, Live: &status.Queue{Visible: 7, InFlight: 2}, ScalerErr: status.ErrNone}))
	}))
	defer srv.Close()
	code, out, errOut := runCmd(t, "status", "--url", srv.URL+"/", "--api-key", "fc_right")
	if code != 0 || !strings.Contains(out, "queue     7 visible, 2 in flight, dead letters unknown") || !strings.Contains(out, "no scaler report") {
		t.Fatalf("status --url = %d:\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCmd(t, "status", "--url", srv.URL, "--api-key", "fc_wrong")
	if code != 1 || !strings.Contains(errOut, "answered 401: invalid API key") {
		t.Fatalf("status with a wrong key = %d: %s", code, errOut)
	}
}

func TestStatusUsage(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		args []string
		code int
		want string
	}{
		"neither":              {args: []string{"status"}, code: 2, want: "give one of --data and --url"},
		"both":                 {args: []string{"status", "--data", dir, "--url", "http://h/"}, code: 2, want: "give one of --data and --url"},
		"url without key":      {args: []string{"status", "--url", "http://h/"}, code: 2, want: "needs an admin API key"},
		"not a data directory": {args: []string{"status", "--data", dir}, code: 1, want: "is not a data directory of facecloud local"},
		"bad url":              {args: []string{"status", "--url", "h:8080", "--api-key", "k"}, code: 1, want: "want the web agent's address"},
		"bad watch":            {args: []string{"status", "--data", dir, "--watch", "1ms"}, code: 2, want: "out of range 500ms..1h"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("%v = %d, %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("status made files in a directory that was not a data directory: %v", entries)
	}
}
