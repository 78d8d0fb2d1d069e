package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/facecloud/facecloud/agents/sim"
)

func init() {
	register(command{
		name:    "simulate",
		summary: "simulate the fleet on AWS timings: latency, total time, instance-seconds and cost of a workload",
		run:     runSimulate,
	})
}

func runSimulate(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "simulate")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud simulate [flags]

Runs the scaler's real policy and the workers' idle retirement against a
discrete-event model of the request queue, the worker instances and the web
agent's reply path, on the timings of a parameter file (built in: the
stack's defaults on AWS, each figure with its source), and prints latency
percentiles, total time, instance-seconds, every API call and the cost at the
list prices of a price file. Runs are seeded and reproducible.

workloads: burst (the course's: --requests at once), poisson (--rate for
--duration), daily (--trough at midnight to --peak at noon for --duration),
replay (--replay FILE: CSV, first column seconds from the start or RFC 3339).

flags:`)
		fs.PrintDefaults()
	}
	def := sim.DefaultParams()
	workload := fs.String("workload", "burst", "burst, poisson, daily or replay")
	requests := fs.Int("requests", 100, "burst: requests at once (1..5000000)")
	rate := fs.Float64("rate", 10, "poisson: requests a second")
	trough := fs.Float64("trough", 1, "daily: requests a second at midnight")
	peak := fs.Float64("peak", 20, "daily: requests a second at noon")
	duration := fs.Duration("duration", time.Hour, "poisson and daily: how long requests arrive (daily: use 24h for a whole day)")
	replay := fs.String("replay", "", "replay: CSV file of arrival times")
	policy := fs.String("policy", sim.PolicyScaler, "scaler (this repository's) or legacy (the replaced design's 30 s controller)")
	legacyWorkers := fs.Bool("legacy-workers", false, "legacy: also the old workers' time per request (params legacy.service), one at a time")
	paramsFile := fs.String("params", "", "timing parameter file (YAML; default: the built-in one, printed by --print-params)")
	pricesFile := fs.String("prices", "", "price file (YAML; default: the built-in one, printed by --print-prices)")
	printParams := fs.Bool("print-params", false, "print the built-in parameter file and exit")
	printPrices := fs.Bool("print-prices", false, "print the built-in price file and exit")
	minWorkers := fs.Int("min-workers", def.Deployment.MinWorkers.Value, "fewest workers (0..max; default from the params file)")
	maxWorkers := fs.Int("max-workers", def.Deployment.MaxWorkers.Value, "most workers (1..100; default from the params file)")
	warmPool := fs.Int("warm-pool", def.Deployment.WarmPool.Value, "warm pool minimum size, 0 for none (default from the params file)")
	idleExit := fs.Duration("idle-exit", def.Deployment.IdleExit.Value, "a worker without a job this long retires (default from the params file)")
	concurrency := fs.Int("concurrency", def.Deployment.Concurrency.Value, "jobs one worker runs at once; 0: its vCPU count (default from the params file)")
	targetBacklog := fs.Int("target-backlog", 0, "queued or in-flight requests per worker; 0: the scaler's default")
	interval := fs.Duration("scaler-interval", 0, "time between two scaler polls; 0: the scaler's default")
	startWorkers := fs.Int("start-workers", 0, "workers already taking jobs at the start (0: from cold)")
	engine := fs.Duration("engine", 0, "median engine time per request, replacing the params file's (the p95/median ratio is kept); 0: the file's")
	answerObjects := fs.Bool("answer-objects", false, "store each answer as a text object too (the course preset)")
	noResult := fs.Bool("no-result-object", false, "cheaper path: carry the result in the reply, store no result object")
	imageInMessage := fs.Bool("image-in-message", false, "cheaper path: carry the image in the request message, not the input bucket")
	batch := fs.Bool("batch", false, "cheaper path: each worker sends the replies and deletes the requests of one receive in one call each (SendMessageBatch, DeleteMessageBatch)")
	galleryRefresh := fs.Duration("gallery-refresh", 0, "how often each worker lists the gallery; 0: the params file's")
	seed := fs.Uint64("seed", 1, "random seed; the same seed gives the same run")
	svgFile := fs.String("svg", "", "write a chart of queue depth and fleet size over time to this SVG file")
	title := fs.String("title", "", "the chart's title (default: the workload and policy)")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if *printParams || *printPrices {
		if *printParams {
			fmt.Fprint(env.stdout, string(sim.DefaultParamsFile()))
		}
		if *printPrices {
			fmt.Fprint(env.stdout, string(sim.DefaultPricesFile()))
		}
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	params, err := sim.LoadParams(*paramsFile)
	if err != nil {
		return err
	}
	prices, err := sim.LoadPrices(*pricesFile)
	if err != nil {
		return err
	}
	// Deployment flags left unset take the params file's values.
	fromFile := map[string]func(){
		"min-workers": func() { *minWorkers = params.Deployment.MinWorkers.Value },
		"max-workers": func() { *maxWorkers = params.Deployment.MaxWorkers.Value },
		"warm-pool":   func() { *warmPool = params.Deployment.WarmPool.Value },
		"idle-exit":   func() { *idleExit = params.Deployment.IdleExit.Value },
		"concurrency": func() { *concurrency = params.Deployment.Concurrency.Value },
	}
	for name, take := range fromFile {
		if !set[name] {
			take()
		}
	}
	if *engine < 0 {
		return usageError(env, fs, "--engine must not be negative")
	}
	if *engine > 0 {
		params.Engine = params.Engine.WithMedian(*engine, "--engine flag")
	}

	cfg := sim.NewConfig(params, prices)
	cfg.Policy = *policy
	cfg.LegacyWorker = *legacyWorkers
	cfg.Scaler.Policy.Min, cfg.Scaler.Policy.Max = *minWorkers, *maxWorkers
	if *targetBacklog != 0 {
		cfg.Scaler.Policy.TargetBacklog = *targetBacklog
	}
	if *interval != 0 {
		cfg.Scaler.Interval = *interval
	}
	cfg.WarmPool = *warmPool
	cfg.Worker.IdleExit = *idleExit
	cfg.Worker.Concurrency = *concurrency
	if cfg.Worker.Concurrency == 0 {
		cfg.Worker.Concurrency = params.Instance.VCPUs.Value
	}
	if *galleryRefresh != 0 {
		cfg.GalleryRefresh = *galleryRefresh
	}
	cfg.StartWorkers = *startWorkers
	cfg.Options = sim.Options{AnswerObjects: *answerObjects, NoResultObject: *noResult, ImageInMessage: *imageInMessage, Batch: *batch}
	cfg.Seed = *seed

	switch *workload {
	case "burst":
		cfg.Workload, err = sim.Burst(*requests)
	case "poisson":
		cfg.Workload, err = sim.Poisson(*rate, *duration, *seed)
	case "daily":
		cfg.Workload, err = sim.Daily(*trough, *peak, *duration, *seed)
	case "replay":
		if *replay == "" {
			return usageError(env, fs, "--workload replay needs --replay FILE")
		}
		f, oerr := os.Open(*replay)
		if oerr != nil {
			return fmt.Errorf("replay: %w", oerr)
		}
		cfg.Workload, err = sim.Replay(f)
		f.Close()
	default:
		return usageError(env, fs, fmt.Sprintf("--workload %q unknown: burst, poisson, daily or replay", *workload))
	}
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := sim.Run(cfg)
	if err != nil {
		return err
	}
	if err := res.WriteText(env.stdout, cfg); err != nil {
		return err
	}
	if *svgFile != "" {
		t := *title
		if t == "" {
			t = fmt.Sprintf("%s, %s policy", res.Workload, res.Policy)
		}
		if err := writeSVG(*svgFile, res, t); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "\nchart: %s\n", *svgFile)
	}
	return nil
}

// writeSVG writes the chart through a temporary file, so a failed run
// leaves no half-written chart.
func writeSVG(path string, res *sim.Result, title string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".chart-*.svg")
	if err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := res.WriteSVG(tmp, title); err != nil {
		tmp.Close()
		return fmt.Errorf("write chart: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}
