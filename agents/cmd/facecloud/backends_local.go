package main

import (
	"context"
	"net/url"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

// Local and bucket adapters: the SQLite queue file, and stores over
// gocloud.dev/blob (file:// directories and s3:// buckets share one opener).
func init() {
	queueOpeners["sqlite"] = func(ctx context.Context, _ *environment, u *url.URL) (platform.Queue, error) {
		return sqlitequeue.OpenURL(ctx, u)
	}
	openBlob := func(ctx context.Context, _ *environment, u *url.URL) (platform.Store, error) {
		return blobstore.OpenURL(ctx, u)
	}
	storeOpeners["file"] = openBlob
	storeOpeners["s3"] = openBlob
	familyOpeners["sqlite"] = func(ctx context.Context, _ *environment, u *url.URL) (platform.QueueFamily, error) {
		return sqlitequeue.OpenFamily(ctx, u)
	}
}
