package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

// family opens the data directory's reply queue family, as each web host
// and the worker do.
func (e *env) family() *sqlitequeue.Family {
	e.t.Helper()
	u := &url.URL{Scheme: "sqlite", Path: filepath.ToSlash(filepath.Join(e.dir, "queue.db")), RawQuery: "name=reply-"}
	f, err := sqlitequeue.OpenFamily(context.Background(), u)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f
}

// hostServer starts a web host with a reply queue of its own in fam.
func (e *env) hostServer(cfg Config, fam platform.QueueFamily, host string) (*Server, string) {
	e.t.Helper()
	s, err := New(cfg, Deps{Requests: e.queue("requests"), ReplyFamily: fam, Host: host,
		Inputs: e.store, Outputs: e.store, Registry: prometheus.NewRegistry(), Keys: e.keys})
	if err != nil {
		e.t.Fatal(err)
	}
	return s, e.serve(s)
}

func (e *env) serve(s *Server) string {
	e.t.Helper()
	hs := httptest.NewServer(s.Handler())
	e.t.Cleanup(func() { hs.Close(); s.Close() })
	return hs.URL
}

// TestHostsGetTheirOwnReplies: two web hosts with a reply queue each; every
// answer reaches the host whose call waits for it by its reply (the store
// poll is set too slow to stand in), nothing is orphaned, and a host's
// clean stop removes its queue.
func TestHostsGetTheirOwnReplies(t *testing.T) {
	e := newEnv(t)
	fam := e.family()
	cfg := testConfig()
	cfg.PollInterval, cfg.PollMax = time.Minute, time.Minute
	s1, base1 := e.hostServer(cfg, fam, "web-a.example.internal")
	s2, base2 := e.hostServer(cfg, fam, "web-b")
	if !strings.Contains(s1.replyTo(), "name=reply-web-a-") || s1.replyTo() == s2.replyTo() {
		t.Fatalf("reply queues %q and %q: want one each, named after the host", s1.replyTo(), s2.replyTo())
	}
	w := &fakeWorker{answers: map[string]string{}, family: fam}
	for i := range 20 {
		w.answers[fmt.Sprintf("img_%02d", i)] = fmt.Sprintf("P%d", i)
	}
	e.startWorker(w)
	img := pngImage(t, 32, 32)
	results := make(chan error, 20)
	for i := range 20 {
		base := base1
		if i%2 == 1 {
			base = base2
		}
		go func() {
			r := postImage(t, base, fmt.Sprintf("img_%02d.png", i), img)
			if want := fmt.Sprintf("img_%02d:P%d", i, i); r.status != 200 || r.body != want {
				results <- fmt.Errorf("%s: %d %q, want %q", base, r.status, r.body, want)
				return
			}
			results <- nil
		}()
	}
	for range 20 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	for i, s := range []*Server{s1, s2} {
		if got := counter(s.metrics.replies, "routed"); got != 10 {
			t.Errorf("host %d: %v replies routed, want 10", i+1, got)
		}
		if got := counter(s.metrics.replies, "orphaned"); got != 0 {
			t.Errorf("host %d: %v replies orphaned, want 0", i+1, got)
		}
		if got := counter(s.metrics.answers, "store"); got != 0 {
			t.Errorf("host %d: %v answers found by polling the store, want 0", i+1, got)
		}
	}
	gone := s2.replyTo()
	s2.Close()
	members, err := fam.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Address != s1.replyTo() {
		t.Fatalf("after host 2's clean stop the family holds %v, want only host 1's %s (not %s)", members, s1.replyTo(), gone)
	}
}

// TestHostReplacesRemovedQueue: a host whose reply queue was removed under
// it (a collector that took it for a dead host's) makes a new one at its
// next touch, and its answers come by reply again.
func TestHostReplacesRemovedQueue(t *testing.T) {
	e := newEnv(t)
	fam := e.family()
	cfg := testConfig()
	cfg.PollInterval, cfg.PollMax = time.Minute, time.Minute
	cfg.ReplyTouch = time.Second
	s, base := e.hostServer(cfg, fam, "web-a")
	e.startWorker(&fakeWorker{answers: map[string]string{"a": "Ana"}, family: fam})
	first := s.replyTo()
	if err := fam.Remove(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.replyTo() == first {
		if time.Now().After(deadline) {
			t.Fatal("the host did not replace its removed reply queue")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := postImage(t, base, "a.png", pngImage(t, 32, 32)); r.status != 200 || r.body != "a:Ana" {
		t.Fatalf("after the new queue: %d %q", r.status, r.body)
	}
	if got := counter(s.metrics.answers, "reply"); got != 1 {
		t.Fatalf("answers by reply %v, want 1", got)
	}
}
