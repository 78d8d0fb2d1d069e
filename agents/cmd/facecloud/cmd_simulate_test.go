package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSimulateCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(context.Background(), env, append([]string{"simulate"}, args...))
	return code, out.String(), errb.String()
}

func TestSimulateCourseBurst(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "chart.svg")
	code, out, errs := runSimulateCLI(t, "--requests", "100", "--svg", svg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"answered:  100 of 100", "total time (first arrival to last answer):", "latency   mean",
		"instance-seconds", "S3 PUT input image (web)", "SQS GetQueueAttributes depth (scaler)",
		"per 1,000 requests", "Amazon Rekognition SearchFacesByImage", "as known on 2025-06-01", "chart: " + svg,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.Open(svg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("chart is not XML: %v", err)
			}
			break
		}
	}
	// The same seed prints the same report.
	_, again, _ := runSimulateCLI(t, "--requests", "100")
	if strings.TrimSuffix(out, "\nchart: "+svg+"\n") != again {
		t.Error("two runs with the default seed differ")
	}
}

func TestSimulateWorkloadsAndPolicies(t *testing.T) {
	replay := filepath.Join(t.TempDir(), "arrivals.csv")
	if err := os.WriteFile(replay, []byte("seconds\n0\n0.5\n30\n31\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args []string
		want string
	}{
		"legacy":           {[]string{"--policy", "legacy"}, "legacy (poll 30s"},
		"legacy workers":   {[]string{"--policy", "legacy", "--legacy-workers"}, "old design's uniform 5s..10s"},
		"warm pool":        {[]string{"--warm-pool", "20"}, "20 warm-pool starts"},
		"poisson":          {[]string{"--workload", "poisson", "--rate", "2", "--duration", "2m"}, "Poisson stream of 2 requests/s"},
		"daily":            {[]string{"--workload", "daily", "--trough", "0.01", "--peak", "0.1", "--duration", "1h"}, "daily cycle 0.01..0.1"},
		"replay":           {[]string{"--workload", "replay", "--replay", replay}, "answered:  4 of 4"},
		"cheaper paths":    {[]string{"--no-result-object", "--image-in-message", "--batch", "--gallery-refresh", "30s"}, "result in the reply (no result object), image in the message, workers' replies and deletes batched, gallery refresh 30s"},
		"engine override":  {[]string{"--engine", "113ms"}, "engine lognormal median 113ms"},
		"print params":     {[]string{"--print-params"}, "brevdev/ec2-coldboot-research"},
		"print prices":     {[]string{"--print-prices"}, "rekognition_search_per_1000"},
		"concurrency flag": {[]string{"--concurrency", "16"}, "16 jobs at once"},
		"minimum kept":     {[]string{"--min-workers", "1", "--idle-exit", "30s"}, "1..20 workers"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runSimulateCLI(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestSimulateRefuses(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "params.yaml")
	if err := os.WriteFile(bad, []byte("engine:\n  kind: constant\n  value: 1ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args []string
		code int
		want string
	}{
		"unknown workload":    {[]string{"--workload", "tidal"}, 2, `--workload "tidal" unknown`},
		"replay without file": {[]string{"--workload", "replay"}, 2, "needs --replay FILE"},
		"unknown policy":      {[]string{"--policy", "magic"}, 1, `policy "magic" unknown`},
		"too many workers":    {[]string{"--max-workers", "500"}, 1, "out of range 1..100"},
		"incomplete params":   {[]string{"--params", bad}, 1, "source is empty"},
		"warm pool in legacy": {[]string{"--policy", "legacy", "--warm-pool", "3"}, 1, "no warm pool"},
		"stray argument":      {[]string{"extra"}, 2, "unexpected arguments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errs := runSimulateCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs, tc.code, tc.want)
			}
		})
	}
}
