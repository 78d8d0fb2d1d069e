package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
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

	// The stacks as committed, but with workers retiring after 10 s idle
	// instead of minutes, and at most 3 of them: each boots with the AWS
	// CLI, and this machine has 2 cores.
	type planned struct {
		name, file string
		overrides  map[string]string
	}
	plans := []planned{{"dev", "Pulumi.dev.yaml", map[string]string{"idleExit": "5s", "maxWorkers": "3"}}}
	switch keep {
	case "":
		plans = append(plans,
			planned{"course", "Pulumi.course.yaml.example", map[string]string{"maxWorkers": "3"}},
			// The prod example with private workers: its warm pool needs
			// EC2, which moto does not run, and its Image Builder AMI is
			// stood in by the stock boot path (the same fetch).
			planned{"prod", "Pulumi.prod.yaml.example", map[string]string{"idleExit": "10s", "warmPoolSize": "0", "image": "stock", "maxWorkers": "3"}},
			planned{"outage", "Pulumi.dev.yaml", map[string]string{"idleExit": "5s", "namePrefix": "facecloud-outage", "maxWorkers": "2"}})
	case "dev":
	case "course":
		plans = []planned{{"course", "Pulumi.course.yaml.example", map[string]string{"maxWorkers": "3"}}}
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
		s.mu.Lock()
		web := s.hosts["web"]
		s.mu.Unlock()
		s.keepRunning(t, fmt.Sprintf("http://127.0.0.1:%d", web.ports["FACECLOUD_PORT"]), admin)
		return
	}

	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		s := systems["dev"]
		s.t = t
		s.startPlayer()
		o := s.rehearse(workload{files: c.Files[:100], enrol: true, back: 2 * time.Minute})
		t.Logf("dev stack: %d requests, %d correct, fleet %s, %s", o.requests, o.correct, o.trajectory, o.took.Round(time.Millisecond))
		if o.failed() {
			t.Fatal(o.report() + "\n" + o.logs)
		}
		t.Run("iam", func(t *testing.T) { iamTable(t, s) })
		t.Run("missing model file", func(t *testing.T) { missingModel(t, s) })
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

// reset stops every worker and the web host and empties the queues, so a
// row starts from a group at its minimum, as after a fresh deployment.
func (s *system) reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s.mu.Lock()
	var hosts []*host
	for _, h := range s.hosts {
		hosts = append(hosts, h)
	}
	s.mu.Unlock()
	for _, h := range hosts {
		if h.id == "web" {
			h.shutdown(5 * time.Second)
		}
	}
	as := autoscaling.NewFromConfig(s.admin)
	st, _, err := s.instanceStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id := range st {
		_, _ = as.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(true)})
	}
	minSize := int32(rehearsal.Number(s.of("aws:autoscaling/group:Group")[0].Inputs, "minSize"))
	if _, err := as.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(s.group), DesiredCapacity: aws.Int32(minSize)}); err != nil {
		t.Fatal(err)
	}
	q := sqs.NewFromConfig(s.admin)
	for _, k := range []string{"requestQueueUrl", "responseQueueUrl"} {
		_, _ = q.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(fmt.Sprint(s.cap.Outputs[k]))})
	}
	if err := s.waitGroupAtMin(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.booted = nil
	s.mu.Unlock()
}

// iamRow is one action removed from one statement of a role's policy.
type iamRow struct {
	role, policy, sid, action string
	doc                       string
}

// iamRows lists every action of the agents' and the boot fetch's
// policies of the web and worker roles, from the captured program.
func iamRows(s *system) []iamRow {
	var rows []iamRow
	for _, p := range s.of("aws:iam/rolePolicy:RolePolicy") {
		name := rehearsal.String(p.Inputs, "name")
		if !slices.Contains([]string{"web", "scaler", "worker", "artifacts"}, name) {
			continue
		}
		role := rehearsal.String(p.Inputs, "role")
		if !strings.HasSuffix(role, "-web") && !strings.HasSuffix(role, "-worker") {
			continue // the image builder's role boots no host here
		}
		var d struct {
			Statement []struct {
				Sid    string
				Action []string
			}
		}
		doc := s.policies[role][name]
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			s.t.Fatal(err)
		}
		for _, st := range d.Statement {
			for _, a := range st.Action {
				rows = append(rows, iamRow{role: role, policy: name, sid: st.Sid, action: a, doc: doc})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].role+rows[i].policy+rows[i].sid+rows[i].action < rows[j].role+rows[j].policy+rows[j].sid+rows[j].action
	})
	return rows
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
	}
	return []string{action}
}

// unobservable are grants whose absence the rehearsal cannot show, keyed
// "<role> <policy> <action>", with why. Each is checked to pass still: when
// one starts failing, the entry must go.
var unobservable = map[string]string{
	// The web host has one instance profile for two agents: its role's
	// web and scaler policies both grant GetQueueAttributes on the request
	// queue, so removing it from one leaves the other's.
	"web scaler sqs:GetQueueAttributes requests": "the same role's web policy grants it too (one instance profile for web and scaler)",
	"web web sqs:GetQueueAttributes requests":    "the same role's scaler policy grants it too (one instance profile for web and scaler)",
	// S3 answers 403 instead of 404 for a missing key without
	// s3:ListBucket; moto answers 404 either way.
	"web web s3:ListBucket input":                        "moto answers 404 for a missing key without it (S3 answers 403)",
	"worker worker s3:ListBucket input":                  "moto answers 404 for a missing key without it (S3 answers 403)",
	"worker worker sqs:ChangeMessageVisibility requests": "used by the heartbeat of a job longer than workerHeartbeat (10 s) and to delay a failed job's retry; the course's jobs take milliseconds",
}

// iamTable removes each action in turn and expects the rehearsal to fail
// naming the refused call. The rows run against one deployed system: each
// boots a fresh web host and fresh workers (moto reads a role's policies at
// every request, so the sessions need not change).
func iamTable(t *testing.T, s *system) {
	c := courseSet(t)
	rows := iamRows(s)
	if len(rows) < 20 {
		t.Fatalf("%d IAM rows; the agents' policies were not captured", len(rows))
	}
	for _, r := range rows {
		key := r.role[strings.LastIndex(r.role, "-")+1:] + " " + r.policy + " " + r.action + " " + resourceOf(r)
		t.Run(strings.ReplaceAll(r.role[strings.LastIndex(r.role, "-")+1:]+" "+r.policy+" "+r.sid+" "+r.action, ":", " "), func(t *testing.T) {
			s.t = t
			s.reset(t)
			if err := s.putPolicy(t.Context(), r.role, r.policy, without(r.doc, r.sid, r.action)); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.putPolicy(context.Background(), r.role, r.policy, r.doc); err != nil {
					t.Fatal(err)
				}
			}()
			o := s.rehearse(workload{files: c.Files[:2], back: 45 * time.Second})
			reason, known := unobservable[key]
			switch {
			case !o.failed() && known:
				t.Logf("passes without %s, as expected: %s", r.action, reason)
				return
			case !o.failed():
				t.Fatalf("the rehearsal passed with %s removed from %s/%s (%s): it does not see this grant", r.action, r.role, r.policy, r.sid)
			case known:
				t.Errorf("%s is listed as unobservable (%s) but the rehearsal now fails without it; remove it from the list", key, reason)
			}
			named := false
			for _, call := range callsOf(r.action) {
				named = named || strings.Contains(o.report(), "refused call: "+r.role) || strings.Contains(o.report(), " "+call+" on ")
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

// resourceOf names what a row's statement is on, by the stack's outputs:
// requests, replies, input, output, artifacts (a bucket, or its objects),
// or * (moto's view of the group too).
func resourceOf(r iamRow) string {
	var d struct {
		Statement []struct {
			Sid      string
			Resource []string
		}
	}
	_ = json.Unmarshal([]byte(r.doc), &d)
	for _, st := range d.Statement {
		if st.Sid != r.sid || len(st.Resource) == 0 {
			continue
		}
		res := st.Resource[0]
		for _, k := range []struct{ suffix, name string }{{"-requests", "requests"}, {"-req-queue", "requests"}, {"-replies", "replies"}, {"-resp-queue", "replies"}} {
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
	return ""
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
	lt := s.of("aws:ec2/launchTemplate:LaunchTemplate")[0]
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

// outage boots a web host with the artifacts bucket unreachable for 60 s:
// the boot fetch must wait it out and the host come up by itself.
func outage(t *testing.T, s *system) {
	s.t = t
	bucket := s.cap.Outputs["artifactsBucket"].(string)
	s.blockOnBoot = bucket
	web, base := s.bootWebAsync()
	t0 := time.Now()
	time.Sleep(60 * time.Second)
	web.proxy.block("")
	t.Logf("artifacts bucket reachable again after %s", time.Since(t0).Round(time.Second))
	if !strings.Contains(web.log.String(), "download failed") {
		t.Fatalf("the boot fetch did not meet the outage:\n%s", truncate(web.log.String(), 2000))
	}
	if code, body := waitReady(t.Context(), base(), 90*time.Second); code != 200 {
		t.Fatalf("web host did not recover after the outage: readyz %d %s\n%s", code, body, truncate(web.log.String(), 3000))
	}
	t.Logf("web host ready %s after its boot began, the artifacts bucket unreachable for the first 60 s: %s", time.Since(t0).Round(time.Second), firstLineWith(web.log.String(), "download failed"))
	s.startPlayer()
	s.blockOnBoot = ""
	o := s.rehearse(workload{files: courseSet(t).Files[:10], enrol: true, back: time.Minute})
	if o.failed() {
		t.Fatal(o.report())
	}
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
	if n := rehearsal.Number(full.Of("aws:autoscaling/group:Group")[0].Inputs, "maxSize"); n > 15 {
		t.Errorf("at most %v app-tier instances, the course allows 15", n)
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
