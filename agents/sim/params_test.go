package sim

import (
	"strings"
	"testing"
	"time"
)

func TestBuiltInFilesValidate(t *testing.T) {
	p := DefaultParams()
	if p.Instance.Type.Value != "c7g.large" || p.Deployment.MaxWorkers.Value != 20 {
		t.Errorf("built-in params: %s, max %d; want the stack's defaults c7g.large and 20", p.Instance.Type.Value, p.Deployment.MaxWorkers.Value)
	}
	pr := DefaultPrices()
	if _, err := pr.InstancePrice(p.Instance.Type.Value); err != nil {
		t.Error(err)
	}
}

func TestParamsRejected(t *testing.T) {
	good := string(DefaultParamsFile())
	tests := map[string]struct {
		edit func(string) string
		want string
	}{
		"figure without a source": {func(s string) string {
			return strings.Replace(s, `source: "mean size of the 100 JPEGs in the course's face_images_100.zip"`, `source: ""`, 1)
		}, "request.image_bytes: source is empty"},
		"unknown key": {func(s string) string {
			return strings.Replace(s, "engine:\n", "engine:\n  speed: 3\n", 1)
		}, "field speed not found"},
		"p95 below the median": {func(s string) string {
			return strings.Replace(s, "median: 13.8ms\n  p95: 32ms", "median: 13.8ms\n  p95: 3ms", 1)
		}, "engine: lognormal needs median > 0 and p95 >= median"},
		"unknown kind": {func(s string) string {
			return strings.Replace(s, "kind: uniform", "kind: gamma", 1)
		}, `legacy.service: kind "gamma" unknown`},
		"min above max": {func(s string) string {
			return strings.Replace(s, "min_workers:\n    value: 0", "min_workers:\n    value: 30", 1)
		}, "deployment.min_workers 30 out of range 0..20"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			edited := tc.edit(good)
			if edited == good {
				t.Fatal("the edit changed nothing; the test is stale")
			}
			_, err := ParseParams([]byte(edited))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPricesRejected(t *testing.T) {
	good := string(DefaultPricesFile())
	tests := map[string]struct {
		edit func(string) string
		want string
	}{
		"no date":        {func(s string) string { return strings.Replace(s, `as_of: "2025-06-01"`, `as_of: ""`, 1) }, "region and as_of must be set"},
		"bad date":       {func(s string) string { return strings.Replace(s, `as_of: "2025-06-01"`, `as_of: "June"`, 1) }, "is not a date"},
		"negative price": {func(s string) string { return strings.Replace(s, "value: 0.40", "value: -0.40", 1) }, "sqs_per_million -0.4 must not be negative"},
		"web host unpriced": {func(s string) string {
			return strings.Replace(s, "value: t4g.small", "value: t4g.nano", 1)
		}, `web_instance_type "t4g.nano" has no instance_hour price`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			edited := tc.edit(good)
			if edited == good {
				t.Fatal("the edit changed nothing; the test is stale")
			}
			_, err := ParsePrices([]byte(edited))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDistributions(t *testing.T) {
	tests := map[string]struct {
		d          Dist
		wantMedian time.Duration
		wantP95    time.Duration
		tol        float64
	}{
		"lognormal": {Dist{Kind: LogNormal, Median: 100 * time.Millisecond, P95: 200 * time.Millisecond, Source: "t"}, 100 * time.Millisecond, 200 * time.Millisecond, 0.03},
		"uniform":   {Dist{Kind: Uniform, Min: 5 * time.Second, Max: 10 * time.Second, Source: "t"}, 7500 * time.Millisecond, 9750 * time.Millisecond, 0.02},
		"constant":  {Const(time.Second, "t"), time.Second, time.Second, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRand(9)
			var s []time.Duration
			for range 100_000 {
				s = append(s, tc.d.Sample(r))
			}
			p := percentiles(s)
			for what, got := range map[string][2]time.Duration{"median": {p.P50, tc.wantMedian}, "p95": {p.P95, tc.wantP95}} {
				if diff := float64(got[0]-got[1]) / float64(got[1]); diff > tc.tol || diff < -tc.tol {
					t.Errorf("%s %s, want %s within %.0f%%", what, got[0], got[1], 100*tc.tol)
				}
			}
		})
	}
}

func TestWorkloads(t *testing.T) {
	if _, err := Burst(0); err == nil {
		t.Error("a burst of 0 requests was accepted")
	}
	w, err := Poisson(10, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 36,000 expected; a Poisson count's standard deviation is 190.
	if n := len(w.Arrivals); n < 35_400 || n > 36_600 {
		t.Errorf("Poisson 10/s for an hour drew %d arrivals, want 36000 ± 600", n)
	}
	d, err := Daily(1, 21, 24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	var night, noon int
	for _, a := range d.Arrivals {
		switch h := a / time.Hour; {
		case h < 1 || h >= 23:
			night++
		case h >= 11 && h < 13:
			noon++
		}
	}
	// The rate is about 1.2/s around midnight and 20.8/s around noon.
	if noon < 10*night {
		t.Errorf("daily cycle: %d arrivals around noon, %d around midnight; want far more at noon", noon, night)
	}
	for name, tc := range map[string]struct {
		csv  string
		want []time.Duration
		err  string
	}{
		"seconds with a header": {"arrival,image\n2.5,a.jpg\n0,b.jpg\n1\n", []time.Duration{0, time.Second, 2500 * time.Millisecond}, ""},
		"RFC 3339 times":        {"2025-03-01T10:00:01Z\n2025-03-01T10:00:00.5Z\n", []time.Duration{0, 500 * time.Millisecond}, ""},
		"mixed":                 {"1\n2025-03-01T10:00:00Z\n", nil, "mixes seconds and RFC 3339"},
		"garbage":               {"1\nsoon\n", nil, `row 2: "soon" is neither`},
		"negative":              {"-1\n", nil, "out of range"},
		"empty":                 {"time\n", nil, "no arrival times"},
	} {
		t.Run(name, func(t *testing.T) {
			w, err := Replay(strings.NewReader(tc.csv))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Arrivals) != len(tc.want) {
				t.Fatalf("arrivals %v, want %v", w.Arrivals, tc.want)
			}
			for i := range tc.want {
				if w.Arrivals[i] != tc.want[i] {
					t.Errorf("arrivals %v, want %v", w.Arrivals, tc.want)
				}
			}
		})
	}
}
