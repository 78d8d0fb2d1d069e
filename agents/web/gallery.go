// The gallery routes: GET /v1/gallery and POST /v1/gallery/{person}.

package web

import (
	_ "embed"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/job"
)

// GalleryPrefix is where enrolled faces live: gallery/<person>/<id>.json.
const GalleryPrefix = "gallery/"

// person is one enrolled person in GET /v1/gallery.
type person struct {
	Name  string `json:"name"`
	Faces int    `json:"faces"`
}

// gallery is the answer of GET /v1/gallery.
type gallery struct {
	Persons []person `json:"persons"`
	Faces   int      `json:"faces"`
}

func (s *Server) getGallery(w http.ResponseWriter, r *http.Request) {
	keys, err := s.deps.Gallery.List(r.Context(), GalleryPrefix)
	if err != nil {
		s.log.Error("list gallery", "err", err)
		jsonErrors(w, refuse(http.StatusServiceUnavailable, "", "gallery store unavailable, try again"))
		return
	}
	counts := map[string]int{}
	total := 0
	for _, k := range keys {
		name, file, ok := strings.Cut(strings.TrimPrefix(k, GalleryPrefix), "/")
		if !ok || name == "" || !strings.HasSuffix(file, ".json") || strings.Contains(file, "/") {
			continue
		}
		counts[name]++
		total++
	}
	g := gallery{Persons: make([]person, 0, len(counts)), Faces: total}
	for name, n := range counts {
		g.Persons = append(g.Persons, person{Name: name, Faces: n})
	}
	sort.Slice(g.Persons, func(i, j int) bool { return g.Persons[i].Name < g.Persons[j].Name })
	writeJSON(w, http.StatusOK, g)
}

// enrolment is the answer of POST /v1/gallery/{person}.
type enrolment struct {
	Person  string       `json:"person"`
	Results []job.Result `json:"results"`
	Pending []status     `json:"pending,omitempty"`
}

// postEnroll queues one enrol request per image; workers compute the
// descriptors and write the gallery entries, so the web host never needs
// the model. All images are checked before any is queued.
func (s *Server) postEnroll(w http.ResponseWriter, r *http.Request) *httpError {
	name := r.PathValue("person")
	if err := job.ValidPerson(name); err != nil {
		return refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	wait, herr := s.waitParam(r, s.cfg.APIWait)
	if herr != nil {
		return herr
	}
	in := s.newIntake(w, r)
	defer in.release()
	if !isMultipart(r) {
		return refuse(http.StatusUnsupportedMediaType, "not_multipart", "request must be multipart/form-data with one or more image files")
	}
	ups, herr := s.readMultipart(r, in, true, s.cfg.MaxEnrollImages)
	if herr != nil {
		return herr
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
		p, herr := s.enqueue(r.Context(), u, job.KindEnroll, name, false, "", false)
		if herr != nil {
			return herr
		}
		ps = append(ps, p)
	}
	in.release()
	out := enrolment{Person: name, Results: []job.Result{}}
	deadline := time.Now().Add(wait)
	for _, p := range ps {
		left := time.Until(deadline)
		if left > 0 && len(out.Pending) == 0 {
			res, err := s.await(r.Context(), p.id, p.ch, left)
			switch {
			case err == nil:
				noteResult(r.Context(), res)
				out.Results = append(out.Results, res)
				continue
			case !errors.Is(err, errWaitTimeout) && !errors.Is(err, errStopping):
				return clientGone(err)
			}
		}
		out.Pending = append(out.Pending, pendingStatus(p.id))
	}
	if len(out.Pending) == 0 {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	w.Header().Set("Location", out.Pending[0].Location)
	writeJSON(w, http.StatusAccepted, out)
	return nil
}
