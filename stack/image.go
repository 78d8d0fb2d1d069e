package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/imagebuilder"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// stockAMIParameter is the public SSM parameter that names the latest stock
// Amazon Linux 2023 AMI for an architecture.
func stockAMIParameter(arch string) string {
	if arch == "arm64" {
		return "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
	}
	return "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

// stockAMI looks up the latest stock Amazon Linux 2023 AMI. The web host
// always uses it; workers use it with image = stock.
func stockAMI(ctx *pulumi.Context, arch string) (string, error) {
	p, err := ssm.LookupParameter(ctx, &ssm.LookupParameterArgs{Name: stockAMIParameter(arch)})
	if err != nil {
		return "", fmt.Errorf("look up stock Amazon Linux 2023 AMI (%s): %w", stockAMIParameter(arch), err)
	}
	return p.Value, nil
}

// parentImage is Image Builder's managed Amazon Linux 2023 image, newest version.
func parentImage(region, arch string) string {
	a := "x86"
	if arch == "arm64" {
		a = "arm64"
	}
	return fmt.Sprintf("arn:aws:imagebuilder:%s:aws:image/amazon-linux-2023-%s/x.x.x", region, a)
}

// maxComponentData is Image Builder's limit on inline component data.
const maxComponentData = 16000

// imageBuildTimeout bounds one AMI build (build, validate, test, snapshot).
const imageBuildTimeout = 90 * time.Minute

// workerImage bakes the worker AMI with EC2 Image Builder from
// images/worker/component.yaml. Components and recipes are immutable in
// Image Builder, so their names carry a hash of what they contain: a change
// creates new ones (and a new AMI) before the old ones are deleted.
func workerImage(ctx *pulumi.Context, c Config, prefix, bucket string, a *artifacts, net *network, r *roles, up *shipped) (pulumi.StringOutput, error) {
	data, err := render("worker/component.yaml", componentData{Bucket: bucket, Region: c.Region, Manifest: manifest(a.Models...)})
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	if len(data) > maxComponentData {
		return pulumi.StringOutput{}, fmt.Errorf("image component is %d characters, Image Builder allows %d", len(data), maxComponentData)
	}
	parent := parentImage(c.Region, c.Arch)
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\n%s\n%d\n", data, parent, c.RootVolumeGiB)))
	version := hex.EncodeToString(sum[:])[:10]

	comp, err := imagebuilder.NewComponent(ctx, "worker", &imagebuilder.ComponentArgs{
		Name:        pulumi.Sprintf("%s-worker-%s", prefix, version),
		Version:     pulumi.String("1.0.0"),
		Platform:    pulumi.String("Linux"),
		Description: pulumi.String("facecloud worker: service user, boot scripts, model files"),
		Data:        pulumi.String(data),
		Tags:        c.tags(),
	})
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("image component: %w", err)
	}
	recipe, err := imagebuilder.NewImageRecipe(ctx, "worker", &imagebuilder.ImageRecipeArgs{
		Name:        pulumi.Sprintf("%s-worker-%s", prefix, version),
		Version:     pulumi.String("1.0.0"),
		ParentImage: pulumi.String(parent),
		Components: imagebuilder.ImageRecipeComponentArray{
			&imagebuilder.ImageRecipeComponentArgs{ComponentArn: comp.Arn},
		},
		BlockDeviceMappings: imagebuilder.ImageRecipeBlockDeviceMappingArray{&imagebuilder.ImageRecipeBlockDeviceMappingArgs{
			DeviceName: pulumi.String("/dev/xvda"),
			Ebs: &imagebuilder.ImageRecipeBlockDeviceMappingEbsArgs{
				VolumeSize:          pulumi.Int(c.RootVolumeGiB),
				VolumeType:          pulumi.String("gp3"),
				Encrypted:           pulumi.String("true"),
				DeleteOnTermination: pulumi.String("true"),
			},
		}},
		Tags: c.tags(),
	})
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("image recipe: %w", err)
	}
	infra, err := imagebuilder.NewInfrastructureConfiguration(ctx, "worker", &imagebuilder.InfrastructureConfigurationArgs{
		Name:                       pulumi.String(prefix + "-worker"),
		Description:                pulumi.String("facecloud worker AMI build: public subnet, no inbound access"),
		InstanceProfileName:        r.builder.Name,
		InstanceTypes:              pulumi.StringArray{pulumi.String(c.WorkerInstanceType)},
		SubnetId:                   net.public[0].ID(),
		SecurityGroupIds:           pulumi.StringArray{net.builderSG.ID()},
		TerminateInstanceOnFailure: pulumi.Bool(true),
		InstanceMetadataOptions: &imagebuilder.InfrastructureConfigurationInstanceMetadataOptionsArgs{
			HttpTokens:              pulumi.String("required"),
			HttpPutResponseHopLimit: pulumi.Int(1),
		},
		ResourceTags: c.tags(),
		Tags:         c.tags(),
	})
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("image infrastructure: %w", err)
	}
	// The AMI carries the stack's tags, so what `pulumi destroy` leaves of
	// it (Image Builder keeps AMIs and snapshots) can be found and removed.
	dist, err := imagebuilder.NewDistributionConfiguration(ctx, "worker", &imagebuilder.DistributionConfigurationArgs{
		Name:        pulumi.String(prefix + "-worker"),
		Description: pulumi.String("facecloud worker AMI in the stack's region, tagged"),
		Distributions: imagebuilder.DistributionConfigurationDistributionArray{&imagebuilder.DistributionConfigurationDistributionArgs{
			Region: pulumi.String(c.Region),
			AmiDistributionConfiguration: &imagebuilder.DistributionConfigurationDistributionAmiDistributionConfigurationArgs{
				Name:    pulumi.String(prefix + "-worker-{{ imagebuilder:buildDate }}"),
				AmiTags: c.tags("Name", prefix+"-worker"),
			},
		}},
		Tags: c.tags(),
	})
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("image distribution: %w", err)
	}
	img, err := imagebuilder.NewImage(ctx, "worker", &imagebuilder.ImageArgs{
		ImageRecipeArn:                 recipe.Arn,
		InfrastructureConfigurationArn: infra.Arn,
		DistributionConfigurationArn:   dist.Arn,
		EnhancedImageMetadataEnabled:   pulumi.Bool(true),
		ImageTestsConfiguration: &imagebuilder.ImageImageTestsConfigurationArgs{
			ImageTestsEnabled: pulumi.Bool(true),
			TimeoutMinutes:    pulumi.Int(60),
		},
		Tags: c.tags("Name", prefix+"-worker"),
	}, pulumi.DependsOn(up.models), pulumi.Timeouts(&pulumi.CustomTimeouts{Create: fmt.Sprintf("%dm", int(imageBuildTimeout.Minutes()))}))
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("image: %w", err)
	}
	ami := img.OutputResources.Index(pulumi.Int(0)).Amis().Index(pulumi.Int(0)).Image().Elem()
	return ami, nil
}
