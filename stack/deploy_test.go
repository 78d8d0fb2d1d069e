package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/stack/rehearsal"
)

// TestBucketNamesUniquePerAccount: S3 bucket names are global, so two
// accounts deploying the same stack must not ask for the same names; the
// course preset keeps the course's exact names.
func TestBucketNamesUniquePerAccount(t *testing.T) {
	models := fakeModels(t)
	buckets := func(account string, cfg map[string]string) []string {
		m, err := runStackIn(t, &mockCloud{Cloud: rehearsal.Cloud{Account: account}}, cfg, inputs{build: fakeBuild("v1"), models: models})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range m.of("aws:s3/bucketV2:BucketV2") {
			out = append(out, b.ID)
		}
		return out
	}
	a, b := buckets("111111111111", nil), buckets("222222222222", nil)
	for _, name := range a {
		if slices.Contains(b, name) {
			t.Errorf("bucket %s in both accounts: the second `pulumi up` gets BucketAlreadyExists", name)
		}
		if len(name) > 63 {
			t.Errorf("bucket name %s is longer than S3's 63 characters", name)
		}
	}
	if again := buckets("111111111111", nil); !slices.Equal(a, again) {
		t.Errorf("names changed between runs in one account: %v, then %v", a, again)
	}
	course := map[string]string{"namingPreset": "course", "namePrefix": "1225754101", "image": "stock"}
	if got := buckets("111111111111", course); !slices.Contains(got, "1225754101-in-bucket") || !slices.Contains(got, "1225754101-out-bucket") {
		t.Errorf("course preset buckets %v, want the course's names", got)
	}
}

// TestBootDependencies: an instance must not boot before the grants it
// fetches with and the routes it fetches through exist, nor an Elastic IP
// be associated before the internet gateway.
func TestBootDependencies(t *testing.T) {
	for _, private := range []bool{false, true} {
		t.Run("private="+strconv.FormatBool(private), func(t *testing.T) {
			m, err := runStack(t, map[string]string{"privateWorkers": strconv.FormatBool(private)}, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
			if err != nil {
				t.Fatal(err)
			}
			want := func(r recorded, typ, name string) {
				t.Helper()
				if !r.DependsOnResource(typ, name) {
					t.Errorf("%s %s does not wait for %s %s", r.Type, r.Name, typ, name)
				}
			}
			web := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "web")
			for _, p := range []string{"web-web", "web-scaler", "web-artifacts", "web-logs"} {
				want(web, "aws:iam/rolePolicy:RolePolicy", p)
			}
			want(web, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "web-managed-1")
			webGroup := m.one(t, "aws:autoscaling/group:Group", "web")
			lb := m.one(t, "aws:lb/loadBalancer:LoadBalancer", "web")
			for _, r := range []recorded{webGroup, lb} {
				want(r, "aws:ec2/internetGateway:InternetGateway", "igw")
				want(r, "aws:ec2/routeTableAssociation:RouteTableAssociation", "public-1")
			}
			want(webGroup, "aws:s3/bucketObjectv2:BucketObjectv2", "artifact-facecloud")
			// Workers of this build answer the hosts' own reply queues:
			// they roll out first.
			want(webGroup, "aws:autoscaling/group:Group", "workers")
			lt := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "worker")
			for _, p := range []string{"worker-worker", "worker-artifacts", "worker-health", "worker-logs"} {
				want(lt, "aws:iam/rolePolicy:RolePolicy", p)
			}
			// A host's CloudWatch agent may not create its log group.
			for _, r := range []recorded{web, lt} {
				for _, g := range []string{"agent-web", "agent-scaler", "agent-worker"} {
					want(r, "aws:cloudwatch/logGroup:LogGroup", g)
				}
			}
			g := m.one(t, "aws:autoscaling/group:Group", "workers")
			if private {
				for _, e := range append([]string{"endpoint-s3"}, prefixed("endpoint-", interfaceEndpoints)...) {
					want(g, "aws:ec2/vpcEndpoint:VpcEndpoint", e)
				}
				want(g, "aws:ec2/routeTableAssociation:RouteTableAssociation", "private-1")
			} else {
				want(g, "aws:ec2/internetGateway:InternetGateway", "igw")
			}
			img := m.one(t, "aws:imagebuilder/image:Image", "worker")
			want(img, "aws:iam/rolePolicy:RolePolicy", "builder-artifacts")
		})
	}
}

func prefixed(p string, s []string) []string {
	var out []string
	for _, x := range s {
		out = append(out, p+x)
	}
	return out
}

// TestDestroy: with forceDestroy false `pulumi destroy` leaves the data
// buckets, with everything that guards them, instead of failing on
// BucketNotEmpty; with true it removes them. The artifacts bucket always
// goes. AMI build logs expire and old AMIs are deleted.
func TestDestroy(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run("forceDestroy="+strconv.FormatBool(force), func(t *testing.T) {
			m, err := runStack(t, map[string]string{"forceDestroy": strconv.FormatBool(force)}, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range []string{"aws:s3/bucketV2:BucketV2", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
				"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2", "aws:s3/bucketPolicy:BucketPolicy"} {
				for _, r := range m.of(typ) {
					keep := !force && r.Name != "artifacts"
					if r.RetainOnDelete != keep {
						t.Errorf("%s %s: retainOnDelete %v, want %v", typ, r.Name, r.RetainOnDelete, keep)
					}
					if typ == "aws:s3/bucketV2:BucketV2" {
						if fd, _ := r.Inputs["forceDestroy"].(bool); fd == keep {
							t.Errorf("bucket %s: forceDestroy %v with retainOnDelete %v: destroy would fail with BucketNotEmpty or delete kept data", r.Name, fd, keep)
						}
					}
				}
			}
		})
	}
	m, err := runStack(t, map[string]string{}, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	var logs []recorded
	for _, g := range m.of("aws:cloudwatch/logGroup:LogGroup") {
		if !strings.HasPrefix(g.Name, "agent-") {
			logs = append(logs, g)
		}
	}
	recipe := m.one(t, "aws:imagebuilder/imageRecipe:ImageRecipe", "worker")
	if len(logs) != 1 || getString(logs[0].Inputs, "name") != "/aws/imagebuilder/"+getString(recipe.Inputs, "name") || getNumber(logs[0].Inputs, "retentionInDays") <= 0 {
		t.Errorf("image build log groups %+v: want /aws/imagebuilder/<recipe> with a retention", logs)
	}
	lp := m.one(t, "aws:imagebuilder/lifecyclePolicy:LifecyclePolicy", "worker-images")
	if getString(lp.Inputs, "policyDetails", 0, "action", "type") != "DELETE" || getString(lp.Inputs, "policyDetails", 0, "filter", "type") != "COUNT" ||
		get(lp.Inputs, "policyDetails", 0, "action", "includeResources", "amis") != true || getString(lp.Inputs, "resourceSelection", "tagMap", "Name") != "facecloud-test-worker" {
		t.Errorf("AMI lifecycle policy %v: want old worker AMIs and snapshots deleted", lp.Inputs)
	}
}

// costRow is one line of the cost table in docs/operations.md.
type costRow struct {
	instance, arch string
	perThousand    float64 // 0 when unmeasured
}

// costTable reads the table under "## Cost per request".
func costTable(t *testing.T) []costRow {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []costRow
	in := false
	money := regexp.MustCompile(`^\$([0-9.]+)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "## ") {
			in = l == "## Cost per request"
			continue
		}
		if !in || !strings.HasPrefix(l, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		r := costRow{instance: strings.Trim(cells[0], "`"), arch: cells[1]}
		if m := money.FindStringSubmatch(cells[len(cells)-1]); m != nil {
			r.perThousand, _ = strconv.ParseFloat(m[1], 64)
		}
		rows = append(rows, r)
	}
	if len(rows) < 4 {
		t.Fatalf("docs/operations.md: %d rows in the cost table", len(rows))
	}
	return rows
}

// TestDefaultIsCheapestMeasured: the default worker is the instance type
// with the lowest measured cost per 1,000 requests in docs/operations.md,
// and arm64 (unmeasured) is one config key away.
func TestDefaultIsCheapestMeasured(t *testing.T) {
	var best costRow
	for _, r := range costTable(t) {
		if r.perThousand > 0 && (best.perThousand == 0 || r.perThousand < best.perThousand) {
			best = r
		}
	}
	c, err := readConfig("facecloud", "dev", "us-east-1", &mapSource{values: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkerInstanceType != best.instance || c.Arch != best.arch {
		t.Errorf("default worker %s (%s); the cheapest measured per request is %s (%s)", c.WorkerInstanceType, c.Arch, best.instance, best.arch)
	}
	g, err := readConfig("facecloud", "dev", "us-east-1", &mapSource{values: map[string]string{"arch": "arm64"}})
	if err != nil {
		t.Fatalf("arch arm64 alone: %v", err)
	}
	if a, _ := archOf(g.WorkerInstanceType); a != "arm64" {
		t.Errorf("arch arm64 alone gives worker type %s", g.WorkerInstanceType)
	}
}

// TestDeployDocs: the deploy steps work on a new stack (select --create)
// and tell how to enrol a gallery, without which every answer is unknown.
func TestDeployDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if regexp.MustCompile(`pulumi stack select (dev|prod|course)\b`).MatchString(doc) {
		t.Error("docs/operations.md selects a stack without --create: fails on a new stack")
	}
	for _, want := range []string{"pulumi stack select --create", "facecloud enroll", "outputBucket"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/operations.md does not say %q", want)
		}
	}
	if !strings.Contains(doc, awsres.PresetCourse) {
		t.Error("docs/operations.md does not cover the course preset")
	}
}
