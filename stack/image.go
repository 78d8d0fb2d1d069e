package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
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
	// Image Builder logs each build to /aws/imagebuilder/<recipe name>, a
	// log group it creates without expiry if none exists; declaring it
	// first bounds its retention and lets `pulumi destroy` remove it.
	logs, err := cloudwatch.NewLogGroup(ctx, "image-build", &cloudwatch.LogGroupArgs{
		Name:            pulumi.Sprintf("/aws/imagebuilder/%s-worker-%s", prefix, version),
		RetentionInDays: pulumi.Int(imageLogRetentionDays),
		Tags:            c.tags(),
	})
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("image build log group: %w", err)
	}
	if err := amiLifecycle(ctx, c, prefix); err != nil {
		return pulumi.StringOutput{}, err
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
	}, pulumi.DependsOn(append(append([]pulumi.Resource{logs}, up.models...), r.builderPolicies...)), pulumi.Timeouts(&pulumi.CustomTimeouts{Create: fmt.Sprintf("%dm", int(imageBuildTimeout.Minutes()))}))
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("image: %w", err)
	}
	ami := img.OutputResources.Index(pulumi.Int(0)).Amis().Index(pulumi.Int(0)).Image().Elem()
	return ami, nil
}

// imageLogRetentionDays bounds how long AMI build logs are kept.
const imageLogRetentionDays = 30

// keptImages is how many of the newest worker images (AMI and snapshots)
// Image Builder keeps; every rebuild would otherwise leave the previous AMI
// and its snapshot behind, paid for until removed by hand.
const keptImages = 2

// lifecycleExecutionPolicy lets Image Builder's lifecycle management
// deregister AMIs and delete their snapshots.
const lifecycleExecutionPolicy = "arn:aws:iam::aws:policy/service-role/EC2ImageBuilderLifecycleExecutionPolicy"

// amiLifecycle deletes worker images beyond the newest keptImages: those
// carrying this stack's tags and Name.
func amiLifecycle(ctx *pulumi.Context, c Config, prefix string) error {
	trust, err := policyDocument{Statement: []statement{{
		Effect:    "Allow",
		Principal: map[string]string{"Service": "imagebuilder.amazonaws.com"},
		Action:    []string{"sts:AssumeRole"},
	}}}.JSON()
	if err != nil {
		return err
	}
	role, err := iam.NewRole(ctx, "image-lifecycle", &iam.RoleArgs{
		Name:             pulumi.String(prefix + "-image-lifecycle"),
		AssumeRolePolicy: pulumi.String(trust),
		Description:      pulumi.String("facecloud: Image Builder deletes old worker AMIs"),
		Tags:             c.tags(),
	})
	if err != nil {
		return fmt.Errorf("image lifecycle role: %w", err)
	}
	att, err := iam.NewRolePolicyAttachment(ctx, "image-lifecycle", &iam.RolePolicyAttachmentArgs{
		Role:      role.Name,
		PolicyArn: pulumi.String(lifecycleExecutionPolicy),
	})
	if err != nil {
		return fmt.Errorf("image lifecycle role policy: %w", err)
	}
	selection := pulumi.StringMap{"Name": pulumi.String(prefix + "-worker")}
	for k, v := range c.tags() {
		selection[k] = v
	}
	if _, err := imagebuilder.NewLifecyclePolicy(ctx, "worker-images", &imagebuilder.LifecyclePolicyArgs{
		Name:          pulumi.String(prefix + "-worker-images"),
		Description:   pulumi.String(fmt.Sprintf("facecloud: keep the newest %d worker AMIs, delete older ones and their snapshots", keptImages)),
		ExecutionRole: role.Arn,
		ResourceType:  pulumi.String("AMI_IMAGE"),
		PolicyDetails: imagebuilder.LifecyclePolicyPolicyDetailArray{&imagebuilder.LifecyclePolicyPolicyDetailArgs{
			Action: &imagebuilder.LifecyclePolicyPolicyDetailActionArgs{
				Type: pulumi.String("DELETE"),
				IncludeResources: &imagebuilder.LifecyclePolicyPolicyDetailActionIncludeResourcesArgs{
					Amis: pulumi.Bool(true), Snapshots: pulumi.Bool(true),
				},
			},
			Filter: &imagebuilder.LifecyclePolicyPolicyDetailFilterArgs{
				Type:  pulumi.String("COUNT"),
				Value: pulumi.Int(keptImages),
			},
		}},
		ResourceSelection: &imagebuilder.LifecyclePolicyResourceSelectionArgs{TagMap: selection},
		Tags:              c.tags(),
	}, pulumi.DependsOn([]pulumi.Resource{att})); err != nil {
		return fmt.Errorf("image lifecycle policy: %w", err)
	}
	return nil
}
