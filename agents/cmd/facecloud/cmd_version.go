package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/facecloud/facecloud/agents/models"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; builds from a checkout say "dev".
var version = "dev"

func init() {
	register(command{
		name:    "version",
		summary: "print the version, commit, Go version and face model of this binary",
		run:     runVersion,
	})
}

func runVersion(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "version")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	commit, modified := "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				commit = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				modified = " (with uncommitted changes)"
			}
		}
	}
	fmt.Fprintf(env.stdout, "facecloud %s\ncommit %s%s\n%s %s/%s\nmodel %s\n", version, commit, modified, runtime.Version(), runtime.GOOS, runtime.GOARCH, models.Package)
	return nil
}
