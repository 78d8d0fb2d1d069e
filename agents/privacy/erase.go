// Package privacy erases a person's data on request and expires uploads and
// results after their retention.
//
// What the service stores about a person: gallery entries
// (gallery/<person>/<id>.json in the gallery store) and their thumbnails
// (thumbs/<id>.jpg beside them), the images sent to
// enrol them and to recognise them (inputs/<id> in the input store), the
// Results that name them (results/<id>.json in the output store) and, with
// the course's answer objects, "<file stem>" holding their name. Enrolment
// entries made through the API carry the enrol request's id, so their
// images and results are found directly; a Result that named the person in
// a recognition is found only by reading it, so a purge reads every stored
// Result: its cost grows with the number of Results kept, which retention
// bounds (see docs/privacy.md for the figures).
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

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

// scanParallel is how many Results a purge reads at once: enough to hide
// S3's per-request latency, few enough not to crowd out the service.
const scanParallel = 16

// Report says what an erasure deleted.
type Report struct {
	Person string `json:"person,omitempty"`
	ID     string `json:"id,omitempty"`
	// Faces are gallery entries deleted.
	Faces int `json:"faces"`
	// Thumbnails are the pictures of those faces deleted.
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
}

// DeletePerson deletes every gallery entry of person, so workers stop
// matching them at their next gallery refresh. With purge it then also
// deletes the images and Results of the person's enrolments and every
// stored Result that named them (as the answer or any face), with its
// image and answer object.
func DeletePerson(ctx context.Context, st Stores, person string, purge bool) (Report, error) {
	if err := job.ValidPerson(person); err != nil {
		return Report{}, err
	}
	rep := Report{Person: person, Purged: purge}
	entries, err := st.Gallery.List(ctx, gallery.Prefix+person+"/")
	if err != nil {
		return rep, fmt.Errorf("list the gallery: %w", err)
	}
	var enrolIDs []string
	for _, k := range entries {
		if err := st.Gallery.Delete(ctx, k); err != nil {
			return rep, fmt.Errorf("delete gallery entry: %w", err)
		}
		rep.Faces++
		if id, ok := strings.CutSuffix(strings.TrimPrefix(k, gallery.Prefix+person+"/"), ".json"); ok {
			enrolIDs = append(enrolIDs, id)
			if err := deleteThumbnail(ctx, st, id, &rep); err != nil {
				return rep, err
			}
		}
	}
	if !purge {
		return rep, nil
	}
	for _, id := range enrolIDs {
		if err := deleteRequest(ctx, st, id, &rep); err != nil {
			return rep, err
		}
	}
	return rep, purgeResults(ctx, st, person, &rep)
}

// DeleteFace deletes one gallery entry of person; with purge also the
// image and Result of the enrolment that made it (entries enrolled
// through the API are named after their request).
func DeleteFace(ctx context.Context, st Stores, person, faceID string, purge bool) (Report, error) {
	if err := job.ValidPerson(person); err != nil {
		return Report{}, err
	}
	if err := gallery.ValidID(faceID); err != nil {
		return Report{}, err
	}
	rep := Report{Person: person, ID: faceID, Purged: purge}
	key := gallery.Key(person, faceID)
	ok, err := st.Gallery.Exists(ctx, key)
	if err != nil {
		return rep, fmt.Errorf("look up gallery entry: %w", err)
	}
	if ok {
		if err := st.Gallery.Delete(ctx, key); err != nil {
			return rep, fmt.Errorf("delete gallery entry: %w", err)
		}
		rep.Faces++
	}
	if err := deleteThumbnail(ctx, st, faceID, &rep); err != nil {
		return rep, err
	}
	if purge {
		return rep, deleteRequest(ctx, st, faceID, &rep)
	}
	return rep, nil
}

// deleteThumbnail deletes face id's thumbnail, if it has one.
func deleteThumbnail(ctx context.Context, st Stores, id string, rep *Report) error {
	ok, err := st.Gallery.Exists(ctx, thumbs.Key(id))
	if err != nil {
		return fmt.Errorf("look up thumbnail of face %s: %w", id, err)
	}
	if !ok {
		return nil
	}
	if err := st.Gallery.Delete(ctx, thumbs.Key(id)); err != nil {
		return fmt.Errorf("delete thumbnail: %w", err)
	}
	rep.Thumbnails++
	return nil
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
// deletes those that name person with their images and answer objects.
func purgeResults(ctx context.Context, st Stores, person string, rep *Report) error {
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
			if !names(res, person) {
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
