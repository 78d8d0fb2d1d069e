package gallery

import (
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// View is one collection's faces at one moment: the snapshot's segments,
// the faces the log deleted from them, and the faces the log added (one
// more segment). It is immutable and safe for concurrent use; a Follower
// publishes a new View when the collection changes.
type View struct {
	collection string
	segs       []*segment
	// dead marks deleted rows, per segment; nil when none is.
	dead  [][]uint64
	faces int

	personsOnce sync.Once
	persons     []PersonCount
}

// PersonCount is a person and how many faces they have.
type PersonCount struct {
	Name  string `json:"name"`
	Faces int    `json:"faces"`
}

// Collection is the view's collection name.
func (v *View) Collection() string { return v.collection }

// Len is the number of faces.
func (v *View) Len() int { return v.faces }

func (v *View) live(s, r int) bool {
	d := v.dead[s]
	return d == nil || d[r>>6]&(1<<(r&63)) == 0
}

// Persons lists the collection's persons, sorted by name, with their faces.
func (v *View) Persons() []PersonCount {
	v.personsOnce.Do(func() {
		counts := map[string]int{}
		for si, s := range v.segs {
			for r := range s.n {
				if v.live(si, r) {
					counts[s.personOf(r)]++
				}
			}
		}
		v.persons = make([]PersonCount, 0, len(counts))
		for name, n := range counts {
			v.persons = append(v.persons, PersonCount{Name: name, Faces: n})
		}
		slices.SortFunc(v.persons, func(a, b PersonCount) int { return strings.Compare(a.Name, b.Name) })
	})
	return v.persons
}

// Faces lists person's faces, sorted by id.
func (v *View) Faces(person string) []FaceInfo {
	var out []FaceInfo
	for si, s := range v.segs {
		lo, hi := s.personRange(person)
		for r := lo; r < hi; r++ {
			if v.live(si, r) {
				out = append(out, s.info(r))
			}
		}
	}
	slices.SortFunc(out, func(a, b FaceInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Face returns person's face id.
func (v *View) Face(person, id string) (FaceInfo, bool) {
	for si, s := range v.segs {
		if r, ok := s.find(person, id); ok && v.live(si, r) {
			return s.info(r), true
		}
	}
	return FaceInfo{}, false
}

// overlay is the log applied to a snapshot: rows of the snapshot's
// segments deleted, and faces added (keyed by person and id).
type overlay struct {
	segs []*segment
	dead [][]uint64
	adds map[faceKey]Entry
}

type faceKey struct{ person, id string }

func newOverlay(segs []*segment) *overlay {
	return &overlay{segs: segs, dead: make([][]uint64, len(segs)), adds: map[faceKey]Entry{}}
}

func (o *overlay) kill(s, r int) {
	if o.dead[s] == nil {
		o.dead[s] = make([]uint64, (o.segs[s].n+63)/64)
	}
	o.dead[s][r>>6] |= 1 << (r & 63)
}

// killBase deletes person's face id from the snapshot.
func (o *overlay) killBase(person, id string) {
	for si, s := range o.segs {
		if r, ok := s.find(person, id); ok {
			o.kill(si, r)
		}
	}
}

// apply applies one event.
func (o *overlay) apply(e Event) {
	switch e.Op {
	case OpAdd:
		o.add(e.entry())
	case OpDelete:
		k := faceKey{e.Person, e.ID}
		delete(o.adds, k)
		o.killBase(e.Person, e.ID)
	case OpDeletePerson:
		for k := range o.adds {
			if k.person == e.Person {
				delete(o.adds, k)
			}
		}
		for si, s := range o.segs {
			lo, hi := s.personRange(e.Person)
			for r := lo; r < hi; r++ {
				o.kill(si, r)
			}
		}
	}
}

// add adds e, replacing the face of the same person and id.
func (o *overlay) add(e Entry) {
	k := faceKey{e.Person, e.ID}
	if _, ok := o.adds[k]; !ok {
		o.killBase(e.Person, e.ID)
	}
	o.adds[k] = e
}

// records are the added faces, sorted by person and id.
func (o *overlay) records() []record {
	recs := make([]record, 0, len(o.adds))
	for _, e := range o.adds {
		recs = append(recs, entryRecord(e))
	}
	slices.SortFunc(recs, compareRecords)
	return recs
}

// deadCount is how many snapshot rows are deleted.
func (o *overlay) deadCount(s int) int {
	n := 0
	for _, w := range o.dead[s] {
		n += bits.OnesCount64(w)
	}
	return n
}

// view builds the View of the snapshot with the overlay: the added faces
// become one more segment (in mode m).
func (o *overlay) view(collection string, m mode) *View {
	v := &View{collection: collection, segs: slices.Clone(o.segs), dead: slices.Clone(o.dead)}
	for si, s := range o.segs {
		v.faces += s.n - o.deadCount(si)
	}
	if len(o.adds) > 0 {
		v.segs = append(v.segs, buildSegment("", o.records(), m))
		v.dead = append(v.dead, nil)
		v.faces += len(o.adds)
	}
	return v
}

// buildView applies legacy entries (first) and log events (in order) to
// the snapshot's segments.
func buildView(collection string, segs []*segment, legacy []Entry, events []Event, m mode) *View {
	o := newOverlay(segs)
	for _, e := range legacy {
		o.add(e)
	}
	for _, e := range events {
		o.apply(e)
	}
	return o.view(collection, m)
}

// ViewOf builds a View of entries (for tests and one-off tools).
func ViewOf(collection string, entries []Entry) *View {
	return buildView(collection, nil, entries, nil, forSearch)
}
