package asgfleet

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

var instanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

// IMDSInstanceID returns an InstanceIDFunc that asks the instance metadata
// service (IMDSv2: a session token first, then the instance-id) through
// client. The endpoint is the client's: the SDK's default, or
// AWS_EC2_METADATA_SERVICE_ENDPOINT, or imds.Options.Endpoint.
func IMDSInstanceID(client *imds.Client) InstanceIDFunc {
	return func(ctx context.Context) (string, error) {
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
		if err != nil {
			return "", fmt.Errorf("IMDSv2 instance-id: %w", err)
		}
		defer out.Content.Close()
		b, err := io.ReadAll(io.LimitReader(out.Content, 64))
		if err != nil {
			return "", fmt.Errorf("IMDSv2 instance-id: %w", err)
		}
		id := strings.TrimSpace(string(b))
		if !instanceIDRE.MatchString(id) {
			return "", fmt.Errorf("IMDSv2 instance-id %q is not an EC2 instance id", id)
		}
		return id, nil
	}
}

// Open returns the fleet of cfg.Group on clients made from awsCfg. The
// instance id for Retire comes from cfg.InstanceID or else IMDSv2, at
// imdsEndpoint when that is not empty.
func Open(ctx context.Context, awsCfg aws.Config, cfg Config, imdsEndpoint string) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	md := imds.NewFromConfig(awsCfg, func(o *imds.Options) {
		if imdsEndpoint != "" {
			o.Endpoint = imdsEndpoint
			// An address given on purpose is asked even where the
			// environment turns IMDS off for the SDK's own lookups.
			o.ClientEnableState = imds.ClientEnabled
		}
	})
	f, err := New(autoscaling.NewFromConfig(awsCfg), cfg, IMDSInstanceID(md))
	if err != nil {
		return nil, err
	}
	// Prove the group exists now rather than at the first scaling decision.
	if _, err := f.Size(ctx); err != nil {
		return nil, err
	}
	return f, nil
}
