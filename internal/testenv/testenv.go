// Package testenv finds what tests need from outside the repository — the
// course dataset and a browser — and decides what a test does when it is
// missing: skip on a developer's machine, fail where the run says it must
// be there (scripts/test.sh sets the FACECLOUD_REQUIRE_* variables), so
// that a green run never hides a test that did not run.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Environment variables of the tests.
const (
	// EnvDataset points at the course dataset folder; default
	// ../shared/datasets/cse546 beside the repository root.
	EnvDataset = "FACECLOUD_DATASET"
	// EnvRequireDataset=1 fails tests that need the dataset when it is missing.
	EnvRequireDataset = "FACECLOUD_REQUIRE_DATASET"
	// EnvChromium is the browser to drive; default chromium on PATH.
	EnvChromium = "FACECLOUD_CHROMIUM"
	// EnvRequireBrowser=1 fails browser tests when no browser is found.
	EnvRequireBrowser = "FACECLOUD_REQUIRE_BROWSER"
)

// DatasetFiles are the files of the course dataset the tests read.
var DatasetFiles = []string{"face_images_100.zip", "face_images_1000.zip", "classification_100.csv", "classification_1000.csv"}

// Missing skips t with the reason, or fails it when the variable require
// is 1.
func Missing(t testing.TB, require, format string, args ...any) {
	t.Helper()
	if os.Getenv(require) == "1" {
		t.Fatalf(format+" (and %s=1: this test must run here, not be skipped)", append(args, require)...)
	}
	t.Skipf(format, args...)
}

// RepoRoot is the folder holding go.mod, searched upwards from the working
// directory (a test's is its package folder).
func RepoRoot() string {
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && fi.Mode().IsRegular() {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

// DatasetDir is where the course dataset is looked for.
func DatasetDir() string {
	if d := os.Getenv(EnvDataset); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(RepoRoot()), "shared", "datasets", "cse546")
}

// Dataset returns the course dataset folder once every file of
// DatasetFiles is there; otherwise it skips or fails t (see Missing).
func Dataset(t testing.TB) string {
	t.Helper()
	dir := DatasetDir()
	for _, f := range DatasetFiles {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || !fi.Mode().IsRegular() {
			Missing(t, EnvRequireDataset, "course dataset: no %s in %s (set %s to its folder; scripts/fetch-dataset.sh fetches it)", f, dir, EnvDataset)
		}
	}
	return dir
}

// Chromium returns the browser to drive headless: $FACECLOUD_CHROMIUM or
// chromium on PATH; otherwise it skips or fails t (see Missing).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, EnvRequireBrowser, "chromium not found (apt-get install chromium, or set %s)", EnvChromium)
	return ""
}
