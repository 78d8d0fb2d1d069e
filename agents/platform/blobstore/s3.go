package blobstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/facecloud/facecloud/agents/awsconf"
)

// S3Config says which bucket an S3 store uses and how it writes.
type S3Config struct {
	// Bucket is the bucket's name.
	Bucket string
	// Prefix, when set, is put before every key (it should end in "/").
	Prefix string
	// SSE is the server-side encryption asked for on every Put: "" (the
	// bucket's default), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS).
	SSE string
	// KMSKeyID is the KMS key for SSE "aws:kms"; empty uses the AWS managed key.
	KMSKeyID string
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate states what is allowed.
func (c S3Config) Validate() error {
	if !bucketRE.MatchString(c.Bucket) {
		return fmt.Errorf("bucket name %q must be 3..63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit", c.Bucket)
	}
	if strings.HasPrefix(c.Prefix, "/") {
		return fmt.Errorf("key prefix %q must not start with '/'", c.Prefix)
	}
	switch c.SSE {
	case "", string(types.ServerSideEncryptionAes256):
		if c.KMSKeyID != "" {
			return fmt.Errorf("a KMS key id needs ssetype %s", types.ServerSideEncryptionAwsKms)
		}
	case string(types.ServerSideEncryptionAwsKms):
	default:
		return fmt.Errorf("server-side encryption %q unknown: use %s or %s", c.SSE, types.ServerSideEncryptionAes256, types.ServerSideEncryptionAwsKms)
	}
	return nil
}

// OpenS3 opens an S3 store on a client made from cfg. Objects are written
// through s3blob's upload manager, which sends an SDK checksum (CRC32) that
// S3 verifies, the content type, and the encryption asked for. When cfg has
// an endpoint override (an emulator), buckets are addressed path-style.
func OpenS3(ctx context.Context, cfg aws.Config, c S3Config) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if awsconf.Emulated(cfg) {
			o.UsePathStyle = true
		}
	})
	opts := &s3blob.Options{
		EncryptionType:             types.ServerSideEncryption(c.SSE),
		KMSEncryptionID:            c.KMSKeyID,
		RequestChecksumCalculation: cfg.RequestChecksumCalculation,
	}
	b, err := s3blob.OpenBucket(ctx, client, c.Bucket, opts)
	if err != nil {
		return nil, fmt.Errorf("open s3 bucket %s: %w", c.Bucket, err)
	}
	if c.Prefix != "" {
		b = blob.PrefixedBucket(b, c.Prefix)
	}
	return New(b), nil
}

// s3Params are the query parameters an s3:// store URL may carry.
var s3Params = map[string]string{
	"prefix":   "key prefix",
	"region":   "AWS region",
	"ssetype":  "server-side encryption: AES256 or aws:kms",
	"kmskeyid": "KMS key for aws:kms",
}

// ParseS3URL reads s3://BUCKET?prefix=P&ssetype=AES256|aws:kms&kmskeyid=K&region=R.
func ParseS3URL(u *url.URL) (S3Config, string, error) {
	if u.Scheme != "s3" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return S3Config{}, "", fmt.Errorf("s3 store URL %q: want s3://BUCKET[?prefix=P]", u.Redacted())
	}
	q := u.Query()
	for k := range q {
		if _, ok := s3Params[k]; !ok {
			known := make([]string, 0, len(s3Params))
			for p := range s3Params {
				known = append(known, p)
			}
			sort.Strings(known)
			return S3Config{}, "", fmt.Errorf("s3 store URL %q: parameter %q unknown (use %s)", u.Redacted(), k, strings.Join(known, ", "))
		}
	}
	c := S3Config{Bucket: u.Host, Prefix: q.Get("prefix"), SSE: q.Get("ssetype"), KMSKeyID: q.Get("kmskeyid")}
	return c, q.Get("region"), c.Validate()
}

// openS3URL opens an s3:// URL with the AWS settings of the environment
// (awsconf: region, endpoint override, profile; the SDK's credential chain).
func openS3URL(ctx context.Context, u *url.URL) (*Store, error) {
	c, region, err := ParseS3URL(u)
	if err != nil {
		return nil, err
	}
	ac := awsconf.FromEnv(os.Getenv)
	if region != "" {
		ac.Region = region
	}
	cfg, err := ac.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3 store %s: %w", u.Redacted(), err)
	}
	return OpenS3(ctx, cfg, c)
}
