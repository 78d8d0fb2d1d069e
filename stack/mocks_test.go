package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/models"
	"github.com/facecloud/facecloud/stack/rehearsal"
)

// Fixed answers of the stand-in cloud.
const (
	mockAccount   = rehearsal.DefaultAccount
	mockRegion    = rehearsal.DefaultRegion
	mockStockAMI  = rehearsal.DefaultStockAMI
	mockBuiltAMI  = rehearsal.DefaultBuiltAMI
	mockPublicIP  = rehearsal.DefaultPublicIP
	testProject   = "facecloud"
	testStackName = "test"
)

// recorded is one resource the program declared.
type recorded = rehearsal.Resource

// mockCloud is rehearsal.Cloud (the stand-in for the Pulumi engine and the
// AWS provider) with the look-ups the tests use.
type mockCloud struct {
	rehearsal.Cloud
}

// of returns the recorded resources of type t, sorted by name.
func (m *mockCloud) of(t string) []recorded {
	c := rehearsal.Capture{Resources: m.Resources()}
	return c.Of(t)
}

// one returns the single resource of type t named name.
func (m *mockCloud) one(t *testing.T, typ, name string) recorded {
	t.Helper()
	c := rehearsal.Capture{Resources: m.Resources()}
	r, err := c.One(typ, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// get walks nested maps and lists: get(r.Inputs, "metadataOptions", "httpTokens").
func get(v any, path ...any) any { return rehearsal.Get(v, path...) }

func getString(v any, path ...any) string { return rehearsal.String(v, path...) }

func getNumber(v any, path ...any) float64 { return rehearsal.Number(v, path...) }

// fakeBuild stands in for `go build` of the agent: it writes a small file
// whose bytes depend on the architecture and on marker, as a real build's
// bytes depend on the source.
func fakeBuild(marker string) agentBuilder {
	return func(_ context.Context, goarch, out string) error {
		return os.WriteFile(out, []byte("facecloud agent stand-in "+goarch+" "+marker+"\n"), 0o755)
	}
}

// fakeModels stands in for the model cache that models.Ensure fills with
// `npm pack`: a directory with every pinned file name, each holding a line
// of text instead of the weights.
func fakeModels(t *testing.T) modelSource {
	dir := t.TempDir()
	for _, f := range models.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stand-in for "+f.Name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return func(context.Context) (string, error) { return dir, nil }
}

// runStack runs the program under the mocks with cfg as the stack's config
// (keys without a namespace get the project's) and returns what it declared.
func runStack(t *testing.T, cfg map[string]string, in inputs) (*mockCloud, error) {
	t.Helper()
	return runStackIn(t, &mockCloud{}, cfg, in)
}

// runStackIn is runStack against m (e.g. another account).
func runStackIn(t *testing.T, m *mockCloud, cfg map[string]string, in inputs) (*mockCloud, error) {
	t.Helper()
	full := map[string]string{"aws:region": mockRegion}
	for k, v := range cfg {
		if !strings.Contains(k, ":") {
			k = testProject + ":" + k
		}
		full[k] = v
	}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(pulumi.EnvConfig, string(b))
	if in.workDir == "" {
		in.workDir = t.TempDir()
	}
	err = pulumi.RunErr(func(ctx *pulumi.Context) error { return program(ctx, in) },
		pulumi.WithMocks(testProject, testStackName, m))
	return m, err
}
