package status

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Histogram counts durations in logarithmic buckets, four to a doubling:
// bucket i holds durations in (2^((i-1)/4), 2^(i/4)] milliseconds, bucket
// 0 everything up to 1 ms and the last everything from about 12 minutes.
// Histograms of several steps and hosts add up, which quantiles of theirs
// would not, and a quantile read from one is within 19% of the exact one.
// It is written to JSON as [[bucket, count], ...] for the buckets in use.
type Histogram struct {
	counts map[int]int
}

// buckets is the number of buckets.
const buckets = 81

func bucketOf(d time.Duration) int {
	ms := float64(d) / float64(time.Millisecond)
	if ms <= 1 {
		return 0
	}
	return min(int(math.Ceil(4*math.Log2(ms))), buckets-1)
}

// upper is bucket i's upper bound in milliseconds.
func upper(i int) float64 { return math.Exp2(float64(i) / 4) }

// Add counts one duration.
func (h *Histogram) Add(d time.Duration) {
	if h.counts == nil {
		h.counts = map[int]int{}
	}
	h.counts[bucketOf(d)]++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o Histogram) {
	for i, n := range o.counts {
		if h.counts == nil {
			h.counts = map[int]int{}
		}
		h.counts[i] += n
	}
}

// Count is the number of durations counted.
func (h Histogram) Count() int {
	n := 0
	for _, c := range h.counts {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q <= 1) in milliseconds, placed
// within its bucket on a logarithmic scale, or false without counts.
func (h Histogram) Quantile(q float64) (float64, bool) {
	n := h.Count()
	if n == 0 {
		return 0, false
	}
	rank := q * float64(n)
	seen := 0.0
	for i := range buckets {
		c := float64(h.counts[i])
		if c == 0 {
			continue
		}
		if seen+c >= rank {
			if i == 0 {
				return 1, true
			}
			frac := (rank - seen) / c
			lo, hi := upper(i-1), upper(i)
			return lo * math.Pow(hi/lo, frac), true
		}
		seen += c
	}
	return upper(buckets - 1), true
}

// MarshalJSON writes [[bucket, count], ...], buckets ascending.
func (h Histogram) MarshalJSON() ([]byte, error) {
	idx := make([]int, 0, len(h.counts))
	for i, c := range h.counts {
		if c > 0 {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	pairs := make([][2]int, len(idx))
	for k, i := range idx {
		pairs[k] = [2]int{i, h.counts[i]}
	}
	return json.Marshal(pairs)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var pairs [][2]int
	if err := json.Unmarshal(b, &pairs); err != nil {
		return fmt.Errorf("latency histogram: %w", err)
	}
	h.counts = nil
	for _, p := range pairs {
		if p[0] < 0 || p[0] >= buckets || p[1] < 0 {
			return fmt.Errorf("latency histogram: bucket %d count %d out of range 0..%d", p[0], p[1], buckets-1)
		}
		if p[1] > 0 {
			if h.counts == nil {
				h.counts = map[int]int{}
			}
			h.counts[p[0]] += p[1]
		}
	}
	return nil
}

// IsZero reports an empty histogram, so omitempty leaves it out.
func (h Histogram) IsZero() bool { return h.Count() == 0 }
