package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// workflow is the part of a GitHub Actions workflow the tests look at.
type workflow struct {
	Name string         `yaml:"name"`
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		If             string            `yaml:"if"`
		RunsOn         string            `yaml:"runs-on"`
		TimeoutMinutes int               `yaml:"timeout-minutes"`
		Env            map[string]string `yaml:"env"`
		Steps          []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]any    `yaml:"with"`
			Env  map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func readWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s is not valid YAML: %v", name, err)
	}
	if len(w.Jobs) == 0 {
		t.Fatalf("%s has no jobs", name)
	}
	for id, j := range w.Jobs {
		if j.RunsOn == "" || len(j.Steps) == 0 || j.TimeoutMinutes == 0 {
			t.Errorf("%s job %s: runs-on %q, %d steps, timeout %d", name, id, j.RunsOn, len(j.Steps), j.TimeoutMinutes)
		}
		for i, s := range j.Steps {
			if (s.Uses == "") == (s.Run == "") {
				t.Errorf("%s job %s step %d: needs exactly one of uses and run", name, id, i)
			}
		}
	}
	return w
}

func TestPreviewWorkflow(t *testing.T) {
	w := readWorkflow(t, "preview.yml")
	if _, ok := w.On["pull_request"]; !ok {
		t.Errorf("preview runs on %v, want pull_request", w.On)
	}
	found := false
	for id, j := range w.Jobs {
		// Forks' pull requests get no secrets: the job must skip for them.
		if !strings.Contains(j.If, "github.event.pull_request.head.repo.full_name == github.repository") {
			t.Errorf("preview job %s runs on pull requests from forks (if: %q), where its secrets are absent", id, j.If)
		}
		for _, s := range j.Steps {
			if !strings.HasPrefix(s.Uses, "pulumi/actions@") {
				continue
			}
			found = true
			if s.With["upsert"] != true {
				t.Errorf("pulumi/actions upsert %v: a new stack must be created, not fail", s.With["upsert"])
			}
			if s.With["command"] != "preview" {
				t.Errorf("pulumi/actions command %v, want preview", s.With["command"])
			}
			if s.With["comment-on-pr"] != true {
				t.Errorf("comment-on-pr %v, want true", s.With["comment-on-pr"])
			}
			if s.With["stack-name"] == nil || s.Env["PULUMI_ACCESS_TOKEN"] == "" {
				t.Errorf("preview without a stack name or access token: %v %v", s.With, s.Env)
			}
		}
	}
	if !found {
		t.Error("preview.yml does not use pulumi/actions")
	}
}

func TestTestWorkflow(t *testing.T) {
	w := readWorkflow(t, "test.yml")
	if _, ok := w.On["push"]; !ok {
		t.Errorf("test runs on %v, want push", w.On)
	}
	pulumi, tests, dataset, browser := false, false, false, false
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			pulumi = pulumi || strings.HasPrefix(s.Uses, "pulumi/actions@")
			if strings.Contains(s.Run, ".ci/run") || strings.Contains(s.Run, "go test") {
				tests = true
				// What the tests need must be there before they run, or
				// they fail (scripts/test.sh lets none skip).
				if !dataset || !browser {
					t.Errorf("test.yml runs the tests before fetching the dataset (%v) and providing a browser (%v)", dataset, browser)
				}
			}
			dataset = dataset || strings.Contains(s.Run, "scripts/fetch-dataset.sh")
			browser = browser || strings.Contains(s.Run, "FACECLOUD_CHROMIUM=")
		}
		if j.Env["FACECLOUD_DATASET"] == "" {
			t.Error("test.yml does not tell the tests where the dataset is (FACECLOUD_DATASET)")
		}
	}
	if !pulumi || !tests {
		t.Errorf("test.yml: pulumi/actions %v, runs the tests %v", pulumi, tests)
	}
	if _, err := os.Stat(filepath.Join("..", ".ci", "run")); err != nil {
		t.Errorf("test.yml runs .ci/run: %v", err)
	}
}
