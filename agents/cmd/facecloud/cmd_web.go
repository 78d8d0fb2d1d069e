package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/facecloud/facecloud/agents/platform"
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
	requests, replies, input, output, gallery, data string
}

// webBackendFlags registers --requests, --replies, --input, --output,
// --gallery and --data (a shortcut for the local data directory's layout).
func webBackendFlags(fs *flag.FlagSet, env *environment) *webBackends {
	b := &webBackends{}
	fs.StringVar(&b.requests, "requests", env.envOr("FACECLOUD_REQUESTS", ""), "request queue URL (env FACECLOUD_REQUESTS)")
	fs.StringVar(&b.replies, "replies", env.envOr("FACECLOUD_REPLIES", ""), "reply queue URL (env FACECLOUD_REPLIES)")
	fs.StringVar(&b.input, "input", env.envOr("FACECLOUD_INPUT", ""), "input store URL (env FACECLOUD_INPUT)")
	fs.StringVar(&b.output, "output", env.envOr("FACECLOUD_OUTPUT", ""), "output store URL (env FACECLOUD_OUTPUT)")
	fs.StringVar(&b.gallery, "gallery", env.envOr("FACECLOUD_GALLERY", ""), "gallery store URL; default the output store (env FACECLOUD_GALLERY)")
	fs.StringVar(&b.data, "data", env.envOr("FACECLOUD_DATA", ""), "local data directory: fills every URL not given with DIR/queue.db and DIR/store (env FACECLOUD_DATA)")
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
		fill(&b.replies, localQueueURL(b.data, ReplyQueueName))
		fill(&b.input, localStoreURL(b.data))
		fill(&b.output, localStoreURL(b.data))
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--requests", b.requests}, {"--replies", b.replies}, {"--input", b.input}, {"--output", b.output}} {
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
	if deps.Requests, err = queue(b.requests); err == nil {
		if deps.Replies, err = queue(b.replies); err == nil {
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

// webLimitFlags registers the web agent's limits on fs, with defaults from
// FACECLOUD_* variables, and returns the config they fill; e collects
// malformed variables.
func webLimitFlags(fs *flag.FlagSet, e *envDefaults) *web.Config {
	def := web.DefaultConfig()
	cfg := def
	fs.StringVar(&cfg.Addr, "addr", e.env.envOr("FACECLOUD_ADDR", def.Addr), "listen address HOST:PORT (env FACECLOUD_ADDR)")
	cfg.MaxBodyBytes = e.Bytes("FACECLOUD_MAX_BODY", def.MaxBodyBytes)
	fs.Var(byteSize{&cfg.MaxBodyBytes}, "max-body", "largest request body and image, e.g. 10MiB (1KiB..1GiB; env FACECLOUD_MAX_BODY)")
	fs.IntVar(&cfg.MaxPixels, "max-pixels", e.Int("FACECLOUD_MAX_PIXELS", def.MaxPixels), "largest image in pixels, checked before decoding (env FACECLOUD_MAX_PIXELS)")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", e.Int("FACECLOUD_MAX_INFLIGHT", def.MaxInFlight), "concurrent work requests before answering 503 (env FACECLOUD_MAX_INFLIGHT)")
	fs.DurationVar(&cfg.TextWait, "wait", e.Duration("FACECLOUD_WAIT", def.TextWait), "how long POST / waits for an answer before 504 (env FACECLOUD_WAIT)")
	fs.DurationVar(&cfg.APIWait, "api-wait", e.Duration("FACECLOUD_API_WAIT", def.APIWait), "how long /v1 calls wait before 202 unless ?wait= says (env FACECLOUD_API_WAIT)")
	fs.DurationVar(&cfg.MaxWait, "max-wait", e.Duration("FACECLOUD_MAX_WAIT", def.MaxWait), "largest ?wait= allowed (env FACECLOUD_MAX_WAIT)")
	fs.DurationVar(&cfg.PollInterval, "poll", e.Duration("FACECLOUD_POLL", def.PollInterval), "first interval of looking for a result in the store in case its reply was lost (env FACECLOUD_POLL)")
	fs.DurationVar(&cfg.DrainTimeout, "drain", e.Duration("FACECLOUD_DRAIN", def.DrainTimeout), "how long to let calls finish on shutdown (env FACECLOUD_DRAIN)")
	fs.IntVar(&cfg.MaxEnrollImages, "max-enroll-images", def.MaxEnrollImages, "most images in one enrolment request")
	fs.BoolVar(&cfg.Nearest, "nearest", e.Bool("FACECLOUD_NEAREST", def.Nearest), "answer the nearest gallery name even beyond the threshold unless ?nearest=0 (env FACECLOUD_NEAREST)")
	return &cfg
}

func runWeb(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "web")
	e := &envDefaults{env: env}
	cfg := webLimitFlags(fs, e)
	backends := webBackendFlags(fs, env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "facecloud web: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if err := e.Err(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := backends.resolve(); err != nil {
		return err
	}
	log := newLogger(env)
	deps, closeAll, err := backends.open(ctx, env)
	if err != nil {
		return err
	}
	defer closeAll()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deps.Logger, deps.Registry = log, reg
	log.Info("web agent backends", "requests", backends.requests, "replies", backends.replies,
		"input", backends.input, "output", backends.output, "gallery", backends.gallery)
	srv, err := web.New(*cfg, deps)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Run(ctx)
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
