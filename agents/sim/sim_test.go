package sim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// instant is a parameter set where nothing but the engine takes time, for
// results with a known answer: every I/O and boot step is a constant 0.
func instant(t *testing.T, engine Dist, vcpus int) Params {
	t.Helper()
	p := DefaultParams()
	zero := Const(0, "test: no latency")
	p.IO.S3Get, p.IO.S3Put, p.IO.SQS, p.IO.WebCheck = zero, zero, zero, zero
	p.Engine = engine
	p.Instance.VCPUs.Value = vcpus
	return p
}

// fixedFleet runs n workers that are up from the start and never leave.
func fixedFleet(t *testing.T, p Params, n, concurrency int, w Workload) Config {
	t.Helper()
	cfg := NewConfig(p, DefaultPrices())
	cfg.Scaler.Policy.Min, cfg.Scaler.Policy.Max = n, n
	cfg.StartWorkers = n
	cfg.Worker.Concurrency = concurrency
	cfg.Worker.IdleExit = 0
	cfg.Workload = w
	cfg.Seed = 7
	return cfg
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated {
		t.Fatal("run hit its horizon")
	}
	return r
}

func answers(r *Result) []time.Duration {
	var a []time.Duration
	for _, tm := range r.Times {
		a = append(a, tm.Answered)
	}
	slices.Sort(a)
	return a
}

// One worker with a constant service time answers a burst at exact times.
func TestConstantServiceExactCompletions(t *testing.T) {
	sec := time.Second
	tests := map[string]struct {
		concurrency, vcpus int
		want               []time.Duration
	}{
		"one job at a time":             {1, 1, []time.Duration{1 * sec, 2 * sec, 3 * sec, 4 * sec, 5 * sec}},
		"two jobs on two cores":         {2, 2, []time.Duration{1 * sec, 1 * sec, 2 * sec, 2 * sec, 3 * sec}},
		"two jobs share one core":       {2, 1, []time.Duration{1 * sec, 2 * sec, 3 * sec, 4 * sec, 5 * sec}},
		"more cores than jobs":          {1, 4, []time.Duration{1 * sec, 2 * sec, 3 * sec, 4 * sec, 5 * sec}},
		"five jobs on two cores, queue": {5, 2, []time.Duration{1 * sec, 1 * sec, 2 * sec, 2 * sec, 3 * sec}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := Burst(5)
			if err != nil {
				t.Fatal(err)
			}
			r := run(t, fixedFleet(t, instant(t, Const(time.Second, "test"), tc.vcpus), 1, tc.concurrency, w))
			if got := answers(r); !slices.Equal(got, tc.want) {
				t.Errorf("answers at %v, want %v", got, tc.want)
			}
			if r.TotalTime != tc.want[len(tc.want)-1] {
				t.Errorf("total time %s, want %s", r.TotalTime, tc.want[len(tc.want)-1])
			}
		})
	}
}

// The mean wait of a Poisson stream to one worker matches the
// Pollaczek–Khinchine formula: Wq = λ·E[S²] / (2(1−ρ)).
func TestQueueingFormulas(t *testing.T) {
	tests := map[string]struct {
		rate    float64
		service Dist
		es2     float64 // E[S²] in s²
		n       int
		tol     float64 // relative
	}{
		"M/D/1 at ρ=0.5": {0.5, Const(time.Second, "test"), 1, 200_000, 0.03},
		"M/D/1 at ρ=0.8": {0.8, Const(time.Second, "test"), 1, 400_000, 0.05},
		"M/M/1 at ρ=0.5": {0.5, Dist{Kind: Exponential, Mean: time.Second, Source: "test"}, 2, 200_000, 0.05},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mean := tc.service.Average().Seconds()
			rho := tc.rate * mean
			want := tc.rate * tc.es2 / (2 * (1 - rho))
			w, err := Poisson(tc.rate, time.Duration(float64(tc.n)/tc.rate*float64(time.Second)), 42)
			if err != nil {
				t.Fatal(err)
			}
			cfg := fixedFleet(t, instant(t, tc.service, 1), 1, 1, w)
			cfg.SampleEvery = time.Hour
			r := run(t, cfg)
			got := r.Wait.Mean.Seconds()
			if math.Abs(got-want)/want > tc.tol {
				t.Errorf("mean wait %.4f s over %d requests, formula %.4f s (tolerance %.0f%%)", got, r.Requests, want, 100*tc.tol)
			}
			t.Logf("mean wait %.4f s, formula %.4f s, %d requests", got, want, r.Requests)
		})
	}
}

// deterministicBoot makes every boot step a constant, so policy timings are exact.
func deterministicBoot(p Params) Params {
	p.Boot.ASGReaction = Const(2*time.Second, "test")
	p.Boot.ColdToRunning = Const(20*time.Second, "test")
	p.Boot.WarmToRunning = Const(15*time.Second, "test")
	p.Boot.OSBoot = Const(3*time.Second, "test")
	p.Boot.AgentFetch = Const(2*time.Second, "test")
	p.Boot.AgentStart = Const(1*time.Second, "test")
	return p
}

// The scaler's real policy sizes the fleet from the backlog at its first
// poll: ceil(backlog / target) within the maximum, launched at once.
func TestScaleOutFromCold(t *testing.T) {
	tests := map[string]struct {
		requests, max, target, warm int
		wantLaunches, wantWarm      int
		wantReady                   time.Duration // first worker taking jobs
	}{
		"course burst hits the maximum": {100, 20, 4, 0, 20, 0, 500*time.Millisecond + 2*time.Second + 26*time.Second},
		"backlog below the maximum":     {10, 20, 4, 0, 3, 0, 500*time.Millisecond + 2*time.Second + 26*time.Second},
		"one request, one worker":       {1, 20, 4, 0, 1, 0, 500*time.Millisecond + 2*time.Second + 26*time.Second},
		"warm pool serves first":        {100, 20, 4, 20, 0, 20, 500*time.Millisecond + 2*time.Second + 19*time.Second},
		"warm pool smaller than needed": {100, 20, 4, 5, 0, 20, 500*time.Millisecond + 2*time.Second + 19*time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := deterministicBoot(instant(t, Const(10*time.Millisecond, "test"), 2))
			cfg := NewConfig(p, DefaultPrices())
			cfg.Scaler.Policy.Max, cfg.Scaler.Policy.TargetBacklog = tc.max, tc.target
			cfg.WarmPool = tc.warm
			cfg.Worker.IdleExit = time.Minute
			cfg.Workload, _ = Burst(tc.requests)
			r := run(t, cfg)
			// A warm pool's size is max - desired by AWS's default, so a
			// pool of 5 still holds 20 stopped instances at rest.
			if r.Launches != tc.wantLaunches || r.WarmStarts != tc.wantWarm {
				t.Errorf("%d cold launches and %d warm starts, want %d and %d", r.Launches, r.WarmStarts, tc.wantLaunches, tc.wantWarm)
			}
			var first time.Duration = -1
			for _, sm := range r.Samples {
				if sm.Ready > 0 {
					first = sm.T
					break
				}
			}
			// Samples are one second apart: the first with a worker is the
			// first whole second after it was ready.
			if want := tc.wantReady.Truncate(time.Second) + time.Second; first != want {
				t.Errorf("first worker seen taking jobs at %s, want %s", first, want)
			}
			if r.Answered != tc.requests {
				t.Errorf("answered %d of %d", r.Answered, tc.requests)
			}
		})
	}
}

// Idle workers retire IdleExit after their last job, through the Auto
// Scaling adapter with a decrement, so nothing is launched to replace them;
// at the group's minimum the retirement is refused and the worker stays.
func TestIdleRetirement(t *testing.T) {
	tests := map[string]struct {
		min      int
		idleExit time.Duration
	}{
		"all retire":               {0, time.Minute},
		"minimum stays":            {1, time.Minute},
		"short idle exit":          {0, 30 * time.Second},
		"idle exit over 20 s poll": {2, 95 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := deterministicBoot(instant(t, Const(time.Second, "test"), 2))
			cfg := NewConfig(p, DefaultPrices())
			cfg.Scaler.Policy.Min = tc.min
			cfg.StartWorkers = tc.min
			cfg.Worker.IdleExit = tc.idleExit
			cfg.Workload, _ = Burst(100)
			r := run(t, cfg)
			if r.Launches != 20-tc.min {
				t.Errorf("%d launches, want %d: retired workers must not be replaced", r.Launches, 20-tc.min)
			}
			// A worker retires on the first empty poll IdleExit after its
			// last job, or after it was ready if it never had one (SQS waits
			// in whole seconds); the group settles after its 2 s reaction.
			// The launched workers are ready at 0.5+2+20+3+2+1 = 28.5 s; a
			// worker kept at the minimum may have done the last job.
			ready := 28500 * time.Millisecond
			last := max(answers(r)[len(r.Times)-1], ready)
			lo := ready + tc.idleExit + 2*time.Second
			hi := last + tc.idleExit + 2*time.Second + time.Second
			if r.Span < lo || r.Span > hi {
				t.Errorf("fleet settled at %s, want within %s..%s", r.Span, lo, hi)
			}
			final := r.Samples[len(r.Samples)-1]
			if final.Ready != tc.min || final.Desired != tc.min {
				t.Errorf("at rest %d workers, desired %d; want %d", final.Ready, final.Desired, tc.min)
			}
			if tc.min > 0 && r.Refused == 0 {
				t.Error("no retirement was refused at the minimum")
			}
			if tc.min == 0 && r.Refused != 0 {
				t.Errorf("%d retirements refused with minimum 0", r.Refused)
			}
		})
	}
}

// The replaced design terminates busy workers when the queue shows nothing
// visible; their message comes back after the visibility timeout, counted
// from the heartbeat's last extension. A job longer than the time between a
// new instance's start and the next poll is killed every time: it never ends.
func TestLegacyKillsBusyWorkers(t *testing.T) {
	tests := map[string]struct {
		agentStart time.Duration
		answered   time.Duration // 0: never
		kills      int
		span       time.Duration
	}{
		// t=0 received by the worker up at the start; t=10 the heartbeat
		// extends it to t=40; t=15 nothing is visible: killed; t=40 visible
		// again; t=45 one launched, ready at 45+20+3+2+6 = 76; t=75 it is
		// still visible, so nothing happens; answered at 96; t=105 the
		// idle instance is terminated.
		"killed once, then answered": {6 * time.Second, 96 * time.Second, 1, 105 * time.Second},
		// Ready at 71, killed at 75 (4 s in, before any heartbeat), visible
		// at 101, launched at 105, ready at 131, killed at 135, ...
		"killed every cycle": {1 * time.Second, 0, 10, 10*time.Minute + 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := deterministicBoot(instant(t, Const(20*time.Second, "test"), 2))
			p.Boot.AgentStart = Const(tc.agentStart, "test")
			cfg := NewConfig(p, DefaultPrices())
			cfg.Policy = PolicyLegacy
			cfg.WarmPool = 0
			cfg.StartWorkers = 1
			cfg.Worker.Concurrency = 1
			cfg.Workload, _ = Burst(1)
			cfg.Horizon = 10 * time.Minute
			r, err := Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.answered == 0 {
				if r.Answered != 0 || !r.Truncated {
					t.Errorf("answered %d, truncated %v: want never answered", r.Answered, r.Truncated)
				}
			} else if got := r.Times[0].Answered; r.Answered != 1 || got != tc.answered {
				t.Errorf("answered at %s, want %s", got, tc.answered)
			}
			if r.Kills != tc.kills || r.Redelivered != tc.kills {
				t.Errorf("kills %d, redelivered %d; want %d each", r.Kills, r.Redelivered, tc.kills)
			}
			if r.Span != tc.span {
				t.Errorf("span %s, want %s", r.Span, tc.span)
			}
		})
	}
}

// Every request makes the calls the agents make, and each cheaper path
// drops exactly the calls it claims to.
func TestCallsPerRequest(t *testing.T) {
	// A first delivery does not look for a stored result, and the reply
	// carries the result, so the web does not read it either.
	base := map[string]int64{
		s3PutInput: 1, s3PutResult: 1, s3GetInput: 1,
		sqsSend: 1, sqsReceive: 1, sqsReply: 1, sqsDelete: 1, sqsReplyRecv: 1, sqsReplyDelete: 1,
	}
	with := func(change map[string]int64) map[string]int64 {
		m := map[string]int64{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range change {
			if v == 0 {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	tests := map[string]struct {
		opts Options
		want map[string]int64
	}{
		"default":          {Options{}, base},
		"answer objects":   {Options{AnswerObjects: true}, with(map[string]int64{s3PutAnswer: 1})},
		"no result object": {Options{NoResultObject: true}, with(map[string]int64{s3PutResult: 0})},
		"image in message": {Options{ImageInMessage: true}, with(map[string]int64{s3PutInput: 0, s3GetInput: 0})},
		"batched":          {Options{Batch: true}, base},
		"all":              {Options{NoResultObject: true, ImageInMessage: true, Batch: true}, with(map[string]int64{s3PutResult: 0, s3PutInput: 0, s3GetInput: 0})},
	}
	const n = 10
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := instant(t, Const(10*time.Millisecond, "test"), 2)
			lat := Const(10*time.Millisecond, "test")
			p.IO.S3Get, p.IO.S3Put, p.IO.SQS = lat, lat, lat
			// One request a second: each is alone in the queue and answered
			// long before the web agent's first store poll at 2 s.
			var csv strings.Builder
			for i := range n {
				fmt.Fprintf(&csv, "%d\n", i)
			}
			w, err := Replay(strings.NewReader(csv.String()))
			if err != nil {
				t.Fatal(err)
			}
			cfg := fixedFleet(t, p, 1, 2, w)
			cfg.Options = tc.opts
			r := run(t, cfg)
			got := map[string]int64{}
			for _, c := range r.Calls {
				if _, perRequest := base[c.Kind]; perRequest || c.Kind == s3PutAnswer || c.Kind == s3GetCheck || c.Kind == s3GetResult {
					got[c.Kind] = c.N
				}
			}
			for k, v := range tc.want {
				if got[k] != v*n {
					t.Errorf("%s: %d calls for %d requests, want %d", k, got[k], n, v*n)
				}
			}
			for k := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("%s: %d calls, want none", k, got[k])
				}
			}
		})
	}
}

// The web agent deletes the replies of one receive in one call, as
// agents/web does: under a stream of replies that outruns one SQS call at a
// time, each receive takes several and the deletes follow the receives, not
// the replies.
func TestReplyDeletesPerReceive(t *testing.T) {
	p := instant(t, Const(5*time.Millisecond, "test"), 2)
	p.IO.SQS = Const(20*time.Millisecond, "test")
	const n = 200
	w, _ := Burst(n)
	cfg := fixedFleet(t, p, 10, 2, w)
	r := run(t, cfg)
	calls := map[string]int64{}
	for _, c := range r.Calls {
		calls[c.Kind] = c.N
	}
	if calls[sqsReplyDelete] != calls[sqsReplyRecv] {
		t.Errorf("%d reply deletes for %d receives that took replies, want one each", calls[sqsReplyDelete], calls[sqsReplyRecv])
	}
	if calls[sqsReplyRecv] > n/5 {
		t.Errorf("%d receives for %d replies: the consumer took them one or two at a time", calls[sqsReplyRecv], n)
	}
}

// The bill follows from the counts and the price file: a fixed fleet of one
// worker is billed for the whole span.
func TestCostFromCounts(t *testing.T) {
	p := instant(t, Const(10*time.Millisecond, "test"), 2)
	w, _ := Burst(3)
	cfg := fixedFleet(t, p, 1, 2, w)
	r := run(t, cfg)
	pr := DefaultPrices()
	span := r.Span.Seconds()
	billed := math.Max(span, 60)
	if want := billed / 3600 * pr.InstanceHour["c7g.large"].Value; math.Abs(r.Cost.EC2-want) > 1e-12 {
		t.Errorf("EC2 $%g, want $%g for %.0f billed seconds", r.Cost.EC2, want, billed)
	}
	if want := span / 3600 / 730 * 8 * pr.EBSGp3GBMonth.Value; math.Abs(r.Cost.EBS-want) > 1e-12 {
		t.Errorf("EBS $%g, want $%g", r.Cost.EBS, want)
	}
	var s3 float64
	for _, c := range r.Calls {
		switch {
		case strings.HasPrefix(c.Kind, "S3 PUT"), strings.HasPrefix(c.Kind, "S3 LIST"):
			s3 += float64(c.N) * 0.005 / 1000
		case strings.HasPrefix(c.Kind, "S3 GET"):
			s3 += float64(c.N) * 0.0004 / 1000
		}
	}
	if math.Abs(r.Cost.S3-s3) > 1e-12 {
		t.Errorf("S3 $%g, want $%g", r.Cost.S3, s3)
	}
	if want := float64(r.SQSBilled) * 0.40 / 1e6; math.Abs(r.Cost.SQS-want) > 1e-12 {
		t.Errorf("SQS $%g, want $%g", r.Cost.SQS, want)
	}
	if want := 3 * pr.RekognitionSearchPer1000.Value / 1000; r.Cost.Rekognition != want {
		t.Errorf("Rekognition $%g, want $%g", r.Cost.Rekognition, want)
	}
}

// A seed gives the same run; another seed another.
func TestSeededRunsRepeat(t *testing.T) {
	mk := func(seed uint64) *Result {
		cfg := NewConfig(DefaultParams(), DefaultPrices())
		cfg.Workload, _ = Poisson(5, 10*time.Minute, seed)
		cfg.Seed = seed
		return run(t, cfg)
	}
	a, b, c := mk(3), mk(3), mk(4)
	if !slices.Equal(a.Times, b.Times) || !slices.Equal(a.Calls, b.Calls) || a.Cost != b.Cost {
		t.Error("two runs with seed 3 differ")
	}
	if slices.Equal(a.Times, c.Times) {
		t.Error("seeds 3 and 4 gave the same run")
	}
}

func TestChartIsSVG(t *testing.T) {
	cfg := NewConfig(DefaultParams(), DefaultPrices())
	cfg.Workload, _ = Burst(100)
	r := run(t, cfg)
	var b bytes.Buffer
	if err := r.WriteSVG(&b, "burst <100> & co"); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&b)
	var paths int
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("chart is not XML: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "path" {
			paths++
		}
	}
	if paths != 5 {
		t.Errorf("%d series drawn, want 5", paths)
	}
}
