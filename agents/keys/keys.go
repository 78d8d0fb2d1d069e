// Package keys is facecloud's API keys: the Key and its scopes, the key
// format, how a key is hashed, the store of key records, and Ring, the set
// of keys a web agent checks requests against, re-read from the store every
// few seconds so a revocation reaches every web host.
//
// A key is "fc_<id>_<secret>": a recognisable prefix for operators and
// secret scanners, a public id (16 base32 characters, 80 random bits) that
// names the key in listings and revocations, and the secret (32 base32
// characters, 160 random bits). Only the SHA-256 of the whole key is
// stored: a fast hash is enough for a random secret of that size (slow
// password hashes exist for guessable passwords), and it lets every request
// be checked without a store call.
//
// Records are immutable: keys/<id>.json is written once by Create and
// deleted by Revoke; when a key was last used is kept apart, in
// keyuse/<id>.json, written at most once a minute per key and web host. So
// a Ring re-reads the set with one List and Gets only the records it has
// not seen, and a late last-use write can never bring a revoked key back.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/job"
)

// Scope is what a key may do.
type Scope string

// The scopes. Admin allows everything.
const (
	// Recognize allows the recognition routes (POST /, /v1/recognitions).
	Recognize Scope = "recognize"
	// Enroll allows adding faces (POST /v1/gallery/{person}).
	Enroll Scope = "enroll"
	// Admin allows everything: the gallery's listing and deletion, erasure,
	// keys and metrics too.
	Admin Scope = "admin"
)

// Scopes are every scope, in the order they are listed.
var Scopes = []Scope{Recognize, Enroll, Admin}

// ParseScopes reads a comma-separated list such as "recognize,enroll":
// at least one, each known, duplicates dropped, sorted as Scopes lists them.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, part := range strings.Split(s, ",") {
		sc := Scope(strings.TrimSpace(part))
		if sc == "" {
			continue
		}
		if !slices.Contains(Scopes, sc) {
			return nil, fmt.Errorf("scope %q unknown: use %s", sc, scopeList())
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scope given: use one or more of %s, comma-separated", scopeList())
	}
	slices.SortFunc(out, func(a, b Scope) int { return slices.Index(Scopes, a) - slices.Index(Scopes, b) })
	return out, nil
}

func scopeList() string {
	names := make([]string, len(Scopes))
	for i, s := range Scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Key is an API key as listed: never its secret or hash.
type Key struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
	// Collections, when set, are the only collections (named galleries)
	// the key may read or change; routes about no single collection (keys,
	// metrics) are then refused too. Empty: every collection.
	Collections []string  `json:"collections,omitempty"`
	Created     time.Time `json:"created"`
	// LastUsed is when a web host last accepted the key, to within about a
	// minute; zero if never.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// Allows reports whether k may act within scope s.
func (k Key) Allows(s Scope) bool {
	return slices.Contains(k.Scopes, Admin) || slices.Contains(k.Scopes, s)
}

// AllowsCollection reports whether k may read or change collection c.
func (k Key) AllowsCollection(c string) bool {
	return len(k.Collections) == 0 || slices.Contains(k.Collections, c)
}

// Scoped reports whether k is limited to some collections.
func (k Key) Scoped() bool { return len(k.Collections) > 0 }

// MaxCollections bounds the collections one key names.
const MaxCollections = 100

// ParseCollections reads a comma-separated list of collection names such
// as "team-a,team-b" (empty: every collection), duplicates dropped, sorted.
func ParseCollections(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		c := strings.TrimSpace(part)
		if c == "" {
			continue
		}
		if err := job.ValidCollection(c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxCollections {
		return nil, fmt.Errorf("%d collections named, at most %d allowed", len(out), MaxCollections)
	}
	return out, nil
}

// validCollections checks a key's collection list as stored.
func validCollections(cs []string) error {
	if len(cs) > MaxCollections {
		return fmt.Errorf("%d collections named, at most %d allowed", len(cs), MaxCollections)
	}
	for _, c := range cs {
		if err := job.ValidCollection(c); err != nil {
			return err
		}
	}
	return nil
}

// Key format: fc_<16 base32>_<32 base32>, lower case, no padding.
const (
	keyPrefix   = "fc_"
	idBytes     = 10 // 16 base32 characters
	secretBytes = 20 // 32 base32 characters, 160 bits
)

var (
	b32    = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	keyRE  = regexp.MustCompile(`^fc_([a-z2-7]{16})_[a-z2-7]{32}$`)
	idRE   = regexp.MustCompile(`^[a-z2-7]{16}$`)
	hashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// generate returns a new key and its id.
func generate() (key, id string) {
	b := make([]byte, idBytes+secretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead)
	id = b32.EncodeToString(b[:idBytes])
	return keyPrefix + id + "_" + b32.EncodeToString(b[idBytes:]), id
}

// parseID returns the id of a presented key, or false when it is not
// shaped like one of ours.
func parseID(presented string) (string, bool) {
	m := keyRE.FindStringSubmatch(presented)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ValidID reports whether id looks like a key id.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("key id %q must be 16 characters of a-z and 2-7", truncate(id, 40))
	}
	return nil
}

// hash is what is stored of a key.
func hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// matches compares a presented key with a stored hash in constant time.
func matches(presented, stored string) bool {
	return subtle.ConstantTimeCompare([]byte(hash(presented)), []byte(stored)) == 1
}

// validName checks a key's name: 0..64 bytes without control characters.
func validName(name string) error {
	if len(name) > 64 {
		return fmt.Errorf("key name is %d bytes, at most 64 allowed", len(name))
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errors.New("key name must not contain control characters")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
