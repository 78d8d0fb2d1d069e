package web

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/facecloud/facecloud/agents/keys"
)

// webAPIDoc is docs/web-api.md.
func webAPIDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "web-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of the "## title" section of a Markdown doc.
func section(t *testing.T, doc, title string) string {
	t.Helper()
	i := strings.Index(doc, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("docs/web-api.md has no section %q", title)
	}
	rest := doc[i+len(title)+5:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

var (
	docRouteRE  = regexp.MustCompile("(?m)^\\| `(GET|POST|PUT|PATCH|DELETE) (/[^`]*)` \\| ([^|]+) \\|")
	placeholder = regexp.MustCompile(`\{[^}]*\}`)
)

// normalRoute writes a route with its placeholders unnamed, the root as /.
func normalRoute(method, pattern string) string {
	if pattern == "/{$}" {
		pattern = "/"
	}
	return method + " " + placeholder.ReplaceAllString(pattern, "{}")
}

// TestRoutesAsDocumented reads the routes table of docs/web-api.md: every
// route documented is served and every route served is documented, and a
// route answers 401 without a key exactly when the table gives it a scope,
// and lets a key of that scope through.
func TestRoutesAsDocumented(t *testing.T) {
	rows := docRouteRE.FindAllStringSubmatch(section(t, webAPIDoc(t), "Routes"), -1)
	if len(rows) < 5 {
		t.Fatalf("found %d routes in the docs' table", len(rows))
	}
	e := newEnv(t)
	s, hs := e.server(testConfig())
	served := map[string]bool{}
	for _, r := range s.Routes() {
		served[normalRoute(r.Method, r.Pattern)] = true
	}
	documented := map[string]bool{}
	for _, row := range rows {
		method, path, scope := row[1], row[2], strings.TrimSpace(row[3])
		key := normalRoute(method, path)
		documented[key] = true
		if !served[key] {
			t.Errorf("docs/web-api.md documents %s, which the server does not serve", key)
			continue
		}
		url := hs.URL + placeholder.ReplaceAllString(path, "x")
		anon := doAs(t, http.Header{}, method, url, "", nil)
		switch {
		case scope == "none" && anon.status == http.StatusUnauthorized:
			t.Errorf("%s: documented without a key, answers 401", key)
		case scope != "none" && anon.status != http.StatusUnauthorized:
			t.Errorf("%s: documented with scope %q, answers %d without a key", key, scope, anon.status)
		}
		if scope == "none" {
			continue
		}
		want := keys.Scope(strings.Trim(strings.Fields(scope)[0], "`"))
		h := http.Header{"X-Api-Key": {e.newKey(want)}}
		if got := doAs(t, h, method, url, "", nil); got.status == http.StatusUnauthorized || got.status == http.StatusForbidden {
			t.Errorf("%s: documented scope %s is refused (%d %s)", key, want, got.status, got.body)
		}
	}
	var missing []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	for _, r := range missing {
		t.Errorf("the server serves %s, which docs/web-api.md does not document", r)
	}
}

var docMetricRE = regexp.MustCompile("(?m)^\\| `(facecloud_[a-z_]+)(\\{[^}]*\\})?` \\|")

// TestMetricsAsDocumented: the metrics table of docs/web-api.md lists
// exactly the web agent's own series, with their labels.
func TestMetricsAsDocumented(t *testing.T) {
	e := newEnv(t)
	d := e.deps()
	s, err := New(testConfig(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A vector shows its series once used: one request, and one refusal.
	httptestDo(s, http.MethodGet, "/healthz", "", nil)
	body, ct := multipartBody(t, filePart{"inputFile", "a.jpg", []byte("not an image")})
	if r := httptestDo(s, http.MethodPost, "/", ct, body); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("text posted as an image: %d %s", r.status, r.body)
	}
	families, err := d.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string][]string{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "facecloud_") {
			continue
		}
		exported[f.GetName()] = labelNames(f)
	}
	documented := map[string]bool{}
	for _, m := range docMetricRE.FindAllStringSubmatch(section(t, webAPIDoc(t), "Metrics"), -1) {
		name, labels := m[1], strings.Trim(m[2], "{}")
		documented[name] = true
		got, ok := exported[name]
		if !ok {
			t.Errorf("docs/web-api.md documents %s, which the web agent does not export", name)
			continue
		}
		var want []string
		if labels != "" {
			want = strings.Split(labels, ",")
		}
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: documented labels %v, exported %v", name, want, got)
		}
	}
	for name := range exported {
		if !documented[name] {
			t.Errorf("the web agent exports %s, which docs/web-api.md does not document", name)
		}
	}
}

// labelNames lists a metric family's label names (a vector with no series
// yet has none to show; every documented vector is pre-populated or seen).
func labelNames(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(out, l.GetName()) {
				out = append(out, l.GetName())
			}
		}
	}
	sort.Strings(out)
	return out
}
