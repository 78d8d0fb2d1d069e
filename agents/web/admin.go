// The admin routes: API keys (/v1/keys), a person's faces, and erasure
// (DELETE on the gallery and on recognitions).

package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	galleries "github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/privacy"
	"github.com/facecloud/facecloud/agents/thumbs"
)

// newKey is the body of POST /v1/keys.
type newKey struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// createdKey answers POST /v1/keys: the key, shown this once.
type createdKey struct {
	Secret string `json:"key"`
	keys.Key
}

func (s *Server) postKey(w http.ResponseWriter, r *http.Request) *httpError {
	if s.deps.Keys == nil {
		return refuse(http.StatusServiceUnavailable, "", "this server keeps no keys")
	}
	var body newKey
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return refuse(http.StatusBadRequest, "bad_body", `body must be JSON {"name": "...", "scopes": ["recognize", "enroll", "admin"]}: %v`, err)
	}
	scopes, err := keys.ParseScopes(strings.Join(body.Scopes, ","))
	if err != nil {
		return refuse(http.StatusBadRequest, "bad_scope", "%v", err)
	}
	secret, k, err := s.deps.Keys.Create(r.Context(), body.Name, scopes)
	if err != nil {
		return s.storeRefusal("create key", err)
	}
	by, _ := requestKey(r.Context())
	s.log.Info("API key created", "id", k.ID, "name", k.Name, "scopes", k.Scopes, "by", by.ID)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdKey{Secret: secret, Key: k})
	return nil
}

func (s *Server) getKeys(w http.ResponseWriter, r *http.Request) *httpError {
	if s.deps.Keys == nil {
		writeJSON(w, http.StatusOK, map[string][]keys.Key{"keys": {}})
		return nil
	}
	list, err := s.deps.Keys.List(r.Context())
	if err != nil {
		s.log.Error("list keys", "err", err)
		return refuse(http.StatusServiceUnavailable, "", "key store unavailable, try again")
	}
	writeJSON(w, http.StatusOK, map[string][]keys.Key{"keys": list})
	return nil
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) *httpError {
	id := r.PathValue("id")
	if err := keys.ValidID(id); err != nil {
		return refuse(http.StatusBadRequest, "bad_id", "%v", err)
	}
	if s.deps.Keys == nil {
		return refuse(http.StatusNotFound, "unknown_key", "no key %s", id)
	}
	err := s.deps.Keys.Revoke(r.Context(), id)
	if errors.Is(err, keys.ErrNotFound) {
		return refuse(http.StatusNotFound, "unknown_key", "no key %s", id)
	}
	if err != nil {
		return s.storeRefusal("revoke key", err)
	}
	by, _ := requestKey(r.Context())
	s.log.Info("API key revoked", "id", id, "by", by.ID)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "revoked": true})
	return nil
}

// face is one gallery entry in GET /v1/gallery/{person}.
type face struct {
	ID       string    `json:"id"`
	Source   string    `json:"source,omitempty"`
	Enrolled time.Time `json:"enrolled,omitzero"`
	// Thumbnail is the path of the face's picture, when it has one.
	Thumbnail string `json:"thumbnail,omitempty"`
}

func (s *Server) getPerson(w http.ResponseWriter, r *http.Request) *httpError {
	name := r.PathValue("person")
	if err := job.ValidPerson(name); err != nil {
		return refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	prefix := galleries.Prefix + name + "/"
	ks, err := s.deps.Gallery.List(r.Context(), prefix)
	if err != nil {
		s.log.Error("list gallery", "err", err)
		return refuse(http.StatusServiceUnavailable, "", "gallery store unavailable, try again")
	}
	faces := []face{}
	for _, k := range ks {
		id, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), ".json")
		if !ok || strings.Contains(id, "/") {
			continue
		}
		f := face{ID: id}
		if b, err := s.deps.Gallery.Get(r.Context(), k); err == nil {
			var e galleries.Entry
			if json.Unmarshal(b, &e) == nil {
				f.Source, f.Enrolled = e.Source, e.Enrolled
			}
		}
		if ok, err := s.deps.Gallery.Exists(r.Context(), thumbs.Key(id)); err == nil && ok {
			f.Thumbnail = "/v1/gallery/" + url.PathEscape(name) + "/" + id + "/thumbnail"
		}
		faces = append(faces, f)
	}
	if len(faces) == 0 {
		return refuse(http.StatusNotFound, "unknown_person", "no face enrolled as %q", name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"person": name, "faces": faces})
	return nil
}

// stores are the stores erasure works on.
func (s *Server) stores() privacy.Stores {
	return privacy.Stores{Inputs: s.deps.Inputs, Outputs: s.deps.Outputs, Gallery: s.deps.Gallery}
}

// purgeParam reads ?purge= (default off).
func purgeParam(r *http.Request) (bool, *httpError) {
	v := r.URL.Query().Get("purge")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, refuse(http.StatusBadRequest, "bad_param", "purge=%q must be true or false (1 or 0)", truncate(v, 20))
	}
	return b, nil
}

func (s *Server) deletePerson(w http.ResponseWriter, r *http.Request) *httpError {
	name := r.PathValue("person")
	if err := job.ValidPerson(name); err != nil {
		return refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	purge, herr := purgeParam(r)
	if herr != nil {
		return herr
	}
	rep, err := privacy.DeletePerson(context.WithoutCancel(r.Context()), s.stores(), name, purge)
	return s.erased(w, r, rep, err)
}

func (s *Server) deleteFace(w http.ResponseWriter, r *http.Request) *httpError {
	name, id := r.PathValue("person"), r.PathValue("face")
	if err := job.ValidPerson(name); err != nil {
		return refuse(http.StatusBadRequest, "bad_person", "%v", err)
	}
	if err := galleries.ValidID(id); err != nil {
		return refuse(http.StatusBadRequest, "bad_id", "%v", err)
	}
	purge, herr := purgeParam(r)
	if herr != nil {
		return herr
	}
	rep, err := privacy.DeleteFace(context.WithoutCancel(r.Context()), s.stores(), name, id, purge)
	return s.erased(w, r, rep, err)
}

func (s *Server) deleteRecognition(w http.ResponseWriter, r *http.Request) *httpError {
	id := r.PathValue("id")
	if _, err := job.IDTime(id); err != nil {
		return refuse(http.StatusBadRequest, "bad_id", "%q is not a request id (a UUIDv7)", truncate(id, 60))
	}
	rep, err := privacy.DeleteRecognition(context.WithoutCancel(r.Context()), s.stores(), id)
	return s.erased(w, r, rep, err)
}

// An erasure goes on when its caller hangs up, so it is not left half
// done for want of a reader of the answer.

// erased answers an erasure with what it deleted, and logs it without the
// person's name (the log would otherwise keep what was erased).
func (s *Server) erased(w http.ResponseWriter, r *http.Request, rep privacy.Report, err error) *httpError {
	by, _ := requestKey(r.Context())
	if err != nil {
		s.log.Error("erasure failed part way; run it again", "by", by.ID, "faces", rep.Faces, "inputs", rep.Inputs, "results", rep.Results, "err", err)
		return refuse(http.StatusServiceUnavailable, "", "erasure failed part way (run it again to finish): %v", err)
	}
	s.log.Info("erased", "by", by.ID, "faces", rep.Faces, "inputs", rep.Inputs, "results", rep.Results,
		"answers", rep.Answers, "scanned", rep.Scanned, "purged", rep.Purged)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// storeRefusal logs err and answers 503.
func (s *Server) storeRefusal(what string, err error) *httpError {
	s.log.Error(what, "err", err)
	return refuse(http.StatusServiceUnavailable, "", "%s: store unavailable, try again", what)
}
