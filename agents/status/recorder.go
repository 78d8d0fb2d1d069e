package status

import (
	"slices"
	"sync"
	"time"
)

// Recorder keeps a web host's figures for its WebReport: its calls in
// steps of StepLength over the last Window, and its latest failures. It is
// safe for concurrent use.
type Recorder struct {
	host    string
	started time.Time

	mu       sync.Mutex
	steps    []Step // oldest first, within Window of the newest
	failures []Failure
	// latest is when the latest call was recorded.
	latest time.Time
}

// NewRecorder returns a recorder for host, started at now.
func NewRecorder(host string, now time.Time) *Recorder {
	return &Recorder{host: host, started: now.UTC()}
}

// step returns the step holding t, creating it (and dropping steps older
// than Window) as needed; r.mu is held.
func (r *Recorder) step(t time.Time) *Step {
	start := t.UTC().Truncate(StepLength)
	if n := len(r.steps); n > 0 {
		last := &r.steps[n-1]
		switch {
		case last.T.Equal(start):
			return last
		case start.Before(last.T):
			// A clock step backwards: count it in the newest step.
			return last
		}
	}
	r.steps = append(r.steps, Step{T: start})
	cut := 0
	for cut < len(r.steps) && !r.steps[cut].T.After(start.Add(-Window)) {
		cut++
	}
	r.steps = slices.Delete(r.steps, 0, cut)
	return &r.steps[len(r.steps)-1]
}

// Answered counts a call answered with a result after d.
func (r *Recorder) Answered(now time.Time, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.step(now)
	st.Latency.Add(d)
	st.OK++
	r.latest = now
}

// Failed counts a work call (a recognition or enrolment) that failed; f
// goes to the failures too.
func (r *Recorder) Failed(f Failure) {
	r.mu.Lock()
	r.step(f.At).Failed++
	r.latest = f.At
	r.mu.Unlock()
	r.Failure(f)
}

// Failure notes a failed call of any route.
func (r *Recorder) Failure(f Failure) {
	f.At, f.Host = f.At.UTC(), r.host
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest = f.At
	r.failures = append([]Failure{f}, r.failures...)
	if len(r.failures) > MaxFailures {
		r.failures = r.failures[:MaxFailures]
	}
}

// Report returns the figures as of now.
func (r *Recorder) Report(now time.Time, every time.Duration) WebReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := WebReport{
		V: Version, Host: r.host, Started: r.started, Written: now.UTC(),
		EveryMS: every.Milliseconds(), StepMS: StepLength.Milliseconds(),
		Steps: []Step{}, Failures: []Failure{},
	}
	// Failures older than the window are left out too: the report holds
	// the last minutes only (a reason may name a file or a person).
	for _, f := range r.failures {
		if f.At.After(now.Add(-Window)) {
			rep.Failures = append(rep.Failures, f)
		}
	}
	for _, s := range r.steps {
		if s.T.After(now.Add(-Window)) {
			c := s
			c.Latency = Histogram{}
			c.Latency.Merge(s.Latency)
			rep.Steps = append(rep.Steps, c)
		}
	}
	return rep
}

// Changed reports whether anything was recorded at or after t.
func (r *Recorder) Changed(t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.latest.IsZero() && !r.latest.Before(t)
}
