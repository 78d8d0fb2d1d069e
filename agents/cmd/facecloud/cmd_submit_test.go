package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/client"
)

// submitTestServer is a test double for the web agent's POST /: it answers
// "<stem>:<name>" from names, so submit's printing and exit status can be
// checked without the service.
func submitTestServer(t *testing.T, names map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, h, err := r.FormFile("inputFile")
		if err != nil {
			http.Error(w, "error: missing file field inputFile", http.StatusBadRequest)
			return
		}
		_, _ = io.Copy(io.Discard, f)
		stem := strings.TrimSuffix(h.Filename, filepath.Ext(h.Filename))
		fmt.Fprintf(w, "%s:%s", stem, names[stem])
	}))
	t.Cleanup(srv.Close)
	return srv
}

func submitTestFiles(t *testing.T) (dir, labels string) {
	t.Helper()
	dir = t.TempDir()
	for _, n := range []string{"test_00", "test_01", "test_02"} {
		if err := os.WriteFile(filepath.Join(dir, n+".jpg"), []byte("jpeg bytes of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	labels = filepath.Join(t.TempDir(), "labels.csv")
	if err := os.WriteFile(labels, []byte("Image,Results\ntest_00,Paul\ntest_01,Emily\ntest_02,Bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, labels
}

func runSubmitCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(context.Background(), env, append([]string{"submit"}, args...))
	return code, out.String(), errb.String()
}

func TestSubmitCommand(t *testing.T) {
	dir, labels := submitTestFiles(t)
	tests := map[string]struct {
		names  map[string]string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		"all correct": {
			names: map[string]string{"test_00": "Paul", "test_01": "Emily", "test_02": "Bob"},
			args:  []string{"--labels", labels, dir},
			stdout: []string{
				"Total number of requests: 3\n",
				"Total number of requests completed successfully: 3\n",
				"Total number of failed requests: 0\n",
				"Total number of correct predictions : 3\n",
				"Total number of wrong predictions: 0\n",
				"Total Test Duration: ",
				"Latency p50: ",
			},
		},
		"one wrong exits 1": {
			names:  map[string]string{"test_00": "Paul", "test_01": "Paul", "test_02": "Bob"},
			args:   []string{"--labels", labels, dir},
			code:   1,
			stdout: []string{"Total number of correct predictions : 2\n", "Total number of wrong predictions: 1\n"},
			stderr: []string{`wrong: answer "Paul", label says "Emily" (` + filepath.Join(dir, "test_01.jpg") + `)`, "1 wrong of 3"},
		},
		"verbose prints like the course generator": {
			names:  map[string]string{"test_00": "Paul", "test_01": "Emily", "test_02": "Bob"},
			args:   []string{"-v", filepath.Join(dir, "test_00.jpg")},
			stdout: []string{filepath.Join(dir, "test_00.jpg") + " uploaded!\nClassification result: test_00:Paul\n", "correct predictions : 1 (no labels given"},
		},
		"missing url":     {args: []string{"--url", "", dir}, code: 2, stderr: []string{"--url is required"}},
		"bad concurrency": {args: []string{"--concurrency", "0", dir}, code: 1, stderr: []string{"concurrency 0 out of range 1..10000"}},
		"no images":       {args: []string{}, code: 1, stderr: []string{"no images given"}},
		"bad labels":      {args: []string{"--labels", filepath.Join(dir, "test_00.jpg"), dir}, code: 1, stderr: []string{"lacks the columns Image and Results"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := submitTestServer(t, tc.names)
			args := append([]string{"--url", srv.URL + "/"}, tc.args...)
			code, stdout, stderr := runSubmitCLI(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

func TestSubmitCommandJSON(t *testing.T) {
	dir, labels := submitTestFiles(t)
	srv := submitTestServer(t, map[string]string{"test_00": "Paul", "test_01": "Emily", "test_02": "Bob"})
	code, stdout, stderr := runSubmitCLI(t, "--url", srv.URL, "--json", "--labels", labels, "--concurrency", "2", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s client.Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("stdout is not a JSON summary: %v\n%s", err, stdout)
	}
	if s.Requests != 3 || s.Correct != 3 || !s.Labelled || s.P99MS <= 0 || s.DurationSeconds <= 0 {
		t.Fatalf("summary %+v", s)
	}
}

// TestSubmitToClosedPort: with nothing listening at the URL, submit ends at
// once with one line that says it cannot connect, instead of retrying each
// request.
func TestSubmitToClosedPort(t *testing.T) {
	dir, _ := submitTestFiles(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there any more
	code, stdout, stderr := runSubmitCLI(t, "--url", url, "--retries", "5", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "cannot connect to "+url) {
		t.Errorf("stderr is not one line saying it cannot connect:\n%s", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}
