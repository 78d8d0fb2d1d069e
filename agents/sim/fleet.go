package sim

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/platform/asgfleet"
)

// Instance states.
const (
	statePending    = iota // launched or started, not running yet
	stateBooting           // running (billed), worker not taking jobs yet
	stateReady             // worker taking jobs
	stateWarming           // warm-pool instance preparing (running, billed)
	stateStopped           // warm-pool instance stopped (volume only)
	stateTerminated        // gone
)

// minBilled is EC2's minimum charge each time a Linux instance starts.
const minBilled = 60 * time.Second

// instance is one EC2 instance and its bills.
type instance struct {
	id      string
	state   int
	inGroup bool // counted by the Auto Scaling group's desired capacity
	pool    bool // in the warm pool
	warm    bool // started from the warm pool
	gen     int  // bumps on every state change, so stale boot events do nothing

	running     bool
	runSince    time.Duration
	billed      time.Duration // with the 60 s minimum per start
	ipv4        time.Duration
	volumeSince time.Duration
	volume      time.Duration

	w *workerAgent
}

func (s *sim) newInstance() *instance {
	s.nextID++
	inst := &instance{id: fmt.Sprintf("i-%017x", s.nextID), volumeSince: s.now}
	s.fleet = append(s.fleet, inst)
	return inst
}

func (s *sim) startBilling(inst *instance) {
	inst.running, inst.runSince = true, s.now
}

func (s *sim) stopBilling(inst *instance) {
	if !inst.running {
		return
	}
	d := s.now - inst.runSince
	inst.billed += max(d, minBilled)
	if s.cfg.Params.Instance.PublicIPv4.Value {
		inst.ipv4 += d
	}
	inst.running = false
}

// launchCold runs a new instance from the image into service.
func (s *sim) launchCold(inst *instance) {
	inst.state = statePending
	inst.gen++
	gen := inst.gen
	b := s.cfg.Params.Boot
	s.after(s.boot(b.ColdToRunning), func() {
		if inst.gen != gen {
			return
		}
		inst.state = stateBooting
		s.startBilling(inst)
		s.after(s.boot(b.OSBoot)+s.boot(b.AgentFetch), func() {
			if inst.gen != gen {
				return
			}
			s.calls.add(s3GetAgent, 1, 0)
			s.after(s.boot(b.AgentStart), func() {
				if inst.gen == gen {
					s.workerReady(inst)
				}
			})
		})
	})
}

// startWarm starts a stopped warm-pool instance into service: the agent is
// already on its volume.
func (s *sim) startWarm(inst *instance) {
	inst.state = statePending
	inst.pool, inst.warm = false, true
	inst.gen++
	gen := inst.gen
	b := s.cfg.Params.Boot
	s.after(s.boot(b.WarmToRunning), func() {
		if inst.gen != gen {
			return
		}
		inst.state = stateBooting
		s.startBilling(inst)
		s.after(s.boot(b.OSBoot)+s.boot(b.AgentStart), func() {
			if inst.gen == gen {
				s.workerReady(inst)
			}
		})
	})
}

// prepareWarm launches an instance into the warm pool: it boots, fetches
// the agent, and is stopped (images/scripts/worker-gate.sh keeps its worker
// from taking jobs meanwhile).
func (s *sim) prepareWarm(inst *instance) {
	inst.state = stateWarming
	inst.pool = true
	inst.gen++
	gen := inst.gen
	b := s.cfg.Params.Boot
	s.after(s.boot(b.ColdToRunning), func() {
		if inst.gen != gen {
			return
		}
		s.startBilling(inst)
		s.after(s.boot(b.OSBoot)+s.boot(b.AgentFetch), func() {
			if inst.gen != gen {
				return
			}
			s.calls.add(s3GetAgent, 1, 0)
			s.stopBilling(inst)
			inst.state = stateStopped
			inst.gen++
		})
	})
}

// startReady puts a worker in service at once (a fleet already up).
func (s *sim) startReady(inst *instance) {
	inst.state = stateBooting
	s.startBilling(inst)
	s.workerReady(inst)
}

func (s *sim) workerReady(inst *instance) {
	inst.state = stateReady
	s.calls.add(s3ListGallery, 1, 0)
	s.calls.add(s3GetGallery, int64(s.cfg.Params.Gallery.Entries.Value), 0)
	s.calls.add(sqsOpen, 2, 2) // sqsqueue.New on the request and reply queues
	inst.w = newWorker(s, inst)
	inst.w.start()
}

// terminate ends inst; a worker on it dies with its jobs.
func (s *sim) terminate(inst *instance) {
	if inst.state == stateTerminated {
		return
	}
	s.stopBilling(inst)
	inst.volume += s.now - inst.volumeSince
	inst.state = stateTerminated
	inst.gen++
	if inst.w != nil {
		inst.w.die()
	}
}

// group is a simulated EC2 Auto Scaling group. It answers the calls of the
// real asgfleet adapter (it satisfies asgfleet.API): desired capacity within
// MinSize..MaxSize, launches (from the warm pool first) after the group's
// reaction time, scale-in protection, and terminate-with-decrement.
type group struct {
	s                    *sim
	name                 string
	min, max, desired    int
	members              []*instance
	pool                 []*instance
	reconciling          bool
	launches, warmStarts int
	poolLaunches         int
}

var _ asgfleet.API = (*group)(nil)

func newGroup(s *sim) *group {
	return &group{s: s, name: "facecloud-sim-workers", min: s.cfg.Scaler.Policy.Min, max: s.cfg.Scaler.Policy.Max}
}

// poolTarget is the warm pool's size for the current desired capacity: at
// least its minimum, else max prepared capacity minus desired.
func (g *group) poolTarget() int {
	if g.s.cfg.WarmPool == 0 {
		return 0
	}
	prepared := g.s.cfg.WarmPoolMaxPrepared
	if prepared == 0 {
		prepared = g.max
	}
	return max(g.s.cfg.WarmPool, prepared-g.desired, 0)
}

func (g *group) DescribeAutoScalingGroups(_ context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	if !slices.Contains(in.AutoScalingGroupNames, g.name) {
		return &autoscaling.DescribeAutoScalingGroupsOutput{}, nil
	}
	out := types.AutoScalingGroup{
		AutoScalingGroupName: aws.String(g.name),
		DesiredCapacity:      aws.Int32(int32(g.desired)),
		MinSize:              aws.Int32(int32(g.min)),
		MaxSize:              aws.Int32(int32(g.max)),
	}
	for _, inst := range g.members {
		state := types.LifecycleStateInService
		if inst.state == statePending {
			state = types.LifecycleStatePending
		}
		out.Instances = append(out.Instances, types.Instance{
			InstanceId: aws.String(inst.id), LifecycleState: state,
			ProtectedFromScaleIn: aws.Bool(awsres.ProtectFromScaleIn),
		})
	}
	return &autoscaling.DescribeAutoScalingGroupsOutput{AutoScalingGroups: []types.AutoScalingGroup{out}}, nil
}

func validationError(format string, a ...any) error {
	return &smithy.GenericAPIError{Code: "ValidationError", Message: fmt.Sprintf(format, a...)}
}

func (g *group) SetDesiredCapacity(_ context.Context, in *autoscaling.SetDesiredCapacityInput, _ ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error) {
	n := int(aws.ToInt32(in.DesiredCapacity))
	if aws.ToString(in.AutoScalingGroupName) != g.name {
		return nil, validationError("AutoScalingGroup name not found - %s", aws.ToString(in.AutoScalingGroupName))
	}
	if n < g.min || n > g.max {
		return nil, validationError("New SetDesiredCapacity value %d is outside of the group's bounds %d..%d", n, g.min, g.max)
	}
	g.desired = n
	g.reconcileSoon()
	return &autoscaling.SetDesiredCapacityOutput{}, nil
}

func (g *group) TerminateInstanceInAutoScalingGroup(_ context.Context, in *autoscaling.TerminateInstanceInAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error) {
	id := aws.ToString(in.InstanceId)
	i := slices.IndexFunc(g.members, func(inst *instance) bool { return inst.id == id })
	if i < 0 {
		return nil, validationError("Instance Id not found - No managed instance found for instance ID: %s", id)
	}
	if aws.ToBool(in.ShouldDecrementDesiredCapacity) {
		if g.desired-1 < g.min {
			return nil, validationError("Currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min size constraint.", g.min)
		}
		g.desired--
	}
	inst := g.members[i]
	g.members = slices.Delete(g.members, i, i+1)
	inst.inGroup = false
	g.s.terminate(inst)
	g.reconcileSoon()
	return &autoscaling.TerminateInstanceInAutoScalingGroupOutput{}, nil
}

// reconcileSoon has the group act on its desired capacity after its
// reaction time; changes meanwhile are taken in the same pass.
func (g *group) reconcileSoon() {
	if g.reconciling {
		return
	}
	g.reconciling = true
	g.s.after(g.s.boot(g.s.cfg.Params.Boot.ASGReaction), func() {
		g.reconciling = false
		g.reconcile()
	})
}

func (g *group) reconcile() {
	s := g.s
	for len(g.members) < g.desired {
		var inst *instance
		if i := slices.IndexFunc(g.pool, func(p *instance) bool { return p.state == stateStopped }); i >= 0 {
			inst = g.pool[i]
			g.pool = slices.Delete(g.pool, i, i+1)
			s.startWarm(inst)
			g.warmStarts++
		} else {
			inst = s.newInstance()
			s.launchCold(inst)
			g.launches++
		}
		inst.inGroup = true
		g.members = append(g.members, inst)
	}
	if !awsres.ProtectFromScaleIn {
		for len(g.members) > g.desired {
			inst := g.members[len(g.members)-1]
			g.members = g.members[:len(g.members)-1]
			inst.inGroup = false
			s.terminate(inst)
		}
	}
	target := g.poolTarget()
	for len(g.pool) < target {
		inst := s.newInstance()
		g.pool = append(g.pool, inst)
		s.prepareWarm(inst)
		g.poolLaunches++
	}
	for len(g.pool) > target {
		inst := g.pool[len(g.pool)-1]
		g.pool = g.pool[:len(g.pool)-1]
		s.terminate(inst)
	}
}

// legacyController is the controller of the replaced design: every
// interval it reads the visible count, launches instances up to one per
// visible message (at most MaxInstances), and terminates every instance
// when no message is visible, busy or not.
type legacyController struct {
	s        *sim
	members  []*instance
	target   int
	launches int
	kills    int
}

func (l *legacyController) tick() {
	s := l.s
	p := s.cfg.Params.Legacy
	s.calls.add(sqsDepth, 1, 1)
	l.members = slices.DeleteFunc(l.members, func(inst *instance) bool { return inst.state == stateTerminated })
	visible := len(s.queue.visible)
	if visible > 0 {
		l.target = min(visible, p.MaxInstances.Value)
		for len(l.members) < l.target {
			inst := s.newInstance()
			s.launchCold(inst)
			l.members = append(l.members, inst)
			l.launches++
		}
	} else {
		l.target = 0
		for _, inst := range l.members {
			if inst.w != nil && inst.w.busy > 0 {
				l.kills++
			}
			s.terminate(inst)
		}
		l.members = nil
	}
	s.after(p.Interval.Value, l.tick)
}
