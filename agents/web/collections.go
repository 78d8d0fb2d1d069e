// The collection routes (/v1/collections/...), the routes of the default
// collection that predate them (/v1/gallery/...), detections and
// verifications, and who may use which collection.

package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	galleries "github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/privacy"
	"github.com/facecloud/facecloud/agents/thumbs"
)

// indexFresh is how old the web host's copy of the collections' indexes
// may be when a listing or an erasure reads it (one List call renews it);
// this host's own enrolments and erasures renew it at the next listing.
const indexFresh = time.Second

// collections returns the collections' indexes (no descriptors), renewed
// when older than indexFresh.
func (s *Server) collections(ctx context.Context) (*galleries.Follower, *httpError) {
	return s.collectionsAt(ctx, indexFresh)
}

// freshCollections renews the indexes now, for an answer that would say
// something does not exist.
func (s *Server) freshCollections(ctx context.Context) (*galleries.Follower, *httpError) {
	return s.collectionsAt(ctx, 0)
}

func (s *Server) collectionsAt(ctx context.Context, fresh time.Duration) (*galleries.Follower, *httpError) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if time.Since(s.indexAt) < fresh {
		return s.index, nil
	}
	if _, err := s.index.Refresh(ctx); err != nil {
		s.log.Error("read the gallery's collections", "err", err)
		return nil, refuse(http.StatusServiceUnavailable, "", "gallery store unavailable, try again")
	}
	s.indexAt = time.Now()
	return s.index, nil
}

// indexChanged marks the indexes old after this host enrolled or erased
// faces, so that the next listing renews them and shows the change: a
// client listing after its own write through this host reads it.
func (s *Server) indexChanged() {
	s.indexMu.Lock()
	s.indexAt = time.Time{}
	s.indexMu.Unlock()
}

// allowCollection checks a collection name and that the request's key
// may use it (a key limited to some collections, 403 for others).
func (s *Server) allowCollection(r *http.Request, c string) *httpError {
	if err := job.ValidCollection(c); err != nil {
		return refuse(http.StatusBadRequest, "bad_collection", "%v", err)
	}
	if k, ok := requestKey(r.Context()); ok && !k.AllowsCollection(c) {
		s.metrics.rejected.WithLabelValues("forbidden").Inc()
		return refuse(http.StatusForbidden, "forbidden", "API key %s may not use collection %s (it is limited to %s)", k.ID, c, strings.Join(k.Collections, ", "))
	}
	return nil
}

// allowResult checks that the request's key may read res: a Result of a
// collection the key may not use is refused.
func (s *Server) allowResult(r *http.Request, res job.Result) *httpError {
	if res.Collection == "" {
		return nil
	}
	return s.allowCollection(r, res.Collection)
}

// thresholdParam reads ?threshold= (0: the worker's default).
func thresholdParam(r *http.Request) (float64, *httpError) {
	v := r.URL.Query().Get("threshold")
	if v == "" {
		return 0, nil
	}
	t, err := strconv.ParseFloat(v, 64)
	if err != nil || !(t >= job.MinThreshold && t <= job.MaxThreshold) {
		return 0, refuse(http.StatusBadRequest, "bad_param", "threshold=%q must be a distance from %v to %v", truncate(v, 20), job.MinThreshold, job.MaxThreshold)
	}
	return t, nil
}

// intParam reads ?name= as a whole number within lo..hi (def when absent).
func intParam(r *http.Request, name string, def, lo, hi int) (int, *httpError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, refuse(http.StatusBadRequest, "bad_param", "%s=%q must be a whole number from %d to %d", name, truncate(v, 20), lo, hi)
	}
	return n, nil
}

// Paging of the listings: ?limit= items (1..maxPage, default
// defaultPage) after the ?after= cursor, the last name or id of the page
// before; an answer with more to come says "next".
const (
	defaultPage = 100
	maxPage     = 1000
)

// page cuts the sorted items after the cursor.
func page[T any](items []T, key func(T) string, r *http.Request) ([]T, string, *httpError) {
	limit, herr := intParam(r, "limit", defaultPage, 1, maxPage)
	if herr != nil {
		return nil, "", herr
	}
	after := r.URL.Query().Get("after")
	start := 0
	if after != "" {
		start, _ = slices.BinarySearchFunc(items, after, func(it T, a string) int { return strings.Compare(key(it), a) })
		if start < len(items) && key(items[start]) == after {
			start++
		}
	}
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = key(items[end-1])
	}
	return items[start:end], next, nil
}

// collectionInfo is one collection in GET /v1/collections.
type collectionInfo struct {
	Name    string `json:"name"`
	Faces   int    `json:"faces"`
	Persons int    `json:"persons"`
}

func (s *Server) getCollections(w http.ResponseWriter, r *http.Request) *httpError {
	idx, herr := s.collections(r.Context())
	if herr != nil {
		return herr
	}
	k, _ := requestKey(r.Context())
	out := []collectionInfo{}
	for _, c := range idx.Collections() {
		if !k.AllowsCollection(c) {
			continue
		}
		v := idx.View(c)
		out = append(out, collectionInfo{Name: c, Faces: v.Len(), Persons: len(v.Persons())})
	}
	writeJSON(w, http.StatusOK, map[string]any{"collections": out})
	return nil
}

// persons answers GET /v1/collections/{collection}/persons.
type persons struct {
	Collection string                  `json:"collection"`
	Persons    []galleries.PersonCount `json:"persons"`
	Next       string                  `json:"next,omitempty"`
}

func (s *Server) getPersons(w http.ResponseWriter, r *http.Request) *httpError {
	c := r.PathValue("collection")
	if herr := s.allowCollection(r, c); herr != nil {
		return herr
	}
	idx, herr := s.collections(r.Context())
	if herr != nil {
		return herr
	}
	if !idx.Has(c) {
		if idx, herr = s.freshCollections(r.Context()); herr != nil {
			return herr
		}
	}
	if !idx.Has(c) {
		return refuse(http.StatusNotFound, "unknown_collection", "no collection %s (a collection exists once a face is enrolled in it)", c)
	}
	all := idx.View(c).Persons()
	ps, next, herr := page(all, func(p galleries.PersonCount) string { return p.Name }, r)
	if herr != nil {
		return herr
	}
	writeJSON(w, http.StatusOK, persons{Collection: c, Persons: ps, Next: next})
	return nil
}

// faceEntry is one face of a person as listed.
type faceEntry struct {
	ID       string    `json:"id"`
	Source   string    `json:"source,omitempty"`
	Enrolled time.Time `json:"enrolled,omitzero"`
	// Thumbnail is the path of the face's picture, when it has one.
	Thumbnail string `json:"thumbnail,omitempty"`
}

// personFaces answers GET .../persons/{person}/faces.
type personFaces struct {
	Collection string      `json:"collection"`
	Person     string      `json:"person"`
	Faces      []faceEntry `json:"faces"`
	Next       string      `json:"next,omitempty"`
}

func (s *Server) getPersonFaces(w http.ResponseWriter, r *http.Request) *httpError {
	return s.listFaces(w, r, r.PathValue("collection"), collectionThumbnail)
}

// collectionThumbnail is the path of the thumbnail of person's face id in
// collection c.
func collectionThumbnail(c, person, id string) string {
	return "/v1/collections/" + c + "/persons/" + url.PathEscape(person) + "/faces/" + id + "/thumbnail"
}

// listFaces lists {person}'s faces in collection c, each with the path of
// its thumbnail (thumbPath) when it has one.
func (s *Server) listFaces(w http.ResponseWriter, r *http.Request, c string, thumbPath func(c, person, id string) string) *httpError {
	person := r.PathValue("person")
	if herr := s.allowCollection(r, c); herr != nil {
		return herr
	}
	if err := job.ValidPerson(person); err != nil {
		return refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	idx, herr := s.collections(r.Context())
	if herr != nil {
		return herr
	}
	infos := idx.View(c).Faces(person)
	if len(infos) == 0 {
		if idx, herr = s.freshCollections(r.Context()); herr != nil {
			return herr
		}
		infos = idx.View(c).Faces(person)
	}
	if len(infos) == 0 {
		return refuse(http.StatusNotFound, "unknown_person", "no face enrolled as %q in collection %s", person, c)
	}
	got, next, herr := page(infos, func(f galleries.FaceInfo) string { return f.ID }, r)
	if herr != nil {
		return herr
	}
	ids := make([]string, len(got))
	for i, f := range got {
		ids[i] = f.ID
	}
	// A store that fails the look-up only leaves the pictures out.
	have, _ := thumbs.Have(r.Context(), s.deps.Gallery, c, person, ids)
	out := personFaces{Collection: c, Person: person, Faces: make([]faceEntry, len(got)), Next: next}
	for i, f := range got {
		out.Faces[i] = faceEntry{ID: f.ID, Source: f.Source, Enrolled: f.Enrolled}
		if have[f.ID] {
			out.Faces[i].Thumbnail = thumbPath(c, person, f.ID)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// enrolment is the answer of an enrolment: one Result per image, in the
// order sent (pending ones as their status).
type enrolment struct {
	Collection string       `json:"collection"`
	Person     string       `json:"person"`
	Results    []job.Result `json:"results"`
	Pending    []status     `json:"pending,omitempty"`
}

func (s *Server) postPersonFaces(w http.ResponseWriter, r *http.Request) *httpError {
	return s.enroll(w, r, r.PathValue("collection"))
}

// enroll queues one enrol request per image of the body — every file part,
// and every image of a .zip part — after checking them all, so that
// nothing is queued when one is refused. Workers compute the descriptors
// and write the faces, so the web host never needs the model. With
// ?externalId= the one image's face gets that id: enrolling it again
// replaces the face instead of adding one.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request, c string) *httpError {
	name := r.PathValue("person")
	if herr := s.allowCollection(r, c); herr != nil {
		return herr
	}
	if err := job.ValidPerson(name); err != nil {
		return refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	external := r.URL.Query().Get("externalId")
	if external != "" {
		if err := job.ValidFaceID(external); err != nil {
			return refuse(http.StatusBadRequest, "bad_param", "externalId: %v", err)
		}
	}
	wait, herr := s.waitParam(r, s.cfg.APIWait)
	if herr != nil {
		return herr
	}
	in := s.newIntake(w, r)
	defer in.release()
	if !isMultipart(r) {
		return refuse(http.StatusUnsupportedMediaType, "not_multipart", "request must be multipart/form-data with one or more image files (or .zip archives of images)")
	}
	ups, herr := s.readMultipart(r, in, true, s.cfg.MaxEnrollImages)
	if herr != nil {
		return herr
	}
	if ups, herr = s.expandArchives(r.Context(), in, ups); herr != nil {
		return herr
	}
	if external != "" && len(ups) != 1 {
		return refuse(http.StatusBadRequest, "bad_param", "externalId names one face: send one image with it, not %d", len(ups))
	}
	for i := range ups {
		if herr := s.check(r.Context(), in, &ups[i]); herr != nil {
			return herr
		}
	}
	if herr := s.takeSlot(r); herr != nil {
		return herr
	}
	ps := make([]pending, 0, len(ups))
	defer func() {
		for _, p := range ps {
			p.done()
		}
	}()
	for _, u := range ups {
		p, herr := s.enqueue(r.Context(), []upload{u}, job.Request{Kind: job.KindEnroll, Person: name, Collection: c, FaceID: external})
		if herr != nil {
			return herr
		}
		ps = append(ps, p)
	}
	in.release()
	out := enrolment{Collection: c, Person: name, Results: []job.Result{}}
	deadline := time.Now().Add(wait)
	for _, p := range ps {
		left := time.Until(deadline)
		if left > 0 && len(out.Pending) == 0 {
			res, err := s.await(r.Context(), p.id, p.ch, left)
			switch {
			case err == nil:
				out.Results = append(out.Results, res)
				continue
			case !errors.Is(err, errWaitTimeout) && !errors.Is(err, errStopping):
				return clientGone(err)
			}
		}
		out.Pending = append(out.Pending, pendingStatus(p.id))
	}
	for _, res := range out.Results {
		if res.Status == job.StatusDone {
			s.indexChanged()
			break
		}
	}
	if len(out.Pending) == 0 {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	w.Header().Set("Location", out.Pending[0].Location)
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

func (s *Server) deleteCollectionPerson(w http.ResponseWriter, r *http.Request) *httpError {
	return s.erasePerson(w, r, r.PathValue("collection"))
}

func (s *Server) deleteCollectionFace(w http.ResponseWriter, r *http.Request) *httpError {
	return s.eraseFace(w, r, r.PathValue("collection"))
}

// erasePerson deletes every face of {person} in collection c (and with
// ?purge=1 their images and Results).
func (s *Server) erasePerson(w http.ResponseWriter, r *http.Request, c string) *httpError {
	name := r.PathValue("person")
	if herr := s.allowCollection(r, c); herr != nil {
		return herr
	}
	if err := job.ValidPerson(name); err != nil {
		return refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	purge, herr := purgeParam(r)
	if herr != nil {
		return herr
	}
	idx, herr := s.freshCollections(r.Context())
	if herr != nil {
		return herr
	}
	rep, err := privacy.DeletePerson(context.WithoutCancel(r.Context()), s.stores(), idx.View(c), c, name, purge, privacy.Options{Wait: s.cfg.EraseWait})
	s.indexChanged()
	return s.erased(w, r, rep, err)
}

// faceParams reads a face route's {person} and {face} in collection c,
// once the key may use c.
func (s *Server) faceParams(r *http.Request, c string) (person, id string, herr *httpError) {
	if herr := s.allowCollection(r, c); herr != nil {
		return "", "", herr
	}
	person, id = r.PathValue("person"), r.PathValue("face")
	if err := job.ValidPerson(person); err != nil {
		return "", "", refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	if err := galleries.ValidID(id); err != nil {
		return "", "", refuse(http.StatusBadRequest, "bad_id", "%v", err)
	}
	return person, id, nil
}

// eraseFace deletes {person}'s face {face} in collection c.
func (s *Server) eraseFace(w http.ResponseWriter, r *http.Request, c string) *httpError {
	name, id, herr := s.faceParams(r, c)
	if herr != nil {
		return herr
	}
	purge, herr := purgeParam(r)
	if herr != nil {
		return herr
	}
	idx, herr := s.freshCollections(r.Context())
	if herr != nil {
		return herr
	}
	rep, err := privacy.DeleteFace(context.WithoutCancel(r.Context()), s.stores(), idx.View(c), c, name, id, purge, privacy.Options{Wait: s.cfg.EraseWait})
	s.indexChanged()
	return s.erased(w, r, rep, err)
}

// postSearch queues a search of one image's faces in {collection}: each
// face's ?limit= nearest faces (1..100, default 5), named within
// ?threshold=, ?quality=.
func (s *Server) postSearch(w http.ResponseWriter, r *http.Request) *httpError {
	c := r.PathValue("collection")
	if herr := s.allowCollection(r, c); herr != nil {
		return herr
	}
	limit, herr := intParam(r, "limit", 5, 1, job.MaxLimit)
	if herr != nil {
		return herr
	}
	threshold, herr := thresholdParam(r)
	if herr != nil {
		return herr
	}
	quality, herr := qualityParam(r)
	if herr != nil {
		return herr
	}
	return s.queueOne(w, r, job.Request{Kind: job.KindSearch, Collection: c, Limit: limit, Threshold: threshold, Quality: quality})
}

// postDetection queues a detection: faces, scores and landmarks, no gallery.
func (s *Server) postDetection(w http.ResponseWriter, r *http.Request) *httpError {
	return s.queueOne(w, r, job.Request{Kind: job.KindDetect})
}

// postVerification queues a verification: two images (the first two file
// parts), or one image and ?person= of ?collection= (default "default").
func (s *Server) postVerification(w http.ResponseWriter, r *http.Request) *httpError {
	q := r.URL.Query()
	person, c := q.Get("person"), q.Get("collection")
	if c != "" && person == "" {
		return refuse(http.StatusBadRequest, "bad_param", "collection= goes with person=: the person to verify the image against")
	}
	if person != "" {
		if c == "" {
			c = galleries.DefaultCollection
		}
		if herr := s.allowCollection(r, c); herr != nil {
			return herr
		}
		if err := job.ValidPerson(person); err != nil {
			return refuse(http.StatusBadRequest, "bad_person", "%v", err)
		}
	}
	threshold, herr := thresholdParam(r)
	if herr != nil {
		return herr
	}
	quality, herr := qualityParam(r)
	if herr != nil {
		return herr
	}
	wait, herr := s.waitParam(r, s.cfg.APIWait)
	if herr != nil {
		return herr
	}
	in := s.newIntake(w, r)
	defer in.release()
	if !isMultipart(r) {
		return refuse(http.StatusUnsupportedMediaType, "not_multipart", "request must be multipart/form-data with two images, or one image and ?person=")
	}
	ups, herr := s.readMultipart(r, in, true, 2)
	if herr != nil {
		return herr
	}
	tmpl := job.Request{Kind: job.KindVerify, Threshold: threshold, Quality: quality}
	switch {
	case person == "" && len(ups) != 2:
		return refuse(http.StatusBadRequest, "missing_field", "send two images to compare, or one image and ?person= to compare it with")
	case person != "" && len(ups) != 1:
		return refuse(http.StatusBadRequest, "bad_param", "send one image with ?person=, not %d", len(ups))
	case person != "":
		idx, herr := s.freshCollections(r.Context())
		if herr != nil {
			return herr
		}
		if len(idx.View(c).Faces(person)) == 0 {
			return refuse(http.StatusNotFound, "unknown_person", "no face enrolled as %q in collection %s", person, c)
		}
		tmpl.Person, tmpl.Collection = person, c
	}
	p, herr := s.enqueueChecked(r, in, ups, tmpl)
	if herr != nil {
		return herr
	}
	defer p.done()
	return s.answerJSON(w, r, p, wait)
}
