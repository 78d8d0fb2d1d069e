package gallery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/platform"
)

// small makes segments and search chunks small for the test, so that a few
// hundred faces span many of each.
func small(t *testing.T, segment, chunk int) {
	t.Helper()
	s, c := segmentFaces, chunkFaces
	segmentFaces, chunkFaces = segment, chunk
	t.Cleanup(func() { segmentFaces, chunkFaces = s, c })
}

// randomFaces makes n faces of persons of 1..5 faces, descriptors drawn
// around a centre per person as face descriptors are (about 0.4 apart
// within a person, about 1 across).
func randomFaces(r *rand.Rand, n int) []Entry {
	var out []Entry
	for p := 0; len(out) < n; p++ {
		var centre face.Descriptor
		for k := range centre {
			centre[k] = float32(r.NormFloat64() * 0.09)
		}
		for f := 0; f < 1+r.IntN(5) && len(out) < n; f++ {
			var d face.Descriptor
			for k := range d {
				d[k] = centre[k] + float32(r.NormFloat64()*0.025)
			}
			out = append(out, Entry{V: Version, Person: fmt.Sprintf("p%04d", p), ID: fmt.Sprintf("f%05d", len(out)), Descriptor: d})
		}
	}
	return out
}

// bruteForce is the reference search: float64, face by face.
func bruteForce(faces []Entry, q face.Descriptor, k int, person string) []Match {
	var ms []Match
	for _, e := range faces {
		if person != "" && e.Person != person {
			continue
		}
		var s float64
		for i := range q {
			x := float64(q[i]) - float64(e.Descriptor[i])
			s += x * x
		}
		ms = append(ms, Match{Person: e.Person, FaceID: e.ID, Distance: math.Sqrt(s)})
	}
	slices.SortFunc(ms, func(a, b Match) int {
		if a.Distance != b.Distance {
			return map[bool]int{true: -1, false: 1}[a.Distance < b.Distance]
		}
		return strings.Compare(a.Person+"/"+a.FaceID, b.Person+"/"+b.FaceID)
	})
	return ms[:min(k, len(ms))]
}

func sameMatches(t *testing.T, what string, got, want []Match) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d candidates, want %d", what, len(got), len(want))
	}
	for i := range got {
		// The search measures its candidates from the 16-bit copy: each
		// component within scale/2 of the original, so the distance within
		// √128·max|x|/(2·fixedMax), under 1e-4 for components under 0.5.
		if got[i].Person != want[i].Person || got[i].FaceID != want[i].FaceID || math.Abs(got[i].Distance-want[i].Distance) > 1e-4 {
			t.Fatalf("%s: candidate %d is %+v, want %+v", what, i, got[i], want[i])
		}
		if math.Abs(got[i].Similarity-Similarity(got[i].Distance)) > 1e-12 {
			t.Fatalf("%s: similarity %v of distance %v", what, got[i].Similarity, got[i].Distance)
		}
	}
}

// iterate yields entries one by one, for Import.
func iterate(es []Entry) func() (Entry, bool) {
	i := 0
	return func() (Entry, bool) {
		if i == len(es) {
			return Entry{}, false
		}
		i++
		return es[i-1], true
	}
}

// TestSearchIsExact compares the search with float64 brute force over a
// collection of several segments and chunks, with faces deleted from the
// snapshot and added by the log, with and without a person filter.
func TestSearchIsExact(t *testing.T) {
	small(t, 300, 64)
	ctx := context.Background()
	st := openStore(t)
	r := rand.New(rand.NewPCG(1, 2))
	faces := randomFaces(r, 1000)
	if n, err := Import(ctx, st, "c", iterate(faces[:900])); err != nil || n != 900 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	// The log deletes two faces and a person, and adds the last 100.
	for _, e := range faces[900:] {
		if err := AddFace(ctx, st, "c", e); err != nil {
			t.Fatal(err)
		}
	}
	gone := map[string]bool{faces[10].ID: true, faces[500].ID: true}
	for _, e := range faces[10:11] {
		if _, err := Append(ctx, st, "c", Event{Op: OpDelete, Person: e.Person, ID: e.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Append(ctx, st, "c", Event{Op: OpDelete, Person: faces[500].Person, ID: faces[500].ID}); err != nil {
		t.Fatal(err)
	}
	victim := faces[700].Person
	if _, err := Append(ctx, st, "c", Event{Op: OpDeletePerson, Person: victim}); err != nil {
		t.Fatal(err)
	}
	var live []Entry
	for _, e := range faces {
		if !gone[e.ID] && e.Person != victim {
			live = append(live, e)
		}
	}
	check := func(t *testing.T, v *View) {
		if v.Len() != len(live) {
			t.Fatalf("view has %d faces, want %d", v.Len(), len(live))
		}
		for qi := range 40 {
			q := faces[r.IntN(len(faces))].Descriptor
			if qi%2 == 1 { // a stranger
				q = randomFaces(r, 1)[0].Descriptor
			}
			for _, k := range []int{1, 10} {
				got := v.Search([]face.Descriptor{q, q}, k, "")
				sameMatches(t, fmt.Sprintf("query %d top-%d", qi, k), got[0], bruteForce(live, q, k, ""))
				sameMatches(t, fmt.Sprintf("query %d top-%d, second row", qi, k), got[1], got[0])
			}
			p := live[r.IntN(len(live))].Person
			sameMatches(t, fmt.Sprintf("query %d of %s", qi, p), v.Search([]face.Descriptor{q}, 3, p)[0], bruteForce(live, q, 3, p))
		}
		if got := v.Search([]face.Descriptor{faces[0].Descriptor}, 5, victim)[0]; len(got) != 0 {
			t.Fatalf("search of a deleted person found %v", got)
		}
	}
	f := NewFollower(st)
	if _, err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("snapshot and log", func(t *testing.T) { check(t, f.View("c")) })
	stats, err := Compact(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Folded != 103 {
		t.Fatalf("compaction folded %d events, want 103", stats.Folded)
	}
	if _, err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("compacted", func(t *testing.T) { check(t, f.View("c")) })
}

// objects returns every object of a file store by key.
func objects(t *testing.T, st platform.Store) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	keys, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		b, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// TestFollowAndCompact follows two collections through enrolments, a
// compaction, an erasure and the migration of legacy entries, and checks
// what each step leaves in the store.
func TestFollowAndCompact(t *testing.T) {
	small(t, 8, 4)
	ctx := context.Background()
	st := openStore(t)
	searcher, index := NewFollower(st), NewIndexFollower(st)
	refresh := func(t *testing.T, want ...string) {
		t.Helper()
		for _, f := range []*Follower{searcher, index} {
			changed, err := f.Refresh(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(changed, ",") != strings.Join(want, ",") {
				t.Fatalf("Refresh changed %v, want %v", changed, want)
			}
		}
	}
	// Legacy entries are the default collection's.
	for i, p := range []string{"Paul", "Paul", "Emily"} {
		if err := PutLegacy(ctx, st, Entry{Person: p, ID: fmt.Sprintf("old%d", i), Source: "old.jpg", Descriptor: axis(i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		e := Entry{Person: fmt.Sprintf("P%d", i%6), ID: fmt.Sprintf("id%02d", i), Source: fmt.Sprintf("%d.jpg", i), Request: fmt.Sprintf("req%d", i), Descriptor: axis(3+i, 1)}
		if err := AddFace(ctx, st, "team-a", e); err != nil {
			t.Fatal(err)
		}
	}
	if err := AddFace(ctx, st, "team-b", Entry{Person: "Zoe", ID: "z1", Descriptor: axis(100, 1)}); err != nil {
		t.Fatal(err)
	}
	refresh(t, "default", "team-a", "team-b")
	refresh(t)
	if got := searcher.Collections(); strings.Join(got, ",") != "default,team-a,team-b" {
		t.Fatalf("collections %v", got)
	}
	faces := func(f *Follower, c string) int { return f.View(c).Len() }
	if faces(searcher, DefaultCollection) != 3 || faces(searcher, "team-a") != 20 || faces(index, "team-b") != 1 {
		t.Fatalf("faces default %d team-a %d team-b %d", faces(searcher, DefaultCollection), faces(searcher, "team-a"), faces(index, "team-b"))
	}
	// A collection is searched on its own.
	if m := searcher.View("team-b").Search([]face.Descriptor{axis(3, 1)}, 5, ""); len(m[0]) != 1 || m[0][0].Person != "Zoe" {
		t.Fatalf("team-b search = %v", m)
	}
	if got := index.View("team-a").Faces("P1"); len(got) != 4 || got[0] != (FaceInfo{Person: "P1", ID: "id01", Source: "1.jpg", Request: "req1", Enrolled: got[0].Enrolled}) || got[0].Enrolled.IsZero() {
		t.Fatalf("P1's faces %+v", got)
	}

	stats, err := Compact(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Collections != 3 || stats.Folded != 21 || stats.Migrated != 3 {
		t.Fatalf("compaction %+v", stats)
	}
	if keys, _ := st.List(ctx, Prefix); len(keys) != 0 {
		t.Fatalf("legacy entries left after the migration: %v", keys)
	}
	if keys, _ := st.List(ctx, collectionPrefix("team-a")+logDir); len(keys) != 0 {
		t.Fatalf("log left after compaction: %v", keys)
	}
	refresh(t, "default", "team-a", "team-b")
	if faces(searcher, DefaultCollection) != 3 || faces(index, "team-a") != 20 || index.View(DefaultCollection).Faces("Paul")[1].Source != "old.jpg" {
		t.Fatalf("after compaction: default %d team-a %d", faces(searcher, DefaultCollection), faces(index, "team-a"))
	}
	if searcher.legacyOpen {
		t.Error("the follower still lists legacy entries after they were migrated")
	}
	if name, _ := searcher.View(DefaultCollection).Match(axis(2, 1), DefaultThreshold, false); name != "Emily" {
		t.Errorf("migrated Emily matched as %s", name)
	}

	// Erasing P3 of team-a: gone for followers at once, from every object
	// once the compaction has removed the event.
	key, err := Append(ctx, st, "team-a", Event{Op: OpDeletePerson, Person: "P3"})
	if err != nil {
		t.Fatal(err)
	}
	refresh(t, "team-a")
	if faces(searcher, "team-a") != 17 || len(index.View("team-a").Faces("P3")) != 0 {
		t.Fatalf("P3 still followed: %d faces", faces(searcher, "team-a"))
	}
	if gone, err := EventGone(ctx, st, key); err != nil || gone {
		t.Fatalf("EventGone before compaction = %v, %v", gone, err)
	}
	if _, err := Compact(ctx, st); err != nil {
		t.Fatal(err)
	}
	if gone, err := EventGone(ctx, st, key); err != nil || !gone {
		t.Fatalf("EventGone after compaction = %v, %v", gone, err)
	}
	for k, b := range objects(t, st) {
		if strings.Contains(k, "P3") || bytes.Contains(b, []byte("P3")) || bytes.Contains(b, []byte("req3")) {
			t.Errorf("object %s still names the erased person", k)
		}
	}
	refresh(t, "team-a")
	if faces(searcher, "team-a") != 17 || faces(index, "team-a") != 17 {
		t.Fatalf("after the erasure's compaction: %d faces", faces(searcher, "team-a"))
	}
	// Nothing left to do: a pass changes nothing, and so does a refresh.
	before := objects(t, st)
	if stats, err := Compact(ctx, st); err != nil || stats != (CompactStats{}) {
		t.Fatalf("idle compaction = %+v, %v", stats, err)
	}
	if after := objects(t, st); len(after) != len(before) {
		t.Fatalf("idle compaction changed the store: %d objects, had %d", len(after), len(before))
	}
	refresh(t)
}

// TestSmallSegmentsMerge enrols a face at a time with a compaction after
// each: the small segments this makes are merged, so there are never more
// than one per half a segment of faces plus a few, and every face is
// still there.
func TestSmallSegmentsMerge(t *testing.T) {
	small(t, 16, 8)
	ctx := context.Background()
	st := openStore(t)
	for i := range 40 {
		if err := AddFace(ctx, st, "c", Entry{Person: fmt.Sprintf("P%d", i%7), ID: fmt.Sprintf("f%d", i), Descriptor: axis(i, 1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := Compact(ctx, st); err != nil {
			t.Fatal(err)
		}
		keys, err := st.List(ctx, collectionPrefix("c")+segmentDir)
		if err != nil {
			t.Fatal(err)
		}
		if segs, bound := len(keys)/2, (i+1)/(segmentFaces/2)+mergeAfter+1; segs > bound {
			t.Fatalf("after %d enrolments %d segments", i+1, segs)
		}
	}
	f, err := Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	v := f.View("c")
	if v.Len() != 40 {
		t.Fatalf("%d faces, want 40", v.Len())
	}
	for i := range 40 {
		if m := v.Search([]face.Descriptor{axis(i, 1)}, 1, "")[0]; m[0].FaceID != fmt.Sprintf("f%d", i) || m[0].Distance > 1e-6 {
			t.Fatalf("face %d found as %+v", i, m)
		}
	}
}

// TestDamagedSegment: a segment whose bytes do not match its manifest fails
// the refresh, naming it, and the previous view stays in use.
func TestDamagedSegment(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := AddFace(ctx, st, "c", Entry{Person: "Ada", ID: "a", Descriptor: axis(0, 1)}); err != nil {
		t.Fatal(err)
	}
	f := NewFollower(st)
	if _, err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(ctx, st); err != nil {
		t.Fatal(err)
	}
	keys, _ := st.List(ctx, collectionPrefix("c")+segmentDir)
	var desc string
	for _, k := range keys {
		if strings.HasSuffix(k, descExt) {
			desc = k
		}
	}
	b, _ := st.Get(ctx, desc)
	b[7] ^= 1
	if err := st.Put(ctx, desc, b, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Refresh(ctx); err == nil || !strings.Contains(err.Error(), desc) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Refresh of a damaged segment = %v, want a checksum error naming %s", err, desc)
	}
	if f.View("c").Len() != 1 {
		t.Fatal("the failed refresh dropped the view")
	}
}

// TestConcurrentCompaction enrols and deletes from several goroutines
// while a compactor runs passes and followers refresh: every follower
// refresh that succeeds sees a consistent collection, and at the end every
// follower holds exactly the faces that should remain.
func TestConcurrentCompaction(t *testing.T) {
	small(t, 32, 8)
	ctx := context.Background()
	dir := t.TempDir()
	st := openStoreAt(t, dir)
	var wg sync.WaitGroup
	const writers, each = 4, 30
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%02d", w, i)
				if err := AddFace(ctx, st, "c", Entry{Person: fmt.Sprintf("W%d", w), ID: id, Descriptor: axis((w*each+i)%128, 1+float32(w))}); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 2 { // every third face is deleted again
					if _, err := Append(ctx, st, "c", Event{Op: OpDelete, Person: fmt.Sprintf("W%d", w), ID: id}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	done := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		cp := &Compactor{Store: st}
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := cp.Pass(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	f := NewFollower(st)
	bg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			// A refresh may fail when a compaction deleted what it was
			// about to read; one that succeeds must be consistent.
			if _, err := f.Refresh(ctx); err == nil {
				v := f.View("c")
				n := 0
				for _, p := range v.Persons() {
					n += p.Faces
				}
				if n != v.Len() {
					t.Errorf("view counts %d faces by person, %d in all", n, v.Len())
				}
			}
		}
	})
	wg.Wait()
	close(done)
	bg.Wait()
	if _, err := Compact(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, fl := range []*Follower{f, NewIndexFollower(openStoreAt(t, dir))} {
		if _, err := fl.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		v := fl.View("c")
		if want := writers * each * 2 / 3; v.Len() != want {
			t.Fatalf("%d faces at the end, want %d", v.Len(), want)
		}
		for w := range writers {
			for i := range each {
				_, ok := v.Face(fmt.Sprintf("W%d", w), fmt.Sprintf("w%d-%02d", w, i))
				if ok != (i%3 != 2) {
					t.Fatalf("face w%d-%02d present %v", w, i, ok)
				}
			}
		}
	}
}

func openStoreAt(t *testing.T, dir string) platform.Store {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	return openStoreDir(t, dir)
}

// compactingStore is a store on which, for the first `races` listings of
// the collections, a face is enrolled just before the listing and a
// compaction folds it just after: it stands in for an enrolment and a
// compactor on other machines finishing between a follower's listing and
// its reads.
type compactingStore struct {
	platform.Store
	t       *testing.T
	races   int
	enrolls int
}

func (s *compactingStore) List(ctx context.Context, prefix string) ([]string, error) {
	race := prefix == CollectionsPrefix && s.races > 0
	if race {
		s.races--
		s.enrolls++
		if err := AddFace(ctx, s.Store, "team-a", Entry{Person: "Racer", ID: fmt.Sprintf("race%d", s.enrolls), Descriptor: axis(50+s.enrolls, 1)}); err != nil {
			s.t.Fatal(err)
		}
	}
	keys, err := s.Store.List(ctx, prefix)
	if race {
		if _, cerr := Compact(ctx, s.Store); cerr != nil {
			s.t.Fatal(cerr)
		}
	}
	return keys, err
}

// TestRefreshRacesCompaction checks that a refresh whose listing a
// compaction makes stale lists again rather than failing, and that a
// refresh that failed leaves its changes to be published by the next.
func TestRefreshRacesCompaction(t *testing.T) {
	small(t, 8, 4)
	ctx := context.Background()
	st := openStore(t)
	for i := range 5 {
		if err := AddFace(ctx, st, "team-a", Entry{Person: fmt.Sprintf("P%d", i%3), ID: fmt.Sprintf("id%02d", i), Descriptor: axis(i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	racing := &compactingStore{Store: st, t: t, races: 1}
	f := NewFollower(racing)
	changed, err := f.Refresh(ctx)
	if err != nil || strings.Join(changed, ",") != "team-a" || f.View("team-a").Len() != 6 {
		t.Fatalf("refresh racing a compaction = %v, %v, %d faces; want team-a with 6", changed, err, f.View("team-a").Len())
	}
	// A race at every listing: the refresh fails and keeps the view it
	// had; the next one publishes the collection.
	racing.races = refreshAttempts
	if _, err := f.Refresh(ctx); err == nil || !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("refresh racing a compaction at each listing = %v, want not found", err)
	}
	if n := f.View("team-a").Len(); n != 6 {
		t.Fatalf("after a failed refresh the view has %d faces, want the 6 it had", n)
	}
	changed, err = f.Refresh(ctx)
	if err != nil || strings.Join(changed, ",") != "team-a" || f.View("team-a").Len() != 9 {
		t.Fatalf("refresh after a failed one = %v, %v, %d faces; want team-a with 9", changed, err, f.View("team-a").Len())
	}
}
