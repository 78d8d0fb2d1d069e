package blobstore

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/platform"
)

func TestParseS3URL(t *testing.T) {
	tests := map[string]struct {
		raw     string
		want    S3Config
		region  string
		wantErr string
	}{
		"bucket":          {raw: "s3://facecloud-dev-input", want: S3Config{Bucket: "facecloud-dev-input"}},
		"all options":     {raw: "s3://b-1?prefix=p/&ssetype=aws:kms&kmskeyid=k1&region=eu-west-1", want: S3Config{Bucket: "b-1", Prefix: "p/", SSE: "aws:kms", KMSKeyID: "k1"}, region: "eu-west-1"},
		"sse-s3":          {raw: "s3://bbb?ssetype=AES256", want: S3Config{Bucket: "bbb", SSE: "AES256"}},
		"unknown param":   {raw: "s3://bbb?endpoint=x", wantErr: `parameter "endpoint" unknown`},
		"bad sse":         {raw: "s3://bbb?ssetype=rot13", wantErr: "use AES256 or aws:kms"},
		"kms key alone":   {raw: "s3://bbb?kmskeyid=k", wantErr: "needs ssetype aws:kms"},
		"path":            {raw: "s3://bbb/dir", wantErr: "want s3://BUCKET"},
		"bad bucket":      {raw: "s3://Upper_Case", wantErr: "3..63 characters"},
		"absolute prefix": {raw: "s3://bbb?prefix=/x", wantErr: "must not start with '/'"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, region, err := ParseS3URL(u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseS3URL(%s) error %v, want %q", tc.raw, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || region != tc.region {
				t.Fatalf("ParseS3URL(%s) = %+v, %q, %v; want %+v, %q", tc.raw, got, region, err, tc.want, tc.region)
			}
		})
	}
}

func TestMotoS3PutChecksumSSE(t *testing.T) {
	ep := awstest.Endpoint(t)
	ctx := context.Background()
	cfg := awstest.Config(ep)
	bucket := awstest.Names(t).InputBucket
	awstest.Must(t, awstest.CreateBucket(ctx, cfg, bucket))
	raw := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })

	tests := map[string]struct {
		cfg     S3Config
		wantSSE types.ServerSideEncryption
	}{
		"bucket default": {cfg: S3Config{Bucket: bucket, Prefix: "default/"}, wantSSE: types.ServerSideEncryptionAes256},
		"sse-s3":         {cfg: S3Config{Bucket: bucket, Prefix: "sse-s3/", SSE: "AES256"}, wantSSE: types.ServerSideEncryptionAes256},
		"sse-kms":        {cfg: S3Config{Bucket: bucket, Prefix: "kms/", SSE: "aws:kms"}, wantSSE: types.ServerSideEncryptionAwsKms},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st, err := OpenS3(ctx, cfg, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			data := []byte("\xff\xd8 not really a jpeg")
			if err := st.Put(ctx, "inputs/a.jpg", data, "image/jpeg"); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(ctx, "inputs/a.jpg")
			if err != nil || string(got) != string(data) {
				t.Fatalf("Get = %q, %v", got, err)
			}
			head, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(tc.cfg.Prefix + "inputs/a.jpg"), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(head.ContentType) != "image/jpeg" {
				t.Errorf("content type %q, want image/jpeg", aws.ToString(head.ContentType))
			}
			if head.ServerSideEncryption != tc.wantSSE {
				t.Errorf("server-side encryption %q, want %q", head.ServerSideEncryption, tc.wantSSE)
			}
			if aws.ToString(head.ChecksumCRC32) == "" && aws.ToString(head.ChecksumCRC32C) == "" && aws.ToString(head.ChecksumCRC64NVME) == "" {
				t.Errorf("object stored without an SDK checksum: %+v", head)
			}
			keys, err := st.List(ctx, "inputs/")
			if err != nil || len(keys) != 1 || keys[0] != "inputs/a.jpg" {
				t.Fatalf("List = %v, %v", keys, err)
			}
			if ok, err := st.Exists(ctx, "inputs/b.jpg"); ok || err != nil {
				t.Fatalf("Exists(missing) = %v, %v", ok, err)
			}
			if _, err := st.Get(ctx, "inputs/b.jpg"); !errors.Is(err, platform.ErrNotFound) {
				t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestMotoS3OpenURLFromEnv(t *testing.T) {
	ep := awstest.Endpoint(t)
	ctx := context.Background()
	bucket := awstest.Names(t).OutputBucket
	awstest.Must(t, awstest.CreateBucket(ctx, awstest.Config(ep), bucket))
	for _, kv := range awstest.Env(ep) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	u, _ := url.Parse("s3://" + bucket + "?prefix=results/")
	st, err := OpenURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Put(ctx, "x.json", []byte(`{}`), "application/json"); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Exists(ctx, "x.json"); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
}

// TestS3ListFailsWhenConnectionsDrop: a listing whose requests die with the
// connection (an error wrapping io.EOF) must fail, not pass for an empty
// listing. The server here stands in for an S3 endpoint whose connections
// are cut before it answers.
func TestS3ListFailsWhenConnectionsDrop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	cfg := awstest.Config(srv.URL)
	cfg.RetryMaxAttempts = 1
	st, err := OpenS3(context.Background(), cfg, S3Config{Bucket: "some-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.List(context.Background(), "gallery/")
	if err == nil {
		t.Fatalf("List over dropped connections = %v and no error", keys)
	}
	if !errors.Is(err, io.EOF) {
		t.Logf("List error (no io.EOF inside, still an error): %v", err)
	}
}
