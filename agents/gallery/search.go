package gallery

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/job"
)

// Search is exact: every face of the view is compared with every query.
// The descriptors are packed for nn.Gemm (the face engine's float32 matrix
// product), which gives the dot products q·g of a few queries with
// chunkFaces faces at once; the squared distance is |q|² + |g|² − 2 q·g,
// and the nearest are kept in a small sorted list per query.

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

// hit is a candidate while searching: squared distance and where it is.
type hit struct {
	d2       float32
	seg, row int32
}

// topK keeps the k nearest hits, nearest first.
type topK struct {
	k    int
	hits []hit
	v    *View
}

// worst is the squared distance a hit must beat to enter.
func (t *topK) worst() float32 {
	if len(t.hits) < t.k {
		return float32(math.Inf(1))
	}
	return t.hits[len(t.hits)-1].d2
}

// less orders hits by distance, ties by person and face id.
func (t *topK) less(a, b hit) bool {
	if a.d2 != b.d2 {
		return a.d2 < b.d2
	}
	sa, sb := t.v.segs[a.seg], t.v.segs[b.seg]
	if c := strings.Compare(sa.personOf(int(a.row)), sb.personOf(int(b.row))); c != 0 {
		return c < 0
	}
	return sa.faceID(int(a.row)) < sb.faceID(int(b.row))
}

func (t *topK) push(h hit) {
	if len(t.hits) == t.k && !t.less(h, t.hits[len(t.hits)-1]) {
		return
	}
	i := len(t.hits)
	if i < t.k {
		t.hits = append(t.hits, h)
	} else {
		i--
	}
	for i > 0 && t.less(h, t.hits[i-1]) {
		t.hits[i] = t.hits[i-1]
		i--
	}
	t.hits[i] = h
}

// padRows is how many rows the queries are padded to (with zeros) before
// the product: nn.Gemm computes a few rows of A per pass over the gallery,
// and depending on its micro-kernels one query alone may cost as much as
// several, or more (a single row copied into a padded tile for every panel
// of 16 faces). Which is faster is measured once, on a chunk of random
// faces, rather than assumed of the kernels.
var padRows = sync.OnceValue(func() int {
	const dim, n = face.DescriptorSize, 2048
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]float32, dim*n)
	for i := range b {
		b[i] = float32(r.NormFloat64())
	}
	pb := nn.PackB(b, dim, n)
	best, bestRows := time.Duration(math.MaxInt64), 1
	for _, rows := range []int{1, 6} {
		a := make([]float32, rows*dim)
		c := make([]float32, rows*n)
		var took time.Duration
		for range 3 { // the best of three: the machine may be busy
			t0 := time.Now()
			for range 8 {
				nn.Gemm(rows, a, dim, pb, c, n)
			}
			if d := time.Since(t0); took == 0 || d < took {
				took = d
			}
		}
		if took < best {
			best, bestRows = took, rows
		}
	}
	return bestRows
})

// products is a reusable buffer for the queries × chunk dot products.
var products = sync.Pool{New: func() any { b := make([]float32, 0, 4*chunkFaces); return &b }}

// Search returns, for each query, its k nearest faces (1 ≤ k ≤ MaxLimit),
// nearest first; with person set, only that person's faces.
func (v *View) Search(queries []face.Descriptor, k int, person string) [][]Match {
	k = min(max(k, 1), MaxLimit)
	m := len(queries)
	out := make([][]Match, m)
	if m == 0 {
		return out
	}
	const dim = face.DescriptorSize
	rows := max(m, padRows())
	a := make([]float32, rows*dim)
	qn := make([]float32, m)
	for i, q := range queries {
		copy(a[i*dim:], q[:])
		var s float64
		for _, x := range q {
			s += float64(x) * float64(x)
		}
		qn[i] = float32(s)
	}
	tops := make([]topK, m)
	for i := range tops {
		tops[i] = topK{k: k, v: v}
	}
	bp := products.Get().(*[]float32)
	defer products.Put(bp)
	for si, s := range v.segs {
		lo, hi := 0, s.n
		if person != "" {
			lo, hi = s.personRange(person)
		}
		dead := v.dead[si]
		for ci := lo / chunkFaces; ci*chunkFaces < hi; ci++ {
			ch := s.chunks[ci]
			c0 := ci * chunkFaces
			if cap(*bp) < rows*ch.N {
				*bp = make([]float32, rows*ch.N)
			}
			c := (*bp)[:rows*ch.N]
			clear(c)
			nn.Gemm(rows, a, dim, ch, c, ch.N)
			j0, j1 := max(lo-c0, 0), min(hi-c0, ch.N)
			norms := s.norms[c0 : c0+ch.N]
			for qi := range m {
				t := &tops[qi]
				row := c[qi*ch.N : (qi+1)*ch.N]
				worst, q2 := t.worst(), qn[qi]
				for j := j0; j < j1; j++ {
					d2 := q2 + norms[j] - 2*row[j]
					if d2 > worst {
						continue
					}
					r := c0 + j
					if dead != nil && dead[r>>6]&(1<<(r&63)) != 0 {
						continue
					}
					t.push(hit{d2: max(d2, 0), seg: int32(si), row: int32(r)})
					worst = t.worst()
				}
			}
		}
	}
	// The product's distances lose digits to cancellation (an identical
	// face comes out near 5e-4, not 0): the few found are measured again
	// directly, in float64, and put in that order.
	col := make([]float32, dim)
	for qi := range m {
		ms := make([]Match, len(tops[qi].hits))
		for i, h := range tops[qi].hits {
			s := v.segs[h.seg]
			r := int(h.row)
			s.chunks[r/chunkFaces].Column(r%chunkFaces, col)
			var d2 float64
			for k, x := range queries[qi] {
				t := float64(x) - float64(col[k])
				d2 += t * t
			}
			d := math.Sqrt(d2)
			ms[i] = Match{Person: s.personOf(r), FaceID: s.faceID(r), Distance: d, Similarity: Similarity(d)}
		}
		slices.SortStableFunc(ms, func(a, b Match) int { return cmp.Compare(a.Distance, b.Distance) })
		out[qi] = ms
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
