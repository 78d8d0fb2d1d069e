package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// Store prefixes: records and last uses. Both live in the gallery store
// (the output store unless --gallery says otherwise), which holds the
// service's lasting state and, unlike inputs/ and results/, expires nothing.
const (
	Prefix    = "keys/"
	UsePrefix = "keyuse/"
)

// recordVersion is the schema version of a record this build writes and reads.
const recordVersion = 1

// ErrNotFound is returned for a key id with no record.
var ErrNotFound = errors.New("no such key")

// record is what keys/<id>.json holds: the key without its secret, and the
// secret's hash.
type record struct {
	V int `json:"v"`
	Key
	Hash string `json:"hash"`
}

func (r record) validate(id string) error {
	if r.V != recordVersion {
		return fmt.Errorf("key record version %d, this build reads %d", r.V, recordVersion)
	}
	if r.ID != id {
		return fmt.Errorf("key record %s holds id %q", id, r.ID)
	}
	if !hashRE.MatchString(r.Hash) {
		return fmt.Errorf("key record %s: hash is not sha256:<64 hex>", id)
	}
	if len(r.Scopes) == 0 {
		return fmt.Errorf("key record %s has no scope", id)
	}
	for _, s := range r.Scopes {
		if !slices.Contains(Scopes, s) {
			return fmt.Errorf("key record %s: scope %q unknown", id, s)
		}
	}
	if err := validCollections(r.Collections); err != nil {
		return fmt.Errorf("key record %s: %w", id, err)
	}
	return nil
}

// use is what keyuse/<id>.json holds.
type use struct {
	LastUsed time.Time `json:"last_used"`
}

func recordKey(id string) string { return Prefix + id + ".json" }
func useKey(id string) string    { return UsePrefix + id + ".json" }

// Store reads and writes key records in a platform.Store.
type Store struct {
	st  platform.Store
	now func() time.Time
}

// NewStore keeps keys in st.
func NewStore(st platform.Store) *Store { return &Store{st: st, now: time.Now} }

// Create makes a new key with name and scopes, limited to collections
// when any are given, stores its record and returns the key — the only
// time it is ever seen — and its listing.
func (s *Store) Create(ctx context.Context, name string, scopes []Scope, collections ...string) (string, Key, error) {
	if err := validName(name); err != nil {
		return "", Key{}, err
	}
	if len(scopes) == 0 {
		return "", Key{}, errors.New("a key needs at least one scope")
	}
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return "", Key{}, fmt.Errorf("scope %q unknown: use %s", sc, scopeList())
		}
	}
	if err := validCollections(collections); err != nil {
		return "", Key{}, err
	}
	cs := slices.Compact(slices.Sorted(slices.Values(collections)))
	secret, id := generate()
	rec := record{V: recordVersion, Key: Key{ID: id, Name: name, Scopes: slices.Clone(scopes), Collections: cs, Created: s.now().UTC().Truncate(time.Second)}, Hash: hash(secret)}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", Key{}, fmt.Errorf("encode key record: %w", err)
	}
	if err := s.st.Put(ctx, recordKey(id), b, "application/json"); err != nil {
		return "", Key{}, fmt.Errorf("store key %s: %w", id, err)
	}
	return secret, rec.Key, nil
}

// ids lists the ids of the stored records.
func (s *Store) ids(ctx context.Context) ([]string, error) {
	names, err := s.st.List(ctx, Prefix)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	ids := make([]string, 0, len(names))
	for _, n := range names {
		id, ok := strings.CutSuffix(strings.TrimPrefix(n, Prefix), ".json")
		if ok && ValidID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// get reads one record.
func (s *Store) get(ctx context.Context, id string) (record, error) {
	b, err := s.st.Get(ctx, recordKey(id))
	if errors.Is(err, platform.ErrNotFound) {
		return record{}, fmt.Errorf("key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return record{}, fmt.Errorf("read key %s: %w", id, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return record{}, fmt.Errorf("key record %s: %w", id, err)
	}
	if err := rec.validate(id); err != nil {
		return record{}, err
	}
	return rec, nil
}

// List returns every key with when it was last used, oldest first.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	ids, err := s.ids(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(ids))
	for _, id := range ids {
		rec, err := s.get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // revoked meanwhile
		}
		if err != nil {
			return nil, err
		}
		k := rec.Key
		if b, err := s.st.Get(ctx, useKey(id)); err == nil {
			var u use
			if json.Unmarshal(b, &u) == nil {
				k.LastUsed = u.LastUsed
			}
		} else if !errors.Is(err, platform.ErrNotFound) {
			return nil, fmt.Errorf("read last use of key %s: %w", id, err)
		}
		out = append(out, k)
	}
	slices.SortStableFunc(out, func(a, b Key) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Revoke deletes key id's record (then its last use); ErrNotFound if there
// is none. Web hosts refuse the key from their next refresh on.
func (s *Store) Revoke(ctx context.Context, id string) error {
	if err := ValidID(id); err != nil {
		return err
	}
	ok, err := s.st.Exists(ctx, recordKey(id))
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("key %s: %w", id, ErrNotFound)
	}
	if err := s.st.Delete(ctx, recordKey(id)); err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if err := s.st.Delete(ctx, useKey(id)); err != nil {
		return fmt.Errorf("revoke key %s: delete its last use: %w", id, err)
	}
	return nil
}

// touch records that key id was last used at t.
func (s *Store) touch(ctx context.Context, id string, t time.Time) error {
	b, err := json.Marshal(use{LastUsed: t.UTC().Truncate(time.Second)})
	if err != nil {
		return fmt.Errorf("encode last use: %w", err)
	}
	if err := s.st.Put(ctx, useKey(id), b, "application/json"); err != nil {
		return fmt.Errorf("store last use of key %s: %w", id, err)
	}
	return nil
}

// Empty reports whether the store holds no key at all.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	ids, err := s.ids(ctx)
	return len(ids) == 0, err
}
