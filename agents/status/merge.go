package status

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Status is the service's live state: what GET /v1/status answers and
// `facecloud status --json` prints.
type Status struct {
	V    int       `json:"v"`
	Time time.Time `json:"time"`
	// Queue is the request queue's depth; nil when nobody could read it.
	Queue *QueueView `json:"queue"`
	// Fleet is the worker fleet as the scaler last saw it; nil without a
	// scaler report.
	Fleet *FleetView `json:"fleet"`
	// Scaler is the acting scaler's report; nil when there is none.
	Scaler *ScalerView `json:"scaler"`
	// Requests sums the calls of every web host over the last minute.
	Requests Requests `json:"requests"`
	// Steps are the calls over the last Window, oldest first, one per
	// StepLength, the last one the step under way.
	Steps []RequestStep `json:"steps"`
	// FleetSteps are the backlog and fleet over the last Window.
	FleetSteps []FleetStep `json:"fleet_steps"`
	// Failures are the latest failed calls of every host, newest first.
	Failures []Failure `json:"failures"`
	// Hosts are the web hosts whose figures are merged.
	Hosts []Host `json:"hosts"`
	// Problems name the parts that could not be read.
	Problems []string `json:"problems"`
}

// QueueView is the request queue's depth and where it comes from.
type QueueView struct {
	Queue
	// At is when Visible and InFlight were read; Source is "queue" for a
	// read made for this status, "scaler" for the scaler's last poll.
	At     time.Time `json:"at"`
	Source string    `json:"source"`
	// DeadLetterAt is when DeadLetter was read.
	DeadLetterAt *time.Time `json:"dead_letter_at,omitempty"`
}

// FleetView is the fleet as of At.
type FleetView struct {
	Fleet
	At time.Time `json:"at"`
}

// ScalerView is the scaler's report as a reader sees it.
type ScalerView struct {
	Holder     string    `json:"holder"`
	Written    time.Time `json:"written"`
	AgeSeconds float64   `json:"age_seconds"`
	// Stale is true when the report is much older than the scaler writes
	// it: the scaler has stopped, or cannot write.
	Stale      bool       `json:"stale"`
	IntervalMS int64      `json:"interval_ms"`
	Policy     Policy     `json:"policy"`
	Last       Decision   `json:"last"`
	Decisions  []Decision `json:"decisions"`
	Error      string     `json:"error,omitempty"`
}

// Requests are the calls of a stretch of time.
type Requests struct {
	Seconds float64 `json:"seconds"`
	OK      int     `json:"ok"`
	Failed  int     `json:"failed"`
	// Rate is OK calls a second.
	Rate float64 `json:"rate"`
	// P50MS and P95MS are the OK calls' latency quantiles; nil without calls.
	P50MS *float64 `json:"p50_ms"`
	P95MS *float64 `json:"p95_ms"`
}

// RequestStep is the calls of one step.
type RequestStep struct {
	T time.Time `json:"t"`
	Requests
}

// Host is a web host whose report is merged.
type Host struct {
	Host       string    `json:"host"`
	Started    time.Time `json:"started"`
	Written    time.Time `json:"written"`
	AgeSeconds float64   `json:"age_seconds"`
	Stale      bool      `json:"stale"`
}

// Sources are what Merge merges.
type Sources struct {
	Now time.Time
	// Live is a read of the request queue made for this status (nil:
	// none), LiveErr why it failed.
	Live    *Queue
	LiveErr error
	// Scaler is the scaler's report (nil: none), ScalerErr why it could
	// not be read (ErrNone: never written).
	Scaler    *ScalerReport
	ScalerErr error
	// Web are the web hosts' reports; WebErr names those unreadable.
	Web    []WebReport
	WebErr error
}

// SummaryWindow is the stretch Status.Requests covers.
const SummaryWindow = time.Minute

// stale reports whether a report written every `every` is older than a
// reader should expect of a live writer.
func stale(age, every time.Duration) bool { return age > 3*every+5*time.Second }

// Merge merges the sources into a Status as of src.Now.
func Merge(src Sources) Status {
	now := src.Now.UTC()
	st := Status{V: Version, Time: now, Steps: []RequestStep{}, FleetSteps: []FleetStep{}, Failures: []Failure{}, Hosts: []Host{}, Problems: []string{}}
	problem := func(format string, args ...any) { st.Problems = append(st.Problems, fmt.Sprintf(format, args...)) }

	if src.LiveErr != nil {
		problem("request queue: %v", src.LiveErr)
	}
	if src.Live != nil {
		st.Queue = &QueueView{Queue: *src.Live, At: now, Source: "queue"}
		if src.Live.DeadLetter != nil {
			at := now
			st.Queue.DeadLetterAt = &at
		}
	}
	switch {
	case errors.Is(src.ScalerErr, ErrNone):
		problem("no scaler report in the store: the scaler has not written one (not running, or not allowed to write %s)", ScalerKey)
	case src.ScalerErr != nil:
		problem("scaler report: %v", src.ScalerErr)
	}
	if r := src.Scaler; r != nil {
		age := now.Sub(r.Written)
		every := time.Duration(max(r.EveryMS, r.IntervalMS)) * time.Millisecond
		st.Scaler = &ScalerView{
			Holder: r.Holder, Written: r.Written, AgeSeconds: age.Seconds(), Stale: stale(age, every),
			IntervalMS: r.IntervalMS, Policy: r.Policy, Last: r.Last, Decisions: r.Decisions, Error: r.Error,
		}
		if st.Scaler.Decisions == nil {
			st.Scaler.Decisions = []Decision{}
		}
		if st.Scaler.Stale {
			problem("the scaler's report is %s old: the scaler has stopped, or cannot write %s", age.Round(time.Second), ScalerKey)
		}
		if !r.Polled.IsZero() {
			st.Fleet = &FleetView{Fleet: r.Fleet, At: r.Polled}
			if st.Queue == nil {
				st.Queue = &QueueView{Queue: r.Queue, At: r.Polled, Source: "scaler"}
				if r.Queue.DeadLetter != nil {
					at := r.Polled
					st.Queue.DeadLetterAt = &at
				}
			} else if st.Queue.DeadLetter == nil && r.Queue.DeadLetter != nil {
				n, at := *r.Queue.DeadLetter, r.Polled
				st.Queue.DeadLetter, st.Queue.DeadLetterAt = &n, &at
			}
		}
		for _, s := range r.Steps {
			if s.T.After(now.Add(-Window)) {
				st.FleetSteps = append(st.FleetSteps, s)
			}
		}
	}
	if src.WebErr != nil {
		problem("web host reports: %v", src.WebErr)
	}
	mergeWeb(&st, src.Web, now)
	return st
}

// mergeWeb adds the web hosts' calls, failures and hosts to st.
func mergeWeb(st *Status, reports []WebReport, now time.Time) {
	first := now.Truncate(StepLength).Add(-Window + StepLength)
	n := int(Window / StepLength)
	hists := make([]Histogram, n)
	ok := make([]int, n)
	failed := make([]int, n)
	for _, r := range reports {
		age := now.Sub(r.Written)
		if age > Window {
			continue // a host gone long ago; nothing of it is in the window
		}
		h := Host{Host: r.Host, Started: r.Started, Written: r.Written, AgeSeconds: age.Seconds(),
			Stale: stale(age, time.Duration(r.EveryMS)*time.Millisecond)}
		st.Hosts = append(st.Hosts, h)
		for _, s := range r.Steps {
			i := int(s.T.Sub(first) / StepLength)
			if s.T.Before(first) || i >= n {
				continue
			}
			ok[i] += s.OK
			failed[i] += s.Failed
			hists[i].Merge(s.Latency)
		}
		st.Failures = append(st.Failures, r.Failures...)
	}
	slices.SortFunc(st.Hosts, func(a, b Host) int {
		if a.Host < b.Host {
			return -1
		}
		if a.Host > b.Host {
			return 1
		}
		return 0
	})
	slices.SortStableFunc(st.Failures, func(a, b Failure) int { return b.At.Compare(a.At) })
	if len(st.Failures) > MaxFailures {
		st.Failures = st.Failures[:MaxFailures]
	}
	var sum Histogram
	var sumOK, sumFailed int
	last := int(SummaryWindow / StepLength) // the summary's steps: the last ones
	for i := range n {
		t := first.Add(time.Duration(i) * StepLength)
		secs := StepLength.Seconds()
		if i == n-1 {
			secs = max(now.Sub(t).Seconds(), 0.001)
		}
		st.Steps = append(st.Steps, RequestStep{T: t, Requests: requests(secs, ok[i], failed[i], hists[i])})
		if i >= n-last {
			sumOK += ok[i]
			sumFailed += failed[i]
			sum.Merge(hists[i])
		}
	}
	st.Requests = requests(now.Sub(st.Steps[n-last].T).Seconds(), sumOK, sumFailed, sum)
}

func requests(secs float64, ok, failed int, h Histogram) Requests {
	r := Requests{Seconds: secs, OK: ok, Failed: failed}
	if secs > 0 {
		r.Rate = float64(ok) / secs
	}
	if v, found := h.Quantile(0.5); found {
		r.P50MS = &v
	}
	if v, found := h.Quantile(0.95); found {
		r.P95MS = &v
	}
	return r
}
