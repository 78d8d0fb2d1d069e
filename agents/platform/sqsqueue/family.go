package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/facecloud/facecloud/agents/platform"
)

// FamilyAPI is the part of the SQS client a Family calls; *sqs.Client
// satisfies it.
type FamilyAPI interface {
	API
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, opts ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	DeleteQueue(ctx context.Context, in *sqs.DeleteQueueInput, opts ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error)
	ListQueues(ctx context.Context, in *sqs.ListQueuesInput, opts ...func(*sqs.Options)) (*sqs.ListQueuesOutput, error)
	TagQueue(ctx context.Context, in *sqs.TagQueueInput, opts ...func(*sqs.Options)) (*sqs.TagQueueOutput, error)
	ListQueueTags(ctx context.Context, in *sqs.ListQueueTagsInput, opts ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error)
}

// TouchedTag is the queue tag a Family keeps each member's last touch in
// (Unix seconds), so that the garbage collector needs nothing but SQS.
const TouchedTag = "facecloud-touched"

// maxQueueName is SQS's limit on a queue name.
const maxQueueName = 80

// Family is the platform.QueueFamily of SQS queues whose names start with
// one prefix, in one account and region: the web hosts' reply queues.
type Family struct {
	api    FamilyAPI
	prefix string // the URL up to and including the name prefix
	base   string // the URL up to the name: https://HOST/ACCOUNT/
	name   string // the name prefix
	attrs  map[string]string
	now    func() time.Time
}

var _ platform.QueueFamily = (*Family)(nil)

// NewFamily returns the family of queues whose URLs start with prefix,
// https://sqs.REGION.amazonaws.com/ACCOUNT/NAMEPREFIX. Members are created
// with attrs (SQS queue attributes). now nil means time.Now.
func NewFamily(api FamilyAPI, prefix string, attrs map[string]string, now func() time.Time) (*Family, error) {
	if err := ValidURL(prefix); err != nil {
		return nil, fmt.Errorf("reply queue prefix: %w", err)
	}
	i := strings.LastIndexByte(prefix, '/')
	name := prefix[i+1:]
	if err := validNamePrefix(name); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Family{api: api, prefix: prefix, base: prefix[:i+1], name: name, attrs: attrs, now: now}, nil
}

// validNamePrefix leaves room for a suffix of up to 40 characters within
// SQS's 80; standard queues only (no .fifo).
func validNamePrefix(name string) error {
	if name == "" || len(name) > maxQueueName-40 {
		return fmt.Errorf("reply queue name prefix %q must be 1..%d characters", name, maxQueueName-40)
	}
	if err := platform.ValidMemberSuffix(name); err != nil {
		return fmt.Errorf("reply queue name prefix %q may hold only A-Z, a-z, 0-9, '-' and '_'", name)
	}
	return nil
}

// OpenFamily is NewFamily on a client made from cfg the way Open makes one
// for a queue URL (the region or endpoint the prefix names).
func OpenFamily(cfg aws.Config, prefix string, attrs map[string]string) (*Family, error) {
	if err := ValidURL(prefix); err != nil {
		return nil, fmt.Errorf("reply queue prefix: %w", err)
	}
	u, _ := url.Parse(prefix)
	return NewFamily(newClient(cfg, u), prefix, attrs, nil)
}

// Prefix is the URL every member's address starts with.
func (f *Family) Prefix() string { return f.prefix }

// Contains reports whether address is the prefix followed by a valid
// suffix and nothing else.
func (f *Family) Contains(address string) bool {
	suffix, ok := strings.CutPrefix(address, f.prefix)
	return ok && platform.ValidMemberSuffix(suffix) == nil && len(f.name)+len(suffix) <= maxQueueName
}

// Create creates the queue (SQS returns an existing queue of the same
// name and attributes) tagged as touched now.
func (f *Family) Create(ctx context.Context, suffix string) (platform.Queue, string, error) {
	if err := platform.ValidMemberSuffix(suffix); err != nil {
		return nil, "", err
	}
	name := f.name + suffix
	_, err := f.api.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: f.attrs,
		Tags:       map[string]string{TouchedTag: strconv.FormatInt(f.now().Unix(), 10)},
	})
	if err != nil {
		return nil, "", fmt.Errorf("create queue %s: %w", name, mapError(err))
	}
	addr := f.base + name
	q, err := New(ctx, f.api, addr)
	if err != nil {
		return nil, "", err
	}
	return q, addr, nil
}

// Open returns the member at address; ErrNotFound when it is not a member
// or does not exist.
func (f *Family) Open(ctx context.Context, address string) (platform.Queue, error) {
	if !f.Contains(address) {
		return nil, fmt.Errorf("queue %q is not under the reply queue prefix %s: %w", address, f.prefix, platform.ErrNotFound)
	}
	return New(ctx, f.api, address)
}

// Touch tags the member with the time now.
func (f *Family) Touch(ctx context.Context, address string) error {
	if !f.Contains(address) {
		return fmt.Errorf("touch %q: not under %s: %w", address, f.prefix, platform.ErrNotFound)
	}
	_, err := f.api.TagQueue(ctx, &sqs.TagQueueInput{
		QueueUrl: aws.String(address),
		Tags:     map[string]string{TouchedTag: strconv.FormatInt(f.now().Unix(), 10)},
	})
	if err != nil {
		return fmt.Errorf("touch %s: %w", address, mapError(err))
	}
	return nil
}

// Members lists the queues under the prefix (ListQueues, then each one's
// tags; a queue without the tag counts as touched when it was created).
func (f *Family) Members(ctx context.Context) ([]platform.Member, error) {
	var out []platform.Member
	in := &sqs.ListQueuesInput{QueueNamePrefix: aws.String(f.name), MaxResults: aws.Int32(1000)}
	for {
		page, err := f.api.ListQueues(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list queues %s*: %w", f.name, mapError(err))
		}
		for _, u := range page.QueueUrls {
			addr := f.base + u[strings.LastIndexByte(u, '/')+1:]
			if !f.Contains(addr) {
				continue
			}
			touched, err := f.touched(ctx, addr)
			if errors.Is(err, platform.ErrNotFound) {
				continue // removed meanwhile
			}
			if err != nil {
				return nil, err
			}
			out = append(out, platform.Member{Address: addr, Touched: touched})
		}
		if page.NextToken == nil || *page.NextToken == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	slices.SortFunc(out, func(a, b platform.Member) int { return a.Touched.Compare(b.Touched) })
	return out, nil
}

func (f *Family) touched(ctx context.Context, addr string) (time.Time, error) {
	tags, err := f.api.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(addr)})
	if err != nil {
		return time.Time{}, fmt.Errorf("tags of %s: %w", addr, mapError(err))
	}
	if s, err := strconv.ParseInt(tags.Tags[TouchedTag], 10, 64); err == nil {
		return time.Unix(s, 0), nil
	}
	attrs, err := f.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(addr),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameCreatedTimestamp},
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("attributes of %s: %w", addr, mapError(err))
	}
	s, err := strconv.ParseInt(attrs.Attributes[string(types.QueueAttributeNameCreatedTimestamp)], 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s has neither a %s tag nor a CreatedTimestamp", addr, TouchedTag)
	}
	return time.Unix(s, 0), nil
}

// Remove deletes the member; one already gone is not an error.
func (f *Family) Remove(ctx context.Context, address string) error {
	if !f.Contains(address) {
		return fmt.Errorf("remove %q: not under %s: %w", address, f.prefix, platform.ErrNotFound)
	}
	_, err := f.api.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(address)})
	if err != nil && !errors.Is(mapError(err), platform.ErrNotFound) {
		return fmt.Errorf("remove %s: %w", address, mapError(err))
	}
	return nil
}

// Close does nothing: the SDK client holds no per-family resources.
func (f *Family) Close() error { return nil }
