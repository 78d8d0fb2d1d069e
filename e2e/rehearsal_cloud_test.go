package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"gopkg.in/yaml.v3"

	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/stack/rehearsal"
)

// Environment of the deployment rehearsal (scripts/rehearse.sh sets it).
const (
	// envRehearsalEndpoint is the moto server the rehearsal owns: it turns
	// IAM enforcement on there, so no other test may share it.
	envRehearsalEndpoint = "FACECLOUD_REHEARSAL_ENDPOINT"
	// envRehearsalAWSCLI is the AWS CLI the hosts' boot scripts run
	// (default: aws on PATH).
	envRehearsalAWSCLI = "FACECLOUD_REHEARSAL_AWS_CLI"
	// envRehearsalKeep names a rehearsed system (dev or course) to leave
	// running after its workload, until the test is interrupted.
	envRehearsalKeep = "FACECLOUD_REHEARSAL_KEEP"
)

// rehearsalEndpoint returns the rehearsal's moto server, or skips (fails
// under FACECLOUD_REQUIRE_AWS=1) when none is given.
func rehearsalEndpoint(t *testing.T) string {
	t.Helper()
	ep := os.Getenv(envRehearsalEndpoint)
	if ep == "" {
		if os.Getenv(awstest.EnvRequire) == "1" {
			t.Fatalf("%s is unset but %s=1: run scripts/rehearse.sh", envRehearsalEndpoint, awstest.EnvRequire)
		}
		t.Skipf("deployment rehearsal: run scripts/rehearse.sh (it starts moto for it and sets %s)", envRehearsalEndpoint)
	}
	return ep
}

var (
	stackOnce sync.Once
	stackBin  string
	stackErr  error
)

// stackProgram builds the stack's Pulumi program once.
func stackProgram(t *testing.T) string {
	t.Helper()
	stackOnce.Do(func() {
		stackBin = filepath.Join(scratch, "facecloud-stack")
		cmd := exec.Command("go", "build", "-o", stackBin, "./stack")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			stackErr = fmt.Errorf("go build ./stack: %v\n%s", err, out)
		}
	})
	if stackErr != nil {
		t.Fatal(stackErr)
	}
	return stackBin
}

// captureStack runs the stack's program as `pulumi up` would for stack
// name with the configuration of the stack file (Pulumi.dev.yaml, ...) and
// the given overrides, against the stand-in cloud, and returns every
// resource it declared. The agent it ships is really cross-compiled for
// this machine's architecture.
func captureStack(t *testing.T, name, file string, overrides map[string]string) *rehearsal.Capture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), file))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	cfg := map[string]string{}
	for k, v := range doc.Config {
		if s, ok := v.(string); ok {
			cfg[k] = s
			continue
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		cfg[k] = string(j)
	}
	// The hosts run on this machine: the agent is built for its architecture.
	if cfg["facecloud:arch"] != runtime.GOARCH {
		cfg["facecloud:arch"] = runtime.GOARCH
		delete(cfg, "facecloud:workerInstanceType")
		delete(cfg, "facecloud:webInstanceType")
	}
	for k, v := range overrides {
		cfg["facecloud:"+k] = v
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name+".json")
	cmd := exec.Command(stackProgram(t))
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), rehearsal.EnvCapture+"="+out, "PULUMI_CONFIG="+string(j), "PULUMI_STACK="+name, "PULUMI_PROJECT=facecloud")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stack program (%s, %s): %v\n%s", name, file, err, b)
	}
	c, err := rehearsal.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// identity is an access key of moto's IAM.
type identity struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
}

func (id identity) config(endpoint string) aws.Config {
	cfg := awstest.Config(endpoint)
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken)
	return cfg
}

var (
	adminOnce sync.Once
	adminID   identity
	adminErr  error
)

// adminIdentity creates (once) an IAM user with AdministratorAccess in
// moto: with enforcement on, moto refuses the emulator's dummy keys, so the
// rehearsal sets up and observes with this account-owner stand-in.
func adminIdentity(t *testing.T, endpoint string) identity {
	t.Helper()
	adminOnce.Do(func() {
		ctx := context.Background()
		c := iam.NewFromConfig(awstest.Config(endpoint))
		if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("rehearsal-admin")}); err != nil {
			adminErr = fmt.Errorf("create admin user (is %s a fresh moto without IAM enforcement?): %w", endpoint, err)
			return
		}
		if _, err := c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("rehearsal-admin"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}); err != nil {
			adminErr = fmt.Errorf("admin policy (moto needs MOTO_IAM_LOAD_MANAGED_POLICIES=true): %w", err)
			return
		}
		k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("rehearsal-admin")})
		if err != nil {
			adminErr = err
			return
		}
		adminID = identity{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	})
	if adminErr != nil {
		t.Fatal(adminErr)
	}
	return adminID
}

// enforceIAM turns moto's IAM enforcement for S3, SQS, Auto Scaling (and
// IAM, STS) on or off.
func enforceIAM(t *testing.T, endpoint string, on bool) {
	t.Helper()
	count := "inf"
	if on {
		count = "0"
	}
	resp, err := http.Post(endpoint+"/moto-api/reset-auth", "text/plain", strings.NewReader(count))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto reset-auth %s: %s", count, resp.Status)
	}
}

// system is one rehearsed deployment: the stack's resources made in moto
// from a capture, the identities of its roles, and the hosts booted from
// its user data.
type system struct {
	// t is the test now running against the system; top the one that
	// deployed it, which outlives the players and hosts.
	t, top   *testing.T
	name     string
	cap      *rehearsal.Capture
	endpoint string
	admin    aws.Config
	// group is the worker group, webGroup the web hosts' group;
	// webUserData the web launch template's cloud-init.
	group, webGroup, webUserData, webRole string
	// roles holds the session of each role: what IMDS serves its instances.
	roles map[string]identity
	// profiles maps an instance profile's name and ARN to its role.
	profiles map[string]string
	// policies are the roles' inline policies as captured; moto gets them
	// through forMoto.
	policies map[string]map[string]string
	// probes are what forMoto checks a widened statement against.
	probes motoProbes
	// notes are what the rehearsal could not reproduce of this system.
	notes []string
	// blockOnBoot is a bucket that hosts booted from now on cannot reach.
	blockOnBoot string

	mu      sync.Mutex
	hosts   map[string]*host // by instance id
	booted  []*host
	refused []refusal
	// player boots the worker group's instances, webPlayer the web
	// group's; front stands in for the load balancer.
	player, webPlayer *player
	front             *albStandIn
}

// resources of type typ in the capture.
func (s *system) of(typ string) []rehearsal.Resource { return s.cap.Of(typ) }

// deploySystem makes in moto what the captured program declared for the
// data plane: queues, buckets with their settings, the uploaded artifacts,
// roles with their policies, instance profiles, the network the group
// launches into, the launch template and the group.
func deploySystem(t *testing.T, endpoint string, admin identity, c *rehearsal.Capture) *system {
	t.Helper()
	s := &system{t: t, top: t, name: c.Stack, cap: c, endpoint: endpoint, admin: admin.config(endpoint),
		roles: map[string]identity{}, profiles: map[string]string{}, policies: map[string]map[string]string{}, hosts: map[string]*host{}}
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: rehearse %s: %v", s.name, what, err)
		}
	}
	must("queues", s.makeQueues(ctx))
	must("buckets", s.makeBuckets(ctx))
	must("objects", s.uploadArtifacts(ctx))
	must("parameters", s.makeParameters(ctx))
	must("log groups", s.makeLogGroups(ctx))
	must("network, launch templates and groups", s.makeGroups(ctx))
	must("roles", s.makeRoles(ctx))
	web, err := c.One("aws:ec2/launchTemplate:LaunchTemplate", "web")
	must("web launch template", err)
	s.webUserData, err = userDataOf(rehearsal.String(web.Inputs, "userData"))
	must("web user data", err)
	s.webRole = s.profiles[rehearsal.String(web.Inputs, "iamInstanceProfile", "arn")]
	if s.webRole == "" {
		t.Fatalf("%s: web instance profile %q has no role", s.name, rehearsal.String(web.Inputs, "iamInstanceProfile", "arn"))
	}
	return s
}

func (s *system) makeQueues(ctx context.Context) error {
	c := sqs.NewFromConfig(s.admin)
	qs := s.of("aws:sqs/queue:Queue")
	// Dead-letter queues first: the others' redrive policies name them.
	sort.SliceStable(qs, func(i, j int) bool {
		return rehearsal.String(qs[i].Inputs, "redrivePolicy") == "" && rehearsal.String(qs[j].Inputs, "redrivePolicy") != ""
	})
	attr := map[string]string{
		"visibilityTimeoutSeconds": "VisibilityTimeout", "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
		"messageRetentionSeconds": "MessageRetentionPeriod", "maxMessageSize": "MaximumMessageSize",
		"sqsManagedSseEnabled": "SqsManagedSseEnabled", "redrivePolicy": "RedrivePolicy", "delaySeconds": "DelaySeconds",
	}
	for _, q := range qs {
		a := map[string]string{}
		for k, v := range q.Inputs {
			switch {
			case attr[k] != "":
				a[attr[k]] = plainString(v)
			case k == "name" || k == "tags" || k == "tagsAll":
			default:
				return fmt.Errorf("queue %s: input %s is not rehearsed", q.Name, k)
			}
		}
		tags := map[string]string{}
		for k, v := range asMap(q.Inputs["tags"]) {
			tags[k] = fmt.Sprint(v)
		}
		if _, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(rehearsal.String(q.Inputs, "name")), Attributes: a, Tags: tags}); err != nil {
			return fmt.Errorf("queue %s: %w", q.Name, err)
		}
	}
	for _, p := range s.of("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy") {
		if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
			QueueUrl:   aws.String(rehearsal.String(p.Inputs, "queueUrl")),
			Attributes: map[string]string{"RedriveAllowPolicy": rehearsal.String(p.Inputs, "redriveAllowPolicy")},
		}); err != nil {
			return fmt.Errorf("redrive allow policy %s: %w", p.Name, err)
		}
	}
	return nil
}

// plainString writes a captured value as AWS takes it: numbers without an
// exponent.
func plainString(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asList(v any) []any         { l, _ := v.([]any); return l }

func (s *system) s3() *s3.Client {
	return s3.NewFromConfig(s.admin, func(o *s3.Options) { o.UsePathStyle = true })
}

func (s *system) makeBuckets(ctx context.Context) error {
	c := s.s3()
	for _, b := range s.of("aws:s3/bucketV2:BucketV2") {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.ID)}); err != nil {
			return fmt.Errorf("bucket %s: %w", b.ID, err)
		}
	}
	for _, r := range s.of("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2") {
		if _, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
			Bucket: aws.String(rehearsal.String(r.Inputs, "bucket")),
			ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{
					SSEAlgorithm: s3types.ServerSideEncryption(rehearsal.String(r.Inputs, "rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm")),
				},
			}}},
		}); err != nil {
			return fmt.Errorf("encryption %s: %w", r.Name, err)
		}
	}
	for _, r := range s.of("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock") {
		flag := func(k string) *bool { v, _ := r.Inputs[k].(bool); return aws.Bool(v) }
		if _, err := c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
			Bucket: aws.String(rehearsal.String(r.Inputs, "bucket")),
			PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
				BlockPublicAcls: flag("blockPublicAcls"), BlockPublicPolicy: flag("blockPublicPolicy"),
				IgnorePublicAcls: flag("ignorePublicAcls"), RestrictPublicBuckets: flag("restrictPublicBuckets"),
			},
		}); err != nil {
			return fmt.Errorf("public access block %s: %w", r.Name, err)
		}
	}
	for _, r := range s.of("aws:s3/bucketOwnershipControls:BucketOwnershipControls") {
		if _, err := c.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{
			Bucket: aws.String(rehearsal.String(r.Inputs, "bucket")),
			OwnershipControls: &s3types.OwnershipControls{Rules: []s3types.OwnershipControlsRule{{
				ObjectOwnership: s3types.ObjectOwnership(rehearsal.String(r.Inputs, "rule", "objectOwnership")),
			}}},
		}); err != nil {
			return fmt.Errorf("ownership controls %s: %w", r.Name, err)
		}
	}
	for _, r := range s.of("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2") {
		var rules []s3types.LifecycleRule
		for _, x := range asList(r.Inputs["rules"]) {
			rule := s3types.LifecycleRule{
				ID:     aws.String(rehearsal.String(x, "id")),
				Status: s3types.ExpirationStatus(rehearsal.String(x, "status")),
				Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String(rehearsal.String(x, "filter", "prefix"))},
			}
			if d := rehearsal.Number(x, "expiration", "days"); d > 0 {
				rule.Expiration = &s3types.LifecycleExpiration{Days: aws.Int32(int32(d))}
			}
			if d := rehearsal.Number(x, "abortIncompleteMultipartUpload", "daysAfterInitiation"); d > 0 {
				rule.AbortIncompleteMultipartUpload = &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(int32(d))}
			}
			rules = append(rules, rule)
		}
		if _, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
			Bucket:                 aws.String(rehearsal.String(r.Inputs, "bucket")),
			LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: rules},
		}); err != nil {
			return fmt.Errorf("lifecycle %s: %w", r.Name, err)
		}
	}
	if n := len(s.of("aws:s3/bucketPolicy:BucketPolicy")); n > 0 {
		// moto evaluates a bucket policy's conditions as always met (it
		// knows StringEquals only), so the TLS-only Deny would refuse
		// every request; the stack's tests check the policy instead.
		s.notes = append(s.notes, fmt.Sprintf("%d TLS-only bucket policies not installed (moto ignores aws:SecureTransport)", n))
	}
	return nil
}

// uploadArtifacts puts every object the program uploads into its bucket,
// with the same key and bytes, checking the bytes against the sha256 the
// object is tagged and keyed with.
func (s *system) uploadArtifacts(ctx context.Context) error {
	c := s.s3()
	for _, o := range s.of("aws:s3/bucketObjectv2:BucketObjectv2") {
		if _, inline := o.Inputs["content"]; inline {
			// An object the program writes itself (the admin key's record).
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket:               aws.String(rehearsal.String(o.Inputs, "bucket")),
				Key:                  aws.String(rehearsal.String(o.Inputs, "key")),
				Body:                 strings.NewReader(rehearsal.String(o.Inputs, "content")),
				ServerSideEncryption: s3types.ServerSideEncryption(rehearsal.String(o.Inputs, "serverSideEncryption")),
				ContentType:          aws.String(rehearsal.String(o.Inputs, "contentType")),
			}); err != nil {
				return fmt.Errorf("object %s: %w", o.Name, err)
			}
			continue
		}
		body, err := os.ReadFile(rehearsal.String(o.Inputs, "source"))
		if err != nil {
			return fmt.Errorf("artifact %s: %w", o.Name, err)
		}
		sum := sha256.Sum256(body)
		hexSum := hex.EncodeToString(sum[:])
		key := rehearsal.String(o.Inputs, "key")
		if tag := rehearsal.String(o.Inputs, "tags", "sha256"); tag != hexSum || !strings.Contains(key, hexSum) {
			return fmt.Errorf("artifact %s: content sha256 %s, tagged %s, key %s", o.Name, hexSum, tag, key)
		}
		var tags []string
		for k, v := range asMap(o.Inputs["tags"]) {
			tags = append(tags, url.QueryEscape(k)+"="+url.QueryEscape(fmt.Sprint(v)))
		}
		sort.Strings(tags)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket:               aws.String(rehearsal.String(o.Inputs, "bucket")),
			Key:                  aws.String(key),
			Body:                 bytes.NewReader(body),
			ServerSideEncryption: s3types.ServerSideEncryption(rehearsal.String(o.Inputs, "serverSideEncryption")),
			ContentType:          aws.String(rehearsal.String(o.Inputs, "contentType")),
			Tagging:              aws.String(strings.Join(tags, "&")),
		}); err != nil {
			return fmt.Errorf("artifact %s: %w", o.Name, err)
		}
	}
	return nil
}

// makeGroups makes the VPC and subnets the groups launch into, the
// instance profiles' names (policies come later, see makeRoles), the
// launch templates and the groups.
func (s *system) makeGroups(ctx context.Context) error {
	e := ec2.NewFromConfig(s.admin)
	ids := map[string]string{} // captured id → moto id
	for _, v := range s.of("aws:ec2/vpc:Vpc") {
		out, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(rehearsal.String(v.Inputs, "cidrBlock"))})
		if err != nil {
			return fmt.Errorf("vpc: %w", err)
		}
		ids[v.ID] = aws.ToString(out.Vpc.VpcId)
	}
	for _, sn := range s.of("aws:ec2/subnet:Subnet") {
		out, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId:            aws.String(ids[rehearsal.String(sn.Inputs, "vpcId")]),
			CidrBlock:        aws.String(rehearsal.String(sn.Inputs, "cidrBlock")),
			AvailabilityZone: aws.String(rehearsal.String(sn.Inputs, "availabilityZone")),
		})
		if err != nil {
			return fmt.Errorf("subnet %s: %w", sn.Name, err)
		}
		ids[sn.ID] = aws.ToString(out.Subnet.SubnetId)
	}
	for _, sg := range s.of("aws:ec2/securityGroup:SecurityGroup") {
		name, vpc := s.name+"-"+sg.Name, ids[rehearsal.String(sg.Inputs, "vpcId")]
		out, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(name), Description: aws.String(rehearsal.String(sg.Inputs, "description")), VpcId: aws.String(vpc),
		})
		if err != nil && strings.Contains(err.Error(), "Duplicate") {
			// The SDK retried a call moto had carried out.
			d, derr := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
				{Name: aws.String("group-name"), Values: []string{name}}, {Name: aws.String("vpc-id"), Values: []string{vpc}}}})
			if derr == nil && len(d.SecurityGroups) == 1 {
				ids[sg.ID] = aws.ToString(d.SecurityGroups[0].GroupId)
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("security group %s: %w", sg.Name, err)
		}
		ids[sg.ID] = aws.ToString(out.GroupId)
	}
	// The AMI: moto boots nothing, so any image it knows stands in for the
	// stock or baked one; what the host runs is the user data.
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		return fmt.Errorf("moto knows no image to stand in for the AMI: %v", err)
	}
	for _, p := range s.of("aws:iam/instanceProfile:InstanceProfile") {
		s.profiles[rehearsal.String(p.Inputs, "name")] = rehearsal.String(p.Inputs, "role")
		s.profiles["arn:aws:iam::"+s.cap.Account+":instance-profile/"+rehearsal.String(p.Inputs, "name")] = rehearsal.String(p.Inputs, "role")
	}
	lts := s.of("aws:ec2/launchTemplate:LaunchTemplate")
	if len(lts) != 2 {
		return fmt.Errorf("%d launch templates, want the workers' and the web hosts'", len(lts))
	}
	for _, lt := range lts {
		var sgs []string
		for _, id := range asList(lt.Inputs["vpcSecurityGroupIds"]) {
			sgs = append(sgs, ids[fmt.Sprint(id)])
		}
		var specs []ec2types.LaunchTemplateTagSpecificationRequest
		for _, ts := range asList(lt.Inputs["tagSpecifications"]) {
			var tags []ec2types.Tag
			for k, v := range asMap(rehearsal.Get(ts, "tags")) {
				tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(fmt.Sprint(v))})
			}
			specs = append(specs, ec2types.LaunchTemplateTagSpecificationRequest{ResourceType: ec2types.ResourceType(rehearsal.String(ts, "resourceType")), Tags: tags})
		}
		ltOut, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String(rehearsal.String(lt.Inputs, "name")),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
				ImageId:            imgs.Images[0].ImageId,
				InstanceType:       ec2types.InstanceType(rehearsal.String(lt.Inputs, "instanceType")),
				UserData:           aws.String(rehearsal.String(lt.Inputs, "userData")),
				IamInstanceProfile: &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: aws.String(rehearsal.String(lt.Inputs, "iamInstanceProfile", "arn"))},
				SecurityGroupIds:   sgs,
				MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
					HttpTokens:              ec2types.LaunchTemplateHttpTokensState(rehearsal.String(lt.Inputs, "metadataOptions", "httpTokens")),
					HttpPutResponseHopLimit: aws.Int32(int32(rehearsal.Number(lt.Inputs, "metadataOptions", "httpPutResponseHopLimit"))),
				},
				TagSpecifications: specs,
			},
		})
		if err != nil {
			return fmt.Errorf("launch template %s: %w", lt.Name, err)
		}
		ids[lt.ID] = aws.ToString(ltOut.LaunchTemplate.LaunchTemplateId)
	}
	gs := s.of("aws:autoscaling/group:Group")
	if len(gs) != 2 {
		return fmt.Errorf("%d groups, want the workers' and the web hosts'", len(gs))
	}
	for _, g := range gs {
		var subnets []string
		for _, id := range asList(g.Inputs["vpcZoneIdentifiers"]) {
			subnets = append(subnets, ids[fmt.Sprint(id)])
		}
		var tags []astypes.Tag
		for _, tg := range asList(g.Inputs["tags"]) {
			p, _ := rehearsal.Get(tg, "propagateAtLaunch").(bool)
			tags = append(tags, astypes.Tag{Key: aws.String(rehearsal.String(tg, "key")), Value: aws.String(rehearsal.String(tg, "value")), PropagateAtLaunch: aws.Bool(p)})
		}
		protect, _ := g.Inputs["protectFromScaleIn"].(bool)
		name := rehearsal.String(g.Inputs, "name")
		lt := ids[rehearsal.String(g.Inputs, "launchTemplate", "id")]
		if lt == "" {
			return fmt.Errorf("group %s launches %q, which the program did not declare", g.Name, rehearsal.String(g.Inputs, "launchTemplate", "id"))
		}
		switch g.Name {
		case "workers":
			s.group = name
		case "web":
			s.webGroup = name
		}
		// The load balancer's target group is stood in for by the
		// rehearsal's balancer (albStandIn), which health-checks the web
		// hosts itself and reports a failing one to the group as the
		// load balancer does.
		if _, err := autoscaling.NewFromConfig(s.admin).CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName:             aws.String(name),
			LaunchTemplate:                   &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("$Latest")},
			MinSize:                          aws.Int32(int32(rehearsal.Number(g.Inputs, "minSize"))),
			MaxSize:                          aws.Int32(int32(rehearsal.Number(g.Inputs, "maxSize"))),
			DesiredCapacity:                  aws.Int32(int32(rehearsal.Number(g.Inputs, "desiredCapacity"))),
			VPCZoneIdentifier:                aws.String(strings.Join(subnets, ",")),
			NewInstancesProtectedFromScaleIn: aws.Bool(protect),
			HealthCheckType:                  aws.String("EC2"),
			HealthCheckGracePeriod:           aws.Int32(int32(rehearsal.Number(g.Inputs, "healthCheckGracePeriod"))),
			Tags:                             tags,
		}); err != nil {
			return fmt.Errorf("group %s: %w", g.Name, err)
		}
		if rehearsal.Get(g.Inputs, "warmPool") != nil {
			s.notes = append(s.notes, "warm pool not rehearsed (moto launches no warm instances)")
		}
	}
	if s.group == "" || s.webGroup == "" {
		return fmt.Errorf("groups %q and %q: want the program's workers and web groups", s.group, s.webGroup)
	}
	return nil
}

// groupARN is the worker group's ARN as moto reports it.
func (s *system) groupARN(ctx context.Context) (string, error) {
	out, err := autoscaling.NewFromConfig(s.admin).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{s.group}})
	if err != nil {
		return "", err
	}
	if len(out.AutoScalingGroups) != 1 {
		return "", fmt.Errorf("group %s not found", s.group)
	}
	return aws.ToString(out.AutoScalingGroups[0].AutoScalingGroupARN), nil
}

// iamPattern turns an IAM resource pattern (* and ? wildcards) into a regexp.
func iamPattern(p string) *regexp.Regexp {
	q := regexp.QuoteMeta(p)
	q = strings.ReplaceAll(q, `\*`, ".*")
	q = strings.ReplaceAll(q, `\?`, ".")
	return regexp.MustCompile("^" + q + "$")
}

// motoProbes are real resources of a system, as moto names them, that a
// statement forMoto widens must match first.
type motoProbes struct {
	// group is the worker group's ARN; instance an instance's.
	group, instance string
	// hostQueue is the ARN of a queue under the web hosts' reply prefix.
	hostQueue string
	// logStreams are a stream ARN of each log group the program declares.
	logStreams []string
}

// forMoto returns a policy document as moto can evaluate it. moto checks
// Auto Scaling, EC2 and CloudWatch Logs actions, and SQS's CreateQueue of
// a queue not there yet, against the resource "*" whatever the call names,
// so a statement limited to the group, instances, log groups or a queue
// name prefix would never match: each such resource is first checked to
// match a real one (the group's ARN, an instance's, a stream of a declared
// log group, a queue under the reply prefix), then widened to "*". moto
// also names SQS's batch calls by themselves (sqs:DeleteMessageBatch),
// where AWS checks the single call's action (sqs:DeleteMessage): each
// single action brings its batch action along. Tag conditions are not
// evaluated by moto either.
func forMoto(doc string, p motoProbes) (string, error) {
	var d map[string]any
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return "", err
	}
	batch := map[string]string{"sqs:DeleteMessage": "sqs:DeleteMessageBatch", "sqs:SendMessage": "sqs:SendMessageBatch", "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch"}
	var extra []any
	for _, st := range asList(d["Statement"]) {
		m := asMap(st)
		var targets []string
		createQueue := false
		acts := asList(m["Action"])
		for _, a := range acts {
			switch a := fmt.Sprint(a); {
			case strings.HasPrefix(a, "autoscaling:"):
				targets = []string{p.group}
			case strings.HasPrefix(a, "ec2:"):
				targets = []string{p.instance}
			case strings.HasPrefix(a, "logs:"):
				targets = p.logStreams
			case a == "sqs:CreateQueue":
				createQueue = true
			}
			if b, ok := batch[fmt.Sprint(a)]; ok {
				m["Action"] = append(asList(m["Action"]), b)
			}
		}
		if createQueue {
			for _, r := range asList(m["Resource"]) {
				if r != "*" && !iamPattern(fmt.Sprint(r)).MatchString(p.hostQueue) {
					return "", fmt.Errorf("statement %v lets create %v, which does not match a reply queue %s", m["Sid"], r, p.hostQueue)
				}
			}
			extra = append(extra, map[string]any{"Sid": fmt.Sprint(m["Sid"]) + "CreateQueue", "Effect": m["Effect"], "Action": []any{"sqs:CreateQueue"}, "Resource": []any{"*"}})
		}
		if len(targets) == 0 {
			continue
		}
		for _, r := range asList(m["Resource"]) {
			if r == "*" {
				continue
			}
			if !slices.ContainsFunc(targets, iamPattern(fmt.Sprint(r)).MatchString) {
				return "", fmt.Errorf("statement %v names %v, which matches none of %v", m["Sid"], r, targets)
			}
		}
		m["Resource"] = []any{"*"}
	}
	d["Statement"] = append(asList(d["Statement"]), extra...)
	b, err := json.Marshal(d)
	return string(b), err
}

// makeRoles creates each role with its trust policy, inline policies and
// managed attachments, and the instance profiles.
func (s *system) makeRoles(ctx context.Context) error {
	c := iam.NewFromConfig(s.admin)
	garn, err := s.groupARN(ctx)
	if err != nil {
		return err
	}
	for _, r := range s.of("aws:iam/role:Role") {
		if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 aws.String(rehearsal.String(r.Inputs, "name")),
			AssumeRolePolicyDocument: aws.String(rehearsal.String(r.Inputs, "assumeRolePolicy")),
			Description:              aws.String(rehearsal.String(r.Inputs, "description")),
			MaxSessionDuration:       aws.Int32(12 * 3600),
		}); err != nil {
			return fmt.Errorf("role %s: %w", r.Name, err)
		}
	}
	s.probes = motoProbes{
		group:     garn,
		instance:  "arn:aws:ec2:" + s.cap.Region + ":" + s.cap.Account + ":instance/i-0123456789abcdef0",
		hostQueue: "arn:aws:sqs:" + s.cap.Region + ":" + s.cap.Account + ":" + path.Base(s.replyPrefix()) + "ip-10-0-0-1-0123abcd",
	}
	for _, g := range s.of("aws:cloudwatch/logGroup:LogGroup") {
		s.probes.logStreams = append(s.probes.logStreams, "arn:aws:logs:"+s.cap.Region+":"+s.cap.Account+":log-group:"+rehearsal.String(g.Inputs, "name")+":log-stream:i-0123456789abcdef0")
	}
	for _, p := range s.of("aws:iam/rolePolicy:RolePolicy") {
		role, name := rehearsal.String(p.Inputs, "role"), rehearsal.String(p.Inputs, "name")
		if err := s.putPolicy(ctx, role, name, rehearsal.String(p.Inputs, "policy")); err != nil {
			return err
		}
	}
	for _, a := range s.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
		if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{
			RoleName: aws.String(rehearsal.String(a.Inputs, "role")), PolicyArn: aws.String(rehearsal.String(a.Inputs, "policyArn")),
		}); err != nil {
			return fmt.Errorf("managed policy %s (moto has it only with MOTO_IAM_LOAD_MANAGED_POLICIES=true): %w", rehearsal.String(a.Inputs, "policyArn"), err)
		}
	}
	for _, p := range s.of("aws:iam/instanceProfile:InstanceProfile") {
		name := rehearsal.String(p.Inputs, "name")
		if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name)}); err != nil {
			return fmt.Errorf("instance profile %s: %w", name, err)
		}
		if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(rehearsal.String(p.Inputs, "role"))}); err != nil {
			return fmt.Errorf("instance profile %s: %w", name, err)
		}
	}
	return nil
}

// putPolicy sets a role's inline policy doc (as the program writes it) in
// moto, through forMoto; moto reads a role's policies at every request, so
// a change holds for sessions already out.
func (s *system) putPolicy(ctx context.Context, role, name, doc string) error {
	moto, err := forMoto(doc, s.probes)
	if err != nil {
		return fmt.Errorf("policy %s/%s: %w", role, name, err)
	}
	if _, err := iam.NewFromConfig(s.admin).PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(moto),
	}); err != nil {
		return fmt.Errorf("policy %s/%s: %w", role, name, err)
	}
	s.mu.Lock()
	if s.policies[role] == nil {
		s.policies[role] = map[string]string{}
	}
	s.policies[role][name] = doc
	s.mu.Unlock()
	return nil
}

// assumeRoles opens a session of each role, as EC2 does for an instance
// profile; IMDS then serves it to the role's hosts. It must run before IAM
// enforcement is on: moto cannot evaluate a trust policy whose principal is
// the EC2 service.
func (s *system) assumeRoles(t *testing.T) {
	c := sts.NewFromConfig(s.admin)
	for _, r := range s.of("aws:iam/role:Role") {
		name := rehearsal.String(r.Inputs, "name")
		out, err := c.AssumeRole(t.Context(), &sts.AssumeRoleInput{
			RoleArn: aws.String("arn:aws:iam::" + s.cap.Account + ":role/" + name), RoleSessionName: aws.String(name), DurationSeconds: aws.Int32(12 * 3600),
		})
		if err != nil {
			t.Fatalf("%s: assume role %s: %v", s.name, name, err)
		}
		s.roles[name] = identity{
			AccessKeyID: aws.ToString(out.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
			SessionToken: aws.ToString(out.Credentials.SessionToken), Expiration: aws.ToTime(out.Credentials.Expiration),
		}
	}
}

// refusal is one AWS call the emulator refused, as a host's proxy saw it.
type refusal struct {
	host, call, resource, message string
}

func (r refusal) String() string {
	return fmt.Sprintf("%s: %s on %s refused: %s", r.host, r.call, r.resource, r.message)
}

// awsProxy stands in for the network between a host and AWS: every call of
// the host goes through it to moto. It names each refused call (IAM), and
// can make a bucket unreachable (every request for it dropped unanswered).
type awsProxy struct {
	srv      *http.Server
	addr     string
	blocked  atomic.Pointer[string] // bucket that is unreachable, if any
	mu       sync.Mutex
	services map[string]bool // services called
	// secret finds the secret key of an access key, to sign again what
	// moto would misread (resignForMoto).
	secret func(accessKey string) (string, bool)
}

var (
	credentialRE    = regexp.MustCompile(`Credential=([^/,]+)/([^,]+),`)
	signedHeadersRE = regexp.MustCompile(`SignedHeaders=([^,]+),`)
)

// resignForMoto signs an S3 request again, with the same key, date and
// headers, the way moto checks it. moto decodes the query before it
// recomputes a signature and does not escape it again, so a request whose
// query holds an escaped "/" (ListObjectsV2 with prefix=gallery%2F) never
// matches what the SDK signed, as S3 itself would accept it. Only the
// canonical query differs from what the SDK signed.
func resignForMoto(r *http.Request, secret func(string) (string, bool)) {
	auth := r.Header.Get("Authorization")
	cm, sm := credentialRE.FindStringSubmatch(auth), signedHeadersRE.FindStringSubmatch(auth)
	if cm == nil || sm == nil {
		return
	}
	key, ok := secret(cm[1])
	if !ok {
		return
	}
	scope := cm[2] // date/region/service/aws4_request
	parts := strings.Split(scope, "/")
	if len(parts) != 4 {
		return
	}
	pairs := strings.Split(strings.ReplaceAll(r.URL.RawQuery, "%2F", "/"), "&")
	sort.Strings(pairs)
	var canonHeaders strings.Builder
	for _, h := range strings.Split(sm[1], ";") {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&canonHeaders, "%s:%s\n", h, strings.TrimSpace(v))
	}
	canonical := strings.Join([]string{r.Method, r.URL.EscapedPath(), strings.Join(pairs, "&"), canonHeaders.String(), sm[1], r.Header.Get("X-Amz-Content-Sha256")}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", r.Header.Get("X-Amz-Date"), scope, hex.EncodeToString(sum[:])}, "\n")
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	k := mac([]byte("AWS4"+key), parts[0])
	for _, p := range parts[1:] {
		k = mac(k, p)
	}
	sig := hex.EncodeToString(mac(k, toSign))
	r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", cm[1], scope, sm[1], sig))
}

// servicesUsed returns the AWS services the host called.
func (p *awsProxy) servicesUsed() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for k := range p.services {
		out[k] = true
	}
	return out
}

var (
	authScope   = regexp.MustCompile(`Credential=[^/]+/[0-9]+/[^/]+/([a-z0-9-]+)/aws4_request`)
	notAllowed  = regexp.MustCompile(`(not authorized to perform: [a-zA-Z0-9:]+|AccessDenied|InvalidClientTokenId|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden)`)
	formAction  = regexp.MustCompile(`(?:^|&)Action=([A-Za-z]+)`)
	s3QueryCall = map[string]string{"list-type=2": "ListObjectsV2", "tagging": "GetObjectTagging", "policy": "GetBucketPolicy"}
)

// callOf names the API call of a request: service:Operation and resource.
func callOf(r *http.Request, body []byte) (call, res string) {
	m := authScope.FindStringSubmatch(r.Header.Get("Authorization"))
	svc := "?"
	if m != nil {
		svc = m[1]
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		_, op, _ := strings.Cut(t, ".")
		var p struct{ QueueUrl string }
		_ = json.Unmarshal(body, &p)
		return svc + ":" + op, p.QueueUrl
	}
	if a := formAction.FindSubmatch(body); a != nil {
		return svc + ":" + string(a[1]), ""
	}
	if svc == "s3" {
		path := strings.TrimPrefix(r.URL.Path, "/")
		bucket, key, hasKey := strings.Cut(path, "/")
		op := map[string]string{http.MethodGet: "GetObject", http.MethodHead: "HeadObject", http.MethodPut: "PutObject", http.MethodDelete: "DeleteObject"}[r.Method]
		if !hasKey || key == "" {
			op = "ListObjects"
			for q, name := range s3QueryCall {
				if strings.Contains(r.URL.RawQuery, q) {
					op = name
				}
			}
			if r.Method == http.MethodHead {
				op = "HeadBucket"
			}
		}
		return "s3:" + op, "s3://" + bucket + "/" + key
	}
	return svc + ":" + r.Method, r.URL.Path
}

// missingQueue reports whether an SQS call moto refused is one AWS would
// answer "queue does not exist" instead (see system.missingQueueAllowed).
type missingQueue func(call, queueURL string) bool

// queueDoesNotExist is SQS's answer (JSON protocol) to a call on a queue
// that is not there.
const queueDoesNotExist = `{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}`

func newAWSProxy(t *testing.T, target string, host string, refused func(refusal), secret func(string) (string, bool), missing missingQueue) *awsProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &awsProxy{services: map[string]bool{}, secret: secret}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if err != nil {
			return err
		}
		m := notAllowed.FindString(string(b))
		if m == "" && !(resp.StatusCode == http.StatusForbidden && resp.Request.Method == http.MethodHead) {
			return nil // not an authorization failure (e.g. a missing queue)
		}
		if m == "" {
			m = "403 Forbidden"
		}
		body, _ := resp.Request.Context().Value(bodyKey{}).([]byte)
		call, res := callOf(resp.Request, body)
		if strings.HasPrefix(call, "sqs:") && res != "" && missing != nil && missing(call, res) {
			resp.StatusCode, resp.Status = http.StatusBadRequest, "400 Bad Request"
			resp.Header.Set("Content-Type", "application/x-amz-json-1.0")
			resp.Header.Set("X-Amzn-Query-Error", "AWS.SimpleQueueService.NonExistentQueue;Sender")
			resp.Header.Del("Content-Length")
			resp.Body = io.NopCloser(strings.NewReader(queueDoesNotExist))
			resp.ContentLength = int64(len(queueDoesNotExist))
			return nil
		}
		refused(refusal{host: host, call: call, resource: res, message: m})
		return nil
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if m := authScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			p.mu.Lock()
			p.services[m[1]] = true
			p.mu.Unlock()
			if m[1] == "s3" && strings.Contains(r.URL.RawQuery, "%2F") && p.secret != nil {
				resignForMoto(r, p.secret)
			}
		}
		if b := p.blocked.Load(); b != nil && strings.HasPrefix(strings.TrimPrefix(r.URL.Path, "/"), *b+"/") {
			// Unreachable: the connection drops without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
	})
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	p.addr = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: h}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { p.srv.Close() })
	return p
}

type bodyKey struct{}

// block makes bucket unreachable through this proxy ("" reachable again).
func (p *awsProxy) block(bucket string) {
	if bucket == "" {
		p.blocked.Store(nil)
		return
	}
	p.blocked.Store(&bucket)
}

// secretOf finds the secret of one of the system's sessions.
func (s *system) secretOf(accessKey string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.roles {
		if id.AccessKeyID == accessKey {
			return id.SecretAccessKey, true
		}
	}
	return "", false
}

// sessionFor returns the session IMDS serves the role's hosts.
func (s *system) sessionFor(role string) (identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.roles[role]
	if !ok {
		return identity{}, errors.New("no session of role " + role)
	}
	return id, nil
}

// userDataOf decodes a launch template's base64 user data.
func userDataOf(b64 string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(b64)
	return string(b), err
}

// noteRefused records a refused call.
func (s *system) noteRefused(r refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.refused, r) {
		s.refused = append(s.refused, r)
	}
}

// missingQueueAllowed reports whether call (sqs:Action) on queueURL, which
// moto refused, is one AWS would answer "queue does not exist": the queue
// is not there (moto then checks the call against the resource "*", which
// a statement limited to a queue name prefix never matches) and role's
// policies, as captured, allow the call on the queue's ARN. A worker
// replying to a web host that died and whose queue was collected meets
// this.
func (s *system) missingQueueAllowed(role, call, queueURL string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := path.Base(queueURL)
	_, err := sqs.NewFromConfig(s.admin).GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var gone *sqstypes.QueueDoesNotExist
	if !errors.As(err, &gone) {
		return false
	}
	arn := "arn:aws:sqs:" + s.cap.Region + ":" + s.cap.Account + ":" + name
	s.mu.Lock()
	var docs []string
	for _, d := range s.policies[role] {
		docs = append(docs, d)
	}
	s.mu.Unlock()
	strs := func(v any) []string {
		if l, ok := v.([]any); ok {
			out := make([]string, 0, len(l))
			for _, x := range l {
				out = append(out, fmt.Sprint(x))
			}
			return out
		}
		if v == nil {
			return nil
		}
		return []string{fmt.Sprint(v)}
	}
	allowed := false
	for _, doc := range docs {
		var d map[string]any
		if json.Unmarshal([]byte(doc), &d) != nil {
			return false
		}
		for _, st := range asList(d["Statement"]) {
			m := asMap(st)
			acts, res := strs(m["Action"]), strs(m["Resource"])
			if !slices.ContainsFunc(acts, func(a string) bool { return a == call || a == "sqs:*" || a == "*" }) ||
				!slices.ContainsFunc(res, func(r string) bool { return iamPattern(r).MatchString(arn) }) {
				continue
			}
			if m["Effect"] == "Deny" {
				return false
			}
			allowed = allowed || m["Effect"] == "Allow"
		}
	}
	return allowed
}

// refusals returns the refused calls so far.
func (s *system) refusals() []refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]refusal(nil), s.refused...)
}
