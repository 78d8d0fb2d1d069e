package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/acm"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/route53"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
)

// tlsPolicy is the HTTPS listener's security policy: TLS 1.3 and 1.2 only,
// with forward-secret ciphers (AWS's recommended policy for ALBs).
const tlsPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06"

// lbIdleTimeout is how long the load balancer keeps a connection with no
// bytes moving, in seconds: longer than POST / may wait for its answer
// (the web agent's --wait, 10 minutes), so a slow answer is never cut by
// the load balancer before the web agent answers 504 itself.
const lbIdleTimeout = 660

// healthCheckPath is what the target group asks each web host: ready only
// when its queues, stores and its own reply queue answer.
const healthCheckPath = "/readyz"

// deregistrationDelay is how long a leaving web host keeps its open calls,
// in seconds: the web unit's TimeoutStopSec, so a refresh or scale-in
// drains instead of cutting.
const deregistrationDelay = 30

// frontDoor is the load balancer in front of the web group.
type frontDoor struct {
	lb        *lb.LoadBalancer
	targets   *lb.TargetGroup
	listeners []*lb.Listener
	// url is what clients use; secure says whether it is HTTPS.
	url    pulumi.StringOutput
	secure bool
}

// endpointNote is the stack output that says how the endpoint is reached.
func endpointNote(c Config) string {
	if c.Domain != "" {
		return fmt.Sprintf("HTTPS on https://%s/ (TLS 1.2 or 1.3, %s; ACM certificate validated through Route 53); HTTP on port 80 redirects to HTTPS", c.Domain, tlsPolicy)
	}
	who := "no network may reach it until allowedCidrs names one"
	if len(c.AllowedCidrs) > 0 {
		who = "open to " + strings.Join(c.AllowedCidrs, ", ")
	}
	return fmt.Sprintf("PLAIN HTTP on port %d: requests, images and API keys cross the network unencrypted; set domain and hostedZone for HTTPS (%s)", c.WebPort, who)
}

// newFrontDoor makes the Application Load Balancer in the two public
// subnets and its target group, health-checked on /readyz. With a domain
// it gets an ACM certificate validated through a DNS record in the hosted
// zone, an HTTPS listener with TLS 1.2+ only, a listener on 80 that only
// redirects to HTTPS, and an alias record naming it; without one, a plain
// HTTP listener on the web port.
func newFrontDoor(ctx *pulumi.Context, c Config, names awsres.Names, net *network) (*frontDoor, error) {
	var subnets pulumi.StringArray
	for _, sn := range net.public {
		subnets = append(subnets, sn.ID())
	}
	fd := &frontDoor{secure: c.Domain != ""}
	var err error
	fd.lb, err = lb.NewLoadBalancer(ctx, "web", &lb.LoadBalancerArgs{
		Name:                    pulumi.String(names.LoadBalancer),
		LoadBalancerType:        pulumi.String("application"),
		Internal:                pulumi.Bool(false),
		SecurityGroups:          pulumi.StringArray{net.lbSG.ID()},
		Subnets:                 subnets,
		IdleTimeout:             pulumi.Int(lbIdleTimeout),
		DropInvalidHeaderFields: pulumi.Bool(true),
		EnableHttp2:             pulumi.Bool(true),
		Tags:                    c.tags("Name", names.LoadBalancer),
	}, pulumi.DependsOn(net.publicRoutes)) // AWS refuses a load balancer in subnets without an internet gateway
	if err != nil {
		return nil, fmt.Errorf("load balancer: %w", err)
	}
	fd.targets, err = lb.NewTargetGroup(ctx, "web", &lb.TargetGroupArgs{
		Name:                pulumi.String(names.TargetGroup),
		Port:                pulumi.Int(c.WebPort),
		Protocol:            pulumi.String("HTTP"),
		TargetType:          pulumi.String("instance"),
		VpcId:               net.vpc.ID(),
		DeregistrationDelay: pulumi.Int(deregistrationDelay),
		HealthCheck: &lb.TargetGroupHealthCheckArgs{
			Enabled:            pulumi.Bool(true),
			Path:               pulumi.String(healthCheckPath),
			Port:               pulumi.String("traffic-port"),
			Protocol:           pulumi.String("HTTP"),
			Matcher:            pulumi.String("200"),
			Interval:           pulumi.Int(15),
			Timeout:            pulumi.Int(5),
			HealthyThreshold:   pulumi.Int(2),
			UnhealthyThreshold: pulumi.Int(3),
		},
		Tags: c.tags("Name", names.TargetGroup),
	})
	if err != nil {
		return nil, fmt.Errorf("target group: %w", err)
	}
	forward := lb.ListenerDefaultActionArray{&lb.ListenerDefaultActionArgs{
		Type:           pulumi.String("forward"),
		TargetGroupArn: fd.targets.Arn,
	}}
	if c.Domain == "" {
		l, err := lb.NewListener(ctx, "http", &lb.ListenerArgs{
			LoadBalancerArn: fd.lb.Arn,
			Port:            pulumi.Int(c.WebPort),
			Protocol:        pulumi.String("HTTP"),
			DefaultActions:  forward,
			Tags:            c.tags(),
		})
		if err != nil {
			return nil, fmt.Errorf("http listener: %w", err)
		}
		fd.listeners = append(fd.listeners, l)
		fd.url = fd.lb.DnsName.ApplyT(func(dns string) string { return serviceURL(dns, c.WebPort) }).(pulumi.StringOutput)
		return fd, nil
	}

	zone, err := route53.LookupZone(ctx, &route53.LookupZoneArgs{Name: pulumi.StringRef(strings.TrimSuffix(c.HostedZone, ".")), PrivateZone: pulumi.BoolRef(false)})
	if err != nil {
		return nil, fmt.Errorf("hosted zone %s: %w", c.HostedZone, err)
	}
	cert, err := acm.NewCertificate(ctx, "web", &acm.CertificateArgs{
		DomainName:       pulumi.String(c.Domain),
		ValidationMethod: pulumi.String("DNS"),
		Tags:             c.tags("Name", c.Domain),
	})
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	option := cert.DomainValidationOptions.Index(pulumi.Int(0))
	proof, err := route53.NewRecord(ctx, "web-certificate-validation", &route53.RecordArgs{
		ZoneId:         pulumi.String(zone.ZoneId),
		Name:           option.ResourceRecordName().Elem(),
		Type:           option.ResourceRecordType().Elem(),
		Records:        pulumi.StringArray{option.ResourceRecordValue().Elem()},
		Ttl:            pulumi.Int(60),
		AllowOverwrite: pulumi.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("certificate validation record: %w", err)
	}
	valid, err := acm.NewCertificateValidation(ctx, "web", &acm.CertificateValidationArgs{
		CertificateArn:        cert.Arn,
		ValidationRecordFqdns: pulumi.StringArray{proof.Fqdn},
	})
	if err != nil {
		return nil, fmt.Errorf("certificate validation: %w", err)
	}
	https, err := lb.NewListener(ctx, "https", &lb.ListenerArgs{
		LoadBalancerArn: fd.lb.Arn,
		Port:            pulumi.Int(443),
		Protocol:        pulumi.String("HTTPS"),
		SslPolicy:       pulumi.String(tlsPolicy),
		CertificateArn:  valid.CertificateArn,
		DefaultActions:  forward,
		Tags:            c.tags(),
	})
	if err != nil {
		return nil, fmt.Errorf("https listener: %w", err)
	}
	redirect, err := lb.NewListener(ctx, "http", &lb.ListenerArgs{
		LoadBalancerArn: fd.lb.Arn,
		Port:            pulumi.Int(80),
		Protocol:        pulumi.String("HTTP"),
		DefaultActions: lb.ListenerDefaultActionArray{&lb.ListenerDefaultActionArgs{
			Type: pulumi.String("redirect"),
			Redirect: &lb.ListenerDefaultActionRedirectArgs{
				Protocol:   pulumi.String("HTTPS"),
				Port:       pulumi.String(strconv.Itoa(443)),
				StatusCode: pulumi.String("HTTP_301"),
			},
		}},
		Tags: c.tags(),
	})
	if err != nil {
		return nil, fmt.Errorf("http redirect listener: %w", err)
	}
	fd.listeners = append(fd.listeners, https, redirect)
	if _, err := route53.NewRecord(ctx, "web", &route53.RecordArgs{
		ZoneId: pulumi.String(zone.ZoneId),
		Name:   pulumi.String(c.Domain),
		Type:   pulumi.String("A"),
		Aliases: route53.RecordAliasArray{&route53.RecordAliasArgs{
			Name:                 fd.lb.DnsName,
			ZoneId:               fd.lb.ZoneId,
			EvaluateTargetHealth: pulumi.Bool(true),
		}},
	}); err != nil {
		return nil, fmt.Errorf("alias record %s: %w", c.Domain, err)
	}
	fd.url = pulumi.String("https://" + c.Domain + "/").ToStringOutput()
	return fd, nil
}
