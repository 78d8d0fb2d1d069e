package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Authority is what the web agent asks of the keys: check a presented key,
// and manage keys for an admin. Ring implements it.
type Authority interface {
	// Verify returns the key whose secret was presented, or ErrInvalid.
	Verify(presented string) (Key, error)
	Create(ctx context.Context, name string, scopes []Scope, collections ...string) (string, Key, error)
	List(ctx context.Context) ([]Key, error)
	Revoke(ctx context.Context, id string) error
}

// ErrInvalid is the answer to a key that is malformed, unknown, revoked or
// wrong.
var ErrInvalid = errors.New("invalid API key")

// Ring is the set of valid keys as last read from the store, checked in
// memory. Refresh (or Run) re-reads it; keys created or revoked through
// the Ring take effect here at once, on other hosts at their next refresh.
type Ring struct {
	store *Store
	log   *slog.Logger

	mu   sync.RWMutex
	recs map[string]record

	refreshMu sync.Mutex // serialises Refresh

	usedMu sync.Mutex
	used   map[string]time.Time // last uses not written yet
}

var _ Authority = (*Ring)(nil)

// NewRing returns an empty Ring over store; call Refresh (or Run) to fill
// it. log nil discards.
func NewRing(store *Store, log *slog.Logger) *Ring {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ring{store: store, log: log, recs: map[string]record{}, used: map[string]time.Time{}}
}

// dummyHash is compared against when a presented id is unknown, so that an
// unknown id costs the same as a wrong secret.
var dummyHash = hash("fc_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")

// Verify checks presented against the set: the id picks the record, the
// hashes are compared in constant time. An accepted key's use is noted for
// the next flush.
func (r *Ring) Verify(presented string) (Key, error) {
	id, ok := parseID(presented)
	if !ok {
		return Key{}, ErrInvalid
	}
	r.mu.RLock()
	rec, found := r.recs[id]
	r.mu.RUnlock()
	stored := rec.Hash
	if !found {
		stored = dummyHash
	}
	if !matches(presented, stored) || !found {
		return Key{}, ErrInvalid
	}
	r.usedMu.Lock()
	r.used[id] = time.Now()
	r.usedMu.Unlock()
	return rec.Key, nil
}

// Len is the number of valid keys.
func (r *Ring) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.recs)
}

// Refresh re-reads the set: one List, and a Get for each record not seen
// before. Records gone from the store are dropped (revoked). On error the
// previous set stays. It reports whether the set changed.
func (r *Ring) Refresh(ctx context.Context) (bool, error) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	ids, err := r.store.ids(ctx)
	if err != nil {
		return false, err
	}
	r.mu.RLock()
	have := maps.Clone(r.recs)
	r.mu.RUnlock()
	next := make(map[string]record, len(ids))
	changed := false
	for _, id := range ids {
		if rec, ok := have[id]; ok {
			next[id] = rec
			continue
		}
		rec, err := r.store.get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // revoked between the List and the Get
		case err != nil && ctx.Err() != nil:
			return false, err
		case err != nil:
			// One unreadable record must not lock every other key out.
			r.log.Warn("skipping an unreadable key record", "id", id, "err", err)
			continue
		}
		next[id] = rec
		changed = true
	}
	changed = changed || len(next) != len(have)
	if !changed {
		return false, nil
	}
	r.mu.Lock()
	// Keys revoked here while the store was read stay revoked; keys created
	// here meanwhile are kept.
	for id := range have {
		if _, still := r.recs[id]; !still {
			delete(next, id)
		}
	}
	for id, rec := range r.recs {
		if _, ok := have[id]; !ok {
			next[id] = rec
		}
	}
	r.recs = next
	r.mu.Unlock()
	return true, nil
}

// Run refreshes every interval and writes last uses every flushEvery
// until ctx ends, then writes the last uses once more. It refreshes once
// at the start.
func (r *Ring) Run(ctx context.Context, interval, flushEvery time.Duration) {
	refresh := time.NewTicker(interval)
	defer refresh.Stop()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	r.refreshLogged(ctx)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.Flush(fctx)
			cancel()
			return
		case <-refresh.C:
			r.refreshLogged(ctx)
		case <-flush.C:
			r.Flush(ctx)
		}
	}
}

func (r *Ring) refreshLogged(ctx context.Context) {
	changed, err := r.Refresh(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		r.log.Warn("key refresh failed; keeping the previous set", "err", err)
	case changed:
		r.log.Info("API keys loaded", "keys", r.Len())
	}
}

// Flush writes the last uses noted since the previous flush, for keys
// still in the set (a key revoked meanwhile gets no last-use object back).
func (r *Ring) Flush(ctx context.Context) {
	r.usedMu.Lock()
	used := r.used
	r.used = map[string]time.Time{}
	r.usedMu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(used)) {
		r.mu.RLock()
		_, ok := r.recs[id]
		r.mu.RUnlock()
		if !ok {
			continue
		}
		if err := r.store.touch(ctx, id, used[id]); err != nil {
			r.log.Warn("recording a key's last use", "id", id, "err", err)
		}
	}
}

// Create makes a key (see Store.Create), valid here at once.
func (r *Ring) Create(ctx context.Context, name string, scopes []Scope, collections ...string) (string, Key, error) {
	secret, k, err := r.store.Create(ctx, name, scopes, collections...)
	if err != nil {
		return "", Key{}, err
	}
	rec := record{V: recordVersion, Key: k, Hash: hash(secret)}
	r.mu.Lock()
	r.recs[k.ID] = rec
	r.mu.Unlock()
	return secret, k, nil
}

// List lists the keys from the store, with their last uses (see Store.List).
func (r *Ring) List(ctx context.Context) ([]Key, error) {
	r.Flush(ctx)
	return r.store.List(ctx)
}

// Revoke revokes key id (see Store.Revoke), refused here at once.
func (r *Ring) Revoke(ctx context.Context, id string) error {
	if err := r.store.Revoke(ctx, id); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.recs, id)
	r.mu.Unlock()
	return nil
}

// String describes the ring for logs: how many keys, never which.
func (r *Ring) String() string { return fmt.Sprintf("%d API keys", r.Len()) }
