package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/images"
)

// TestCrossCompiledAgentInLaunchTemplate really builds facecloud for
// linux/arm64 with cgo off, as `pulumi up` does, and follows its hash into
// the uploaded object's key and the workers' launch template: a code change
// is a new launch template version, which refreshes the group.
func TestCrossCompiledAgentInLaunchTemplate(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the agent (minutes on a cold build cache); run without -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain on PATH to cross-compile with")
	}
	work := t.TempDir()
	m, err := runStack(t, map[string]string{"image": "stock"}, inputs{build: goBuild, models: fakeModels(t), workDir: work})
	if err != nil {
		t.Fatalf("program: %v", err)
	}
	bin := filepath.Join(work, "facecloud-linux-arm64")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("agent build is not an ELF file: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("agent built for %v, want AArch64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("agent is dynamically linked (program header %v): cgo must be off", p.Type)
		}
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	key := "agent/" + sum + "/facecloud"
	obj := m.one(t, "aws:s3/bucketObjectv2:BucketObjectv2", "artifact-facecloud")
	if getString(obj.Inputs, "key") != key || getString(obj.Inputs, "source") != bin {
		t.Errorf("agent uploaded as %q from %q, want %q from %q", getString(obj.Inputs, "key"), getString(obj.Inputs, "source"), key, bin)
	}
	files := cloudInit(t, workerUserDataOf(t, m))
	want := sum + " " + key + " " + agentPath + " 0755"
	if !strings.Contains(files["/etc/facecloud/artifacts.manifest"], want) {
		t.Errorf("launch template manifest lacks %q:\n%s", want, files["/etc/facecloud/artifacts.manifest"])
	}
}

// fakeAWS stands in for the AWS CLI on an instance: `aws s3 cp [opts]
// s3://BUCKET/KEY DEST` copies $FAKE_S3/BUCKET/KEY and logs the call.
const fakeAWS = `#!/bin/bash
set -eu
echo "$*" >> "$FAKE_S3/calls"
args=("$@")
n=${#args[@]}
src=${args[$((n-2))]} dst=${args[$((n-1))]}
cp "$FAKE_S3/${src#s3://}" "$dst"
`

func TestFetchArtifactsScript(t *testing.T) {
	for _, tool := range []string{"bash", "sha256sum", "install", "mktemp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH to run the boot script with", tool)
		}
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "fetch-artifacts")
	src, err := images.FS.ReadFile("scripts/fetch-artifacts.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	s3 := filepath.Join(dir, "s3")
	root := filepath.Join(dir, "root")
	for _, d := range []string{bin, filepath.Join(s3, "arts", "agent", "x"), root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(script, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(fakeAWS), 0o755); err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(s3, "arts", "agent", "x", "facecloud")
	if err := os.WriteFile(agent, []byte("agent build 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := fileSHA256(agent)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(root, "opt", "facecloud", "bin", "facecloud")
	manifestFile := filepath.Join(dir, "manifest")
	writeManifest := func(sum string) {
		if err := os.WriteFile(manifestFile, []byte(sum+" agent/x/facecloud "+dest+" 0755\n\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func() (string, error) {
		cmd := exec.Command("bash", script, "arts", "us-east-1", manifestFile)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "FAKE_S3="+s3)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	calls := func() int {
		b, _ := os.ReadFile(filepath.Join(s3, "calls"))
		return strings.Count(string(b), "\n")
	}

	writeManifest(sum)
	if out, err := run(); err != nil {
		t.Fatalf("first boot: %v\n%s", err, out)
	}
	got, err := os.ReadFile(dest)
	if err != nil || string(got) != "agent build 1\n" {
		t.Fatalf("installed %q, %v", got, err)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o755 {
		t.Errorf("installed with mode %v, want 0755", st.Mode().Perm())
	}
	if b, _ := os.ReadFile(filepath.Join(s3, "calls")); !strings.Contains(string(b), "--region us-east-1 s3://arts/agent/x/facecloud") {
		t.Errorf("aws called as %q", b)
	}

	// A reboot with the same manifest downloads nothing.
	if out, err := run(); err != nil || calls() != 1 {
		t.Errorf("second boot: %v, %d downloads in all, want 1\n%s", err, calls(), out)
	}

	// An object that does not match its sum is refused and changes nothing.
	writeManifest(strings.Repeat("0", 64))
	out, err := run()
	if err == nil || !strings.Contains(out, "sha256 is not") {
		t.Errorf("mismatched object accepted: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(dest); string(got) != "agent build 1\n" {
		t.Errorf("a refused download replaced the installed file: %q", got)
	}
	left, _ := filepath.Glob(dest + ".*")
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	// Wrong usage is one clear line.
	cmd := exec.Command("bash", script)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.HasPrefix(string(b), "usage: fetch-artifacts") {
		t.Errorf("no arguments: %v %q", err, b)
	}
}

// TestUnitsHaveTheirEnvironment checks that every variable a systemd unit
// expands is set by the environment files the same host gets.
func TestUnitsHaveTheirEnvironment(t *testing.T) {
	c, err := readConfig("facecloud", "dev", "us-east-1", &mapSource{})
	if err != nil {
		t.Fatal(err)
	}
	names, err := awsres.NewNames(c.NamingPreset, c.NamePrefix)
	if err != nil {
		t.Fatal(err)
	}
	a := &artifacts{Agent: artifact{Name: "facecloud", SHA256: strings.Repeat("a", 64), Key: "agent/a/facecloud", Dest: agentPath, Mode: "0755"}}
	worker, err := workerUserData(c, names, a, queueURL("r"), queueURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	web, err := webUserData(c, names, a, queueURL("r"), queueURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	ref := regexp.MustCompile(`\$\{([A-Z_]+)\}`)
	for role, ud := range map[string]string{"worker": worker, "web": web} {
		t.Run(role, func(t *testing.T) {
			files := cloudInit(t, ud)
			env := envOf(files["/etc/facecloud/agent.env"])
			for k, v := range envOf(files["/etc/facecloud/artifacts.env"]) {
				env[k] = v
			}
			units := 0
			for path, content := range files {
				if !strings.HasSuffix(path, ".service") {
					continue
				}
				units++
				for _, m := range ref.FindAllStringSubmatch(content, -1) {
					if env[m[1]] == "" {
						t.Errorf("%s uses ${%s}, which the %s host's environment files do not set", path, m[1], role)
					}
				}
			}
			if units < 2 {
				t.Errorf("%d units in the %s user data", units, role)
			}
			if len(ud) > maxUserData {
				t.Errorf("%s user data %d bytes", role, len(ud))
			}
		})
	}
}

func TestEnvFileRefusesUnsafeValues(t *testing.T) {
	if _, err := envFile(map[string]string{"A": "x y"}); err == nil {
		t.Error("accepted a value with a space")
	}
	got, err := envFile(map[string]string{"B": "2", "A": "s3://b?region=x"})
	if err != nil || got != "A=s3://b?region=x\nB=2\n" {
		t.Errorf("envFile = %q, %v", got, err)
	}
}
