package gallery

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/facecloud/facecloud/agents/face"
)

// TestScanKernels compares every scan kernel this CPU and build run with a
// direct int64 sum, on random faces and on the extremes of both ranges, for
// every count of faces up to a few kernel blocks and one chunk; a kernel
// must not write past its faces.
func TestScanKernels(t *testing.T) {
	const dim = face.DescriptorSize
	r := rand.New(rand.NewPCG(3, 4))
	counts := []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 64, 65, 2048, 2051}
	fills := map[string]func(q *[dim]int16, codes []int8){
		"random": func(q *[dim]int16, codes []int8) {
			for k := range q {
				q[k] = int16(r.IntN(1<<16) - 1<<15)
			}
			for i := range codes {
				codes[i] = int8(r.IntN(256) - 128)
			}
		},
		"largest positive": func(q *[dim]int16, codes []int8) {
			for k := range q {
				q[k] = math.MaxInt16
			}
			for i := range codes {
				codes[i] = math.MaxInt8
			}
		},
		"largest negative": func(q *[dim]int16, codes []int8) {
			for k := range q {
				q[k] = math.MinInt16
			}
			for i := range codes {
				codes[i] = math.MinInt8
			}
		},
		"opposite signs": func(q *[dim]int16, codes []int8) {
			for k := range q {
				q[k] = math.MinInt16
			}
			for i := range codes {
				codes[i] = math.MaxInt8
			}
		},
		"one component": func(q *[dim]int16, codes []int8) {
			clear(q[:])
			clear(codes)
			for j := 0; j < len(codes)/dim; j++ {
				k := (j * 37) % dim
				q[k] = int16(k + 1)
				codes[j*dim+k] = int8(j%255 - 127)
			}
		},
	}
	kernels := scanKernels()
	t.Logf("scan kernels: %v", kernelNames(kernels))
	if dots == nil || kernels[len(kernels)-1].name != "portable" {
		t.Fatal("no scan kernel selected, or the portable one is not offered")
	}
	for name, fill := range fills {
		for _, n := range counts {
			var q [dim]int16
			codes := make([]int8, n*dim)
			fill(&q, codes)
			want := make([]int32, n)
			for j := range want {
				var s int64
				for k := range dim {
					s += int64(q[k]) * int64(codes[j*dim+k])
				}
				if s != int64(int32(s)) {
					t.Fatalf("%s: sum %d overflows int32", name, s)
				}
				want[j] = int32(s)
			}
			for _, kn := range kernels {
				t.Run(fmt.Sprintf("%s/%s/%d", kn.name, name, n), func(t *testing.T) {
					const guard = 0x5a5a5a5a
					out := make([]int32, n+5)
					for i := range out {
						out[i] = guard
					}
					kn.dots(&q, codes, out[:n])
					if !slices.Equal(out[:n], want) {
						for j := range want {
							if out[j] != want[j] {
								t.Fatalf("face %d of %d: %d, want %d", j, n, out[j], want[j])
							}
						}
					}
					for i := n; i < len(out); i++ {
						if out[i] != guard {
							t.Fatalf("wrote past the %d faces, at %d", n, i)
						}
					}
				})
			}
		}
	}
}

func kernelNames(ks []scanKernel) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.name)
	}
	return out
}

// TestQuantise checks the 16-bit fixed point: each component within
// scale/2 of the original, the high byte within half an 8-bit step, the
// high bytes within −127..127, exact at ±peak (so for an axis and zero),
// and the query's quantisation within half its step.
func TestQuantise(t *testing.T) {
	const dim = face.DescriptorSize
	r := rand.New(rand.NewPCG(5, 6))
	cases := map[string]face.Descriptor{
		"axis":     axis(3, 1),
		"negative": axis(5, -0.25),
		"zero":     {},
	}
	for i := range 50 {
		var d face.Descriptor
		for k := range d {
			d[k] = float32(r.NormFloat64() * 0.1 * float64(1+i%5))
		}
		cases[fmt.Sprintf("random %d", i)] = d
	}
	for name, x := range cases {
		t.Run(name, func(t *testing.T) {
			hi, lo := make([]int8, dim), make([]int8, dim)
			peak, norm := quantise(&x, hi, lo)
			scale := peak / fixedMax
			s := &segment{hi: hi, lo: lo, peak: []float32{peak}}
			var g [dim]float64
			s.fixedDescriptor(0, &g)
			var n float64
			for k, c := range x {
				n += float64(c) * float64(c)
				if e := math.Abs(g[k] - float64(c)); e > float64(scale)/2*1.0001 {
					t.Fatalf("component %d: %v for %v, %v off (scale %v)", k, g[k], c, e, scale)
				}
				if hi[k] < -127 {
					t.Fatalf("component %d: high byte %d", k, hi[k])
				}
				if e := math.Abs(float64(hi[k])*256*float64(scale) - float64(c)); e > 128.5*float64(scale)*1.0001 {
					t.Fatalf("component %d: 8-bit %v off (%v, hi %d lo %d, scale %v)", k, e, c, hi[k], lo[k], scale)
				}
			}
			if math.Abs(float64(norm)-n) > 1e-6*n {
				t.Fatalf("norm %v, want %v", norm, n)
			}
			if name == "axis" || name == "negative" || name == "zero" {
				if g != [dim]float64(toFloat64(x)) {
					t.Fatalf("not exact: %v", g)
				}
			}
			var q [dim]int16
			step := quantiseQuery(&x, &q)
			for k, c := range x {
				if e := math.Abs(float64(q[k])*float64(step) - float64(c)); e > float64(step)*0.51 { // step is rounded to float32
					t.Fatalf("query component %d: %v off (step %v)", k, e, step)
				}
			}
		})
	}
}

func toFloat64(x face.Descriptor) (out [face.DescriptorSize]float64) {
	for k, c := range x {
		out[k] = float64(c)
	}
	return out
}

// maxDistanceError bounds the distance the search reports against the
// exact one: each component of the 16-bit copy is within scale/2, scale =
// max|x|/fixedMax (under 1e-4 for components under 0.5).
func maxDistanceError(x face.Descriptor) float64 {
	var m float64
	for _, c := range x {
		m = max(m, math.Abs(float64(c)))
	}
	return math.Sqrt(face.DescriptorSize) * m / fixedMax / 2 * 1.0001
}

// TestSearchNearDuplicates compares the search with float64 brute force on
// a gallery whose persons have many near-duplicate faces (0.02 apart,
// closer than the 8-bit scan can tell apart, so the top of each query is
// ordered only by the re-measuring), with queries among them and
// strangers: the nearest face is float64's nearest, and every distance is
// within the 16-bit copy's bound. Where float64's first two are closer
// than that bound, either is right.
func TestSearchNearDuplicates(t *testing.T) {
	small(t, 1000, 256)
	r := rand.New(rand.NewPCG(7, 8))
	var faces []Entry
	for p := 0; len(faces) < 3000; p++ {
		var centre face.Descriptor
		for k := range centre {
			centre[k] = float32(r.NormFloat64() * 0.09)
		}
		for range 1 + r.IntN(30) {
			d := centre
			for k := range d {
				d[k] += float32(r.NormFloat64() * 0.002)
			}
			faces = append(faces, Entry{Person: fmt.Sprintf("p%04d", p), ID: fmt.Sprintf("f%05d", len(faces)), Descriptor: d})
		}
	}
	// Exact duplicates too: ties go to person, then face id.
	faces = append(faces, Entry{Person: "a-twin", ID: "t1", Descriptor: faces[17].Descriptor}, Entry{Person: "a-twin", ID: "t0", Descriptor: faces[17].Descriptor})
	v := ViewOf("c", faces)
	var bound float64
	for _, e := range faces {
		bound = max(bound, maxDistanceError(e.Descriptor))
	}
	hits, ties := 0, 0
	const queries = 300
	for qi := range queries {
		q := faces[r.IntN(len(faces))].Descriptor
		switch qi % 3 {
		case 1: // near a face, as a new photo of its person
			for k := range q {
				q[k] += float32(r.NormFloat64() * 0.002)
			}
		case 2: // a stranger
			for k := range q {
				q[k] = float32(r.NormFloat64() * 0.09)
			}
		}
		if qi == 0 {
			q = faces[17].Descriptor
		}
		want := bruteForce(faces, q, 10, "")
		got := v.Search([]face.Descriptor{q}, 10, "")[0]
		if len(got) != len(want) {
			t.Fatalf("query %d: %d matches, want %d", qi, len(got), len(want))
		}
		for i := range got {
			if math.Abs(got[i].Distance-want[i].Distance) > 2*bound {
				t.Fatalf("query %d: match %d at %v, float64's at %v (bound %v)", qi, i, got[i].Distance, want[i].Distance, bound)
			}
		}
		switch {
		case got[0].FaceID == want[0].FaceID:
			hits++
		case want[1].Distance-want[0].Distance <= 2*bound:
			ties++
		default:
			t.Fatalf("query %d: nearest %+v, float64's %+v", qi, got[0], want[0])
		}
		if qi == 0 {
			if got[0].Person != "a-twin" || got[0].FaceID != "t0" || got[1].FaceID != "t1" || got[0].Distance > bound {
				t.Fatalf("exact duplicates: %+v", got[:3])
			}
		}
	}
	t.Logf("recall@1 %d of %d queries, %d more within %.1e of float64's nearest (distance bound %.1e)", hits, queries, ties, 2*bound, bound)
}

// TestFixedDistanceError measures the distance the search reports (query
// as given, face from its 16-bit copy, in float64) against the distance to
// the face as stored (float32), over many pairs of face-like descriptors,
// and holds it to maxDistanceError; and an identical descriptor's.
func TestFixedDistanceError(t *testing.T) {
	const dim, pairs = face.DescriptorSize, 20000
	r := rand.New(rand.NewPCG(9, 10))
	draw := func() face.Descriptor {
		var d face.Descriptor
		for k := range d {
			d[k] = float32(r.NormFloat64() * 0.09)
		}
		return d
	}
	hi, lo := make([]int8, dim), make([]int8, dim)
	s := &segment{hi: hi, lo: lo, peak: make([]float32, 1)}
	var worst, worstSame float64
	for i := range pairs {
		q, x := draw(), draw()
		if i%2 == 1 { // a near face too
			x = q
			for k := range x {
				x[k] += float32(r.NormFloat64() * 0.025)
			}
		}
		s.peak[0], _ = quantise(&x, hi, lo)
		var qs, xs [dim]float64
		var want float64
		for k := range q {
			a := float64(q[k]) - float64(x[k])
			want += a * a
			qs[k], xs[k] = float64(q[k])*fixedMax, float64(x[k])*fixedMax
		}
		got, same := s.fixedDistance2(0, &qs), s.fixedDistance2(0, &xs)
		e := math.Abs(math.Sqrt(got) - math.Sqrt(want))
		if bound := maxDistanceError(x); e > bound || math.Sqrt(same) > bound {
			t.Fatalf("pair %d: distance %v off, identical at %v; bound %v", i, e, math.Sqrt(same), bound)
		}
		worst, worstSame = max(worst, e), max(worstSame, math.Sqrt(same))
	}
	t.Logf("%d pairs: largest distance error %.2e; an identical descriptor at up to %.2e", pairs, worst, worstSame)
}

// fixedDescriptor is row r's descriptor as the search holds it (forSearch),
// in float64, for checking the conversion: within scale/2 of the original per component, and exact for
// the components at ±peak.
func (s *segment) fixedDescriptor(r int, out *[face.DescriptorSize]float64) {
	const dim = face.DescriptorSize
	hi, lo := (*[dim]int8)(s.hi[r*dim:]), (*[dim]int8)(s.lo[r*dim:])
	p := float64(s.peak[r])
	for k := range out {
		out[k] = float64(int32(hi[k])<<8+int32(lo[k])) * p / fixedMax
	}
}
