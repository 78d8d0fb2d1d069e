package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/facecloud/facecloud/agents/imageio"
)

// Every flag of an agent command (web, scaler, worker, local) can also be
// set by an environment variable, FACECLOUD_ and the flag's name in upper
// case with dashes as underscores (--max-body: FACECLOUD_MAX_BODY), except
// where envOverrides says otherwise. A flag given on the command line wins
// over its variable. The one-shot commands bind only the flags oneShotEnv
// lists: those that describe the installation rather than one invocation.
// parseFlags does the binding for every command, so no command can forget
// it, and -h shows each flag's variable.

// envPrefix starts every variable of the program.
const envPrefix = "FACECLOUD_"

// envOverrides names the variables that are not FACECLOUD_<FLAG>, keyed by
// "command flag": the worker's own settings whose flag names the web agent
// uses for something else, and names that say whose setting it is.
var envOverrides = map[string]string{
	"worker concurrency": "FACECLOUD_WORKER_CONCURRENCY",
	"worker drain":       "FACECLOUD_WORKER_DRAIN",
	"worker name":        "FACECLOUD_WORKER_NAME",
	"worker procs":       "FACECLOUD_WORKER_PROCS",
	"scaler interval":    "FACECLOUD_SCALER_INTERVAL",
	"local interval":     "FACECLOUD_SCALER_INTERVAL",
	"scaler metrics":     "FACECLOUD_METRICS_ADDR",
	"worker metrics":     "FACECLOUD_METRICS_ADDR",
	"models dir":         "FACECLOUD_MODELS",
}

// oneShotEnv lists, per one-shot command, the flags that have a variable.
// Commands not listed (the agents) bind every flag.
var oneShotEnv = map[string][]string{
	"submit":    {"url", "api-key"},
	"status":    {"data", "url", "api-key"},
	"keys":      {"data", "store"},
	"enroll":    {"data", "models", "max-body", "max-pixels"},
	"recognize": {"data", "models", "threshold", "max-body", "max-pixels"},
	"models":    {"dir"},
	"simulate":  {},
	"version":   {},
	"bench":     {"models"},
}

// agentCommands are the long-running commands: every flag has a variable.
var agentCommands = []string{"web", "scaler", "worker", "local"}

// envName returns the variable bound to flag name of command cmd, or false
// when the flag has none.
func envName(cmd, name string) (string, bool) {
	if v, ok := envOverrides[cmd+" "+name]; ok {
		return v, true
	}
	if only, oneShot := oneShotEnv[cmd]; oneShot {
		found := false
		for _, n := range only {
			found = found || n == name
		}
		if !found {
			return "", false
		}
	}
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_")), true
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(env *environment, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("facecloud "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

// parseFlags binds fs's flags to their environment variables (see
// envName), notes each variable in the flag's help, then parses args over
// them. Parse failures map to errUsage; a malformed variable is an error
// naming it, reported after parsing so that -h still helps.
func parseFlags(env *environment, fs *flag.FlagSet, args []string) error {
	cmd := strings.TrimPrefix(fs.Name(), "facecloud ")
	var bad []error
	fs.VisitAll(func(f *flag.Flag) {
		name, ok := envName(cmd, f.Name)
		if !ok {
			return
		}
		f.Usage += " (env " + name + ")"
		if v := env.getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				bad = append(bad, fmt.Errorf("%s=%q is not %s", name, v, valueHint(f)))
			}
		}
	})
	if env.sawFlags != nil {
		env.sawFlags(fs)
	}
	// The flag package would print its terse error and the whole usage;
	// print one line that names the flag and says what to do instead.
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		fmt.Fprintf(out, "%s: %s (run %s -h for the flags)\n", fs.Name(), flagError(fs, err), fs.Name())
		return errUsage
	}
	return errors.Join(bad...)
}

// flagErrorRE takes apart the flag package's "invalid value" errors.
var flagErrorRE = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-(\S+): `)

// flagError rewrites a parse error of the flag package so that it names
// the flag and says what its value should look like.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := flagErrorRE.FindStringSubmatch(msg); m != nil {
		if f := fs.Lookup(m[2]); f != nil {
			return fmt.Sprintf("--%s %q is not %s", f.Name, m[1], valueHint(f))
		}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag --" + strings.TrimLeft(name, "-")
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "--" + strings.TrimLeft(name, "-") + " needs a value"
	}
	return msg
}

// valueHint says what a flag's value looks like, for error messages.
func valueHint(f *flag.Flag) string {
	if _, ok := f.Value.(byteSize); ok {
		return "a size such as 10MiB or 500kB"
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "valid for --" + f.Name
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 30s, 1m30s or 250ms"
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number such as 0.6"
	}
	return "valid for --" + f.Name
}

// usageError prints "facecloud <command>: msg" and the command's usage, and
// returns errUsage.
func usageError(env *environment, fs *flag.FlagSet, msg string) error {
	fmt.Fprintln(env.stderr, fs.Name()+": "+msg)
	fs.Usage()
	return errUsage
}

// byteSize is a flag of a size in bytes written like 10MiB or 500kB.
type byteSize struct{ v *int64 }

func (b byteSize) String() string {
	if b.v == nil {
		return ""
	}
	return humanize.IBytes(uint64(*b.v))
}

func (b byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*b.v = n
	return nil
}

// parseSize reads a size in bytes written like 10MiB or 500kB.
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<62 {
		return 0, fmt.Errorf("%q is not a size such as 10MiB", s)
	}
	return int64(n), nil
}

// imageLimitFlags registers --max-body and --max-pixels: the limits the web
// agent checks uploads against before queueing them and that workers (and
// the one-shot commands) decode with. One registration and one variable
// each (FACECLOUD_MAX_BODY, FACECLOUD_MAX_PIXELS), so that raising a limit
// for the web agent raises it for the workers of the same deployment too;
// the smallest side accepted is imageio.MinSide everywhere.
func imageLimitFlags(fs *flag.FlagSet, maxBytes *int64, maxPixels *int) {
	*maxBytes, *maxPixels = int64(imageio.DefaultLimits.MaxBytes), imageio.DefaultLimits.MaxPixels
	fs.Var(byteSize{maxBytes}, "max-body", "largest upload (request body and image), e.g. 10MiB (1KiB..1GiB); workers decode up to the same size")
	fs.IntVar(maxPixels, "max-pixels", *maxPixels, "largest image in pixels (width x height), checked from the header before decoding")
}

// imageLimits is what imageLimitFlags filled, for the decoder.
func imageLimits(maxBytes int64, maxPixels int) imageio.Limits {
	return imageio.Limits{MaxBytes: int(maxBytes), MaxPixels: maxPixels}
}
