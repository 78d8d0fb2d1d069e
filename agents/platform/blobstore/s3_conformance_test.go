package blobstore

import (
	"context"
	"testing"

	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/storetest"
)

// TestS3Conformance holds the S3 store (on moto) to the Store port's
// contract: one bucket, a fresh key prefix per subtest.
func TestS3Conformance(t *testing.T) {
	ep := awstest.Endpoint(t)
	ctx := context.Background()
	cfg := awstest.Config(ep)
	bucket := awstest.Names(t).InputBucket
	awstest.Must(t, awstest.CreateBucket(ctx, cfg, bucket))
	storetest.Run(t, func(t *testing.T) platform.Store {
		st, err := OpenS3(ctx, cfg, S3Config{Bucket: bucket, Prefix: awstest.Names(t).InputBucket + "/", SSE: "AES256"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}
