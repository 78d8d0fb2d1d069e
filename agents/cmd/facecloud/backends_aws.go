package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/facecloud/facecloud/agents/awsconf"
	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/asgfleet"
	"github.com/facecloud/facecloud/agents/platform/s3register"
	"github.com/facecloud/facecloud/agents/platform/sqsqueue"
)

// AWS adapters: SQS queues named by their queue URL (https://, or http://
// for an emulator) and an Auto Scaling group named asg://GROUP. S3 stores
// (s3://BUCKET) go through blobstore.OpenURL, registered with the local
// adapters. All take their AWS settings from the environment (awsconf:
// FACECLOUD_AWS_REGION, FACECLOUD_AWS_ENDPOINT, FACECLOUD_AWS_PROFILE,
// FACECLOUD_INSTANCE_ID, and the SDK's own AWS_* variables).
func init() {
	openSQS := func(ctx context.Context, env *environment, u *url.URL) (platform.Queue, error) {
		cfg, err := loadAWS(ctx, env)
		if err != nil {
			return nil, err
		}
		return sqsqueue.Open(ctx, cfg, u.String())
	}
	queueOpeners["https"] = openSQS
	queueOpeners["http"] = openSQS
	openReplyFamily := func(ctx context.Context, env *environment, u *url.URL) (platform.QueueFamily, error) {
		cfg, err := loadAWS(ctx, env)
		if err != nil {
			return nil, err
		}
		return sqsqueue.OpenFamily(cfg, u.String(), awsres.DefaultQueueSettings.HostReplyQueueAttributes())
	}
	familyOpeners["https"] = openReplyFamily
	familyOpeners["http"] = openReplyFamily
	registerOpeners["s3"] = func(ctx context.Context, env *environment, u *url.URL) (platform.Register, error) {
		cfg, err := loadAWS(ctx, env)
		if err != nil {
			return nil, err
		}
		return s3register.Open(cfg, u.String())
	}
	fleetOpeners["asg"] = func(ctx context.Context, env *environment, u *url.URL) (platform.Fleet, error) {
		fc, err := parseASGURL(u)
		if err != nil {
			return nil, err
		}
		cfg, err := loadAWS(ctx, env)
		if err != nil {
			return nil, err
		}
		ac := awsconf.FromEnv(env.getenv)
		fc.InstanceID = ac.InstanceID
		fc.Log = newLogger(env).With("fleet", "asg")
		// The returned fleet is also a platform.Retirer for a worker on one
		// of the group's instances.
		return asgfleet.Open(ctx, cfg, fc, ac.IMDSEndpoint)
	}
}

// parseASGURL reads asg://GROUP[?cooldown=DURATION].
func parseASGURL(u *url.URL) (asgfleet.Config, error) {
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return asgfleet.Config{}, fmt.Errorf("fleet URL %q: want asg://GROUP[?cooldown=30s]", u.Redacted())
	}
	c := asgfleet.Config{Group: u.Host}
	q := u.Query()
	for k := range q {
		if k != "cooldown" {
			return c, fmt.Errorf("fleet URL %q: parameter %q unknown (use cooldown)", u.Redacted(), k)
		}
	}
	if v := q.Get("cooldown"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("fleet URL %q: cooldown %q is not a duration such as 30s", u.Redacted(), v)
		}
		c.Cooldown = d
	}
	return c, c.Validate()
}

var awsLogged sync.Map // agent configs already logged, so each is logged once

// loadAWS resolves the AWS configuration from env and logs it (without
// secrets) the first time it is used in this process.
func loadAWS(ctx context.Context, env *environment) (aws.Config, error) {
	ac := awsconf.FromEnv(env.getenv)
	ac.Logger = newLogger(env).With("part", "aws")
	cfg, err := ac.Load(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	key := strings.Join([]string{ac.Region, ac.Endpoint, ac.Profile, ac.InstanceID}, "\x00")
	if _, seen := awsLogged.LoadOrStore(key, true); !seen {
		awsconf.Log(ctx, newLogger(env), ac, cfg)
	}
	return cfg, nil
}
