package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/models"
)

// Fixed answers of the mock provider.
const (
	mockAccount   = "123456789012"
	mockRegion    = "us-east-1"
	mockStockAMI  = "ami-0stock000000000"
	mockBuiltAMI  = "ami-0built000000000"
	mockPublicIP  = "203.0.113.10"
	testProject   = "facecloud"
	testStackName = "test"
)

// recorded is one resource the program declared.
type recorded struct {
	Type, Name    string
	ID            string
	Inputs        map[string]any
	IgnoreChanges []string
	DependsOn     []string
}

// mockCloud stands in for the Pulumi engine and the AWS provider: it
// records every resource the program declares with its inputs and options,
// gives each the outputs AWS would compute (queue URLs, ARNs, the built
// AMI's id, the Elastic IP), and answers the data-source lookups the
// program makes (zones, account, partition, stock AMI parameter).
type mockCloud struct {
	mu        sync.Mutex
	resources []recorded
}

func (m *mockCloud) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	outs := args.Inputs.Copy()
	id := args.Name + "-id"
	str := func(k string) string {
		if v, ok := args.Inputs[resource.PropertyKey(k)]; ok && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	set := func(k string, v any) { outs[resource.PropertyKey(k)] = resource.NewPropertyValue(v) }
	switch args.TypeToken {
	case "aws:sqs/queue:Queue":
		id = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", mockRegion, mockAccount, str("name"))
		set("url", id)
		set("arn", fmt.Sprintf("arn:aws:sqs:%s:%s:%s", mockRegion, mockAccount, str("name")))
	case "aws:s3/bucketV2:BucketV2":
		id = str("bucket")
		set("arn", "arn:aws:s3:::"+id)
	case "aws:ec2/launchTemplate:LaunchTemplate":
		id = "lt-0123456789abcdef0"
		set("latestVersion", 1)
		set("arn", "arn:aws:ec2:"+mockRegion+":"+mockAccount+":launch-template/"+id)
	case "aws:imagebuilder/image:Image":
		set("outputResources", []any{map[string]any{"amis": []any{map[string]any{"image": mockBuiltAMI, "region": mockRegion}}}})
		set("arn", "arn:aws:imagebuilder:"+mockRegion+":"+mockAccount+":image/"+args.Name+"/1.0.0/1")
	case "aws:ec2/eip:Eip":
		set("publicIp", mockPublicIP)
	case "aws:ec2/instance:Instance":
		id = "i-0123456789abcdef0"
	case "aws:autoscaling/group:Group":
		id = str("name")
		set("arn", "arn:aws:autoscaling:"+mockRegion+":"+mockAccount+":autoScalingGroup:uuid:autoScalingGroupName/"+id)
	default:
		if n := str("name"); n != "" {
			id = n
		}
		set("arn", fmt.Sprintf("arn:aws:mock:%s:%s:%s/%s", mockRegion, mockAccount, args.TypeToken, args.Name))
	}
	r := recorded{Type: args.TypeToken, Name: args.Name, ID: id, Inputs: plainMap(args.Inputs)}
	if args.RegisterRPC != nil {
		r.IgnoreChanges = args.RegisterRPC.GetIgnoreChanges()
		r.DependsOn = args.RegisterRPC.GetDependencies()
	}
	m.mu.Lock()
	m.resources = append(m.resources, r)
	m.mu.Unlock()
	return id, outs, nil
}

func (m *mockCloud) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	switch args.Token {
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		return resource.NewPropertyMapFromMap(map[string]any{
			"names":   []any{mockRegion + "a", mockRegion + "b", mockRegion + "c"},
			"zoneIds": []any{"use1-az1", "use1-az2", "use1-az4"},
			"id":      mockRegion,
		}), nil
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.NewPropertyMapFromMap(map[string]any{
			"accountId": mockAccount, "arn": "arn:aws:iam::" + mockAccount + ":user/ci", "userId": "AIDAEXAMPLE", "id": mockAccount,
		}), nil
	case "aws:index/getPartition:getPartition":
		return resource.NewPropertyMapFromMap(map[string]any{
			"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws",
		}), nil
	case "aws:ssm/getParameter:getParameter":
		name := args.Args["name"].StringValue()
		return resource.NewPropertyMapFromMap(map[string]any{
			"name": name, "value": mockStockAMI, "type": "String", "arn": "arn:aws:ssm:" + mockRegion + "::parameter" + name, "id": name, "version": 1, "insecureValue": mockStockAMI,
		}), nil
	}
	return nil, fmt.Errorf("mock has no answer for %s", args.Token)
}

// plainMap turns a property map into plain Go values, unwrapping secrets
// and known outputs.
func plainMap(pm resource.PropertyMap) map[string]any {
	out := map[string]any{}
	for k, v := range pm {
		out[string(k)] = plain(v)
	}
	return out
}

func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		return plain(v.OutputValue().Element)
	case v.IsComputed():
		return "<unknown>"
	case v.IsObject():
		return plainMap(v.ObjectValue())
	case v.IsArray():
		var a []any
		for _, e := range v.ArrayValue() {
			a = append(a, plain(e))
		}
		return a
	case v.IsAsset():
		return v.AssetValue().Path
	case v.IsNull():
		return nil
	}
	return v.V
}

// of returns the recorded resources of type t, sorted by name.
func (m *mockCloud) of(t string) []recorded {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []recorded
	for _, r := range m.resources {
		if r.Type == t {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// one returns the single resource of type t named name.
func (m *mockCloud) one(t *testing.T, typ, name string) recorded {
	t.Helper()
	for _, r := range m.of(typ) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %s named %q declared", typ, name)
	return recorded{}
}

// get walks nested maps and lists: get(r.Inputs, "metadataOptions", "httpTokens").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func getString(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func getNumber(v any, path ...any) float64 {
	f, _ := get(v, path...).(float64)
	return f
}

// fakeBuild stands in for `go build` of the agent: it writes a small file
// whose bytes depend on the architecture and on marker, as a real build's
// bytes depend on the source.
func fakeBuild(marker string) agentBuilder {
	return func(_ context.Context, goarch, out string) error {
		return os.WriteFile(out, []byte("facecloud agent stand-in "+goarch+" "+marker+"\n"), 0o755)
	}
}

// fakeModels stands in for the model cache that models.Ensure fills with
// `npm pack`: a directory with every pinned file name, each holding a line
// of text instead of the weights.
func fakeModels(t *testing.T) modelSource {
	dir := t.TempDir()
	for _, f := range models.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stand-in for "+f.Name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return func(context.Context) (string, error) { return dir, nil }
}

// runStack runs the program under the mocks with cfg as the stack's config
// (keys without a namespace get the project's) and returns what it declared.
func runStack(t *testing.T, cfg map[string]string, in inputs) (*mockCloud, error) {
	t.Helper()
	full := map[string]string{"aws:region": mockRegion}
	for k, v := range cfg {
		if !strings.Contains(k, ":") {
			k = testProject + ":" + k
		}
		full[k] = v
	}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(pulumi.EnvConfig, string(b))
	if in.workDir == "" {
		in.workDir = t.TempDir()
	}
	m := &mockCloud{}
	err = pulumi.RunErr(func(ctx *pulumi.Context) error { return program(ctx, in) },
		pulumi.WithMocks(testProject, testStackName, m))
	return m, err
}
