// Command benchgallery measures the gallery at scale for
// scripts/bench-gallery.sh: it writes a collection of synthetic faces as a
// snapshot (gen), then, in a fresh process, loads it as a worker does and
// measures how long that takes, the memory it holds, the search against
// exact float64 brute force over the same faces, and how soon an enrolment
// written by another process becomes visible (measure).
//
// The faces are drawn from a seed, each one on its own, so measure can
// draw them again for the reference without having held them: persons of
// 1..7 faces around a centre (about 0.4 apart within a person, about 1.2
// across, as face-api's descriptors are).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
)

const collection = "bench"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchgallery gen|measure --store DIR --faces N [--seed S] [--queries Q] [--reference R]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("store", "", "file store directory")
	n := fs.Int("faces", 1_000_000, "faces in the collection")
	seed := fs.Uint64("seed", 1, "seed of the faces and queries")
	queries := fs.Int("queries", 200, "searches timed")
	reference := fs.Int("reference", 40, "searches also run by float64 brute force, for recall and the time ratio")
	refresh := fs.Duration("refresh", 2*time.Second, "the follower's refresh interval, for the enrolment's visibility")
	_ = fs.Parse(os.Args[2:])
	if *dir == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "benchgallery: --store and --faces are required")
		os.Exit(2)
	}
	ctx := context.Background()
	st, err := blobstore.OpenURL(ctx, &url.URL{Scheme: "file", Path: filepath.ToSlash(*dir)})
	if err != nil {
		fail(err)
	}
	defer st.Close()
	switch os.Args[1] {
	case "gen":
		err = gen(ctx, st, *n, *seed)
	case "measure":
		err = measure(ctx, st, *dir, *n, *seed, *queries, *reference, *refresh)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchgallery:", err)
	os.Exit(1)
}

// model draws the synthetic faces.
type model struct{ seed uint64 }

// centre is person p's centre: 128 values of N(0, 0.1²) (so two centres
// are about 1.6 apart; faces of two persons about 1.2 as noise adds).
func (m model) centre(p int) face.Descriptor {
	r := rand.New(rand.NewPCG(m.seed, uint64(p)<<1))
	var d face.Descriptor
	for k := range d {
		d[k] = float32(r.NormFloat64() * 0.1)
	}
	return d
}

// noisy is c moved by N(0, s²) per component, drawn from stream.
func noisy(c face.Descriptor, s float64, r *rand.Rand) face.Descriptor {
	for k := range c {
		c[k] += float32(r.NormFloat64() * s)
	}
	return c
}

// person is the person of face i: runs of 1..7 faces.
func (m model) layout(n int) []int {
	r := rand.New(rand.NewPCG(m.seed, 0xfeed))
	persons := make([]int, n)
	p := 0
	for i := 0; i < n; {
		k := 1 + r.IntN(7)
		for j := 0; j < k && i < n; j++ {
			persons[i] = p
			i++
		}
		p++
	}
	return persons
}

// face is face i (of person p): its centre moved by 0.025 per component
// (two faces of a person about 0.4 apart).
func (m model) face(i, p int) face.Descriptor {
	return noisy(m.centre(p), 0.025, rand.New(rand.NewPCG(m.seed, uint64(i)<<1|1)))
}

func gen(ctx context.Context, st platform.Store, n int, seed uint64) error {
	t0 := time.Now()
	m := model{seed}
	persons := m.layout(n)
	i := 0
	enrolled := time.Now().UTC()
	wrote, err := gallery.Import(ctx, st, collection, func() (gallery.Entry, bool) {
		if i == n {
			return gallery.Entry{}, false
		}
		e := gallery.Entry{Person: fmt.Sprintf("person-%07d", persons[i]), ID: fmt.Sprintf("face-%07d", i), Source: fmt.Sprintf("img%07d.jpg", i), Descriptor: m.face(i, persons[i]), Enrolled: enrolled}
		i++
		return e, true
	})
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d faces in %s\n", wrote, time.Since(t0).Round(time.Millisecond))
	return nil
}

// query q: even ones a new photo of a gallery face's person, odd ones a
// stranger.
func (m model) query(q, n int, persons []int) face.Descriptor {
	r := rand.New(rand.NewPCG(m.seed^0x9e3779b97f4a7c15, uint64(q)))
	if q%2 == 0 {
		i := r.IntN(n)
		return noisy(m.centre(persons[i]), 0.025, r)
	}
	return noisy(m.centre(-1-q), 0.025, r)
}

// status reads VmRSS and VmHWM from /proc/self/status, in MiB.
func status() (rss, hwm float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%f", &kb)
			rss = kb / 1024
		case strings.HasPrefix(line, "VmHWM:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmHWM:"), "%f", &kb)
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// report is what measure prints as JSON.
type report struct {
	Faces          int     `json:"faces"`
	GOMAXPROCS     int     `json:"gomaxprocs"`
	ReadyS         float64 `json:"ready_s"`
	RSSMiB         float64 `json:"rss_mib"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	SearchP50MS    float64 `json:"search_top10_p50_ms"`
	SearchP90MS    float64 `json:"search_top10_p90_ms"`
	ReferenceP50MS float64 `json:"reference_float64_p50_ms"`
	SpeedUp        float64 `json:"speedup_vs_reference"`
	RecallAt1      float64 `json:"recall_at_1"`
	RecallAt10     float64 `json:"recall_at_10"`
	MaxDistanceErr float64 `json:"max_distance_error"`
	// Candidates is how many faces the scan keeps for the top-10;
	// ByCandidates the recall of the reference queries had it kept others.
	Candidates      int                   `json:"candidates"`
	ByCandidates    map[string][2]float64 `json:"recall_at_1_10_by_candidates"`
	VisibleS        float64               `json:"enrolment_visible_s"`
	RefreshInterval float64               `json:"refresh_s"`
}

func measure(ctx context.Context, st platform.Store, dir string, n int, seed uint64, queries, reference int, refresh time.Duration) error {
	rep := report{Faces: n, GOMAXPROCS: runtime.GOMAXPROCS(0), RefreshInterval: refresh.Seconds()}
	t0 := time.Now()
	f := gallery.NewFollower(st)
	if _, err := f.Refresh(ctx); err != nil {
		return err
	}
	rep.ReadyS = math.Round(time.Since(t0).Seconds()*100) / 100
	v := f.View(collection)
	if v.Len() != n {
		return fmt.Errorf("loaded %d faces, want %d", v.Len(), n)
	}
	rep.RSSMiB, rep.PeakRSSMiB = status()

	m := model{seed}
	persons := m.layout(n)
	qs := make([]face.Descriptor, queries)
	for q := range qs {
		qs[q] = m.query(q, n, persons)
	}
	got := make([][]gallery.Match, queries)
	times := make([]time.Duration, queries)
	for q := range qs {
		t := time.Now()
		got[q] = v.Search(qs[q:q+1], 10, "")[0]
		times[q] = time.Since(t)
	}
	rep.SearchP50MS, rep.SearchP90MS = ms(percentile(times, 50)), ms(percentile(times, 90))
	rss, hwm := status()
	rep.RSSMiB, rep.PeakRSSMiB = max(rep.RSSMiB, rss), hwm

	// The enrolment: written by another store handle (another process's),
	// seen by this follower refreshing every interval as a worker does.
	vis, err := visibility(ctx, dir, f, refresh)
	if err != nil {
		return err
	}
	rep.VisibleS = math.Round(vis.Seconds()*1000) / 1000

	// The reference: float64 brute force over the faces drawn again.
	runtime.GC()
	debug.FreeOSMemory()
	all := make([]face.Descriptor, n)
	for i := range all {
		all[i] = m.face(i, persons[i])
	}
	reference = min(reference, queries)
	refTimes := make([]time.Duration, reference)
	hit1, hit10 := 0, 0
	wants := make([][]ref, reference)
	for q := range reference {
		t := time.Now()
		want := bruteForce(all, persons, qs[q], 10)
		refTimes[q] = time.Since(t)
		wants[q] = want
		if len(got[q]) > 0 && got[q][0].FaceID == want[0].id {
			hit1++
		}
		ids := map[string]bool{}
		for _, w := range want {
			ids[w.id] = true
		}
		for i, g := range got[q] {
			if ids[g.FaceID] {
				hit10++
			}
			if i < len(want) {
				rep.MaxDistanceErr = max(rep.MaxDistanceErr, math.Abs(g.Distance-want[i].d))
			}
		}
	}
	// The same queries with the scan keeping fewer or more candidates
	// than the search does, for the recall each gives.
	rep.Candidates = gallery.Candidates(10)
	rep.ByCandidates = map[string][2]float64{}
	for _, r := range []int{10, 16, 32, rep.Candidates, 256} {
		h1, h10 := 0, 0
		for q := range reference {
			g := v.SearchWith(qs[q:q+1], 10, "", r)[0]
			if len(g) > 0 && g[0].FaceID == wants[q][0].id {
				h1++
			}
			for _, m := range g {
				for _, w := range wants[q] {
					if w.id == m.FaceID {
						h10++
					}
				}
			}
		}
		rep.ByCandidates[fmt.Sprint(r)] = [2]float64{float64(h1) / float64(reference), float64(h10) / float64(10*reference)}
	}
	rep.ReferenceP50MS = ms(percentile(refTimes, 50))
	rep.SpeedUp = math.Round(float64(percentile(refTimes, 50))/float64(percentile(times, 50))*10) / 10
	rep.RecallAt1 = float64(hit1) / float64(reference)
	rep.RecallAt10 = float64(hit10) / float64(10*reference)
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	return nil
}

type ref struct {
	id string
	d  float64
}

// bruteForce is the exact k nearest in float64, face by face.
func bruteForce(all []face.Descriptor, persons []int, q face.Descriptor, k int) []ref {
	best := make([]ref, 0, k+1)
	for i, g := range all {
		var s float64
		for j := range g {
			x := float64(q[j]) - float64(g[j])
			s += x * x
		}
		if len(best) == k && s >= best[k-1].d {
			continue
		}
		r := ref{id: fmt.Sprintf("face-%07d", i), d: s}
		at, _ := slices.BinarySearchFunc(best, s, func(a ref, t float64) int {
			if a.d < t {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, at, r)
		if len(best) > k {
			best = best[:k]
		}
	}
	for i := range best {
		best[i].d = math.Sqrt(best[i].d)
	}
	_ = persons
	return best
}

// visibility appends a face through its own store handle, as another
// worker would, and waits until f, refreshing every interval, holds it.
func visibility(ctx context.Context, dir string, f *gallery.Follower, interval time.Duration) (time.Duration, error) {
	writer, err := blobstore.OpenURL(ctx, &url.URL{Scheme: "file", Path: filepath.ToSlash(dir)})
	if err != nil {
		return 0, err
	}
	defer writer.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				_, _ = f.Refresh(rctx)
			}
		}
	}()
	// Start at a random point of the refresh cycle, as an enrolment does.
	time.Sleep(time.Duration(rand.Int64N(int64(interval))))
	var d face.Descriptor
	d[0] = 1
	t0 := time.Now()
	if err := gallery.AddFace(ctx, writer, collection, gallery.Entry{Person: "newcomer", ID: "new-1", Descriptor: d}); err != nil {
		return 0, err
	}
	for {
		if _, ok := f.View(collection).Face("newcomer", "new-1"); ok {
			took := time.Since(t0)
			// Leave the collection as it was, for the next run.
			_, err := gallery.Append(ctx, writer, collection, gallery.Event{Op: gallery.OpDelete, Person: "newcomer", ID: "new-1"})
			return took, err
		}
		if time.Since(t0) > 10*interval {
			return 0, fmt.Errorf("the enrolment was not visible after %s", 10*interval)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
