package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/models"
	"github.com/facecloud/facecloud/agents/platform/datadir"
	"github.com/facecloud/facecloud/agents/platform/procfleet"
	"github.com/facecloud/facecloud/agents/scaler"
	"github.com/facecloud/facecloud/agents/web"
	"github.com/facecloud/facecloud/agents/worker"
)

// localIdleExit is how long a local worker waits for work before retiring.
const localIdleExit = time.Minute

func init() {
	register(command{
		name:    "local",
		summary: "run the whole system on this machine: web agent, scaler and worker processes",
		run:     runLocal,
	})
}

func runLocal(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "local")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud local --data DIR [--addr HOST:PORT] [flags]

Runs the web agent and the scaler in this process and workers as child
processes ("facecloud worker --data DIR"), all on DIR/queue.db and DIR/store.
It listens on 127.0.0.1:8080 unless --addr says otherwise. On the first
start it creates an admin API key, shows it once and keeps it in
DIR/admin.key (mode 0600); send it as "Authorization: Bearer <key>".
--open-recognition lets recognition through without a key.
Enrol the gallery first with "facecloud enroll --data DIR ..." or through
POST /v1/gallery/{person}. Ctrl-C stops everything cleanly: the web agent
drains, workers finish their jobs, and no process is left behind.

flags:`)
		fs.PrintDefaults()
	}
	// Locally the service answers this machine only, unless --addr says
	// otherwise.
	wcfg := webLimitFlags(fs, "127.0.0.1:8080")
	door := frontDoorFlags(fs)
	scfg := scaler.DefaultConfig
	var compactEvery time.Duration
	scalerFlags(fs, &scfg, &compactEvery)
	fs.IntVar(&scfg.Policy.Max, "max-workers", min(runtime.NumCPU(), 100), "most worker processes (1..100; default the number of CPUs)")
	// One engine call uses one core, and local starts up to a worker per
	// CPU: two jobs per worker keep each busy across the queue round trip
	// without piling NumCPU² jobs (and their memory) onto the machine.
	var wf workerFlags
	// Locally the fleet is elastic by default: a worker idle for a minute
	// retires, down to --min-workers.
	wf.register(fs, env, "worker-", min(2, worker.DefaultConfig.Concurrency), localIdleExit)
	data := fs.String("data", "", "data directory: queues in DIR/queue.db, images, results and gallery in DIR/store")
	webProcs := fs.Int("web-procs", 0, "cores this process (web agent, scaler, fleet) runs on at once (GOMAXPROCS); 0: a quarter of the CPUs, at least 1 (0..1024)")
	memLimit := memoryLimitFlag(fs)
	pprofAddr := pprofFlag(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	// One --status-every for both reports of this process.
	wcfg.StatusEvery = scfg.StatusEvery
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "facecloud local: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if *data == "" {
		return usageError(env, fs, "--data is required")
	}
	wf.cfg.Name = "local"
	if err := wf.validate(); err != nil {
		return err
	}
	if err := validProcs("web-procs", *webProcs); err != nil {
		return err
	}
	if err := scfg.Validate(); err != nil {
		return err
	}
	if err := validCompactEvery(compactEvery); err != nil {
		return err
	}
	if err := wcfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := door.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := checkPprofAddr(*pprofAddr); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start workers: %w", err)
	}
	// One reply consumer per data directory; workers of this local share it.
	lock, err := datadir.Acquire(*data, "local")
	if err != nil {
		return err
	}
	defer lock.Release()
	log := newLogger(env)
	setMemoryLimit(env, log, *memLimit, wcfg.UploadMemory)
	// Each process sized to its share of the cores (localProcs); this
	// one's restored on return, for the tests that run this in their
	// process.
	cores := runtime.GOMAXPROCS(0)
	webP, workerP := localProcs(cores, scfg.Policy.Max, *webProcs, wf.procs)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(webP))
	stopPprof, err := startPprof(*pprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()

	// Fetch the model once here, so a first burst does not find every new
	// worker fetching it at the same time.
	t0 := time.Now()
	if err := models.Ensure(ctx, wf.modelsDir); err != nil {
		return err
	}
	log.Info("face model ready", "dir", wf.modelsDir, "took", time.Since(t0).Round(time.Millisecond))

	reqQ, err := openQueue(ctx, env, localQueueURL(*data, RequestQueueName)+wf.sqliteOptions())
	if err != nil {
		return err
	}
	defer reqQ.Close()
	repQ, err := openQueue(ctx, env, localQueueURL(*data, ReplyQueueName))
	if err != nil {
		return err
	}
	defer repQ.Close()
	store, err := openStore(ctx, env, localStoreURL(*data))
	if err != nil {
		return err
	}
	defer store.Close()

	keyFile, err := ensureAdminKey(ctx, env, store, *data)
	if err != nil {
		return err
	}
	if keyFile == "" {
		log.Info("API keys exist already; the admin key made on the first start is in "+filepath.Join(*data, adminKeyFile)+" unless it was revoked", "list", "facecloud keys list --data "+*data)
	}
	storeURL := localStoreURL(*data)
	doorCtx, stopDoor := context.WithCancel(context.WithoutCancel(ctx))
	ring, waitDoor, err := door.start(doorCtx, store, door.retentionRules(storeURL, store, storeURL, store), wcfg.OpenRecognition, log.With("agent", "web"))
	if err != nil {
		stopDoor()
		return err
	}
	defer waitDoor()
	defer stopDoor()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := web.New(*wcfg, web.Deps{
		Requests: reqQ, Replies: repQ, Inputs: store, Outputs: store,
		Logger: log.With("agent", "web"), Registry: reg, Keys: ring,
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	workerArgs := []string{"worker", "--data", *data,
		"--concurrency", strconv.Itoa(wf.cfg.Concurrency),
		"--idle-exit", wf.cfg.IdleExit.String(),
		"--visibility", wf.cfg.Visibility.String(),
		"--heartbeat", wf.cfg.Heartbeat.String(),
		"--max-receives", strconv.Itoa(wf.cfg.MaxReceives),
		"--drain", wf.cfg.DrainTimeout.String(),
		"--models", wf.modelsDir,
		"--threshold", strconv.FormatFloat(wf.threshold, 'g', -1, 64),
		"--gallery-refresh", wf.galleryRefresh.String(),
		"--procs", strconv.Itoa(workerP),
		"--answer-objects=" + strconv.FormatBool(wf.cfg.AnswerObjects),
		// Local workers serve no metrics (the variable may be set for
		// this process).
		"--metrics=",
		// The web agent's upload limits, so that what it accepts its
		// workers decode.
		"--max-body", strconv.FormatInt(wcfg.MaxBodyBytes, 10),
		"--max-pixels", strconv.Itoa(wcfg.MaxPixels),
	}
	if *pprofAddr != "" {
		// Each worker serves its own profiles on a port of its choosing,
		// which it logs.
		workerArgs = append(workerArgs, "--pprof", "127.0.0.1:0")
	}
	fleet, err := procfleet.New(procfleet.Config{
		Command: func(n int) *exec.Cmd {
			cmd := exec.Command(exe, append(workerArgs, "--name", fmt.Sprintf("local-%d", n))...)
			cmd.Stdout, cmd.Stderr = env.stdout, env.stderr
			return cmd
		},
		Min:         scfg.Policy.Min,
		Max:         scfg.Policy.Max,
		StopTimeout: wf.cfg.DrainTimeout + 5*time.Second,
		Logger:      log.With("agent", "fleet"),
	})
	if err != nil {
		return err
	}
	dlq, err := openQueue(ctx, env, localQueueURL(*data, RequestQueueName+DeadLetterSuffix))
	if err != nil {
		_ = fleet.Close()
		return err
	}
	defer dlq.Close()
	loop, err := scaler.New(scfg, scaler.Deps{Queue: reqQ, Fleet: fleet, Logger: log.With("agent", "scaler"), Metrics: reg,
		Status: store, DeadLetters: dlq, Name: "local"})
	if err != nil {
		_ = fleet.Close()
		return err
	}

	ln, err := net.Listen("tcp", wcfg.Addr)
	if err != nil {
		_ = fleet.Close()
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if wcfg.TLSCert != "" {
		scheme = "https"
	}
	log.Info("facecloud local running", "url", scheme+"://"+ln.Addr().String()+"/", "data", *data,
		"min_workers", scfg.Policy.Min, "max_workers", scfg.Policy.Max, "worker_concurrency", wf.cfg.Concurrency, "idle_exit", wf.cfg.IdleExit,
		"cores", cores, "web_procs", webP, "worker_procs", workerP)

	// Asked to stop (Ctrl-C, SIGTERM), the web agent drains: it refuses
	// new requests and answers the calls in progress, while the scaler
	// keeps sizing the fleet (even from zero) and the workers, whose
	// shutdown the fleet owns, keep taking the queued jobs. Once the last
	// call is answered the scaler stops and the workers are told to stop:
	// they finish the jobs in hand and exit. A second Ctrl-C ends the drain
	// at once: waiting calls get 503 with their id to fetch later.
	scalerCtx, stopScaler := context.WithCancel(context.WithoutCancel(ctx))
	defer stopScaler()
	var wg sync.WaitGroup
	wg.Go(func() { _ = loop.Run(scalerCtx) })
	// This process is the one scaler of the data directory (it holds its
	// lock), so it is the one compactor of its collections too.
	compactor := &gallery.Compactor{Store: store, Interval: compactEvery, Logger: log.With("agent", "compactor")}
	wg.Go(func() { compactor.Run(scalerCtx) })
	served := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-served:
			return
		}
		log.Info("stopping: answering the calls in progress first; interrupt again to stop at once")
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		select {
		case <-again:
			log.Warn("second interrupt: stopping now; calls still waiting get 503 with their id")
			_ = srv.Close()
		case <-served:
		}
	}()
	serveErr := srv.Serve(ctx, ln)
	close(served)
	if serveErr != nil {
		log.Error("web agent failed; stopping", "err", serveErr)
	}
	stopScaler()
	wg.Wait()
	log.Info("stopping workers: they finish the jobs in hand")
	if err := fleet.Close(); err != nil {
		log.Warn("stopping workers", "err", err)
	}
	log.Info("facecloud local stopped")
	return serveErr
}
