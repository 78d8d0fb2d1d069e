package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/procfleet"
	"github.com/facecloud/facecloud/agents/worker"
)

// envDefaults reads flag defaults from FACECLOUD_* environment variables and
// remembers malformed ones, so the command can refuse them after parsing
// instead of silently using the built-in default.
type envDefaults struct {
	env *environment
	bad []error
}

// Int returns the integer in variable name, or def when it is unset.
func (e *envDefaults) Int(name string, def int) int {
	return envValue(e, name, def, strconv.Atoi, "an integer")
}

// Duration returns the duration in variable name, or def when it is unset.
func (e *envDefaults) Duration(name string, def time.Duration) time.Duration {
	return envValue(e, name, def, time.ParseDuration, "a duration such as 30s")
}

// Bool returns the boolean in variable name, or def when it is unset.
func (e *envDefaults) Bool(name string, def bool) bool {
	return envValue(e, name, def, strconv.ParseBool, "a boolean such as true or false")
}

// Bytes returns the size (such as 10MiB) in variable name, or def when it
// is unset.
func (e *envDefaults) Bytes(name string, def int64) int64 {
	return envValue(e, name, def, parseSize, "a size such as 10MiB")
}

// envValue parses variable name with parse, or returns def when it is unset
// or malformed, remembering the malformed one as "is not <what>".
func envValue[T any](e *envDefaults, name string, def T, parse func(string) (T, error), what string) T {
	v := e.env.getenv(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		e.bad = append(e.bad, fmt.Errorf("%s=%q is not %s", name, v, what))
		return def
	}
	return x
}

// Err reports the malformed variables, if any.
func (e *envDefaults) Err() error { return errors.Join(e.bad...) }

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
}

// register adds the worker flags to fs; prefix ("worker-" in local) is put
// before the names that would clash with the web agent's.
func (wf *workerFlags) register(fs *flag.FlagSet, ed *envDefaults, env *environment, prefix string, concurrency int, idleExit time.Duration) {
	def := worker.DefaultConfig
	wf.cfg = def
	fs.IntVar(&wf.cfg.Concurrency, prefix+"concurrency", ed.Int("FACECLOUD_WORKER_CONCURRENCY", concurrency), "jobs one worker runs at once (1..256; env FACECLOUD_WORKER_CONCURRENCY)")
	fs.DurationVar(&wf.cfg.IdleExit, "idle-exit", ed.Duration("FACECLOUD_IDLE_EXIT", idleExit), "a worker without a job for this long retires and exits; 0 never (0..24h; env FACECLOUD_IDLE_EXIT)")
	fs.DurationVar(&wf.cfg.Visibility, "visibility", ed.Duration("FACECLOUD_VISIBILITY", def.Visibility), "how long a request being worked on stays hidden from other workers per heartbeat (1s..12h)")
	fs.DurationVar(&wf.cfg.Heartbeat, "heartbeat", ed.Duration("FACECLOUD_HEARTBEAT", def.Heartbeat), "how often a worker extends the visibility of its requests (at most half of --visibility)")
	fs.IntVar(&wf.cfg.MaxReceives, "max-receives", ed.Int("FACECLOUD_MAX_RECEIVES", def.MaxReceives), "the request queue's redrive limit: on that delivery a transient failure is answered as failed (1..1000)")
	fs.DurationVar(&wf.cfg.DrainTimeout, prefix+"drain", def.DrainTimeout, "how long a stopping worker lets its jobs finish before giving them back to the queue (1s..1h)")
	fs.BoolVar(&wf.cfg.AnswerObjects, "answer-objects", ed.Bool("FACECLOUD_ANSWER_OBJECTS", def.AnswerObjects), "also store each answer as a text object named after the image's file name without extension, as the course's output bucket does (env FACECLOUD_ANSWER_OBJECTS)")
	fs.StringVar(&wf.modelsDir, "models", modelsDirDefault(env), "model cache directory (env FACECLOUD_MODELS)")
	fs.Float64Var(&wf.threshold, "threshold", gallery.DefaultThreshold, "largest descriptor distance taken as a match (0..2)")
	fs.DurationVar(&wf.galleryRefresh, "gallery-refresh", 2*time.Second, "how often the gallery is re-listed for new enrolments (100ms..10m)")
}

func (wf *workerFlags) validate() error {
	switch {
	case math.IsNaN(wf.threshold) || wf.threshold < 0 || wf.threshold > 2:
		return fmt.Errorf("threshold %v out of range 0..2", wf.threshold)
	case wf.galleryRefresh < 100*time.Millisecond || wf.galleryRefresh > 10*time.Minute:
		return fmt.Errorf("gallery refresh %s out of range 100ms..10m", wf.galleryRefresh)
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
	ed := &envDefaults{env: env}
	var wf workerFlags
	wf.register(fs, ed, env, "", worker.DefaultConfig.Concurrency, worker.DefaultConfig.IdleExit)
	data := fs.String("data", env.getenv("FACECLOUD_DATA"), "local data directory: queues in DIR/queue.db, store in DIR/store (env FACECLOUD_DATA)")
	requests := fs.String("requests", env.getenv("FACECLOUD_REQUESTS"), "request queue URL (env FACECLOUD_REQUESTS)")
	replies := fs.String("replies", env.getenv("FACECLOUD_REPLIES"), "reply queue URL (env FACECLOUD_REPLIES)")
	input := fs.String("input", env.getenv("FACECLOUD_INPUT"), "input store URL (env FACECLOUD_INPUT)")
	output := fs.String("output", env.getenv("FACECLOUD_OUTPUT"), "output store URL; the gallery lives there too (env FACECLOUD_OUTPUT)")
	fleetURL := fs.String("fleet", env.getenv("FACECLOUD_FLEET"), "fleet to retire from when idle, e.g. asg://GROUP; empty: just exit (env FACECLOUD_FLEET)")
	name := fs.String("name", env.getenv("FACECLOUD_WORKER_NAME"), "this worker's name in results and logs (default host-pid; env FACECLOUD_WORKER_NAME)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := ed.Err(); err != nil {
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
	log := newLogger(env).With("agent", "worker")

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
	reloader := gallery.NewReloader(out)
	if _, err := reloader.Refresh(ctx); err != nil {
		return fmt.Errorf("load gallery: %w", err)
	}
	if reloader.Gallery().Len() == 0 {
		log.Warn("the gallery is empty: every face will be unknown until people are enrolled")
	}
	galleryCtx, stopGallery := context.WithCancel(ctx)
	defer stopGallery()
	go reloader.Run(galleryCtx, wf.galleryRefresh, log)

	w, err := worker.New(wf.cfg, worker.Deps{
		Requests: reqQ, Replies: repQ, Input: in, Output: out,
		Recognizer: &worker.FaceRecognizer{
			Describer: engineDescriber{engine: engine, limits: imageio.DefaultLimits},
			Gallery:   reloader, Store: out, Threshold: wf.threshold, Logger: log,
		},
		Retirer: retirer, Logger: log,
	})
	if err != nil {
		return err
	}
	log.Info("worker ready", "name", wf.cfg.Name, "gallery_faces", reloader.Gallery().Len(), "startup", time.Since(t0).Round(time.Millisecond))
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
