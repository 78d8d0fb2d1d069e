package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// methods dispatches on the request method and answers any other with 405
// and an Allow header, in the route's error style.
type methods map[string]http.Handler

func (m methods) allow() string {
	var ms []string
	for k := range m {
		ms = append(ms, k)
	}
	if _, ok := m[http.MethodGet]; ok {
		ms = append(ms, http.MethodHead)
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

func (m methods) serve(w http.ResponseWriter, r *http.Request, writeErr func(http.ResponseWriter, *httpError)) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	h, ok := m[method]
	if !ok {
		w.Header().Set("Allow", m.allow())
		writeErr(w, refuse(http.StatusMethodNotAllowed, "method", "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, m.allow()))
		return
	}
	h.ServeHTTP(w, r)
}

// handler serves m, answering other methods in writeErr's style.
func (m methods) handler(writeErr func(http.ResponseWriter, *httpError)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, writeErr) })
}

// textErrors writes "error: <reason>" on one line.
func textErrors(w http.ResponseWriter, e *httpError) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, "error: %s\n", e.msg)
}

// jsonErrors writes {"error": "<reason>"} on one line.
func jsonErrors(w http.ResponseWriter, e *httpError) {
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Encoding our own plain structs cannot fail; a write error means the
	// client has gone.
	_ = json.NewEncoder(w).Encode(v)
}

// StatusClientClosedRequest is the status counted for a call whose client
// went away before its answer (nginx's 499): not a server error, so an
// alarm on 5xx does not fire on impatient clients. The client never sees
// it.
const StatusClientClosedRequest = 499

// clientGone is the error of a call whose client went away.
func clientGone(err error) *httpError {
	return refuse(StatusClientClosedRequest, "", "client went away: %v", err)
}
