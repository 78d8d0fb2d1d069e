// Package gallery is the set of enrolled faces: named 128-d descriptors in
// collections (named galleries), each kept in a platform.Store as a
// snapshot of a few large segments plus an append log of newer enrolments
// and deletions (layout.go), followed by workers and web hosts
// (Follower), folded into a new snapshot by one compactor (compact.go),
// and searched in memory: an 8-bit scan of every face, its best candidates
// measured again from a 16-bit copy (search.go, scan.go).
//
// A face is named after the nearest face by Euclidean distance; beyond the
// threshold (DefaultThreshold, calibrated on public labelled faces: see
// docs/gallery.md) the answer is "unknown", unless the caller asks for the
// nearest name always (the course's workload expects a name). A face below
// the request's quality filter is not matched at all (LowQuality).
package gallery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// Prefix is the store prefix of legacy entries: earlier versions kept the
// (default) gallery as one object per face, gallery/<person>/<id>.json.
// They are still read, as part of the default collection, until the
// compaction migrates them into its snapshot.
const Prefix = "gallery/"

// DefaultThreshold is the largest distance still taken as the same person:
// on the evaluation in docs/gallery.md, 1.3 % of pairs of different people
// and 12 % of pairs of one person lie within it (at 0.6: 4.0 % and 3.1 %).
// Naming a stranger is the worse mistake in an open set, where every probe
// is compared with every enrolled person.
const DefaultThreshold = 0.5

// DefaultQuality is the quality filter a recognition applies when the
// request names none (see face.ParseQualityFilter and docs/gallery.md).
const DefaultQuality = "low"

// Unknown is the name of a face that matched no one.
const Unknown = "unknown"

// Version is the schema version of an Entry this build writes and reads.
const Version = 1

// Entry is one enrolled face.
type Entry struct {
	V      int    `json:"v"`
	Person string `json:"person"`
	// ID is unique within the person: the enrol request's id, or a hash of
	// the image so enrolling the same file twice keeps one entry.
	ID string `json:"id"`
	// Source names the image the descriptor came from (a file or request name).
	Source string `json:"source,omitempty"`
	// Request is the id of the enrol request that made the entry, when it
	// was made through the API (an erasure finds its image and Result).
	Request    string          `json:"request,omitempty"`
	Descriptor face.Descriptor `json:"descriptor"`
	Enrolled   time.Time       `json:"enrolled"`
}

// Key is the store key of an entry.
func Key(person, id string) string { return Prefix + person + "/" + id + ".json" }

// ContentID is an entry id derived from the image bytes: enrolling the same
// image for the same person again overwrites the entry instead of adding one.
func ContentID(image []byte) string {
	sum := sha256.Sum256(image)
	return hex.EncodeToString(sum[:10])
}

// Validate reports the first thing wrong with e.
func (e Entry) Validate() error {
	if e.V != Version {
		return fmt.Errorf("gallery entry version %d, this build reads %d", e.V, Version)
	}
	if err := job.ValidPerson(e.Person); err != nil {
		return err
	}
	if err := validID(e.ID); err != nil {
		return err
	}
	n := 0.0
	for i, x := range e.Descriptor {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("gallery entry %s/%s: descriptor component %d is %v", e.Person, e.ID, i, x)
		}
		n += f * f
	}
	if n == 0 {
		return fmt.Errorf("gallery entry %s/%s: descriptor is all zeros", e.Person, e.ID)
	}
	return nil
}

// ValidID checks an entry id: 1..64 letters, digits, '-' and '_'.
func ValidID(id string) error { return validID(id) }

func validID(id string) error { return job.ValidFaceID(id) }

// PutLegacy stores e under Key(e.Person, e.ID) in the legacy layout, as
// earlier versions did; new faces go to a collection's log (AddFace).
func PutLegacy(ctx context.Context, store platform.Store, e Entry) error {
	if e.V == 0 {
		e.V = Version
	}
	if e.Enrolled.IsZero() {
		e.Enrolled = time.Now().UTC()
	}
	if err := e.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode gallery entry: %w", err)
	}
	if err := store.Put(ctx, Key(e.Person, e.ID), data, "application/json"); err != nil {
		return fmt.Errorf("store gallery entry %s/%s: %w", e.Person, e.ID, err)
	}
	return nil
}

// parseKey splits gallery/<person>/<id>.json; ok is false for other keys.
func parseKey(key string) (person, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return "", "", false
	}
	person, file, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(file, "/") {
		return "", "", false
	}
	id, ok = strings.CutSuffix(file, ".json")
	if !ok || job.ValidPerson(person) != nil || validID(id) != nil {
		return "", "", false
	}
	return person, id, true
}

// decodeEntry reads an entry and checks it belongs under key.
func decodeEntry(key string, data []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("gallery entry %s: %w", key, err)
	}
	if err := e.Validate(); err != nil {
		return Entry{}, fmt.Errorf("gallery entry %s: %w", key, err)
	}
	if Key(e.Person, e.ID) != key {
		return Entry{}, fmt.Errorf("gallery entry %s names %s", key, Key(e.Person, e.ID))
	}
	return e, nil
}

// MatchOptions say how View.FacesWith names faces.
type MatchOptions struct {
	// Threshold is the largest distance taken as a match.
	Threshold float64
	// Nearest names the nearest person whatever the distance.
	Nearest bool
	// MinQuality is the quality filter: a face below it is named
	// job.LowQuality (distance -1) and not matched, with Nearest too.
	MinQuality face.QualityLevel
}

// ParseQuality is the quality filter a request names ("" for
// DefaultQuality).
func ParseQuality(q string) (face.QualityLevel, error) {
	if q == "" {
		q = DefaultQuality
	}
	return face.ParseQualityFilter(q)
}

// putJSON stores v as JSON under key.
func putJSON(ctx context.Context, store platform.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := store.Put(ctx, key, b, "application/json"); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// Load reads every collection of store once, for a command that searches
// and exits (a long-running process keeps its Follower refreshed).
func Load(ctx context.Context, store platform.Store) (*Follower, error) {
	f := NewFollower(store)
	if _, err := f.Refresh(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// entryKeys keeps the keys that name entries.
func entryKeys(keys []string) []string {
	out := keys[:0:0]
	for _, k := range keys {
		if _, _, ok := parseKey(k); ok {
			out = append(out, k)
		}
	}
	return out
}

// fetchWorkers bounds concurrent Gets (S3 latency dominates a cold load).
const fetchWorkers = 16

// fetch gets and decodes keys concurrently, in order.
func fetch(parent context.Context, store platform.Store, keys []string) ([]Entry, error) {
	entries := make([]Entry, len(keys))
	errs := make([]error, len(keys))
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(fetchWorkers, len(keys)) {
		wg.Go(func() {
			for i := range next {
				data, err := store.Get(ctx, keys[i])
				if err == nil {
					entries[i], err = decodeEntry(keys[i], data)
				} else {
					err = fmt.Errorf("get gallery entry %s: %w", keys[i], err)
				}
				if err != nil {
					errs[i] = err
					cancel()
				}
			}
		})
	}
feed:
	for i := range keys {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("load gallery: %w", err)
	}
	return entries, nil
}

// firstErr returns the first non-nil error that is not a consequence of
// cancelling the others.
func firstErr(errs []error) error {
	var fallback error
	for _, e := range errs {
		if e == nil {
			continue
		}
		if !errors.Is(e, context.Canceled) {
			return e
		}
		if fallback == nil {
			fallback = e
		}
	}
	return fallback
}
