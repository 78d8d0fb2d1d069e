package asgfleet

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/facecloud/facecloud/agents/platform"
)

// fakeASG stands in for the Auto Scaling service in tests of the adapter's
// own logic (clamping, the floor of live instances, the cooldown); the
// service's behaviour is tested against moto in moto_test.go.
type fakeASG struct {
	mu                sync.Mutex
	min, max, desired int32
	states            []types.LifecycleState
	protected         bool // instances are protected from scale-in
	sets              []int32
	terminated        []string
	decrements        []bool
}

func (f *fakeASG) DescribeAutoScalingGroups(_ context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in.AutoScalingGroupNames[0] != "g" {
		return &autoscaling.DescribeAutoScalingGroupsOutput{}, nil
	}
	g := types.AutoScalingGroup{AutoScalingGroupName: aws.String("g"), MinSize: aws.Int32(f.min), MaxSize: aws.Int32(f.max), DesiredCapacity: aws.Int32(f.desired)}
	for _, s := range f.states {
		g.Instances = append(g.Instances, types.Instance{LifecycleState: s, ProtectedFromScaleIn: aws.Bool(f.protected)})
	}
	return &autoscaling.DescribeAutoScalingGroupsOutput{AutoScalingGroups: []types.AutoScalingGroup{g}}, nil
}

func (f *fakeASG) SetDesiredCapacity(_ context.Context, in *autoscaling.SetDesiredCapacityInput, _ ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desired = *in.DesiredCapacity
	f.sets = append(f.sets, f.desired)
	return &autoscaling.SetDesiredCapacityOutput{}, nil
}

func (f *fakeASG) TerminateInstanceInAutoScalingGroup(_ context.Context, in *autoscaling.TerminateInstanceInAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminated = append(f.terminated, aws.ToString(in.InstanceId))
	f.decrements = append(f.decrements, aws.ToBool(in.ShouldDecrementDesiredCapacity))
	if aws.ToBool(in.ShouldDecrementDesiredCapacity) {
		if f.desired <= f.min {
			return nil, errors.New("ValidationError: desired capacity would fall below the minimum")
		}
		f.desired--
	}
	if len(f.states) > 0 {
		f.states = f.states[1:]
	}
	return &autoscaling.TerminateInstanceInAutoScalingGroupOutput{}, nil
}

func TestSetDesiredClamps(t *testing.T) {
	in, pend := types.LifecycleStateInService, types.LifecycleStatePending
	tests := map[string]struct {
		min, max, desired int32
		states            []types.LifecycleState
		protected         bool
		ask               int
		want              int
		wantCall          bool
	}{
		"scale out":                 {max: 5, ask: 3, want: 3, wantCall: true},
		"clamped to max":            {max: 5, ask: 9, want: 5, wantCall: true},
		"negative is zero":          {max: 5, desired: 2, ask: -1, want: 0, wantCall: true},
		"clamped to min":            {min: 1, max: 5, desired: 3, ask: 0, want: 1, wantCall: true},
		"unchanged makes no call":   {max: 5, desired: 2, states: []types.LifecycleState{in, in}, ask: 2, want: 2},
		"not below live instances":  {max: 5, desired: 4, states: []types.LifecycleState{in, pend, types.LifecycleStateTerminating}, ask: 0, want: 2, wantCall: true},
		"protected ones may stay":   {max: 5, desired: 4, states: []types.LifecycleState{in, in}, protected: true, ask: 0, want: 0, wantCall: true},
		"floor equal to desired":    {max: 5, desired: 2, states: []types.LifecycleState{in, in}, ask: 0, want: 2},
		"max wins over live floor":  {max: 1, desired: 3, states: []types.LifecycleState{in, in, in}, ask: 0, want: 1, wantCall: true},
		"warm pool is not counted":  {max: 5, desired: 1, states: []types.LifecycleState{types.LifecycleStateWarmedStopped, in}, ask: 0, want: 1},
		"scale out from live floor": {max: 5, desired: 1, states: []types.LifecycleState{in}, ask: 4, want: 4, wantCall: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			api := &fakeASG{min: tc.min, max: tc.max, desired: tc.desired, states: tc.states, protected: tc.protected}
			f, err := New(api, Config{Group: "g"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.SetDesired(context.Background(), tc.ask)
			if err != nil || got != tc.want {
				t.Fatalf("SetDesired(%d) = %d, %v; want %d", tc.ask, got, err, tc.want)
			}
			if (len(api.sets) > 0) != tc.wantCall {
				t.Fatalf("SetDesiredCapacity calls %v, want a call: %v", api.sets, tc.wantCall)
			}
			if size, _ := f.Size(context.Background()); size.Desired != tc.want {
				t.Fatalf("Size().Desired = %d, want %d", size.Desired, tc.want)
			}
		})
	}
}

func TestCooldown(t *testing.T) {
	api := &fakeASG{max: 10}
	now := time.Unix(1000, 0)
	f, err := New(api, Config{Group: "g", Cooldown: 10 * time.Second, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		advance time.Duration
		ask     int
		want    int
	}{
		{0, 2, 2},                      // first change is made
		{5 * time.Second, 4, 2},        // within cooldown: nothing changes
		{4 * time.Second, 4, 2},        // 9 s: still within
		{time.Second, 4, 4},            // 10 s: allowed again
		{time.Second, 4, 4},            // no change needed: no call, no cooldown
		{9 * time.Second, 6, 6},        // 10 s after the last change
		{100 * time.Millisecond, 1, 6}, // lowering waits too
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		got, err := f.SetDesired(ctx, s.ask)
		if err != nil || got != s.want {
			t.Fatalf("step %d: SetDesired(%d) = %d, %v; want %d", i, s.ask, got, err, s.want)
		}
	}
	if len(api.sets) != 3 {
		t.Fatalf("SetDesiredCapacity calls %v, want 3", api.sets)
	}
}

func TestSizeAndMissingGroup(t *testing.T) {
	api := &fakeASG{max: 7, desired: 3, states: []types.LifecycleState{
		types.LifecycleStateInService, types.LifecycleStatePending, types.LifecycleStatePendingWait, types.LifecycleStateTerminating,
	}}
	f, _ := New(api, Config{Group: "g"}, nil)
	got, err := f.Size(context.Background())
	if err != nil || got != (platform.FleetSize{Desired: 3, Running: 1, Pending: 2, Max: 7}) {
		t.Fatalf("Size = %+v, %v", got, err)
	}
	other, _ := New(api, Config{Group: "other"}, nil)
	if _, err := other.Size(context.Background()); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Size of a missing group: %v, want ErrNotFound", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"ok":                {cfg: Config{Group: "facecloud-dev-workers", Cooldown: time.Minute}},
		"empty group":       {cfg: Config{}, wantErr: "1..255"},
		"space in group":    {cfg: Config{Group: "a b"}, wantErr: "without spaces"},
		"negative cooldown": {cfg: Config{Group: "g", Cooldown: -time.Second}, wantErr: "0..1h"},
		"long cooldown":     {cfg: Config{Group: "g", Cooldown: 2 * time.Hour}, wantErr: "0..1h"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// imdsDouble stands in for the EC2 instance metadata service: it answers
// IMDSv2 only (a token from PUT /latest/api/token, then GETs that carry it).
func imdsDouble(t *testing.T, instanceID string) (*httptest.Server, *int) {
	t.Helper()
	var tokenless int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "missing ttl", http.StatusBadRequest)
				return
			}
			w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
			_, _ = w.Write([]byte("token-1"))
		case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/instance-id":
			if r.Header.Get("X-aws-ec2-metadata-token") != "token-1" {
				tokenless++
				http.Error(w, "", http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(instanceID))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &tokenless
}

func TestRetireAsksIMDSv2Once(t *testing.T) {
	srv, tokenless := imdsDouble(t, "i-0123456789abcdef0")
	client := imds.New(imds.Options{Endpoint: srv.URL})
	api := &fakeASG{max: 3, desired: 2}
	f, err := New(api, Config{Group: "g"}, IMDSInstanceID(client))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Retire(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the id is remembered: no second lookup
	if err := f.Retire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if *tokenless != 0 {
		t.Fatalf("%d metadata requests came without an IMDSv2 token", *tokenless)
	}
	if len(api.terminated) != 2 || api.terminated[0] != "i-0123456789abcdef0" || api.desired != 0 {
		t.Fatalf("terminated %v, desired %d", api.terminated, api.desired)
	}
}

func TestRetireInstanceIDErrors(t *testing.T) {
	srv, _ := imdsDouble(t, "<html>not an id</html>")
	tests := map[string]struct {
		cfg     Config
		idf     InstanceIDFunc
		wantErr string
	}{
		"no source":     {cfg: Config{Group: "g"}, wantErr: "--instance-id"},
		"garbage id":    {cfg: Config{Group: "g"}, idf: IMDSInstanceID(imds.New(imds.Options{Endpoint: srv.URL})), wantErr: "not an EC2 instance id"},
		"explicit wins": {cfg: Config{Group: "g", InstanceID: "i-00000000000000001"}, idf: func(context.Context) (string, error) { return "", errors.New("not asked") }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			api := &fakeASG{max: 3, desired: 1}
			f, _ := New(api, tc.cfg, tc.idf)
			err := f.Retire(context.Background())
			if tc.wantErr == "" {
				if err != nil || len(api.terminated) != 1 || api.terminated[0] != tc.cfg.InstanceID {
					t.Fatalf("Retire = %v, terminated %v", err, api.terminated)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || len(api.terminated) != 0 {
				t.Fatalf("Retire = %v (terminated %v), want error containing %q", err, api.terminated, tc.wantErr)
			}
		})
	}
}

func TestRetireDecrementsOnlyWhenDesiredCountsIt(t *testing.T) {
	in := types.LifecycleStateInService
	tests := map[string]struct {
		min, desired  int32
		states        []types.LifecycleState
		wantRefused   bool
		wantDecrement bool
		wantDesired   int32
	}{
		"desired counts it":         {desired: 2, states: []types.LifecycleState{in, in}, wantDecrement: true, wantDesired: 1},
		"desired above instances":   {desired: 3, states: []types.LifecycleState{in, in}, wantDecrement: true, wantDesired: 2},
		"scaler already lowered it": {desired: 0, states: []types.LifecycleState{in, in}, wantDesired: 0},
		"desired below live":        {desired: 1, states: []types.LifecycleState{in, in}, wantDesired: 1},
		"surplus at the minimum":    {min: 1, desired: 1, states: []types.LifecycleState{in, in}, wantDesired: 1},
		"minimum refuses":           {min: 1, desired: 1, states: []types.LifecycleState{in}, wantRefused: true, wantDesired: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			api := &fakeASG{min: tc.min, max: 5, desired: tc.desired, states: tc.states, protected: true}
			f, _ := New(api, Config{Group: "g", InstanceID: "i-00000000000000001"}, nil)
			err := f.Retire(context.Background())
			if tc.wantRefused {
				if !errors.Is(err, platform.ErrRetireRefused) || len(api.terminated) != 0 || api.desired != tc.wantDesired {
					t.Fatalf("Retire = %v, terminated %v, desired %d; want refused, nothing terminated", err, api.terminated, api.desired)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(api.decrements) != 1 || api.decrements[0] != tc.wantDecrement || api.desired != tc.wantDesired {
				t.Fatalf("decrement %v, desired %d; want decrement %v, desired %d", api.decrements, api.desired, tc.wantDecrement, tc.wantDesired)
			}
		})
	}
}
