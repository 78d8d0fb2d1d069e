// Package asgfleet is the platform.Fleet adapter for an EC2 Auto Scaling
// group, and the platform.Retirer of a worker running on one of its
// instances.
//
// The group launches instances when its desired capacity rises. When it
// falls, the group would terminate instances of its own choice, which could
// stop a busy worker; so the group protects new instances from scale-in
// (awsres.ProtectFromScaleIn, as the stack creates it) and workers leave by
// themselves when idle (Retire: TerminateInstanceInAutoScalingGroup). A
// group whose instances are not protected is still safe: SetDesired then
// never lowers desired capacity below its unprotected live instances.
package asgfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"

	"github.com/facecloud/facecloud/agents/platform"
)

// API is the part of the Auto Scaling client the adapter calls, so its logic
// can be tested without a server; *autoscaling.Client satisfies it.
type API interface {
	DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	SetDesiredCapacity(ctx context.Context, in *autoscaling.SetDesiredCapacityInput, opts ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error)
	TerminateInstanceInAutoScalingGroup(ctx context.Context, in *autoscaling.TerminateInstanceInAutoScalingGroupInput, opts ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error)
}

// InstanceIDFunc returns the EC2 instance id of the machine it runs on.
type InstanceIDFunc func(ctx context.Context) (string, error)

// Config configures a Fleet.
type Config struct {
	// Group is the Auto Scaling group's name.
	Group string
	// Cooldown is the least time between two changes of desired capacity
	// made by this fleet; a change asked for sooner is not made (SetDesired
	// returns the unchanged count) and can be asked for again. 0 disables it:
	// the scaler's policy has cooldowns of its own.
	Cooldown time.Duration
	// InstanceID is the instance Retire terminates; when empty Retire asks
	// the InstanceIDFunc (IMDSv2) once.
	InstanceID string
	// Log receives one line per change of desired capacity; nil discards.
	Log *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

var groupName = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// MaxCooldown is the longest Cooldown allowed.
const MaxCooldown = time.Hour

// Validate states the allowed ranges.
func (c Config) Validate() error {
	if !groupName.MatchString(c.Group) {
		return fmt.Errorf("auto scaling group name %q must be 1..255 printable ASCII characters without spaces", c.Group)
	}
	if c.Cooldown < 0 || c.Cooldown > MaxCooldown {
		return fmt.Errorf("cooldown %s out of range 0..1h", c.Cooldown)
	}
	return nil
}

// Fleet is one Auto Scaling group.
type Fleet struct {
	api        API
	cfg        Config
	instanceID InstanceIDFunc

	mu         sync.Mutex
	lastChange time.Time
	id         string
}

var (
	_ platform.Fleet   = (*Fleet)(nil)
	_ platform.Retirer = (*Fleet)(nil)
)

// New returns the fleet of cfg.Group. instanceID is asked by Retire when
// cfg.InstanceID is empty; it may be nil on hosts that never retire (the
// scaler's).
func New(api API, cfg Config, instanceID InstanceIDFunc) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Fleet{api: api, cfg: cfg, instanceID: instanceID, id: cfg.InstanceID}, nil
}

// Group is the Auto Scaling group's name.
func (f *Fleet) Group() string { return f.cfg.Group }

type groupState struct {
	platform.FleetSize
	Min int
	// Unprotected counts live (running or pending) instances the group may
	// terminate itself when desired capacity falls.
	Unprotected int
}

func (f *Fleet) describe(ctx context.Context) (groupState, error) {
	out, err := f.api.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{
		AutoScalingGroupNames: []string{f.cfg.Group},
	})
	if err != nil {
		return groupState{}, fmt.Errorf("describe auto scaling group %s: %w", f.cfg.Group, err)
	}
	for _, g := range out.AutoScalingGroups {
		if aws.ToString(g.AutoScalingGroupName) != f.cfg.Group {
			continue
		}
		s := groupState{
			FleetSize: platform.FleetSize{Desired: int(aws.ToInt32(g.DesiredCapacity)), Max: int(aws.ToInt32(g.MaxSize))},
			Min:       int(aws.ToInt32(g.MinSize)),
		}
		for _, in := range g.Instances {
			switch in.LifecycleState {
			case types.LifecycleStateInService:
				s.Running++
			case types.LifecycleStatePending, types.LifecycleStatePendingWait, types.LifecycleStatePendingProceed:
				s.Pending++
			default:
				continue
			}
			if !aws.ToBool(in.ProtectedFromScaleIn) {
				s.Unprotected++
			}
		}
		return s, nil
	}
	return groupState{}, fmt.Errorf("auto scaling group %s: %w", f.cfg.Group, platform.ErrNotFound)
}

// Size reports the group's desired capacity, its InService instances
// (Running), its launching ones (Pending) and its maximum size.
func (f *Fleet) Size(ctx context.Context) (platform.FleetSize, error) {
	s, err := f.describe(ctx)
	return s.FleetSize, err
}

// SetDesired sets the group's desired capacity to n clamped to the group's
// [MinSize, MaxSize], and never below its live instances that are not
// protected from scale-in, so the group terminates no busy worker. Within
// Cooldown of the last change it changes nothing. It returns the desired
// capacity the group has afterwards.
func (f *Fleet) SetDesired(ctx context.Context, n int) (int, error) {
	s, err := f.describe(ctx)
	if err != nil {
		return 0, err
	}
	target := max(n, s.Min, s.Unprotected)
	target = min(target, s.Max)
	if target == s.Desired {
		return s.Desired, nil
	}
	f.mu.Lock()
	now := f.cfg.Now()
	if f.cfg.Cooldown > 0 && !f.lastChange.IsZero() && now.Sub(f.lastChange) < f.cfg.Cooldown {
		f.mu.Unlock()
		return s.Desired, nil
	}
	f.lastChange = now
	f.mu.Unlock()
	_, err = f.api.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String(f.cfg.Group),
		DesiredCapacity:      aws.Int32(int32(target)),
		// The group's own cooldown belongs to simple scaling policies; the
		// scaler decides the timing.
		HonorCooldown: aws.Bool(false),
	})
	if err != nil {
		f.mu.Lock()
		f.lastChange = time.Time{}
		f.mu.Unlock()
		return s.Desired, fmt.Errorf("set desired capacity of %s to %d: %w", f.cfg.Group, target, err)
	}
	f.cfg.Log.InfoContext(ctx, "desired capacity set", "group", f.cfg.Group, "from", s.Desired, "to", target, "asked", n,
		"running", s.Running, "pending", s.Pending, "max", s.Max)
	return target, nil
}

// Retire terminates this instance through the group so that it is not
// replaced: with ShouldDecrementDesiredCapacity when desired capacity still
// counts it (desired ≥ live instances), without when the scaler has already
// lowered desired capacity below the live instances (decrementing then
// would take desired below what is wanted, or below the group's minimum).
func (f *Fleet) Retire(ctx context.Context) error {
	id, err := f.InstanceID(ctx)
	if err != nil {
		return err
	}
	s, err := f.describe(ctx)
	if err != nil {
		return err
	}
	// While desired counts this instance, leaving lowers desired with it;
	// at the group's minimum that would only have Auto Scaling launch a
	// replacement, so the worker is told to stay. An instance beyond desired
	// (the scaler lowered it while the worker was busy) just leaves.
	counted := s.Desired >= s.Running+s.Pending
	if counted && s.Desired <= s.Min {
		return fmt.Errorf("retire %s from %s: %w: desired %d is the group's minimum", id, f.cfg.Group, platform.ErrRetireRefused, s.Desired)
	}
	decrement := counted
	_, err = f.api.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId:                     aws.String(id),
		ShouldDecrementDesiredCapacity: aws.Bool(decrement),
	})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(strings.ToLower(api.ErrorMessage()), "not part of") {
			return fmt.Errorf("retire %s from %s: %w: %w", id, f.cfg.Group, platform.ErrNotFound, err)
		}
		return fmt.Errorf("retire %s from %s: %w", id, f.cfg.Group, err)
	}
	f.cfg.Log.InfoContext(ctx, "instance retired", "group", f.cfg.Group, "instance_id", id, "decrement", decrement, "desired", s.Desired)
	return nil
}

// InstanceID returns the instance Retire terminates: Config.InstanceID, or
// what the InstanceIDFunc says (asked once, then remembered).
func (f *Fleet) InstanceID(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id != "" {
		return f.id, nil
	}
	if f.instanceID == nil {
		return "", errors.New("no instance id: give --instance-id or run on EC2 with IMDS reachable")
	}
	id, err := f.instanceID(ctx)
	if err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	f.id = id
	return id, nil
}

// Close does nothing: instances belong to the group, not to this process.
func (f *Fleet) Close() error { return nil }
