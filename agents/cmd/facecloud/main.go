// Command facecloud is the one binary of facecloud: the web, scaler and worker
// agents, the whole system on one machine (local), and the tools around them.
// Wiring lives here and only here; each subcommand is in its own cmd_*.go file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. run parses args itself (a flag.FlagSet per
// command) and returns an error for anything that should end the process
// with a non-zero status.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what a command may touch of the outside world, so tests can
// run commands in-process.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// sawFlags, when set, is shown every flag set a command parses (tests
	// walk the commands' flags with it).
	sawFlags func(*flag.FlagSet)
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("facecloud: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, env *environment, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "facecloud: unknown command %q\n", args[0])
		usage(env.stderr)
		return 2
	}
	err := c.run(ctx, env, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		// Errors of the package a command wraps may already start with
		// the command's name ("models: ..."): say it once.
		msg := strings.TrimPrefix(err.Error(), c.name+": ")
		fmt.Fprintf(env.stderr, "facecloud %s: %s\n", c.name, msg)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: facecloud <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'facecloud <command> -h' for a command's flags.")
}

// newLogger logs text for people (the default) or JSON for machines
// (FACECLOUD_LOG_FORMAT=json, as the EC2 units set it).
func newLogger(env *environment) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if env.getenv("FACECLOUD_LOG_LEVEL") == "debug" {
		opts.Level = slog.LevelDebug
	}
	if env.getenv("FACECLOUD_LOG_FORMAT") == "json" {
		return slog.New(slog.NewJSONHandler(env.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(env.stderr, opts))
}
