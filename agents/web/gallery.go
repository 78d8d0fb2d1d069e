// The routes of the default collection that predate collections:
// /v1/gallery and /v1/gallery/{person}[/{face}].

package web

import (
	"net/http"
	"net/url"

	galleries "github.com/facecloud/facecloud/agents/gallery"
)

// galleryList is the answer of GET /v1/gallery.
type galleryList struct {
	Persons []galleries.PersonCount `json:"persons"`
	Faces   int                     `json:"faces"`
}

func (s *Server) getGallery(w http.ResponseWriter, r *http.Request) *httpError {
	if herr := s.allowCollection(r, galleries.DefaultCollection); herr != nil {
		return herr
	}
	idx, herr := s.collections(r.Context())
	if herr != nil {
		return herr
	}
	v := idx.View(galleries.DefaultCollection)
	writeJSON(w, http.StatusOK, galleryList{Persons: v.Persons(), Faces: v.Len()})
	return nil
}

func (s *Server) postEnroll(w http.ResponseWriter, r *http.Request) *httpError {
	return s.enroll(w, r, galleries.DefaultCollection)
}

func (s *Server) getPerson(w http.ResponseWriter, r *http.Request) *httpError {
	return s.listFaces(w, r, galleries.DefaultCollection, func(_, person, id string) string {
		return "/v1/gallery/" + url.PathEscape(person) + "/" + id + "/thumbnail"
	})
}

func (s *Server) deletePerson(w http.ResponseWriter, r *http.Request) *httpError {
	return s.erasePerson(w, r, galleries.DefaultCollection)
}

func (s *Server) deleteFace(w http.ResponseWriter, r *http.Request) *httpError {
	return s.eraseFace(w, r, galleries.DefaultCollection)
}
