package main

import (
	"fmt"
	"net/netip"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// network is the VPC and what the instances sit in.
type network struct {
	vpc *ec2.Vpc
	// public subnets (two zones) hold the web host, the Image Builder build
	// instance and, unless PrivateWorkers, the workers.
	public []*ec2.Subnet
	// private subnets exist only with PrivateWorkers.
	private []*ec2.Subnet
	// workerSubnets are where the Auto Scaling group launches.
	workerSubnets pulumi.StringArray

	// lbSG holds the load balancer: its listeners open to allowedCidrs.
	// webSG holds the web hosts: the web port open to the load balancer.
	lbSG, webSG, workerSG, builderSG *ec2.SecurityGroup

	// publicRoutes are the internet gateway and the public subnets' route
	// table associations: an instance or Elastic IP in a public subnet
	// reaches nothing (and an Elastic IP cannot be associated) before them.
	publicRoutes []pulumi.Resource
	// workerRoutes are what a worker needs to reach S3, SQS and Auto Scaling
	// from its subnet: the public routes, or for private workers their route
	// table associations and the VPC endpoints.
	workerRoutes []pulumi.Resource
}

// zones is how many availability zones the stack spreads over.
const zones = 2

// interfaceEndpoints are the AWS APIs a private worker calls, reached through
// VPC interface endpoints since private subnets have no route out: SQS for
// jobs, Auto Scaling to retire itself, CloudWatch Logs for the CloudWatch
// agent shipping its logs, and the three Session Manager endpoints that
// replace SSH.
var interfaceEndpoints = []string{"sqs", "autoscaling", "logs", "ssm", "ssmmessages", "ec2messages"}

// subnetCIDR returns the index-th block of the VPC split into 16 equal blocks.
func subnetCIDR(vpc string, index int) (string, error) {
	p, err := netip.ParsePrefix(vpc)
	if err != nil {
		return "", fmt.Errorf("vpc cidr %q: %w", vpc, err)
	}
	bits := p.Bits() + 4
	a := p.Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	base += uint32(index) << (32 - bits)
	addr := netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)})
	return netip.PrefixFrom(addr, bits).String(), nil
}

// subnets makes one public or private subnet per zone, routed by rt:
// public ones take the VPC's first blocks and give instances public
// addresses, private ones take the blocks after them.
func (n *network) subnets(ctx *pulumi.Context, c Config, azs []string, prefix string, public bool, rt *ec2.RouteTable) ([]*ec2.Subnet, []pulumi.Resource, error) {
	kind, first := "public", 0
	if !public {
		kind, first = "private", zones
	}
	var out []*ec2.Subnet
	var assocs []pulumi.Resource
	for i := 0; i < zones; i++ {
		cidr, err := subnetCIDR(c.VpcCidr, first+i)
		if err != nil {
			return nil, nil, err
		}
		name := fmt.Sprintf("%s-%d", kind, i+1)
		sn, err := ec2.NewSubnet(ctx, name, &ec2.SubnetArgs{
			VpcId:               n.vpc.ID(),
			CidrBlock:           pulumi.String(cidr),
			AvailabilityZone:    pulumi.String(azs[i]),
			MapPublicIpOnLaunch: pulumi.Bool(public),
			Tags:                c.tags("Name", prefix+"-"+name),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s subnet %d: %w", kind, i+1, err)
		}
		assoc, err := ec2.NewRouteTableAssociation(ctx, name, &ec2.RouteTableAssociationArgs{
			SubnetId:     sn.ID(),
			RouteTableId: rt.ID(),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s subnet %d route table: %w", kind, i+1, err)
		}
		out = append(out, sn)
		assocs = append(assocs, assoc)
	}
	return out, assocs, nil
}

// newNetwork builds the VPC. numberedNames adds the EC2 API endpoint that
// private workers need to name themselves (course preset).
func newNetwork(ctx *pulumi.Context, c Config, prefix string, numberedNames bool) (*network, error) {
	azs, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available")})
	if err != nil {
		return nil, fmt.Errorf("list availability zones: %w", err)
	}
	if len(azs.Names) < zones {
		return nil, fmt.Errorf("region %s offers %d availability zones; the stack needs %d", c.Region, len(azs.Names), zones)
	}
	n := &network{}
	n.vpc, err = ec2.NewVpc(ctx, "vpc", &ec2.VpcArgs{
		CidrBlock:          pulumi.String(c.VpcCidr),
		EnableDnsHostnames: pulumi.Bool(true), // interface endpoints' private DNS needs both
		EnableDnsSupport:   pulumi.Bool(true),
		Tags:               c.tags("Name", prefix+"-vpc"),
	})
	if err != nil {
		return nil, fmt.Errorf("vpc: %w", err)
	}
	igw, err := ec2.NewInternetGateway(ctx, "igw", &ec2.InternetGatewayArgs{
		VpcId: n.vpc.ID(),
		Tags:  c.tags("Name", prefix+"-igw"),
	})
	if err != nil {
		return nil, fmt.Errorf("internet gateway: %w", err)
	}
	publicRT, err := ec2.NewRouteTable(ctx, "public", &ec2.RouteTableArgs{
		VpcId: n.vpc.ID(),
		Routes: ec2.RouteTableRouteArray{&ec2.RouteTableRouteArgs{
			CidrBlock: pulumi.String("0.0.0.0/0"),
			GatewayId: igw.ID(),
		}},
		Tags: c.tags("Name", prefix+"-public"),
	})
	if err != nil {
		return nil, fmt.Errorf("public route table: %w", err)
	}
	routeTables := pulumi.StringArray{publicRT.ID()}
	var publicAssocs []pulumi.Resource
	if n.public, publicAssocs, err = n.subnets(ctx, c, azs.Names, prefix, true, publicRT); err != nil {
		return nil, err
	}
	n.publicRoutes = append([]pulumi.Resource{igw, publicRT}, publicAssocs...)

	if err := n.securityGroups(ctx, c, prefix); err != nil {
		return nil, err
	}

	if c.PrivateWorkers {
		privateRT, err := ec2.NewRouteTable(ctx, "private", &ec2.RouteTableArgs{
			VpcId: n.vpc.ID(),
			Tags:  c.tags("Name", prefix+"-private"),
		})
		if err != nil {
			return nil, fmt.Errorf("private route table: %w", err)
		}
		routeTables = append(routeTables, privateRT.ID())
		var privateAssocs []pulumi.Resource
		if n.private, privateAssocs, err = n.subnets(ctx, c, azs.Names, prefix, false, privateRT); err != nil {
			return nil, err
		}
		n.workerRoutes = privateAssocs
		for _, sn := range n.private {
			n.workerSubnets = append(n.workerSubnets, sn.ID())
		}
		endpointSG, err := ec2.NewSecurityGroup(ctx, "endpoints", &ec2.SecurityGroupArgs{
			VpcId:       n.vpc.ID(),
			Description: pulumi.String("HTTPS from inside the VPC to the AWS API interface endpoints"),
			Ingress: ec2.SecurityGroupIngressArray{&ec2.SecurityGroupIngressArgs{
				Description: pulumi.String("HTTPS from the VPC"),
				Protocol:    pulumi.String("tcp"),
				FromPort:    pulumi.Int(443),
				ToPort:      pulumi.Int(443),
				CidrBlocks:  pulumi.StringArray{pulumi.String(c.VpcCidr)},
			}},
			Tags: c.tags("Name", prefix+"-endpoints"),
		})
		if err != nil {
			return nil, fmt.Errorf("endpoint security group: %w", err)
		}
		subnets := pulumi.StringArray{n.private[0].ID(), n.private[1].ID()}
		services := interfaceEndpoints
		if numberedNames {
			services = append(append([]string{}, services...), "ec2")
		}
		for _, svc := range services {
			ep, err := ec2.NewVpcEndpoint(ctx, "endpoint-"+svc, &ec2.VpcEndpointArgs{
				VpcId:             n.vpc.ID(),
				ServiceName:       pulumi.Sprintf("com.amazonaws.%s.%s", c.Region, svc),
				VpcEndpointType:   pulumi.String("Interface"),
				PrivateDnsEnabled: pulumi.Bool(true),
				SubnetIds:         subnets,
				SecurityGroupIds:  pulumi.StringArray{endpointSG.ID()},
				Tags:              c.tags("Name", prefix+"-"+svc),
			})
			if err != nil {
				return nil, fmt.Errorf("%s interface endpoint: %w", svc, err)
			}
			n.workerRoutes = append(n.workerRoutes, ep)
		}
	} else {
		for _, sn := range n.public {
			n.workerSubnets = append(n.workerSubnets, sn.ID())
		}
		n.workerRoutes = n.publicRoutes
	}

	// The S3 gateway endpoint is free and keeps artifact, input and output
	// traffic inside the VPC for every subnet, public or private.
	s3ep, err := ec2.NewVpcEndpoint(ctx, "endpoint-s3", &ec2.VpcEndpointArgs{
		VpcId:           n.vpc.ID(),
		ServiceName:     pulumi.Sprintf("com.amazonaws.%s.s3", c.Region),
		VpcEndpointType: pulumi.String("Gateway"),
		RouteTableIds:   routeTables,
		Tags:            c.tags("Name", prefix+"-s3"),
	})
	if err != nil {
		return nil, fmt.Errorf("s3 gateway endpoint: %w", err)
	}
	if c.PrivateWorkers {
		// Private workers have no other way to the artifacts bucket.
		n.workerRoutes = append(n.workerRoutes, s3ep)
	}
	return n, nil
}

// listenerPorts are the ports the load balancer listens on: 443 and 80
// (which redirects) with a domain, else the web port, plain HTTP.
func listenerPorts(c Config) []int {
	if c.Domain != "" {
		return []int{443, 80}
	}
	return []int{c.WebPort}
}

// securityGroups opens the load balancer's listeners to the allowed
// networks (none by default) and the web port of the web hosts to the load
// balancer alone; nothing else is open inbound: there is no SSH anywhere
// (Session Manager instead). Outbound the hosts have HTTPS only, for AWS's
// APIs; the load balancer reaches the web hosts' port inside the VPC.
func (n *network) securityGroups(ctx *pulumi.Context, c Config, prefix string) error {
	httpsOut := ec2.SecurityGroupEgressArray{&ec2.SecurityGroupEgressArgs{
		Description: pulumi.String("HTTPS to AWS APIs"),
		Protocol:    pulumi.String("tcp"),
		FromPort:    pulumi.Int(443),
		ToPort:      pulumi.Int(443),
		CidrBlocks:  pulumi.StringArray{pulumi.String("0.0.0.0/0")},
	}}
	allowed := pulumi.StringArray{}
	for _, s := range c.AllowedCidrs {
		allowed = append(allowed, pulumi.String(s))
	}
	var lbIn ec2.SecurityGroupIngressArray
	if len(allowed) > 0 {
		for _, port := range listenerPorts(c) {
			lbIn = append(lbIn, &ec2.SecurityGroupIngressArgs{
				Description: pulumi.Sprintf("facecloud API, port %d", port),
				Protocol:    pulumi.String("tcp"),
				FromPort:    pulumi.Int(port),
				ToPort:      pulumi.Int(port),
				CidrBlocks:  allowed,
			})
		}
	}
	var err error
	n.lbSG, err = ec2.NewSecurityGroup(ctx, "lb", &ec2.SecurityGroupArgs{
		VpcId:       n.vpc.ID(),
		Description: pulumi.String("facecloud load balancer: its listeners, from allowedCidrs only"),
		Ingress:     lbIn,
		Egress: ec2.SecurityGroupEgressArray{&ec2.SecurityGroupEgressArgs{
			Description: pulumi.String("the web hosts' port, for requests and health checks"),
			Protocol:    pulumi.String("tcp"),
			FromPort:    pulumi.Int(c.WebPort),
			ToPort:      pulumi.Int(c.WebPort),
			CidrBlocks:  pulumi.StringArray{pulumi.String(c.VpcCidr)},
		}},
		Tags: c.tags("Name", prefix+"-lb"),
	})
	if err != nil {
		return fmt.Errorf("load balancer security group: %w", err)
	}
	n.webSG, err = ec2.NewSecurityGroup(ctx, "web", &ec2.SecurityGroupArgs{
		VpcId:       n.vpc.ID(),
		Description: pulumi.String("facecloud web hosts: the service port, from the load balancer only"),
		Ingress: ec2.SecurityGroupIngressArray{&ec2.SecurityGroupIngressArgs{
			Description:    pulumi.String("facecloud web API from the load balancer"),
			Protocol:       pulumi.String("tcp"),
			FromPort:       pulumi.Int(c.WebPort),
			ToPort:         pulumi.Int(c.WebPort),
			SecurityGroups: pulumi.StringArray{n.lbSG.ID()},
		}},
		Egress: httpsOut,
		Tags:   c.tags("Name", prefix+"-web"),
	})
	if err != nil {
		return fmt.Errorf("web security group: %w", err)
	}
	n.workerSG, err = ec2.NewSecurityGroup(ctx, "worker", &ec2.SecurityGroupArgs{
		VpcId:       n.vpc.ID(),
		Description: pulumi.String("facecloud workers: nothing inbound"),
		Egress:      httpsOut,
		Tags:        c.tags("Name", prefix+"-worker"),
	})
	if err != nil {
		return fmt.Errorf("worker security group: %w", err)
	}
	if c.Image != ImageBuilder {
		return nil
	}
	// The Image Builder build instance installs OS updates from the
	// distribution's mirrors, so it may use HTTP as well.
	n.builderSG, err = ec2.NewSecurityGroup(ctx, "builder", &ec2.SecurityGroupArgs{
		VpcId:       n.vpc.ID(),
		Description: pulumi.String("facecloud image build instance: nothing inbound"),
		Egress: append(httpsOut, &ec2.SecurityGroupEgressArgs{
			Description: pulumi.String("HTTP to package mirrors"),
			Protocol:    pulumi.String("tcp"),
			FromPort:    pulumi.Int(80),
			ToPort:      pulumi.Int(80),
			CidrBlocks:  pulumi.StringArray{pulumi.String("0.0.0.0/0")},
		}),
		Tags: c.tags("Name", prefix+"-builder"),
	})
	if err != nil {
		return fmt.Errorf("image builder security group: %w", err)
	}
	return nil
}
