package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/procfleet"
	"github.com/facecloud/facecloud/agents/worker"
)

func init() {
	register(command{
		name:    "worker",
		summary: "run the worker agent: recognise and enrol queued images",
		run:     runWorker,
	})
}

// workerFlags are the worker settings shared by worker and local.
type workerFlags struct {
	cfg            worker.Config
	modelsDir      string
	threshold      float64
	galleryRefresh time.Duration
	// procs is the worker's GOMAXPROCS (0: see register), set by the flag
	// named procsFlag.
	procs     int
	procsFlag string
}

// register adds the worker flags to fs; prefix ("worker-" in local) is put
// before the names that would clash with the web agent's.
func (wf *workerFlags) register(fs *flag.FlagSet, env *environment, prefix string, concurrency int, idleExit time.Duration) {
	def := worker.DefaultConfig
	wf.cfg = def
	fs.IntVar(&wf.cfg.Concurrency, prefix+"concurrency", concurrency, "jobs one worker runs at once (1..256)")
	fs.DurationVar(&wf.cfg.IdleExit, "idle-exit", idleExit, "a worker without a job for this long retires and exits; 0 never (0..24h)")
	fs.DurationVar(&wf.cfg.Visibility, "visibility", def.Visibility, "how long a request being worked on stays hidden from other workers per heartbeat (1s..12h)")
	fs.DurationVar(&wf.cfg.Heartbeat, "heartbeat", def.Heartbeat, "how often a worker extends the visibility of its requests (at most half of --visibility)")
	fs.IntVar(&wf.cfg.MaxReceives, "max-receives", def.MaxReceives, "the request queue's redrive limit: on that delivery a transient failure is answered as failed (1..1000)")
	fs.DurationVar(&wf.cfg.DrainTimeout, prefix+"drain", def.DrainTimeout, "how long a stopping worker lets its jobs finish before giving them back to the queue (1s..1h)")
	fs.BoolVar(&wf.cfg.AnswerObjects, "answer-objects", def.AnswerObjects, "also store each answer as a text object named after the image's file name without extension, as the course's output bucket does")
	fs.StringVar(&wf.modelsDir, "models", modelsDirDefault(env), "model directory")
	fs.Float64Var(&wf.threshold, "threshold", gallery.DefaultThreshold, "largest descriptor distance taken as a match (0..2)")
	fs.DurationVar(&wf.galleryRefresh, "gallery-refresh", awsres.DefaultGalleryRefresh, "how often the gallery is re-listed for new enrolments (100ms..10m)")
	procsHelp := "cores this worker's goroutines run on at once (GOMAXPROCS); 0: Go's default, every CPU it may use (0..1024)"
	if prefix != "" {
		procsHelp = "cores each worker process runs on at once (GOMAXPROCS); 0: the CPUs divided by --max-workers, at least 1 (0..1024)"
	}
	wf.procsFlag = prefix + "procs"
	fs.IntVar(&wf.procs, wf.procsFlag, 0, procsHelp)
}

func (wf *workerFlags) validate() error {
	switch {
	case math.IsNaN(wf.threshold) || wf.threshold < 0 || wf.threshold > 2:
		return fmt.Errorf("threshold %v out of range 0..2", wf.threshold)
	}
	if err := awsres.ValidGalleryRefresh(wf.galleryRefresh); err != nil {
		return err
	}
	if err := validProcs(wf.procsFlag, wf.procs); err != nil {
		return err
	}
	return wf.cfg.Validate()
}

// sqliteOptions returns the query options a local worker's request queue
// URL carries, so the queue hides received messages for as long as the
// worker's heartbeat assumes and dead-letters at the same count.
func (wf *workerFlags) sqliteOptions() string {
	return "&" + url.Values{
		"visibility":   {wf.cfg.Visibility.String()},
		"max_receives": {strconv.Itoa(wf.cfg.MaxReceives)},
	}.Encode()
}

func runWorker(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "worker")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud worker (--data DIR | --requests URL --replies URL --input URL --output URL) [flags]

Takes requests from the request queue, recognises (or enrols) the stored
image, stores the result and replies. Stops on SIGTERM after finishing the
jobs in hand; with --idle-exit, retires itself after that long without work.

flags:`)
		fs.PrintDefaults()
	}
	var wf workerFlags
	wf.register(fs, env, "", worker.DefaultConfig.Concurrency, worker.DefaultConfig.IdleExit)
	var maxBody int64
	var maxPixels int
	imageLimitFlags(fs, &maxBody, &maxPixels)
	data := fs.String("data", "", "local data directory: queues in DIR/queue.db, store in DIR/store")
	requests := fs.String("requests", "", "request queue URL")
	replies := fs.String("replies", "", "reply queue URL")
	replyPrefix := fs.String("reply-prefix", "", "the web hosts' own reply queues (the web agent's --reply-prefix): a request naming one of them is replied there, any other on --replies")
	input := fs.String("input", "", "input store URL")
	output := fs.String("output", "", "output store URL")
	galleryURL := fs.String("gallery", "", "gallery store URL; default the output store (the web agent's --gallery)")
	fleetURL := fs.String("fleet", "", "fleet to retire from when idle, e.g. asg://GROUP; empty: just exit")
	name := fs.String("name", "", "this worker's name in results and logs (default host-pid)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus /metrics on HOST:PORT; empty: off")
	pprofAddr := pprofFlag(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if err := checkPprofAddr(*pprofAddr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *data != "" {
		if *requests == "" {
			*requests = localQueueURL(*data, RequestQueueName) + wf.sqliteOptions()
		}
		if *replies == "" {
			*replies = localQueueURL(*data, ReplyQueueName)
		}
		if *input == "" {
			*input = localStoreURL(*data)
		}
		if *output == "" {
			*output = localStoreURL(*data)
		}
	}
	if *requests == "" || *replies == "" || *input == "" || *output == "" {
		return usageError(env, fs, "give --data DIR, or all of --requests, --replies, --input and --output")
	}
	wf.cfg.Name = *name
	if wf.cfg.Name == "" {
		host, _ := os.Hostname()
		wf.cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if err := wf.validate(); err != nil {
		return err
	}
	if wf.procs > 0 {
		// Restored on return, for the tests that run this in their process.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(wf.procs))
	}
	log := newLogger(env).With("agent", "worker")
	stopPprof, err := startPprof(*pprofAddr, log.With("name", wf.cfg.Name))
	if err != nil {
		return err
	}
	defer stopPprof()

	// A worker started by a local fleet (facecloud local) tells it over a
	// pipe when it is ready and when it retires.
	notifier, err := procfleet.NotifierFromEnv()
	if err != nil {
		return err
	}
	var retirer platform.Retirer
	if notifier != nil {
		defer notifier.Close()
		retirer = notifier
		// The fleet owns this worker's shutdown: Ctrl-C in a terminal
		// reaches the whole process group, but the fleet's owner drains
		// first, with this worker still taking the queued jobs, and then
		// says stop.
		var cancel context.CancelFunc
		signals := ctx
		ctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		go func() {
			select {
			case <-notifier.Stopping():
			case <-signals.Done():
				log.Info("signal noted; this worker stops when its fleet says so (after the web agent has drained)")
				<-notifier.Stopping()
			}
			log.Info("worker stopping: " + notifier.StopReason())
			cancel()
		}()
	}
	reqQ, err := openQueue(ctx, env, *requests)
	if err != nil {
		return err
	}
	defer reqQ.Close()
	repQ, err := openQueue(ctx, env, *replies)
	if err != nil {
		return err
	}
	defer repQ.Close()
	var family platform.QueueFamily
	if *replyPrefix != "" {
		if family, err = openFamily(ctx, env, *replyPrefix); err != nil {
			return err
		}
		defer family.Close()
	}
	in, err := openStore(ctx, env, *input)
	if err != nil {
		return err
	}
	defer in.Close()
	out := in
	if *output != *input {
		if out, err = openStore(ctx, env, *output); err != nil {
			return err
		}
		defer out.Close()
	}
	galleryStore := out
	if *galleryURL != "" && *galleryURL != *output {
		if galleryStore, err = openStore(ctx, env, *galleryURL); err != nil {
			return err
		}
		defer galleryStore.Close()
	}
	if *fleetURL != "" {
		fleet, err := openFleet(ctx, env, *fleetURL)
		if err != nil {
			return err
		}
		defer fleet.Close()
		r, ok := fleet.(platform.Retirer)
		if !ok {
			return fmt.Errorf("fleet %s cannot retire a worker; leave --fleet empty to just exit when idle", *fleetURL)
		}
		retirer = r
	}

	t0 := time.Now()
	engine, err := loadEngine(ctx, log, wf.modelsDir)
	if err != nil {
		return err
	}
	follower := gallery.NewFollower(galleryStore)
	if _, err := follower.Refresh(ctx); err != nil {
		return fmt.Errorf("load gallery: %w", err)
	}
	if follower.Faces() == 0 {
		log.Warn("the gallery is empty: every face will be unknown until people are enrolled")
	}
	galleryCtx, stopGallery := context.WithCancel(ctx)
	defer stopGallery()
	// The worker's name on its gallery lines tells whose view changed.
	go follower.Run(galleryCtx, wf.galleryRefresh, log.With("worker", wf.cfg.Name))

	describer := engineDescriber{engine: engine, limits: imageLimits(maxBody, maxPixels)}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w, err := worker.New(wf.cfg, worker.Deps{
		Requests: reqQ, Replies: repQ, Input: in, Output: out,
		Recognizer: &worker.FaceRecognizer{
			Engine: describer, Limits: describer.limits,
			Gallery: follower, Store: galleryStore, Threshold: wf.threshold, Logger: log,
		},
		ReplyFamily: family, Retirer: retirer, Logger: log, Metrics: reg,
	})
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		stopMetrics, err := serveMetrics(*metricsAddr, reg, log.Info)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	log.Info("worker ready", "name", wf.cfg.Name, "procs", runtime.GOMAXPROCS(0), "gallery_faces", follower.Faces(), "collections", len(follower.Collections()), "startup", time.Since(t0).Round(time.Millisecond))
	if notifier != nil {
		if err := notifier.Ready(); err != nil {
			return err
		}
	}
	err = w.Run(ctx)
	if errors.Is(err, worker.ErrRetired) {
		return nil
	}
	return err
}
