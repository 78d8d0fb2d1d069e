package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Distribution kinds.
const (
	Constant    = "constant"
	LogNormal   = "lognormal"
	Exponential = "exponential"
	Uniform     = "uniform"
)

// z95 is the standard normal quantile of 0.95: a lognormal's p95 is
// median·exp(z95·σ).
const z95 = 1.6448536269514722

// Dist is a distribution of durations with the source of its figures. A
// constant takes Value; a lognormal its Median and P95 (the usual way
// latencies are published); an exponential its Mean; a uniform Min and Max.
type Dist struct {
	Kind   string        `yaml:"kind"`
	Value  time.Duration `yaml:"value"`
	Median time.Duration `yaml:"median"`
	P95    time.Duration `yaml:"p95"`
	Mean   time.Duration `yaml:"mean"`
	Min    time.Duration `yaml:"min"`
	Max    time.Duration `yaml:"max"`
	Source string        `yaml:"source"`
}

// Const is a constant distribution, for tests and overrides.
func Const(d time.Duration, source string) Dist {
	return Dist{Kind: Constant, Value: d, Source: source}
}

// Validate checks the fields the kind needs; name labels the message.
func (d Dist) Validate(name string) error {
	if d.Source == "" {
		return fmt.Errorf("%s: source is empty: say where the figure comes from", name)
	}
	switch d.Kind {
	case Constant:
		if d.Value < 0 {
			return fmt.Errorf("%s: constant value %s must not be negative", name, d.Value)
		}
	case LogNormal:
		if d.Median <= 0 || d.P95 < d.Median {
			return fmt.Errorf("%s: lognormal needs median > 0 and p95 >= median, got median %s p95 %s", name, d.Median, d.P95)
		}
	case Exponential:
		if d.Mean <= 0 {
			return fmt.Errorf("%s: exponential needs mean > 0, got %s", name, d.Mean)
		}
	case Uniform:
		if d.Min < 0 || d.Max < d.Min {
			return fmt.Errorf("%s: uniform needs 0 <= min <= max, got %s..%s", name, d.Min, d.Max)
		}
	case "":
		return fmt.Errorf("%s: kind is empty: use %s, %s, %s or %s", name, Constant, LogNormal, Exponential, Uniform)
	default:
		return fmt.Errorf("%s: kind %q unknown: use %s, %s, %s or %s", name, d.Kind, Constant, LogNormal, Exponential, Uniform)
	}
	return nil
}

// Sample draws one duration.
func (d Dist) Sample(r *rand.Rand) time.Duration {
	switch d.Kind {
	case LogNormal:
		sigma := math.Log(float64(d.P95)/float64(d.Median)) / z95
		return time.Duration(float64(d.Median) * math.Exp(sigma*r.NormFloat64()))
	case Exponential:
		return time.Duration(float64(d.Mean) * r.ExpFloat64())
	case Uniform:
		return d.Min + time.Duration(r.Int64N(int64(d.Max-d.Min)+1))
	default:
		return d.Value
	}
}

// Average is the distribution's mean.
func (d Dist) Average() time.Duration {
	switch d.Kind {
	case LogNormal:
		sigma := math.Log(float64(d.P95)/float64(d.Median)) / z95
		return time.Duration(float64(d.Median) * math.Exp(sigma*sigma/2))
	case Exponential:
		return d.Mean
	case Uniform:
		return (d.Min + d.Max) / 2
	default:
		return d.Value
	}
}

// String describes the distribution in a few words.
func (d Dist) String() string {
	switch d.Kind {
	case LogNormal:
		return fmt.Sprintf("lognormal median %s p95 %s", d.Median, d.P95)
	case Exponential:
		return fmt.Sprintf("exponential mean %s", d.Mean)
	case Uniform:
		return fmt.Sprintf("uniform %s..%s", d.Min, d.Max)
	default:
		return d.Value.String()
	}
}

// Figure is one number of a parameter or price file with its source.
type Figure[T any] struct {
	Value  T      `yaml:"value"`
	Source string `yaml:"source"`
}

func (f Figure[T]) check(name string) error {
	if f.Source == "" {
		return fmt.Errorf("%s: source is empty: say where the figure comes from", name)
	}
	return nil
}

// checkAll joins the errors of the named checks.
func checkAll(checks map[string]interface{ check(string) error }) error {
	var errs []error
	for _, name := range sortedKeys(checks) {
		if err := checks[name].check(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WithMedian moves the distribution's median (or constant value, or mean)
// to m, keeping its shape: a lognormal keeps its p95/median ratio.
func (d Dist) WithMedian(m time.Duration, source string) Dist {
	out := d
	out.Source = source
	switch d.Kind {
	case LogNormal:
		out.Median = m
		out.P95 = time.Duration(float64(m) * float64(d.P95) / float64(d.Median))
	case Exponential:
		out.Mean = m
	case Uniform:
		mid := (d.Min + d.Max) / 2
		if mid > 0 {
			out.Min = time.Duration(float64(d.Min) * float64(m) / float64(mid))
			out.Max = time.Duration(float64(d.Max) * float64(m) / float64(mid))
		} else {
			out.Min, out.Max = m, m
		}
	default:
		out.Value = m
	}
	return out
}

// newRand is a seeded generator.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }
