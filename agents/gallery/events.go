package gallery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// Operations of a log event.
const (
	// OpAdd adds a face, replacing the person's face of the same id.
	OpAdd = "add"
	// OpDelete deletes one face of a person.
	OpDelete = "delete"
	// OpDeletePerson deletes every face of a person.
	OpDeletePerson = "delete_person"
)

// Event is one object of a collection's log. Events are applied in the
// order of their keys (UUIDv7, so in the order they were written) on top
// of the snapshot that does not yet fold them in.
type Event struct {
	V      int    `json:"v"`
	Op     string `json:"op"`
	Person string `json:"person"`
	// ID is the face's id (OpAdd, OpDelete).
	ID string `json:"id,omitempty"`
	// Source names the image the face came from (OpAdd).
	Source string `json:"source,omitempty"`
	// Request is the id of the enrol request that made the face, so an
	// erasure finds its image and Result (OpAdd through the API).
	Request    string           `json:"request,omitempty"`
	Enrolled   time.Time        `json:"enrolled,omitzero"`
	Descriptor *face.Descriptor `json:"descriptor,omitempty"`
}

// Validate reports the first thing wrong with e.
func (e Event) Validate() error {
	if e.V != Version {
		return fmt.Errorf("gallery event version %d, this build reads %d", e.V, Version)
	}
	if err := job.ValidPerson(e.Person); err != nil {
		return err
	}
	switch e.Op {
	case OpAdd:
		if e.Descriptor == nil {
			return fmt.Errorf("gallery event: add of %s/%s without a descriptor", e.Person, e.ID)
		}
		if err := (Entry{V: Version, Person: e.Person, ID: e.ID, Descriptor: *e.Descriptor}).Validate(); err != nil {
			return err
		}
	case OpDelete:
		if err := validID(e.ID); err != nil {
			return err
		}
	case OpDeletePerson:
	default:
		return fmt.Errorf("gallery event op %q is none of %s, %s, %s", e.Op, OpAdd, OpDelete, OpDeletePerson)
	}
	return nil
}

// entry is the face an add event adds.
func (e Event) entry() Entry {
	return Entry{V: Version, Person: e.Person, ID: e.ID, Source: e.Source, Request: e.Request, Descriptor: *e.Descriptor, Enrolled: e.Enrolled}
}

// Append writes e to collection c's log and returns its key. Every worker
// and web host following the collection sees it at its next refresh.
func Append(ctx context.Context, store platform.Store, c string, e Event) (string, error) {
	if err := ValidCollection(c); err != nil {
		return "", err
	}
	e.V = Version
	if e.Op == OpAdd && e.Enrolled.IsZero() {
		e.Enrolled = time.Now().UTC()
	}
	if err := e.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode gallery event: %w", err)
	}
	key := LogKey(c, newID())
	if err := store.Put(ctx, key, b, "application/json"); err != nil {
		return "", fmt.Errorf("append to collection %s: %w", c, err)
	}
	return key, nil
}

// AddFace appends e to collection c's log as a new face (or the
// replacement of the person's face with e.ID).
func AddFace(ctx context.Context, store platform.Store, c string, e Entry) error {
	if e.V == 0 {
		e.V = Version
	}
	if err := e.Validate(); err != nil {
		return err
	}
	d := e.Descriptor
	_, err := Append(ctx, store, c, Event{Op: OpAdd, Person: e.Person, ID: e.ID, Source: e.Source, Request: e.Request, Enrolled: e.Enrolled, Descriptor: &d})
	return err
}

func decodeEvent(key string, b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("gallery event %s: %w", key, err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("gallery event %s: %w", key, err)
	}
	return e, nil
}
