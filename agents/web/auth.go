// Who may call what: API keys (agents/keys) presented in a header, their
// scopes, a token bucket per key, and the refusal of cross-origin browser
// requests that carry no key.

package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/facecloud/facecloud/agents/keys"
)

// open is the "scope" of the routes anyone may call: /healthz, /readyz
// and the upload page.
const open keys.Scope = ""

// presentedKey returns the key a request carries in Authorization: Bearer
// or X-API-Key (never a query parameter or cookie: a key in a header
// cannot be sent by another site's page without a CORS preflight, which
// this server never grants). A request with two different keys, or an
// Authorization header of another kind, presents an invalid one.
func presentedKey(r *http.Request) (key string, given bool) {
	auth := r.Header.Get("Authorization")
	api := r.Header.Get("X-API-Key")
	if auth == "" && api == "" {
		return "", false
	}
	var bearer string
	if auth != "" {
		scheme, rest, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", true
		}
		bearer = strings.TrimSpace(rest)
	}
	switch {
	case api == "":
		return bearer, true
	case auth == "" || bearer == api:
		return api, true
	default:
		return "", true
	}
}

type keyCtx struct{}

// requestKey returns the key a request was authorised with, if any.
func requestKey(ctx context.Context) (keys.Key, bool) {
	k, ok := ctx.Value(keyCtx{}).(keys.Key)
	return k, ok
}

// access is who may call a route: a key with scope; with openable, also
// no key at all when cfg.OpenRecognition is set (the course's recognition
// routes); with global, only a key limited to no collection (routes about
// every collection or none: keys, metrics).
type access struct {
	scope    keys.Scope
	openable bool
	global   bool
}

// guard lets a request reach h only if it may: a valid key with the
// route's scope (401 without one, 403 when the key lacks the scope, or is
// limited to some collections on a global route), within the key's rate
// (429 with Retry-After beyond it). With cfg.OpenRecognition the openable
// routes also take requests without a key, except cross-origin browser
// requests (403), which no page of another site may make for its visitors.
// Which collections a key may use is checked by the routes that name one.
func (s *Server) guard(a access, writeErr func(http.ResponseWriter, *httpError), h http.Handler) http.Handler {
	scope := a.scope
	if scope == open {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, given := presentedKey(r)
		if !given {
			if a.openable && s.cfg.OpenRecognition {
				if err := s.crossOrigin.Check(r); err != nil {
					s.metrics.rejected.WithLabelValues("cross_origin").Inc()
					writeErr(w, refuse(http.StatusForbidden, "cross_origin", "cross-origin request refused: send the API key in a header, or call from this server's own page"))
					return
				}
				h.ServeHTTP(w, r)
				return
			}
			s.metrics.rejected.WithLabelValues("unauthenticated").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="facecloud"`)
			writeErr(w, refuse(http.StatusUnauthorized, "unauthenticated", "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"))
			return
		}
		var k keys.Key
		err := keys.ErrInvalid
		if s.deps.Keys != nil && presented != "" {
			k, err = s.deps.Keys.Verify(presented)
		}
		if err != nil {
			s.metrics.rejected.WithLabelValues("bad_key").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="facecloud", error="invalid_token"`)
			writeErr(w, refuse(http.StatusUnauthorized, "bad_key", "invalid API key (malformed, unknown or revoked)"))
			return
		}
		if !k.Allows(scope) {
			s.metrics.rejected.WithLabelValues("forbidden").Inc()
			writeErr(w, refuse(http.StatusForbidden, "forbidden", "API key %s lacks scope %s", k.ID, scope))
			return
		}
		if a.global && k.Scoped() {
			s.metrics.rejected.WithLabelValues("forbidden").Inc()
			writeErr(w, refuse(http.StatusForbidden, "forbidden", "API key %s is limited to collections %s: this route needs a key for every collection", k.ID, strings.Join(k.Collections, ", ")))
			return
		}
		if wait, ok := s.limits.allow(k.ID); !ok {
			s.metrics.rejected.WithLabelValues("rate_limited").Inc()
			w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
			writeErr(w, refuse(http.StatusTooManyRequests, "rate_limited", "API key %s is over its rate of %g requests a second (burst %d); retry later", k.ID, s.cfg.KeyRate, s.cfg.KeyBurst))
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, k)))
	})
}

// limiters is a token bucket per key id.
type limiters struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	return &limiters{rate: rate.Limit(perSecond), burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes a token of id's bucket, or says how long until one is due
// (at least a second, as Retry-After counts whole seconds).
func (l *limiters) allow(id string) (time.Duration, bool) {
	now := time.Now()
	l.mu.Lock()
	lim, ok := l.m[id]
	if !ok {
		// Buckets of keys that have refilled are forgotten before the map
		// grows large (revoked keys, keys not used for a while).
		if len(l.m) >= 1024 {
			for k, v := range l.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[id] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return max(d, time.Second), false
	}
	return 0, true
}

// nosniff tells browsers never to guess a content type on any answer.
func nosniff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
