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
		t.Fatal("no go toolchain on PATH to cross-compile with, as pulumi up does")
	}
	work := t.TempDir()
	m, err := runStack(t, map[string]string{"image": "stock", "arch": "arm64"}, inputs{build: goBuild, models: fakeModels(t), workDir: work})
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
if [ -n "${FAKE_FAILURES:-}" ] && [ "$(wc -l < "$FAKE_S3/calls")" -le "$FAKE_FAILURES" ]; then
	echo "Could not connect to the endpoint URL" >&2
	exit 1
fi
args=("$@")
n=${#args[@]}
src=${args[$((n-2))]} dst=${args[$((n-1))]}
cp "$FAKE_S3/${src#s3://}" "$dst"
`

func TestFetchArtifactsScript(t *testing.T) {
	for _, tool := range []string{"bash", "sha256sum", "install", "mktemp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("no %s on PATH to run the boot script with (the instances have it)", tool)
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
	run := func(env ...string) (string, error) {
		cmd := exec.Command("bash", script, "arts", "us-east-1", manifestFile)
		cmd.Env = append(append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "FAKE_S3="+s3, "FACECLOUD_FETCH_MAX_WAIT=0"), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	calls := func() int {
		b, _ := os.ReadFile(filepath.Join(s3, "calls"))
		return strings.Count(string(b), "\n")
	}

	// The bucket unreachable for the first two tries: the boot waits and
	// succeeds rather than failing for good.
	writeManifest(sum)
	if out, err := run("FAKE_FAILURES=2"); err != nil || !strings.Contains(out, "download failed (try 2)") {
		t.Fatalf("first boot with the bucket briefly unreachable: %v\n%s", err, out)
	}
	base := calls()
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
	if out, err := run(); err != nil || calls() != base {
		t.Errorf("second boot: %v, %d downloads in all, want %d\n%s", err, calls(), base, out)
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

	// Unreachable past the deadline: it gives up, saying so.
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	writeManifest(sum)
	out, err = run("FAKE_FAILURES=1000", "FACECLOUD_FETCH_DEADLINE=0")
	if err == nil || !strings.Contains(out, "giving up") {
		t.Errorf("unreachable past the deadline: %v\n%s", err, out)
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
	userData := map[string]string{}
	for _, preset := range []string{awsres.PresetDefault, awsres.PresetCourse} {
		c, err := readConfig("facecloud", "dev", "us-east-1", &mapSource{values: map[string]string{"namingPreset": preset}})
		if err != nil {
			t.Fatal(err)
		}
		names, err := awsres.NewNames(c.NamingPreset, c.NamePrefix)
		if err != nil {
			t.Fatal(err)
		}
		a := &artifacts{Agent: artifact{Name: "facecloud", SHA256: strings.Repeat("a", 64), Key: "agent/a/facecloud", Dest: agentPath, Mode: "0755"}}
		if userData[preset+" worker"], err = workerUserData(c, names, a, queueURL("r"), queueURL("s")); err != nil {
			t.Fatal(err)
		}
		if userData[preset+" web"], err = webUserData(c, names, a, queueURL("r"), queueURL("s")); err != nil {
			t.Fatal(err)
		}
	}
	ref := regexp.MustCompile(`\$\{([A-Z_]+)\}`)
	for role, ud := range userData {
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

// TestUnitsUseAgentFlags builds facecloud for this machine and checks that
// every flag a systemd unit passes is one its subcommand defines, so a
// renamed flag fails here rather than on a booting instance.
func TestUnitsUseAgentFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent; run without -short")
	}
	root, err := moduleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "facecloud")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./agents/cmd/facecloud")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build facecloud: %v\n%s", err, out)
	}
	execStart := regexp.MustCompile(`(?m)^ExecStart=/opt/facecloud/bin/facecloud (\w+) (.*)$`)
	flag := regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
	units, err := images.FS.ReadDir("systemd")
	if err != nil {
		t.Fatal(err)
	}
	agents := 0
	for _, u := range units {
		src, err := images.FS.ReadFile("systemd/" + u.Name())
		if err != nil {
			t.Fatal(err)
		}
		m := execStart.FindStringSubmatch(string(src))
		if m == nil {
			continue
		}
		agents++
		t.Run(u.Name(), func(t *testing.T) {
			help, _ := execCommand(t, bin, m[1], "-h")
			for _, f := range flag.FindAllStringSubmatch(m[2], -1) {
				if !strings.Contains(help, "  -"+f[1]+" ") && !strings.Contains(help, "  -"+f[1]+"\n") {
					t.Errorf("facecloud %s has no flag -%s:\n%s", m[1], f[1], help)
				}
			}
		})
	}
	if agents != 3 {
		t.Errorf("%d units start an agent, want web, scaler and worker", agents)
	}
}

func execCommand(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	return string(out), err
}

// fakeIMDS stands in for curl against the instance metadata service: a
// token for the PUT, the instance id for the GET.
const fakeIMDS = `#!/bin/bash
case "$*" in
*api/token*) echo token ;;
*instance-id*) echo i-0self ;;
*) exit 22 ;;
esac
`

// fakeEC2 stands in for the AWS CLI's EC2 calls: describe-instances prints
// $FAKE_NAMES (the other workers' Name tags), create-tags logs its arguments.
const fakeEC2 = `#!/bin/bash
case "$2" in
describe-instances) echo "$FAKE_NAMES" ;;
create-tags) echo "$*" >> "$FAKE_LOG" ;;
*) exit 1 ;;
esac
`

func TestNameInstanceScript(t *testing.T) {
	for _, tool := range []string{"bash", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("no %s on PATH to run the boot script with (the instances have it)", tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := images.FS.ReadFile("scripts/name-instance.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "name-instance")
	for p, body := range map[string]string{script: string(src), filepath.Join(bin, "curl"): fakeIMDS, filepath.Join(bin, "aws"): fakeEC2} {
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]struct {
		others string
		want   string
	}{
		"first worker":     {others: "", want: "app-tier-instance-1"},
		"fills a gap":      {others: "app-tier-instance-1\tapp-tier-instance-3", want: "app-tier-instance-2"},
		"after the others": {others: "app-tier-instance-2 app-tier-instance-1", want: "app-tier-instance-3"},
		"ignores unnamed":  {others: "app-tier-instance", want: "app-tier-instance-1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			cmd := exec.Command("bash", script, "grp", "us-east-1", "app-tier-instance-%d")
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "FAKE_NAMES="+tc.others, "FAKE_LOG="+log)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if want := "ec2 create-tags --region us-east-1 --resources i-0self --tags Key=Name,Value=" + tc.want + "\n"; string(got) != want {
				t.Errorf("tagged with %q, want %q", got, want)
			}
		})
	}
}

// TestUnitsVerify runs systemd's own checker on every unit, ignoring only
// that the agent and scripts are not installed on the test machine.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("no systemd-analyze on PATH (Debian's systemd package) to check the units with")
	}
	units, err := images.FS.ReadDir("systemd")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, u := range units {
		b, err := images.FS.ReadFile("systemd/" + u.Name())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u.Name())
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(u.Name(), func(t *testing.T) {
			out, _ := exec.Command("systemd-analyze", "verify", "--man=no", p).CombinedOutput()
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if l == "" || strings.Contains(l, "is not executable: No such file or directory") {
					continue
				}
				t.Errorf("systemd-analyze: %s", l)
			}
		})
	}
}
