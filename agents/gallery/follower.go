package gallery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/facecloud/facecloud/agents/platform"
)

// Follower keeps a current View of every collection of a store: a worker's
// (descriptors converted for the search) or a web host's (the index only, for
// listing and erasure). Refresh lists CollectionsPrefix once; only what
// changed is read: a new manifest and the segments it adds, and new log
// events. Polling every two seconds therefore costs one List call when
// nothing changed, and a worker starting cold reads each segment once.
//
// Legacy entries (gallery/<person>/<id>.json, one object per face, as
// earlier versions stored the default collection) are part of the default
// collection until the compaction migrates them; a Follower stops listing
// them once it has seen none.
type Follower struct {
	store platform.Store
	mode  mode

	mu         sync.Mutex // serialises Refresh
	cols       map[string]*followed
	legacyOpen bool
	legacy     map[string]Entry
	loaded     int64 // descriptor bytes read by the current refresh
	// legacyMoved is set when the legacy entries changed and the default
	// collection's view is not rebuilt yet; unpublished are the
	// collections whose view changed since views was last stored. Both
	// outlive a failed refresh, so the next one publishes its work.
	legacyMoved bool
	unpublished map[string]bool
	sinceGC     int64 // descriptor bytes read since the last runtime.GC

	views atomic.Pointer[map[string]*View]
}

// followed is what a Follower knows of one collection.
type followed struct {
	manifestID string
	man        *manifest
	segs       map[string]*segment
	events     map[string]Event // unfolded log events by id
	view       *View
}

// NewFollower follows the collections of store for searching them.
func NewFollower(store platform.Store) *Follower { return newFollower(store, forSearch) }

// NewIndexFollower follows the collections of store without their
// descriptors: listings and erasures only, in a tenth of the memory.
func NewIndexFollower(store platform.Store) *Follower { return newFollower(store, forIndex) }

func newFollower(store platform.Store, m mode) *Follower {
	f := &Follower{store: store, mode: m, cols: map[string]*followed{}, legacyOpen: true, legacy: map[string]Entry{}, unpublished: map[string]bool{}}
	f.views.Store(&map[string]*View{})
	return f
}

// View returns collection c as last refreshed; a collection with no face
// yet is an empty View. It never blocks on the store.
func (f *Follower) View(c string) *View {
	if v, ok := (*f.views.Load())[c]; ok {
		return v
	}
	return &View{collection: c}
}

// Collections lists the collections seen at the last refresh, sorted.
func (f *Follower) Collections() []string {
	return slices.Sorted(maps.Keys(*f.views.Load()))
}

// Has reports whether collection c was seen at the last refresh.
func (f *Follower) Has(c string) bool {
	_, ok := (*f.views.Load())[c]
	return ok
}

// Faces is the number of faces of every collection together.
func (f *Follower) Faces() int {
	n := 0
	for _, v := range *f.views.Load() {
		n += v.Len()
	}
	return n
}

// Refresh reads what changed since the last refresh and publishes the new
// views; it reports the collections that changed. On error the previous
// views stay current (what was read is kept for the next try).
func (f *Follower) Refresh(ctx context.Context) (changed []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A compaction that ends between the listing and the reads deletes
	// what the listing named (folded events, replaced manifests): listing
	// again finds its new manifest. A compaction during the listing cannot
	// hide both: it writes its manifest before deleting the events it
	// folds, and manifests/ sorts after log/, so by the Store's listing
	// order a listing that missed an event holds the manifest.
	for attempt := 1; ; attempt++ {
		err = f.refresh(ctx)
		if err == nil || !errors.Is(err, platform.ErrNotFound) || attempt == refreshAttempts || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if len(f.unpublished) > 0 {
		views := make(map[string]*View, len(f.cols))
		for c, st := range f.cols {
			views[c] = st.view
		}
		f.views.Store(&views)
		changed = slices.Sorted(maps.Keys(f.unpublished))
		clear(f.unpublished)
	}
	if f.loaded >= 64<<20 {
		// A cold load leaves the segments' raw bytes behind: give the
		// memory back now rather than holding twice the gallery until the
		// collector's next cycle.
		debug.FreeOSMemory()
	}
	f.loaded = 0
	return changed, nil
}

// refreshAttempts bounds the listings of one Refresh that races compactions.
const refreshAttempts = 3

// refresh is one listing and the reads it calls for.
func (f *Follower) refresh(ctx context.Context) error {
	keys, err := f.store.List(ctx, CollectionsPrefix)
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	listed := groupListing(keys)
	if f.legacyOpen {
		legacyChanged, err := f.refreshLegacy(ctx)
		if err != nil {
			return err
		}
		f.legacyMoved = f.legacyMoved || legacyChanged
		if _, ok := listed[DefaultCollection]; !ok && len(f.legacy) > 0 {
			listed[DefaultCollection] = &listing{}
		}
	}
	next := map[string]*followed{}
	for c, l := range listed {
		st := f.cols[c]
		if st == nil {
			st = &followed{segs: map[string]*segment{}, events: map[string]Event{}}
		}
		moved, err := f.follow(ctx, c, l, st)
		if err != nil {
			return err
		}
		if moved || st.view == nil || (c == DefaultCollection && f.legacyMoved) {
			var legacy []Entry
			if c == DefaultCollection {
				legacy = f.legacyEntries()
				f.legacyMoved = false
			}
			st.view = buildView(c, f.segments(st), legacy, sortedEvents(st.events), f.mode)
			f.unpublished[c] = true
		}
		next[c] = st
	}
	for c := range f.cols {
		if _, ok := next[c]; !ok {
			f.unpublished[c] = true
		}
	}
	f.cols = next
	return nil
}

// listing is what one List showed of a collection.
type listing struct {
	manifests []string // ids, oldest first
	logs      []string // ids, oldest first
}

func groupListing(keys []string) map[string]*listing {
	out := map[string]*listing{}
	for _, k := range keys {
		c, kind, id := parseCollectionKey(k)
		if kind == kindOther {
			continue
		}
		l := out[c]
		if l == nil {
			l = &listing{}
			out[c] = l
		}
		switch kind {
		case kindManifest:
			l.manifests = append(l.manifests, id)
		case kindLog:
			l.logs = append(l.logs, id)
		}
	}
	for _, l := range out {
		slices.Sort(l.manifests)
		slices.Sort(l.logs)
	}
	return out
}

// follow brings st up to the listing: the latest manifest with its
// segments, and the log events it does not fold. It reports whether
// anything changed; st is changed only when all of it was read.
func (f *Follower) follow(ctx context.Context, c string, l *listing, st *followed) (bool, error) {
	moved := false
	man, manID, segs := st.man, st.manifestID, st.segs
	if n := len(l.manifests); n > 0 && l.manifests[n-1] != st.manifestID {
		manID = l.manifests[n-1]
		var err error
		if man, err = readManifest(ctx, f.store, c, manID); err != nil {
			return false, err
		}
		if segs, err = f.loadSegments(ctx, c, man, st.segs); err != nil {
			return false, err
		}
		moved = true
	}
	folded := map[string]bool{}
	if man != nil {
		for _, id := range man.Folded {
			folded[id] = true
		}
	}
	var want []string
	for _, id := range l.logs {
		if !folded[id] {
			want = append(want, id)
		}
	}
	var missing []string
	for _, id := range want {
		if _, ok := st.events[id]; !ok {
			missing = append(missing, id)
		}
	}
	got, err := readEvents(ctx, f.store, c, missing)
	if err != nil {
		return false, err
	}
	events := make(map[string]Event, len(want))
	for _, id := range want {
		if e, ok := st.events[id]; ok {
			events[id] = e
		} else {
			events[id] = got[id]
		}
	}
	if len(events) != len(st.events) || len(missing) > 0 {
		moved = true
	}
	st.man, st.manifestID, st.segs, st.events = man, manID, segs, events
	return moved, nil
}

// segments are st's segments in the manifest's order.
func (f *Follower) segments(st *followed) []*segment {
	if st.man == nil {
		return nil
	}
	out := make([]*segment, 0, len(st.man.Segments))
	for _, ref := range st.man.Segments {
		out = append(out, st.segs[ref.ID])
	}
	return out
}

// loadSegments returns man's segments, reusing those in have and reading
// the others, a few at a time.
func (f *Follower) loadSegments(ctx context.Context, c string, man *manifest, have map[string]*segment) (map[string]*segment, error) {
	out := make(map[string]*segment, len(man.Segments))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	// Converting a segment is CPU work: one per core. The index alone is
	// mostly waiting for the store: a few at once.
	if f.mode == forSearch {
		g.SetLimit(runtime.GOMAXPROCS(0))
	} else {
		g.SetLimit(8)
	}
	var missing []segmentRef
	for _, ref := range man.Segments {
		if s, ok := have[ref.ID]; ok {
			out[ref.ID] = s
		} else {
			missing = append(missing, ref)
		}
	}
	for _, ref := range missing {
		g.Go(func() error {
			s, err := readSegment(gctx, f.store, c, ref, f.mode)
			if err != nil {
				return err
			}
			mu.Lock()
			out[ref.ID] = s
			// Keep what was read even if another segment fails: the next
			// refresh need not read it again.
			have[ref.ID] = s
			collect := false
			if f.mode == forSearch {
				f.loaded += int64(ref.Faces) * descBytes
				f.sinceGC += int64(ref.Faces) * descBytes
				collect = f.sinceGC >= gcEvery
				if collect {
					f.sinceGC = 0
				}
			}
			mu.Unlock()
			if collect {
				// The segments' raw bytes are garbage once converted: collect
				// them every few segments, so the next are read into the
				// same memory instead of the heap growing to twice the
				// gallery before the collector's own next cycle.
				runtime.GC()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func readManifest(ctx context.Context, store platform.Store, c, id string) (*manifest, error) {
	key := manifestKey(c, id)
	b, err := store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	return decodeManifest(c, key, b)
}

// readSegment reads and checks a segment's objects.
func readSegment(ctx context.Context, store platform.Store, c string, ref segmentRef, m mode) (*segment, error) {
	index, err := store.Get(ctx, indexKey(c, ref.ID))
	if err != nil {
		return nil, fmt.Errorf("read segment index %s: %w", indexKey(c, ref.ID), err)
	}
	if checksum(index) != ref.IndexCRC {
		return nil, fmt.Errorf("segment index %s: checksum mismatch (damaged or truncated)", indexKey(c, ref.ID))
	}
	var desc []byte
	if m != forIndex {
		if desc, err = store.Get(ctx, descKey(c, ref.ID)); err != nil {
			return nil, fmt.Errorf("read segment %s: %w", descKey(c, ref.ID), err)
		}
		if checksum(desc) != ref.DescCRC {
			return nil, fmt.Errorf("segment %s: checksum mismatch (damaged or truncated)", descKey(c, ref.ID))
		}
	}
	return decodeSegment(ref.ID, ref.Faces, desc, index, m)
}

// gcEvery is how many descriptor bytes a load reads between collections.
const gcEvery = 96 << 20

// eventReaders bounds concurrent Gets of log events (S3 latency dominates).
const eventReaders = 16

// readEvents reads log events by id.
func readEvents(ctx context.Context, store platform.Store, c string, ids []string) (map[string]Event, error) {
	out := make(map[string]Event, len(ids))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(eventReaders)
	for _, id := range ids {
		g.Go(func() error {
			key := LogKey(c, id)
			b, err := store.Get(gctx, key)
			if errors.Is(err, platform.ErrNotFound) {
				// Folded and deleted by a compaction since the listing: the
				// next refresh sees the manifest that holds it.
				return fmt.Errorf("read gallery event %s: folded meanwhile, %w", key, err)
			}
			if err != nil {
				return fmt.Errorf("read gallery event %s: %w", key, err)
			}
			e, err := decodeEvent(key, b)
			if err != nil {
				return err
			}
			mu.Lock()
			out[id] = e
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func sortedEvents(m map[string]Event) []Event {
	out := make([]Event, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// refreshLegacy re-lists gallery/ and reads entries not seen before; it
// stops looking once there are none.
func (f *Follower) refreshLegacy(ctx context.Context) (bool, error) {
	keys, err := f.store.List(ctx, Prefix)
	if err != nil {
		return false, fmt.Errorf("list legacy gallery: %w", err)
	}
	keys = entryKeys(keys)
	var missing []string
	for _, k := range keys {
		if _, ok := f.legacy[k]; !ok {
			missing = append(missing, k)
		}
	}
	got, err := fetch(ctx, f.store, missing)
	if err != nil {
		return false, err
	}
	next := make(map[string]Entry, len(keys))
	for _, k := range keys {
		if e, ok := f.legacy[k]; ok {
			next[k] = e
		}
	}
	for i, k := range missing {
		next[k] = got[i]
	}
	changed := len(next) != len(f.legacy) || len(missing) > 0
	f.legacy = next
	if len(keys) == 0 {
		f.legacyOpen = false
	}
	return changed, nil
}

func (f *Follower) legacyEntries() []Entry {
	out := make([]Entry, 0, len(f.legacy))
	for _, k := range slices.Sorted(maps.Keys(f.legacy)) {
		out = append(out, f.legacy[k])
	}
	return out
}

// Run refreshes every interval until ctx ends, logging what changed and
// failures (the last good views stay in use).
func (f *Follower) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := f.Refresh(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("gallery refresh failed; keeping the previous gallery", "err", err)
			continue
		}
		for _, c := range changed {
			log.Info("gallery loaded", "collection", c, "faces", f.View(c).Len(), "collections", len(f.Collections()))
		}
	}
}
