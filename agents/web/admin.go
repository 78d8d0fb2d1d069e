// The admin routes: API keys (/v1/keys), a person's faces, and erasure
// (DELETE on the gallery and on recognitions).

package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/privacy"
)

// newKey is the body of POST /v1/keys.
type newKey struct {
	Name        string   `json:"name"`
	Scopes      []string `json:"scopes"`
	Collections []string `json:"collections,omitempty"`
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
		return refuse(http.StatusBadRequest, "bad_body", `body must be JSON {"name": "...", "scopes": ["recognize", "enroll", "admin"], "collections": ["..."]}: %v`, err)
	}
	scopes, err := keys.ParseScopes(strings.Join(body.Scopes, ","))
	if err != nil {
		return refuse(http.StatusBadRequest, "bad_scope", "%v", err)
	}
	collections, err := keys.ParseCollections(strings.Join(body.Collections, ","))
	if err != nil || slices.ContainsFunc(body.Collections, func(c string) bool { return strings.Contains(c, ",") }) {
		return refuse(http.StatusBadRequest, "bad_collection", "collections: %v", cmp.Or(err, errors.New("a name may not hold a comma")))
	}
	secret, k, err := s.deps.Keys.Create(r.Context(), body.Name, scopes, collections...)
	if err != nil {
		return s.storeRefusal("create key", err)
	}
	by, _ := requestKey(r.Context())
	s.log.Info("API key created", "id", k.ID, "name", k.Name, "scopes", k.Scopes, "collections", k.Collections, "by", by.ID)
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

func (s *Server) deleteRecognition(w http.ResponseWriter, r *http.Request) *httpError {
	id := r.PathValue("id")
	if _, err := job.IDTime(id); err != nil {
		return refuse(http.StatusBadRequest, "bad_id", "%q is not a request id (a UUIDv7)", truncate(id, 60))
	}
	if res, found, err := s.result(r.Context(), id); err == nil && found {
		if herr := s.allowResult(r, res); herr != nil {
			return herr
		}
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
