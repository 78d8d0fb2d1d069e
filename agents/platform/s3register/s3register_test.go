package s3register

import (
	"context"
	"testing"

	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/registertest"
)

// TestConformance holds conditional writes on moto's S3 to the Register
// port's contract.
func TestConformance(t *testing.T) {
	ep := awstest.Endpoint(t)
	cfg := awstest.Config(ep)
	bucket := awstest.Names(t).OutputBucket
	awstest.Must(t, awstest.CreateBucket(context.Background(), cfg, bucket))
	n := 0
	registertest.Run(t, func(t *testing.T) platform.Register {
		n++
		r, err := Open(cfg, "s3://"+bucket+"/leases/test-"+string(rune('a'+n)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
}

func TestParseURL(t *testing.T) {
	tests := map[string]struct {
		raw         string
		bucket, key string
		ok          bool
	}{
		"bucket and key": {raw: "s3://b-1/leases/scaler", bucket: "b-1", key: "leases/scaler", ok: true},
		"no key":         {raw: "s3://b-1"},
		"no bucket":      {raw: "s3:///k"},
		"other scheme":   {raw: "file:///x/y"},
		"query":          {raw: "s3://b/k?region=x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, k, err := ParseURL(tc.raw)
			if (err == nil) != tc.ok || b != tc.bucket || k != tc.key {
				t.Fatalf("ParseURL(%q) = %q %q %v", tc.raw, b, k, err)
			}
		})
	}
}
