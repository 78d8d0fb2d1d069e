package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/scaler"
)

func init() {
	register(command{
		name:    "scaler",
		summary: "run the scaler agent: size the worker fleet from the request queue's backlog",
		run:     runScaler,
	})
}

// scalerFlags are the policy flags shared by scaler and local, and the
// gallery compaction's interval (the acting scaler compacts).
func scalerFlags(fs *flag.FlagSet, cfg *scaler.Config, compactEvery *time.Duration) {
	fs.DurationVar(compactEvery, "compact-every", 2*time.Second, "how often the acting scaler folds the collections' logs into their snapshots (100ms..10m)")
	def := scaler.DefaultConfig
	fs.DurationVar(&cfg.Interval, "interval", def.Interval, "time between two polls of queue depth and fleet size (100ms..5m)")
	fs.IntVar(&cfg.Policy.Min, "min-workers", def.Policy.Min, "fewest workers kept running (0..max)")
	fs.IntVar(&cfg.Policy.TargetBacklog, "target-backlog", def.Policy.TargetBacklog, "queued or in-flight requests per worker the fleet is sized for (1..10000)")
	fs.DurationVar(&cfg.Policy.ScaleOutCooldown, "scale-out-cooldown", def.Policy.ScaleOutCooldown, "least time between two raises of the desired count (0..1h)")
	fs.DurationVar(&cfg.Policy.ScaleInCooldown, "scale-in-cooldown", def.Policy.ScaleInCooldown, "least time after a change before unstarted workers are dropped (0..1h)")
	fs.DurationVar(&cfg.StatusEvery, "status-every", def.StatusEvery, "how often at most the scaler writes its status report for the console and facecloud status; a decision that changes the fleet is written at once (0..5m; 0: every poll)")
}

func runScaler(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "scaler")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facecloud scaler --fleet URL (--requests URL | --data DIR) [flags]\n\nPolls the request queue's depth and the fleet's size and sets the fleet's desired worker count. With --lease, several scalers (one per web host) elect the one that acts.\n\nflags:")
		fs.PrintDefaults()
	}
	cfg := scaler.DefaultConfig
	var compactEvery time.Duration
	scalerFlags(fs, &cfg, &compactEvery)
	fs.IntVar(&cfg.Policy.Max, "max-workers", cfg.Policy.Max, "most workers (1..100)")
	requests := fs.String("requests", "", "request queue URL")
	data := fs.String("data", "", "local data directory: the request queue is DIR/queue.db, the gallery DIR/store")
	output := fs.String("output", "", "output store URL (the web agent's): the gallery's, unless --gallery says otherwise, and where the scaler writes its status report (status/scaler.json) for the console and facecloud status")
	galleryURL := fs.String("gallery", "", "gallery store URL, whose collections the acting scaler compacts; default the output store; neither: no compaction")
	fleetURL := fs.String("fleet", "", "worker fleet URL, e.g. asg://GROUP")
	metricsAddr := fs.String("metrics", "", "serve Prometheus /metrics on HOST:PORT; empty: off")
	leaseURL := fs.String("lease", "", "elect one acting scaler of several (one per web host) through this record, s3://BUCKET/KEY; empty: this scaler always acts")
	leaseTTL := fs.Duration("lease-ttl", 15*time.Second, "how long the lease holds without renewal: a dead scaler is replaced after about this long (1s..10m)")
	replyPrefix := fs.String("reply-prefix", "", "the web hosts' own reply queues (the web agent's --reply-prefix): the acting scaler removes those untouched for --reply-expiry")
	fs.DurationVar(&cfg.ReplyExpiry, "reply-expiry", cfg.ReplyExpiry, "how long a web host's reply queue may go untouched before it is removed as a dead host's (5s..24h; several times the web agent's --reply-touch)")
	deadLetter := fs.String("dead-letter", "", "the request queue's dead-letter queue URL: its depth goes into the status report and facecloud_scaler_dead_letters (--data: DIR/queue.db's requests-dlq)")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if *data != "" {
		if *requests == "" {
			*requests = localQueueURL(*data, RequestQueueName)
		}
		if *output == "" {
			*output = localStoreURL(*data)
		}
		if *deadLetter == "" {
			*deadLetter = localQueueURL(*data, RequestQueueName+DeadLetterSuffix)
		}
	}
	if *galleryURL == "" {
		*galleryURL = *output
	}
	if *galleryURL == "" && *data != "" {
		*galleryURL = localStoreURL(*data)
	}
	if err := validCompactEvery(compactEvery); err != nil {
		return usageError(env, fs, err.Error())
	}
	if *requests == "" || *fleetURL == "" {
		return usageError(env, fs, "--fleet and one of --requests or --data are required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(env).With("agent", "scaler")

	q, err := openQueue(ctx, env, *requests)
	if err != nil {
		return err
	}
	defer q.Close()
	fleet, err := openFleet(ctx, env, *fleetURL)
	if err != nil {
		return err
	}
	defer fleet.Close()

	host, _ := os.Hostname()
	deps := scaler.Deps{Queue: q, Fleet: fleet, Logger: log, Name: fmt.Sprintf("%s-%d", host, os.Getpid())}
	if *output != "" {
		st, err := openStore(ctx, env, *output)
		if err != nil {
			return err
		}
		defer st.Close()
		deps.Status = st
	}
	if *deadLetter != "" {
		dlq, err := openQueue(ctx, env, *deadLetter)
		if err != nil {
			return err
		}
		defer dlq.Close()
		deps.DeadLetters = dlq
	}
	if *leaseURL != "" {
		reg, err := openRegister(ctx, env, *leaseURL)
		if err != nil {
			return err
		}
		defer reg.Close()
		if deps.Lease, err = scaler.NewLease(reg, deps.Name, *leaseTTL, nil); err != nil {
			return err
		}
	}
	if *replyPrefix != "" {
		if deps.Replies, err = openFamily(ctx, env, *replyPrefix); err != nil {
			return err
		}
		defer deps.Replies.Close()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deps.Metrics = reg
	loop, err := scaler.New(cfg, deps)
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
	if *galleryURL != "" {
		store, err := openStore(ctx, env, *galleryURL)
		if err != nil {
			return err
		}
		defer store.Close()
		cp := &gallery.Compactor{Store: store, Interval: compactEvery, Logger: log.With("agent", "compactor")}
		if deps.Lease != nil {
			cp.Leading = deps.Lease.Leading
		}
		done := make(chan struct{})
		go func() { defer close(done); cp.Run(ctx) }()
		defer func() { <-done }()
	} else {
		log.Warn("no gallery store (--gallery, --output or --data): the collections' logs are not compacted here")
	}
	return loop.Run(ctx)
}

// validCompactEvery checks --compact-every.
func validCompactEvery(d time.Duration) error {
	if d < 100*time.Millisecond || d > 10*time.Minute {
		return fmt.Errorf("--compact-every %s out of range 100ms..10m", d)
	}
	return nil
}

// serveMetrics serves reg at /metrics on addr until the returned func is called.
func serveMetrics(addr string, reg *prometheus.Registry, logf func(string, ...any)) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("metrics server stopped", "err", err)
		}
	}()
	logf("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
