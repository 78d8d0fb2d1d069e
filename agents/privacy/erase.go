// Package privacy erases a person's data on request and expires uploads and
// results after their retention.
//
// What the service stores about a person: their faces in a collection of
// the gallery store (in a snapshot segment or a log event, or a legacy
// entry gallery/<person>/<id>.json), their faces' thumbnails
// (thumbs/<collection>/<person>/<id>.jpg, or thumbs/<id>.jpg as earlier
// versions kept them), the images sent to enrol them and to
// recognise them (inputs/<id> in the input store), the Results that name
// them (results/<id>.json in the output store) and, with the course's
// answer objects, "<file stem>" holding their name. Faces enrolled through
// the API carry the enrol request's id, so their images and results are
// found directly; a Result that named the person in a recognition is found
// only by reading it, so a purge reads every stored Result: its cost grows
// with the number of Results kept, which retention bounds (see
// docs/privacy.md for the figures).
//
// Deleting faces appends a deletion to the collection's log: every worker
// stops matching them at its next gallery refresh. Their descriptors leave
// the store when the compaction folds the deletion into a new snapshot and
// removes the event; an erasure waits for that (Options.Wait), so when it
// answers, no object holds the faces any more.
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/thumbs"
)

// Stores are the stores a deployment keeps data in; the same store may
// appear more than once (one data directory locally).
type Stores struct {
	Inputs, Outputs, Gallery platform.Store
}

// Faces is a collection's faces as a web host follows them
// (*gallery.View): which faces a person has, and the requests that
// enrolled them.
type Faces interface {
	Faces(person string) []gallery.FaceInfo
	Face(person, id string) (gallery.FaceInfo, bool)
}

// Options tune an erasure of faces.
type Options struct {
	// Wait bounds how long the erasure waits for the compaction to remove
	// the faces' descriptors from the store; 0 is DefaultWait.
	Wait time.Duration
	// Poll is how often it looks; 0 is 200 ms.
	Poll time.Duration
}

// DefaultWait is how long an erasure waits for the compaction by default:
// it runs every couple of seconds and rewrites one segment per erasure.
const DefaultWait = 30 * time.Second

// ErrNotCompacted means the faces were deleted from the log, so no worker
// matches them any more, but no compaction removed their descriptors from
// the store within Options.Wait (is a scaler, the compactor, running?).
var ErrNotCompacted = errors.New("faces deleted and no longer matched, but the compaction has not yet removed their descriptors from the store")

// scanParallel is how many Results a purge reads at once: enough to hide
// S3's per-request latency, few enough not to crowd out the service.
const scanParallel = 16

// Report says what an erasure deleted.
type Report struct {
	Person string `json:"person,omitempty"`
	ID     string `json:"id,omitempty"`
	// Faces are gallery entries deleted.
	Faces int `json:"faces"`
	// Thumbnails are the deleted faces' thumbnail objects deleted: their
	// own, and those an earlier version kept by face id alone.
	Thumbnails int `json:"thumbnails"`
	// Inputs and Results are stored images and Results deleted.
	Inputs  int `json:"inputs"`
	Results int `json:"results"`
	// Answers are answer objects (the course's layout) deleted.
	Answers int `json:"answers"`
	// Scanned is how many Results a purge read to find the person.
	Scanned int `json:"scanned"`
	// Purged says whether inputs and results were searched too.
	Purged bool `json:"purged"`
	// Collection is the collection the faces were deleted from.
	Collection string `json:"collection,omitempty"`
}

// DeletePerson deletes every face of person in collection c (faces says
// which there are), waits until no object holds them, and with purge then
// also deletes the images and Results of the person's enrolments and
// every stored Result of the collection that named them (as the answer or
// any face), with its image and answer object.
func DeletePerson(ctx context.Context, st Stores, faces Faces, c, person string, purge bool, opts Options) (Report, error) {
	if err := job.ValidPerson(person); err != nil {
		return Report{}, err
	}
	if err := job.ValidCollection(c); err != nil {
		return Report{}, err
	}
	rep := Report{Person: person, Collection: c, Purged: purge}
	known := faces.Faces(person)
	legacy, err := legacyKeys(ctx, st, c, person)
	if err != nil {
		return rep, err
	}
	if len(known) > 0 || len(legacy) > 0 {
		key, err := gallery.Append(ctx, st.Gallery, c, gallery.Event{Op: gallery.OpDeletePerson, Person: person})
		if err != nil {
			return rep, fmt.Errorf("delete faces: %w", err)
		}
		if err := deleteKeys(ctx, st.Gallery, legacy); err != nil {
			return rep, err
		}
		if err := waitCompacted(ctx, st, key, opts); err != nil {
			return rep, err
		}
	}
	rep.Faces = len(known)
	ids := make([]string, 0, len(known)+len(legacy))
	for _, f := range known {
		ids = append(ids, f.ID)
	}
	for _, k := range legacy {
		ids = append(ids, strings.TrimSuffix(path.Base(k), ".json"))
	}
	if err := deleteThumbnails(ctx, st, c, person, ids, true, &rep); err != nil {
		return rep, err
	}
	if !purge {
		return rep, nil
	}
	for _, f := range known {
		if err := deleteRequest(ctx, st, requestOf(f), &rep); err != nil {
			return rep, err
		}
	}
	return rep, purgeResults(ctx, st, c, person, &rep)
}

// DeleteFace deletes person's face faceID from collection c and waits
// until no object holds it; with purge also the image and Result of the
// enrolment that made it.
func DeleteFace(ctx context.Context, st Stores, faces Faces, c, person, faceID string, purge bool, opts Options) (Report, error) {
	if err := job.ValidPerson(person); err != nil {
		return Report{}, err
	}
	if err := gallery.ValidID(faceID); err != nil {
		return Report{}, err
	}
	if err := job.ValidCollection(c); err != nil {
		return Report{}, err
	}
	rep := Report{Person: person, ID: faceID, Collection: c, Purged: purge}
	f, found := faces.Face(person, faceID)
	var legacy []string
	if c == gallery.DefaultCollection {
		ok, err := st.Gallery.Exists(ctx, gallery.Key(person, faceID))
		if err != nil {
			return rep, fmt.Errorf("look up gallery entry: %w", err)
		}
		if ok {
			legacy = []string{gallery.Key(person, faceID)}
		}
	}
	if found || len(legacy) > 0 {
		key, err := gallery.Append(ctx, st.Gallery, c, gallery.Event{Op: gallery.OpDelete, Person: person, ID: faceID})
		if err != nil {
			return rep, fmt.Errorf("delete face: %w", err)
		}
		if err := deleteKeys(ctx, st.Gallery, legacy); err != nil {
			return rep, err
		}
		if err := waitCompacted(ctx, st, key, opts); err != nil {
			return rep, err
		}
		rep.Faces = 1
	}
	if err := deleteThumbnails(ctx, st, c, person, []string{faceID}, false, &rep); err != nil {
		return rep, err
	}
	if !found {
		f = gallery.FaceInfo{ID: faceID}
	}
	if purge {
		return rep, deleteRequest(ctx, st, requestOf(f), &rep)
	}
	return rep, nil
}

// deleteThumbnails deletes the thumbnails of person's faces ids in
// collection c — with whole, every thumbnail kept under the person in c,
// so that one written for a face the listing missed goes too — and those
// an earlier version kept by face id alone (thumbs.LegacyKey). A legacy
// thumbnail cannot say which collection and person it shows, so erasing
// any face with its id deletes it; the faces' own thumbnails in other
// collections and of other persons stay. It counts the objects deleted.
func deleteThumbnails(ctx context.Context, st Stores, c, person string, ids []string, whole bool, rep *Report) error {
	var keys []string
	if whole {
		listed, err := st.Gallery.List(ctx, thumbs.PersonPrefix(c, person))
		if err != nil {
			return fmt.Errorf("list thumbnails: %w", err)
		}
		keys = append(keys, listed...)
	}
	for _, id := range ids {
		keys = append(keys, thumbs.Key(c, person, id), thumbs.LegacyKey(id))
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		ok, err := st.Gallery.Exists(ctx, k)
		if err != nil {
			return fmt.Errorf("look up thumbnail: %w", err)
		}
		if !ok {
			continue
		}
		if err := st.Gallery.Delete(ctx, k); err != nil && !errors.Is(err, platform.ErrNotFound) {
			return fmt.Errorf("delete thumbnail: %w", err)
		}
		rep.Thumbnails++
	}
	return nil
}

// requestOf is the id of the request that enrolled f: recorded with the
// face, or the face's own id (enrolments of earlier versions were named
// after their request).
func requestOf(f gallery.FaceInfo) string {
	if f.Request != "" {
		return f.Request
	}
	return f.ID
}

// legacyKeys lists person's legacy entries (default collection only).
func legacyKeys(ctx context.Context, st Stores, c, person string) ([]string, error) {
	if c != gallery.DefaultCollection {
		return nil, nil
	}
	keys, err := st.Gallery.List(ctx, gallery.Prefix+person+"/")
	if err != nil {
		return nil, fmt.Errorf("list the legacy gallery: %w", err)
	}
	return keys, nil
}

func deleteKeys(ctx context.Context, st platform.Store, keys []string) error {
	for _, k := range keys {
		if err := st.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete gallery entry: %w", err)
		}
	}
	return nil
}

// waitCompacted waits until the deletion event key is folded into a
// snapshot and gone from the log.
func waitCompacted(ctx context.Context, st Stores, key string, opts Options) error {
	wait, poll := opts.Wait, opts.Poll
	if wait <= 0 {
		wait = DefaultWait
	}
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		gone, err := gallery.EventGone(ctx, st.Gallery, key)
		if err != nil {
			return err
		}
		if gone {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %s", ErrNotCompacted, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// DeleteRecognition deletes request id's image, its Result and the answer
// object that holds its answer.
func DeleteRecognition(ctx context.Context, st Stores, id string) (Report, error) {
	if _, err := job.IDTime(id); err != nil {
		return Report{}, err
	}
	rep := Report{ID: id}
	return rep, deleteRequest(ctx, st, id, &rep)
}

// deleteRequest deletes request id's Result (with its answer object), then
// its image; ids that are not request ids (gallery entries enrolled from
// files) have neither.
func deleteRequest(ctx context.Context, st Stores, id string, rep *Report) error {
	if _, err := job.IDTime(id); err != nil {
		return nil
	}
	res, found, err := readResult(ctx, st.Outputs, job.ResultKey(id))
	if err != nil {
		return err
	}
	if found {
		if err := deleteResult(ctx, st, res, rep); err != nil {
			return err
		}
	}
	return deleteInput(ctx, st, id, rep)
}

func deleteInput(ctx context.Context, st Stores, id string, rep *Report) error {
	ok, err := st.Inputs.Exists(ctx, job.InputKey(id))
	if err != nil {
		return fmt.Errorf("look up input %s: %w", id, err)
	}
	if !ok {
		return nil
	}
	if err := st.Inputs.Delete(ctx, job.InputKey(id)); err != nil {
		return fmt.Errorf("delete input: %w", err)
	}
	rep.Inputs++
	return nil
}

// deleteResult deletes res's answer object, if it still holds res's
// answer, then res itself.
func deleteResult(ctx context.Context, st Stores, res job.Result, rep *Report) error {
	if key, ok := job.AnswerKey(res.Name); ok && res.Answer != "" {
		b, err := st.Outputs.Get(ctx, key)
		switch {
		case errors.Is(err, platform.ErrNotFound):
		case err != nil:
			return fmt.Errorf("read answer object %s: %w", key, err)
		case string(b) == res.Answer:
			if err := st.Outputs.Delete(ctx, key); err != nil {
				return fmt.Errorf("delete answer object: %w", err)
			}
			rep.Answers++
		}
	}
	if res.Input2 != "" {
		if err := st.Inputs.Delete(ctx, res.Input2); err != nil {
			return fmt.Errorf("delete input: %w", err)
		}
	}
	if err := st.Outputs.Delete(ctx, job.ResultKey(res.ID)); err != nil {
		return fmt.Errorf("delete result: %w", err)
	}
	rep.Results++
	return nil
}

// readResult reads a stored Result; found is false when there is none.
// A Result that does not decode is reported as found with only its id, so
// it is still deleted with its request.
func readResult(ctx context.Context, st platform.Store, key string) (job.Result, bool, error) {
	b, err := st.Get(ctx, key)
	if errors.Is(err, platform.ErrNotFound) {
		return job.Result{}, false, nil
	}
	if err != nil {
		return job.Result{}, false, fmt.Errorf("read %s: %w", key, err)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(key, job.ResultPrefix), ".json")
	var res job.Result
	if json.Unmarshal(b, &res) != nil || res.ID != id {
		return job.Result{ID: id}, true, nil
	}
	return res, true, nil
}

// inCollection reports whether res is about collection c; Results of
// earlier versions, which name no collection, are the default one's.
func inCollection(res job.Result, c string) bool {
	return res.Collection == c || res.Collection == "" && c == gallery.DefaultCollection
}

// names reports whether res names person, as its answer or any face.
func names(res job.Result, person string) bool {
	if res.Answer == person {
		return true
	}
	for _, f := range res.Faces {
		if f.Name == person {
			return true
		}
	}
	return false
}

// purgeResults reads every stored Result, scanParallel at a time, and
// deletes those of collection c that name person with their images and
// answer objects.
func purgeResults(ctx context.Context, st Stores, c, person string, rep *Report) error {
	keys, err := st.Outputs.List(ctx, job.ResultPrefix)
	if err != nil {
		return fmt.Errorf("list results: %w", err)
	}
	var (
		mu      sync.Mutex
		scanned atomic.Int64
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(scanParallel)
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		g.Go(func() error {
			res, found, err := readResult(gctx, st.Outputs, k)
			if err != nil || !found {
				return err
			}
			scanned.Add(1)
			if !names(res, person) || !inCollection(res, c) {
				return nil
			}
			var r Report
			if err := deleteResult(gctx, st, res, &r); err != nil {
				return err
			}
			if err := deleteInput(gctx, st, res.ID, &r); err != nil {
				return err
			}
			mu.Lock()
			rep.Results += r.Results
			rep.Inputs += r.Inputs
			rep.Answers += r.Answers
			mu.Unlock()
			return nil
		})
	}
	err = g.Wait()
	rep.Scanned = int(scanned.Load())
	if err != nil {
		return fmt.Errorf("purge results: %w", err)
	}
	return nil
}
