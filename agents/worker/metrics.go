package worker

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facecloud/facecloud/agents/job"
)

// outcomes are the worker's counts by outcome, as Stats has them.
var outcomes = []string{"done", "failed", "resent", "invalid", "retried"}

// register puts the worker's series on reg: its requests by outcome (read
// from the counts Stats reports), the jobs it holds and the engine time of
// each answered request by kind.
func (w *Worker) register(reg prometheus.Registerer) error {
	count := map[string]func() int64{
		"done": w.done.Load, "failed": w.failed.Load, "resent": w.resent.Load, "invalid": w.invalid.Load, "retried": w.retried.Load,
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "facecloud_worker_busy_jobs",
			Help: "Requests this worker is working on.",
		}, func() float64 { return float64(w.busy.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "facecloud_worker_concurrency",
			Help: "Requests this worker works on at once at most.",
		}, func() float64 { return float64(w.cfg.Concurrency) }),
	}
	for _, o := range outcomes {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "facecloud_worker_requests_total",
			Help:        "Requests by outcome: answered done or failed, answered again from a stored result (resent), dropped as invalid, or left for redelivery after a transient failure (retried).",
			ConstLabels: prometheus.Labels{"outcome": o},
		}, func() float64 { return float64(count[o]()) }))
	}
	w.engine = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "facecloud_worker_engine_seconds",
		Help:    "Face engine time of each answered request (decoding, detection, description; no queueing or I/O), by kind.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"kind"})
	for _, k := range []string{job.KindRecognize, job.KindEnroll} {
		w.engine.WithLabelValues(k)
	}
	cs = append(cs, w.engine)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register worker metrics: %w", err)
		}
	}
	return nil
}

// observe counts an answered request's engine time.
func (w *Worker) observe(req job.Request, res job.Result) {
	if w.engine == nil || res.Status != job.StatusDone {
		return
	}
	kind := req.Kind
	if kind == "" {
		kind = job.KindRecognize
	}
	w.engine.WithLabelValues(kind).Observe(res.RecognitionMS / 1000)
}
