package main

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
	"github.com/facecloud/facecloud/stack/rehearsal"
)

// listenersOf returns the load balancer's listeners by port.
func listenersOf(m *mockCloud) map[int]recorded {
	out := map[int]recorded{}
	for _, l := range m.of("aws:lb/listener:Listener") {
		out[int(getNumber(l.Inputs, "port"))] = l
	}
	return out
}

// TestLoadBalancer: the web tier sits behind an Application Load Balancer
// in the two public subnets, with a target group health-checked on
// /readyz. Without a domain it has one plain HTTP listener on the web port
// and the stack says so; with domain and hostedZone an ACM certificate
// validated through a record in the zone, HTTPS on 443 with a TLS 1.2+
// policy, 80 redirecting to HTTPS, and the domain aliased to it.
func TestLoadBalancer(t *testing.T) {
	tests := map[string]struct {
		cfg    map[string]string
		domain string
		port   int
	}{
		"plain http":        {cfg: map[string]string{"webPort": "8080"}, port: 8080},
		"course preset":     {cfg: map[string]string{"namingPreset": "course", "namePrefix": "1225754101", "webPort": "8000", "webHosts": "1"}, port: 8000},
		"https on a domain": {cfg: map[string]string{"domain": "api.example.com", "hostedZone": "example.com"}, domain: "api.example.com", port: 80},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := runStack(t, tc.cfg, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
			if err != nil {
				t.Fatal(err)
			}
			lb := m.one(t, "aws:lb/loadBalancer:LoadBalancer", "web")
			if getString(lb.Inputs, "loadBalancerType") != "application" || lb.Inputs["internal"] != false {
				t.Errorf("load balancer %v: want an internet-facing application load balancer", lb.Inputs)
			}
			if v, _ := lb.Inputs["dropInvalidHeaderFields"].(bool); !v {
				t.Error("load balancer passes invalid header fields on")
			}
			if getNumber(lb.Inputs, "idleTimeout") <= 600 {
				t.Errorf("idle timeout %v s: POST / may wait 10 minutes for its answer", getNumber(lb.Inputs, "idleTimeout"))
			}
			zones := map[string]bool{}
			for _, sn := range lb.Inputs["subnets"].([]any) {
				for _, s := range m.of("aws:ec2/subnet:Subnet") {
					if s.ID == sn && s.Inputs["mapPublicIpOnLaunch"] == true {
						zones[getString(s.Inputs, "availabilityZone")] = true
					}
				}
			}
			if len(zones) != 2 {
				t.Errorf("load balancer in public subnets of zones %v, want two", zones)
			}
			sg := m.one(t, "aws:ec2/securityGroup:SecurityGroup", "lb")
			if sgs := lb.Inputs["securityGroups"].([]any); len(sgs) != 1 || sgs[0] != sg.ID {
				t.Errorf("load balancer security groups %v, want the lb group", sgs)
			}

			tg := m.one(t, "aws:lb/targetGroup:TargetGroup", "web")
			hc := get(tg.Inputs, "healthCheck")
			if getString(hc, "path") != "/readyz" || getString(hc, "port") != "traffic-port" || getString(hc, "matcher") != "200" || getString(hc, "protocol") != "HTTP" {
				t.Errorf("health check %v, want GET /readyz answering 200 on the web port", hc)
			}
			if int(getNumber(tg.Inputs, "port")) != tc.port || getString(tg.Inputs, "protocol") != "HTTP" || getString(tg.Inputs, "targetType") != "instance" {
				t.Errorf("target group %v, want HTTP instances on port %d", tg.Inputs, tc.port)
			}
			if d := getNumber(tg.Inputs, "deregistrationDelay"); d < 1 || d > 60 {
				t.Errorf("deregistration delay %v s: a leaving host should drain its calls for about the web unit's stop timeout", d)
			}
			tgARN := "arn:aws:elasticloadbalancing:" + mockRegion + ":" + mockAccount + ":" + rehearsal.TargetGroupSuffix(getString(tg.Inputs, "name"))
			lbARN := lb.ID

			ls := listenersOf(m)
			forwards := func(l recorded) bool {
				return getString(l.Inputs, "defaultActions", 0, "type") == "forward" && getString(l.Inputs, "defaultActions", 0, "targetGroupArn") == tgARN && getString(l.Inputs, "loadBalancerArn") == lbARN
			}
			certs := m.of("aws:acm/certificate:Certificate")
			if tc.domain == "" {
				if len(ls) != 1 || !forwards(ls[tc.port]) || getString(ls[tc.port].Inputs, "protocol") != "HTTP" {
					t.Errorf("listeners %v, want one plain HTTP listener on %d forwarding to the web hosts", ls, tc.port)
				}
				if len(certs) != 0 || len(m.of("aws:route53/record:Record")) != 0 {
					t.Errorf("a certificate or DNS record without a domain")
				}
				return
			}
			if len(ls) != 2 {
				t.Fatalf("listeners on %v, want 443 and 80", ls)
			}
			https, http := ls[443], ls[80]
			if getString(https.Inputs, "protocol") != "HTTPS" || !forwards(https) {
				t.Errorf("443 listener %v, want HTTPS forwarding to the web hosts", https.Inputs)
			}
			if p := getString(https.Inputs, "sslPolicy"); !strings.HasPrefix(p, "ELBSecurityPolicy-TLS13-1-2-") {
				t.Errorf("TLS policy %q, want an ELBSecurityPolicy-TLS13-1-2-… policy (TLS 1.2 and 1.3 only)", p)
			}
			if len(certs) != 1 || getString(certs[0].Inputs, "domainName") != tc.domain || getString(certs[0].Inputs, "validationMethod") != "DNS" {
				t.Fatalf("certificates %v, want one for %s validated by DNS", certs, tc.domain)
			}
			certARN := "arn:aws:acm:" + mockRegion + ":" + mockAccount + ":certificate/web"
			// The listener takes the certificate only once it is valid.
			valid := m.one(t, "aws:acm/certificateValidation:CertificateValidation", "web")
			if getString(valid.Inputs, "certificateArn") != certARN || getString(https.Inputs, "certificateArn") != valid.ID {
				t.Errorf("HTTPS listener certificate %q, validation %v: want the validated %s", getString(https.Inputs, "certificateArn"), valid.Inputs, certARN)
			}
			proof := m.one(t, "aws:route53/record:Record", "web-certificate-validation")
			if getString(proof.Inputs, "zoneId") != rehearsal.HostedZoneID || getString(proof.Inputs, "type") != "CNAME" ||
				!strings.HasSuffix(getString(proof.Inputs, "name"), "."+tc.domain+".") || getString(proof.Inputs, "records", 0) != "_fedcba9876543210.acm-validations.aws." {
				t.Errorf("validation record %v, want ACM's CNAME in the hosted zone", proof.Inputs)
			}
			if fq := get(valid.Inputs, "validationRecordFqdns").([]any); len(fq) != 1 || fq[0] != strings.TrimSuffix(getString(proof.Inputs, "name"), ".") {
				t.Errorf("validation waits for %v, want the record %s", fq, getString(proof.Inputs, "name"))
			}
			redirect := get(http.Inputs, "defaultActions", 0)
			if getString(http.Inputs, "protocol") != "HTTP" || getString(redirect, "type") != "redirect" ||
				getString(redirect, "redirect", "protocol") != "HTTPS" || getString(redirect, "redirect", "port") != "443" || getString(redirect, "redirect", "statusCode") != "HTTP_301" {
				t.Errorf("port 80 action %v, want a permanent redirect to HTTPS on 443", redirect)
			}
			alias := m.one(t, "aws:route53/record:Record", "web")
			if getString(alias.Inputs, "name") != tc.domain || getString(alias.Inputs, "type") != "A" || getString(alias.Inputs, "zoneId") != rehearsal.HostedZoneID ||
				!strings.HasPrefix(getString(alias.Inputs, "aliases", 0, "name"), getString(lb.Inputs, "name")+"-") {
				t.Errorf("alias record %v, want %s A → the load balancer", alias.Inputs, tc.domain)
			}
		})
	}
}

// TestWebGroup: the web hosts are an Auto Scaling group of webHosts
// instances in both zones, registered with the target group, replaced when
// the load balancer finds them unhealthy, refreshed launch-before-
// terminate, each with its own reply queue and a scaler standing for
// election; no lone instance or Elastic IP is left.
func TestWebGroup(t *testing.T) {
	tests := map[string]struct {
		cfg   map[string]string
		hosts int
		name  string
	}{
		"default":       {cfg: map[string]string{}, hosts: 2, name: "facecloud-test-web"},
		"three":         {cfg: map[string]string{"webHosts": "3"}, hosts: 3, name: "facecloud-test-web"},
		"course preset": {cfg: map[string]string{"namingPreset": "course", "namePrefix": "1225754101", "webHosts": "1", "webPort": "8000"}, hosts: 1, name: "web-instance"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := runStack(t, tc.cfg, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
			if err != nil {
				t.Fatal(err)
			}
			g := m.one(t, "aws:autoscaling/group:Group", "web")
			for _, k := range []string{"minSize", "maxSize", "desiredCapacity"} {
				if int(getNumber(g.Inputs, k)) != tc.hosts {
					t.Errorf("web group %s %v, want %d", k, getNumber(g.Inputs, k), tc.hosts)
				}
			}
			tg := m.one(t, "aws:lb/targetGroup:TargetGroup", "web")
			if arns := g.Inputs["targetGroupArns"].([]any); len(arns) != 1 || !strings.HasSuffix(arns[0].(string), rehearsal.TargetGroupSuffix(getString(tg.Inputs, "name"))) {
				t.Errorf("web group registers with %v, want the target group", arns)
			}
			if getString(g.Inputs, "healthCheckType") != "ELB" || getNumber(g.Inputs, "healthCheckGracePeriod") < 60 {
				t.Errorf("web group health check %q grace %v: want the load balancer's, so an unhealthy host is replaced", getString(g.Inputs, "healthCheckType"), getNumber(g.Inputs, "healthCheckGracePeriod"))
			}
			zones := map[string]bool{}
			for _, id := range g.Inputs["vpcZoneIdentifiers"].([]any) {
				for _, s := range m.of("aws:ec2/subnet:Subnet") {
					if s.ID == id {
						zones[getString(s.Inputs, "availabilityZone")] = true
					}
				}
			}
			if len(zones) != 2 {
				t.Errorf("web group in zones %v, want two", zones)
			}
			lt := m.one(t, "aws:ec2/launchTemplate:LaunchTemplate", "web")
			if getString(g.Inputs, "launchTemplate", "id") != rehearsal.LaunchTemplateIDOf("web") || getString(g.Inputs, "launchTemplate", "version") != "1" {
				t.Errorf("web group launches %v, want the web launch template's latest version", get(g.Inputs, "launchTemplate"))
			}
			if got := getString(lt.Inputs, "tagSpecifications", 0, "tags", "Name"); got != tc.name {
				t.Errorf("web hosts named %q, want %q", got, tc.name)
			}
			pref := get(g.Inputs, "instanceRefresh", "preferences")
			if getNumber(pref, "minHealthyPercentage") != 100 || getNumber(pref, "maxHealthyPercentage") <= 100 {
				t.Errorf("web refresh %v: want each new host launched before an old one goes", pref)
			}
			metrics := map[string]bool{}
			for _, x := range g.Inputs["enabledMetrics"].([]any) {
				metrics[x.(string)] = true
			}
			if !metrics["GroupInServiceInstances"] || !metrics["GroupDesiredCapacity"] {
				t.Errorf("web group metrics %v", metrics)
			}
			if n := len(m.of("aws:ec2/instance:Instance")) + len(m.of("aws:ec2/eip:Eip")); n != 0 {
				t.Errorf("%d lone instances or Elastic IPs: the web tier is the group", n)
			}
			files := cloudInit(t, webUserDataOf(t, m))
			env := envOf(files["/etc/facecloud/agent.env"])
			web, scaler := files["/etc/systemd/system/facecloud-web.service"], files["/etc/systemd/system/facecloud-scaler.service"]
			if !strings.Contains(web, "--reply-prefix ${FACECLOUD_REPLY_PREFIX}") || strings.Contains(web, "--replies") {
				t.Errorf("web unit does not take a reply queue of its own:\n%s", web)
			}
			if !strings.Contains(scaler, "--lease ${FACECLOUD_LEASE}") || !strings.Contains(scaler, "--reply-prefix ${FACECLOUD_REPLY_PREFIX}") {
				t.Errorf("scaler unit does not stand for election or collect reply queues:\n%s", scaler)
			}
			if env["FACECLOUD_REPLY_TOUCH"] != "1m0s" || env["FACECLOUD_REPLY_EXPIRY"] != "10m0s" {
				t.Errorf("reply touch %q, expiry %q", env["FACECLOUD_REPLY_TOUCH"], env["FACECLOUD_REPLY_EXPIRY"])
			}
		})
	}
}

// TestAdminKey: every stack gets a first admin key, kept in an SSM
// SecureString and, as its hash, in the output bucket's keys/ where the web
// hosts read keys; the record is accepted by the keys package as that key.
// A key made by the program is kept across runs (the parameter ignores a
// new value); one set in the secret config value adminKey is used as is.
func TestAdminKey(t *testing.T) {
	configured := keys.NewKey()
	tests := map[string]struct {
		cfg        map[string]string
		generated  bool
		wantSecret string
	}{
		"made by the stack": {cfg: map[string]string{}, generated: true},
		"from the config":   {cfg: map[string]string{"adminKey": configured}, wantSecret: configured},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := runStack(t, tc.cfg, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
			if err != nil {
				t.Fatal(err)
			}
			names := testNames(t, "default", "facecloud-test")
			p := m.one(t, "aws:ssm/parameter:Parameter", "admin-key")
			key := getString(p.Inputs, "value")
			if getString(p.Inputs, "type") != "SecureString" || getString(p.Inputs, "name") != "/facecloud/facecloud-test/admin-api-key" {
				t.Errorf("parameter %s of type %s, want a SecureString", getString(p.Inputs, "name"), getString(p.Inputs, "type"))
			}
			if tc.wantSecret != "" && key != tc.wantSecret {
				t.Errorf("parameter holds %q, want the configured key", key)
			}
			if slices.Contains(p.IgnoreChanges, "value") != tc.generated {
				t.Errorf("parameter ignores %v; a key the stack made must stay, a configured one must follow the config", p.IgnoreChanges)
			}
			rec := m.one(t, "aws:s3/bucketObjectv2:BucketObjectv2", "admin-key-record")
			if getString(rec.Inputs, "bucket") != names.OutputBucket || !strings.HasPrefix(getString(rec.Inputs, "key"), keys.Prefix) {
				t.Errorf("key record s3://%s/%s, want under %s in the output bucket", getString(rec.Inputs, "bucket"), getString(rec.Inputs, "key"), keys.Prefix)
			}
			body := getString(rec.Inputs, "content")
			if strings.Contains(body, key) || strings.Contains(body, key[len(key)-32:]) {
				t.Fatalf("the record holds the key: %s", body)
			}
			// What a web host would load from the bucket accepts the key.
			st, err := blobstore.OpenURL(context.Background(), &url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Put(context.Background(), getString(rec.Inputs, "key"), []byte(body), "application/json"); err != nil {
				t.Fatal(err)
			}
			ring := keys.NewRing(keys.NewStore(st), nil)
			if _, err := ring.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			k, err := ring.Verify(key)
			if err != nil || !k.Allows(keys.Admin) || k.Name != adminKeyName || k.Created.IsZero() {
				t.Errorf("the stack's record gives %+v, %v; want an admin key with its creation time", k, err)
			}
			// No host has a grant on the parameter.
			for _, pol := range m.of("aws:iam/rolePolicy:RolePolicy") {
				if strings.Contains(getString(pol.Inputs, "policy"), "ssm:GetParameter") {
					t.Errorf("%s may read the admin key's parameter", pol.Name)
				}
			}
			for role, ud := range map[string]string{"web": webUserDataOf(t, m), "worker": workerUserDataOf(t, m)} {
				if strings.Contains(ud, key) || strings.Contains(ud, "fc_") {
					t.Errorf("the %s user data carries an API key", role)
				}
			}
		})
	}
}
