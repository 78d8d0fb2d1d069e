package keys

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
)

func fileStore(t *testing.T) platform.Store {
	t.Helper()
	st, err := blobstore.OpenURL(context.Background(), &url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestParseScopes(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []Scope
		wantErr string
	}{
		"one":        {in: "admin", want: []Scope{Admin}},
		"sorted":     {in: "admin, recognize,enroll", want: []Scope{Recognize, Enroll, Admin}},
		"duplicates": {in: "enroll,enroll", want: []Scope{Enroll}},
		"empty":      {in: " , ", wantErr: "no scope given"},
		"unknown":    {in: "recognize,root", wantErr: `scope "root" unknown`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseScopes(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseScopes(%q) error %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseScopes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	tests := map[string]struct {
		scopes []Scope
		asked  Scope
		want   bool
	}{
		"admin allows recognize": {[]Scope{Admin}, Recognize, true},
		"admin allows enroll":    {[]Scope{Admin}, Enroll, true},
		"recognize only":         {[]Scope{Recognize}, Enroll, false},
		"enroll not admin":       {[]Scope{Enroll}, Admin, false},
		"own scope":              {[]Scope{Recognize, Enroll}, Enroll, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := (Key{Scopes: tc.scopes}).Allows(tc.asked); got != tc.want {
				t.Fatalf("%v allows %s = %v, want %v", tc.scopes, tc.asked, got, tc.want)
			}
		})
	}
}

// TestKeyFormat checks the shape and randomness of new keys: the fc_
// prefix, 160 bits of secret, and no two alike.
func TestKeyFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k, id := generate()
		if !keyRE.MatchString(k) {
			t.Fatalf("key %q does not match %s", k, keyRE)
		}
		if got, ok := parseID(k); !ok || got != id {
			t.Fatalf("parseID(%q) = %q, %v; want %q", k, got, ok, id)
		}
		secret := k[len(keyPrefix)+len(id)+1:]
		if n := len(secret) * 5; n < 128 {
			t.Fatalf("secret carries %d bits, want at least 128", n)
		}
		if seen[k] || seen[id] {
			t.Fatalf("key or id repeated after %d keys", len(seen)/2)
		}
		seen[k], seen[id] = true, true
	}
}

// TestStoreHoldsNoSecret creates a key and reads every object the store
// then holds: none contains the key or its secret part.
func TestStoreHoldsNoSecret(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	s := NewStore(st)
	secret, k, err := s.Create(ctx, "ci", []Scope{Recognize})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.touch(ctx, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{recordKey(k.ID), useKey(k.ID)}; !slices.Equal(objs, want) {
		t.Fatalf("store holds %q, want %q", objs, want)
	}
	for _, o := range objs {
		b, err := st.Get(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) || strings.Contains(string(b), secret[len(secret)-32:]) {
			t.Fatalf("%s holds the key: %s", o, b)
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	s := NewStore(fileStore(t))
	if empty, err := s.Empty(ctx); err != nil || !empty {
		t.Fatalf("new store Empty = %v, %v", empty, err)
	}
	_, a, err := s.Create(ctx, "first", []Scope{Admin})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := s.Create(ctx, "second", []Scope{Recognize, Enroll})
	if err != nil {
		t.Fatal(err)
	}
	used := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.touch(ctx, b.ID, used); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("List = %+v, want 2 keys", list)
	}
	got := map[string]Key{list[0].ID: list[0], list[1].ID: list[1]}
	if got[a.ID].Name != "first" || !got[a.ID].LastUsed.IsZero() || !slices.Equal(got[a.ID].Scopes, []Scope{Admin}) {
		t.Errorf("first key listed as %+v", got[a.ID])
	}
	if !got[b.ID].LastUsed.Equal(used) {
		t.Errorf("second key last used %v, want %v", got[b.ID].LastUsed, used)
	}
	if err := s.Revoke(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second revoke: %v, want ErrNotFound", err)
	}
	if err := s.Revoke(ctx, "not-an-id"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("revoke of a malformed id: %v, want a refusal", err)
	}
	list, err = s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("after revoke List = %+v, %v; want only %s", list, err, b.ID)
	}
}

func TestCreateRefuses(t *testing.T) {
	s := NewStore(fileStore(t))
	tests := map[string]struct {
		name   string
		scopes []Scope
		want   string
	}{
		"no scope":      {"x", nil, "at least one scope"},
		"unknown scope": {"x", []Scope{"root"}, "unknown"},
		"long name":     {strings.Repeat("n", 65), []Scope{Admin}, "at most 64"},
		"control chars": {"a\nb", []Scope{Admin}, "control"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, err := s.Create(context.Background(), tc.name, tc.scopes); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRingVerify checks what a ring accepts: the key itself, and nothing
// that differs from it, is malformed, unknown or revoked.
func TestRingVerify(t *testing.T) {
	ctx := context.Background()
	s := NewStore(fileStore(t))
	key, k, err := s.Create(ctx, "app", []Scope{Recognize})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := generate()
	r := NewRing(s, nil)
	if _, err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	flipped := []byte(key)
	flipped[len(flipped)-1] ^= 1
	tests := map[string]struct {
		presented string
		ok        bool
	}{
		"the key":           {key, true},
		"last char flipped": {string(flipped), false},
		"unknown key":       {other, false},
		"empty":             {"", false},
		"no prefix":         {strings.TrimPrefix(key, "fc_"), false},
		"with newline":      {key + "\n", false},
		"upper case":        {strings.ToUpper(key), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := r.Verify(tc.presented)
			if tc.ok {
				if err != nil || got.ID != k.ID {
					t.Fatalf("Verify = %+v, %v; want key %s", got, err, k.ID)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalid", got, err)
			}
		})
	}
}

// TestRevokeReachesOtherRings is two web hosts on one store: a key revoked
// through one is refused by the other after its next refresh, and a key
// created through one is accepted by the other after it.
func TestRevokeReachesOtherRings(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	a, b := NewRing(NewStore(st), nil), NewRing(NewStore(st), nil)
	key, k, err := a.Create(ctx, "shared", []Scope{Admin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(key); err != nil {
		t.Fatalf("creating ring refuses its new key: %v", err)
	}
	if _, err := b.Verify(key); !errors.Is(err, ErrInvalid) {
		t.Fatalf("other ring accepts a key before refreshing: %v", err)
	}
	if changed, err := b.Refresh(ctx); err != nil || !changed {
		t.Fatalf("Refresh = %v, %v; want a change", changed, err)
	}
	if _, err := b.Verify(key); err != nil {
		t.Fatalf("other ring refuses the key after refreshing: %v", err)
	}
	if err := b.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(key); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoking ring still accepts the key: %v", err)
	}
	if _, err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(key); !errors.Is(err, ErrInvalid) {
		t.Fatalf("other ring accepts a revoked key after refreshing: %v", err)
	}
}

// TestFlushRecordsUse checks that an accepted key's use reaches the store
// on Flush, and that a key revoked meanwhile gets no last-use object back.
func TestFlushRecordsUse(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	s := NewStore(st)
	r := NewRing(s, nil)
	keep, kk, err := r.Create(ctx, "keep", []Scope{Recognize})
	if err != nil {
		t.Fatal(err)
	}
	gone, kg, err := r.Create(ctx, "gone", []Scope{Recognize})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	for _, k := range []string{keep, gone} {
		if _, err := r.Verify(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Revoke(ctx, kg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r.Flush(ctx)
	if ok, _ := st.Exists(ctx, useKey(kg.ID)); ok {
		t.Error("a revoked key's last use was written back")
	}
	list, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != kk.ID || list[0].LastUsed.Before(before) {
		t.Fatalf("List = %+v, want %s used after %v", list, kk.ID, before)
	}
}
