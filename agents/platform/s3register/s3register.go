// Package s3register is the platform.Register port on one S3 object,
// updated by conditional writes: PutObject with If-None-Match: * creates
// it only if it is absent, with If-Match: ETAG replaces it only if it is
// still the version read. S3 answers 412 (or 409 to a write racing another
// conditional write) to the loser, which the adapter reports as
// platform.ErrConflict.
package s3register

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/facecloud/facecloud/agents/awsconf"
	"github.com/facecloud/facecloud/agents/platform"
)

// API is the part of the S3 client the register calls; *s3.Client satisfies it.
type API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Register is one object in one bucket.
type Register struct {
	api         API
	bucket, key string
}

var _ platform.Register = (*Register)(nil)

// maxValue bounds what Read takes: a lease record is well under 1 KiB.
const maxValue = 64 << 10

// New returns the register at bucket/key.
func New(api API, bucket, key string) (*Register, error) {
	if bucket == "" || key == "" || strings.HasPrefix(key, "/") {
		return nil, fmt.Errorf("register s3://%s/%s: want a bucket and a key not starting with '/'", bucket, key)
	}
	return &Register{api: api, bucket: bucket, key: key}, nil
}

// ParseURL reads s3://BUCKET/KEY.
func ParseURL(raw string) (bucket, key string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("register URL %q: %w", raw, err)
	}
	key = strings.TrimPrefix(u.Path, "/")
	if u.Scheme != "s3" || u.Host == "" || key == "" || u.RawQuery != "" {
		return "", "", fmt.Errorf("register URL %q: want s3://BUCKET/KEY", raw)
	}
	return u.Host, key, nil
}

// Open returns the register s3://BUCKET/KEY names on a client made from
// cfg (path-style addressing for an emulator, as the stores use).
func Open(cfg aws.Config, raw string) (*Register, error) {
	bucket, key, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if awsconf.Emulated(cfg) {
			o.UsePathStyle = true
		}
	})
	return New(client, bucket, key)
}

func (r *Register) String() string { return "s3://" + r.bucket + "/" + r.key }

// Read gets the object and its ETag.
func (r *Register) Read(ctx context.Context) ([]byte, string, error) {
	out, err := r.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.key)})
	if err != nil {
		var nk *types.NoSuchKey
		var api smithy.APIError
		if errors.As(err, &nk) || (errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound")) {
			return nil, "", fmt.Errorf("read %s: %w", r, platform.ErrNotFound)
		}
		return nil, "", fmt.Errorf("read %s: %w", r, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxValue+1))
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", r, err)
	}
	if len(b) > maxValue {
		return nil, "", fmt.Errorf("read %s: record over %d bytes", r, maxValue)
	}
	return b, aws.ToString(out.ETag), nil
}

// Write puts value conditionally on version (its ETag, or absence).
func (r *Register) Write(ctx context.Context, value []byte, version string) (string, error) {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(r.bucket),
		Key:         aws.String(r.key),
		Body:        strings.NewReader(string(value)),
		ContentType: aws.String("application/json"),
	}
	if version == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(version)
	}
	out, err := r.api.PutObject(ctx, in)
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) {
			switch api.ErrorCode() {
			case "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey":
				return "", fmt.Errorf("write %s: %w: %w", r, platform.ErrConflict, err)
			}
		}
		return "", fmt.Errorf("write %s: %w", r, err)
	}
	return aws.ToString(out.ETag), nil
}

// Close does nothing: the SDK client holds no per-object resources.
func (r *Register) Close() error { return nil }
