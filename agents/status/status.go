// Package status is the service's live state as operators see it: the
// request queue, the worker fleet, the scaler's recent decisions, the
// throughput and latency of the calls, and the calls that failed.
//
// Each part is known to a different agent, so each agent publishes what it
// knows as a small JSON object in the output store, and readers merge the
// objects:
//
//   - the acting scaler writes ScalerKey: the queue (with its dead letters)
//     and the fleet as it last polled them, its recent decisions with their
//     reasons, and a short history of backlog and fleet size;
//   - every web agent writes WebKey(host): its calls in steps of a few
//     seconds (answered, failed, a latency histogram) and its recent
//     failures.
//
// A web agent's GET /v1/status merges its own figures (from memory), the
// other hosts' and the scaler's objects and a live read of the queue's
// depth; `facecloud status --data DIR` merges the same objects read from
// the data directory with the queue file's depth. Both give a Status.
// The objects go through the store, rather than between processes, because
// the scaler may run in another process or on another host (one of several
// web hosts holds the scaler's lease), and because the store is what every
// agent can already reach.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// Version is the schema version of the objects and of Status.
const Version = 1

// Store keys of the objects.
const (
	// Prefix holds every status object.
	Prefix = "status/"
	// ScalerKey is the acting scaler's object.
	ScalerKey = Prefix + "scaler.json"
	// WebPrefix holds one object per web host.
	WebPrefix = Prefix + "web/"
)

// WebKey is where the web agent of host writes its object; host is reduced
// to the characters a key segment may hold.
func WebKey(host string) string { return WebPrefix + safeName(host) + ".json" }

func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
	s = strings.TrimLeft(s, ".")
	if len(s) > 100 {
		s = s[:100]
	}
	if s == "" {
		return "web"
	}
	return s
}

// Queue is the request queue's depth. DeadLetter is nil when unknown (the
// reader has no handle on the dead-letter queue).
type Queue struct {
	Visible    int  `json:"visible"`
	InFlight   int  `json:"in_flight"`
	DeadLetter *int `json:"dead_letter"`
}

// Fleet is the worker fleet's size.
type Fleet struct {
	Desired int `json:"desired"`
	Running int `json:"running"`
	Pending int `json:"pending"`
	// Max is the most workers the fleet holds (0: not known).
	Max int `json:"max,omitempty"`
}

// Policy is what the scaler sizes the fleet by.
type Policy struct {
	Min           int `json:"min"`
	Max           int `json:"max"`
	TargetBacklog int `json:"target_backlog"`
}

// Decision is one of the scaler's decisions.
type Decision struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	From   int       `json:"from"`
	To     int       `json:"to"`
	// Backlog is the requests visible or in flight the decision saw.
	Backlog int    `json:"backlog"`
	Reason  string `json:"reason"`
}

// FleetStep is the backlog and fleet of one step of the scaler's history.
type FleetStep struct {
	T time.Time `json:"t"`
	// Backlog is the most requests visible or in flight seen in the step.
	Backlog int `json:"backlog"`
	// Desired, Running and Pending are the last poll's of the step.
	Desired int `json:"desired"`
	Running int `json:"running"`
	Pending int `json:"pending"`
}

// ScalerReport is the object the acting scaler writes to ScalerKey.
type ScalerReport struct {
	V int `json:"v"`
	// Holder names the scaler (its lease holder name, or its host).
	Holder  string    `json:"holder"`
	Written time.Time `json:"written"`
	// EveryMS is how often the scaler writes the object at most; a reader
	// takes an object much older than that for a scaler that stopped.
	EveryMS    int64  `json:"every_ms"`
	IntervalMS int64  `json:"interval_ms"`
	Policy     Policy `json:"policy"`
	// Polled is when Queue and Fleet were read.
	Polled time.Time `json:"polled"`
	Queue  Queue     `json:"queue"`
	Fleet  Fleet     `json:"fleet"`
	// Last is the latest poll's decision, a hold included.
	Last Decision `json:"last"`
	// Decisions are the latest decisions that changed the fleet, newest
	// first, at most MaxDecisions.
	Decisions []Decision `json:"decisions"`
	// Steps are the backlog and fleet over the last Window, oldest first.
	Steps []FleetStep `json:"steps"`
	// Error is why the latest poll failed, if it did.
	Error string `json:"error,omitempty"`
}

// Failure is one call that failed, with its one-line reason.
type Failure struct {
	At time.Time `json:"at"`
	// Host is the web host that answered it.
	Host string `json:"host,omitempty"`
	// Call is the method and path, e.g. "POST /v1/recognitions".
	Call   string `json:"call"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	// ID is the request's id, when it got one.
	ID string `json:"id,omitempty"`
}

// Step is what one web host saw of its calls in one step.
type Step struct {
	T time.Time `json:"t"`
	// OK counts calls answered with a result; Failed calls refused or
	// answered with a failed result.
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// Latency is the histogram of the OK calls' durations.
	Latency Histogram `json:"latency,omitzero"`
}

// WebReport is the object a web agent writes to WebKey(host).
type WebReport struct {
	V       int       `json:"v"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Written time.Time `json:"written"`
	EveryMS int64     `json:"every_ms"`
	StepMS  int64     `json:"step_ms"`
	// Steps are oldest first; steps without calls may be left out.
	Steps []Step `json:"steps"`
	// Failures are newest first, at most MaxFailures.
	Failures []Failure `json:"failures"`
}

// Bounds of the history every part keeps.
const (
	// StepLength is the length of one step of the histories.
	StepLength = 10 * time.Second
	// Window is how far back the histories go.
	Window = 10 * time.Minute
	// MaxDecisions and MaxFailures bound the lists.
	MaxDecisions = 20
	MaxFailures  = 20
)

// Put writes v (a report) to key as JSON.
func Put(ctx context.Context, st platform.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := st.Put(ctx, key, b, "application/json"); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// ErrNone means the store holds no such report.
var ErrNone = errors.New("no report")

// ReadScaler reads the scaler's report; ErrNone when none was written.
func ReadScaler(ctx context.Context, st platform.Store) (ScalerReport, error) {
	var r ScalerReport
	if err := read(ctx, st, ScalerKey, &r); err != nil {
		return r, err
	}
	return r, nil
}

// ReadWeb reads every web host's report under WebPrefix but skip's (a
// host's own key, which it knows better from memory). A report that
// cannot be read or decoded is left out and named in the error.
func ReadWeb(ctx context.Context, st platform.Store, skip string) ([]WebReport, error) {
	keys, err := st.List(ctx, WebPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", WebPrefix, err)
	}
	var out []WebReport
	var errs []error
	for _, k := range keys {
		if k == skip || !strings.HasSuffix(k, ".json") {
			continue
		}
		var r WebReport
		if err := read(ctx, st, k, &r); err != nil {
			if !errors.Is(err, ErrNone) {
				errs = append(errs, err)
			}
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func read(ctx context.Context, st platform.Store, key string, v interface{ version() int }) error {
	b, err := st.Get(ctx, key)
	if errors.Is(err, platform.ErrNotFound) {
		return fmt.Errorf("%s: %w", key, ErrNone)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	if v.version() != Version {
		return fmt.Errorf("%s: schema version %d, this build reads %d", key, v.version(), Version)
	}
	return nil
}

func (r *ScalerReport) version() int { return r.V }
func (r *WebReport) version() int    { return r.V }
