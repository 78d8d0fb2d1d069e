package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
	"gopkg.in/yaml.v3"
)

// mapSource is a configSource over a map of project-less keys; it records
// which keys were asked for.
type mapSource struct {
	values map[string]string
	asked  []string
}

func (s *mapSource) Try(key string) (string, error) {
	s.asked = append(s.asked, key)
	v, ok := s.values[key]
	if !ok {
		return "", config.ErrMissingVar
	}
	return v, nil
}

func (s *mapSource) TryObject(key string, out any) error {
	v, err := s.Try(key)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(v), out)
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		set  map[string]string
		want string // empty: valid
	}{
		"defaults":                 {set: map[string]string{}},
		"no one allowed":           {set: map[string]string{"allowedCidrs": `[]`}},
		"https":                    {set: map[string]string{"domain": "api.example.com", "hostedZone": "example.com."}},
		"course preset":            {set: map[string]string{"namingPreset": "course", "namePrefix": "1225754101"}},
		"max workers 0":            {set: map[string]string{"maxWorkers": "0"}, want: "maxWorkers 0 out of range 1..100"},
		"max workers 101":          {set: map[string]string{"maxWorkers": "101"}, want: "maxWorkers 101 out of range 1..100"},
		"min above max":            {set: map[string]string{"minWorkers": "5", "maxWorkers": "4"}, want: "minWorkers 5 out of range 0..maxWorkers (4)"},
		"warm pool above max":      {set: map[string]string{"warmPoolSize": "30"}, want: "warmPoolSize 30 out of range 0..maxWorkers (20)"},
		"not a number":             {set: map[string]string{"maxWorkers": "ten"}, want: `maxWorkers: "ten" is not a whole number`},
		"not a bool":               {set: map[string]string{"privateWorkers": "yes"}, want: `privateWorkers: "yes" is not true or false`},
		"not a duration":           {set: map[string]string{"idleExit": "5"}, want: `idleExit: "5" is not a duration`},
		"idle exit too short":      {set: map[string]string{"idleExit": "2s"}, want: "idleExit 2s out of range 5s..1h"},
		"gallery refresh 10ms":     {set: map[string]string{"galleryRefresh": "10ms"}, want: "galleryRefresh: gallery refresh 10ms out of range 100ms..10m"},
		"gallery refresh 1h":       {set: map[string]string{"galleryRefresh": "1h"}, want: "galleryRefresh: gallery refresh 1h0m0s out of range 100ms..10m"},
		"bad preset":               {set: map[string]string{"namingPreset": "fancy"}, want: `naming preset "fancy" unknown`},
		"bad prefix":               {set: map[string]string{"namePrefix": "Has_Upper"}, want: "must be 3..42 characters"},
		"vpc too small":            {set: map[string]string{"vpcCidr": "10.0.0.0/24"}, want: "vpcCidr \"10.0.0.0/24\" must be an IPv4 network from /16 to /22"},
		"vpc not a network":        {set: map[string]string{"vpcCidr": "10.0.0.1/16"}, want: "must be an IPv4 network"},
		"arch":                     {set: map[string]string{"arch": "riscv64"}, want: `arch "riscv64" must be arm64 or amd64`},
		"instance type arch":       {set: map[string]string{"workerInstanceType": "c7g.large"}, want: `workerInstanceType "c7g.large" is arm64 but arch is amd64`},
		"arm64 alone":              {set: map[string]string{"arch": "arm64"}},
		"instance type nonsense":   {set: map[string]string{"webInstanceType": "big"}, want: `webInstanceType "big" is not an EC2 instance type`},
		"amd64 types":              {set: map[string]string{"arch": "amd64", "workerInstanceType": "c7i.large", "webInstanceType": "t3.small"}},
		"graviton network variant": {set: map[string]string{"arch": "arm64", "workerInstanceType": "c6gn.large"}},
		"image":                    {set: map[string]string{"image": "custom"}, want: `image "custom" must be "builder" or "stock"`},
		"ssh port":                 {set: map[string]string{"webPort": "22"}, want: "webPort 22 out of range 1..65535 (22 is refused"},
		"cidr":                     {set: map[string]string{"allowedCidrs": `["everyone"]`}, want: `allowedCidrs entry "everyone" is not an IPv4 network`},
		"cidrs not a list":         {set: map[string]string{"allowedCidrs": `"0.0.0.0/0"`}, want: "allowedCidrs: not a list of strings"},
		"too many cidrs":           {set: map[string]string{"allowedCidrs": `["10.0.0.0/24","10.0.1.0/24","10.0.2.0/24","10.0.3.0/24","10.0.4.0/24","10.0.5.0/24","10.0.6.0/24","10.0.7.0/24","10.0.8.0/24","10.0.9.0/24","10.0.10.0/24","10.0.11.0/24","10.0.12.0/24","10.0.13.0/24","10.0.14.0/24","10.0.15.0/24","10.0.16.0/24","10.0.17.0/24","10.0.18.0/24","10.0.19.0/24","10.0.20.0/24"]`}, want: "allowedCidrs has 21 entries; allowed 0..20"},
		"web hosts":                {set: map[string]string{"webHosts": "0"}, want: "webHosts 0 out of range 1..10"},
		"domain without zone":      {set: map[string]string{"domain": "api.example.com"}, want: `domain "api.example.com" and hostedZone "": set both`},
		"domain outside zone":      {set: map[string]string{"domain": "api.example.org", "hostedZone": "example.com"}, want: `domain "api.example.org" is not in hostedZone "example.com"`},
		"domain not a name":        {set: map[string]string{"domain": "api_example", "hostedZone": "example.com"}, want: `domain "api_example" is not a DNS name`},
		"reply expiry":             {set: map[string]string{"replyTouch": "1m", "replyExpiry": "2m"}, want: "replyExpiry 2m0s out of range 5s..24h and at least 3 × replyTouch (3m0s)"},
		"log retention":            {set: map[string]string{"logRetentionDays": "10"}, want: "logRetentionDays 10 is not one CloudWatch Logs offers"},
		"alarm email":              {set: map[string]string{"alarmEmail": "ops"}, want: `alarmEmail "ops" is not an e-mail address`},
		"alarm queue age":          {set: map[string]string{"alarmQueueAge": "10s"}, want: "alarmQueueAge 10s out of range 1m..24h"},
		"alarm 5xx":                {set: map[string]string{"alarm5xxPercent": "0"}, want: "alarm5xxPercent 0 out of range 1..100"},
		"retention":                {set: map[string]string{"outputRetentionDays": "0"}, want: "outputRetentionDays 0 out of range 1..3650"},
		"root volume":              {set: map[string]string{"rootVolumeGiB": "4"}, want: "rootVolumeGiB 4 out of range 8..100"},
		"log level":                {set: map[string]string{"logLevel": "trace"}, want: `logLevel "trace" must be info or debug`},
		"heartbeat too slow":       {set: map[string]string{"workerHeartbeat": "20s"}, want: "heartbeat 20s must be above 0 and at most half the visibility timeout 30s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := readConfig("facecloud", "dev", "us-east-1", &mapSource{values: tc.set})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				if c.MaxWorkers < 1 {
					t.Errorf("max workers %d", c.MaxWorkers)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %v", tc.set)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateNeedsRegion(t *testing.T) {
	_, err := readConfig("facecloud", "dev", "", &mapSource{})
	if err == nil || !strings.Contains(err.Error(), "aws:region is not set") {
		t.Fatalf("error %v, want a missing-region message", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := readConfig("facecloud", "dev", "us-east-1", &mapSource{values: map[string]string{"maxWorkers": "0", "webPort": "0", "logLevel": "x"}})
	if err == nil {
		t.Fatal("accepted three bad keys")
	}
	for _, k := range []string{"maxWorkers", "webPort", "logLevel"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not mention %s: %v", k, err)
		}
	}
}

// stackFile is a Pulumi.<stack>.yaml.
type stackFile struct {
	Config map[string]any `yaml:"config"`
}

// readStackFile returns a stack file's project keys as the engine passes
// them: strings as they are, lists as JSON.
func readStackFile(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	var f stackFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s is not YAML: %v", name, err)
	}
	out := map[string]string{}
	for k, v := range f.Config {
		ns, key, ok := strings.Cut(k, ":")
		if !ok {
			t.Fatalf("%s: key %q has no namespace", name, k)
		}
		if ns == "aws" {
			out[k] = v.(string)
			continue
		}
		if ns != "facecloud" {
			t.Errorf("%s: key %q is not in the project's namespace", name, k)
		}
		switch v := v.(type) {
		case string:
			out[key] = v
		default:
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			out[key] = string(j)
		}
	}
	return out
}

// TestStackFiles checks that the dev stack and the example of a second
// environment set every key the program reads, and are valid.
func TestStackFiles(t *testing.T) {
	all := &mapSource{}
	if _, err := readConfig("facecloud", "x", "us-east-1", all); err != nil {
		t.Fatal(err)
	}
	keys := slices.Compact(slices.Sorted(slices.Values(all.asked)))
	for _, name := range []string{"Pulumi.dev.yaml", "Pulumi.prod.yaml.example", "Pulumi.course.yaml.example"} {
		t.Run(name, func(t *testing.T) {
			values := readStackFile(t, name)
			region := values["aws:region"]
			delete(values, "aws:region")
			var set []string
			for k := range values {
				set = append(set, k)
			}
			sort.Strings(set)
			if !slices.Equal(set, keys) {
				t.Errorf("%s sets %v,\nthe program reads %v", name, set, keys)
			}
			c, err := readConfig("facecloud", "dev", region, &mapSource{values: values})
			if err != nil {
				t.Fatalf("%s is not valid: %v", name, err)
			}
			if c.IdleExit < time.Second {
				t.Errorf("idle exit %s", c.IdleExit)
			}
		})
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/operations.md does not explain `%s`", k)
		}
	}
}

func TestArchOf(t *testing.T) {
	tests := map[string]struct {
		arch string
		ok   bool
	}{
		"c7g.large": {"arm64", true}, "t4g.small": {"arm64", true}, "c6gn.xlarge": {"arm64", true},
		"m8g.2xlarge": {"arm64", true}, "c7i.large": {"amd64", true}, "t3.micro": {"amd64", true},
		"g5.xlarge": {"amd64", true}, "g5g.xlarge": {"arm64", true}, "m7i-flex.large": {"amd64", true},
		"large": {"", false}, "": {"", false},
	}
	for typ, tc := range tests {
		t.Run(typ, func(t *testing.T) {
			a, ok := archOf(typ)
			if a != tc.arch || ok != tc.ok {
				t.Errorf("archOf(%q) = %q, %v; want %q, %v", typ, a, ok, tc.arch, tc.ok)
			}
		})
	}
}

func TestSubnetCIDR(t *testing.T) {
	tests := map[string]struct {
		vpc   string
		index int
		want  string
	}{
		"first /20":  {"10.20.0.0/16", 0, "10.20.0.0/20"},
		"second /20": {"10.20.0.0/16", 1, "10.20.16.0/20"},
		"fourth /20": {"10.20.0.0/16", 3, "10.20.48.0/20"},
		"small vpc":  {"192.168.4.0/22", 2, "192.168.4.128/26"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := subnetCIDR(tc.vpc, tc.index)
			if err != nil || got != tc.want {
				t.Errorf("subnetCIDR(%s, %d) = %s, %v; want %s", tc.vpc, tc.index, got, err, tc.want)
			}
		})
	}
	if _, err := subnetCIDR("nonsense", 0); err == nil {
		t.Error("accepted a non-CIDR")
	}
}
