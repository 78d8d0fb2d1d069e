package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/facecloud/facecloud/internal/testenv"
)

// scratch is removed after all tests; the binary and the unzipped dataset
// live there so that every test shares one build and one copy.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "facecloud-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the facecloud command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end tests build and run the binary; skipped in -short mode")
	}
	buildOnce.Do(func() {
		binPath = filepath.Join(scratch, "facecloud")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/facecloud/facecloud/agents/cmd/facecloud")
		cmd.Dir = repoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// course is the course's dataset, unzipped.
type course struct {
	// Gallery100 holds face_images_100 (the enrolment set); Labels100 its CSV.
	Gallery100, Labels100 string
	// Requests holds face_images_1000; Labels1000 its CSV.
	Requests, Labels1000 string
	// Files are the 1000 request images, sorted; Want maps a stem to its name.
	Files []string
	Want  map[string]string
}

var (
	courseOnce sync.Once
	courseData *course
	courseErr  error
)

// courseSet unzips the dataset once, or skips (fails, with
// FACECLOUD_REQUIRE_DATASET=1) the test when it is absent.
func courseSet(t *testing.T) *course {
	t.Helper()
	ds := testenv.Dataset(t)
	courseOnce.Do(func() {
		c := &course{
			Gallery100: filepath.Join(scratch, "face_images_100"), Labels100: filepath.Join(ds, "classification_100.csv"),
			Requests: filepath.Join(scratch, "face_images_1000"), Labels1000: filepath.Join(ds, "classification_1000.csv"),
		}
		if courseErr = unzipFlat(filepath.Join(ds, "face_images_100.zip"), c.Gallery100); courseErr != nil {
			return
		}
		if courseErr = unzipFlat(filepath.Join(ds, "face_images_1000.zip"), c.Requests); courseErr != nil {
			return
		}
		if c.Want, courseErr = readLabels(c.Labels1000); courseErr != nil {
			return
		}
		entries, err := os.ReadDir(c.Requests)
		if err != nil {
			courseErr = err
			return
		}
		for _, e := range entries {
			c.Files = append(c.Files, filepath.Join(c.Requests, e.Name()))
		}
		sort.Strings(c.Files)
		if len(c.Files) != 1000 || len(c.Want) != 1000 {
			courseErr = fmt.Errorf("dataset has %d images and %d labels, want 1000 of each", len(c.Files), len(c.Want))
			return
		}
		courseData = c
	})
	if courseErr != nil {
		t.Fatal(courseErr)
	}
	return courseData
}

// unzipFlat extracts the files of a zip into dir, dropping folders.
func unzipFlat(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasPrefix(filepath.Base(f.Name), ".") || strings.Contains(f.Name, "__MACOSX") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.Name)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readLabels(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	want := map[string]string{}
	for _, r := range rows[1:] {
		want[r[0]] = r[1]
	}
	return want, nil
}

func stem(path string) string {
	b := filepath.Base(path)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// enrollCourse enrols the course's 100 labelled faces into data.
func enrollCourse(t *testing.T, data string) {
	t.Helper()
	c := courseSet(t)
	out, err := exec.Command(binary(t), "enroll", "--data", data, "--images", c.Gallery100, "--labels", c.Labels100).CombinedOutput()
	if err != nil {
		t.Fatalf("facecloud enroll: %v\n%s", err, tail(string(out), 20))
	}
}

// proc is a facecloud process under test; its stdout and stderr (and
// those of its children, which inherit them) are kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	// logW is the write end of the output pipe, kept open here so the test
	// can write sync markers into the same stream (see syncLog).
	logW *os.File
	done chan struct{}
	err  error
}

// logBuffer collects a process's output for searching; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cut removes the first occurrence of s and reports whether there was one.
func (b *logBuffer) cut(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	before, after, found := bytes.Cut(b.buf.Bytes(), []byte(s))
	if found {
		rest := append(append([]byte{}, before...), after...)
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return found
}

// start runs facecloud with args; the process is killed at the end of the
// test if still running, and its output is shown when the test failed.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := spawn(t, name, []string{"FACECLOUD_LOG_LEVEL=debug"}, args...)
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output (last 60 lines):\n%s", name, tail(p.out.String(), 60))
		}
	})
	return p
}

// spawn starts the binary with args and the extra environment variables,
// collecting its output and noting when it exits; the caller decides how it
// is stopped at the end of the test. The output goes through a pipe whose
// write end the test keeps, so syncLog can tell when everything written so
// far has been read.
func spawn(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuffer{}, done: make(chan struct{})}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.logW = w
	go func() { _, _ = io.Copy(p.out, r); r.Close() }()
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Stdout = w
	p.cmd.Stderr = w
	p.cmd.Env = append(os.Environ(), env...)
	// Its own process group, as a command started from a shell has: a test
	// can signal the whole group the way a terminal's Ctrl-C does.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		// Everything the process wrote is read before anyone sees it exited.
		p.flush()
		w.Close()
		close(p.done)
	}()
	return p
}

var syncSerial atomic.Int64

// flush writes a marker into the output pipe and waits until the reader
// has copied it into p.out: every line written into the pipe before it, by
// the process or any of its children, is then in p.out. The marker is
// removed again.
func (p *proc) flush() {
	marker := fmt.Sprintf("~~ e2e sync %d ~~\n", syncSerial.Add(1))
	if _, err := p.logW.WriteString(marker); err != nil {
		return
	}
	for !p.out.cut(marker) {
		time.Sleep(time.Millisecond)
	}
}

// syncLog is flush for a running process: afterwards p.out holds every
// line its processes wrote before the call.
func (p *proc) syncLog(t *testing.T) {
	t.Helper()
	if p.exited() {
		return // flushed on exit
	}
	p.flush()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLog waits for a line matching re and returns its submatches.
func (p *proc) waitLog(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		if p.exited() {
			t.Fatalf("%s exited (%v) before logging %q", p.name, p.err, re)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %s", p.name, re, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var listening = regexp.MustCompile(`web agent listening.* addr=(\S+)`)

// baseURL waits for the web agent's listening line and returns its URL.
func (p *proc) baseURL(t *testing.T) string {
	t.Helper()
	return "http://" + p.waitLog(t, listening, 60*time.Second)[1]
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s had already exited: %v", p.name, p.err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s exited with %v after SIGTERM", p.name, p.err)
		}
	case <-time.After(timeout):
		t.Fatalf("%s still running %s after SIGTERM", p.name, timeout)
	}
}

// kill sends SIGKILL and waits.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// postFile sends path as multipart field to url and returns the status and body.
func postFile(ctx context.Context, client *http.Client, url, field, path string) (int, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, "", err
	}
	return postBytes(ctx, client, url, field, filepath.Base(path), data)
}

func postBytes(ctx context.Context, client *http.Client, url, field, filename string, data []byte) (int, string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		return 0, "", err
	}
	fw.Write(data)
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric scrapes one unlabelled sample (or a labelled one written in full,
// e.g. `x_total{action="scale-out"}`) from base's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	v, err := scrape(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func scrape(base, name string) (float64, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminKeyOf(base)) // /metrics is for admins
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not in %s/metrics", name, base)
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(t0)
}

// children lists the pids of pid's child processes.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	sort.Ints(out)
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// textAnswer checks a POST / answer "stem:name" against the labels.
func textAnswer(want map[string]string, file, body string) error {
	s := stem(file)
	got, ok := strings.CutPrefix(body, s+":")
	if !ok {
		return fmt.Errorf("%s: answer %q is not for this request", s, body)
	}
	if got != want[s] {
		return fmt.Errorf("%s: answer %q, want %q", s, got, want[s])
	}
	return nil
}

// The worker logs, at debug level, each request it takes (with its receive
// count) and each it has replied to (before deleting it from the queue):
// between the two it holds the request.
var (
	takenRE   = regexp.MustCompile(`msg="request taken".* worker=(\S+) id=(\S+) receive=(\d+)`)
	repliedRE = regexp.MustCompile(`msg="request replied".* worker=(\S+) id=(\S+)`)
)

// holding returns the requests worker has taken and not replied to in log,
// with the receive count of that delivery.
func holding(log, worker string) map[string]int {
	open := map[string]int{}
	for _, m := range takenRE.FindAllStringSubmatch(log, -1) {
		if m[1] == worker {
			open[m[2]], _ = strconv.Atoi(m[3])
		}
	}
	for _, m := range repliedRE.FindAllStringSubmatch(log, -1) {
		if m[1] == worker {
			delete(open, m[2])
		}
	}
	return open
}

// deliveredAgain reports whether every request in held (id -> receive
// count when it was held) was taken again, by any worker, in log.
func deliveredAgain(log string, held map[string]int) bool {
	again := map[string]bool{}
	for _, m := range takenRE.FindAllStringSubmatch(log, -1) {
		if n, _ := strconv.Atoi(m[3]); n > held[m[2]] {
			again[m[2]] = true
		}
	}
	for id := range held {
		if !again[id] {
			return false
		}
	}
	return true
}

// holder is a worker process that may be killed while holding requests:
// its pid, its name in the logs and the process whose output has its logs.
type holder struct {
	pid  int
	name string
	logs *proc
}

// killHolder SIGKILLs one of the workers at a moment it provably holds
// requests, and returns it with the requests it held (id -> receive count). It freezes each worker in
// turn (SIGSTOP), reads everything that worker has logged so far, and kills
// it if it has taken a request it has not replied to: such a request is
// neither answered nor deleted, so the queue must give it to another
// worker. Otherwise it thaws the worker and tries the next one, and between
// rounds waits for new work to be taken.
func killHolder(t *testing.T, workers []holder, timeout time.Duration) (holder, map[string]int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		before := takes(workers)
		for _, w := range workers {
			if !alive(w.pid) || syscall.Kill(w.pid, syscall.SIGSTOP) != nil {
				continue
			}
			if err := waitState(w.pid, 'T'); err != nil {
				t.Fatal(err)
			}
			w.logs.syncLog(t)
			if ids := holding(w.logs.out.String(), w.name); len(ids) > 0 {
				if err := syscall.Kill(w.pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill %s (pid %d): %v", w.name, w.pid, err)
				}
				return w, ids
			}
			_ = syscall.Kill(w.pid, syscall.SIGCONT)
		}
		// Wait for a new take before looking again.
		for takes(workers) == before {
			if time.Now().After(deadline) {
				t.Fatalf("no worker was holding a request within %s (%d takes logged)", timeout, before)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// takes counts the requests the workers have logged as taken.
func takes(workers []holder) int {
	n := 0
	seen := map[*proc]bool{}
	for _, w := range workers {
		if !seen[w.logs] {
			seen[w.logs] = true
			n += strings.Count(w.logs.out.String(), `msg="request taken"`)
		}
	}
	return n
}

// waitState waits until pid's state (/proc/PID/stat) is state, e.g. 'T'
// for stopped: a signal is delivered after kill(2) returns. A process that
// is gone counts as done.
func waitState(pid int, state byte) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == state {
			return nil
		}
	}
	return fmt.Errorf("pid %d not in state %c within 10s", pid, state)
}
