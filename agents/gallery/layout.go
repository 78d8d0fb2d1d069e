package gallery

import (
	"strings"

	"github.com/google/uuid"

	"github.com/facecloud/facecloud/agents/job"
)

// A collection is a named gallery. Its faces live in the gallery store as a
// snapshot and an append log, under CollectionsPrefix:
//
//	collections/<c>/log/<uuidv7>.json        one event each: a face added, a face or a person deleted
//	collections/<c>/manifests/<uuidv7>.json  a snapshot: its segments and the log events folded into it
//	collections/<c>/segments/<uuidv7>.f32    a segment's descriptors, n × 128 float32 little-endian
//	collections/<c>/segments/<uuidv7>.idx    the segment's index: person, id, source, request, time per face
//
// One List of the prefix tells a reader everything that changed: a new
// manifest, new or vanished log events. The log sorts before the manifests
// ("log" < "manifests"), so a listing that sees a manifest has seen every
// event that manifest does not fold in (see Follower).

// CollectionsPrefix is the store prefix of every collection.
const CollectionsPrefix = "collections/"

// DefaultCollection is the collection of the routes and commands that name
// none (the course's POST /, /v1/gallery, facecloud enroll).
const DefaultCollection = "default"

// Store key parts under a collection.
const (
	logDir      = "log/"
	manifestDir = "manifests/"
	segmentDir  = "segments/"
	descExt     = ".f32"
	indexExt    = ".idx"
)

// ValidCollection checks a collection name (job.ValidCollection).
func ValidCollection(name string) error { return job.ValidCollection(name) }

func collectionPrefix(c string) string { return CollectionsPrefix + c + "/" }

// LogKey is the store key of log event id in collection c.
func LogKey(c, id string) string { return collectionPrefix(c) + logDir + id + ".json" }

func manifestKey(c, id string) string { return collectionPrefix(c) + manifestDir + id + ".json" }
func descKey(c, seg string) string    { return collectionPrefix(c) + segmentDir + seg + descExt }
func indexKey(c, seg string) string   { return collectionPrefix(c) + segmentDir + seg + indexExt }

// keyKind is what a key under CollectionsPrefix holds.
type keyKind int

const (
	kindOther keyKind = iota
	kindLog
	kindManifest
	kindDesc
	kindIndex
)

// parseCollectionKey splits collections/<c>/<dir>/<uuid><ext>.
func parseCollectionKey(key string) (collection string, kind keyKind, id string) {
	rest, ok := strings.CutPrefix(key, CollectionsPrefix)
	if !ok {
		return "", kindOther, ""
	}
	c, rest, ok := strings.Cut(rest, "/")
	if !ok || ValidCollection(c) != nil {
		return "", kindOther, ""
	}
	dir, file, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(file, "/") {
		return "", kindOther, ""
	}
	var ext string
	switch dir + "/" {
	case logDir:
		kind, ext = kindLog, ".json"
	case manifestDir:
		kind, ext = kindManifest, ".json"
	case segmentDir:
		switch {
		case strings.HasSuffix(file, descExt):
			kind, ext = kindDesc, descExt
		case strings.HasSuffix(file, indexExt):
			kind, ext = kindIndex, indexExt
		}
	}
	id, ok = strings.CutSuffix(file, ext)
	if kind == kindOther || !ok || !isUUID(id) {
		return "", kindOther, ""
	}
	return c, kind, id
}

// isUUID reports whether id is a UUID in its canonical text form.
func isUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
