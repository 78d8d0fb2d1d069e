package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/facecloud/facecloud/stack/rehearsal"
)

// TestDeployRehearsal boots what the stack ships, as shipped, against moto
// with IAM enforced: the program runs under the stand-in cloud and its
// captured resources are made in moto (queues, buckets, artifacts, roles
// with their policies, launch template, group); hosts boot from the
// captured user data with their units run as the units say, each with its
// own metadata service serving its role's session. Then the course's
// workload runs against the web host. It also proves it bites: every IAM
// action of the agents removed in turn, a shipped model file missing, and
// the artifacts bucket unreachable during boot.
func TestDeployRehearsal(t *testing.T) {
	ep := rehearsalEndpoint(t)
	c := courseSet(t)
	keep := os.Getenv(envRehearsalKeep)
	t0 := time.Now()

	// The stacks as committed, but with workers retiring after 5-10 s idle
	// instead of minutes, at most 3 of them (each boots with the AWS CLI,
	// and this machine has 2 cores), and web hosts that mark their reply
	// queues alive every 2 s, so a dead host's queue is collected after
	// 10 s rather than 10 minutes.
	type planned struct {
		name, file string
		overrides  map[string]string
	}
	tier := func(o map[string]string) map[string]string {
		o["replyTouch"], o["replyExpiry"] = "2s", "10s"
		return o
	}
	plans := []planned{{"dev", "Pulumi.dev.yaml", tier(map[string]string{"idleExit": "5s", "maxWorkers": "3"})}}
	switch keep {
	case "":
		plans = append(plans,
			planned{"course", "Pulumi.course.yaml.example", tier(map[string]string{"maxWorkers": "3"})},
			// The prod example with private workers: its warm pool needs
			// EC2, which moto does not run, and its Image Builder AMI is
			// stood in by the stock boot path (the same fetch). One web
			// host: the dev stack rehearses two.
			planned{"prod", "Pulumi.prod.yaml.example", tier(map[string]string{"idleExit": "10s", "warmPoolSize": "0", "image": "stock", "maxWorkers": "3", "webHosts": "1"})},
			planned{"outage", "Pulumi.dev.yaml", tier(map[string]string{"idleExit": "5s", "namePrefix": "facecloud-outage", "maxWorkers": "2", "webHosts": "1"})})
		// The IAM table's rows run on copies of the dev stack (one web
		// host, one worker: a row needs no more), side by side.
		for i := 1; i <= iamShards; i++ {
			plans = append(plans, planned{fmt.Sprintf("iam%d", i), "Pulumi.dev.yaml", tier(map[string]string{
				"idleExit": "5s", "maxWorkers": "1", "webHosts": "1", "namePrefix": fmt.Sprintf("facecloud-iam%d", i)})})
		}
	case "dev":
	case "course":
		plans = []planned{{"course", "Pulumi.course.yaml.example", tier(map[string]string{"maxWorkers": "3"})}}
	default:
		t.Fatalf("%s=%q: want dev or course", envRehearsalKeep, keep)
	}
	admin := adminIdentity(t, ep)
	systems := map[string]*system{}
	for _, p := range plans {
		cap := captureStack(t, p.name, p.file, p.overrides)
		systems[p.name] = deploySystem(t, ep, admin, cap)
	}
	for _, s := range systems {
		s.assumeRoles(t)
	}
	enforceIAM(t, ep, true)
	t.Cleanup(func() { enforceIAM(t, ep, false) })
	checkEnforced(t, systems[plans[0].name])
	t.Logf("captured and deployed %d systems in moto in %s", len(systems), time.Since(t0).Round(time.Second))

	if keep != "" {
		s := systems[keep]
		s.startPlayer()
		o := s.rehearse(workload{files: c.Files[:100], enrol: true, back: 2 * time.Minute})
		t.Logf("%s: %s", keep, o.report())
		if o.failed() {
			t.Fatal(o.report())
		}
		base, err := s.startWebTier(t.Context(), 3*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		s.keepRunning(t, base, admin)
		return
	}

	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		s := systems["dev"]
		s.t = t
		s.startPlayer()
		o := s.rehearse(workload{files: c.Files[:100], enrol: true, back: 2 * time.Minute})
		t.Logf("dev stack (%d web hosts): %d requests, %d correct, fleet %s, %s", len(s.front.seenHosts()), o.requests, o.correct, o.trajectory, o.took.Round(time.Millisecond))
		if o.failed() {
			t.Fatal(o.report() + "\n" + o.logs)
		}
		t.Run("web host killed", func(t *testing.T) { webHostKilled(t, s) })
		t.Run("missing model file", func(t *testing.T) { missingModel(t, s) })
	})
	t.Run("iam", func(t *testing.T) {
		t.Parallel()
		for i := 1; i <= iamShards; i++ {
			s := systems[fmt.Sprintf("iam%d", i)]
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				iamTable(t, s, i-1)
			})
		}
	})
	t.Run("presets", func(t *testing.T) {
		t.Parallel()
		t.Run("artifacts bucket unreachable at boot", func(t *testing.T) { outage(t, systems["outage"]) })
		t.Run("course", func(t *testing.T) { coursePreset(t, systems["course"]) })
		t.Run("private workers", func(t *testing.T) { privatePreset(t, systems["prod"]) })
	})
}

// checkEnforced shows IAM enforcement is on: the worker role may not delete
// its queue, and the emulator's dummy keys are refused.
func checkEnforced(t *testing.T, s *system) {
	t.Helper()
	var worker string
	for r := range s.roles {
		if r != s.webRole && strings.HasSuffix(r, "-worker") {
			worker = r
		}
	}
	id := s.roles[worker]
	q := s.cap.Outputs["requestQueueUrl"].(string)
	_, err := sqs.NewFromConfig(id.config(s.endpoint)).DeleteQueue(t.Context(), &sqs.DeleteQueueInput{QueueUrl: aws.String(q)})
	if err == nil || !(strings.Contains(err.Error(), "AccessDenied") || strings.Contains(err.Error(), "StatusCode: 403")) {
		t.Fatalf("IAM enforcement is not on: the worker role deleting its queue gave %v", err)
	}
}

// reset stops the web hosts and every worker, empties the queues, removes
// what the hosts left behind (reply queues, the scalers' lease), so a row
// starts from a group at its minimum, as after a fresh deployment.
func (s *system) reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s.stopWebTier()
	as := autoscaling.NewFromConfig(s.admin)
	st, _, err := s.instanceStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id := range st {
		_, _ = as.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(true)})
	}
	minSize := int32(rehearsal.Number(s.cap.Resources[s.groupIndex("workers")].Inputs, "minSize"))
	if _, err := as.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(s.group), DesiredCapacity: aws.Int32(minSize)}); err != nil {
		t.Fatal(err)
	}
	q := sqs.NewFromConfig(s.admin)
	for _, k := range []string{"requestQueueUrl", "responseQueueUrl"} {
		_, _ = q.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(fmt.Sprint(s.cap.Outputs[k]))})
	}
	left, _ := s.hostQueues(ctx)
	for _, u := range left {
		_, _ = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
	}
	_, _ = s.s3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(fmt.Sprint(s.cap.Outputs["outputBucket"])), Key: aws.String("leases/scaler")})
	if err := s.waitGroupAtMin(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.booted = nil
	s.mu.Unlock()
}

// iamShards is how many copies of the dev stack the IAM table's rows are
// spread over, each running its rows in turn, side by side.
const iamShards = 3

// grantRef is one statement of one inline policy of a role.
type grantRef struct{ policy, sid string }

// iamRow is one action removed from one or more statements of a role's
// policies: from one statement, or, for an action a role has from two of
// its policies on the same resource (the web host's web and scaler
// agents share one instance profile), from all of them.
type iamRow struct {
	role, action, resource string
	from                   []grantRef
	// arns are the statement's resources as written (single-policy rows).
	arns []string
}

func (r iamRow) name() string {
	role := r.role[strings.LastIndex(r.role, "-")+1:]
	if len(r.from) > 1 {
		return strings.ReplaceAll(role+" every policy "+r.action+" "+r.resource, ":", " ")
	}
	return strings.ReplaceAll(role+" "+r.from[0].policy+" "+r.from[0].sid+" "+r.action, ":", " ")
}

// key names the row in unobservable: "<role> <policy or *> <action> <resource>".
func (r iamRow) key() string {
	policy := "*"
	if len(r.from) == 1 {
		policy = r.from[0].policy
	}
	return r.role[strings.LastIndex(r.role, "-")+1:] + " " + policy + " " + r.action + " " + r.resource
}

// iamRows lists every action of the agents', the boot fetch's and the log
// shipping's policies of the web and worker roles, as the program wrote
// them, and a row per action that a role has from several of its policies.
func iamRows(s *system) []iamRow {
	var rows []iamRow
	shared := map[string][]grantRef{}
	for _, p := range s.of("aws:iam/rolePolicy:RolePolicy") {
		name := rehearsal.String(p.Inputs, "name")
		if !slices.Contains([]string{"web", "scaler", "worker", "artifacts", "logs"}, name) {
			continue
		}
		role := rehearsal.String(p.Inputs, "role")
		if !strings.HasSuffix(role, "-web") && !strings.HasSuffix(role, "-worker") {
			continue // the image builder's role boots no host here
		}
		var d struct {
			Statement []struct {
				Sid      string
				Action   []string
				Resource []string
			}
		}
		if err := json.Unmarshal([]byte(s.policies[role][name]), &d); err != nil {
			s.t.Fatal(err)
		}
		for _, st := range d.Statement {
			res := resourceOf(st.Resource)
			for _, a := range st.Action {
				ref := grantRef{policy: name, sid: st.Sid}
				rows = append(rows, iamRow{role: role, action: a, resource: res, from: []grantRef{ref}, arns: st.Resource})
				k := role + " " + a + " " + res
				shared[k] = append(shared[k], ref)
			}
		}
	}
	for k, refs := range shared {
		if len(refs) > 1 {
			f := strings.Fields(k)
			rows = append(rows, iamRow{role: f[0], action: f[1], resource: f[2], from: refs})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name() < rows[j].name() })
	return rows
}

// grantedTwice reports whether the row's action on its resource is
// granted by another policy of the same role as well: on the same
// resource, or on resources whose patterns cover all of it (the web
// policy's output/* covers the scaler policy's output/leases/*).
func grantedTwice(rows []iamRow, r iamRow) bool {
	for _, o := range rows {
		if o.role != r.role || o.action != r.action {
			continue
		}
		if len(o.from) > 1 && o.resource == r.resource {
			return true
		}
		if len(o.from) == 1 && o.from[0].policy != r.from[0].policy && covers(o.arns, r.arns) {
			return true
		}
	}
	return false
}

// covers reports whether every resource in want matches one of the IAM
// resource patterns in have (* and ? wildcards, as IAM reads them).
func covers(have, want []string) bool {
	if len(have) == 0 || len(want) == 0 {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool {
			re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(h)) + "$"
			return regexp.MustCompile(re).MatchString(w)
		}) {
			return false
		}
	}
	return true
}

// without returns doc with action removed from statement sid.
func without(doc, sid, action string) string {
	var d map[string]any
	_ = json.Unmarshal([]byte(doc), &d)
	var kept []any
	for _, st := range asList(d["Statement"]) {
		m := asMap(st)
		if m["Sid"] == sid {
			var acts []any
			for _, a := range asList(m["Action"]) {
				if a != action {
					acts = append(acts, a)
				}
			}
			if len(acts) == 0 {
				continue
			}
			m["Action"] = acts
		}
		kept = append(kept, m)
	}
	if len(kept) == 0 {
		kept = []any{map[string]any{"Effect": "Deny", "Action": []any{"none:None"}, "Resource": []any{"*"}}}
	}
	d["Statement"] = kept
	b, _ := json.Marshal(d)
	return string(b)
}

// callsOf are the API calls that need action.
func callsOf(action string) []string {
	switch action {
	case "s3:GetObject":
		return []string{"s3:GetObject", "s3:HeadObject"}
	case "s3:ListBucket":
		return []string{"s3:ListObjectsV2", "s3:ListObjects"}
	case "sqs:DeleteMessage":
		return []string{"sqs:DeleteMessage", "sqs:DeleteMessageBatch"}
	}
	return []string{action}
}

// unobservable are grants whose absence the rehearsal cannot show, keyed
// as iamRow.key, with why. Each is checked to pass still: when one starts
// failing, the entry must go. A grant a role has from two of its policies
// is not listed: its row per policy passes (the other policy grants it)
// and the row removing it from both must fail.
var unobservable = map[string]string{
	// S3 answers 403 instead of 404 for a missing key without
	// s3:ListBucket; moto answers 404 either way.
	"web web s3:ListBucket input":                        "moto answers 404 for a missing key without it (S3 answers 403)",
	"worker worker s3:ListBucket input":                  "moto answers 404 for a missing key without it (S3 answers 403)",
	"worker worker sqs:ChangeMessageVisibility requests": "used by the heartbeat of a job longer than workerHeartbeat (10 s) and to delay a failed job's retry; the course's jobs take milliseconds",
	"worker worker sqs:SendMessage replies":              "every request names its web host's own reply queue; the shared queue answers requests from web hosts without --reply-prefix (an earlier build, during an upgrade)",
	// The rows' workloads enrol nothing and erase no face: the compactor
	// has no new log to fold, and only a gallery erasure appends through
	// the web agent. The baseline run before the rows enrols and compacts
	// with the grant.
	"web * s3:PutObject collections": "a row's workload enrols no face and erases none, so neither the compactor nor the web agent writes a collection's objects during it",
}

// iamTable removes each action in turn and expects the rehearsal to fail
// naming the refused call. The rows of shard (every iamShards-th row) run
// against one deployed copy of the dev stack, after a baseline run with
// every grant that enrols its gallery: each row boots fresh web hosts and
// workers (moto reads a role's policies at every request, so the sessions
// need not change).
func iamTable(t *testing.T, s *system, shard int) {
	c := courseSet(t)
	s.t = t
	s.startPlayer()
	rows := iamRows(s)
	if len(rows) < 40 {
		t.Fatalf("%d IAM rows; the agents' policies were not captured", len(rows))
	}
	base := s.rehearse(workload{files: c.Files[:2], enrol: true, back: time.Minute})
	if base.failed() {
		t.Fatalf("%s with every grant: %s\n%s", s.name, base.report(), base.logs)
	}
	for i, r := range rows {
		if i%iamShards != shard {
			continue
		}
		t.Run(r.name(), func(t *testing.T) {
			s.t = t
			s.reset(t)
			docs := map[string]string{}
			for _, f := range r.from {
				if docs[f.policy] == "" {
					docs[f.policy] = s.policies[r.role][f.policy]
				}
			}
			changed := map[string]string{}
			for _, f := range r.from {
				if changed[f.policy] == "" {
					changed[f.policy] = docs[f.policy]
				}
				changed[f.policy] = without(changed[f.policy], f.sid, r.action)
			}
			for policy, doc := range changed {
				if err := s.putPolicy(t.Context(), r.role, policy, doc); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				for policy, doc := range docs {
					if err := s.putPolicy(context.Background(), r.role, policy, doc); err != nil {
						t.Fatal(err)
					}
				}
			}()
			o := s.rehearse(workload{files: c.Files[:2], back: 45 * time.Second})
			reason, known := unobservable[r.key()]
			if len(r.from) == 1 && grantedTwice(rows, r) {
				reason, known = "the role's other policy grants it too (one instance profile for web and scaler); the row removing it from both must fail", true
			}
			switch {
			case !o.failed() && known:
				t.Logf("passes without %s, as expected: %s", r.action, reason)
				return
			case !o.failed():
				t.Fatalf("the rehearsal passed with %s removed from %s (%v): it does not see this grant", r.action, r.role, r.from)
			case known:
				t.Errorf("%s is listed as unobservable (%s) but the rehearsal now fails without it; remove it from the list:\n%s", r.key(), reason, o.report())
			}
			named := false
			for _, call := range callsOf(r.action) {
				named = named || strings.Contains(o.report(), " "+call+" on ")
			}
			if !named {
				t.Fatalf("without %s the rehearsal failed but does not name the refused call (%v):\n%s", r.action, callsOf(r.action), o.report())
			}
			t.Logf("without %s: %s", r.action, firstRefusal(o))
		})
	}
	s.t = t
	s.reset(t)
}

// resourceOf names what a statement is on: requests, replies,
// host-replies, dead-letters, input, output, artifacts (a bucket or its objects), lease,
// keys, collections, status, logs, or * (moto's view of the group too).
func resourceOf(resources []string) string {
	if len(resources) == 0 {
		return ""
	}
	res := resources[0]
	switch {
	case strings.HasSuffix(res, "*") && strings.Contains(res, ":sqs:"):
		return "host-replies"
	case strings.Contains(res, ":log-group:"):
		return "logs"
	case strings.HasSuffix(res, "/leases/*"):
		return "lease"
	case strings.HasSuffix(res, "/keys/*"):
		return "keys"
	case strings.HasSuffix(res, "/collections/*"):
		return "collections"
	case strings.HasSuffix(res, "/status/*"):
		return "status"
	}
	for _, k := range []struct{ suffix, name string }{{"-requests-dlq", "dead-letters"}, {"-req-dlq", "dead-letters"}, {"-requests", "requests"}, {"-req-queue", "requests"}, {"-replies", "replies"}, {"-resp-queue", "replies"}} {
		if strings.HasSuffix(res, k.suffix) {
			return k.name
		}
	}
	for _, k := range []struct{ part, name string }{{"-input", "input"}, {"-in-bucket", "input"}, {"-output", "output"}, {"-out-bucket", "output"}, {"-artifacts", "artifacts"}} {
		if strings.Contains(res, k.part) {
			return k.name
		}
	}
	return res
}

func firstRefusal(o outcome) string {
	for _, p := range o.problems {
		if strings.HasPrefix(p, "refused call: ") {
			return p
		}
	}
	if len(o.problems) > 0 {
		return o.problems[0]
	}
	return ""
}

// missingModel ships the workers a manifest without one model file: the
// worker must say which file is missing, the rehearsal must fail, and the
// instance must take itself out of the group.
func missingModel(t *testing.T, s *system) {
	s.t = t
	s.reset(t)
	ctx := t.Context()
	e := ec2.NewFromConfig(s.admin)
	lt, err := s.cap.One("aws:ec2/launchTemplate:LaunchTemplate", "worker")
	if err != nil {
		t.Fatal(err)
	}
	ud, err := userDataOf(rehearsal.String(lt.Inputs, "userData"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	removed := ""
	for _, l := range strings.Split(ud, "\n") {
		if strings.Contains(l, "/opt/facecloud/models/face_landmark_68_model.bin ") {
			removed = l
			continue
		}
		kept = append(kept, l)
	}
	if removed == "" {
		t.Fatal("the worker manifest ships no face_landmark_68_model.bin")
	}
	as := autoscaling.NewFromConfig(s.admin)
	g, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{s.group}})
	if err != nil || len(g.AutoScalingGroups) != 1 {
		t.Fatalf("group: %v", err)
	}
	origLT := g.AutoScalingGroups[0].LaunchTemplate
	cur, err := e.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: origLT.LaunchTemplateId, Versions: []string{"$Latest"},
	})
	if err != nil || len(cur.LaunchTemplateVersions) != 1 {
		t.Fatalf("launch template: %v", err)
	}
	d := cur.LaunchTemplateVersions[0].LaunchTemplateData
	useTemplate := func(spec *astypes.LaunchTemplateSpecification) {
		if _, err := as.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(s.group), LaunchTemplate: spec}); err != nil {
			t.Fatal(err)
		}
	}
	// What a stack shipping one model file less would roll out: a new
	// launch template for the group. (moto cannot launch from a second
	// version of a template: it keeps that version's user data undecoded.)
	version := func(userData string) {
		out, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String(rehearsal.String(lt.Inputs, "name") + "-without-a-model-file"),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
				UserData: aws.String(userData), ImageId: d.ImageId, InstanceType: d.InstanceType, SecurityGroupIds: d.SecurityGroupIds,
				IamInstanceProfile: &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: d.IamInstanceProfile.Arn},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		useTemplate(&astypes.LaunchTemplateSpecification{LaunchTemplateId: out.LaunchTemplate.LaunchTemplateId, Version: aws.String("$Latest")})
	}
	version(base64.StdEncoding.EncodeToString([]byte(strings.Join(kept, "\n"))))
	defer func() {
		useTemplate(&astypes.LaunchTemplateSpecification{LaunchTemplateId: origLT.LaunchTemplateId, Version: aws.String("$Latest")})
		s.player.reload(t)
		s.reset(t)
	}()
	s.player.reload(t)
	o := s.rehearse(workload{files: c1(t), back: 30 * time.Second})
	if !o.failed() {
		t.Fatal("the rehearsal passed with a model file missing from the workers")
	}
	if !strings.Contains(o.report(), "face_landmark_68_model.bin") {
		t.Fatalf("the rehearsal failed without naming the missing file:\n%s", o.report())
	}
	// The worker gave up and marked its instance unhealthy.
	deadline := time.Now().Add(time.Minute)
	for {
		st, _, err := s.instanceStates(ctx)
		unhealthy := false
		for _, v := range st {
			unhealthy = unhealthy || strings.HasSuffix(v, "/Unhealthy")
		}
		if err == nil && unhealthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker instance marked itself Unhealthy: %v %v\n%s", st, err, o.report())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a worker without face_landmark_68_model.bin: %s", firstLineWith(o.report(), "face_landmark_68_model.bin"))
}

func c1(t *testing.T) []string { return courseSet(t).Files[:1] }

// withoutDebug drops an agent log's debug records (the scaler logs one
// for each SDK call), keeping what the agents report at info and above.
func withoutDebug(log string) string {
	lines := strings.Split(log, "\n")
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool {
		return strings.Contains(l, `"level":"DEBUG"`) || strings.Contains(l, "level=DEBUG")
	}), "\n")
}

func firstLineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// reload makes the player boot later instances from the launch
// template's current default version.
func (p *player) reload(t *testing.T) {
	g, err := autoscaling.NewFromConfig(p.s.admin).DescribeAutoScalingGroups(t.Context(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{p.s.group}})
	if err != nil || len(g.AutoScalingGroups) != 1 {
		t.Fatalf("group: %v", err)
	}
	ld, err := ec2LaunchTemplateUserData(t.Context(), p.s, aws.ToString(g.AutoScalingGroups[0].LaunchTemplate.LaunchTemplateId))
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.userData = ld.userData
	p.mu.Unlock()
}

// outage boots the web tier with the artifacts bucket unreachable for
// 60 s: the boot fetch must wait it out and the hosts come up by
// themselves.
func outage(t *testing.T, s *system) {
	s.t = t
	bucket := s.cap.Outputs["artifactsBucket"].(string)
	s.blockOnBoot = bucket
	t0 := time.Now()
	s.startFront()
	s.webPlayer = s.startPlayerFor(s.webGroup)
	s.webPlayer.active.Store(true)
	time.Sleep(60 * time.Second)
	web := s.webHosts()
	if len(web) == 0 {
		t.Fatal("no web host booted")
	}
	for _, h := range web {
		h.proxy.block("")
	}
	s.blockOnBoot = ""
	t.Logf("artifacts bucket reachable again after %s", time.Since(t0).Round(time.Second))
	for _, h := range web {
		if !strings.Contains(h.log.String(), "download failed") {
			t.Fatalf("the boot fetch of %s did not meet the outage:\n%s", h.id, truncate(h.log.String(), 2000))
		}
	}
	if _, err := s.startWebTier(t.Context(), 90*time.Second); err != nil {
		t.Fatalf("web tier did not recover after the outage: %v\n%s", err, truncate(web[0].log.String(), 3000))
	}
	t.Logf("web tier ready %s after its boot began, the artifacts bucket unreachable for the first 60 s: %s", time.Since(t0).Round(time.Second), firstLineWith(web[0].log.String(), "download failed"))
	s.startPlayer()
	o := s.rehearse(workload{files: courseSet(t).Files[:10], enrol: true, back: time.Minute})
	if o.failed() {
		t.Fatal(o.report())
	}
}

// webHostKilled runs requests through the load balancer's stand-in to two
// web hosts and SIGKILLs one of them (web agent, scaler, everything on the
// instance) while they are in flight, half on POST / and half on
// POST /v1/recognitions?wait=0: every 200 must be right, every 202's id
// answered right afterwards, the calls cut by the kill must have seen an
// error or a 5xx. Then the stand-in finds the host failing its health
// check and the group replaces it; the acting scaler collects its reply
// queue.
func webHostKilled(t *testing.T, s *system) {
	s.t = t
	s.reset(t)
	ctx := t.Context()
	c := courseSet(t)
	base, err := s.startWebTier(ctx, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := s.adminKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	web := s.webHosts()
	if len(web) < 2 {
		t.Fatalf("%d web hosts; the dev stack runs two", len(web))
	}
	files := c.Files[200:280]
	type result struct {
		code     int
		body, id string
		err      error
	}
	outs := make([]result, len(files))
	var answered atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{} // status or error -> calls, for a failure's report
	var wg sync.WaitGroup
	sem := make(chan struct{}, 40)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			url := base + "/"
			if i%2 == 1 {
				url = base + "/v1/recognitions?wait=0"
			}
			code, body, id, err := postForID(ctx, client, url, admin, f)
			outs[i] = result{code, body, id, err}
			mu.Lock()
			if err != nil {
				seen[oneLineErr(err)]++
			} else {
				seen[fmt.Sprint(code)]++
			}
			mu.Unlock()
			if code == http.StatusOK || code == http.StatusAccepted {
				answered.Add(1)
			}
		})
	}
	for t0 := time.Now(); answered.Load() < 10; time.Sleep(50 * time.Millisecond) {
		if time.Since(t0) > 3*time.Minute {
			// Say what the calls got and what the hosts logged: a tier
			// that answers nothing has a reason in one of them.
			var b strings.Builder
			mu.Lock()
			fmt.Fprintf(&b, "%d answers in 3m before the kill, want 10; calls so far: %v\n", answered.Load(), seen)
			mu.Unlock()
			fmt.Fprintf(&b, "load balancer stand-in routes to %v\n", s.front.routed())
			for _, h := range s.webHosts() {
				fmt.Fprintf(&b, "--- web host %s (last 30 lines above debug level):\n%s\n", h.id, tail(withoutDebug(h.log.String()), 30))
			}
			t.Fatal(b.String())
		}
	}
	victim := web[0]
	victim.kill()
	killedAt := answered.Load()
	wg.Wait()
	accepted, cut, pending := 0, 0, 0
	for i, o := range outs {
		f := files[i]
		switch {
		case o.err != nil || o.code >= 500:
			cut++
		case o.code == http.StatusOK && i%2 == 0:
			accepted++
			if err := textAnswer(c.Want, f, o.body); err != nil {
				t.Errorf("accepted and answered wrong: %v", err)
			}
		case o.code == http.StatusAccepted && i%2 == 1:
			accepted++
			pending++
			var st struct{ ID string }
			if err := json.Unmarshal([]byte(o.body), &st); err != nil || st.ID == "" {
				t.Errorf("%s: 202 without an id: %q", stem(f), o.body)
				continue
			}
			code, body := apiCall(ctx, http.MethodGet, base+"/v1/recognitions/"+st.ID+"?wait=60s", admin, nil)
			var res struct{ Name, Status, Answer string }
			if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || res.Status != "done" || res.Answer != c.Want[stem(f)] {
				t.Errorf("%s (%s): accepted but answered %d %q afterwards, want %s", stem(f), st.ID, code, body, c.Want[stem(f)])
			}
		default:
			t.Errorf("%s: %d %q during the kill, want 200/202, a 5xx or a cut connection", stem(f), o.code, o.body)
		}
	}
	t.Logf("web host %s killed after %d answers: %d of %d requests accepted (%d by 202, answered afterwards), all right; %d cut by the kill",
		victim.id, killedAt, accepted, len(files), pending, cut)
	if cut == 0 {
		t.Error("no request was cut: the kill came too late to test anything")
	}
	// The load balancer's health check finds the host dead; the group
	// replaces it; the tier is whole again.
	eventually(t, 3*time.Minute, "the dead web host replaced", func() bool {
		routed := s.front.routed()
		return len(routed) >= len(web) && !slices.Contains(routed, victim.id)
	})
	t.Logf("replaced: the load balancer's stand-in routes to %v", s.front.routed())
	// Its reply queue is a dead host's: the acting scaler collects it.
	eventually(t, time.Minute, "the dead host's reply queue collected", func() bool {
		qs, err := s.hostQueues(ctx)
		return err == nil && len(qs) == len(web)
	})
	for _, r := range s.refusals() {
		t.Errorf("refused call: %s", r)
	}
	for _, h := range s.webHosts() {
		for _, l := range h.errorLines() {
			t.Errorf("error logged: %s", truncate(l, 400))
		}
	}
	s.reset(t)
}

// coursePreset rehearses the course preset and checks what the course
// asks that a rehearsal can see.
func coursePreset(t *testing.T, s *system) {
	s.t = t
	ctx := t.Context()
	s.startPlayer()
	files := courseSet(t).Files[:100]
	o := s.rehearse(workload{files: files, enrol: true, back: time.Minute})
	t.Logf("course preset: %d requests, %d correct, fleet %s, %s", o.requests, o.correct, o.trajectory, o.took.Round(time.Millisecond))
	if o.failed() {
		t.Fatal(o.report())
	}
	prefix := "1225754101"
	for k, want := range map[string]string{"inputBucket": prefix + "-in-bucket", "outputBucket": prefix + "-out-bucket",
		"requestQueueUrl": "/" + prefix + "-req-queue", "responseQueueUrl": "/" + prefix + "-resp-queue"} {
		if got := fmt.Sprint(s.cap.Outputs[k]); !strings.HasSuffix(got, want) {
			t.Errorf("%s = %s, want the course's %s", k, got, want)
		}
	}
	if u := fmt.Sprint(s.cap.Outputs["url"]); !strings.HasSuffix(u, ":8000/") {
		t.Errorf("url %s: the course's web tier answers on port 8000", u)
	}
	// Rehearsed with 3 workers at most; the preset as committed allows 15.
	full := captureStack(t, "course-as-committed", "Pulumi.course.yaml.example", nil)
	if g, err := full.One("aws:autoscaling/group:Group", "workers"); err != nil || rehearsal.Number(g.Inputs, "maxSize") > 15 {
		t.Errorf("worker group %v: at most 15 app-tier instances, the course allows (%v)", g.Inputs["maxSize"], err)
	}
	if g, err := full.One("aws:autoscaling/group:Group", "web"); err != nil || rehearsal.Number(g.Inputs, "maxSize") != 1 {
		t.Errorf("web group %v: the course has one web-instance (%v)", g.Inputs["maxSize"], err)
	}
	q := sqs.NewFromConfig(s.admin)
	for _, k := range []string{"requestQueueUrl", "responseQueueUrl"} {
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(fmt.Sprint(s.cap.Outputs[k])), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Attributes["MaximumMessageSize"] != "1024" || out.Attributes["ApproximateNumberOfMessages"] != "0" || out.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
			t.Errorf("%s idle: MaximumMessageSize %s, %s visible, %s in flight; the course wants 1024 and empty",
				k, out.Attributes["MaximumMessageSize"], out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"])
		}
	}
	names := map[string]bool{}
	out, err := ec2.NewFromConfig(s.admin).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			for _, tg := range in.Tags {
				if aws.ToString(tg.Key) == "Name" && strings.HasPrefix(aws.ToString(tg.Value), "app-tier-instance-") {
					names[aws.ToString(tg.Value)] = true
				}
			}
		}
	}
	if !names["app-tier-instance-1"] {
		t.Errorf("no worker named itself app-tier-instance-1: %v", names)
	}
	t.Logf("course preset: workers named %v", sortedKeys(names))
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// privatePreset rehearses the prod example's private workers: beyond the
// workload, every call a worker made must be to a service its private
// subnets have an endpoint for.
func privatePreset(t *testing.T, s *system) {
	s.t = t
	s.startPlayer()
	o := s.rehearse(workload{files: courseSet(t).Files[:20], enrol: true, back: time.Minute})
	t.Logf("private workers: %d requests, %d correct, fleet %s, %s", o.requests, o.correct, o.trajectory, o.took.Round(time.Millisecond))
	if o.failed() {
		t.Fatal(o.report())
	}
	endpoints := map[string]bool{}
	for _, e := range s.of("aws:ec2/vpcEndpoint:VpcEndpoint") {
		sn := rehearsal.String(e.Inputs, "serviceName")
		endpoints[sn[strings.LastIndex(sn, ".")+1:]] = true
	}
	s.mu.Lock()
	hosts := append([]*host(nil), s.booted...)
	s.mu.Unlock()
	workers := 0
	for _, h := range hosts {
		if h.role == s.webRole {
			continue
		}
		workers++
		for svc := range h.proxy.servicesUsed() {
			if !endpoints[svc] {
				t.Errorf("worker %s called %s, which its private subnets have no endpoint for (endpoints %v)", h.id, svc, sortedKeys(endpoints))
			}
		}
	}
	if workers == 0 {
		t.Fatal("no worker booted")
	}
}

func TestCovers(t *testing.T) {
	tests := map[string]struct {
		have, want []string
		ok         bool
	}{
		"prefix covers an object below it": {[]string{"arn:aws:s3:::b-output/*"}, []string{"arn:aws:s3:::b-output/leases/*"}, true},
		"same pattern":                     {[]string{"arn:aws:s3:::b-output/leases/*"}, []string{"arn:aws:s3:::b-output/leases/*"}, true},
		"another bucket":                   {[]string{"arn:aws:s3:::b-input/*"}, []string{"arn:aws:s3:::b-output/leases/*"}, false},
		"narrower does not cover wider":    {[]string{"arn:aws:s3:::b-output/leases/*"}, []string{"arn:aws:s3:::b-output/*"}, false},
		"a dot is not a wildcard":          {[]string{"arn:aws:s3:::b.x/*"}, []string{"arn:aws:s3:::bax/k"}, false},
		"every resource must be covered":   {[]string{"arn:aws:s3:::b-output/*"}, []string{"arn:aws:s3:::b-output/k", "arn:aws:s3:::b-input/k"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := covers(tc.have, tc.want); got != tc.ok {
				t.Fatalf("covers(%v, %v) = %v, want %v", tc.have, tc.want, got, tc.ok)
			}
		})
	}
}

// oneLineErr is an error's text on one line, at most 200 bytes.
func oneLineErr(err error) string {
	return truncate(strings.Join(strings.Fields(err.Error()), " "), 200)
}
