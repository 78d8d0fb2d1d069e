package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Workload is the arrival time of every request, from the start of the run.
type Workload struct {
	// Name describes the workload in reports.
	Name     string
	Arrivals []time.Duration
}

// Burst is n requests at once, as the course's generator sends them.
func Burst(n int) (Workload, error) {
	if n < 1 || n > MaxRequests {
		return Workload{}, fmt.Errorf("burst of %d requests out of range 1..%d", n, MaxRequests)
	}
	return Workload{Name: fmt.Sprintf("burst of %d requests at once", n), Arrivals: make([]time.Duration, n)}, nil
}

// Poisson is a stream of rate requests a second for d.
func Poisson(rate float64, d time.Duration, seed uint64) (Workload, error) {
	if err := checkRate("rate", rate, d); err != nil {
		return Workload{}, err
	}
	r := rand.New(rand.NewPCG(seed, 10))
	var a []time.Duration
	for t := 0.0; ; {
		t += r.ExpFloat64() / rate
		if t >= d.Seconds() {
			break
		}
		a = append(a, time.Duration(t*float64(time.Second)))
	}
	if len(a) == 0 {
		return Workload{}, fmt.Errorf("a Poisson stream of %g/s for %s drew no request; raise the rate or the duration", rate, d)
	}
	return Workload{Name: fmt.Sprintf("Poisson stream of %g requests/s for %s", rate, d), Arrivals: a}, nil
}

// Daily is a Poisson stream whose rate follows a day: trough at midnight
// (the start), peak at noon, a raised cosine between, for d.
func Daily(trough, peak float64, d time.Duration, seed uint64) (Workload, error) {
	if err := checkRate("peak", peak, d); err != nil {
		return Workload{}, err
	}
	if trough < 0 || trough > peak {
		return Workload{}, fmt.Errorf("trough %g requests/s out of range 0..%g (the peak)", trough, peak)
	}
	const day = 24 * time.Hour
	r := rand.New(rand.NewPCG(seed, 11))
	rate := func(t float64) float64 {
		return trough + (peak-trough)*(1-math.Cos(2*math.Pi*t/day.Seconds()))/2
	}
	// Thinning: draw at the peak rate, keep each with rate(t)/peak.
	var a []time.Duration
	for t := 0.0; ; {
		t += r.ExpFloat64() / peak
		if t >= d.Seconds() {
			break
		}
		if r.Float64()*peak < rate(t) {
			a = append(a, time.Duration(t*float64(time.Second)))
		}
	}
	if len(a) == 0 {
		return Workload{}, errors.New("the daily cycle drew no request; raise the rates or the duration")
	}
	return Workload{Name: fmt.Sprintf("daily cycle %g..%g requests/s for %s", trough, peak, d), Arrivals: a}, nil
}

func checkRate(name string, rate float64, d time.Duration) error {
	if math.IsNaN(rate) || rate <= 0 || rate > 10000 {
		return fmt.Errorf("%s %g requests/s out of range (0, 10000]", name, rate)
	}
	if d < time.Second || d > 30*24*time.Hour {
		return fmt.Errorf("duration %s out of range 1s..720h", d)
	}
	if rate*d.Seconds() > MaxRequests {
		return fmt.Errorf("%g requests/s for %s is about %.0f requests; at most %d", rate, d, rate*d.Seconds(), MaxRequests)
	}
	return nil
}

// Replay reads arrival times from CSV: the first column of each row holds
// seconds from the start (such as 12.5) or an RFC 3339 time, taken from
// the earliest. A first row that is neither is a header.
func Replay(r io.Reader) (Workload, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var secs []time.Duration
	var stamps []time.Time
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Workload{}, fmt.Errorf("replay: %w", err)
		}
		f := strings.TrimSpace(rec[0])
		if v, err := strconv.ParseFloat(f, 64); err == nil {
			if math.IsNaN(v) || v < 0 || v > 30*24*3600 {
				return Workload{}, fmt.Errorf("replay: row %d: %q seconds out of range 0..2592000", row, f)
			}
			secs = append(secs, time.Duration(v*float64(time.Second)))
		} else if t, err := time.Parse(time.RFC3339Nano, f); err == nil {
			stamps = append(stamps, t)
		} else if row == 1 {
			continue // header
		} else {
			return Workload{}, fmt.Errorf("replay: row %d: %q is neither seconds nor an RFC 3339 time", row, f)
		}
		if len(secs)+len(stamps) > MaxRequests {
			return Workload{}, fmt.Errorf("replay: more than %d arrivals", MaxRequests)
		}
	}
	if len(secs) > 0 && len(stamps) > 0 {
		return Workload{}, errors.New("replay: mixes seconds and RFC 3339 times; use one")
	}
	if len(stamps) > 0 {
		first := slices.MinFunc(stamps, func(a, b time.Time) int { return a.Compare(b) })
		for _, t := range stamps {
			d := t.Sub(first)
			if d > 30*24*time.Hour {
				return Workload{}, fmt.Errorf("replay: %s is more than 720h after the first arrival", t.Format(time.RFC3339))
			}
			secs = append(secs, d)
		}
	}
	if len(secs) == 0 {
		return Workload{}, errors.New("replay: no arrival times")
	}
	slices.Sort(secs)
	return Workload{Name: fmt.Sprintf("replay of %d arrivals over %s", len(secs), secs[len(secs)-1].Round(time.Second)), Arrivals: secs}, nil
}
