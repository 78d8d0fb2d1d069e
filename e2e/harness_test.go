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
	"syscall"
	"testing"
	"time"
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

// datasetDir is $FACECLOUD_DATASET or ../shared/datasets/cse546 beside the repo.
func datasetDir() string {
	if d := os.Getenv("FACECLOUD_DATASET"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), "..", "shared", "datasets", "cse546")
}

// courseSet unzips the dataset once, or skips the test when it is absent.
func courseSet(t *testing.T) *course {
	t.Helper()
	ds := datasetDir()
	if _, err := os.Stat(filepath.Join(ds, "face_images_1000.zip")); err != nil {
		t.Skipf("course dataset not found at %s (set FACECLOUD_DATASET): %v", ds, err)
	}
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

// proc is a facecloud process under test; its stdout and stderr are kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
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
// is stopped at the end of the test.
func spawn(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
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
	resp, err := http.Get(base + "/metrics")
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
