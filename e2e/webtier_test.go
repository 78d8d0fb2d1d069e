package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/facecloud/facecloud/agents/awsres"
)

// roundRobin is a TCP load balancer standing in for the Application Load
// Balancer in front of the web hosts: each client connection goes to the
// next backend in turn; a backend that refuses the connection (a dead host)
// is skipped, as the ALB stops routing to a target that fails its checks.
// Connections already open to a host that dies are cut, as they are behind
// an ALB.
type roundRobin struct {
	ln       net.Listener
	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]bool
}

func newRoundRobin(t *testing.T) *roundRobin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &roundRobin{ln: ln, conns: map[net.Conn]bool{}}
	go b.serve()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
	})
	return b
}

func (b *roundRobin) url() string { return "http://" + b.ln.Addr().String() }

// route sets the backends (host:port) new connections go to.
func (b *roundRobin) route(backends ...string) {
	b.mu.Lock()
	b.backends = backends
	b.mu.Unlock()
}

func (b *roundRobin) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.pipe(c)
	}
}

func (b *roundRobin) pipe(c net.Conn) {
	b.mu.Lock()
	backends := slices.Clone(b.backends)
	first := b.next
	b.next++
	b.mu.Unlock()
	var up net.Conn
	for i := range backends {
		var err error
		if up, err = net.DialTimeout("tcp", backends[(first+i)%len(backends)], 2*time.Second); err == nil {
			break
		}
	}
	if up == nil {
		c.Close()
		return
	}
	b.mu.Lock()
	b.conns[c], b.conns[up] = true, true
	b.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	b.mu.Lock()
	delete(b.conns, c)
	delete(b.conns, up)
	b.mu.Unlock()
}

// webHost is one web host of the tier: its web agent and its scaler.
type webHost struct {
	name        string
	web, scaler *proc
	base        string
	replyQueue  string
}

var replyQueueCreated = regexp.MustCompile(`msg="reply queue created".* reply_queue=(\S+)`)

// TestAWSWebTier runs two web hosts (web agent and scaler each, as the
// stack's web group will) against moto behind a round-robin balancer:
// every reply reaches the host whose call waits for it (measured as the
// p50 latency of one host alone against both behind the balancer, in the
// same run), one scaler acts at a time, and a host SIGKILLed mid-run loses
// no accepted request.
func TestAWSWebTier(t *testing.T) {
	c := courseSet(t)
	const workers = 3
	s := newAWSResources(t, workers)
	ctx := t.Context()
	base := s.queues.Request[:strings.LastIndexByte(s.queues.Request, '/')+1]
	prefix := base + s.names.ReplyQueuePrefix
	lease := "s3://" + s.names.OutputBucket + "/" + awsres.ScalerLeaseKey
	tierEnv := append(slices.Clone(s.env),
		"FACECLOUD_REPLY_PREFIX="+prefix,
		"FACECLOUD_LEASE="+lease,
		"FACECLOUD_LEASE_TTL=3s",
		"FACECLOUD_REPLY_TOUCH=2s",
		"FACECLOUD_REPLY_EXPIRY=15s",
	)
	// The web agents take the prefix instead of the shared reply queue;
	// the workers keep it for requests that name no queue of their own.
	webEnv := slices.DeleteFunc(slices.Clone(tierEnv), func(v string) bool { return strings.HasPrefix(v, "FACECLOUD_REPLIES=") })
	s.env = tierEnv
	startHost := func(name string) *webHost {
		h := &webHost{name: name}
		// --poll 30s: an answer can only come by its reply; a reply lost
		// or sent to the other host would show as a 30 s wait instead of
		// hiding behind the store poll.
		h.web = startEnv(t, name, webEnv, "web", "--addr", "127.0.0.1:0", "--poll", "30s", "--open-recognition")
		h.base = h.web.baseURL(t)
		h.replyQueue = h.web.waitLog(t, replyQueueCreated, time.Minute)[1]
		h.scaler = startEnv(t, name+"-scaler", tierEnv, "scaler", "--min-workers", fmt.Sprint(workers), "--max-workers", fmt.Sprint(workers), "--interval", "500ms")
		return h
	}
	admin := s.createAdminKey() // before the hosts start, so both load it
	a, b := startHost("web-a"), startHost("web-b")
	for _, h := range []*webHost{a, b} {
		adminKeys.Store(h.base, admin) // for their /metrics
	}
	if a.replyQueue == b.replyQueue || !strings.HasPrefix(a.replyQueue, prefix) || !strings.HasPrefix(b.replyQueue, prefix) {
		t.Fatalf("reply queues %s and %s: want one each under %s", a.replyQueue, b.replyQueue, prefix)
	}
	s.player = newInstancePlayer(t, s)
	lb := newRoundRobin(t)
	hostPort := func(h *webHost) string { return strings.TrimPrefix(h.base, "http://") }

	eventually(t, 2*time.Minute, "3 workers ready", func() bool {
		return strings.Count(s.player.logs(), `msg="worker ready"`) >= workers
	})
	// One scaler acts; the other stands by.
	leaders := func() []string {
		var out []string
		for _, h := range []*webHost{a, b} {
			h.scaler.syncLog(t)
			if strings.Contains(h.scaler.out.String(), `msg="scaler leading"`) {
				out = append(out, h.name)
			}
		}
		return out
	}
	eventually(t, 30*time.Second, "a scaler leading", func() bool { return len(leaders()) > 0 })
	if l := leaders(); len(l) != 1 {
		t.Fatalf("scalers that led: %v, want exactly one", l)
	}
	// Warm up the path (connections to moto, the workers' gallery).
	lb.route(hostPort(a))
	codes, bodies, _ := postTimed(lb.url()+"/", c.Files[900:930])
	checkTexts(t, c.Want, c.Files[900:930], codes, bodies)

	// Latency: one host alone, then both behind the balancer, twice over,
	// 100 course requests at concurrency 100 each time.
	var one, two []time.Duration
	for round := range 2 {
		for _, hosts := range [][]*webHost{{a}, {a, b}} {
			var ports []string
			for _, h := range hosts {
				ports = append(ports, hostPort(h))
			}
			lb.route(ports...)
			off := 100 * (2*round + len(hosts) - 1)
			files := c.Files[off : off+100]
			codes, bodies, took := postTimed(lb.url()+"/", files)
			checkTexts(t, c.Want, files, codes, bodies)
			if len(hosts) == 1 {
				one = append(one, took...)
			} else {
				two = append(two, took...)
			}
		}
	}
	p1, p2 := percentile(one, 50), percentile(two, 50)
	t.Logf("p50 latency of 200 course requests at concurrency 100: one host %s, two hosts %s (ratio %.2f); p90 %s and %s",
		p1.Round(time.Millisecond), p2.Round(time.Millisecond), float64(p2)/float64(p1),
		percentile(one, 90).Round(time.Millisecond), percentile(two, 90).Round(time.Millisecond))
	for _, h := range []*webHost{a, b} {
		if v := metric(t, h.base, `facecloud_web_answers_total{via="store"}`); v != 0 {
			t.Errorf("%s: %v answers found by polling the store: a reply went astray", h.name, v)
		}
		if v := metric(t, h.base, `facecloud_web_answers_total{via="reply"}`); v < 50 {
			t.Errorf("%s: only %v answers by reply: the balancer did not spread the calls", h.name, v)
		}
	}

	// Kill: host b dies (web agent and scaler, SIGKILL) while requests are
	// in flight through the balancer; half of them on the course's route,
	// half on the API answering 202 at once.
	lb.route(hostPort(a), hostPort(b))
	files := c.Files[500:700]
	type outcome struct {
		code int
		body string
		err  error
	}
	outs := make([]outcome, len(files))
	var answered atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			url := lb.url() + "/"
			if i%2 == 1 {
				url = lb.url() + "/v1/recognitions?wait=0"
			}
			code, body, err := postFile(context.Background(), client, url, "inputFile", f)
			outs[i] = outcome{code, body, err}
			if code == http.StatusOK || code == http.StatusAccepted {
				answered.Add(1)
			}
		})
	}
	eventually(t, 2*time.Minute, "answers before the kill", func() bool { return answered.Load() >= 40 })
	b.web.kill()
	b.scaler.kill()
	killedAt := answered.Load()
	wg.Wait()
	accepted, cut := 0, 0
	var pending []string // ids answered 202
	for i, o := range outs {
		f := files[i]
		switch {
		case o.err != nil:
			cut++ // cut by the kill: not accepted, and the client knows
		case o.code == http.StatusOK && i%2 == 0:
			accepted++
			if err := textAnswer(c.Want, f, o.body); err != nil {
				t.Errorf("accepted and answered wrong: %v", err)
			}
		case o.code == http.StatusAccepted && i%2 == 1:
			accepted++
			var st struct{ ID string }
			if err := json.Unmarshal([]byte(o.body), &st); err != nil || st.ID == "" {
				t.Errorf("%s: 202 without an id: %q", stem(f), o.body)
				continue
			}
			pending = append(pending, st.ID+" "+f)
		case o.code >= 500:
			cut++
		default:
			t.Errorf("%s: %d %q during the kill, want 200/202, a 5xx or a cut connection", stem(f), o.code, o.body)
		}
	}
	// Every accepted request's result, from the surviving host.
	for _, p := range pending {
		id, f, _ := strings.Cut(p, " ")
		code, body := get(context.Background(), http.DefaultClient, a.base+"/v1/recognitions/"+id+"?wait=60s")
		var res struct{ Name, Status, Answer string }
		if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil {
			t.Errorf("%s (%s): accepted but not retrievable from the surviving host: %d %q", stem(f), id, code, body)
			continue
		}
		if res.Status != "done" || res.Name != stem(f) || res.Answer != c.Want[stem(f)] {
			t.Errorf("%s (%s): result %+v, want %s", stem(f), id, res, c.Want[stem(f)])
		}
	}
	t.Logf("kill of web-b after %d answers: %d of %d requests accepted (%d by 202, retrieved from web-a afterwards), all right; %d cut by the kill",
		killedAt, accepted, len(files), len(pending), cut)
	if cut == 0 {
		t.Error("no request was cut: the kill came too late to test anything")
	}

	// The surviving scaler acts (it held the lease, or takes it over), and
	// the dead host's reply queue is collected.
	eventually(t, 30*time.Second, "web-a's scaler leading", func() bool {
		a.scaler.syncLog(t)
		return strings.Contains(a.scaler.out.String(), `msg="scaler leading"`)
	})
	api := sqs.NewFromConfig(s.cfg)
	eventually(t, time.Minute, "web-b's reply queue removed", func() bool {
		out, err := api.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(s.names.ReplyQueuePrefix)})
		if err != nil {
			return false
		}
		names := map[string]bool{}
		for _, u := range out.QueueUrls {
			names[u[strings.LastIndexByte(u, '/')+1:]] = true
		}
		return len(names) == 1 && names[a.replyQueue[strings.LastIndexByte(a.replyQueue, '/')+1:]]
	})
	// The survivor still answers, and stops cleanly, removing its queue.
	codes, bodies, _ = postTimed(lb.url()+"/", c.Files[950:960])
	checkTexts(t, c.Want, c.Files[950:960], codes, bodies)
	a.web.stop(t, time.Minute)
	out, err := api.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(s.names.ReplyQueuePrefix)})
	if err != nil || len(out.QueueUrls) != 0 {
		t.Fatalf("after the last host's clean stop: reply queues %v, %v; want none", out.QueueUrls, err)
	}
}

// postTimed posts files to url at concurrency 100 on new connections (so a
// balancer spreads them) and returns each status, body and latency.
func postTimed(url string, files []string) ([]int, []string, []time.Duration) {
	codes, bodies, took := make([]int, len(files)), make([]string, len(files)), make([]time.Duration, len(files))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			code, body, err := postFile(context.Background(), client, url, "inputFile", f)
			took[i] = time.Since(t0)
			if err != nil {
				body = err.Error()
			}
			codes[i], bodies[i] = code, body
		})
	}
	wg.Wait()
	return codes, bodies, took
}

// checkTexts requires every POST / answered 200 with its right answer.
func checkTexts(t *testing.T, want map[string]string, files []string, codes []int, bodies []string) {
	t.Helper()
	bad := 0
	for i, f := range files {
		var err error
		if codes[i] != http.StatusOK {
			err = fmt.Errorf("%s: status %d: %s", stem(f), codes[i], bodies[i])
		} else {
			err = textAnswer(want, f, bodies[i])
		}
		if err != nil {
			if bad++; bad <= 10 {
				t.Error(err)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d requests not answered right", bad, len(files))
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}
