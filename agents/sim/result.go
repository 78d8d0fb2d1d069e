package sim

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Result is what a run measured.
type Result struct {
	Policy   string
	Workload string
	// Requests is the workload's size; Answered those answered before the end.
	Requests, Answered int
	// OverWait counts answers later than the web agent's wait for POST /
	// (such a caller got 504 instead).
	OverWait int
	// Truncated is set when the run hit its horizon before settling.
	Truncated bool
	// Span is the simulated time until every request was answered and the
	// fleet had settled (idle workers retired): what the fleet is billed for.
	Span time.Duration
	// TotalTime is from the first arrival to the last answer.
	TotalTime time.Duration
	// Latency is arrival to answer; Wait is queued to first received.
	Latency Percentiles
	Wait    Percentiles
	// Launches are cold launches, WarmStarts starts from the warm pool,
	// PoolLaunches launches into the warm pool.
	Launches, WarmStarts, PoolLaunches int
	// PeakUp is the most instances up (booting or taking jobs) at once.
	PeakUp int
	// Kills counts busy workers terminated by the legacy controller;
	// Redelivered the messages that came back after a lost worker.
	Kills, Redelivered int
	// Refused counts retirements the fleet refused at its minimum.
	Refused int
	// InstanceSeconds is the worker instances' billed time (60 s minimum
	// per start), warm-pool preparation included; EngineSeconds the time
	// their engines ran.
	InstanceSeconds, EngineSeconds float64
	Calls                          []Call
	// SQSBilled is SQS's billed requests (64 KB chunks).
	SQSBilled int64
	Cost      Cost
	Samples   []Sample
	// Times are each request's times, in workload order.
	Times []Times
}

// Times are one request's times from the start of the run.
type Times struct {
	Arrival, Enqueued, Started, Answered time.Duration
}

// Call is a count of one kind of API call.
type Call struct {
	Kind string
	N    int64
}

// Percentiles summarise a set of durations (nearest rank).
type Percentiles struct {
	Mean, P50, P90, P95, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration { return s[max(int(math.Ceil(p*float64(len(s))))-1, 0)] }
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	return Percentiles{
		Mean: time.Duration(sum / float64(len(s))),
		P50:  rank(0.50), P90: rank(0.90), P95: rank(0.95), P99: rank(0.99), Max: s[len(s)-1],
	}
}

// Cost is a run's bill in US dollars at the price file's list prices.
type Cost struct {
	// EC2, EBS and IPv4 are the worker fleet's instance hours, volumes and
	// public addresses, warm pool included.
	EC2, EBS, IPv4 float64
	// S3 and SQS are the request charges.
	S3, SQS float64
	// Storage is the inputs and results kept for their retention; Transfer
	// the answers sent out to the internet.
	Storage, Transfer float64
	// Standing is the web host (instance, volume, address) over the span,
	// paid whether requests come or not.
	Standing float64
	// Rekognition is Amazon Rekognition's list price for searching a face
	// in as many images.
	Rekognition float64
}

// Instances is the worker fleet's share.
func (c Cost) Instances() float64 { return c.EC2 + c.EBS + c.IPv4 }

// API is the request charges.
func (c Cost) API() float64 { return c.S3 + c.SQS }

// Total is everything the requests pay for, the standing web host aside.
func (c Cost) Total() float64 { return c.Instances() + c.API() + c.Storage + c.Transfer }

const (
	gib         = 1 << 30
	monthHours  = 730 // AWS's month for prorating monthly prices
	monthDays   = 365.0 / 12
	secsPerHour = 3600.0
)

func (s *sim) result() (*Result, error) {
	cfg := s.cfg
	pr := cfg.Prices
	end := s.end
	for _, inst := range s.fleet {
		if inst.w != nil && !inst.w.dead {
			inst.w.countGallery()
		}
		if inst.state != stateTerminated {
			s.stopBilling(inst)
			inst.volume += end - inst.volumeSince
		}
	}
	r := &Result{
		Policy: cfg.Policy, Workload: cfg.Workload.Name, Requests: len(s.reqs),
		Truncated: s.truncated, Span: end, Redelivered: s.redelivered,
		EngineSeconds: s.engineTime.Seconds(), Samples: s.samples,
	}
	if cfg.LegacyWorker {
		r.Policy += " (old workers)"
	}
	var lat, wait []time.Duration
	first, last := time.Duration(math.MaxInt64), time.Duration(0)
	r.Times = make([]Times, len(s.reqs))
	for i, q := range s.reqs {
		first = min(first, q.arrival)
		r.Times[i] = Times{Arrival: q.arrival, Enqueued: q.enqueued, Started: q.started, Answered: q.answered}
		if !q.isAnswered {
			continue
		}
		r.Answered++
		l := q.answered - q.arrival
		lat = append(lat, l)
		wait = append(wait, q.started-q.enqueued)
		last = max(last, q.answered)
		if l > cfg.Web.TextWait {
			r.OverWait++
		}
	}
	r.Latency, r.Wait = percentiles(lat), percentiles(wait)
	if r.Answered > 0 {
		r.TotalTime = last - first
	}
	if s.group != nil {
		r.Launches, r.WarmStarts, r.PoolLaunches = s.group.launches, s.group.warmStarts, s.group.poolLaunches
	}
	if s.legacy != nil {
		r.Launches, r.Kills = s.legacy.launches, s.legacy.kills
	}
	for _, sm := range s.samples {
		r.PeakUp = max(r.PeakUp, sm.Up)
	}
	price, err := pr.InstancePrice(cfg.Params.Instance.Type.Value)
	if err != nil {
		return nil, err
	}
	var billed, ipv4, volume time.Duration
	for _, inst := range s.fleet {
		billed += inst.billed
		ipv4 += inst.ipv4
		volume += inst.volume
		if inst.w != nil {
			r.Refused += inst.w.refused
		}
	}
	r.InstanceSeconds = billed.Seconds()
	c := &r.Cost
	c.EC2 = billed.Seconds() / secsPerHour * price
	c.IPv4 = ipv4.Seconds() / secsPerHour * pr.PublicIPv4Hour.Value
	c.EBS = volume.Seconds() / secsPerHour / monthHours * float64(cfg.Params.Instance.RootVolumeGiB.Value) * pr.EBSGp3GBMonth.Value

	for _, kind := range callOrder {
		n := s.calls.n[kind]
		if n == 0 {
			continue
		}
		r.Calls = append(r.Calls, Call{Kind: kind, N: n})
		switch {
		case strings.HasPrefix(kind, "S3 PUT"), strings.HasPrefix(kind, "S3 LIST"):
			c.S3 += float64(n) * pr.S3PutPer1000.Value / 1000
		case strings.HasPrefix(kind, "S3 GET"):
			c.S3 += float64(n) * pr.S3GetPer1000.Value / 1000
		}
	}
	r.SQSBilled = s.calls.sqsUnits
	c.SQS = float64(s.calls.sqsUnits) * pr.SQSPerMillion.Value / 1e6

	d := cfg.Params.Deployment
	var inDays, outDays float64
	if !cfg.Options.ImageInMessage {
		inDays = float64(s.sizes.image) * float64(d.InputRetentionDays.Value)
	}
	if !cfg.Options.NoResultObject {
		outDays += float64(s.sizes.result) * float64(d.OutputRetentionDays.Value)
	}
	if cfg.Options.AnswerObjects {
		outDays += float64(s.sizes.answer) * float64(d.OutputRetentionDays.Value)
	}
	n := float64(len(s.reqs))
	c.Storage = n * (inDays + outDays) / gib / monthDays * pr.S3GBMonth.Value
	c.Transfer = float64(r.Answered) * float64(cfg.Params.Request.ResponseBytes.Value) / gib * pr.TransferOutGB.Value
	webPrice, err := pr.InstancePrice(pr.WebInstanceType.Value)
	if err != nil {
		return nil, err
	}
	hours := end.Seconds() / secsPerHour
	c.Standing = hours * (webPrice + pr.PublicIPv4Hour.Value +
		float64(cfg.Params.Instance.RootVolumeGiB.Value)*pr.EBSGp3GBMonth.Value/monthHours)
	c.Rekognition = n * pr.RekognitionSearchPer1000.Value / 1000
	return r, nil
}

// Per1000 is cost per 1,000 requests.
func (r *Result) Per1000(cost float64) float64 {
	if r.Requests == 0 {
		return 0
	}
	return cost / float64(r.Requests) * 1000
}

// WriteText prints the report.
func (r *Result) WriteText(w io.Writer, cfg Config) error {
	p := cfg.Params
	var b strings.Builder
	f := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f("workload:  %s\n", r.Workload)
	switch cfg.Policy {
	case PolicyScaler:
		f("policy:    scaler (poll %s, %d..%d workers, %d requests each), idle exit %s, warm pool %d\n",
			cfg.Scaler.Interval, cfg.Scaler.Policy.Min, cfg.Scaler.Policy.Max, cfg.Scaler.Policy.TargetBacklog, cfg.Worker.IdleExit, cfg.WarmPool)
	default:
		f("policy:    %s (poll %s, one instance per visible message up to %d, all terminated when none is visible)\n",
			r.Policy, p.Legacy.Interval.Value, p.Legacy.MaxInstances.Value)
	}
	f("workers:   %s, %d vCPU, %d jobs at once; engine %s; boot %s to running + %s\n",
		p.Instance.Type.Value, p.Instance.VCPUs.Value, cfg.Worker.Concurrency, engineDesc(cfg),
		p.Boot.ColdToRunning, p.Boot.OSBoot)
	f("options:   %s\n", optionsDesc(cfg))
	if r.Truncated {
		f("WARNING:   stopped at the horizon (%s after the last arrival) before every request was answered and the fleet settled\n", cfg.Horizon)
	}
	f("\nanswered:  %d of %d", r.Answered, r.Requests)
	if r.OverWait > 0 {
		f(" (%d after the web agent's %s wait: 504 for POST /)", r.OverWait, cfg.Web.TextWait)
	}
	f("\ntotal time (first arrival to last answer): %s\n", secs(r.TotalTime))
	f("latency   mean %s  p50 %s  p90 %s  p95 %s  p99 %s  max %s\n",
		secs(r.Latency.Mean), secs(r.Latency.P50), secs(r.Latency.P90), secs(r.Latency.P95), secs(r.Latency.P99), secs(r.Latency.Max))
	f("queued    mean %s  p50 %s  p95 %s  (enqueued to received)\n", secs(r.Wait.Mean), secs(r.Wait.P50), secs(r.Wait.P95))
	f("fleet:     %d cold launches, %d warm-pool starts, %d warm-pool launches, peak %d up",
		r.Launches, r.WarmStarts, r.PoolLaunches, r.PeakUp)
	if r.Kills > 0 || r.Redelivered > 0 {
		f("; %d busy workers killed, %d messages redelivered", r.Kills, r.Redelivered)
	}
	if r.Refused > 0 {
		f("; %d retirements refused at the minimum", r.Refused)
	}
	f("\ninstance-seconds %.0f billed (until the fleet settled at %s), engines busy %.1f%% of vCPU time\n",
		r.InstanceSeconds, secs(r.Span), 100*r.EngineSeconds/math.Max(r.InstanceSeconds*float64(p.Instance.VCPUs.Value), 1e-9))
	f("\nAPI calls:\n")
	for _, c := range r.Calls {
		f("  %9d  %s\n", c.N, c.Kind)
	}
	f("  %9d  SQS billed requests (64 KB chunks)\n", r.SQSBilled)
	c := r.Cost
	pr := cfg.Prices
	f("\ncost (list prices in %s as known on %s; check them before relying on them):\n", pr.Region, pr.AsOf)
	f("  instances  $%.6f  (EC2 $%.6f, EBS $%.6f, public IPv4 $%.6f)\n", c.Instances(), c.EC2, c.EBS, c.IPv4)
	f("  API        $%.6f  (S3 requests $%.6f, SQS requests $%.6f)\n", c.API(), c.S3, c.SQS)
	f("  storage    $%.6f, transfer out $%.6f\n", c.Storage, c.Transfer)
	f("  total      $%.6f = $%.4f per 1,000 requests (instances $%.4f, API $%.4f)\n",
		c.Total(), r.Per1000(c.Total()), r.Per1000(c.Instances()), r.Per1000(c.API()))
	f("  standing web host over the same %s: $%.6f; with it $%.4f per 1,000\n", secs(r.Span), c.Standing, r.Per1000(c.Total()+c.Standing))
	f("  Amazon Rekognition SearchFacesByImage: $%.4f per 1,000 images (%s)\n", pr.RekognitionSearchPer1000.Value, pr.RekognitionSearchPer1000.Source)
	_, err := io.WriteString(w, b.String())
	return err
}

func engineDesc(cfg Config) string {
	if cfg.LegacyWorker {
		return "old design's " + cfg.Params.Legacy.Service.String()
	}
	return cfg.Params.Engine.String()
}

func optionsDesc(cfg Config) string {
	o := cfg.Options
	var parts []string
	if o.AnswerObjects {
		parts = append(parts, "answer objects")
	}
	if o.NoResultObject {
		parts = append(parts, "result in the reply (no result object)")
	}
	if o.ImageInMessage {
		parts = append(parts, "image in the message")
	}
	if o.Batch {
		parts = append(parts, "workers' replies and deletes batched")
	}
	parts = append(parts, fmt.Sprintf("gallery refresh %s", cfg.GalleryRefresh))
	return strings.Join(parts, ", ")
}

// secs prints a duration in seconds with sensible precision.
func secs(d time.Duration) string {
	v := d.Seconds()
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f s", v)
	case v >= 10:
		return fmt.Sprintf("%.1f s", v)
	default:
		return fmt.Sprintf("%.3f s", v)
	}
}
