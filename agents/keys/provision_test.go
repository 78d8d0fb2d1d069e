package keys

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRecordForIsWhatCreateWrites: a record written by an installer from
// RecordFor is read back by Store and accepted by a Ring as the key it was
// made from, with its scopes, and holds no secret.
func TestRecordForIsWhatCreateWrites(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := NewKey()
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	id, rec, err := RecordFor(key, "stack admin", []Scope{Admin}, created)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec), key[len(key)-32:]) {
		t.Fatalf("record holds the secret: %s", rec)
	}
	if err := st.Put(ctx, RecordKey(id), rec, "application/json"); err != nil {
		t.Fatal(err)
	}
	list, err := NewStore(st).List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id || !list[0].Created.Equal(created) || list[0].Name != "stack admin" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	r := NewRing(NewStore(st), nil)
	if _, err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := r.Verify(key)
	if err != nil || k.ID != id || !k.Allows(Admin) {
		t.Fatalf("Verify = %+v, %v", k, err)
	}
	tests := map[string]struct {
		key    string
		scopes []Scope
	}{
		"not a key":     {"fc_short", []Scope{Admin}},
		"no scope":      {key, nil},
		"unknown scope": {key, []Scope{"root"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, err := RecordFor(tc.key, "x", tc.scopes, created); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
