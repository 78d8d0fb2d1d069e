package main

import (
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/face/nn"
)

func TestBench(t *testing.T) {
	dir := needModels(t)
	code, out, errOut := runCLI(t, "bench", "--models", dir, "-n", "3", "--cores", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "kernel " + nn.Kernel() + " "; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if want := "GOARCH " + runtime.GOARCH + ","; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	m := regexp.MustCompile(`(?m)^3 descriptors in [0-9.]+ s: ([0-9.]+) per second per core, ([0-9.]+) ms each$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no rate line in:\n%s", out)
	}
	for _, v := range m[1:] {
		if f, err := strconv.ParseFloat(v, 64); err != nil || f <= 0 {
			t.Errorf("rate figure %q is not a positive number", v)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"no descriptors":  {[]string{"-n", "0"}, "-n 0 outside 1..100000"},
		"too many":        {[]string{"-n", "100001"}, "-n 100001 outside"},
		"no cores":        {[]string{"--cores", "0"}, "--cores 0 outside"},
		"too many cores":  {[]string{"--cores", strconv.Itoa(runtime.GOMAXPROCS(0) + 1)}, "outside 1.."},
		"extra arguments": {[]string{"photo.jpg"}, "takes no arguments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCLI(t, append([]string{"bench"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}
