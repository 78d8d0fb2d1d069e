package main

import (
	"context"
	"flag"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// helpFor runs "facecloud cmd -h" with getenv answering from vars and
// returns the command's flag set as parsed, its help text and every
// variable the command looked up.
func helpFor(t *testing.T, cmd string, vars map[string]string) (*flag.FlagSet, string, []string) {
	t.Helper()
	var stdout, stderr strings.Builder
	var fs *flag.FlagSet
	var looked []string
	env := &environment{
		stdout: &stdout, stderr: &stderr,
		getenv:   func(k string) string { looked = append(looked, k); return vars[k] },
		sawFlags: func(f *flag.FlagSet) { fs = f },
	}
	if code := run(context.Background(), env, []string{cmd, "-h"}); code != 0 {
		t.Fatalf("facecloud %s -h: status %d\n%s", cmd, code, stderr.String())
	}
	if fs == nil {
		t.Fatalf("facecloud %s -h parsed no flag set", cmd)
	}
	return fs, stderr.String(), looked
}

// flagHelp splits PrintDefaults output into each flag's text.
func flagHelp(help string) map[string]string {
	out := map[string]string{}
	name := ""
	for _, line := range strings.Split(help, "\n") {
		if m := regexp.MustCompile(`^  -(\S+)`).FindStringSubmatch(line); m != nil {
			name = m[1]
		}
		if name != "" {
			out[name] += line + "\n"
		}
	}
	return out
}

// TestEveryFlagHasItsVariable walks every command's flag set: each flag of
// an agent command (and each flag a one-shot command lists) has a
// FACECLOUD_ variable, -h shows it beside the flag, and the command really
// reads it.
func TestEveryFlagHasItsVariable(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			fs, help, looked := helpFor(t, name, nil)
			texts := flagHelp(help)
			agent := slices.Contains(agentCommands, name)
			bound := 0
			fs.VisitAll(func(f *flag.Flag) {
				v, ok := envName(name, f.Name)
				if !ok {
					if agent {
						t.Errorf("--%s has no environment variable", f.Name)
					}
					return
				}
				bound++
				if !strings.HasPrefix(v, envPrefix) {
					t.Errorf("--%s: variable %s does not start with %s", f.Name, v, envPrefix)
				}
				if text, shown := texts[f.Name]; !shown {
					t.Errorf("-h does not show --%s", f.Name)
				} else if !strings.Contains(text, "(env "+v+")") {
					t.Errorf("-h shows --%s without its variable %s:\n%s", f.Name, v, text)
				}
				if !slices.Contains(looked, v) {
					t.Errorf("--%s: %s is never read", f.Name, v)
				}
			})
			for _, f := range oneShotEnv[name] {
				if fs.Lookup(f) == nil {
					t.Errorf("oneShotEnv lists --%s, which %s does not have", f, name)
				}
			}
			if agent && bound == 0 {
				t.Error("no flag at all")
			}
		})
	}
	for _, c := range agentCommands {
		if _, ok := commands[c]; !ok {
			t.Errorf("agent command %s is not registered", c)
		}
	}
}

// TestVariablesSetFlags checks that a variable sets its flag, that the
// command line wins over it, and that the web agent, its workers and local
// read the image limits from the same variables.
func TestVariablesSetFlags(t *testing.T) {
	tests := map[string]struct {
		cmd, flag, variable, value, want string
	}{
		"worker duration":       {"worker", "visibility", "FACECLOUD_VISIBILITY", "45s", "45s"},
		"worker concurrency":    {"worker", "concurrency", "FACECLOUD_WORKER_CONCURRENCY", "7", "7"},
		"worker drain":          {"worker", "drain", "FACECLOUD_WORKER_DRAIN", "9s", "9s"},
		"worker threshold":      {"worker", "threshold", "FACECLOUD_THRESHOLD", "0.5", "0.5"},
		"worker max body":       {"worker", "max-body", "FACECLOUD_MAX_BODY", "2MiB", "2.0 MiB"},
		"web max body":          {"web", "max-body", "FACECLOUD_MAX_BODY", "2MiB", "2.0 MiB"},
		"local max body":        {"local", "max-body", "FACECLOUD_MAX_BODY", "2MiB", "2.0 MiB"},
		"worker max pixels":     {"worker", "max-pixels", "FACECLOUD_MAX_PIXELS", "1000000", "1000000"},
		"web max pixels":        {"web", "max-pixels", "FACECLOUD_MAX_PIXELS", "1000000", "1000000"},
		"worker gallery":        {"worker", "gallery", "FACECLOUD_GALLERY", "file:///g", "file:///g"},
		"web gallery":           {"web", "gallery", "FACECLOUD_GALLERY", "file:///g", "file:///g"},
		"scaler cooldown":       {"scaler", "scale-in-cooldown", "FACECLOUD_SCALE_IN_COOLDOWN", "1m", "1m0s"},
		"scaler interval":       {"scaler", "interval", "FACECLOUD_SCALER_INTERVAL", "3s", "3s"},
		"local interval":        {"local", "interval", "FACECLOUD_SCALER_INTERVAL", "3s", "3s"},
		"local worker drain":    {"local", "worker-drain", "FACECLOUD_WORKER_DRAIN", "9s", "9s"},
		"local heartbeat":       {"local", "heartbeat", "FACECLOUD_HEARTBEAT", "3s", "3s"},
		"web max enroll images": {"web", "max-enroll-images", "FACECLOUD_MAX_ENROLL_IMAGES", "5", "5"},
		"submit url":            {"submit", "url", "FACECLOUD_URL", "http://h/", "http://h/"},
		"models dir":            {"models", "dir", "FACECLOUD_MODELS", "/m", "/m"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fs, _, _ := helpFor(t, tc.cmd, map[string]string{tc.variable: tc.value})
			if got := fs.Lookup(tc.flag).Value.String(); got != tc.want {
				t.Errorf("%s=%s: --%s is %q, want %q", tc.variable, tc.value, tc.flag, got, tc.want)
			}
		})
	}
	t.Run("command line wins", func(t *testing.T) {
		var stderr strings.Builder
		var fs *flag.FlagSet
		env := &environment{stdout: &stderr, stderr: &stderr,
			getenv:   func(k string) string { return map[string]string{"FACECLOUD_HEARTBEAT": "4s"}[k] },
			sawFlags: func(f *flag.FlagSet) { fs = f },
		}
		// Refused later for its missing backends; the flags are parsed by then.
		run(context.Background(), env, []string{"worker", "--heartbeat", "3s"})
		if got := fs.Lookup("heartbeat").Value.String(); got != "3s" {
			t.Errorf("--heartbeat 3s with FACECLOUD_HEARTBEAT=4s: %s", got)
		}
	})
}
