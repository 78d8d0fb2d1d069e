package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// NewKey returns a new key in the format Create gives, without storing
// anything: for an installer that keeps the key in a secret store of its
// own and writes the record itself (RecordFor).
func NewKey() string {
	key, _ := generate()
	return key
}

// RecordFor returns the id of key and the record Store keeps for it: what
// Create would have written to RecordKey(id), the key's hash and never the
// key. The AWS stack writes a deployment's first admin key this way, from
// a key it keeps in an SSM SecureString. created is truncated to seconds.
func RecordFor(key, name string, scopes []Scope, created time.Time) (id string, body []byte, err error) {
	id, ok := parseID(key)
	if !ok {
		return "", nil, errors.New("not an API key: want fc_<16 base32>_<32 base32>")
	}
	if err := validName(name); err != nil {
		return "", nil, err
	}
	if len(scopes) == 0 {
		return "", nil, errors.New("a key needs at least one scope")
	}
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return "", nil, fmt.Errorf("scope %q unknown: use %s", sc, scopeList())
		}
	}
	rec := record{V: recordVersion, Key: Key{ID: id, Name: name, Scopes: slices.Clone(scopes), Created: created.UTC().Truncate(time.Second)}, Hash: hash(key)}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", nil, fmt.Errorf("encode key record: %w", err)
	}
	return id, b, nil
}

// RecordKey is where in the store the record of key id lives.
func RecordKey(id string) string { return recordKey(id) }
