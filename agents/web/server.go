// Package web is the web agent: the HTTP API in front of the queue. It checks
// each upload, stores it, queues a job.Request and answers when the worker's
// Result is in the output store — woken by the worker's reply, or finding
// the Result by polling the store, so a lost reply or a restarted web host
// delays an answer but never loses it. It never loads the face model.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	galleries "github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/platform"
	live "github.com/facecloud/facecloud/agents/status"
)

// Deps are the ports and services the agent runs on. The server does not
// close them: whoever opened them does.
type Deps struct {
	// Requests receives a job.Request per accepted image.
	Requests platform.Queue
	// Replies is read by the server's one reply consumer: the queue every
	// worker replies on. Leave it nil when ReplyFamily is set.
	Replies platform.Queue
	// ReplyFamily, when set, gives this server a reply queue of its own:
	// created in it by New (named after Host and a random tag), named in
	// every request the server sends, touched every cfg.ReplyTouch and
	// removed by Close, so that with several web hosts each reply reaches
	// the host whose call waits for it.
	ReplyFamily platform.QueueFamily
	// Host names this server's reply queue; empty means the host name.
	Host string
	// Inputs stores uploads under job.InputKey(id).
	Inputs platform.Store
	// Outputs holds workers' Results under job.ResultKey(id).
	Outputs platform.Store
	// Gallery holds the enrolled faces under gallery/; nil means Outputs.
	Gallery platform.Store
	// Now is the clock stamped on requests; nil means time.Now.
	Now func() time.Time
	// Logger nil discards logs.
	Logger *slog.Logger
	// Registry receives the agent's metrics and is served at /metrics; nil
	// means a new registry of the agent's own.
	Registry *prometheus.Registry
	// Keys checks the API keys requests present and manages them; nil
	// means no key is valid (only the open routes answer).
	Keys keys.Authority
}

// Server is a web agent. Create it with New, serve with Run (or mount
// Handler), and Close it when done.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics
	handler http.Handler
	// routeList is what routes registered, for Routes.
	routeList []Route
	waiters   waiters
	replies   hostReplies
	slots     chan struct{}
	// limits is the token bucket of each key; crossOrigin refuses
	// cross-origin browser requests that carry no key.
	limits      *limiters
	crossOrigin *http.CrossOriginProtection
	// tls is the certificate of cfg.TLSCert/TLSKey, loaded by New so a bad
	// file fails at start; nil serves plain HTTP.
	tls     *tls.Config
	decodes chan struct{}
	budget  *budget
	// recorder keeps this host's calls for the status; statusCache the
	// other reports it merges them with.
	recorder    *live.Recorder
	statusCache statusCache

	// index follows the collections without descriptors, for listings and
	// erasures; renewed at most every indexFresh, and after this host's
	// enrolments and erasures (indexChanged).
	index   *galleries.Follower
	indexMu sync.Mutex
	indexAt time.Time

	// draining refuses new work (503) while the calls in progress finish.
	draining atomic.Bool
	// stop ends waits: cancelled by Close, or by Run when draining runs out.
	stop       context.Context
	cancelStop context.CancelFunc
	consumer   sync.WaitGroup
	closeOnce  sync.Once

	readyMu   sync.Mutex
	readyAt   time.Time
	readyErr  error
	readyDone bool
}

// New checks cfg and deps and starts the reply consumer.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("web config: %w", err)
	}
	if deps.Requests == nil || (deps.Replies == nil) == (deps.ReplyFamily == nil) || deps.Inputs == nil || deps.Outputs == nil {
		return nil, errors.New("web: request queue, one of reply queue or reply queue family, input store and output store are all required")
	}
	if deps.Gallery == nil {
		deps.Gallery = deps.Outputs
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("web metrics: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		deps:    deps,
		log:     deps.Logger,
		metrics: m,
		waiters: waiters{m: map[string]map[chan *job.Result]struct{}{}},
		slots:   make(chan struct{}, cfg.MaxInFlight),
		decodes: make(chan struct{}, runtime.GOMAXPROCS(0)),
		budget:  newBudget(cfg.UploadMemory, cfg.MemoryWait),

		limits:      newLimiters(cfg.KeyRate, cfg.KeyBurst),
		crossOrigin: http.NewCrossOriginProtection(),
		index:       galleries.NewIndexFollower(deps.Gallery),
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("web: TLS certificate: %w", err)
		}
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	s.recorder = live.NewRecorder(s.host(), deps.Now())
	s.stop, s.cancelStop = context.WithCancel(context.Background())
	if err := s.openReplies(); err != nil {
		s.cancelStop()
		return nil, err
	}
	s.handler = s.routes()
	s.consumer.Go(func() { s.consumeReplies(s.stop) })
	if deps.ReplyFamily != nil {
		s.consumer.Go(func() { s.touchReplies(s.stop) })
	}
	if cfg.StatusEvery > 0 {
		s.consumer.Go(func() { s.publishStatus(s.stop) })
	}
	return s, nil
}

// Handler serves the API; it is what Run serves.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the reply consumer and ends open waits (they answer 503 with
// the id to poll). It does not close the queues and stores.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancelStop()
		s.consumer.Wait()
		s.closeReplies()
	})
	return nil
}

// Run listens on cfg.Addr and serves until ctx ends, then drains; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends. Then it drains: new work requests
// are refused with 503 (they were not accepted: the client may retry),
// while the calls in progress run to their answer — the reply consumer
// keeps running, so waiting calls get the answers workers send meanwhile —
// for up to cfg.DrainTimeout. Serve returns as soon as the last call in
// progress is answered, not after the whole timeout. Calls still waiting
// when it runs out, or when Close is called meanwhile (a second interrupt),
// are answered 503 with their id to fetch later. Serve returns nil after a
// drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("web agent listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String()+"/",
		"open_recognition", s.cfg.OpenRecognition, "config", fmt.Sprintf("%+v", s.cfg))
	served := make(chan error, 1)
	go func() {
		if s.tls != nil {
			served <- hs.ServeTLS(ln, "", "")
			return
		}
		served <- hs.Serve(ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	inFlight := len(s.slots)
	s.log.Info("web agent draining: new requests are refused, calls in progress finish", "in_flight", inFlight, "timeout", s.cfg.DrainTimeout)
	drained := s.waitIdle(s.cfg.DrainTimeout)
	if !drained {
		// Out of time (or told to stop now): answer the remaining waits
		// 503 with their id.
		s.log.Warn("web agent stops with calls still waiting; they are answered 503 with their id", "in_flight", len(s.slots))
		s.cancelStop()
	}
	last, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(last); err != nil {
		_ = hs.Close()
	}
	s.log.Info("web agent stopped", "drained", drained)
	return nil
}

// Draining reports whether the server has begun to drain.
func (s *Server) Draining() bool { return s.draining.Load() }

// waitIdle waits until no call is in progress, for up to timeout or until
// Close; it reports whether the calls all finished.
func (s *Server) waitIdle(timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(s.slots) > 0 {
		select {
		case <-deadline.C:
			return false
		case <-s.stop.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, route string, h http.Handler) {
		mux.Handle(pattern, s.observe(route, s.metrics.instrument(route, h)))
	}
	// serve registers a route's methods and notes them for Routes.
	serve := func(pattern, route string, m methods, writeErr func(http.ResponseWriter, *httpError)) {
		for method := range m {
			s.routeList = append(s.routeList, Route{Method: method, Pattern: pattern})
		}
		handle(pattern, route, m.handler(writeErr))
	}
	text := func(a access, h http.Handler) http.Handler { return s.guard(a, textErrors, h) }
	json := func(a access, h http.Handler) http.Handler { return s.guard(a, jsonErrors, h) }
	recognize := access{scope: keys.Recognize, openable: true}
	search := access{scope: keys.Recognize}
	enroll := access{scope: keys.Enroll}
	admin := access{scope: keys.Admin}
	global := access{scope: keys.Admin, global: true}
	api := func(a access, h func(http.ResponseWriter, *http.Request) *httpError) http.Handler {
		return json(a, s.limited(jsonErrors, h))
	}
	serve("/{$}", "root", methods{
		http.MethodGet:  http.HandlerFunc(s.page),
		http.MethodPost: text(recognize, s.limited(textErrors, s.postText)),
	}, textErrors)
	serve("/healthz", "healthz", methods{http.MethodGet: http.HandlerFunc(s.healthz)}, textErrors)
	serve("/readyz", "readyz", methods{http.MethodGet: http.HandlerFunc(s.readyz)}, textErrors)
	serve("/openapi.json", "openapi", methods{http.MethodGet: http.HandlerFunc(s.openAPI)}, jsonErrors)
	serve("/metrics", "metrics", methods{http.MethodGet: text(global, promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{}))}, textErrors)
	serve("/v1/recognitions", "recognitions", methods{http.MethodPost: api(recognize, s.postRecognition)}, jsonErrors)
	serve("/v1/recognitions/{id}", "recognition", methods{
		http.MethodGet:    api(recognize, s.getRecognition),
		http.MethodDelete: api(admin, s.deleteRecognition),
	}, jsonErrors)
	serve("/v1/detections", "detections", methods{http.MethodPost: api(recognize, s.postDetection)}, jsonErrors)
	serve("/v1/verifications", "verifications", methods{http.MethodPost: api(recognize, s.postVerification)}, jsonErrors)
	serve("/v1/gallery", "gallery", methods{http.MethodGet: api(admin, s.getGallery)}, jsonErrors)
	serve("/v1/gallery/{person}", "enroll", methods{
		http.MethodPost:   api(enroll, s.postEnroll),
		http.MethodGet:    api(admin, s.getPerson),
		http.MethodDelete: api(admin, s.deletePerson),
	}, jsonErrors)
	serve("/v1/gallery/{person}/{face}", "face", methods{http.MethodDelete: api(admin, s.deleteFace)}, jsonErrors)
	serve("/v1/collections", "collections", methods{http.MethodGet: api(admin, s.getCollections)}, jsonErrors)
	serve("/v1/collections/{collection}/persons", "persons", methods{http.MethodGet: api(admin, s.getPersons)}, jsonErrors)
	serve("/v1/collections/{collection}/persons/{person}", "person", methods{http.MethodDelete: api(admin, s.deleteCollectionPerson)}, jsonErrors)
	serve("/v1/collections/{collection}/persons/{person}/faces", "person_faces", methods{
		http.MethodGet:  api(admin, s.getPersonFaces),
		http.MethodPost: api(enroll, s.postPersonFaces),
	}, jsonErrors)
	serve("/v1/collections/{collection}/persons/{person}/faces/{face}", "person_face", methods{http.MethodDelete: api(admin, s.deleteCollectionFace)}, jsonErrors)
	serve("/v1/collections/{collection}/persons/{person}/faces/{face}/thumbnail", "person_face_thumbnail", methods{http.MethodGet: api(admin, s.getCollectionThumbnail)}, jsonErrors)
	serve("/v1/collections/{collection}/searches", "searches", methods{http.MethodPost: api(search, s.postSearch)}, jsonErrors)
	serve("/v1/gallery/{person}/{face}/thumbnail", "thumbnail", methods{http.MethodGet: api(admin, s.getThumbnail)}, jsonErrors)
	serve("/v1/status", "status", methods{http.MethodGet: api(global, s.getStatus)}, jsonErrors)
	serve("/console", "console", methods{http.MethodGet: http.HandlerFunc(s.console)}, textErrors)
	serve("/console/{file}", "console", methods{http.MethodGet: http.HandlerFunc(s.consoleAsset)}, textErrors)
	serve("/v1/keys", "keys", methods{
		http.MethodGet:  api(global, s.getKeys),
		http.MethodPost: api(global, s.postKey),
	}, jsonErrors)
	serve("/v1/keys/{id}", "key", methods{http.MethodDelete: api(global, s.deleteKey)}, jsonErrors)
	handle("/v1/", "unknown", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jsonErrors(w, refuse(http.StatusNotFound, "no_route", "no route %s %s", r.Method, r.URL.Path))
	}))
	handle("/", "unknown", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		textErrors(w, refuse(http.StatusNotFound, "no_route", "no route %s %s", r.Method, r.URL.Path))
	}))
	sort.Slice(s.routeList, func(i, j int) bool {
		a, b := s.routeList[i], s.routeList[j]
		return a.Pattern+" "+a.Method < b.Pattern+" "+b.Method
	})
	return nosniff(mux)
}

// Route is one method and path pattern the server answers.
type Route struct{ Method, Pattern string }

// Routes lists the methods and paths the server answers (HEAD implied by
// GET, and the catch-all 404 routes left out), for documentation checks.
func (s *Server) Routes() []Route { return slices.Clone(s.routeList) }

// limited runs h holding an in-flight slot, and answers 503 with
// Retry-After when none is free: a burst beyond capacity is turned away
// cheaply instead of piling up goroutines. A call without a body takes its
// slot first; an upload takes it (takeSlot) once its body has arrived and
// been checked, so slow senders hold none: their bytes are bounded by the
// upload memory budget and their time by the minimum transfer rate. Taking
// the slot is accepting the call: while draining, it is refused instead.
func (s *Server) limited(writeErr func(http.ResponseWriter, *httpError), h func(http.ResponseWriter, *http.Request) *httpError) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &slotState{}
		r = r.WithContext(context.WithValue(r.Context(), slotKey{}, st))
		defer func() {
			if st.held {
				<-s.slots
			}
		}()
		var err *httpError
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			err = s.takeSlot(r)
		}
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			if err.status == StatusClientClosedRequest {
				s.log.Debug("client went away before its answer", "route", r.URL.Path, "err", err.msg)
			}
			if err.reason != "" {
				s.metrics.rejected.WithLabelValues(err.reason).Inc()
			}
			if err.status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", fmt.Sprint(int(s.cfg.RetryAfter.Seconds())))
			}
			writeErr(w, err)
		}
	})
}

// slotState says whether a call under limited holds its slot.
type slotState struct{ held bool }

type slotKey struct{}

// takeSlot takes the call's in-flight slot (once), or refuses with 503.
func (s *Server) takeSlot(r *http.Request) *httpError {
	st, _ := r.Context().Value(slotKey{}).(*slotState)
	if st == nil || st.held {
		return nil
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return refuse(http.StatusServiceUnavailable, "busy", "server busy: %d requests in flight, retry later", s.cfg.MaxInFlight)
	}
	// Checked with the slot held: Serve sets draining before it waits for
	// the slots to empty, so a call accepted here is one it waits for.
	if s.draining.Load() {
		<-s.slots
		return refuse(http.StatusServiceUnavailable, "shutting_down", "server shutting down: this request was not accepted; retry, or send it to another host")
	}
	st.held = true
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz answers 200 when the queues and stores answer, checking at most
// once per cfg.ReadyCache.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		textErrors(w, refuse(http.StatusServiceUnavailable, "", "not ready: %v", err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ready")
}

func (s *Server) ready(ctx context.Context) error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.readyDone && time.Since(s.readyAt) < s.cfg.ReadyCache {
		return s.readyErr
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.readyErr = s.probe(ctx)
	s.readyAt, s.readyDone = time.Now(), true
	return s.readyErr
}

func (s *Server) probe(ctx context.Context) error {
	if _, err := s.deps.Requests.Depth(ctx); err != nil {
		return fmt.Errorf("request queue: %w", err)
	}
	if _, err := s.replyQueue().Depth(ctx); err != nil {
		return fmt.Errorf("reply queue: %w", err)
	}
	stores := []struct {
		name  string
		store platform.Store
	}{{"input store", s.deps.Inputs}, {"output store", s.deps.Outputs}, {"gallery store", s.deps.Gallery}}
	seen := map[platform.Store]bool{}
	for _, st := range stores {
		if seen[st.store] {
			continue
		}
		seen[st.store] = true
		if _, err := st.store.Exists(ctx, "readyz"); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}
