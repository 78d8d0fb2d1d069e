package gallery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// Reloader keeps a current Gallery for a long-running worker. Refresh
// re-lists the prefix (one List call) and fetches only the entries it has
// not seen, so polling every few seconds is cheap even for a large gallery.
// Entries are never rewritten with other content under the same key except
// by a redelivered enrolment of the same image, so a key seen once is kept.
type Reloader struct {
	store platform.Store
	cur   atomic.Pointer[Gallery]

	mu   sync.Mutex // serialises Refresh
	have map[string]Entry
}

// NewReloader returns a Reloader with an empty gallery; call Refresh (or
// Run) to fill it.
func NewReloader(store platform.Store) *Reloader {
	r := &Reloader{store: store, have: map[string]Entry{}}
	r.cur.Store(New(nil))
	return r
}

// Gallery returns the latest snapshot; it never blocks on the store.
func (r *Reloader) Gallery() *Gallery { return r.cur.Load() }

// Refresh re-lists the gallery and loads what was added, dropping what was
// removed. It reports whether the snapshot changed. On error the previous
// snapshot stays current.
func (r *Reloader) Refresh(ctx context.Context) (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.store.List(ctx, Prefix)
	if err != nil {
		return false, fmt.Errorf("list gallery: %w", err)
	}
	keys = entryKeys(keys)
	var missing []string
	for _, k := range keys {
		if _, ok := r.have[k]; !ok {
			missing = append(missing, k)
		}
	}
	removed := len(r.have) + len(missing) - len(keys)
	if len(missing) == 0 && removed == 0 {
		return false, nil
	}
	added, err := fetch(ctx, r.store, missing)
	if err != nil {
		return false, err
	}
	next := make(map[string]Entry, len(keys))
	for _, k := range keys {
		if e, ok := r.have[k]; ok {
			next[k] = e
		}
	}
	for i, k := range missing {
		next[k] = added[i]
	}
	r.have = next
	entries := make([]Entry, 0, len(next))
	for _, k := range slices.Sorted(maps.Keys(next)) {
		entries = append(entries, next[k])
	}
	r.cur.Store(New(entries))
	return true, nil
}

// Run refreshes every interval until ctx ends, logging failures (the last
// good snapshot stays in use). It refreshes once at the start.
func (r *Reloader) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if changed, err := r.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("gallery refresh failed; keeping the previous gallery", "err", err)
		} else if changed {
			g := r.Gallery()
			log.Info("gallery loaded", "faces", g.Len(), "people", len(g.People()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
