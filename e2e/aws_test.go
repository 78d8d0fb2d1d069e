package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
)

// awsStack is one deployment's resources in moto, and the agents run
// against them in AWS mode (SQS queue URLs, s3:// stores, asg:// fleet).
type awsStack struct {
	t        *testing.T
	cfg      aws.Config // straight to moto, for the test's own look-ups
	names    awsres.Names
	queues   awstest.Queues
	proxy    *flakyProxy // the agents reach moto through it
	settings awsres.QueueSettings
	env      []string
	web      *proc
	base     string
	scaler   *proc
	player   *instancePlayer
}

// newAWSStack creates queues (with dead-letter queue), buckets, launch
// template and group in moto from awsres, copies the course gallery into
// the output bucket, and starts web and scaler in AWS mode.
func newAWSStack(t *testing.T, maxWorkers int) *awsStack {
	t.Helper()
	s := newAWSResources(t, maxWorkers)
	s.web = startEnv(t, "web", s.env, "web", "--addr", "127.0.0.1:0", "--open-recognition")
	s.base = s.web.baseURL(t)
	s.scaler = startEnv(t, "scaler", s.env, "scaler", "--max-workers", fmt.Sprint(maxWorkers), "--interval", "500ms")
	s.player = newInstancePlayer(t, s)
	return s
}

// newAWSResources creates the deployment's resources in moto and the
// agents' environment, without starting any agent.
func newAWSResources(t *testing.T, maxWorkers int) *awsStack {
	t.Helper()
	ep := awstest.Endpoint(t)
	courseSet(t)
	ctx := t.Context()
	s := &awsStack{t: t, cfg: awstest.Config(ep), names: awstest.Names(t), settings: awsres.DefaultQueueSettings}
	// Short timeouts so a killed worker's requests come back within seconds.
	s.settings.VisibilityTimeout, s.settings.Heartbeat = 6*time.Second, 2*time.Second
	var err error
	s.queues, err = awstest.CreateQueues(ctx, s.cfg, s.names, s.settings)
	awstest.Must(t, err)
	awstest.Must(t, awstest.CreateBucket(ctx, s.cfg, s.names.InputBucket))
	awstest.Must(t, awstest.CreateBucket(ctx, s.cfg, s.names.OutputBucket))
	awstest.Must(t, awstest.CreateGroup(ctx, s.cfg, s.names.WorkerGroup, maxWorkers))
	s.uploadGallery()

	u, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	s.proxy = newFlakyProxy(t, u.Host)
	s.env = append(awstest.Env("http://"+s.proxy.addr()),
		"FACECLOUD_REQUESTS="+s.queues.Request,
		"FACECLOUD_REPLIES="+s.queues.Reply,
		"FACECLOUD_INPUT=s3://"+s.names.InputBucket,
		"FACECLOUD_OUTPUT=s3://"+s.names.OutputBucket,
		"FACECLOUD_FLEET=asg://"+s.names.WorkerGroup,
		"FACECLOUD_LOG_LEVEL=debug",
	)
	return s
}

// uploadGallery enrols the course's 100 labelled faces locally and copies
// the gallery objects into the output bucket, where workers look for them.
func (s *awsStack) uploadGallery() {
	t := s.t
	data := t.TempDir()
	enrollCourse(t, data)
	local, err := blobstore.OpenURL(t.Context(), &url.URL{Scheme: "file", Path: filepath.Join(data, "store")})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	remote, err := blobstore.OpenS3(t.Context(), s.cfg, blobstore.S3Config{Bucket: s.names.OutputBucket})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	keys, err := local.List(t.Context(), "gallery/")
	if err != nil || len(keys) == 0 {
		t.Fatalf("local gallery: %d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		b, err := local.Get(t.Context(), k)
		if err == nil {
			err = remote.Put(t.Context(), k, b, "application/json")
		}
		if err != nil {
			t.Fatalf("copy %s: %v", k, err)
		}
	}
}

// group describes the worker group in moto.
func (s *awsStack) group(ctx context.Context) (desired int, inService []string, err error) {
	out, err := autoscaling.NewFromConfig(s.cfg).DescribeAutoScalingGroups(ctx,
		&autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{s.names.WorkerGroup}})
	if err != nil {
		return 0, nil, err
	}
	if len(out.AutoScalingGroups) != 1 {
		return 0, nil, fmt.Errorf("group %s not found", s.names.WorkerGroup)
	}
	g := out.AutoScalingGroups[0]
	for _, in := range g.Instances {
		if in.LifecycleState == "InService" {
			inService = append(inService, aws.ToString(in.InstanceId))
		}
	}
	return int(aws.ToInt32(g.DesiredCapacity)), inService, nil
}

// post sends files at concurrency 100 as the course's generator does (no
// client timeout) and returns each one's status and body; answered, when not
// nil, counts the 200 answers as they come.
func (s *awsStack) post(files []string, answered *atomic.Int64) (codes []int, bodies []string) {
	codes, bodies = make([]int, len(files)), make([]string, len(files))
	client := &http.Client{}
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code, body, err := postFile(context.Background(), client, s.base+"/", "inputFile", f)
			if err != nil {
				body = err.Error()
			}
			codes[i], bodies[i] = code, body
			if code == http.StatusOK && answered != nil {
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	return codes, bodies
}

// checkAll requires every request answered 200 with its own right answer.
func (s *awsStack) checkAll(files []string, codes []int, bodies []string) {
	s.t.Helper()
	c := courseSet(s.t)
	bad := 0
	for i, f := range files {
		var err error
		if codes[i] != http.StatusOK {
			err = fmt.Errorf("%s: status %d: %s", stem(f), codes[i], bodies[i])
		} else {
			err = textAnswer(c.Want, f, bodies[i])
		}
		if err != nil {
			bad++
			if bad <= 10 {
				s.t.Error(err)
			}
		}
	}
	if bad > 0 {
		s.t.Fatalf("%d of %d requests not answered right", bad, len(files))
	}
}

// waitEmpty waits until the group's desired capacity is 0, no instance is
// in service (the workers retired after being idle) and every worker
// process has exited.
func (s *awsStack) waitEmpty(timeout time.Duration) {
	s.t.Helper()
	eventually(s.t, timeout, "group back to 0 (desired 0, no instance)", func() bool {
		d, in, err := s.group(s.t.Context())
		return err == nil && d == 0 && len(in) == 0
	})
	eventually(s.t, 30*time.Second, "every retired worker process to exit", func() bool { return s.player.running() == 0 })
}

// TestAWSCourse runs the agents in AWS mode against moto: 100 course
// requests at concurrency 100, all answered right, the group going 0 → N →
// 0; then a worker killed mid-job, then SQS and S3 unreachable for a few
// seconds, with every accepted request answered and no agent restarted.
func TestAWSCourse(t *testing.T) {
	c := courseSet(t)
	s := newAWSStack(t, 3)

	t.Run("100 requests, 0 to N to 0", func(t *testing.T) {
		if d, in, err := s.group(t.Context()); err != nil || d != 0 || len(in) != 0 {
			t.Fatalf("group before the burst: desired %d, in service %v, %v", d, in, err)
		}
		t0 := time.Now()
		files := c.Files[:100]
		codes, bodies := s.post(files, nil)
		s.checkAll(files, codes, bodies)
		peak := s.player.peak.Load()
		t.Logf("100/100 right in %s with up to %d instances", time.Since(t0).Round(time.Millisecond), peak)
		if peak < 1 {
			t.Fatal("no instance was ever in service")
		}
		s.waitEmpty(2 * time.Minute)
		t.Logf("group back to 0 %s after the burst began; %d worker processes played", time.Since(t0).Round(time.Millisecond), s.player.started.Load())
		retired := regexp.MustCompile(`msg="instance retired".* decrement=true`).FindAllString(s.player.logs(), -1)
		if len(retired) == 0 {
			t.Error("no worker retired with TerminateInstanceInAutoScalingGroup and a decrement of desired capacity")
		}
	})

	t.Run("worker killed mid-job", func(t *testing.T) {
		files := c.Files[100:200]
		var codes []int
		var bodies []string
		done := make(chan struct{})
		go func() {
			codes, bodies = s.post(files, nil)
			close(done)
		}()
		victim, held := killHolder(t, s.player.holders(t, time.Minute), time.Minute)
		t.Logf("killed the worker of instance %s while it held %d requests", victim.name, len(held))
		<-done
		s.checkAll(files, codes, bodies)
		// Every request it held was taken again (by another instance's worker
		// or by the one its instance restarted).
		eventually(t, time.Minute, "the killed worker's requests delivered again", func() bool {
			return deliveredAgain(s.player.logs(), held)
		})
		s.waitEmpty(2 * time.Minute)
	})

	t.Run("AWS unreachable for seconds", func(t *testing.T) {
		files := c.Files[200:300]
		var codes []int
		var bodies []string
		done := make(chan struct{})
		var answered atomic.Int64
		first := s.player.booted()
		go func() {
			codes, bodies = s.post(files, &answered)
			close(done)
		}()
		// Cut AWS off while requests are at every stage: stored, queued,
		// being recognised, replied.
		eventually(t, 2*time.Minute, "first answers", func() bool { return answered.Load() >= 10 })
		s.proxy.down.Store(true)
		before := answered.Load()
		t.Logf("outage begins after %d answers", before)
		if before == int64(len(files)) {
			t.Fatal("every request was answered before the outage began: it would test nothing")
		}
		s.proxy.outage(5 * time.Second)
		<-done
		// Accepted requests (200) must all be right; refused ones must be
		// refused with a server error, not lost silently or answered wrong.
		c2 := courseSet(t)
		accepted, refused := 0, 0
		var retry []string
		for i, f := range files {
			if codes[i] == http.StatusOK {
				accepted++
				if err := textAnswer(c2.Want, f, bodies[i]); err != nil {
					t.Error(err)
				}
				continue
			}
			if codes[i] < 500 {
				t.Errorf("%s: status %d during the outage, want 200 or a 5xx: %s", stem(f), codes[i], bodies[i])
			}
			refused++
			retry = append(retry, f)
			if refused <= 3 {
				t.Logf("refused %s: %d %s", stem(f), codes[i], strings.TrimSpace(bodies[i]))
			}
		}
		t.Logf("during a 5 s outage: %d accepted and answered right, %d refused with 5xx", accepted, refused)
		if accepted < 10 {
			t.Fatalf("only %d requests accepted around the outage", accepted)
		}
		// The same processes recover: refused requests sent again succeed.
		if len(retry) > 0 {
			codes, bodies := s.post(retry, nil)
			s.checkAll(retry, codes, bodies)
		}
		for _, p := range append([]*proc{s.web, s.scaler}, s.player.since(first)...) {
			if p.exited() && p.err != nil {
				t.Fatalf("%s failed during the outage: %v", p.name, p.err)
			}
		}
		for _, p := range []*proc{s.web, s.scaler} {
			if p.exited() {
				t.Fatalf("%s exited during the outage", p.name)
			}
		}
		s.waitEmpty(2 * time.Minute)
	})
}

// startEnv is start with extra environment variables.
func startEnv(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := spawn(t, name, env, args...)
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.kill()
			}
		}
		if t.Failed() {
			t.Logf("--- %s output (last 40 lines):\n%s", name, tail(p.out.String(), 40))
		}
	})
	return p
}

// instancePlayer stands in for EC2 booting the group's instances: for each
// instance moto reports InService it starts a facecloud worker process,
// which learns its instance id from its own IMDSv2 double; it stops the
// process (SIGTERM) when the instance leaves the group, and, like systemd's
// Restart=on-failure on a real instance, starts a new one when the process
// dies abnormally while its instance is still in service.
type instancePlayer struct {
	t       *testing.T
	s       *awsStack
	mu      sync.Mutex
	workers map[string]*proc // by instance id
	all     []*proc
	peak    atomic.Int64
	started atomic.Int64
}

func newInstancePlayer(t *testing.T, s *awsStack) *instancePlayer {
	p := &instancePlayer{t: t, s: s, workers: map[string]*proc{}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p.sync(ctx)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return p
}

func (p *instancePlayer) sync(ctx context.Context) {
	if p.t.Context().Err() != nil {
		return // the test is over: boot nothing more
	}
	_, inService, err := p.s.group(ctx)
	if err != nil {
		return
	}
	if n := int64(len(inService)); n > p.peak.Load() {
		p.peak.Store(n)
	}
	live := map[string]bool{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range inService {
		live[id] = true
		w := p.workers[id]
		if w != nil && (!w.exited() || w.err == nil) {
			continue // running, or exited cleanly (retired; the instance is on its way out)
		}
		p.workers[id] = p.boot(id)
	}
	for id, w := range p.workers {
		if !live[id] {
			if !w.exited() {
				_ = w.cmd.Process.Signal(syscall.SIGTERM)
			}
			delete(p.workers, id)
		}
	}
}

// boot starts the worker of instance id with its own IMDSv2 double.
func (p *instancePlayer) boot(id string) *proc {
	md := imdsDouble(p.t, id)
	env := append(append([]string{}, p.s.env...), "FACECLOUD_IMDS_ENDPOINT="+md.URL)
	w := startEnv(p.t, id, env, "worker", "--idle-exit", "5s", "--concurrency", "2",
		"--visibility", p.s.settings.VisibilityTimeout.String(), "--heartbeat", p.s.settings.Heartbeat.String(), "--name", id)
	p.all = append(p.all, w)
	p.started.Add(1)
	return w
}

// booted is how many worker processes were started so far.
func (p *instancePlayer) booted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.all)
}

// since returns the worker processes started after the first n.
func (p *instancePlayer) since(n int) []*proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*proc(nil), p.all[n:]...)
}

// running counts worker processes not yet exited, including retired ones
// still shutting down.
func (p *instancePlayer) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.all {
		if !w.exited() {
			n++
		}
	}
	return n
}

// holders waits until at least one worker process runs and returns the
// running ones as kill candidates (each logs to its own output).
func (p *instancePlayer) holders(t *testing.T, timeout time.Duration) []holder {
	t.Helper()
	var out []holder
	eventually(t, timeout, "a worker process running", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		out = out[:0]
		for id, w := range p.workers {
			if !w.exited() {
				out = append(out, holder{pid: w.cmd.Process.Pid, name: id, logs: w})
			}
		}
		return len(out) > 0
	})
	return out
}

// logs joins every worker's output.
func (p *instancePlayer) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, w := range p.all {
		b.WriteString(w.out.String())
	}
	return b.String()
}

// imdsDouble stands in for an instance's metadata service: IMDSv2 only (a
// token from PUT /latest/api/token, then GETs carrying it) and only the
// instance-id.
func imdsDouble(t *testing.T, instanceID string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
			_, _ = io.WriteString(w, "token-"+instanceID)
		case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/instance-id" &&
			r.Header.Get("X-aws-ec2-metadata-token") == "token-"+instanceID:
			_, _ = io.WriteString(w, instanceID)
		default:
			http.Error(w, "not found", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// flakyProxy is a TCP proxy between the agents and moto that can drop
// every connection and refuse new ones for a while: SQS and S3 unreachable.
type flakyProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.dropAll()
	})
	return p
}

func (p *flakyProxy) addr() string { return p.ln.Addr().String() }

func (p *flakyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *flakyProxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *flakyProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// outage drops every connection and refuses new ones for d.
func (p *flakyProxy) outage(d time.Duration) {
	p.down.Store(true)
	p.dropAll()
	time.Sleep(d)
	p.down.Store(false)
}

// createAdminKey makes an admin key in the stack's output bucket (where
// the web agents look for keys) with the real binary, as an operator
// would, and returns it.
func (s *awsStack) createAdminKey() string {
	s.t.Helper()
	cmd := exec.Command(binary(s.t), "keys", "create", "--store", "s3://"+s.names.OutputBucket, "--scopes", "admin", "--name", "e2e")
	cmd.Env = append(os.Environ(), s.env...)
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("facecloud keys create: %v", err)
	}
	return strings.TrimSpace(string(out))
}
