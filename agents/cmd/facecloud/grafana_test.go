package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/scaler"
	"github.com/facecloud/facecloud/agents/web"
	"github.com/facecloud/facecloud/agents/worker"
	"github.com/facecloud/facecloud/internal/testenv"
)

// staticFleet is a test double for the worker fleet (an Auto Scaling group
// or procfleet): the scaler only needs one to register its metrics.
type staticFleet struct{}

func (staticFleet) Size(context.Context) (platform.FleetSize, error) {
	return platform.FleetSize{}, nil
}
func (staticFleet) SetDesired(_ context.Context, n int) (int, error) { return n, nil }
func (staticFleet) Close() error                                     { return nil }

// agentRegistries builds the web agent, the scaler and a worker as their
// commands do, each with its own registry, and returns the registries.
func agentRegistries(t *testing.T) map[string]*prometheus.Registry {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	env := &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: func(string) string { return "" }}
	queue := func(name string) platform.Queue {
		q, err := openQueue(ctx, env, localQueueURL(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	store, err := openStore(ctx, env, localStoreURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	regs := map[string]*prometheus.Registry{"web": prometheus.NewRegistry(), "scaler": prometheus.NewRegistry(), "worker": prometheus.NewRegistry()}

	w, err := web.New(web.DefaultConfig(), web.Deps{Requests: queue(RequestQueueName), Replies: queue(ReplyQueueName), Inputs: store, Outputs: store, Registry: regs["web"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := scaler.New(scaler.DefaultConfig, scaler.Deps{Queue: queue(RequestQueueName), Fleet: staticFleet{}, Metrics: regs["scaler"],
		DeadLetters: queue(RequestQueueName + DeadLetterSuffix), Status: store}); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.New(worker.DefaultConfig, worker.Deps{Requests: queue(RequestQueueName), Replies: queue(ReplyQueueName), Input: store, Output: store,
		Recognizer: &worker.FaceRecognizer{}, Metrics: regs["worker"]}); err != nil {
		t.Fatal(err)
	}
	return regs
}

// exported reports whether reg has a metric named name: registering a
// probe of that name is refused when one is there (whatever its labels),
// which finds a vector that has no series yet too.
func exported(reg *prometheus.Registry, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}

var (
	metricRE = regexp.MustCompile(`\b[a-z_][a-z0-9_]*_[a-z0-9_]+\b`)
	// promQL words that look like metric names.
	promQLWords = map[string]bool{"histogram_quantile": true, "label_replace": true}
)

// TestGrafanaDashboard: every metric docs/grafana/facecloud.json queries is
// exported by an agent (a histogram's _bucket, _sum and _count included),
// and every panel has a query.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "grafana", "facecloud.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	regs := agentRegistries(t)
	if exported(regs["web"], "facecloud_no_such_metric") {
		t.Fatal("the probe finds a metric that is not there")
	}
	used := map[string][]string{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			// Label values in quotes and label names in braces or by()
			// are not metric names.
			expr := regexp.MustCompile(`"[^"]*"|\{[^}]*\}|by \([^)]*\)`).ReplaceAllString(tg.Expr, "")
			for _, m := range metricRE.FindAllString(expr, -1) {
				if !promQLWords[m] {
					used[m] = append(used[m], p.Title)
				}
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("the dashboard queries %d metrics: %v", len(used), used)
	}
	names := make([]string, 0, len(used))
	for m := range used {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		found := ""
		for agent, reg := range regs {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(m, suf); ok && exported(reg, s) {
					base = s
				}
			}
			if exported(reg, base) {
				found = agent
			}
		}
		if found == "" {
			t.Errorf("panels %q query %s, which no agent exports", used[m], m)
		}
	}
}
