package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/facecloud/facecloud/agents/platform/sqsqueue"
	"github.com/facecloud/facecloud/stack/rehearsal"
)

// webEnv is the web hosts' agent.env as the web launch template writes it.
func (s *system) webEnv() map[string]string {
	lt, err := s.cap.One("aws:ec2/launchTemplate:LaunchTemplate", "web")
	if err != nil {
		return nil
	}
	ud, err := userDataOf(rehearsal.String(lt.Inputs, "userData"))
	if err != nil {
		return nil
	}
	cc, err := rehearsal.ParseCloudConfig(ud)
	if err != nil {
		return nil
	}
	return rehearsal.EnvFile(cc.Files()["/etc/facecloud/agent.env"])
}

// replyPrefix is the queue URL prefix of the web hosts' own reply queues.
func (s *system) replyPrefix() string { return s.webEnv()["FACECLOUD_REPLY_PREFIX"] }

// openRecognition says whether the web hosts let recognition through
// without a key (the course preset).
func (s *system) openRecognition() bool { return s.webEnv()["FACECLOUD_OPEN_RECOGNITION"] == "true" }

// makeParameters puts the SSM parameters the program declares (the first
// admin key) into moto as declared.
func (s *system) makeParameters(ctx context.Context) error {
	c := ssm.NewFromConfig(s.admin)
	for _, p := range s.of("aws:ssm/parameter:Parameter") {
		if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{
			Name:        aws.String(rehearsal.String(p.Inputs, "name")),
			Value:       aws.String(rehearsal.String(p.Inputs, "value")),
			Type:        "SecureString",
			Description: aws.String(rehearsal.String(p.Inputs, "description")),
		}); err != nil {
			return fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		if rehearsal.String(p.Inputs, "type") != "SecureString" {
			return fmt.Errorf("parameter %s is a %s, not a SecureString", p.Name, rehearsal.String(p.Inputs, "type"))
		}
	}
	return nil
}

// makeLogGroups makes the log groups the program declares, with their
// retention.
func (s *system) makeLogGroups(ctx context.Context) error {
	c := cloudwatchlogs.NewFromConfig(s.admin)
	for _, g := range s.of("aws:cloudwatch/logGroup:LogGroup") {
		name := rehearsal.String(g.Inputs, "name")
		if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name)}); err != nil {
			return fmt.Errorf("log group %s: %w", name, err)
		}
		if d := rehearsal.Number(g.Inputs, "retentionInDays"); d > 0 {
			if _, err := c.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(name), RetentionInDays: aws.Int32(int32(d))}); err != nil {
				return fmt.Errorf("log group %s retention: %w", name, err)
			}
		}
	}
	return nil
}

// adminKey reads the stack's first admin key as an operator does: the
// SecureString parameter the stack made, decrypted.
func (s *system) adminKey(ctx context.Context) (string, error) {
	name := fmt.Sprint(s.cap.Outputs["adminKeyParameter"])
	out, err := ssm.NewFromConfig(s.admin).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("read the admin key from %s: %w", name, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

// albStandIn stands in for the Application Load Balancer in front of the
// web group: the round-robin balancer of webtier_test.go over the web
// hosts that pass the target group's health check (its captured path and
// timeout, answering 200). It asks every half second rather than every
// interval, so a new host is routed to soon and a failing one is left out
// at once; but, as the load balancer does for a group whose health check
// type is ELB, only a host that was healthy and then failed the check
// UnhealthyThreshold times in a row, over as many intervals, is reported
// to the group, which replaces it: the stand-in terminates the instance
// without lowering the desired capacity, and the group launches another.
// It speaks plain HTTP on one port whatever the listeners say: TLS, the
// certificate and the redirect are not rehearsed.
type albStandIn struct {
	s         *system
	rr        *roundRobin
	path      string
	unhealthy int
	// interval and timeout are the target group's health check's.
	interval, timeout time.Duration
	// The health state is kept per host as booted, not per instance id:
	// the web player boots a group's instances again as new hosts when a
	// tier starts after another, and a new host is neither healthy nor
	// failing until its own checks say so (an ALB's target starts in
	// its initial state too).
	mu           sync.Mutex
	fails        map[*host]int
	failingSince map[*host]time.Time
	seen         map[*host]bool // hosts that passed a check once
	healthy      []*host        // hosts routed to
	replaced     []string       // instance ids reported to the group
	stop         context.CancelFunc
	done         chan struct{}
}

func (s *system) startFront() *albStandIn {
	if s.front != nil {
		return s.front
	}
	tg, err := s.cap.One("aws:lb/targetGroup:TargetGroup", "web")
	if err != nil {
		s.t.Fatal(err)
	}
	f := &albStandIn{s: s, rr: newRoundRobin(s.top), path: rehearsal.String(tg.Inputs, "healthCheck", "path"),
		unhealthy: int(rehearsal.Number(tg.Inputs, "healthCheck", "unhealthyThreshold")),
		interval:  time.Duration(rehearsal.Number(tg.Inputs, "healthCheck", "interval")) * time.Second,
		timeout:   time.Duration(rehearsal.Number(tg.Inputs, "healthCheck", "timeout")) * time.Second,
		fails:     map[*host]int{}, failingSince: map[*host]time.Time{}, seen: map[*host]bool{}, done: make(chan struct{})}
	if f.path == "" || f.unhealthy < 1 || f.interval <= 0 || f.timeout <= 0 {
		s.t.Fatalf("target group health check %v", rehearsal.Get(tg.Inputs, "healthCheck"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	go func() {
		defer close(f.done)
		client := &http.Client{Timeout: f.timeout}
		for ctx.Err() == nil {
			f.check(ctx, client)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	s.top.Cleanup(func() { cancel(); <-f.done })
	s.front = f
	return f
}

func (f *albStandIn) url() string { return f.rr.url() }

// check asks every web host for the health check path and routes to those
// that answer 200.
func (f *albStandIn) check(ctx context.Context, client *http.Client) {
	s := f.s
	s.mu.Lock()
	var hosts []*host
	for _, h := range s.hosts {
		if h.role == s.webRole {
			hosts = append(hosts, h)
		}
	}
	s.mu.Unlock()
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].id < hosts[j].id })
	var healthy []*host
	var backends []string
	for _, h := range hosts {
		h.mu.Lock()
		port, ok := h.ports["FACECLOUD_PORT"]
		// A host shutting down has left the target group; a dead one
		// is still in it, failing its checks.
		leaving := h.stopping && !h.dead
		h.mu.Unlock()
		if !ok || leaving {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		code, why := 0, ""
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+f.path, nil); err == nil {
			if resp, err := client.Do(req); err == nil {
				code = resp.StatusCode
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
				resp.Body.Close()
				why = fmt.Sprintf("%d %s", code, strings.TrimSpace(string(b)))
			} else {
				why = err.Error()
			}
		}
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		f.mu.Lock()
		if code == http.StatusOK {
			f.fails[h] = 0
			delete(f.failingSince, h)
			f.seen[h] = true
			healthy, backends = append(healthy, h), append(backends, addr)
		} else if f.seen[h] {
			if f.fails[h] == 0 {
				f.failingSince[h] = now
			}
			f.fails[h]++
			// Failed as many checks in a row as the threshold, over as
			// long as the load balancer takes to make them.
			if f.fails[h] >= f.unhealthy && now.Sub(f.failingSince[h]) >= time.Duration(f.unhealthy-1)*f.interval && !slices.Contains(f.replaced, h.id) {
				f.replaced = append(f.replaced, h.id)
				s.top.Logf("load balancer stand-in: %s failed its health check for %s (%d checks; last: %s): replaced", h.id, now.Sub(f.failingSince[h]).Round(time.Second), f.fails[h], truncate(why, 200))
				go f.replace(h.id)
			}
		}
		f.mu.Unlock()
	}
	f.rr.route(backends...)
	f.mu.Lock()
	f.healthy = healthy
	f.mu.Unlock()
}

// replace reports an unhealthy web host to its group, as the load
// balancer's health check does: the group terminates it and launches a
// new one.
func (f *albStandIn) replace(id string) {
	_, _ = autoscaling.NewFromConfig(f.s.admin).TerminateInstanceInAutoScalingGroup(context.Background(), &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(false),
	})
}

// seenHosts returns the instance ids of the hosts that passed a health
// check so far.
func (f *albStandIn) seenHosts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for h := range f.seen {
		if !slices.Contains(out, h.id) {
			out = append(out, h.id)
		}
	}
	sort.Strings(out)
	return out
}

// routed returns the instance ids of the hosts the stand-in routes to that
// are still up: its list is as of its last check, which may have been made
// before the web tier was stopped, and a host of the next tier may carry
// the same instance id without being routed to yet.
func (f *albStandIn) routed() []string {
	f.mu.Lock()
	healthy := slices.Clone(f.healthy)
	f.mu.Unlock()
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, h := range healthy {
		if s.hosts[h.id] == h {
			ids = append(ids, h.id)
		}
	}
	return ids
}

// answers reports whether n calls of the health check path through the
// stand-in's front, each on a new connection (so each goes to the next
// host in turn), all answer 200.
func (f *albStandIn) answers(ctx context.Context, n int) bool {
	client := &http.Client{Timeout: f.timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url()+f.path, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// startWebTier lets the web player boot the web group's instances (fresh
// hosts for every rehearsal) and waits until the load balancer stand-in
// routes to as many as the group holds and answers its health check path
// through its front as often in a row.
func (s *system) startWebTier(ctx context.Context, timeout time.Duration) (string, error) {
	f := s.startFront()
	if s.webPlayer == nil {
		s.webPlayer = s.startPlayerFor(s.webGroup)
	}
	s.webPlayer.active.Store(true)
	want := int(rehearsal.Number(s.cap.Resources[s.groupIndex("web")].Inputs, "desiredCapacity"))
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if len(f.routed()) >= want && f.answers(ctx, want) {
			return f.url(), nil
		}
		if len(s.refusals()) > 0 || s.broken() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("the load balancer stand-in routes to %v; the web group holds %d", f.routed(), want)
}

// groupIndex is the index in the capture of the group the program
// declared as name.
func (s *system) groupIndex(name string) int {
	for i, r := range s.cap.Resources {
		if r.Type == "aws:autoscaling/group:Group" && r.Name == name {
			return i
		}
	}
	s.t.Fatalf("no group %s declared", name)
	return -1
}

// stopWebTier stops the web hosts as a scale-in or refresh does: SIGTERM,
// so each web agent deletes its reply queue and records its keys' last
// use, and the scaler releases its lease. The group's instances stay; the
// next startWebTier boots fresh hosts on them.
func (s *system) stopWebTier() {
	if s.webPlayer != nil {
		s.webPlayer.active.Store(false)
	}
	s.mu.Lock()
	var web []*host
	for id, h := range s.hosts {
		if h.role == s.webRole {
			web = append(web, h)
			delete(s.hosts, id)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range web {
		wg.Go(func() { h.shutdown(40 * time.Second) })
	}
	wg.Wait()
}

// webHosts returns the web hosts booted and not stopped.
func (s *system) webHosts() []*host {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*host
	for _, h := range s.hosts {
		if h.role == s.webRole {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// deadHostQueue makes a reply queue under the prefix as a web host that
// died without cleaning up leaves behind (last touched an hour ago), for
// the acting scaler to collect. (An untagged queue's age is its
// CreatedTimestamp, which SQS gives in whole seconds and moto with a
// fraction the agents do not read; so the stand-in carries the tag.)
func (s *system) deadHostQueue(ctx context.Context) (string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := aws.String(lastSegment(s.replyPrefix()) + "rehearsal-dead-" + hex.EncodeToString(b))
	out, err := sqs.NewFromConfig(s.admin).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: name,
		Tags: map[string]string{sqsqueue.TouchedTag: strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)}})
	if err != nil {
		return "", fmt.Errorf("dead host's reply queue: %w", err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// queueGone reports whether a queue no longer exists.
func (s *system) queueGone(ctx context.Context, url string) bool {
	_, err := sqs.NewFromConfig(s.admin).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
	return err != nil && strings.Contains(err.Error(), "NonExistentQueue")
}

// hostQueues lists the reply queues under the prefix.
func (s *system) hostQueues(ctx context.Context) ([]string, error) {
	out, err := sqs.NewFromConfig(s.admin).ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(lastSegment(s.replyPrefix()))})
	if err != nil {
		return nil, err
	}
	return out.QueueUrls, nil
}

func lastSegment(u string) string { return u[strings.LastIndexByte(u, '/')+1:] }

// apiCall makes one JSON API call with the key (none when "").
func apiCall(ctx context.Context, method, url, key string, body any) (int, string) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, err.Error()
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// keyTour is what an operator does with the admin key after a deployment:
// create a recognition key through the API, use it, revoke it and see it
// refused; erase one recognition (its image, result and answer object)
// and see it gone. It returns the problems seen.
func keyTour(ctx context.Context, base, admin, id, stemName, want string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	code, body := apiCall(ctx, http.MethodPost, base+"/v1/keys", admin, map[string]any{"name": "rehearsal", "scopes": []string{"recognize"}})
	var created struct{ Key, ID string }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &created) != nil || created.Key == "" {
		bad("POST /v1/keys: %d %s", code, truncate(body, 300))
		return problems
	}
	if code, body := apiCall(ctx, http.MethodGet, base+"/v1/recognitions/"+id, created.Key, nil); code != http.StatusOK || !strings.Contains(body, want) {
		bad("GET /v1/recognitions/%s with a new recognize key: %d %s", id, code, truncate(body, 300))
	}
	if code, body := apiCall(ctx, http.MethodGet, base+"/v1/gallery", created.Key, nil); code != http.StatusForbidden {
		bad("GET /v1/gallery with a recognize key: %d %s, want 403", code, truncate(body, 200))
	}
	if code, body := apiCall(ctx, http.MethodDelete, base+"/v1/keys/"+created.ID, admin, nil); code/100 != 2 {
		bad("DELETE /v1/keys/%s: %d %s", created.ID, code, truncate(body, 300))
	}
	// Revoked: refused by every web host within its key refresh (5 s).
	deadline := time.Now().Add(30 * time.Second)
	refused := 0
	for time.Now().Before(deadline) && ctx.Err() == nil && refused < 4 {
		if code, _ := apiCall(ctx, http.MethodGet, base+"/v1/recognitions/"+id, created.Key, nil); code == http.StatusUnauthorized {
			refused++
		} else {
			refused = 0
		}
		time.Sleep(250 * time.Millisecond)
	}
	if refused < 4 {
		bad("the revoked key %s is still accepted after 30 s", created.ID)
	}
	if code, body := apiCall(ctx, http.MethodDelete, base+"/v1/recognitions/"+id, admin, nil); code != http.StatusOK || !strings.Contains(body, `"results":1`) || !strings.Contains(body, `"inputs":1`) {
		bad("DELETE /v1/recognitions/%s: %d %s, want its input and result deleted", id, code, truncate(body, 300))
	}
	if code, body := apiCall(ctx, http.MethodGet, base+"/v1/recognitions/"+id, admin, nil); code != http.StatusNotFound {
		bad("GET /v1/recognitions/%s after its erasure: %d %s, want 404", id, code, truncate(body, 300))
	}
	_ = stemName
	return problems
}
