package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/models"
)

// Where artifacts land on an instance.
const (
	agentPath = "/opt/facecloud/bin/facecloud"
	modelDir  = "/opt/facecloud/models"
)

// artifact is one file shipped to the instances, stored in the artifacts
// bucket under a key that contains its sha256, so a changed file gets a new
// key, the user data that names the key changes, and the instances roll.
type artifact struct {
	// Name is the file's name on the instance, relative to its directory.
	Name   string
	Local  string
	SHA256 string
	Key    string
	Dest   string
	Mode   string
}

// artifacts are the agent binary and the model files.
type artifacts struct {
	Agent  artifact
	Models []artifact
}

// agentBuilder compiles the facecloud binary for linux/goarch into out.
type agentBuilder func(ctx context.Context, goarch, out string) error

// modelSource returns a directory holding every pinned model file.
type modelSource func(ctx context.Context) (string, error)

// ensureModels is the production modelSource: the model cache, filled with
// `npm pack` and checked against the pinned sums on first use.
func ensureModels(ctx context.Context) (string, error) {
	dir := models.DefaultDir()
	if err := models.Ensure(ctx, dir); err != nil {
		return "", fmt.Errorf("model files: %w", err)
	}
	return dir, nil
}

// goBuild is the production agentBuilder: `go build ./agents/cmd/facecloud`
// from the module root with cgo off. -trimpath and -buildvcs=false make the
// output depend on the source and toolchain only, so a commit that changes
// no code does not roll the fleet.
func goBuild(ctx context.Context, goarch, out string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./agents/cmd/facecloud")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build facecloud for linux/%s: %w: %s", goarch, err, firstLine(stderr.String()))
	}
	return nil
}

// moduleRoot is the directory of the go.mod that holds this program; Pulumi
// runs the program from stack/, tests from the package directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root (go env GOMOD): %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("find module root: not inside the facecloud module")
	}
	return filepath.Dir(gomod), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// prepareArtifacts builds the agent into workDir and hashes it and the
// model files. It runs on every `pulumi preview` and `pulumi up`.
func prepareArtifacts(ctx context.Context, goarch, workDir string, build agentBuilder, source modelSource) (*artifacts, error) {
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("artifact directory: %w", err)
	}
	tmp, err := os.CreateTemp(workDir, "facecloud-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("artifact directory: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := build(ctx, goarch, tmp.Name()); err != nil {
		return nil, err
	}
	bin := filepath.Join(workDir, "facecloud-linux-"+goarch)
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return nil, fmt.Errorf("artifact directory: %w", err)
	}
	a := &artifacts{}
	if a.Agent, err = newArtifact(bin, "facecloud", "agent", agentPath, "0755"); err != nil {
		return nil, err
	}
	dir, err := source(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range models.Files {
		if strings.HasPrefix(f.Name, "demo/") {
			continue // sample photos for local demos, not needed by the engine
		}
		m, err := newArtifact(filepath.Join(dir, filepath.FromSlash(f.Name)), f.Name, "models", path.Join(modelDir, f.Name), "0644")
		if err != nil {
			return nil, err
		}
		a.Models = append(a.Models, m)
	}
	sort.Slice(a.Models, func(i, j int) bool { return a.Models[i].Name < a.Models[j].Name })
	return a, nil
}

func newArtifact(local, name, kind, dest, mode string) (artifact, error) {
	sum, err := fileSHA256(local)
	if err != nil {
		return artifact{}, fmt.Errorf("artifact %s: %w", name, err)
	}
	return artifact{
		Name:   name,
		Local:  local,
		SHA256: sum,
		Key:    path.Join(kind, sum, path.Base(name)),
		Dest:   dest,
		Mode:   mode,
	}, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// shipped are the uploaded artifacts. Instances that fetch a file depend on
// its upload, so they are only created once it is in the bucket.
type shipped struct {
	agent  pulumi.Resource
	models []pulumi.Resource
}

func uploadArtifacts(ctx *pulumi.Context, c Config, bucket *s3.BucketV2, a *artifacts) (*shipped, error) {
	upload := func(x artifact) (pulumi.Resource, error) {
		obj, err := s3.NewBucketObjectv2(ctx, "artifact-"+strings.NewReplacer("/", "-", ".", "-").Replace(x.Name), &s3.BucketObjectv2Args{
			Bucket:               bucket.ID(),
			Key:                  pulumi.String(x.Key),
			Source:               pulumi.NewFileAsset(x.Local),
			ServerSideEncryption: pulumi.String("AES256"),
			ContentType:          pulumi.String("application/octet-stream"),
			Tags:                 c.tags("sha256", x.SHA256),
		})
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", x.Name, err)
		}
		return obj, nil
	}
	s := &shipped{}
	var err error
	if s.agent, err = upload(a.Agent); err != nil {
		return nil, err
	}
	for _, m := range a.Models {
		obj, err := upload(m)
		if err != nil {
			return nil, err
		}
		s.models = append(s.models, obj)
	}
	return s, nil
}
