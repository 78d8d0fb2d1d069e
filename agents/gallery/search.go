package gallery

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/job"
)

// The search scans an 8-bit copy of every face (scan.go): for each query
// the approximate squared distance |q|² + |g|² − 2 q·g, with q·g from the
// quantised query and face, and keeps the Candidates(k) nearest. Those are
// measured again in float64 from the 16-bit copy, and the k nearest of them
// answered, ties by person then face id. The scan reads 128 bytes a face
// where float32 would read 512: at a million faces the search is bound by
// how fast memory is read, not by arithmetic.

// MaxLimit bounds the candidates a search returns per face.
const MaxLimit = 100

// Match is one candidate of a search.
type Match struct {
	Person   string  `json:"person"`
	FaceID   string  `json:"face_id"`
	Distance float64 `json:"distance"`
	// Similarity is Similarity(Distance).
	Similarity float64 `json:"similarity"`
}

// Similarity maps a descriptor distance to 0..1: 1/(1 + (d/t)⁴) with t
// the default threshold (0.5). It is 1 for identical descriptors, 0.5 at
// the default threshold, about 0.7 at 0.4 and under 0.1 beyond 0.9. It is a
// display scale, monotone in the distance, not a probability.
func Similarity(distance float64) float64 {
	if distance < 0 {
		return 0
	}
	x := distance / DefaultThreshold
	x *= x
	return 1 / (1 + x*x)
}

// Candidates is how many faces the scan keeps for a top-k search, to be
// measured again: max(4k, 64). The scan's error on a squared distance is of
// the order of 1e-3 (its 8-bit faces are within half a step, 1/254 of their
// largest component, per component); a true top-k face would have to fall
// behind that many others to be lost. At a million faces the bench needed
// 16 for the top-10 (docs/gallery.md).
func Candidates(k int) int { return max(4*k, 64) }

// cand is a face kept by the scan: approximate squared distance and where.
type cand struct {
	d2       float32
	seg, row int32
}

// kept is a query's candidates, a max-heap on d2 of at most r.
type kept struct {
	r int
	h []cand
}

// worst is the approximate squared distance a face must beat to be kept.
func (c *kept) worst() float32 {
	if len(c.h) < c.r {
		return float32(math.Inf(1))
	}
	return c.h[0].d2
}

func (c *kept) push(x cand) {
	h := c.h
	if len(h) < c.r {
		h = append(h, x)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if h[p].d2 >= h[i].d2 {
				break
			}
			h[p], h[i] = h[i], h[p]
			i = p
		}
		c.h = h
		return
	}
	h[0] = x
	for i := 0; ; {
		l, big := 2*i+1, i
		if l < len(h) && h[l].d2 > h[big].d2 {
			big = l
		}
		if l+1 < len(h) && h[l+1].d2 > h[big].d2 {
			big = l + 1
		}
		if big == i {
			break
		}
		h[i], h[big] = h[big], h[i]
		i = big
	}
}

// scanBuf is a reusable buffer for one chunk's products.
var scanBuf = sync.Pool{New: func() any { b := make([]int32, chunkFaces); return &b }}

// Search returns, for each query, its k nearest faces (1 ≤ k ≤ MaxLimit),
// nearest first; with person set, only that person's faces.
func (v *View) Search(queries []face.Descriptor, k int, person string) [][]Match {
	k = min(max(k, 1), MaxLimit)
	return v.SearchWith(queries, k, person, Candidates(k))
}

// SearchWith is Search with the scan keeping r candidates per query
// (at least k) rather than Candidates(k): for measuring the recall that r
// gives.
func (v *View) SearchWith(queries []face.Descriptor, k int, person string, r int) [][]Match {
	const dim = face.DescriptorSize
	k = min(max(k, 1), MaxLimit)
	r = max(r, k)
	m := len(queries)
	out := make([][]Match, m)
	if m == 0 {
		return out
	}
	qq := make([][dim]int16, m)
	qn := make([]float32, m)
	coef := make([]float32, m) // 2·step·256/fixedMax: the scan's faces are hi·256·peak/fixedMax
	cs := make([]kept, m)
	for i := range queries {
		var s float64
		for _, x := range queries[i] {
			s += float64(x) * float64(x)
		}
		qn[i] = float32(s)
		coef[i] = 2 * 256 * quantiseQuery(&queries[i], &qq[i]) / fixedMax
		cs[i] = kept{r: r, h: make([]cand, 0, r)}
	}
	bp := scanBuf.Get().(*[]int32)
	defer scanBuf.Put(bp)
	if cap(*bp) < chunkFaces {
		*bp = make([]int32, chunkFaces)
	}
	for si, s := range v.segs {
		lo, hi := 0, s.n
		if person != "" {
			lo, hi = s.personRange(person)
		}
		dead := v.dead[si]
		for c0 := lo; c0 < hi; c0 += chunkFaces {
			c1 := min(c0+chunkFaces, hi)
			codes := s.hi[c0*dim : c1*dim]
			prods := (*bp)[:c1-c0]
			norms, peaks := s.norms[c0:c1], s.peak[c0:c1]
			for qi := range m {
				dots(&qq[qi], codes, prods)
				c := &cs[qi]
				worst, q2, f := c.worst(), qn[qi], coef[qi]
				for j, p := range prods {
					d2 := q2 + norms[j] - f*peaks[j]*float32(p)
					if d2 >= worst {
						continue
					}
					row := c0 + j
					if dead != nil && dead[row>>6]&(1<<(row&63)) != 0 {
						continue
					}
					c.push(cand{d2: d2, seg: int32(si), row: int32(row)})
					worst = c.worst()
				}
			}
		}
	}
	var qs [dim]float64
	type measured struct {
		d2       float64
		seg, row int
	}
	ms := make([]measured, 0, r)
	for qi := range m {
		for k, x := range queries[qi] {
			qs[k] = float64(x) * fixedMax
		}
		ms = ms[:0]
		for _, h := range cs[qi].h {
			ms = append(ms, measured{v.segs[h.seg].fixedDistance2(int(h.row), &qs), int(h.seg), int(h.row)})
		}
		slices.SortFunc(ms, func(a, b measured) int {
			if c := cmp.Compare(a.d2, b.d2); c != 0 {
				return c
			}
			sa, sb := v.segs[a.seg], v.segs[b.seg]
			if c := strings.Compare(sa.personOf(a.row), sb.personOf(b.row)); c != 0 {
				return c
			}
			return strings.Compare(sa.faceID(a.row), sb.faceID(b.row))
		})
		res := make([]Match, min(k, len(ms)))
		for i := range res {
			s, row := v.segs[ms[i].seg], ms[i].row
			d := math.Sqrt(ms[i].d2)
			res[i] = Match{Person: s.personOf(row), FaceID: s.faceID(row), Distance: d, Similarity: Similarity(d)}
		}
		out[qi] = res
	}
	return out
}

// Match names d after the nearest face. Beyond threshold the name is
// Unknown unless nearest is set. The distance is to the nearest face; an
// empty view answers Unknown at distance -1.
func (v *View) Match(d face.Descriptor, threshold float64, nearest bool) (name string, distance float64) {
	ms := v.Search([]face.Descriptor{d}, 1, "")[0]
	if len(ms) == 0 {
		return Unknown, -1
	}
	if ms[0].Distance > threshold && !nearest {
		return Unknown, ms[0].Distance
	}
	return ms[0].Person, ms[0].Distance
}

// FacesWith names every face of a recognition after its nearest face in
// the view, in its order (largest first): each gets its quality level;
// one below o.MinQuality is job.LowQuality (distance -1) and not searched;
// beyond o.Threshold the name is "unknown" unless o.Nearest is set.
func (v *View) FacesWith(rec face.Recognition, o MatchOptions) []job.Face {
	var qs []face.Descriptor
	for _, f := range rec.Faces {
		if f.Quality.Level >= o.MinQuality {
			qs = append(qs, f.Descriptor)
		}
	}
	ms := v.Search(qs, 1, "")
	out := make([]job.Face, 0, len(rec.Faces))
	for _, f := range rec.Faces {
		jf := job.Face{Box: job.Box{X: f.Box.X, Y: f.Box.Y, W: f.Box.W, H: f.Box.H}, Score: f.Score,
			Name: job.LowQuality, Distance: -1, Quality: f.Quality.Level.String()}
		if f.Quality.Level >= o.MinQuality {
			jf.Name = Unknown
			if m := ms[0]; len(m) > 0 {
				jf.Distance, jf.Similarity = m[0].Distance, m[0].Similarity
				if m[0].Distance <= o.Threshold || o.Nearest {
					jf.Name, jf.FaceID = m[0].Person, m[0].FaceID
				}
			}
			ms = ms[1:]
		}
		out = append(out, jf)
	}
	return out
}
