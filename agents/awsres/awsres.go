// Package awsres is the one place that says what the AWS resources are
// called and how they are set up: the stack creates them from it, and the
// agents' AWS tests create their moto copies from it, so the two cannot drift.
package awsres

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/job"
)

// Naming presets.
const (
	// PresetDefault names resources "<project>-<stack>-<role>".
	PresetDefault = "default"
	// PresetCourse reproduces the course's names: web-instance,
	// app-tier-instance-<n>, <ID>-req-queue, <ID>-resp-queue, <ID>-in-bucket,
	// <ID>-out-bucket.
	PresetCourse = "course"
)

// Names are the names of one deployment's resources.
type Names struct {
	RequestQueue    string
	DeadLetterQueue string
	ResponseQueue   string
	// ReplyQueuePrefix starts the name of each web host's own reply queue
	// (the web host adds its host name and a random tag). No other queue's
	// name may start with it: the acting scaler deletes what it finds
	// under it untouched for the reply expiry, and the web role may delete
	// any queue under it.
	ReplyQueuePrefix string
	InputBucket      string
	OutputBucket     string
	ArtifactsBucket  string
	WorkerGroup      string
	// WebGroup is the Auto Scaling group of the web hosts; WebInstance the
	// Name tag each of them carries.
	WebGroup    string
	WebInstance string
	// LoadBalancer and TargetGroup name the web tier's load balancer and
	// its target group (AWS allows 32 characters each).
	LoadBalancer string
	TargetGroup  string
	// WorkerInstance is the Name tag of worker n (1-based) when the preset
	// numbers them; "%d" stands for n.
	WorkerInstance string
}

var bucketSafe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$`)

// NewNames returns the names for preset. prefix is "<project>-<stack>" for
// the default preset and the course's ID for the course preset; it must be
// 3..42 characters of lowercase letters, digits and hyphens, so that every
// bucket name, with the default preset's 9-character suffix
// (WithBucketSuffix), stays within S3's 63-character limit.
func NewNames(preset, prefix string) (Names, error) {
	if !bucketSafe.MatchString(prefix) {
		return Names{}, fmt.Errorf("name prefix %q must be 3..42 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", prefix)
	}
	switch preset {
	case PresetDefault, "":
		return Names{
			RequestQueue:     prefix + "-requests",
			DeadLetterQueue:  prefix + "-requests-dlq",
			ResponseQueue:    prefix + "-replies",
			ReplyQueuePrefix: prefix + "-reply-",
			InputBucket:      prefix + "-input",
			OutputBucket:     prefix + "-output",
			ArtifactsBucket:  prefix + "-artifacts",
			WorkerGroup:      prefix + "-workers",
			WebGroup:         prefix + "-web",
			WebInstance:      prefix + "-web",
			LoadBalancer:     shortName(prefix, "-lb"),
			TargetGroup:      shortName(prefix, "-web"),
			WorkerInstance:   prefix + "-worker",
		}, nil
	case PresetCourse:
		return Names{
			RequestQueue:     prefix + "-req-queue",
			DeadLetterQueue:  prefix + "-req-dlq",
			ResponseQueue:    prefix + "-resp-queue",
			ReplyQueuePrefix: prefix + "-reply-",
			InputBucket:      prefix + "-in-bucket",
			OutputBucket:     prefix + "-out-bucket",
			ArtifactsBucket:  prefix + "-artifacts-bucket",
			WorkerGroup:      prefix + "-app-tier",
			WebGroup:         prefix + "-web-tier",
			WebInstance:      "web-instance",
			LoadBalancer:     shortName(prefix, "-lb"),
			TargetGroup:      shortName(prefix, "-web-tier"),
			WorkerInstance:   "app-tier-instance-%d",
		}, nil
	default:
		return Names{}, fmt.Errorf("naming preset %q unknown: use %q or %q", preset, PresetDefault, PresetCourse)
	}
}

// maxLoadBalancerName is the longest name AWS gives a load balancer or a
// target group.
const maxLoadBalancerName = 32

// shortName is prefix+suffix cut to AWS's 32 characters for load
// balancers and target groups: a long prefix keeps its start and ends in
// 8 hex digits of its SHA-256, so two long prefixes still differ.
func shortName(prefix, suffix string) string {
	name := prefix + suffix
	if len(name) <= maxLoadBalancerName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	tag := hex.EncodeToString(sum[:4])
	head := strings.TrimRight(name[:maxLoadBalancerName-len(tag)-1], "-")
	return head + "-" + tag
}

// WithBucketSuffix returns n with "-suffix" added to the bucket names. S3
// bucket names are global across accounts: the default preset adds a
// suffix derived from the account and region (BucketSuffix) so that two
// people deploying the same stack name never meet BucketAlreadyExists.
func (n Names) WithBucketSuffix(suffix string) Names {
	if suffix == "" {
		return n
	}
	n.InputBucket += "-" + suffix
	n.OutputBucket += "-" + suffix
	n.ArtifactsBucket += "-" + suffix
	return n
}

// BucketSuffix is 8 hex digits of the SHA-256 of account and region:
// stable for one deployment, different for every account and region.
func BucketSuffix(account, region string) string {
	sum := sha256.Sum256([]byte(account + "/" + region))
	return hex.EncodeToString(sum[:4])
}

// QueueSettings are the request queue's settings. The worker's heartbeat
// extends a message's visibility every Heartbeat by VisibilityTimeout, so a
// worker that dies mid-job gives its message back within VisibilityTimeout.
type QueueSettings struct {
	VisibilityTimeout time.Duration
	Heartbeat         time.Duration
	ReceiveWait       time.Duration
	Retention         time.Duration
	MaxReceives       int
	MaxMessageBytes   int
}

// DefaultQueueSettings are used by the stack and the agents unless configured otherwise.
var DefaultQueueSettings = QueueSettings{
	VisibilityTimeout: 30 * time.Second,
	Heartbeat:         10 * time.Second,
	ReceiveWait:       20 * time.Second,
	Retention:         4 * 24 * time.Hour,
	MaxReceives:       5,
	MaxMessageBytes:   job.MaxMessageBytes,
}

// Validate states the allowed ranges.
func (s QueueSettings) Validate() error {
	switch {
	case s.VisibilityTimeout < time.Second || s.VisibilityTimeout > 12*time.Hour:
		return fmt.Errorf("visibility timeout %s out of range 1s..12h", s.VisibilityTimeout)
	case s.Heartbeat <= 0 || s.Heartbeat*2 > s.VisibilityTimeout:
		return fmt.Errorf("heartbeat %s must be above 0 and at most half the visibility timeout %s", s.Heartbeat, s.VisibilityTimeout)
	case s.ReceiveWait < 0 || s.ReceiveWait > 20*time.Second:
		return fmt.Errorf("receive wait %s out of range 0..20s", s.ReceiveWait)
	case s.Retention < time.Minute || s.Retention > 14*24*time.Hour:
		return fmt.Errorf("retention %s out of range 1m..14d", s.Retention)
	case s.MaxReceives < 1 || s.MaxReceives > 1000:
		return fmt.Errorf("max receives %d out of range 1..1000", s.MaxReceives)
	case s.MaxMessageBytes < 1024 || s.MaxMessageBytes > 262144:
		return fmt.Errorf("max message bytes %d out of range 1024..262144", s.MaxMessageBytes)
	}
	return nil
}

// DefaultGalleryRefresh is how often a worker lists the gallery for
// enrolments and erasures made elsewhere (its --gallery-refresh, the
// stack's galleryRefresh): each listing is an S3 LIST.
const DefaultGalleryRefresh = 2 * time.Second

// ValidGalleryRefresh states the range a worker's gallery refresh may take.
func ValidGalleryRefresh(d time.Duration) error {
	if d < 100*time.Millisecond || d > 10*time.Minute {
		return fmt.Errorf("gallery refresh %s out of range 100ms..10m", d)
	}
	return nil
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// RequestQueueAttributes are the SQS attributes of the request queue, less
// the redrive policy, which needs the dead-letter queue's ARN (RedrivePolicy).
func (s QueueSettings) RequestQueueAttributes() map[string]string {
	return map[string]string{
		"VisibilityTimeout":             seconds(s.VisibilityTimeout),
		"ReceiveMessageWaitTimeSeconds": seconds(s.ReceiveWait),
		"MessageRetentionPeriod":        seconds(s.Retention),
		"MaximumMessageSize":            strconv.Itoa(s.MaxMessageBytes),
		"SqsManagedSseEnabled":          "true",
	}
}

// ResponseQueueAttributes are the SQS attributes of the response queue.
func (s QueueSettings) ResponseQueueAttributes() map[string]string {
	return map[string]string{
		"VisibilityTimeout":             seconds(s.VisibilityTimeout),
		"ReceiveMessageWaitTimeSeconds": seconds(s.ReceiveWait),
		"MessageRetentionPeriod":        seconds(s.Retention),
		"MaximumMessageSize":            strconv.Itoa(s.MaxMessageBytes),
		"SqsManagedSseEnabled":          "true",
	}
}

// HostReplyQueueAttributes are the SQS attributes of a web host's own
// reply queue: long polling, and replies kept only as long as a call may
// wait for one (they only wake a waiting call; the result is in the store).
func (s QueueSettings) HostReplyQueueAttributes() map[string]string {
	return map[string]string{
		"VisibilityTimeout":             seconds(s.VisibilityTimeout),
		"ReceiveMessageWaitTimeSeconds": seconds(s.ReceiveWait),
		"MessageRetentionPeriod":        seconds(HostReplyRetention),
		"MaximumMessageSize":            strconv.Itoa(s.MaxMessageBytes),
		"SqsManagedSseEnabled":          "true",
	}
}

// HostReplyRetention is how long a web host's reply queue keeps a reply.
const HostReplyRetention = 15 * time.Minute

// DeadLetterQueueAttributes keep dead letters for the longest time SQS allows.
func (s QueueSettings) DeadLetterQueueAttributes() map[string]string {
	return map[string]string{
		"MessageRetentionPeriod": seconds(14 * 24 * time.Hour),
		"SqsManagedSseEnabled":   "true",
	}
}

// RedrivePolicy is the request queue's RedrivePolicy attribute.
func (s QueueSettings) RedrivePolicy(deadLetterARN string) string {
	return fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, deadLetterARN, s.MaxReceives)
}

// Tags every taggable resource carries.
func Tags(project, stack string) map[string]string {
	return map[string]string{
		"project":    project,
		"stack":      stack,
		"managed-by": "pulumi",
	}
}

// WorkerRoleTag marks worker instances, so IAM can limit self-termination to them.
const WorkerRoleTag = "facecloud-role"

// SanitizePrefix lowercases s and replaces what bucket names forbid with '-'.
func SanitizePrefix(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
