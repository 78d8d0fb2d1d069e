package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// webLogBuffer collects a command's stderr while it runs.
type webLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *webLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *webLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var webListenAddr = regexp.MustCompile(`msg="web agent listening" addr=(\S+)`)

func TestWebCommandServesAndStops(t *testing.T) {
	dir := t.TempDir()
	logs := &webLogBuffer{}
	env := &environment{stdout: io.Discard, stderr: logs, getenv: func(k string) string {
		return map[string]string{"FACECLOUD_WAIT": "30s", "FACECLOUD_MAX_BODY": "1MiB"}[k]
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, env, []string{"web", "--data", dir, "--addr", "127.0.0.1:0", "--drain", "2s"})
	}()
	var addr string
	deadline := time.Now().Add(20 * time.Second)
	for addr == "" {
		if m := webListenAddr.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			cancel()
			t.Fatalf("web agent did not log where it listens:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
	if l := logs.String(); !strings.Contains(l, "TextWait:30s") || !strings.Contains(l, "MaxBodyBytes:1048576") {
		t.Errorf("effective config not logged with env defaults applied:\n%s", l)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("web exited %d after Ctrl-C, want 0:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("web did not stop after its context ended")
	}
}

func TestWebCommandRefusesBadSetup(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		"no backends":      {args: []string{}, code: 1, want: "--requests --replies or --reply-prefix --input --output] not given"},
		"both reply kinds": {args: []string{"--data", "D", "--replies", "sqlite:///x/q.db?name=r", "--reply-prefix", "sqlite:///x/q.db?name=r-"}, code: 1, want: "one of --replies and --reply-prefix"},
		"bad reply prefix": {args: []string{"--data", "D", "--reply-prefix", "nats://x"}, code: 1, want: `reply queue prefix URL "nats://x": scheme "nats" not supported`},
		"bad limit":        {args: []string{"--data", "D", "--max-inflight", "0"}, code: 1, want: "max in-flight 0 out of range 1..100000"},
		"bad size":         {args: []string{"--max-body", "lots"}, code: 2, want: `"lots" is not a size such as 10MiB`},
		"bad env":          {args: []string{"--data", "D"}, env: map[string]string{"FACECLOUD_WAIT": "soon"}, code: 1, want: `FACECLOUD_WAIT="soon" is not a duration`},
		"bad env bool":     {args: []string{"--data", "D"}, env: map[string]string{"FACECLOUD_NEAREST": "perhaps"}, code: 1, want: "FACECLOUD_NEAREST"},
		"bad queue scheme": {args: []string{"--data", "D", "--requests", "nats://x"}, code: 1, want: `scheme "nats" not supported`},
		"stray argument":   {args: []string{"--data", "D", "extra"}, code: 2, want: "unexpected arguments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"web"}, tc.args...)
			for i, a := range args {
				if a == "D" {
					args[i] = t.TempDir()
				}
			}
			var stderr bytes.Buffer
			env := &environment{stdout: io.Discard, stderr: &stderr, getenv: func(k string) string { return tc.env[k] }}
			code := run(context.Background(), env, args)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d mentioning %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}
