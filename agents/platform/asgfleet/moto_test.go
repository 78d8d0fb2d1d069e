package asgfleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/fleettest"
)

// groupInstances lists the InService instance ids of group in moto.
func groupInstances(t *testing.T, ctx context.Context, cfg aws.Config, group string) []string {
	t.Helper()
	out, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx,
		&autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("describe %s: %v", group, err)
	}
	var ids []string
	for _, in := range out.AutoScalingGroups[0].Instances {
		if in.LifecycleState == "InService" {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids
}

// motoGroup creates a group of 0..max in moto and opens it as the scaler does.
func motoGroup(t *testing.T, max int) (context.Context, aws.Config, *Fleet) {
	t.Helper()
	ep := awstest.Endpoint(t)
	ctx := t.Context()
	cfg := awstest.Config(ep)
	group := awstest.Names(t).WorkerGroup
	awstest.Must(t, awstest.CreateGroup(ctx, cfg, group, max))
	f, err := Open(ctx, cfg, Config{Group: group}, "")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cfg, f
}

func TestMotoDesiredInServiceRetire(t *testing.T) {
	ctx, cfg, f := motoGroup(t, 4)
	group := f.Group()
	if got, err := f.Size(ctx); err != nil || got != (platform.FleetSize{Max: 4}) {
		t.Fatalf("Size of a new group = %+v, %v", got, err)
	}
	if got, err := f.SetDesired(ctx, 10); err != nil || got != 4 {
		t.Fatalf("SetDesired(10) = %d, %v; want the group's max 4", got, err)
	}
	// moto puts instances in service at once; AWS takes a minute or so.
	if got, err := f.Size(ctx); err != nil || got.Desired != 4 || got.Running+got.Pending != 4 {
		t.Fatalf("Size after SetDesired(4) = %+v, %v", got, err)
	}
	ids := groupInstances(t, ctx, cfg, group)
	if len(ids) != 4 {
		t.Fatalf("in service %v, want 4", ids)
	}

	// A worker finds its instance id through IMDSv2 and retires: its
	// instance is terminated and desired capacity drops with it.
	srv, _ := imdsDouble(t, ids[0])
	worker, err := Open(ctx, cfg, Config{Group: group}, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Retire(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Size(ctx); err != nil || got.Desired != 3 || got.Running+got.Pending != 3 {
		t.Fatalf("Size after one retirement = %+v, %v; want desired 3, 3 instances", got, err)
	}
	for _, id := range groupInstances(t, ctx, cfg, group) {
		if id == ids[0] {
			t.Fatalf("retired instance %s still in service", id)
		}
	}

	// The scaler lowers desired to 0: protected busy instances stay.
	if got, err := f.SetDesired(ctx, 0); err != nil || got != 0 {
		t.Fatalf("SetDesired(0) = %d, %v", got, err)
	}
	if got, _ := f.Size(ctx); got.Running != 3 || got.Desired != 0 {
		t.Fatalf("Size after SetDesired(0) = %+v; want 3 still running", got)
	}
	// Then they retire one by one, desired staying at 0.
	for _, id := range ids[1:] {
		w, err := Open(ctx, cfg, Config{Group: group, InstanceID: id}, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Retire(ctx); err != nil {
			t.Fatalf("retire %s: %v", id, err)
		}
	}
	if got, err := f.Size(ctx); err != nil || got != (platform.FleetSize{Max: 4}) {
		t.Fatalf("Size after all retired = %+v, %v", got, err)
	}
}

func TestMotoMissingGroup(t *testing.T) {
	ep := awstest.Endpoint(t)
	_, err := Open(t.Context(), awstest.Config(ep), Config{Group: "no-such-group"}, "")
	if !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Open of a missing group: %v, want ErrNotFound", err)
	}
}

// TestConformance holds an Auto Scaling group (moto's) to the Fleet port's
// contract. A retirement is a worker on one InService instance calling
// Retire.
func TestConformance(t *testing.T) {
	fleettest.Run(t, func(t *testing.T) fleettest.Setup {
		s := conformanceSetup(t, 0)
		s.WithMin = conformanceSetup
		return s
	})
}

// conformanceSetup makes a moto group of 0..3 with a minimum of min. Its
// Retire is a worker on one InService instance calling Retire; its Crash is
// an instance lost without retiring (terminated in the group without
// decrement), checked to be gone from the group, since moto replaces it
// within the same call.
func conformanceSetup(t *testing.T, min int) fleettest.Setup {
	_, cfg, f := motoGroup(t, 3)
	if min > 0 {
		if _, err := autoscaling.NewFromConfig(cfg).UpdateAutoScalingGroup(t.Context(), &autoscaling.UpdateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(f.Group()),
			MinSize:              aws.Int32(int32(min)),
		}); err != nil {
			t.Fatalf("set the group's minimum: %v", err)
		}
	}
	pick := func(ctx context.Context) (string, error) {
		ids := groupInstances(t, ctx, cfg, f.Group())
		if len(ids) == 0 {
			return "", errors.New("no instance in service")
		}
		return ids[0], nil
	}
	return fleettest.Setup{
		Fleet: f,
		Max:   3,
		Retire: func(ctx context.Context) error {
			w, err := New(autoscaling.NewFromConfig(cfg), Config{Group: f.Group()}, pick)
			if err != nil {
				return err
			}
			return w.Retire(ctx)
		},
		Crash: func(ctx context.Context) error {
			id, err := pick(ctx)
			if err != nil {
				return err
			}
			if _, err := autoscaling.NewFromConfig(cfg).TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
				InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(false),
			}); err != nil {
				return err
			}
			if slices.Contains(groupInstances(t, ctx, cfg, f.Group()), id) {
				return fmt.Errorf("lost instance %s is still in service", id)
			}
			return nil
		},
		Settle: 2 * time.Second,
	}
}
