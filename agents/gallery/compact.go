package gallery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/facecloud/facecloud/agents/platform"
)

// Compaction folds a collection's log into a new snapshot. It must run in
// one process at a time per store (the acting scaler, or facecloud local):
// it is the only writer of manifests and segments and the only one that
// deletes log events. One pass:
//
//  1. reads the latest manifest's segment indexes and the log events it
//     does not fold (and, for the default collection, the legacy entries);
//  2. rewrites the segments that lost faces, puts the added faces in a new
//     segment, and merges small segments once there are several;
//  3. writes the new segments, then the manifest naming them and the events
//     it folded — from then on readers use it;
//  4. deletes what it replaced at once: the old manifests, the segments no
//     longer named (so an erased face's descriptor leaves the store), the
//     folded events and the migrated legacy entries. A reader still
//     loading the old manifest fails that refresh and takes the new one at
//     its next.
//
// Deleting the folded events last makes their absence the sign that a
// deletion is fully done: an erasure waits for its event to go (EventGone).

// Compaction bounds.
const (
	// mergeAfter is how many small segments (under half of segmentFaces)
	// may exist before they are merged.
	mergeAfter = 4
	// orphanAge is how old a segment no manifest names must be before it
	// is deleted (one left by a compaction that stopped half-way).
	orphanAge = time.Minute
)

// maxFold bounds the events one pass folds (the rest wait for the next),
// which bounds its memory.
func maxFold() int { return 4 * segmentFaces }

func smallSegment() int { return segmentFaces / 2 }

// CompactStats says what one compaction pass did.
type CompactStats struct {
	Collections int
	Folded      int
	Migrated    int
	Segments    int
	Deleted     int
}

// Compact runs one compaction pass over every collection of store.
func Compact(ctx context.Context, store platform.Store) (CompactStats, error) {
	return (&Compactor{Store: store}).Pass(ctx)
}

// Pass runs one compaction pass over every collection. Leading is asked
// before each manifest is published, so a process that has lost its
// election stops writing.
func (cp *Compactor) Pass(ctx context.Context) (CompactStats, error) {
	store := cp.Store
	var st CompactStats
	keys, err := store.List(ctx, CollectionsPrefix)
	if err != nil {
		return st, fmt.Errorf("compact: list collections: %w", err)
	}
	legacyKeys, err := store.List(ctx, Prefix)
	if err != nil {
		return st, fmt.Errorf("compact: list legacy gallery: %w", err)
	}
	legacyKeys = entryKeys(legacyKeys)
	segKeys := map[string]map[string]bool{}
	for _, k := range keys {
		c, kind, id := parseCollectionKey(k)
		if kind == kindDesc || kind == kindIndex {
			if segKeys[c] == nil {
				segKeys[c] = map[string]bool{}
			}
			segKeys[c][id] = true
		}
	}
	listed := groupListing(keys)
	if len(legacyKeys) > 0 && listed[DefaultCollection] == nil {
		listed[DefaultCollection] = &listing{}
	}
	var errs []error
	for _, c := range slices.Sorted(func(yield func(string) bool) {
		for c := range listed {
			if !yield(c) {
				return
			}
		}
	}) {
		var legacy []string
		if c == DefaultCollection {
			legacy = legacyKeys
		}
		if err := cp.collection(ctx, c, listed[c], segKeys[c], legacy, &st); err != nil {
			errs = append(errs, fmt.Errorf("compact collection %s: %w", c, err))
		}
	}
	return st, errors.Join(errs...)
}

func (cp *Compactor) collection(ctx context.Context, c string, l *listing, segKeys map[string]bool, legacyKeys []string, st *CompactStats) error {
	store, leading, log := cp.Store, cp.Leading, cp.Logger
	var man *manifest
	if n := len(l.manifests); n > 0 {
		var err error
		if man, err = cp.manifest(ctx, c, l.manifests[n-1]); err != nil {
			return err
		}
	} else {
		man = &manifest{V: Version, Collection: c}
	}
	folded := map[string]bool{}
	for _, id := range man.Folded {
		folded[id] = true
	}
	var pending, stale []string // events to fold; folded ones still in the log
	for _, id := range l.logs {
		if folded[id] {
			stale = append(stale, id)
		} else if len(pending) < maxFold() {
			pending = append(pending, id)
		}
	}
	if len(pending) == 0 && len(legacyKeys) == 0 {
		return cp.collectGarbage(ctx, c, l, man, segKeys, stale, st)
	}
	events, err := readEvents(ctx, store, c, pending)
	if err != nil {
		return err
	}
	legacy, err := fetch(ctx, store, legacyKeys)
	if err != nil {
		return err
	}
	// The snapshot's indexes say which faces the log deletes.
	segs := make([]*segment, len(man.Segments))
	for i, ref := range man.Segments {
		if segs[i], err = readSegment(ctx, store, c, ref, forIndex); err != nil {
			return err
		}
	}
	o := newOverlay(segs)
	for _, e := range legacy {
		o.add(e)
	}
	for _, id := range pending {
		o.apply(events[id])
	}

	var keep []segmentRef  // unchanged
	var small []segmentRef // unchanged but small: merged once there are several
	var pool []record      // faces for new segments
	for i, ref := range man.Segments {
		dead := o.deadCount(i)
		switch {
		case dead == 0 && ref.Faces < smallSegment():
			small = append(small, ref)
		case dead == 0:
			keep = append(keep, ref)
		case dead < ref.Faces:
			recs, err := liveRecords(ctx, store, c, ref, o.dead[i])
			if err != nil {
				return err
			}
			if len(recs) >= smallSegment() {
				written, err := writeSegments(ctx, store, c, recs)
				if err != nil {
					return err
				}
				keep = append(keep, written...)
				st.Segments += len(written)
			} else {
				pool = append(pool, recs...)
			}
		}
	}
	pool = append(pool, o.records()...)
	if len(small)+1 > mergeAfter && len(pool) > 0 || len(small) > mergeAfter {
		for _, ref := range small {
			recs, err := liveRecords(ctx, store, c, ref, nil)
			if err != nil {
				return err
			}
			pool = append(pool, recs...)
		}
		small = nil
	}
	slices.SortFunc(pool, compareRecords)
	written, err := writeSegments(ctx, store, c, pool)
	if err != nil {
		return err
	}
	st.Segments += len(written)

	next := manifest{V: Version, Collection: c, Created: time.Now().UTC(), Segments: append(append(keep, small...), written...)}
	for _, ref := range next.Segments {
		next.Faces += ref.Faces
	}
	next.Folded = append(append(next.Folded, stale...), pending...)
	if leading != nil && !leading() {
		return errors.New("no longer the elected compactor; the new segments are left for the next one to collect")
	}
	id, err := nextManifestID(l)
	if err != nil {
		return err
	}
	if err := putJSON(ctx, store, manifestKey(c, id), next); err != nil {
		return fmt.Errorf("publish manifest: %w", err)
	}
	st.Collections++
	st.Folded += len(pending)
	st.Migrated += len(legacy)
	if log != nil {
		log.Info("gallery compacted", "collection", c, "faces", next.Faces, "segments", len(next.Segments),
			"folded", len(pending), "migrated", len(legacy), "written", st.Segments)
	}
	l = &listing{manifests: append(slices.Clone(l.manifests), id), logs: l.logs}
	for _, ref := range next.Segments {
		if segKeys == nil {
			segKeys = map[string]bool{}
		}
		segKeys[ref.ID] = true
	}
	cp.remember(manifestKey(c, id), &next)
	if err := cp.collectGarbage(ctx, c, l, &next, segKeys, next.Folded, st); err != nil {
		return err
	}
	for _, k := range legacyKeys {
		if err := store.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete migrated legacy entry: %w", err)
		}
	}
	return nil
}

// collectGarbage deletes, for the latest manifest man: the older manifests,
// the segments it does not name (at once if an older manifest named them,
// else once they are orphanAge old), and the log events it folded.
func (cp *Compactor) collectGarbage(ctx context.Context, c string, l *listing, man *manifest, segKeys map[string]bool, folded []string, st *CompactStats) error {
	store := cp.Store
	named := map[string]bool{}
	for _, ref := range man.Segments {
		named[ref.ID] = true
	}
	replaced := map[string]bool{}
	for _, id := range l.manifests[:max(len(l.manifests)-1, 0)] {
		old, err := cp.manifest(ctx, c, id)
		if err == nil {
			for _, ref := range old.Segments {
				replaced[ref.ID] = true
			}
		} else if !errors.Is(err, platform.ErrNotFound) {
			return err
		}
	}
	for id := range segKeys {
		if named[id] || !replaced[id] && !older(id, orphanAge) {
			continue
		}
		for _, k := range []string{descKey(c, id), indexKey(c, id)} {
			if err := store.Delete(ctx, k); err != nil {
				return fmt.Errorf("delete replaced segment: %w", err)
			}
		}
		st.Deleted++
	}
	for _, id := range l.manifests[:max(len(l.manifests)-1, 0)] {
		if err := store.Delete(ctx, manifestKey(c, id)); err != nil {
			return fmt.Errorf("delete replaced manifest: %w", err)
		}
		delete(cp.manifests, manifestKey(c, id))
	}
	for _, id := range folded {
		if err := store.Delete(ctx, LogKey(c, id)); err != nil {
			return fmt.Errorf("delete folded event: %w", err)
		}
	}
	return nil
}

// older reports whether UUIDv7 id was made more than age ago.
func older(id string, age time.Duration) bool {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return false
	}
	sec, nsec := u.Time().UnixTime()
	return time.Since(time.Unix(sec, nsec)) > age
}

// liveRecords reads a segment's faces, leaving out the rows dead marks.
func liveRecords(ctx context.Context, store platform.Store, c string, ref segmentRef, dead []uint64) ([]record, error) {
	s, err := readSegment(ctx, store, c, ref, forRewrite)
	if err != nil {
		return nil, err
	}
	recs := make([]record, 0, s.n)
	for r := range s.n {
		if dead != nil && dead[r>>6]&(1<<(r&63)) != 0 {
			continue
		}
		recs = append(recs, record{FaceInfo: s.info(r), desc: s.desc[r*descBytes : (r+1)*descBytes]})
	}
	return recs, nil
}

// writeSegments stores recs (sorted) as segments of at most segmentFaces.
func writeSegments(ctx context.Context, store platform.Store, c string, recs []record) ([]segmentRef, error) {
	var refs []segmentRef
	for len(recs) > 0 {
		n := min(len(recs), segmentFaces)
		ref, err := writeSegment(ctx, store, c, recs[:n])
		if err != nil {
			return nil, err
		}
		refs = append(refs, ref)
		recs = recs[n:]
	}
	return refs, nil
}

func writeSegment(ctx context.Context, store platform.Store, c string, recs []record) (segmentRef, error) {
	desc, index := encodeSegment(recs)
	ref := segmentRef{ID: newID(), Faces: len(recs), DescCRC: checksum(desc), IndexCRC: checksum(index)}
	if err := store.Put(ctx, descKey(c, ref.ID), desc, "application/octet-stream"); err != nil {
		return ref, fmt.Errorf("write segment: %w", err)
	}
	if err := store.Put(ctx, indexKey(c, ref.ID), index, "application/octet-stream"); err != nil {
		return ref, fmt.Errorf("write segment index: %w", err)
	}
	return ref, nil
}

// nextManifestID is a new UUIDv7 that sorts after every listed manifest
// (readers take the last), even if the clock stepped back.
func nextManifestID(l *listing) (string, error) {
	last := ""
	if n := len(l.manifests); n > 0 {
		last = l.manifests[n-1]
	}
	for range 1000 {
		if id := newID(); id > last {
			return id, nil
		}
		time.Sleep(time.Millisecond)
	}
	return "", fmt.Errorf("the clock is behind the latest manifest %s: cannot name a newer one", last)
}

// EventGone reports whether log event key has been folded into a snapshot
// and removed from the log (so the faces it deleted are in no object).
func EventGone(ctx context.Context, store platform.Store, key string) (bool, error) {
	ok, err := store.Exists(ctx, key)
	if err != nil {
		return false, fmt.Errorf("look up gallery event: %w", err)
	}
	return !ok, nil
}

// Compactor compacts every Interval, while Leading says so.
type Compactor struct {
	Store    platform.Store
	Interval time.Duration
	// Leading, when set, says whether this process may compact now (the
	// scaler's election); nil always may.
	Leading func() bool
	Logger  *slog.Logger

	// manifests caches the manifests read, by key: they never change, and
	// a pass with nothing to do then costs only its List calls.
	manifests map[string]*manifest
}

func (cp *Compactor) manifest(ctx context.Context, c, id string) (*manifest, error) {
	if m, ok := cp.manifests[manifestKey(c, id)]; ok {
		return m, nil
	}
	m, err := readManifest(ctx, cp.Store, c, id)
	if err == nil {
		cp.remember(manifestKey(c, id), m)
	}
	return m, err
}

func (cp *Compactor) remember(key string, m *manifest) {
	if cp.manifests == nil {
		cp.manifests = map[string]*manifest{}
	}
	cp.manifests[key] = m
}

// Run compacts until ctx ends, logging failures (the next pass retries).
func (c *Compactor) Run(ctx context.Context) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	interval := c.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if c.Leading == nil || c.Leading() {
			if _, err := c.Pass(ctx); err != nil && ctx.Err() == nil {
				c.Logger.Warn("gallery compaction failed; the next pass retries", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Import writes the entries next yields as the first snapshot of
// collection c, which must have none yet: a large gallery loaded at once
// (the gallery benchmark, a migration) without a log event per face. It
// holds one segment of faces in memory at a time and returns how many it
// wrote. A face yielded twice within one segment is an error.
func Import(ctx context.Context, store platform.Store, c string, next func() (Entry, bool)) (int, error) {
	if err := ValidCollection(c); err != nil {
		return 0, err
	}
	keys, err := store.List(ctx, collectionPrefix(c)+manifestDir)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	if len(keys) > 0 {
		return 0, fmt.Errorf("import: collection %s already has a snapshot", c)
	}
	man := manifest{V: Version, Collection: c, Created: time.Now().UTC()}
	var recs []record
	flush := func() error {
		slices.SortFunc(recs, compareRecords)
		for i := 1; i < len(recs); i++ {
			if compareRecords(recs[i-1], recs[i]) == 0 {
				return fmt.Errorf("import: face %s/%s given twice", recs[i].Person, recs[i].ID)
			}
		}
		ref, err := writeSegment(ctx, store, c, recs)
		if err != nil {
			return err
		}
		man.Segments = append(man.Segments, ref)
		man.Faces += ref.Faces
		recs = recs[:0]
		return nil
	}
	for e, ok := next(); ok; e, ok = next() {
		if e.V == 0 {
			e.V = Version
		}
		if err := e.Validate(); err != nil {
			return man.Faces, fmt.Errorf("import: %w", err)
		}
		recs = append(recs, entryRecord(e))
		if len(recs) == segmentFaces {
			if err := flush(); err != nil {
				return man.Faces, err
			}
		}
	}
	if len(recs) > 0 {
		if err := flush(); err != nil {
			return man.Faces, err
		}
	}
	if err := putJSON(ctx, store, manifestKey(c, newID()), man); err != nil {
		return man.Faces, fmt.Errorf("import: %w", err)
	}
	return man.Faces, nil
}
