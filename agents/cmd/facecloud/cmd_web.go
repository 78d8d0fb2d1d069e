package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/datadir"
	"github.com/facecloud/facecloud/agents/web"
)

func init() {
	register(command{
		name:    "web",
		summary: "run the web agent: the HTTP API in front of the request queue",
		run:     runWeb,
	})
}

// webBackends names the web agent's queues and stores by URL.
type webBackends struct {
	requests, replies, replyPrefix, input, output, gallery, data string
}

// webBackendFlags registers --requests, --replies, --input, --output,
// --gallery and --data (a shortcut for the local data directory's layout).
func webBackendFlags(fs *flag.FlagSet) *webBackends {
	b := &webBackends{}
	fs.StringVar(&b.requests, "requests", "", "request queue URL")
	fs.StringVar(&b.replies, "replies", "", "reply queue URL (the queue every worker replies on); not with --reply-prefix")
	fs.StringVar(&b.replyPrefix, "reply-prefix", "", "give this host a reply queue of its own, named PREFIX<host>-<tag>, e.g. https://sqs.REGION.amazonaws.com/ACCOUNT/NAME-reply- (workers and scaler take the same value); for several web hosts")
	fs.StringVar(&b.input, "input", "", "input store URL")
	fs.StringVar(&b.output, "output", "", "output store URL")
	fs.StringVar(&b.gallery, "gallery", "", "gallery store URL; default the output store")
	fs.StringVar(&b.data, "data", "", "local data directory: fills every URL not given with DIR/queue.db and DIR/store")
	return b
}

// resolve fills the URLs not given from the data directory and checks that
// all four are known.
func (b *webBackends) resolve() error {
	if b.data != "" {
		fill := func(p *string, v string) {
			if *p == "" {
				*p = v
			}
		}
		fill(&b.requests, localQueueURL(b.data, RequestQueueName))
		if b.replyPrefix == "" {
			fill(&b.replies, localQueueURL(b.data, ReplyQueueName))
		}
		fill(&b.input, localStoreURL(b.data))
		fill(&b.output, localStoreURL(b.data))
	}
	if b.replies != "" && b.replyPrefix != "" {
		return fmt.Errorf("give one of --replies and --reply-prefix, not both")
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--requests", b.requests}, {"--replies or --reply-prefix", b.replies + b.replyPrefix}, {"--input", b.input}, {"--output", b.output}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%v not given: name them, or give --data DIR for the local layout", missing)
	}
	return nil
}

// open opens the backends into deps; close releases what was opened, also
// after a failure part way.
func (b *webBackends) open(ctx context.Context, env *environment) (deps web.Deps, closeAll func(), err error) {
	var closers []func() error
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	stores := map[string]platform.Store{}
	store := func(u string) (platform.Store, error) {
		if s, ok := stores[u]; ok {
			return s, nil
		}
		s, err := openStore(ctx, env, u)
		if err != nil {
			return nil, err
		}
		closers = append(closers, s.Close)
		stores[u] = s
		return s, nil
	}
	queue := func(u string) (platform.Queue, error) {
		q, err := openQueue(ctx, env, u)
		if err != nil {
			return nil, err
		}
		closers = append(closers, q.Close)
		return q, nil
	}
	replies := func() error {
		if b.replyPrefix == "" {
			deps.Replies, err = queue(b.replies)
			return err
		}
		f, err := openFamily(ctx, env, b.replyPrefix)
		if err == nil {
			closers = append(closers, f.Close)
			deps.ReplyFamily = f
		}
		return err
	}
	if deps.Requests, err = queue(b.requests); err == nil {
		if err = replies(); err == nil {
			if deps.Inputs, err = store(b.input); err == nil {
				if deps.Outputs, err = store(b.output); err == nil && b.gallery != "" {
					deps.Gallery, err = store(b.gallery)
				}
			}
		}
	}
	if err != nil {
		closeAll()
		return web.Deps{}, func() {}, err
	}
	return deps, closeAll, nil
}

// webLimitFlags registers the web agent's limits and timings on fs and
// returns the config they fill; addr is the default listen address.
func webLimitFlags(fs *flag.FlagSet, addr string) *web.Config {
	def := web.DefaultConfig()
	def.Addr = addr
	cfg := def
	fs.StringVar(&cfg.Addr, "addr", def.Addr, "listen address HOST:PORT")
	imageLimitFlags(fs, &cfg.MaxBodyBytes, &cfg.MaxPixels)
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", def.MaxInFlight, "concurrent work requests before answering 503 (an upload counts once its body has arrived)")
	fs.Var(byteSize{&cfg.UploadMemory}, "upload-memory", "memory all uploads together may hold: their bytes as they arrive and their image checks, e.g. 96MiB (at least --max-body); a call that finds it used up for 5s is answered 503")
	fs.Var(byteSize{&cfg.MinUploadRate}, "min-upload-rate", "slowest average an upload may arrive at, in bytes a second, e.g. 8KiB; slower senders are cut with 408")
	fs.DurationVar(&cfg.UploadIdle, "upload-idle", def.UploadIdle, "longest pause within an upload before it is cut with 408 (100ms..10m)")
	fs.DurationVar(&cfg.TextWait, "wait", def.TextWait, "how long POST / waits for an answer before 504")
	fs.DurationVar(&cfg.APIWait, "api-wait", def.APIWait, "how long /v1 calls wait before 202 unless ?wait= says")
	fs.DurationVar(&cfg.MaxWait, "max-wait", def.MaxWait, "largest ?wait= allowed")
	fs.DurationVar(&cfg.PollInterval, "poll", def.PollInterval, "first interval of looking for a result in the store in case its reply was lost")
	fs.DurationVar(&cfg.ReplyTouch, "reply-touch", def.ReplyTouch, "how often a host with --reply-prefix marks its reply queue alive (1s..1h; the scaler's --reply-expiry must be several times longer)")
	fs.DurationVar(&cfg.DrainTimeout, "drain", def.DrainTimeout, "how long to let calls finish on shutdown")
	fs.IntVar(&cfg.MaxEnrollImages, "max-enroll-images", def.MaxEnrollImages, "most images in one enrolment request")
	fs.BoolVar(&cfg.Nearest, "nearest", def.Nearest, "answer the nearest gallery name even beyond the threshold unless ?nearest=0")
	fs.BoolVar(&cfg.OpenRecognition, "open-recognition", def.OpenRecognition, "let POST / and the recognition routes through without an API key (the course's workload sends none); every other route still needs one")
	fs.Float64Var(&cfg.KeyRate, "key-rate", def.KeyRate, "requests a second each API key may make before 429 (0.01..1000000)")
	fs.IntVar(&cfg.KeyBurst, "key-burst", def.KeyBurst, "requests an API key may make at once, beyond its rate (1..1000000)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	return &cfg
}

func runWeb(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "web")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud web (--data DIR | --requests URL (--replies URL | --reply-prefix URL) --input URL --output URL) [flags]

Serves the HTTP API: checks each upload, stores it, queues its request and
answers the call with the worker's result (POST /, /v1/recognitions,
/v1/gallery, /v1/keys, /healthz, /readyz, /metrics). Every route but
/healthz, /readyz and the upload page needs an API key ("facecloud keys
create"); --open-recognition lets recognition through without one. Stops
on SIGTERM after the calls in progress are answered (up to --drain).

flags:`)
		fs.PrintDefaults()
	}
	cfg := webLimitFlags(fs, web.DefaultConfig().Addr)
	// facecloud local sets it from the scaler's flag of the same name.
	fs.DurationVar(&cfg.StatusEvery, "status-every", cfg.StatusEvery, "how often, while calls come, this host writes its status report (status/web/HOST.json in the output store) for the other hosts' GET /v1/status and facecloud status (0..5m; 0: never)")
	backends := webBackendFlags(fs)
	door := frontDoorFlags(fs)
	memLimit := memoryLimitFlag(fs)
	pprofAddr := pprofFlag(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "facecloud web: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if err := checkPprofAddr(*pprofAddr); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := door.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := backends.resolve(); err != nil {
		return err
	}
	if backends.data != "" {
		// One reply consumer per data directory.
		lock, err := datadir.Acquire(backends.data, "web")
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	log := newLogger(env)
	setMemoryLimit(env, log, *memLimit, cfg.UploadMemory)
	stopPprof, err := startPprof(*pprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	deps, closeAll, err := backends.open(ctx, env)
	if err != nil {
		return err
	}
	defer closeAll()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deps.Logger, deps.Registry = log, reg
	log.Info("web agent backends", "requests", backends.requests, "replies", backends.replies, "reply_prefix", backends.replyPrefix,
		"input", backends.input, "output", backends.output, "gallery", backends.gallery)
	// Keys live in the gallery store: the lasting state, which no
	// retention rule expires.
	keyStore := deps.Gallery
	if keyStore == nil {
		keyStore = deps.Outputs
	}
	doorCtx, stopDoor := context.WithCancel(context.WithoutCancel(ctx))
	ring, waitDoor, err := door.start(doorCtx, keyStore,
		door.retentionRules(backends.input, deps.Inputs, backends.output, deps.Outputs), cfg.OpenRecognition, log)
	if err != nil {
		stopDoor()
		return err
	}
	defer waitDoor()
	defer stopDoor()
	deps.Keys = ring
	srv, err := web.New(*cfg, deps)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Run(ctx)
}

// memoryLimitFlag registers --memory-limit: the Go runtime's soft memory
// limit, which makes the collector return the garbage of finished uploads
// before the heap grows past it.
func memoryLimitFlag(fs *flag.FlagSet) *int64 {
	v := new(int64)
	fs.Var(byteSize{v}, "memory-limit", "soft limit of the process's Go memory, e.g. 256MiB; default --upload-memory plus 128MiB, or GOMEMLIMIT when that is set")
	return v
}

// setMemoryLimit applies --memory-limit: the flag's value, else GOMEMLIMIT
// (which the runtime has read already), else upload memory plus 128 MiB of
// room for the runtime, connections and the garbage uploads leave.
func setMemoryLimit(env *environment, log *slog.Logger, limit, uploadMemory int64) {
	switch {
	case limit > 0:
	case env.getenv("GOMEMLIMIT") != "":
		return
	default:
		limit = uploadMemory + 128<<20
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "bytes", limit)
}
