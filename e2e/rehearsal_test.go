package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/facecloud/facecloud/stack/rehearsal"
)

// The rehearsal's stand-in for EC2: which launch template data the group
// launches with.
type launchData struct{ userData, profile string }

func ec2LaunchTemplateUserData(ctx context.Context, s *system, id string) (launchData, error) {
	out, err := ec2.NewFromConfig(s.admin).DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: aws.String(id), Versions: []string{"$Latest"},
	})
	if err != nil || len(out.LaunchTemplateVersions) != 1 {
		return launchData{}, fmt.Errorf("launch template %s: %v", id, err)
	}
	d := out.LaunchTemplateVersions[0].LaunchTemplateData
	ud, err := userDataOf(aws.ToString(d.UserData))
	if err != nil {
		return launchData{}, fmt.Errorf("launch template user data: %w", err)
	}
	profile := ""
	if d.IamInstanceProfile != nil {
		profile = aws.ToString(d.IamInstanceProfile.Arn)
	}
	return launchData{userData: ud, profile: profile}, nil
}

// workload is what one rehearsal sends and expects.
type workload struct {
	files []string
	// enrol enrols the course gallery through the web API first.
	enrol bool
	// back is how long the group may take to return to its minimum.
	back time.Duration
}

// outcome is what a rehearsal saw.
type outcome struct {
	requests, correct int
	trajectory        string
	took              time.Duration
	problems          []string
	// logs are the hosts' logs (last lines), for a failed rehearsal.
	logs string
}

func (o outcome) failed() bool { return len(o.problems) > 0 }

// report is the rehearsal's verdict: every failed check, refused call and
// agent error line.
func (o outcome) report() string {
	if !o.failed() {
		return fmt.Sprintf("rehearsal passed: %d/%d correct, fleet %s, %s", o.correct, o.requests, o.trajectory, o.took.Round(time.Second))
	}
	return "rehearsal failed:\n  " + strings.Join(o.problems, "\n  ")
}

// rehearse boots the web tier afresh (the group's hosts behind the load
// balancer's stand-in) and runs w against it: readiness; the request path
// refused without a key unless the preset opens recognition; the gallery
// enrolled with the stack's first admin key (read from its SSM parameter);
// the requests at concurrency 100 as the course's generator sends them; a
// result read back by id, an unknown id; a key created, used, revoked
// and refused; a recognition erased; the group back to its minimum; a dead
// host's reply queue collected by the acting scaler; the web hosts stopped
// cleanly (their queues gone); every agent's log lines in its CloudWatch
// Logs group. It stops at the first refused AWS call.
func (s *system) rehearse(w workload) (o outcome) {
	t := s.t
	t0 := time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s.mu.Lock()
	s.refused = nil
	// Web hosts already up (booted through an outage, say) serve this
	// rehearsal too: their logs and units are checked with the rest.
	s.booted = nil
	for _, h := range s.hosts {
		if h.role == s.webRole {
			s.booted = append(s.booted, h)
		}
	}
	s.mu.Unlock()
	if s.player != nil {
		s.player.restart()
	}
	// Fail fast: a refused call, a unit failed for good or an agent's
	// error is a broken deployment; waiting on would only time out.
	var stopOnce sync.Once
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		for ctx.Err() == nil {
			if len(s.refusals()) > 0 || s.broken() {
				stopOnce.Do(cancel)
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	problem := func(format string, a ...any) { o.problems = append(o.problems, fmt.Sprintf(format, a...)) }
	defer func() {
		cancel()
		<-watch
		s.stopWebTier()
		for _, r := range s.refusals() {
			problem("refused call: %s", r)
		}
		s.mu.Lock()
		hosts := append([]*host(nil), s.booted...)
		s.mu.Unlock()
		for _, h := range hosts {
			o.logs += fmt.Sprintf("--- host %s (last 40 lines):\n%s\n", h.id, tail(h.log.String(), 40))
			for _, l := range h.errorLines() {
				problem("error logged: %s", truncate(l, 400))
			}
			for u, st := range h.states() {
				if st == "failed" {
					problem("%s: unit %s failed: %s", h.id, u, truncate(lastLines(h.log.String(), h.id+" "+u, 3), 600))
				}
			}
		}
		if s.player != nil {
			o.trajectory, _ = s.player.path()
		}
		o.took = time.Since(t0)
		if dir := os.Getenv("FACECLOUD_REHEARSAL_LOGS"); dir != "" {
			for _, h := range hosts {
				_ = os.WriteFile(filepath.Join(dir, s.name+"-"+h.id+".log"), []byte(h.log.String()), 0o644)
			}
		}
	}()

	dead, err := s.deadHostQueue(ctx)
	if err != nil {
		problem("%v", err)
		return o
	}
	base, err := s.startWebTier(ctx, 3*time.Minute)
	if err != nil {
		problem("web tier: %v", err)
		return o
	}
	if code, body := waitReady(ctx, base, 60*time.Second); code != http.StatusOK {
		problem("GET /readyz: %d %s", code, truncate(body, 300))
		return o
	}
	admin, err := s.adminKey(ctx)
	if err != nil {
		problem("%v", err)
		return o
	}
	// The course preset lets the course's generator in without a key;
	// every other stack refuses it.
	reqKey := admin
	if s.openRecognition() {
		reqKey = ""
	} else if code, _, _, _ := postForID(ctx, http.DefaultClient, base+"/", "", w.files[0]); code != http.StatusUnauthorized {
		problem("POST / without an API key: %d, want 401", code)
	}
	client := &http.Client{}
	if w.enrol {
		if err := enrolCourse(ctx, client, base, admin, courseSet(t)); err != nil {
			problem("enrol the gallery through POST /v1/gallery/{person}: %v", err)
			return o
		}
	}
	c := courseSet(t)
	o.requests = len(w.files)
	type answer struct {
		code      int
		body      string
		err       error
		file      string
		requestID string
	}
	answers := make([]answer, len(w.files))
	// A request nobody answers waits for the web host's 10-minute limit;
	// the rehearsal gives up sooner and says so.
	rctx, rcancel := context.WithTimeout(ctx, 4*time.Minute)
	defer rcancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	for i, f := range w.files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code, body, id, err := postForID(rctx, client, base+"/", reqKey, f)
			answers[i] = answer{code: code, body: body, err: err, file: f, requestID: id}
		})
	}
	wg.Wait()
	wrong := 0
	for _, a := range answers {
		switch {
		case a.err != nil:
			wrong++
			if wrong <= 3 {
				problem("POST / %s: %v", stem(a.file), a.err)
			}
		case a.code != http.StatusOK:
			wrong++
			if wrong <= 3 {
				problem("POST / %s: %d %s", stem(a.file), a.code, truncate(a.body, 200))
			}
		case textAnswer(c.Want, a.file, a.body) != nil:
			wrong++
			if wrong <= 3 {
				problem("POST / %v", textAnswer(c.Want, a.file, a.body))
			}
		default:
			o.correct++
		}
	}
	if ctx.Err() != nil {
		return o
	}
	if wrong > 0 {
		problem("%d of %d requests not answered right", wrong, len(w.files))
		return o
	}
	// A result read back by its id, and an id never sent.
	id := answers[0].requestID
	if id == "" {
		problem("POST / answered without X-Request-Id")
		return o
	}
	if code, body := apiCall(ctx, http.MethodGet, base+"/v1/recognitions/"+id, reqKey, nil); code != http.StatusOK || !strings.Contains(body, c.Want[stem(answers[0].file)]) {
		problem("GET /v1/recognitions/%s: %d %s", id, code, truncate(body, 300))
	}
	if code, body := apiCall(ctx, http.MethodGet, base+"/v1/recognitions/0190f2a4-0000-7000-8000-000000000000", reqKey, nil); code != http.StatusNotFound {
		problem("GET /v1/recognitions/<unknown id>: %d %s, want 404", code, truncate(body, 300))
	}
	if code, body := apiCall(ctx, http.MethodGet, base+"/v1/gallery", admin, nil); code != http.StatusOK {
		problem("GET /v1/gallery with the admin key: %d %s", code, truncate(body, 300))
	}
	o.problems = append(o.problems, keyTour(ctx, base, admin, id, stem(answers[0].file), c.Want[stem(answers[0].file)])...)
	if code, body := get(ctx, http.DefaultClient, base+"/readyz"); code != http.StatusOK {
		problem("GET /readyz after the workload: %d %s", code, truncate(body, 300))
	}
	if err := s.waitGroupAtMin(ctx, w.back); err != nil && ctx.Err() == nil {
		problem("%v", err)
	}
	// The console's figures on AWS: the acting scaler's report, with the
	// dead-letter queue's depth it reads with the stack's grant.
	if err := waitStatus(ctx, base, admin, 30*time.Second); err != nil && ctx.Err() == nil {
		problem("%v", err)
	}
	// The acting scaler collects a dead host's reply queue once it has
	// gone untouched for replyExpiry.
	expiry, _ := time.ParseDuration(s.webEnv()["FACECLOUD_REPLY_EXPIRY"])
	deadline := time.Now().Add(expiry + 30*time.Second)
	for !s.queueGone(ctx, dead) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
	}
	if ctx.Err() == nil && !s.queueGone(ctx, dead) {
		problem("a dead host's reply queue %s was not collected within replyExpiry (%s)", lastSegment(dead), expiry)
	}
	if ctx.Err() != nil {
		return o
	}
	// A clean stop: each web host deletes its own reply queue, records
	// its keys' last use and hands the lease on.
	hosts := map[string]bool{}
	s.mu.Lock()
	for _, h := range s.booted {
		hosts[h.id] = true
	}
	s.mu.Unlock()
	s.stopWebTier()
	if qs, err := s.hostQueues(ctx); err != nil || len(qs) > 0 {
		problem("reply queues left after the web hosts stopped cleanly: %v %v", qs, err)
	}
	if len(s.refusals()) == 0 {
		o.problems = append(o.problems, s.checkAgentLogs(ctx, hosts, t0)...)
	}
	return o
}

// waitStatus waits for GET /v1/status to show the request queue with its
// dead-letter queue's depth and the acting scaler's report.
func waitStatus(ctx context.Context, base, key string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		code, body := apiCall(ctx, http.MethodGet, base+"/v1/status", key, nil)
		var st struct {
			Queue *struct {
				DeadLetter *int `json:"dead_letter"`
			} `json:"queue"`
			Scaler *struct {
				Holder string `json:"holder"`
			} `json:"scaler"`
		}
		err := json.Unmarshal([]byte(body), &st)
		switch {
		case code != http.StatusOK || err != nil:
			err = fmt.Errorf("GET /v1/status: %d %s", code, truncate(body, 300))
		case st.Queue == nil || st.Queue.DeadLetter == nil:
			err = fmt.Errorf("GET /v1/status shows no dead-letter depth: %s", truncate(body, 600))
		case st.Scaler == nil || st.Scaler.Holder == "":
			err = fmt.Errorf("GET /v1/status shows no acting scaler: %s", truncate(body, 600))
		default:
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// broken reports whether a booted host has a failed unit or an agent
// error line.
func (s *system) broken() bool {
	s.mu.Lock()
	hosts := append([]*host(nil), s.booted...)
	s.mu.Unlock()
	for _, h := range hosts {
		for _, st := range h.states() {
			if st == "failed" {
				return true
			}
		}
		if len(h.errorLines()) > 0 {
			return true
		}
	}
	return false
}

// states returns the host's unit states.
func (h *host) states() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for k, v := range h.state {
		out[k] = v
	}
	return out
}

// waitGroupAtMin waits until the group's desired count is its minimum, no
// more instances are in it, and every worker host it booted has stopped.
func (s *system) waitGroupAtMin(ctx context.Context, timeout time.Duration) error {
	minSize := int(rehearsal.Number(s.cap.Resources[s.groupIndex("workers")].Inputs, "minSize"))
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st, desired, err := s.instanceStates(ctx)
		if err == nil && desired == minSize && len(st) == minSize {
			s.mu.Lock()
			n := 0
			for _, h := range s.hosts {
				if h.role != s.webRole {
					n++
				}
			}
			s.mu.Unlock()
			if n == minSize {
				return nil
			}
		}
		last = fmt.Sprintf("desired %d, instances %v, %v", desired, st, err)
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("group not back to %d within %s: %s", minSize, timeout, last)
}

func waitReady(ctx context.Context, base string, timeout time.Duration) (int, string) {
	deadline := time.Now().Add(timeout)
	code, body := 0, ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		code, body = get(ctx, http.DefaultClient, base+"/readyz")
		if code == http.StatusOK {
			return code, body
		}
		time.Sleep(200 * time.Millisecond)
	}
	return code, body
}

func get(ctx context.Context, client *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postForID sends one image as the course's generator does (multipart
// field inputFile, no client timeout; with an API key when key is not "")
// and returns the answer and the request id the web host gave it.
func postForID(ctx context.Context, client *http.Client, url, key, path string) (int, string, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, "", "", err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("inputFile", filepath.Base(path))
	if err != nil {
		return 0, "", "", err
	}
	fw.Write(data)
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Request-Id"), err
}

// enrolCourse enrols the course's 100 labelled faces as docs/operations.md
// tells a fresh deployment to: one POST /v1/gallery/{person} per person
// with that person's images, then GET /v1/gallery until all are in.
func enrolCourse(ctx context.Context, client *http.Client, base, key string, c *course) error {
	labels, err := readLabels(c.Labels100)
	if err != nil {
		return err
	}
	byPerson := map[string][]string{}
	for img, person := range labels {
		byPerson[person] = append(byPerson[person], img)
	}
	var errs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for person, imgs := range byPerson {
		wg.Go(func() {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for _, img := range imgs {
				matches, _ := filepath.Glob(filepath.Join(c.Gallery100, img+".*"))
				if len(matches) == 0 {
					matches = []string{filepath.Join(c.Gallery100, img)}
				}
				data, err := os.ReadFile(matches[0])
				if err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
					return
				}
				fw, _ := mw.CreateFormFile("inputFile", filepath.Base(matches[0]))
				fw.Write(data)
			}
			mw.Close()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/gallery/"+person+"?wait=120s", &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := client.Do(req)
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s: %d %s", person, resp.StatusCode, truncate(string(b), 200)))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	// A face's id comes from its image's bytes: a person's photo sent
	// twice is one face (the course's 100 gallery images are 10 photos).
	distinct := map[string]bool{}
	for person, imgs := range byPerson {
		for _, img := range imgs {
			matches, _ := filepath.Glob(filepath.Join(c.Gallery100, img+".*"))
			if len(matches) == 0 {
				matches = []string{filepath.Join(c.Gallery100, img)}
			}
			data, err := os.ReadFile(matches[0])
			if err != nil {
				return err
			}
			distinct[fmt.Sprintf("%s %x", person, sha256.Sum256(data))] = true
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	faces := -1
	for time.Now().Before(deadline) && ctx.Err() == nil {
		code, body := apiCall(ctx, http.MethodGet, base+"/v1/gallery", key, nil)
		var g struct{ Faces int }
		if code == http.StatusOK && json.Unmarshal([]byte(body), &g) == nil {
			faces = g.Faces
			if g.Faces == len(distinct) {
				return nil
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("gallery holds %d faces, want the %d distinct photos of the %d enrolled", faces, len(distinct), len(labels))
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + " …"
	}
	return s
}

// lastLines returns the last n log lines that contain tag.
func lastLines(log, tag string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, tag) {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

// keepRunning leaves s running and prints how to reach it until the test
// is interrupted (scripts/rehearse.sh --keep).
func (s *system) keepRunning(t *testing.T, base string, admin identity) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var b strings.Builder
	fmt.Fprintf(&b, "\n== rehearsed system %q is running; Ctrl-C stops it\n", s.name)
	fmt.Fprintf(&b, "web URL, the load balancer's stand-in (the stack's %v): %s/\n", s.cap.Outputs["url"], base)
	if key, err := s.adminKey(context.Background()); err == nil {
		fmt.Fprintf(&b, "admin API key (SSM %v): export FACECLOUD_API_KEY=%s\n", s.cap.Outputs["adminKeyParameter"], key)
	}
	fmt.Fprintf(&b, "AWS endpoint (moto, IAM enforced): export AWS_ENDPOINT_URL=%s AWS_REGION=%s\n", s.endpoint, s.cap.Region)
	fmt.Fprintf(&b, "account owner: export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", admin.AccessKeyID, admin.SecretAccessKey)
	var roles []string
	for r := range s.roles {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		id := s.roles[r]
		fmt.Fprintf(&b, "role %s: export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_SESSION_TOKEN=%s\n", r, id.AccessKeyID, id.SecretAccessKey, id.SessionToken)
	}
	var keys []string
	for k := range s.cap.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(&b, "stack outputs:")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %v\n", k, s.cap.Outputs[k])
	}
	fmt.Fprintf(os.Stderr, "%s", b.String())
	<-ctx.Done()
	t.Logf("interrupted: stopping the rehearsed system")
}
