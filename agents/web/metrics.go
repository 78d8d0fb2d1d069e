package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the agent's Prometheus series, registered on the registry the
// caller injects so several servers (tests, restarts) never collide.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	waiting  prometheus.Gauge
	replies  *prometheus.CounterVec
	answers  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	// uploadBytes is the part of the upload memory budget in use.
	uploadBytes prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "facecloud_web_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "facecloud_web_request_duration_seconds",
			Help:    "HTTP request latency by route, including the wait for the answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"route", "method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "facecloud_web_in_flight_requests",
			Help: "HTTP requests being served.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "facecloud_web_waiting_calls",
			Help: "Calls waiting for a worker's answer.",
		}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "facecloud_web_replies_total",
			Help: "Replies taken from the reply queue: routed to a waiting call, orphaned (no waiter here; the result is in the store) or invalid.",
		}, []string{"outcome"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "facecloud_web_answers_total",
			Help: "Answers delivered to waiting calls, by how they were noticed: a reply, or polling the output store.",
		}, []string{"via"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "facecloud_web_rejected_total",
			Help: "Requests refused before reaching the queue, by reason.",
		}, []string{"reason"}),
		uploadBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "facecloud_web_upload_memory_bytes",
			Help: "Bytes of the upload memory budget held by calls: upload bytes received and image checks under way.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.inFlight, m.waiting, m.replies, m.answers, m.rejected, m.uploadBytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []string{"routed", "orphaned", "invalid"} {
		m.replies.WithLabelValues(o)
	}
	for _, v := range []string{"reply", "store"} {
		m.answers.WithLabelValues(v)
	}
	return m, nil
}

// instrument counts and times h under route.
func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerInFlight(m.inFlight,
		promhttp.InstrumentHandlerDuration(m.latency.MustCurryWith(labels),
			promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(labels), h)))
}
