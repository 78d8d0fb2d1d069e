package main

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/models"
)

func TestVersion(t *testing.T) {
	var stdout, stderr strings.Builder
	env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, []string{"version"}); code != 0 {
		t.Fatalf("version: status %d: %s", code, stderr.String())
	}
	for _, want := range []string{"facecloud " + version + "\n", "commit ", runtime.Version(), "model " + models.Package} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestErrorSaysItsCommandOnce: an error that already starts with the
// command's name is not prefixed with it twice.
func TestErrorSaysItsCommandOnce(t *testing.T) {
	var stdout, stderr strings.Builder
	env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	dir := t.TempDir()
	run(context.Background(), env, []string{"models", "verify", "--dir", dir})
	if strings.Count(stderr.String(), "models:") > 1 || !strings.HasPrefix(stderr.String(), "facecloud models: ") {
		t.Errorf("stderr %q", stderr.String())
	}
}
