package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/facecloud/facecloud/agents/client"
	"github.com/facecloud/facecloud/agents/imagefiles"
)

func init() {
	register(command{
		name:    "submit",
		summary: "send images to a web agent like the course's workload generator and check the answers",
		run:     runSubmit,
	})
}

// errSubmitFailed ends submit with status 1 after the summary was printed.
var errSubmitFailed = errors.New("some requests failed or were answered wrongly")

func runSubmit(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "submit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facecloud submit --url URL [flags] IMG|DIR|ZIP...\n\nPosts each image to URL as the course's workload generator does and prints its summary.\n\nflags:")
		fs.PrintDefaults()
	}
	def := client.DefaultConfig("")
	cfg := def
	fs.StringVar(&cfg.URL, "url", def.URL, "web agent's text endpoint, e.g. http://127.0.0.1:8080/")
	fs.IntVar(&cfg.Concurrency, "concurrency", def.Concurrency, "requests in flight at once (1..10000)")
	fs.StringVar(&cfg.Field, "field", def.Field, "multipart field name of the image")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "limit per HTTP attempt; 0 waits as long as it takes")
	fs.IntVar(&cfg.RetryMax, "retries", def.RetryMax, "retries after a connection error, a 5xx or a 429 answer (0..100)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "API key with scope recognize, sent as Authorization: Bearer (not needed with the web agent's --open-recognition)")
	labels := fs.String("labels", "", "CSV with columns Image,Results: check each answer against its label")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	verbose := fs.Bool("v", false, "print every answer as the course's generator does")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if cfg.URL == "" {
		return usageError(env, fs, "--url is required")
	}
	if *labels != "" {
		l, err := client.ReadLabelsFile(*labels)
		if err != nil {
			return err
		}
		cfg.Labels = l
	}
	files, err := imagefiles.List(fs.Args())
	if err != nil {
		return err
	}
	if *verbose {
		// Each retry, as it happens; otherwise failures are summed up at
		// the end.
		cfg.Logger = newLogger(env)
	}
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Reachable(ctx); err != nil {
		return err
	}

	bar := newProgressBar(env.stderr, len(files))
	summary, outcomes := c.Run(ctx, files, func(o client.Outcome) {
		if *verbose {
			if o.Verdict == client.Failed {
				fmt.Fprintf(env.stdout, "sendErr: %s: %s\n", o.File, o.Reason)
			} else {
				fmt.Fprintf(env.stdout, "%s uploaded!\nClassification result: %s\n", o.File, o.Answer)
			}
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(env.stderr)
	}
	reportProblems(env.stderr, outcomes, 10)
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(summary); err != nil {
			return fmt.Errorf("print summary: %w", err)
		}
	} else if err := summary.Write(env.stdout); err != nil {
		return fmt.Errorf("print summary: %w", err)
	}
	if summary.Failed > 0 || summary.Wrong > 0 {
		return fmt.Errorf("%w: %d failed, %d wrong of %d", errSubmitFailed, summary.Failed, summary.Wrong, summary.Requests)
	}
	return nil
}

// newProgressBar draws on w only when w is a terminal, so logs and pipes
// stay clean.
func newProgressBar(w io.Writer, n int) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("submitting"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("req"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
	)
}

// reportProblems sums up the failed or wrong requests: how many for each
// reason, with the first request of each, most frequent first.
func reportProblems(w io.Writer, outcomes []client.Outcome, limit int) {
	type group struct {
		reason, first string
		n             int
	}
	var groups []*group
	byReason := map[string]*group{}
	for _, o := range outcomes {
		if o.Verdict == client.Correct {
			continue
		}
		key := string(o.Verdict) + ": " + o.Reason
		g := byReason[key]
		if g == nil {
			g = &group{reason: key, first: o.File}
			byReason[key] = g
			groups = append(groups, g)
		}
		g.n++
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].n > groups[j].n })
	for i, g := range groups {
		if i == limit {
			fmt.Fprintf(w, "... and %d more kinds of problem\n", len(groups)-limit)
			break
		}
		if g.n == 1 {
			fmt.Fprintf(w, "%s (%s)\n", g.reason, g.first)
		} else {
			fmt.Fprintf(w, "%d requests %s (first: %s)\n", g.n, g.reason, g.first)
		}
	}
}
