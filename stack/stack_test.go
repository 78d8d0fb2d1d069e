package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/acm"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/autoscaling"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/imagebuilder"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/route53"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sns"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sqs"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/stack/rehearsal"
)

// argsOf maps every resource type the program may declare to its Args
// type, so the tag test knows which ones AWS can tag. A type missing here
// fails the test: a new kind of resource must be classified.
var argsOf = map[string]any{
	"aws:ec2/vpc:Vpc":                                        ec2.VpcArgs{},
	"aws:ec2/internetGateway:InternetGateway":                ec2.InternetGatewayArgs{},
	"aws:ec2/routeTable:RouteTable":                          ec2.RouteTableArgs{},
	"aws:ec2/routeTableAssociation:RouteTableAssociation":    ec2.RouteTableAssociationArgs{},
	"aws:ec2/subnet:Subnet":                                  ec2.SubnetArgs{},
	"aws:ec2/securityGroup:SecurityGroup":                    ec2.SecurityGroupArgs{},
	"aws:ec2/vpcEndpoint:VpcEndpoint":                        ec2.VpcEndpointArgs{},
	"aws:ec2/launchTemplate:LaunchTemplate":                  ec2.LaunchTemplateArgs{},
	"aws:ec2/instance:Instance":                              ec2.InstanceArgs{},
	"aws:ec2/eip:Eip":                                        ec2.EipArgs{},
	"aws:sqs/queue:Queue":                                    sqs.QueueArgs{},
	"aws:sqs/redriveAllowPolicy:RedriveAllowPolicy":          sqs.RedriveAllowPolicyArgs{},
	"aws:s3/bucketV2:BucketV2":                               s3.BucketV2Args{},
	"aws:s3/bucketOwnershipControls:BucketOwnershipControls": s3.BucketOwnershipControlsArgs{},
	"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": s3.BucketPublicAccessBlockArgs{},
	"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": s3.BucketServerSideEncryptionConfigurationV2Args{},
	"aws:s3/bucketPolicy:BucketPolicy":                                         s3.BucketPolicyArgs{},
	"aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2":     s3.BucketLifecycleConfigurationV2Args{},
	"aws:s3/bucketObjectv2:BucketObjectv2":                                     s3.BucketObjectv2Args{},
	"aws:iam/role:Role":                                                        iam.RoleArgs{},
	"aws:iam/rolePolicy:RolePolicy":                                            iam.RolePolicyArgs{},
	"aws:iam/rolePolicyAttachment:RolePolicyAttachment":                        iam.RolePolicyAttachmentArgs{},
	"aws:iam/instanceProfile:InstanceProfile":                                  iam.InstanceProfileArgs{},
	"aws:imagebuilder/component:Component":                                     imagebuilder.ComponentArgs{},
	"aws:imagebuilder/imageRecipe:ImageRecipe":                                 imagebuilder.ImageRecipeArgs{},
	"aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration": imagebuilder.InfrastructureConfigurationArgs{},
	"aws:imagebuilder/image:Image":                                             imagebuilder.ImageArgs{},
	"aws:imagebuilder/distributionConfiguration:DistributionConfiguration":     imagebuilder.DistributionConfigurationArgs{},
	"aws:imagebuilder/lifecyclePolicy:LifecyclePolicy":                         imagebuilder.LifecyclePolicyArgs{},
	"aws:cloudwatch/logGroup:LogGroup":                                         cloudwatch.LogGroupArgs{},
	"aws:autoscaling/group:Group":                                              autoscaling.GroupArgs{},
	"aws:lb/loadBalancer:LoadBalancer":                                         lb.LoadBalancerArgs{},
	"aws:lb/targetGroup:TargetGroup":                                           lb.TargetGroupArgs{},
	"aws:lb/listener:Listener":                                                 lb.ListenerArgs{},
	"aws:acm/certificate:Certificate":                                          acm.CertificateArgs{},
	"aws:acm/certificateValidation:CertificateValidation":                      acm.CertificateValidationArgs{},
	"aws:route53/record:Record":                                                route53.RecordArgs{},
	"aws:ssm/parameter:Parameter":                                              ssm.ParameterArgs{},
	"aws:sns/topic:Topic":                                                      sns.TopicArgs{},
	"aws:sns/topicSubscription:TopicSubscription":                              sns.TopicSubscriptionArgs{},
	"aws:cloudwatch/metricAlarm:MetricAlarm":                                   cloudwatch.MetricAlarmArgs{},
	"aws:cloudwatch/dashboard:Dashboard":                                       cloudwatch.DashboardArgs{},
}

// stackCase is one configuration the program is built under.
type stackCase struct {
	cfg map[string]string
	// want
	preset, prefix string
	private        bool
	builder        bool
	maxWorkers     int
	warmPool       int
	webPort        int
	// galleryRefresh is the workers' --gallery-refresh; empty is the
	// default, 2s.
	galleryRefresh string
	// open are the networks that may reach the load balancer.
	open []string
}

func (tc stackCase) wantGalleryRefresh() string {
	if tc.galleryRefresh == "" {
		return "2s"
	}
	return tc.galleryRefresh
}

var stackCases = map[string]stackCase{
	"default": {
		cfg:    map[string]string{},
		preset: awsres.PresetDefault, prefix: "facecloud-test", builder: true, maxWorkers: 20, webPort: 80,
	},
	"course preset": {
		cfg:    map[string]string{"namingPreset": "course", "namePrefix": "1225754101", "maxWorkers": "19", "image": "stock", "allowedCidrs": `["0.0.0.0/0"]`},
		preset: awsres.PresetCourse, prefix: "1225754101", maxWorkers: 19, webPort: 80, open: []string{"0.0.0.0/0"},
	},
	"private workers with warm pool": {
		cfg:    map[string]string{"privateWorkers": "true", "warmPoolSize": "3", "maxWorkers": "40", "webPort": "8080", "allowedCidrs": `["198.51.100.0/24","203.0.113.0/24"]`, "galleryRefresh": "30s"},
		preset: awsres.PresetDefault, prefix: "facecloud-test", private: true, builder: true, maxWorkers: 40, warmPool: 3, webPort: 8080, galleryRefresh: "30s",
		open: []string{"198.51.100.0/24", "203.0.113.0/24"},
	},
	"course preset private workers": {
		cfg:    map[string]string{"namingPreset": "course", "namePrefix": "1225754101", "privateWorkers": "true"},
		preset: awsres.PresetCourse, prefix: "1225754101", private: true, builder: true, maxWorkers: 20, webPort: 80,
	},
	"stock ami amd64": {
		cfg:    map[string]string{"image": "stock", "arch": "amd64", "workerInstanceType": "c7i.large", "webInstanceType": "t3.small", "maxWorkers": "1"},
		preset: awsres.PresetDefault, prefix: "facecloud-test", maxWorkers: 1, webPort: 80,
	},
	"graviton": {
		cfg:    map[string]string{"arch": "arm64"},
		preset: awsres.PresetDefault, prefix: "facecloud-test", builder: true, maxWorkers: 20, webPort: 80,
	},
}

func TestStack(t *testing.T) {
	for name, tc := range stackCases {
		t.Run(name, func(t *testing.T) {
			m, err := runStack(t, tc.cfg, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
			if err != nil {
				t.Fatalf("program failed: %v", err)
			}
			names := testNames(t, tc.preset, tc.prefix)
			checks := map[string]func(*testing.T, *mockCloud, stackCase, awsres.Names){
				"every resource type classified":    checkClassified,
				"ingress only on the web port":      checkIngress,
				"buckets private encrypted tls":     checkBuckets,
				"queues encrypted with dlq":         checkQueues,
				"iam least privilege":               checkIAM,
				"imdsv2 required":                   checkIMDS,
				"tags on every taggable resource":   checkTags,
				"group bounds and desired ignored":  checkGroup,
				"web user data has the queue urls":  checkWebUserData,
				"worker user data has the backends": checkWorkerUserData,
				"network shape":                     checkNetwork,
				"image source":                      checkImage,
				"names of the preset":               checkNames,
			}
			for cname, check := range checks {
				t.Run(cname, func(t *testing.T) { check(t, m, tc, names) })
			}
		})
	}
}

// testNames are the names the program gives a preset's resources in the
// stand-in account: the default preset's buckets carry the account's suffix.
func testNames(t *testing.T, preset, prefix string) awsres.Names {
	t.Helper()
	names, err := awsres.NewNames(preset, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if preset != awsres.PresetCourse {
		names = names.WithBucketSuffix(awsres.BucketSuffix(mockAccount, mockRegion))
	}
	return names
}

func checkClassified(t *testing.T, m *mockCloud, _ stackCase, _ awsres.Names) {
	for _, r := range m.Resources() {
		if strings.HasPrefix(r.Type, "pulumi:") {
			continue
		}
		if _, ok := argsOf[r.Type]; !ok {
			t.Errorf("resource type %s (%s) is not in argsOf; classify it", r.Type, r.Name)
		}
	}
}

// checkIngress: nothing is open but the load balancer's listeners, to the
// configured networks only (none by default); the web hosts' port only to
// the load balancer; no SSH anywhere.
func checkIngress(t *testing.T, m *mockCloud, tc stackCase, _ awsres.Names) {
	for _, typ := range []string{"aws:ec2/securityGroupRule:SecurityGroupRule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"} {
		if n := len(m.of(typ)); n > 0 {
			t.Errorf("%d separate %s resources: ingress must be declared on the groups", n, typ)
		}
	}
	sgs := map[string]recorded{}
	for _, sg := range m.of("aws:ec2/securityGroup:SecurityGroup") {
		sgs[sg.Name] = sg
	}
	for _, want := range []string{"lb", "web", "worker"} {
		if _, ok := sgs[want]; !ok {
			t.Fatalf("no %s security group among %v", want, sgs)
		}
	}
	listenerPorts := map[int]bool{tc.webPort: true}
	if tc.cfg["domain"] != "" {
		listenerPorts = map[int]bool{443: true, 80: true}
	}
	opened := map[int][]string{}
	for name, sg := range sgs {
		rules, _ := sg.Inputs["ingress"].([]any)
		for _, rule := range rules {
			from, to := int(getNumber(rule, "fromPort")), int(getNumber(rule, "toPort"))
			proto := getString(rule, "protocol")
			if proto == "-1" || proto == "all" {
				t.Errorf("%s: ingress of all protocols", name)
			}
			if from <= 22 && 22 <= to {
				t.Errorf("%s: ingress %d-%d includes SSH", name, from, to)
			}
			if v6, _ := get(rule, "ipv6CidrBlocks").([]any); len(v6) > 0 {
				t.Errorf("%s: IPv6 ingress %v", name, v6)
			}
			cidrs, _ := get(rule, "cidrBlocks").([]any)
			switch name {
			case "lb":
				if from != to || !listenerPorts[from] {
					t.Errorf("load balancer open on %d-%d, want only its listeners %v", from, to, listenerPorts)
				}
				for _, c := range cidrs {
					opened[from] = append(opened[from], c.(string))
				}
			case "web":
				groups, _ := get(rule, "securityGroups").([]any)
				if len(cidrs) > 0 || len(groups) != 1 || groups[0] != sgs["lb"].ID || from != tc.webPort || to != tc.webPort {
					t.Errorf("web hosts open on %d-%d to %v %v, want port %d to the load balancer's group only", from, to, cidrs, groups, tc.webPort)
				}
			case "endpoints":
				if len(cidrs) != 1 || cidrs[0] == "0.0.0.0/0" || from != 443 {
					t.Errorf("endpoints open on %d to %v, want 443 from the VPC", from, cidrs)
				}
			default:
				t.Errorf("%s security group has ingress %v", name, rule)
			}
		}
	}
	for port := range listenerPorts {
		got := opened[port]
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(tc.open)); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("listener port %d open to %v, want %v", port, got, want)
		}
	}
}

func checkBuckets(t *testing.T, m *mockCloud, _ stackCase, names awsres.Names) {
	buckets := m.of("aws:s3/bucketV2:BucketV2")
	if len(buckets) != 3 {
		t.Fatalf("%d buckets, want input, output, artifacts", len(buckets))
	}
	byBucket := func(typ string) map[string]recorded {
		out := map[string]recorded{}
		for _, r := range m.of(typ) {
			out[getString(r.Inputs, "bucket")] = r
		}
		return out
	}
	sse := byBucket("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
	pab := byBucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
	pol := byBucket("aws:s3/bucketPolicy:BucketPolicy")
	own := byBucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
	life := byBucket("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2")
	for _, b := range buckets {
		id := b.ID
		if alg := getString(sse[id].Inputs, "rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"); alg != "AES256" && alg != "aws:kms" {
			t.Errorf("bucket %s: default encryption %q", id, alg)
		}
		for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
			if v, _ := pab[id].Inputs[k].(bool); !v {
				t.Errorf("bucket %s: public access block %s is not true", id, k)
			}
		}
		if o := getString(own[id].Inputs, "rule", "objectOwnership"); o != "BucketOwnerEnforced" {
			t.Errorf("bucket %s: object ownership %q (ACLs must be off)", id, o)
		}
		var doc policyDocument
		if err := json.Unmarshal([]byte(getString(pol[id].Inputs, "policy")), &doc); err != nil {
			t.Errorf("bucket %s: policy: %v", id, err)
		}
		tlsOnly := false
		for _, s := range doc.Statement {
			if s.Effect == "Deny" && s.Principal == "*" && slices.Contains(s.Action, "s3:*") &&
				slices.Contains(s.Resource, "arn:aws:s3:::"+id) && slices.Contains(s.Resource, "arn:aws:s3:::"+id+"/*") &&
				fmt.Sprint(s.Condition["Bool"]["aws:SecureTransport"]) == "false" {
				tlsOnly = true
			}
		}
		if !tlsOnly {
			t.Errorf("bucket %s: no statement denies requests without TLS: %+v", id, doc)
		}
		rules, _ := get(life[id].Inputs, "rules").([]any)
		abort := false
		for _, r := range rules {
			if getNumber(r, "abortIncompleteMultipartUpload", "daysAfterInitiation") > 0 {
				abort = true
			}
		}
		if !abort {
			t.Errorf("bucket %s: lifecycle does not abort incomplete uploads", id)
		}
		if id == names.OutputBucket {
			if p := getString(rules, 1, "filter", "prefix"); p != "results/" {
				t.Errorf("output bucket expires prefix %q, want only results/ (the gallery stays)", p)
			}
		}
	}
}

func checkQueues(t *testing.T, m *mockCloud, _ stackCase, names awsres.Names) {
	qs := map[string]recorded{}
	for _, q := range m.of("aws:sqs/queue:Queue") {
		qs[getString(q.Inputs, "name")] = q
		if v, _ := q.Inputs["sqsManagedSseEnabled"].(bool); !v && getString(q.Inputs, "kmsMasterKeyId") == "" {
			t.Errorf("queue %s is not encrypted", q.Name)
		}
	}
	req, ok := qs[names.RequestQueue]
	if !ok {
		t.Fatalf("no request queue %s among %v", names.RequestQueue, qs)
	}
	if _, ok := qs[names.ResponseQueue]; !ok {
		t.Errorf("no response queue %s", names.ResponseQueue)
	}
	s := awsres.DefaultQueueSettings
	if got := int(getNumber(req.Inputs, "maxMessageSize")); got != 1024 {
		t.Errorf("request queue max message size %d, want 1024", got)
	}
	if got := int(getNumber(req.Inputs, "visibilityTimeoutSeconds")); got != int(s.VisibilityTimeout.Seconds()) || s.Heartbeat*2 > s.VisibilityTimeout {
		t.Errorf("request queue visibility %ds does not fit heartbeat %s", got, s.Heartbeat)
	}
	if got := int(getNumber(req.Inputs, "receiveWaitTimeSeconds")); got != 20 {
		t.Errorf("request queue long polling %ds, want 20", got)
	}
	var redrive struct {
		Target string `json:"deadLetterTargetArn"`
		Max    int    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(getString(req.Inputs, "redrivePolicy")), &redrive); err != nil {
		t.Fatalf("request queue redrive policy: %v", err)
	}
	if want := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", mockRegion, mockAccount, names.DeadLetterQueue); redrive.Target != want || redrive.Max != s.MaxReceives {
		t.Errorf("request queue redrives to %s after %d, want %s after %d", redrive.Target, redrive.Max, want, s.MaxReceives)
	}
}

func checkIAM(t *testing.T, m *mockCloud, tc stackCase, names awsres.Names) {
	policies := m.of("aws:iam/rolePolicy:RolePolicy")
	want := []string{"web-artifacts", "web-logs", "web-scaler", "web-web", "worker-artifacts", "worker-health", "worker-logs", "worker-worker"}
	if tc.builder {
		want = append(want, "builder-artifacts")
	}
	if tc.warmPool > 0 {
		want = append(want, "worker-warmpool")
	}
	if tc.preset == awsres.PresetCourse {
		want = append(want, "worker-name")
		var doc policyDocument
		if err := json.Unmarshal([]byte(getString(m.one(t, "aws:iam/rolePolicy:RolePolicy", "worker-name").Inputs, "policy")), &doc); err != nil {
			t.Fatal(err)
		}
		tagging := doc.Statement[len(doc.Statement)-1]
		if !slices.Equal(tagging.Action, []string{"ec2:CreateTags"}) ||
			!slices.Equal(tagging.Resource, []string{fmt.Sprintf("arn:aws:ec2:%s:%s:instance/*", mockRegion, mockAccount)}) ||
			fmt.Sprint(tagging.Condition["StringEquals"]["aws:ResourceTag/"+awsres.WorkerRoleTag]) != roleWorker ||
			fmt.Sprint(tagging.Condition["ForAllValues:StringEquals"]["aws:TagKeys"]) != "[Name]" {
			t.Errorf("naming statement %+v: want CreateTags of Name on workers only", tagging)
		}
	}
	var got []string
	for _, p := range policies {
		got = append(got, p.Name)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("inline policies %v, want %v", got, want)
	}
	for _, p := range policies {
		var doc policyDocument
		if err := json.Unmarshal([]byte(getString(p.Inputs, "policy")), &doc); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if len(doc.Statement) == 0 {
			t.Errorf("%s: no statements", p.Name)
		}
		for _, s := range doc.Statement {
			for _, a := range s.Action {
				if strings.Contains(a, "*") {
					t.Errorf("%s/%s: wildcard action %q", p.Name, s.Sid, a)
				}
			}
			for _, r := range s.Resource {
				if r == "*" {
					for _, a := range s.Action {
						if !wildcardResourceActions[a] {
							t.Errorf("%s/%s: resource * for %s, which AWS lets name a resource", p.Name, s.Sid, a)
						}
					}
				}
				if r == "" || strings.Contains(r, "<unknown>") {
					t.Errorf("%s/%s: unresolved resource %q", p.Name, s.Sid, r)
				}
			}
		}
	}
	// Each agent's policy holds exactly the grants awsres lists for it.
	arnOf := map[awsres.Resource][]string{
		awsres.RequestQueue:    {fmt.Sprintf("arn:aws:sqs:%s:%s:%s", mockRegion, mockAccount, names.RequestQueue)},
		awsres.ReplyQueue:      {fmt.Sprintf("arn:aws:sqs:%s:%s:%s", mockRegion, mockAccount, names.ResponseQueue)},
		awsres.DeadLetterQueue: {fmt.Sprintf("arn:aws:sqs:%s:%s:%s", mockRegion, mockAccount, names.DeadLetterQueue)},
		awsres.InputObjects:    {"arn:aws:s3:::" + names.InputBucket + "/*"},
		awsres.OutputObjects:   {"arn:aws:s3:::" + names.OutputBucket + "/*"},
		awsres.InputBucket:     {"arn:aws:s3:::" + names.InputBucket},
		awsres.OutputBucket:    {"arn:aws:s3:::" + names.OutputBucket},
		awsres.WorkerGroup:     {fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s", mockRegion, mockAccount, names.WorkerGroup)},
		awsres.AnyResource:     {"*"},
		awsres.HostReplyQueues: {fmt.Sprintf("arn:aws:sqs:%s:%s:%s*", mockRegion, mockAccount, names.ReplyQueuePrefix)},
		awsres.ScalerLease:     {"arn:aws:s3:::" + names.OutputBucket + "/leases/*"},
		awsres.KeyObjects:      {"arn:aws:s3:::" + names.OutputBucket + "/keys/*", "arn:aws:s3:::" + names.OutputBucket + "/keyuse/*"},
		awsres.GalleryObjects:  {"arn:aws:s3:::" + names.OutputBucket + "/collections/*"},
		awsres.StatusObjects:   {"arn:aws:s3:::" + names.OutputBucket + "/status/*"},
	}
	for policy, grants := range map[string][]awsres.Grant{"web-web": awsres.WebTierWebActions, "web-scaler": awsres.WebTierScalerActions, "worker-worker": awsres.WebTierWorkerActions} {
		var doc policyDocument
		if err := json.Unmarshal([]byte(getString(m.one(t, "aws:iam/rolePolicy:RolePolicy", policy).Inputs, "policy")), &doc); err != nil {
			t.Fatal(err)
		}
		want, got := map[string]bool{}, map[string]bool{}
		for _, g := range grants {
			if len(arnOf[g.Resource]) == 0 {
				t.Fatalf("%s: no ARN known for %s", policy, g.Resource)
			}
			for _, a := range g.Actions {
				for _, r := range arnOf[g.Resource] {
					want[a+" on "+r] = true
				}
			}
		}
		for _, s := range doc.Statement {
			for _, a := range s.Action {
				for _, r := range s.Resource {
					got[a+" on "+r] = true
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s grants %v,\nawsres lists %v", policy, got, want)
		}
	}
	// Retiring and scaling are limited to this stack's group.
	group := fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s", mockRegion, mockAccount, names.WorkerGroup)
	for _, p := range policies {
		if !strings.Contains(getString(p.Inputs, "policy"), "autoscaling:SetDesiredCapacity") && !strings.Contains(getString(p.Inputs, "policy"), "TerminateInstanceInAutoScalingGroup") {
			continue
		}
		if !strings.Contains(getString(p.Inputs, "policy"), group) {
			t.Errorf("%s: scaling actions not limited to %s: %s", p.Name, group, getString(p.Inputs, "policy"))
		}
	}
	// Session Manager instead of SSH on every instance role.
	ssm := 0
	for _, a := range m.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
		if getString(a.Inputs, "policyArn") == ssmManagedPolicy {
			ssm++
		}
	}
	if wantSSM := len(m.of("aws:iam/instanceProfile:InstanceProfile")); ssm != wantSSM {
		t.Errorf("%d roles have Session Manager, want all %d", ssm, wantSSM)
	}
	for _, lt := range m.of("aws:ec2/launchTemplate:LaunchTemplate") {
		if k := getString(lt.Inputs, "keyName"); k != "" {
			t.Errorf("launch template has an SSH key %q", k)
		}
	}
	if n := len(m.of("aws:ec2/instance:Instance")); n > 0 {
		t.Errorf("%d lone instances: every host belongs to a group", n)
	}
	// Each role's log shipping may write only its own agents' groups.
	for role, agents := range map[string][]string{"web": {"web", "scaler"}, "worker": {"worker"}} {
		var doc policyDocument
		if err := json.Unmarshal([]byte(getString(m.one(t, "aws:iam/rolePolicy:RolePolicy", role+"-logs").Inputs, "policy")), &doc); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, a := range agents {
			want = append(want, fmt.Sprintf("arn:aws:logs:%s:%s:log-group:/facecloud/%s/%s:*", mockRegion, mockAccount, tc.prefix, a))
		}
		if len(doc.Statement) != 1 || !slices.Equal(doc.Statement[0].Action, []string{"logs:CreateLogStream", "logs:PutLogEvents"}) || !slices.Equal(doc.Statement[0].Resource, want) {
			t.Errorf("%s-logs %+v, want CreateLogStream and PutLogEvents on %v", role, doc.Statement, want)
		}
	}
}

func checkIMDS(t *testing.T, m *mockCloud, _ stackCase, _ awsres.Names) {
	var n int
	for _, typ := range []string{"aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance", "aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration"} {
		key := "metadataOptions"
		if strings.Contains(typ, "imagebuilder") {
			key = "instanceMetadataOptions"
		}
		for _, r := range m.of(typ) {
			n++
			if v := getString(r.Inputs, key, "httpTokens"); v != "required" {
				t.Errorf("%s %s: httpTokens %q, want required", typ, r.Name, v)
			}
			if hop := getNumber(r.Inputs, key, "httpPutResponseHopLimit"); hop != 1 {
				t.Errorf("%s %s: hop limit %v, want 1", typ, r.Name, hop)
			}
		}
	}
	if n < 2 {
		t.Errorf("only %d launch configurations checked", n)
	}
}

func checkTags(t *testing.T, m *mockCloud, _ stackCase, _ awsres.Names) {
	want := awsres.Tags(testProject, testStackName)
	for _, r := range m.Resources() {
		args, ok := argsOf[r.Type]
		if !ok {
			continue
		}
		if _, taggable := reflect.TypeOf(args).FieldByName("Tags"); !taggable {
			continue
		}
		got := map[string]string{}
		switch tags := r.Inputs["tags"].(type) {
		case map[string]any:
			for k, v := range tags {
				got[k], _ = v.(string)
			}
		case []any: // Auto Scaling group tags
			for _, tg := range tags {
				got[getString(tg, "key")] = getString(tg, "value")
			}
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s %s: tag %s = %q, want %q", r.Type, r.Name, k, got[k], v)
			}
		}
	}
	for _, lt := range m.of("aws:ec2/launchTemplate:LaunchTemplate") {
		specs, _ := lt.Inputs["tagSpecifications"].([]any)
		kinds := map[string]bool{}
		for _, s := range specs {
			kinds[getString(s, "resourceType")] = true
			if getString(s, "tags", "project") != testProject || getString(s, "tags", awsres.WorkerRoleTag) != lt.Name {
				t.Errorf("launch template tags %s: %v", getString(s, "resourceType"), get(s, "tags"))
			}
		}
		if !kinds["instance"] || !kinds["volume"] {
			t.Errorf("launch template tags %v, want instance and volume", kinds)
		}
	}
}

func checkGroup(t *testing.T, m *mockCloud, tc stackCase, names awsres.Names) {
	g := m.one(t, "aws:autoscaling/group:Group", "workers")
	if got := int(getNumber(g.Inputs, "maxSize")); got != tc.maxWorkers {
		t.Errorf("group max %d, want %d", got, tc.maxWorkers)
	}
	if got := int(getNumber(g.Inputs, "minSize")); got != 0 {
		t.Errorf("group min %d, want 0", got)
	}
	if !slices.Contains(g.IgnoreChanges, "desiredCapacity") {
		t.Errorf("group ignores %v; desiredCapacity must be ignored (the scaler owns it)", g.IgnoreChanges)
	}
	if getString(g.Inputs, "name") != names.WorkerGroup {
		t.Errorf("group name %q, want %q", getString(g.Inputs, "name"), names.WorkerGroup)
	}
	if getString(g.Inputs, "launchTemplate", "id") != "lt-0123456789abcdef0" || getString(g.Inputs, "launchTemplate", "version") != "1" {
		t.Errorf("group launch template %v, want the template's latest version", get(g.Inputs, "launchTemplate"))
	}
	if v, _ := g.Inputs["protectFromScaleIn"].(bool); v != awsres.ProtectFromScaleIn {
		t.Errorf("group protectFromScaleIn %v, want %v", v, awsres.ProtectFromScaleIn)
	}
	if getString(g.Inputs, "instanceRefresh", "strategy") != "Rolling" {
		t.Errorf("group has no rolling instance refresh: %v", get(g.Inputs, "instanceRefresh"))
	}
	wp := get(g.Inputs, "warmPool")
	switch {
	case tc.warmPool == 0 && wp != nil:
		t.Errorf("warm pool %v, want none", wp)
	case tc.warmPool > 0 && (int(getNumber(wp, "minSize")) != tc.warmPool || getString(wp, "poolState") != "Stopped"):
		t.Errorf("warm pool %v, want %d stopped", wp, tc.warmPool)
	case tc.warmPool > 0 && int(getNumber(wp, "maxGroupPreparedCapacity")) != tc.warmPool:
		// Without it the pool holds maxWorkers − desired instances.
		t.Errorf("warm pool maxGroupPreparedCapacity %v, want %d so the pool stays at warmPoolSize", get(wp, "maxGroupPreparedCapacity"), tc.warmPool)
	}
	hooks, _ := get(g.Inputs, "initialLifecycleHooks").([]any)
	switch {
	case tc.warmPool == 0 && len(hooks) > 0:
		t.Errorf("lifecycle hooks %v without a warm pool: every launch would wait for them", hooks)
	case tc.warmPool > 0 && (len(hooks) != 1 || getString(hooks, 0, "lifecycleTransition") != "autoscaling:EC2_INSTANCE_LAUNCHING" || getString(hooks, 0, "defaultResult") != "CONTINUE"):
		t.Errorf("lifecycle hooks %v, want one on launch that continues by default", hooks)
	case tc.warmPool > 0:
		env := envOf(cloudInit(t, workerUserDataOf(t, m))["/etc/facecloud/agent.env"])
		if env["FACECLOUD_LAUNCH_HOOK"] != getString(hooks, 0, "name") {
			t.Errorf("workers complete hook %q, the group has %q", env["FACECLOUD_LAUNCH_HOOK"], getString(hooks, 0, "name"))
		}
		if !strings.Contains(getString(m.one(t, "aws:iam/rolePolicy:RolePolicy", "worker-warmpool").Inputs, "policy"), "autoscaling:CompleteLifecycleAction") {
			t.Error("workers may not complete the launch hook")
		}
	}
	// Instances start only once the files they fetch are uploaded.
	objects := artifactObjects(m, names)
	if len(objects) != 7 {
		t.Errorf("%d artifacts uploaded, want the agent and 6 model files", len(objects))
	}
	if len(g.DependsOn) < len(objects) {
		t.Errorf("group depends on %d resources, want at least the %d uploads", len(g.DependsOn), len(objects))
	}
}

// artifactObjects are the uploads to the artifacts bucket.
func artifactObjects(m *mockCloud, names awsres.Names) []recorded {
	var out []recorded
	for _, o := range m.of("aws:s3/bucketObjectv2:BucketObjectv2") {
		if getString(o.Inputs, "bucket") == names.ArtifactsBucket {
			out = append(out, o)
		}
	}
	return out
}

// cloudInit parses user data and returns its files by path.
func cloudInit(t *testing.T, userData string) map[string]string {
	t.Helper()
	c, err := rehearsal.ParseCloudConfig(userData)
	if err != nil {
		t.Fatal(err)
	}
	return c.Files()
}

// envOf parses an EnvironmentFile.
func envOf(s string) map[string]string { return rehearsal.EnvFile(s) }

func queueURL(name string) string {
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", mockRegion, mockAccount, name)
}

// backendEnv is the queue, store and fleet URLs both hosts' agent.env name.
func backendEnv(names awsres.Names) map[string]string {
	return map[string]string{
		"FACECLOUD_REQUESTS":     queueURL(names.RequestQueue),
		"FACECLOUD_REPLY_PREFIX": queueURL(names.ReplyQueuePrefix),
		"FACECLOUD_INPUT":        "s3://" + names.InputBucket + "?region=" + mockRegion,
		"FACECLOUD_OUTPUT":       "s3://" + names.OutputBucket + "?region=" + mockRegion,
		"FACECLOUD_FLEET":        "asg://" + names.WorkerGroup,
	}
}

func checkWebUserData(t *testing.T, m *mockCloud, tc stackCase, names awsres.Names) {
	files := cloudInit(t, webUserDataOf(t, m))
	env := envOf(files["/etc/facecloud/agent.env"])
	want := backendEnv(names)
	want["FACECLOUD_PORT"] = fmt.Sprint(tc.webPort)
	want["FACECLOUD_LEASE"] = "s3://" + names.OutputBucket + "/leases/scaler"
	want["FACECLOUD_DEAD_LETTER"] = queueURL(names.DeadLetterQueue)
	want["FACECLOUD_OPEN_RECOGNITION"] = fmt.Sprint(tc.preset == awsres.PresetCourse)
	for k, v := range want {
		if env[k] != v {
			t.Errorf("web %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["FACECLOUD_REPLIES"]; ok {
		t.Error("web hosts name the shared reply queue: with several hosts a reply would reach the wrong one")
	}
	for _, unit := range []string{"facecloud-web.service", "facecloud-scaler.service", "facecloud-fetch.service"} {
		if files["/etc/systemd/system/"+unit] == "" {
			t.Errorf("web user data lacks %s", unit)
		}
	}
	lt := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "web")
	if getString(lt.Inputs, "imageId") != mockStockAMI {
		t.Errorf("web hosts' AMI %q, want the stock image", getString(lt.Inputs, "imageId"))
	}
}

// webUserDataOf decodes the web launch template's user data.
func webUserDataOf(t *testing.T, m *mockCloud) string {
	t.Helper()
	lt := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "web")
	b, err := base64.StdEncoding.DecodeString(getString(lt.Inputs, "userData"))
	if err != nil {
		t.Fatalf("web launch template user data is not base64: %v", err)
	}
	return string(b)
}

// workerUserDataOf decodes the launch template's user data.
func workerUserDataOf(t *testing.T, m *mockCloud) string {
	t.Helper()
	lt := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "worker")
	b, err := base64.StdEncoding.DecodeString(getString(lt.Inputs, "userData"))
	if err != nil {
		t.Fatalf("launch template user data is not base64: %v", err)
	}
	return string(b)
}

func checkWorkerUserData(t *testing.T, m *mockCloud, tc stackCase, names awsres.Names) {
	files := cloudInit(t, workerUserDataOf(t, m))
	env := envOf(files["/etc/facecloud/agent.env"])
	want := backendEnv(names)
	want["FACECLOUD_REPLIES"] = queueURL(names.ResponseQueue)
	want["FACECLOUD_MODELS"] = modelDir
	for k, v := range want {
		if env[k] != v {
			t.Errorf("worker %s = %q, want %q", k, env[k], v)
		}
	}
	_, naming := files["/etc/systemd/system/facecloud-name.service"]
	course := strings.Contains(names.WorkerInstance, "%d")
	if naming != course || (course && env["FACECLOUD_NAME_PATTERN"] != names.WorkerInstance) {
		t.Errorf("naming service %v, pattern %q; want them exactly with the course preset", naming, env["FACECLOUD_NAME_PATTERN"])
	}
	if want := tc.wantGalleryRefresh(); env["FACECLOUD_GALLERY_REFRESH"] != want {
		t.Errorf("worker FACECLOUD_GALLERY_REFRESH = %q, want the stack's galleryRefresh %s", env["FACECLOUD_GALLERY_REFRESH"], want)
	}
	if want := fmt.Sprint(course); env["FACECLOUD_ANSWER_OBJECTS"] != want {
		t.Errorf("worker FACECLOUD_ANSWER_OBJECTS = %q, want %s: the course preset keeps the course's output objects", env["FACECLOUD_ANSWER_OBJECTS"], want)
	}
	lines := strings.Split(strings.TrimSpace(files["/etc/facecloud/artifacts.manifest"]), "\n")
	if len(lines) != 7 {
		t.Fatalf("worker manifest has %d lines, want agent + 6 model files:\n%s", len(lines), files["/etc/facecloud/artifacts.manifest"])
	}
	keys := map[string]bool{}
	for _, o := range m.of("aws:s3/bucketObjectv2:BucketObjectv2") {
		keys[getString(o.Inputs, "key")] = true
		if getString(o.Inputs, "bucket") != names.ArtifactsBucket && o.Name != "admin-key-record" {
			t.Errorf("artifact %s uploaded to %q", o.Name, getString(o.Inputs, "bucket"))
		}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 || !keys[f[1]] || !strings.Contains(f[1], f[0]) {
			t.Errorf("manifest line %q does not name an uploaded, hash-keyed object", l)
		}
	}
	if envOf(files["/etc/facecloud/artifacts.env"])["FACECLOUD_ARTIFACTS_BUCKET"] != names.ArtifactsBucket {
		t.Errorf("artifacts.env %q", files["/etc/facecloud/artifacts.env"])
	}
}

func checkNetwork(t *testing.T, m *mockCloud, tc stackCase, _ awsres.Names) {
	subnets := map[string]recorded{}
	zones := map[string]bool{}
	for _, s := range m.of("aws:ec2/subnet:Subnet") {
		subnets[s.ID] = s
		zones[getString(s.Inputs, "availabilityZone")] = true
	}
	if len(zones) != 2 {
		t.Errorf("subnets in zones %v, want two", zones)
	}
	g := m.one(t, "aws:autoscaling/group:Group", "workers")
	ids, _ := g.Inputs["vpcZoneIdentifiers"].([]any)
	if len(ids) != 2 {
		t.Fatalf("group in %d subnets, want 2", len(ids))
	}
	for _, id := range ids {
		s := subnets[id.(string)]
		public, _ := s.Inputs["mapPublicIpOnLaunch"].(bool)
		if tc.private == public {
			t.Errorf("worker subnet %s public=%v, want private=%v", s.Name, public, tc.private)
		}
	}
	endpoints := map[string]string{}
	for _, e := range m.of("aws:ec2/vpcEndpoint:VpcEndpoint") {
		endpoints[getString(e.Inputs, "serviceName")] = getString(e.Inputs, "vpcEndpointType")
	}
	if endpoints["com.amazonaws."+mockRegion+".s3"] != "Gateway" {
		t.Errorf("no S3 gateway endpoint: %v", endpoints)
	}
	// Workers ship their agents' logs to CloudWatch Logs.
	if !slices.Contains(interfaceEndpoints, "logs") {
		t.Errorf("interface endpoints %v: private workers could not reach CloudWatch Logs", interfaceEndpoints)
	}
	services := interfaceEndpoints
	if tc.private && tc.preset == awsres.PresetCourse {
		services = append(append([]string{}, services...), "ec2") // workers name themselves
	}
	for _, svc := range services {
		got := endpoints["com.amazonaws."+mockRegion+"."+svc]
		if tc.private && got != "Interface" {
			t.Errorf("private workers without a %s interface endpoint", svc)
		}
		if !tc.private && got != "" {
			t.Errorf("public workers with a paid %s interface endpoint", svc)
		}
	}
}

func checkImage(t *testing.T, m *mockCloud, tc stackCase, _ awsres.Names) {
	lt := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "worker")
	images := m.of("aws:imagebuilder/image:Image")
	if tc.builder {
		if len(images) != 1 || getString(lt.Inputs, "imageId") != mockBuiltAMI {
			t.Errorf("builder: %d images, launch template AMI %q, want the built %s", len(images), getString(lt.Inputs, "imageId"), mockBuiltAMI)
		}
		comp := m.one(t, "aws:imagebuilder/component:Component", "worker")
		var doc struct {
			Phases []struct{ Name string } `yaml:"phases"`
		}
		if err := yaml.Unmarshal([]byte(getString(comp.Inputs, "data")), &doc); err != nil || len(doc.Phases) != 3 {
			t.Errorf("component document: %v, phases %v", err, doc.Phases)
		}
		recipe := m.one(t, "aws:imagebuilder/imageRecipe:ImageRecipe", "worker")
		arch := "x86"
		if tc.cfg["arch"] == "arm64" {
			arch = "arm64"
		}
		if p := getString(recipe.Inputs, "parentImage"); !strings.Contains(p, "amazon-linux-2023-"+arch) {
			t.Errorf("recipe parent %q is not Amazon Linux 2023 %s", p, arch)
		}
		if getString(recipe.Inputs, "blockDeviceMappings", 0, "ebs", "encrypted") != "true" {
			t.Errorf("AMI volume not encrypted")
		}
	} else {
		if len(images) != 0 || getString(lt.Inputs, "imageId") != mockStockAMI {
			t.Errorf("stock: %d images, launch template AMI %q, want stock %s", len(images), getString(lt.Inputs, "imageId"), mockStockAMI)
		}
	}
	if getString(lt.Inputs, "blockDeviceMappings", 0, "ebs", "encrypted") != "true" {
		t.Errorf("worker volume not encrypted")
	}
}

func checkNames(t *testing.T, m *mockCloud, _ stackCase, names awsres.Names) {
	web := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "web")
	if got := getString(web.Inputs, "tagSpecifications", 0, "tags", "Name"); got != names.WebInstance {
		t.Errorf("web host Name %q, want %q", got, names.WebInstance)
	}
	if got := getString(m.one(t, "aws:autoscaling/group:Group", "web").Inputs, "name"); got != names.WebGroup {
		t.Errorf("web group %q, want %q", got, names.WebGroup)
	}
	for _, b := range []string{names.InputBucket, names.OutputBucket, names.ArtifactsBucket} {
		found := false
		for _, r := range m.of("aws:s3/bucketV2:BucketV2") {
			found = found || r.ID == b
		}
		if !found {
			t.Errorf("no bucket %s", b)
		}
	}
	lt := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "worker")
	if got, want := getString(lt.Inputs, "tagSpecifications", 0, "tags", "Name"), workerName(names); got != want {
		t.Errorf("worker Name %q, want %q", got, want)
	}
}

func TestCoursePresetNames(t *testing.T) {
	m, err := runStack(t, stackCases["course preset"].cfg, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"web-instance":          getString(m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "web").Inputs, "tagSpecifications", 0, "tags", "Name"),
		"1225754101-req-queue":  getString(m.one(t, "aws:sqs/queue:Queue", "requests").Inputs, "name"),
		"1225754101-resp-queue": getString(m.one(t, "aws:sqs/queue:Queue", "replies").Inputs, "name"),
		"1225754101-in-bucket":  getString(m.one(t, "aws:s3/bucketV2:BucketV2", "input").Inputs, "bucket"),
		"1225754101-out-bucket": getString(m.one(t, "aws:s3/bucketV2:BucketV2", "output").Inputs, "bucket"),
		"app-tier-instance":     getString(m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "worker").Inputs, "tagSpecifications", 0, "tags", "Name"),
	}
	for w, got := range want {
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
}

// TestAgentChangeRollsWorkers shows that a different agent build gives a
// different launch template (so the group refreshes) and web user data (so
// the host is replaced), and that the same build gives the same bytes.
func TestAgentChangeRollsWorkers(t *testing.T) {
	models := fakeModels(t)
	run := func(marker string) (worker, web string) {
		m, err := runStack(t, map[string]string{"image": "stock"}, inputs{build: fakeBuild(marker), models: models})
		if err != nil {
			t.Fatal(err)
		}
		return workerUserDataOf(t, m), webUserDataOf(t, m)
	}
	w1, web1 := run("v1")
	w1again, web1again := run("v1")
	w2, web2 := run("v2")
	if w1 != w1again || web1 != web1again {
		t.Error("the same build gave different user data: every preview would roll the fleet")
	}
	if w1 == w2 || web1 == web2 {
		t.Error("a different build gave the same user data: a code change would not roll out")
	}
	if strings.Contains(w1, "fc_") || strings.Contains(web1, "fc_") {
		t.Error("an API key in the user data")
	}
}

func TestBadConfigFailsTheProgram(t *testing.T) {
	_, err := runStack(t, map[string]string{"maxWorkers": "500", "arch": "sparc"}, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
	if err == nil {
		t.Fatal("program accepted maxWorkers 500 and arch sparc")
	}
	for _, want := range []string{"maxWorkers 500 out of range 1..100", `arch "sparc" must be arm64 or amd64`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestOutputs checks what `pulumi stack output` shows: the service URL
// and how it is reached, queue URLs, bucket names, groups, AMI id, the
// admin key's parameter, the dashboard and alarm topic, the log groups.
func TestOutputs(t *testing.T) {
	t.Setenv("PULUMI_CONFIG", `{"aws:region":"`+mockRegion+`","facecloud:webPort":"8080"}`)
	models := fakeModels(t)
	got := map[string]string{}
	var mu sync.Mutex
	// An output made from a plain value (pulumi.String(...).ToStringOutput())
	// belongs to no resource, so RunErr does not wait for its ApplyT: each
	// apply signals its value instead.
	var applied sync.WaitGroup
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		c, err := loadConfig(ctx)
		if err != nil {
			return err
		}
		a, err := prepareArtifacts(ctx.Context(), c.Arch, t.TempDir(), fakeBuild("v1"), models)
		if err != nil {
			return err
		}
		out, err := deploy(ctx, c, a)
		if err != nil {
			return err
		}
		for k, v := range out {
			applied.Add(1)
			v.ApplyT(func(s string) string {
				defer applied.Done()
				mu.Lock()
				got[k] = s
				mu.Unlock()
				return s
			})
		}
		return nil
	}, pulumi.WithMocks(testProject, testStackName, &mockCloud{}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { applied.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("some stack outputs never resolved; resolved: %v", slices.Sorted(maps.Keys(got)))
	}
	mu.Lock()
	defer mu.Unlock()
	suffix := awsres.BucketSuffix(mockAccount, mockRegion)
	lbName := "facecloud-test-lb"
	want := map[string]string{
		"url":                fmt.Sprintf("http://%s-%d.%s.elb.amazonaws.com:8080/", lbName, rehearsalFNV(lbName)%1000000000, mockRegion),
		"requestQueueUrl":    queueURL("facecloud-test-requests"),
		"responseQueueUrl":   queueURL("facecloud-test-replies"),
		"deadLetterQueueUrl": queueURL("facecloud-test-requests-dlq"),
		"inputBucket":        "facecloud-test-input-" + suffix,
		"outputBucket":       "facecloud-test-output-" + suffix,
		"artifactsBucket":    "facecloud-test-artifacts-" + suffix,
		"workerGroup":        "facecloud-test-workers",
		"webGroup":           "facecloud-test-web",
		"workerAmiId":        mockBuiltAMI,
		"adminKeyParameter":  "/facecloud/facecloud-test/admin-api-key",
		"dashboardUrl":       "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/facecloud-test",
		"alarmTopicArn":      "arn:aws:sns:us-east-1:" + mockAccount + ":facecloud-test-alarms",
		"logGroups":          "/facecloud/facecloud-test/web /facecloud/facecloud-test/scaler /facecloud/facecloud-test/worker",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("output %s = %q, want %q", k, got[k], v)
		}
	}
	if got["loadBalancerDns"] == "" || !strings.HasPrefix(got["url"], "http://"+got["loadBalancerDns"]) {
		t.Errorf("url %q is not on the load balancer %q", got["url"], got["loadBalancerDns"])
	}
	if !strings.HasPrefix(got["endpoint"], "PLAIN HTTP on port 8080") || !strings.Contains(got["endpoint"], "no network may reach it") {
		t.Errorf("endpoint %q does not say plainly that it is plain HTTP and closed", got["endpoint"])
	}
	if !strings.HasPrefix(got["adminKey"], "fc_") {
		t.Errorf("adminKey output %q is not a key", got["adminKey"])
	}
}

// rehearsalFNV is the stand-in cloud's hash of a load balancer's name in
// its DNS name.
func rehearsalFNV(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
