package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/facecloud/facecloud/stack/rehearsal"
)

// Paths of a host that live under its temporary root: what the user data
// writes, the units' state directory and the installed artifacts. Every
// absolute path under them in the user data and units is moved under the
// host's root; the rest of the file system is this machine's.
var hostPrefixes = []string{"/opt/facecloud", "/etc/facecloud", "/var/lib/facecloud", "/etc/systemd/system", "/var/log/facecloud", "/etc/logrotate.d"}

// imagePackages are the packages the user data may ask the image's package
// manager for; the rehearsal stands in for each (docs/aws.md): the
// CloudWatch agent by logShipper, logrotate by nothing (files stay small).
var imagePackages = map[string]bool{"amazon-cloudwatch-agent": true, "logrotate": true}

// Unit directives the rehearsal plays, and those it accepts without
// reproducing (docs/aws.md lists them). Any other directive fails the
// rehearsal, so a unit that starts using one is noticed.
var (
	playedDirectives = map[string]bool{
		"Unit.Description": true, "Unit.After": true, "Unit.Requires": true, "Unit.Wants": true,
		"Unit.OnFailure": true, "Unit.StartLimitIntervalSec": true, "Unit.StartLimitBurst": true,
		"Service.Type": true, "Service.RemainAfterExit": true, "Service.User": true, "Service.Group": true,
		"Service.EnvironmentFile": true, "Service.Environment": true, "Service.ExecStartPre": true, "Service.ExecStart": true,
		"Service.Restart": true, "Service.RestartSec": true, "Service.StateDirectory": true, "Service.ReadOnlyPaths": true,
		"Service.AmbientCapabilities": true, "Service.PrivateTmp": true, "Service.ProtectSystem": true,
		"Service.StandardOutput": true, "Service.StandardError": true,
		"Install.WantedBy": true,
	}
	unplayedDirectives = map[string]bool{
		"Service.TimeoutStartSec": true, "Service.TimeoutStopSec": true, "Service.CapabilityBoundingSet": true,
		"Service.NoNewPrivileges": true, "Service.ProtectHome": true, "Service.PrivateDevices": true,
	}
)

// host is one instance booted from user data on this machine: its file
// tree under a temporary root, its own metadata service and network path
// to AWS, and its units run by a small stand-in of systemd.
type host struct {
	sys      *system
	id, role string
	root     string
	proxy    *awsProxy
	imds     *http.Server
	imdsURL  string
	units    map[string]rehearsal.Unit
	log      *logBuffer
	ports    map[string]int // FACECLOUD_* listen settings moved to free ports
	mu       sync.Mutex
	running  map[string]*exec.Cmd
	state    map[string]string // unit → active, failed, inactive
	stateCh  chan struct{}     // closed and renewed on every state change
	stopping bool
	// dead is a host killed (not shut down): the instance is still there
	// for its group and its load balancer, answering nothing.
	dead      bool
	lifecycle func() string // autoscaling/target-lifecycle-state
	shipper   *logShipper   // the CloudWatch agent's stand-in
}

// serviceUser is who the units' User= runs as: nobody when the rehearsal
// runs as root (so ReadOnlyPaths and ProtectSystem really refuse writes),
// else the rehearsal's own user, whose read-only paths lose their write bits.
func serviceUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("no user nobody to run the units' User= as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// bootHost boots an instance from its user data: cloud-init's write_files
// and runcmd, then the units runcmd enables, in systemd's order.
func (s *system) bootHost(id, role, userData string, lifecycle func() string) *host {
	t := s.t
	t.Helper()
	h := &host{sys: s, id: id, role: role, root: hostRoot(t, id), log: &logBuffer{},
		units: map[string]rehearsal.Unit{}, ports: map[string]int{}, running: map[string]*exec.Cmd{}, state: map[string]string{},
		stateCh: make(chan struct{}), lifecycle: lifecycle}
	h.proxy = newAWSProxy(t, s.endpoint, id, s.noteRefused, s.secretOf, func(call, queueURL string) bool {
		return s.missingQueueAllowed(role, call, queueURL)
	})
	if s.blockOnBoot != "" {
		h.proxy.block(s.blockOnBoot)
	}
	h.startIMDS(t)
	cc, err := rehearsal.ParseCloudConfig(userData)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	for _, f := range cc.WriteFiles {
		if err := h.writeFile(f); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	for _, p := range cc.Packages {
		if !imagePackages[p] {
			t.Fatalf("%s: package %s is not one the rehearsal stands in for (%v)", id, p, imagePackages)
		}
	}
	var start []string
	for _, cmd := range cc.RunCmd {
		switch {
		case len(cmd) == 5 && slices.Equal(cmd[:4], []string{"install", "-d", "-m", "0755"}):
			if err := os.MkdirAll(h.onHost(cmd[4]), 0o755); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		case len(cmd) == 8 && strings.HasSuffix(cmd[0], "/amazon-cloudwatch-agent-ctl") && slices.Equal(cmd[1:7], []string{"-a", "fetch-config", "-m", "ec2", "-s", "-c"}) && strings.HasPrefix(cmd[7], "file:"):
			if err := h.startLogShipper(strings.TrimPrefix(cmd[7], "file:")); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		case slices.Equal(cmd, []string{"systemctl", "enable", "--now", "logrotate.timer"}):
			// The image's log rotation: not rehearsed.
		case slices.Equal(cmd, []string{"systemctl", "daemon-reload"}):
			if err := h.loadUnits(); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		case len(cmd) > 4 && slices.Equal(cmd[:4], []string{"systemctl", "enable", "--now", "--no-block"}):
			for _, u := range cmd[4:] {
				start = append(start, strings.TrimSuffix(u, ","))
			}
		case len(cmd) == 3 && cmd[0] == "sh" && strings.Contains(cmd[2], "useradd --system") && strings.Contains(cmd[2], "facecloud"):
			// The service user: stood in for by serviceUser.
		default:
			t.Fatalf("%s: runcmd %q is not one the rehearsal knows how to play", id, cmd)
		}
	}
	if len(start) == 0 {
		t.Fatalf("%s: user data starts no unit", id)
	}
	s.mu.Lock()
	s.hosts[id] = h
	s.booted = append(s.booted, h)
	s.mu.Unlock()
	// One transaction, as systemctl enable --now: every job is queued
	// before any runs, so After= orders them.
	h.mu.Lock()
	for _, u := range start {
		h.state[u] = "queued"
	}
	h.mu.Unlock()
	for _, u := range start {
		go h.startUnit(u, map[string]bool{})
	}
	s.top.Cleanup(func() { h.shutdown(10 * time.Second) })
	return h
}

// hostRoot makes the directory a host's file tree lives under, one the
// service user may walk through (t.TempDir is private to the test's user).
func hostRoot(t *testing.T, id string) string {
	dir, err := os.MkdirTemp("", "facecloud-host-"+id+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// onHost moves an absolute path of the instance under the host's root.
func (h *host) onHost(p string) string {
	for _, pre := range hostPrefixes {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return filepath.Join(h.root, p)
		}
	}
	return p
}

// relocate moves every host path inside s (an argument, an environment
// value, a manifest line) under the host's root.
func (h *host) relocate(s string) string {
	for _, pre := range hostPrefixes {
		s = regexp.MustCompile(`(^|[\s=:'"])`+regexp.QuoteMeta(pre)+`\b`).ReplaceAllString(s, "${1}"+filepath.Join(h.root, pre))
	}
	return s
}

func (h *host) writeFile(f rehearsal.WriteFile) error {
	p := h.onHost(f.Path)
	if p == f.Path {
		return fmt.Errorf("write_files %s: outside the paths a host keeps under its root (%v)", f.Path, hostPrefixes)
	}
	mode, err := strconv.ParseUint(f.Permissions, 8, 32)
	if err != nil {
		return fmt.Errorf("write_files %s: permissions %q: %w", f.Path, f.Permissions, err)
	}
	content := f.Content
	if strings.HasPrefix(f.Path, "/etc/facecloud/") {
		content = h.relocate(content) // configuration naming host paths (manifest, models)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), os.FileMode(mode))
}

func (h *host) loadUnits() error {
	dir := h.onHost("/etc/systemd/system")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		u, err := rehearsal.ParseUnit(e.Name(), string(b))
		if err != nil {
			return err
		}
		for sec, ds := range u.Sections {
			for _, d := range ds {
				if k := sec + "." + d.Key; !playedDirectives[k] && !unplayedDirectives[k] {
					return fmt.Errorf("%s: directive %s= is not one the rehearsal plays; teach it (e2e/rehearsal_host_test.go)", e.Name(), k)
				}
			}
		}
		h.units[e.Name()] = u
	}
	return nil
}

// setState records a unit's state and wakes those waiting on it.
func (h *host) setState(unit, st string) {
	h.mu.Lock()
	h.state[unit] = st
	close(h.stateCh)
	h.stateCh = make(chan struct{})
	h.mu.Unlock()
	fmt.Fprintf(h.log, "[%s] systemd: %s %s\n", h.id, unit, st)
}

// waitState waits until unit is in one of states.
func (h *host) waitState(unit string, states ...string) string {
	for {
		h.mu.Lock()
		st, ch := h.state[unit], h.stateCh
		stopping := h.stopping
		h.mu.Unlock()
		if slices.Contains(states, st) || stopping {
			return st
		}
		<-ch
	}
}

// unitState returns a unit's state ("" before it was started).
func (h *host) unitState(unit string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state[unit]
}

// startUnit plays a unit's start job: its After= units first (a failed
// Requires= unit fails it), then ExecStartPre and ExecStart with
// Restart=, start limits and OnFailure=.
func (h *host) startUnit(name string, seen map[string]bool) {
	u, ok := h.units[name]
	if !ok || seen[name] {
		return
	}
	seen[name] = true
	h.mu.Lock()
	if st := h.state[name]; st != "" && st != "queued" {
		h.mu.Unlock()
		return
	}
	h.state[name] = "activating"
	h.mu.Unlock()
	for _, dep := range u.List("Unit", "After") {
		if _, ours := h.units[dep]; !ours {
			continue // network-online.target and the like: up already
		}
		if slices.Contains(u.List("Unit", "Requires"), dep) && h.unitState(dep) == "" {
			h.mu.Lock()
			h.state[dep] = "queued"
			h.mu.Unlock()
			go h.startUnit(dep, map[string]bool{})
		}
		if h.unitState(dep) == "" {
			continue // not part of this transaction
		}
		st := h.waitState(dep, "active", "failed", "inactive")
		if st == "failed" && slices.Contains(u.List("Unit", "Requires"), dep) {
			fmt.Fprintf(h.log, "[%s] systemd: dependency failed for %s (%s)\n", h.id, name, dep)
			h.failed(name, u)
			return
		}
	}
	restart := u.Value("Service", "Restart")
	restartSec := parseSec(u.Value("Service", "RestartSec"), 100*time.Millisecond)
	interval := parseSec(u.Value("Unit", "StartLimitIntervalSec"), 10*time.Second)
	burst, err := strconv.Atoi(u.Value("Unit", "StartLimitBurst"))
	if err != nil {
		burst = 5
	}
	var starts []time.Time
	for {
		starts = append(starts, time.Now())
		if n := len(starts); n > burst && interval > 0 && starts[n-1].Sub(starts[n-1-burst]) < interval {
			fmt.Fprintf(h.log, "[%s] systemd: %s: start request repeated too quickly\n", h.id, name)
			h.failed(name, u)
			return
		}
		err := h.runService(name, u)
		h.mu.Lock()
		stopping := h.stopping
		h.mu.Unlock()
		if stopping {
			return
		}
		oneshot := u.Value("Service", "Type") == "oneshot"
		switch {
		case err == nil && oneshot:
			h.setState(name, "active")
			return
		case err == nil && restart != "always":
			h.setState(name, "inactive")
			return
		case err != nil && restart != "always" && restart != "on-failure":
			fmt.Fprintf(h.log, "[%s] systemd: %s failed: %v\n", h.id, name, err)
			h.failed(name, u)
			return
		}
		fmt.Fprintf(h.log, "[%s] systemd: %s exited (%v); restarting in %s\n", h.id, name, err, restartSec)
		time.Sleep(restartSec)
	}
}

func (h *host) failed(name string, u rehearsal.Unit) {
	h.setState(name, "failed")
	for _, of := range u.List("Unit", "OnFailure") {
		go h.startUnit(of, map[string]bool{})
	}
}

func parseSec(v string, d time.Duration) time.Duration {
	if v == "" {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	if x, err := time.ParseDuration(v); err == nil {
		return x
	}
	return d
}

// environment is what systemd gives the unit's processes: a minimal base,
// its EnvironmentFile= and Environment=, and the rehearsal's stand-ins for
// the instance's network: AWS_ENDPOINT_URL (AWS through this host's proxy)
// and AWS_EC2_METADATA_SERVICE_ENDPOINT (this host's metadata service).
func (h *host) environment(u rehearsal.Unit) ([]string, map[string]string, error) {
	env := map[string]string{}
	for _, f := range u.Values("Service", "EnvironmentFile") {
		optional := strings.HasPrefix(f, "-")
		b, err := os.ReadFile(h.onHost(strings.TrimPrefix(f, "-")))
		if err != nil {
			if optional {
				continue
			}
			return nil, nil, fmt.Errorf("EnvironmentFile %s: %w", f, err)
		}
		for k, v := range rehearsal.EnvFile(string(b)) {
			env[k] = v
		}
	}
	for _, e := range u.Values("Service", "Environment") {
		for _, kv := range strings.Fields(e) {
			k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			env[k] = v
		}
	}
	// Listen settings: every host shares this machine's network.
	for _, k := range []string{"FACECLOUD_PORT", "FACECLOUD_METRICS_ADDR"} {
		v, ok := env[k]
		if !ok {
			continue
		}
		h.mu.Lock()
		port, ok := h.ports[k]
		if !ok {
			port = freePort(h.sys.t)
			h.ports[k] = port
		}
		h.mu.Unlock()
		if k == "FACECLOUD_PORT" {
			env[k] = strconv.Itoa(port)
		} else {
			host, _, _ := net.SplitHostPort(v)
			env[k] = net.JoinHostPort(host, strconv.Itoa(port))
		}
	}
	base := []string{
		"PATH=" + awsCLIDir() + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + filepath.Join(h.root, "home"),
		"AWS_ENDPOINT_URL=" + h.proxy.addr,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + h.imdsURL,
	}
	out := append([]string{}, base...)
	for k, v := range env {
		out = append(out, k+"="+h.relocate(v))
	}
	return out, env, nil
}

var awsCLIOnce = sync.OnceValue(func() string {
	p := os.Getenv(envRehearsalAWSCLI)
	if p == "" {
		p, _ = exec.LookPath("aws")
	}
	dir, err := os.MkdirTemp(scratch, "awscli-")
	if err == nil && p != "" {
		_ = os.Symlink(p, filepath.Join(dir, "aws"))
		_ = os.Chmod(dir, 0o755)
		_ = os.Chmod(scratch, 0o755) // the service user runs the CLI too
	}
	return dir
})

// awsCLIDir is a directory holding only the AWS CLI the boot scripts run.
func awsCLIDir() string { return awsCLIOnce() }

// expand does systemd's variable expansion of an Exec line: ${VAR} is one
// word, $VAR splits on white space.
func expand(line string, env map[string]string) []string {
	var out []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			out = append(out, strings.Fields(env[strings.TrimPrefix(w, "$")])...)
			continue
		}
		out = append(out, regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`).ReplaceAllStringFunc(w, func(m string) string {
			return env[m[2:len(m)-1]]
		}))
	}
	return out
}

// runService runs ExecStartPre lines, then ExecStart, and waits for it.
func (h *host) runService(name string, u rehearsal.Unit) error {
	envList, env, err := h.environment(u)
	if err != nil {
		return err
	}
	var cred *syscall.Credential
	if u.Value("Service", "User") != "" {
		if cred, err = serviceUser(); err != nil {
			return err
		}
	}
	// StateDirectory=: writable by the unit; PrivateTmp=: a /tmp of its own.
	for _, d := range u.List("Service", "StateDirectory") {
		p := h.onHost("/var/lib/" + d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if cred != nil {
			_ = os.Chown(p, int(cred.Uid), int(cred.Gid))
		}
		envList = append(envList, "STATE_DIRECTORY="+p)
	}
	if u.Value("Service", "PrivateTmp") == "yes" {
		p := filepath.Join(h.root, "tmp", name)
		if err := os.MkdirAll(p, 0o1777); err != nil {
			return err
		}
		_ = os.Chmod(p, 0o1777)
		envList = append(envList, "TMPDIR="+p)
	}
	if cred == nil && u.Value("Service", "User") != "" {
		// Not root: the read-only paths lose their write bits.
		for _, p := range u.List("Service", "ReadOnlyPaths") {
			_ = filepath.Walk(h.onHost(p), func(path string, fi os.FileInfo, err error) error {
				if err == nil {
					_ = os.Chmod(path, fi.Mode().Perm()&^0o222)
				}
				return nil
			})
		}
	}
	var caps []uintptr
	for _, c := range u.List("Service", "AmbientCapabilities") {
		if c == "CAP_NET_BIND_SERVICE" {
			caps = append(caps, 10)
		}
	}
	// StandardOutput=/StandardError= append:FILE: systemd opens the file
	// (as root, before dropping privileges) and the unit writes to it.
	var outFiles []*os.File
	defer func() {
		for _, f := range outFiles {
			f.Close()
		}
	}()
	var outFile *os.File
	for _, k := range []string{"StandardOutput", "StandardError"} {
		v := u.Value("Service", k)
		if v == "" {
			continue
		}
		p, ok := strings.CutPrefix(v, "append:")
		if !ok {
			return fmt.Errorf("%s=%s: the rehearsal plays append:FILE only", k, v)
		}
		if outFile != nil && outFile.Name() == h.onHost(p) {
			continue
		}
		f, err := os.OpenFile(h.onHost(p), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err) // systemd fails the unit the same way
		}
		outFiles, outFile = append(outFiles, f), f
	}
	lines := append(append([]string{}, u.Values("Service", "ExecStartPre")...), u.Values("Service", "ExecStart")...)
	for i, line := range lines {
		argv := expand(line, env)
		for j := range argv {
			argv[j] = h.relocate(argv[j])
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = envList
		cmd.Dir = "/"
		w := &unitWriter{h: h, unit: name, file: outFile}
		cmd.Stdout, cmd.Stderr = w, w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
		if cred != nil && len(caps) > 0 {
			cmd.SysProcAttr.AmbientCaps = caps
		}
		h.mu.Lock()
		if h.stopping {
			h.mu.Unlock()
			return nil
		}
		if err := cmd.Start(); err != nil {
			h.mu.Unlock()
			return fmt.Errorf("%s: %w", argv[0], err)
		}
		h.running[name] = cmd
		h.mu.Unlock()
		if i == len(lines)-1 && u.Value("Service", "Type") != "oneshot" {
			h.setState(name, "active")
		}
		err := cmd.Wait()
		w.flush()
		h.mu.Lock()
		delete(h.running, name)
		h.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(argv[0]), err)
		}
	}
	return nil
}

// unitWriter puts a unit's output in the host's log a line at a time,
// each line prefixed with host and unit, as the journal would.
type unitWriter struct {
	h    *host
	unit string
	// file is where the unit's output goes (StandardOutput=append:);
	// the host's log gets every line too, for the rehearsal's checks.
	file    *os.File
	mu      sync.Mutex
	partial []byte
}

func (w *unitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := strings.IndexByte(string(w.partial), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(w.h.log, "[%s %s] %s\n", w.h.id, w.unit, w.partial[:i])
		if w.file != nil {
			_, _ = w.file.Write(w.partial[:i+1])
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *unitWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		fmt.Fprintf(w.h.log, "[%s %s] %s\n", w.h.id, w.unit, w.partial)
		if w.file != nil {
			_, _ = w.file.Write(append(w.partial, '\n'))
		}
		w.partial = nil
	}
}

// shutdown stops the host as EC2 does: SIGTERM to every unit, then SIGKILL.
func (h *host) shutdown(grace time.Duration) {
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		return
	}
	h.stopping = true
	close(h.stateCh)
	h.stateCh = make(chan struct{})
	cmds := make([]*exec.Cmd, 0, len(h.running))
	for _, c := range h.running {
		cmds = append(cmds, c)
	}
	h.mu.Unlock()
	for _, c := range cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for _, c := range cmds {
		for c.ProcessState == nil && time.Now().Before(deadline) {
			if syscall.Kill(c.Process.Pid, 0) != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	// The CloudWatch agent sends what the units wrote last, then stops.
	h.mu.Lock()
	sh := h.shipper
	h.mu.Unlock()
	if sh != nil {
		sh.stop()
		select {
		case <-sh.done:
		case <-time.After(15 * time.Second):
		}
	}
	if h.imds != nil {
		h.imds.Close()
	}
}

// kill ends the host at once, as an instance that dies: every unit
// SIGKILLed, nothing flushed or cleaned up, its network and metadata gone.
func (h *host) kill() {
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		return
	}
	h.stopping, h.dead = true, true
	close(h.stateCh)
	h.stateCh = make(chan struct{})
	cmds := make([]*exec.Cmd, 0, len(h.running))
	for _, c := range h.running {
		cmds = append(cmds, c)
	}
	sh := h.shipper
	h.mu.Unlock()
	for _, c := range cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	if sh != nil {
		sh.stop()
	}
	if h.imds != nil {
		h.imds.Close()
	}
}

// startIMDS serves this host's instance metadata: a stand-in for IMDSv2
// (a token from PUT /latest/api/token, required on every GET) with the
// instance id, region, the Auto Scaling lifecycle state, and the role's
// credentials as EC2 serves an instance profile's.
func (h *host) startIMDS(t *testing.T) {
	const token = "rehearsal-imds-token"
	region := h.sys.cap.Region
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		io.WriteString(w, token)
	})
	mux.HandleFunc("GET /latest/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token") != token {
			http.Error(w, "IMDSv2 token required", http.StatusUnauthorized)
			return
		}
		creds := "/latest/meta-data/iam/security-credentials/"
		switch p := r.URL.Path; {
		case p == "/latest/meta-data/instance-id":
			io.WriteString(w, h.id)
		case p == "/latest/meta-data/placement/region":
			io.WriteString(w, region)
		case p == "/latest/dynamic/instance-identity/document":
			json.NewEncoder(w).Encode(map[string]string{"instanceId": h.id, "region": region, "accountId": h.sys.cap.Account})
		case p == "/latest/meta-data/autoscaling/target-lifecycle-state" && h.lifecycle != nil:
			io.WriteString(w, h.lifecycle())
		case p == creds:
			io.WriteString(w, h.role)
		case p == creds+h.role:
			id, err := h.sys.sessionFor(h.role)
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{
				"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": id.AccessKeyID, "SecretAccessKey": id.SecretAccessKey,
				"Token": id.SessionToken, "Expiration": id.Expiration.UTC().Format(time.RFC3339), "LastUpdated": time.Now().UTC().Format(time.RFC3339),
			})
		default:
			http.NotFound(w, r)
		}
	})
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	h.imdsURL = "http://" + ln.Addr().String()
	h.imds = &http.Server{Handler: mux}
	go func() { _ = h.imds.Serve(ln) }()
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// errorLines returns the agents' log lines at error level (JSON logs).
func (h *host) errorLines() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(h.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if i := strings.Index(l, "] {"); i >= 0 {
			var rec struct{ Level string }
			if json.Unmarshal([]byte(l[i+2:]), &rec) == nil && rec.Level == "ERROR" {
				out = append(out, l)
			}
		}
	}
	return out
}

// player stands in for EC2 booting the worker group's instances: every
// instance moto reports in the group is booted from the launch template's
// user data; one that leaves the group is shut down. It records the
// group's trajectory (in-service counts as they change).
type player struct {
	s        *system
	group    string
	userData string
	role     string
	// active lets the player boot hosts; the web player is held while the
	// rehearsal changes a policy between two rows.
	active     atomic.Bool
	mu         sync.Mutex
	trajectory []int
	stop       context.CancelFunc
	done       chan struct{}
}

// startPlayer starts the worker group's player.
func (s *system) startPlayer() *player {
	if s.player == nil {
		s.player = s.startPlayerFor(s.group)
	}
	return s.player
}

// startPlayerFor starts a player of group, active. It runs until the
// rehearsal ends.
func (s *system) startPlayerFor(group string) *player {
	t := s.top
	ctx := t.Context()
	out, err := autoscaling.NewFromConfig(s.admin).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("describe group: %v", err)
	}
	lts, err := ec2LaunchTemplateUserData(ctx, s, aws.ToString(out.AutoScalingGroups[0].LaunchTemplate.LaunchTemplateId))
	if err != nil {
		t.Fatal(err)
	}
	p := &player{s: s, group: group, userData: lts.userData, role: s.profiles[lts.profile], done: make(chan struct{})}
	if p.role == "" {
		t.Fatalf("launch template instance profile %q has no role", lts.profile)
	}
	p.active.Store(group == s.group)
	pctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() {
		defer close(p.done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			p.sync(pctx)
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// instanceStates returns the group's instances and their lifecycle states.
func (s *system) instanceStates(ctx context.Context) (map[string]string, int, error) {
	return s.groupStates(ctx, s.group)
}

// groupStates returns group's instances and their lifecycle states, and its
// desired capacity.
func (s *system) groupStates(ctx context.Context, group string) (map[string]string, int, error) {
	out, err := autoscaling.NewFromConfig(s.admin).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		return nil, 0, err
	}
	if len(out.AutoScalingGroups) != 1 {
		return nil, 0, fmt.Errorf("group %s not found", group)
	}
	g := out.AutoScalingGroups[0]
	st := map[string]string{}
	for _, in := range g.Instances {
		st[aws.ToString(in.InstanceId)] = string(in.LifecycleState) + "/" + aws.ToString(in.HealthStatus)
	}
	return st, int(aws.ToInt32(g.DesiredCapacity)), nil
}

func (p *player) sync(ctx context.Context) {
	s := p.s
	states, _, err := s.groupStates(ctx, p.group)
	if err != nil {
		return
	}
	inService := 0
	for id, st := range states {
		if strings.HasPrefix(st, "InService") {
			inService++
		}
		s.mu.Lock()
		_, up := s.hosts[id]
		s.mu.Unlock()
		if !up && strings.HasPrefix(st, "InService") && ctx.Err() == nil && p.active.Load() {
			id := id
			p.mu.Lock()
			ud := p.userData
			p.mu.Unlock()
			s.bootHost(id, p.role, ud, func() string {
				st, _, _ := s.groupStates(context.Background(), p.group)
				state, _, _ := strings.Cut(st[id], "/")
				return state
			})
		}
	}
	s.mu.Lock()
	var gone []*host
	for id, h := range s.hosts {
		if _, ok := states[id]; !ok && h.role == p.role {
			gone = append(gone, h)
			delete(s.hosts, id)
		}
	}
	s.mu.Unlock()
	for _, h := range gone {
		go h.shutdown(10 * time.Second)
	}
	p.mu.Lock()
	if n := len(p.trajectory); n == 0 || p.trajectory[n-1] != inService {
		p.trajectory = append(p.trajectory, inService)
	}
	p.mu.Unlock()
}

// restart forgets the trajectory so far.
func (p *player) restart() {
	p.mu.Lock()
	p.trajectory = nil
	p.mu.Unlock()
}

// path returns the in-service counts seen, as "0 → 2 → 3 → 0".
func (p *player) path() (string, []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, n := range p.trajectory {
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, " → "), append([]int(nil), p.trajectory...)
}
