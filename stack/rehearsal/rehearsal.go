// Package rehearsal runs the stack's Pulumi program without the Pulumi
// engine or AWS and keeps what it declared: every resource with its inputs
// and options, and the stack's outputs. The stack's own tests check those
// declarations; the deployment rehearsal (e2e, scripts/rehearse.sh) builds
// the data plane in moto and boots hosts from them, exactly as the program
// rendered them.
//
// Cloud stands in for the Pulumi engine and the AWS provider: it answers the
// outputs AWS would compute (queue URLs, ARNs, the built AMI's id, the
// Elastic IP) in the account and region moto uses by default, so the
// rendered user data names queues and ARNs moto really has.
package rehearsal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// EnvCapture names the environment variable that makes the stack program
// write its capture to a file instead of talking to the Pulumi engine.
const EnvCapture = "FACECLOUD_STACK_CAPTURE"

// Defaults of Cloud: moto's default account and region, and documentation
// addresses.
const (
	DefaultAccount  = "123456789012"
	DefaultRegion   = "us-east-1"
	DefaultStockAMI = "ami-0stock000000000"
	DefaultBuiltAMI = "ami-0built000000000"
	DefaultPublicIP = "203.0.113.10"
	// WebInstanceID is the id Cloud gives a lone instance.
	WebInstanceID = "i-0123456789abcdef0"
	// LaunchTemplateID is the id Cloud gives the worker launch template;
	// any other launch template gets LaunchTemplateIDOf its name.
	LaunchTemplateID = "lt-0123456789abcdef0"
	// HostedZoneID is the id of every hosted zone Cloud looks up.
	HostedZoneID = "Z0123456789EXAMPLE"
	// elbZoneID is the hosted zone id of load balancers' DNS names.
	elbZoneID = "Z35SXDOTRQ7X7K"
)

// LaunchTemplateIDOf is the id Cloud gives the launch template name.
func LaunchTemplateIDOf(name string) string {
	if name == "worker" {
		return LaunchTemplateID
	}
	return "lt-0" + fmt.Sprintf("%016x", fnv64(name))
}

// LoadBalancerSuffix is the ARN suffix (CloudWatch's LoadBalancer
// dimension) Cloud gives the load balancer name; TargetGroupSuffix that of
// a target group (the TargetGroup dimension).
func LoadBalancerSuffix(name string) string {
	return fmt.Sprintf("app/%s/%016x", name, fnv64("lb/"+name))
}

// TargetGroupSuffix: see LoadBalancerSuffix.
func TargetGroupSuffix(name string) string {
	return fmt.Sprintf("targetgroup/%s/%016x", name, fnv64("tg/"+name))
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Resource is one resource the program declared.
type Resource struct {
	Type string `json:"type"`
	Name string `json:"name"`
	ID   string `json:"id"`
	// Inputs are the resource's arguments as plain values (maps, lists,
	// strings, float64 numbers, booleans); an asset is its path.
	Inputs         map[string]any `json:"inputs"`
	IgnoreChanges  []string       `json:"ignoreChanges,omitempty"`
	DependsOn      []string       `json:"dependsOn,omitempty"`
	RetainOnDelete bool           `json:"retainOnDelete,omitempty"`
	Protect        bool           `json:"protect,omitempty"`
}

// DependsOnResource reports whether r waits for the resource typ/name.
func (r Resource) DependsOnResource(typ, name string) bool {
	for _, u := range r.DependsOn {
		if strings.HasSuffix(u, "::"+typ+"::"+name) {
			return true
		}
	}
	return false
}

// Cloud stands in for the Pulumi engine and the AWS provider under
// pulumi.WithMocks. The zero value answers for DefaultAccount and
// DefaultRegion.
type Cloud struct {
	Account, Region, StockAMI, BuiltAMI, PublicIP string

	mu        sync.Mutex
	resources []Resource
}

func (c *Cloud) account() string  { return or(c.Account, DefaultAccount) }
func (c *Cloud) region() string   { return or(c.Region, DefaultRegion) }
func (c *Cloud) stockAMI() string { return or(c.StockAMI, DefaultStockAMI) }
func (c *Cloud) builtAMI() string { return or(c.BuiltAMI, DefaultBuiltAMI) }
func (c *Cloud) publicIP() string { return or(c.PublicIP, DefaultPublicIP) }

func or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// NewResource records a declared resource and returns the outputs AWS
// would give it.
func (c *Cloud) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	outs := args.Inputs.Copy()
	id := args.Name + "-id"
	str := func(k string) string {
		if v, ok := args.Inputs[resource.PropertyKey(k)]; ok && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	set := func(k string, v any) { outs[resource.PropertyKey(k)] = resource.NewPropertyValue(v) }
	region, account := c.region(), c.account()
	switch args.TypeToken {
	case "aws:sqs/queue:Queue":
		id = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", region, account, str("name"))
		set("url", id)
		set("arn", fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, account, str("name")))
	case "aws:s3/bucketV2:BucketV2":
		id = str("bucket")
		set("arn", "arn:aws:s3:::"+id)
	case "aws:ec2/launchTemplate:LaunchTemplate":
		id = LaunchTemplateIDOf(args.Name)
		set("latestVersion", 1)
		set("arn", "arn:aws:ec2:"+region+":"+account+":launch-template/"+id)
	case "aws:imagebuilder/image:Image":
		set("outputResources", []any{map[string]any{"amis": []any{map[string]any{"image": c.builtAMI(), "region": region}}}})
		set("arn", "arn:aws:imagebuilder:"+region+":"+account+":image/"+args.Name+"/1.0.0/1")
	case "aws:ec2/eip:Eip":
		set("publicIp", c.publicIP())
	case "aws:ec2/instance:Instance":
		id = WebInstanceID
	case "aws:autoscaling/group:Group":
		id = str("name")
		set("arn", "arn:aws:autoscaling:"+region+":"+account+":autoScalingGroup:uuid:autoScalingGroupName/"+id)
	case "aws:iam/role:Role":
		id = str("name")
		set("arn", "arn:aws:iam::"+account+":role/"+id)
	case "aws:iam/instanceProfile:InstanceProfile":
		id = str("name")
		set("arn", "arn:aws:iam::"+account+":instance-profile/"+id)
	case "aws:cloudwatch/logGroup:LogGroup":
		id = str("name")
		set("arn", "arn:aws:logs:"+region+":"+account+":log-group:"+id)
	case "aws:lb/loadBalancer:LoadBalancer":
		suffix := LoadBalancerSuffix(str("name"))
		id = "arn:aws:elasticloadbalancing:" + region + ":" + account + ":loadbalancer/" + suffix
		set("arn", id)
		set("arnSuffix", suffix)
		set("dnsName", fmt.Sprintf("%s-%d.%s.elb.amazonaws.com", str("name"), fnv64(str("name"))%1000000000, region))
		set("zoneId", elbZoneID)
	case "aws:lb/targetGroup:TargetGroup":
		suffix := TargetGroupSuffix(str("name"))
		id = "arn:aws:elasticloadbalancing:" + region + ":" + account + ":" + suffix
		set("arn", id)
		set("arnSuffix", suffix)
	case "aws:lb/listener:Listener":
		id = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:listener/%s", region, account, args.Name)
		set("arn", id)
	case "aws:acm/certificate:Certificate":
		id = "arn:aws:acm:" + region + ":" + account + ":certificate/" + args.Name
		set("arn", id)
		set("domainValidationOptions", []any{map[string]any{
			"domainName": str("domainName"), "resourceRecordName": "_0123456789abcdef." + str("domainName") + ".",
			"resourceRecordType": "CNAME", "resourceRecordValue": "_fedcba9876543210.acm-validations.aws.",
		}})
	case "aws:acm/certificateValidation:CertificateValidation":
		id = str("certificateArn")
	case "aws:route53/record:Record":
		id = str("name")
		set("fqdn", strings.TrimSuffix(str("name"), "."))
	case "aws:ssm/parameter:Parameter":
		id = str("name")
		set("arn", "arn:aws:ssm:"+region+":"+account+":parameter"+str("name"))
	case "aws:sns/topic:Topic":
		id = "arn:aws:sns:" + region + ":" + account + ":" + str("name")
		set("arn", id)
	case "aws:cloudwatch/metricAlarm:MetricAlarm":
		id = str("name")
		set("arn", "arn:aws:cloudwatch:"+region+":"+account+":alarm:"+id)
	default:
		if n := str("name"); n != "" {
			id = n
		}
		set("arn", fmt.Sprintf("arn:aws:mock:%s:%s:%s/%s", region, account, args.TypeToken, args.Name))
	}
	r := Resource{Type: args.TypeToken, Name: args.Name, ID: id, Inputs: plainMap(args.Inputs)}
	if rpc := args.RegisterRPC; rpc != nil {
		r.IgnoreChanges = rpc.GetIgnoreChanges()
		r.DependsOn = rpc.GetDependencies()
		r.RetainOnDelete = rpc.GetRetainOnDelete()
		r.Protect = rpc.GetProtect()
	}
	c.mu.Lock()
	c.resources = append(c.resources, r)
	c.mu.Unlock()
	return id, outs, nil
}

// Call answers the data-source lookups the program makes: zones, account,
// partition and the stock AMI parameter.
func (c *Cloud) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	region, account := c.region(), c.account()
	switch args.Token {
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		return resource.NewPropertyMapFromMap(map[string]any{
			"names":   []any{region + "a", region + "b", region + "c"},
			"zoneIds": []any{"use1-az1", "use1-az2", "use1-az4"},
			"id":      region,
		}), nil
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.NewPropertyMapFromMap(map[string]any{
			"accountId": account, "arn": "arn:aws:iam::" + account + ":user/ci", "userId": "AIDAEXAMPLE", "id": account,
		}), nil
	case "aws:index/getPartition:getPartition":
		return resource.NewPropertyMapFromMap(map[string]any{
			"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws",
		}), nil
	case "aws:route53/getZone:getZone":
		name := args.Args["name"].StringValue()
		return resource.NewPropertyMapFromMap(map[string]any{
			"name": name, "zoneId": HostedZoneID, "id": HostedZoneID, "privateZone": false,
			"arn": "arn:aws:route53:::hostedzone/" + HostedZoneID, "callerReference": "rehearsal", "comment": "",
			"nameServers": []any{"ns-1.awsdns-00.org"}, "primaryNameServer": "ns-1.awsdns-00.org", "resourceRecordSetCount": 2,
			"tags": map[string]any{}, "vpcId": "", "linkedServiceDescription": "", "linkedServicePrincipal": "",
		}), nil
	case "aws:ssm/getParameter:getParameter":
		name := args.Args["name"].StringValue()
		return resource.NewPropertyMapFromMap(map[string]any{
			"name": name, "value": c.stockAMI(), "type": "String", "arn": "arn:aws:ssm:" + region + "::parameter" + name, "id": name, "version": 1, "insecureValue": c.stockAMI(),
		}), nil
	}
	return nil, fmt.Errorf("stand-in cloud has no answer for %s", args.Token)
}

// Resources returns every recorded resource in declaration order.
func (c *Cloud) Resources() []Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Resource(nil), c.resources...)
}

// Capture is what one run of the program declared and exported.
type Capture struct {
	Project   string         `json:"project"`
	Stack     string         `json:"stack"`
	Account   string         `json:"account"`
	Region    string         `json:"region"`
	Resources []Resource     `json:"resources"`
	Outputs   map[string]any `json:"outputs"`
}

// Run runs program under c as project/stack; the stack's configuration is
// read from the PULUMI_CONFIG environment variable, as the engine passes it.
// outputs, when not nil, are filled in by the program before Run returns.
func Run(project, stack string, c *Cloud, program pulumi.RunFunc, outputs map[string]any) (*Capture, error) {
	err := pulumi.RunErr(program, pulumi.WithMocks(project, stack, c))
	if err != nil {
		return nil, err
	}
	return &Capture{Project: project, Stack: stack, Account: c.account(), Region: c.region(), Resources: c.Resources(), Outputs: outputs}, nil
}

// Write stores the capture as JSON.
func (c *Capture) Write(path string) error {
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	return nil
}

// Read loads a capture written by Write.
func Read(path string) (*Capture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	var c Capture
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("capture %s: %w", path, err)
	}
	return &c, nil
}

// Of returns the resources of type typ, sorted by name.
func (c *Capture) Of(typ string) []Resource {
	return ofType(c.Resources, typ)
}

func ofType(all []Resource, typ string) []Resource {
	var out []Resource
	for _, r := range all {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrNotDeclared is returned by One for a resource the program did not declare.
var ErrNotDeclared = errors.New("not declared")

// One returns the resource of type typ named name.
func (c *Capture) One(typ, name string) (Resource, error) {
	for _, r := range c.Resources {
		if r.Type == typ && r.Name == name {
			return r, nil
		}
	}
	return Resource{}, fmt.Errorf("%s %q: %w", typ, name, ErrNotDeclared)
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

// Get walks nested maps and lists: Get(r.Inputs, "metadataOptions", "httpTokens").
func Get(v any, path ...any) any {
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

// String is Get as a string ("" when absent or not a string).
func String(v any, path ...any) string {
	s, _ := Get(v, path...).(string)
	return s
}

// Number is Get as a number (0 when absent or not a number).
func Number(v any, path ...any) float64 {
	f, _ := Get(v, path...).(float64)
	return f
}
