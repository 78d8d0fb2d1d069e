package main

import (
	"context"
	"strings"
	"testing"
)

// TestAgentCommandsRefuseBadConfig checks that the worker, scaler and local
// commands refuse bad flags and environment with a one-line reason before
// touching any backend or the model.
func TestAgentCommandsRefuseBadConfig(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		"worker without backends":     {args: []string{"worker"}, code: 2, want: "give --data DIR"},
		"worker zero concurrency":     {args: []string{"worker", "--data", "D", "--concurrency", "0"}, code: 1, want: "concurrency 0 out of range 1..256"},
		"worker slow heartbeat":       {args: []string{"worker", "--data", "D", "--visibility", "10s", "--heartbeat", "6s"}, code: 1, want: "at most half the visibility"},
		"worker bad threshold":        {args: []string{"worker", "--data", "D", "--threshold", "3"}, code: 1, want: "threshold 3 out of range 0..2"},
		"worker bad env":              {args: []string{"worker", "--data", "D"}, env: map[string]string{"FACECLOUD_IDLE_EXIT": "soon"}, code: 1, want: `FACECLOUD_IDLE_EXIT="soon" is not a duration`},
		"worker stray argument":       {args: []string{"worker", "--data", "D", "extra"}, code: 1, want: "unexpected arguments"},
		"scaler without fleet":        {args: []string{"scaler", "--data", "D"}, code: 2, want: "--fleet and one of --requests or --data are required"},
		"scaler max too big":          {args: []string{"scaler", "--data", "D", "--fleet", "asg://g", "--max-workers", "101"}, code: 1, want: "max workers 101 out of range 1..100"},
		"scaler fast interval":        {args: []string{"scaler", "--data", "D", "--fleet", "asg://g", "--interval", "1ms"}, code: 1, want: "out of range 100ms..5m"},
		"scaler unknown fleet":        {args: []string{"scaler", "--data", t.TempDir(), "--fleet", "nope://g"}, code: 1, want: `scheme "nope" not supported`},
		"local without data":          {args: []string{"local"}, code: 2, want: "--data is required"},
		"local min above max":         {args: []string{"local", "--data", "D", "--min-workers", "3", "--max-workers", "2"}, code: 1, want: "min workers 3 out of range 0..2"},
		"local bad target":            {args: []string{"local", "--data", "D", "--target-backlog", "0"}, code: 1, want: "target backlog per worker 0 out of range 1..10000"},
		"local bad env":               {args: []string{"local", "--data", "D"}, env: map[string]string{"FACECLOUD_MAX_WORKERS": "many"}, code: 1, want: `FACECLOUD_MAX_WORKERS="many" is not a whole number`},
		"unknown flag":                {args: []string{"web", "--bogus"}, code: 2, want: "unknown flag --bogus (run facecloud web -h"},
		"duration without unit":       {args: []string{"web", "--wait", "10"}, code: 2, want: `--wait "10" is not a duration such as 30s`},
		"port without host":           {args: []string{"web", "--data", "D", "--addr", "18556"}, code: 1, want: "write 127.0.0.1:18556"},
		"local bad worker settings":   {args: []string{"local", "--data", "D", "--max-receives", "0"}, code: 1, want: "max receives 0 out of range 1..1000"},
		"worker negative procs":       {args: []string{"worker", "--data", "D", "--procs", "-1"}, code: 1, want: "--procs -1 out of range 0..1024"},
		"local too many web procs":    {args: []string{"local", "--data", "D", "--web-procs", "1025"}, code: 1, want: "--web-procs 1025 out of range 0..1024"},
		"local negative worker procs": {args: []string{"local", "--data", "D", "--worker-procs", "-2"}, code: 1, want: "--worker-procs -2 out of range 0..1024"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return tc.env[k] }}
			code := run(context.Background(), env, tc.args)
			if code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
			if code == 1 {
				last := strings.TrimRight(stderr.String(), "\n")
				if strings.Contains(last, "\n") {
					t.Errorf("error is not one line: %q", last)
				}
			}
		})
	}
}
