package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/facecloud/facecloud/agents/platform"
)

// Backends are named by URL; the scheme picks the adapter. Each adapter's
// wiring file (backends_*.go) registers its openers in init.
//
//	sqlite:///DIR/queue.db?name=requests   local queue file (sqlitequeue)
//	https://sqs.REGION.amazonaws.com/ACCOUNT/NAME   SQS queue URL (sqsqueue)
//	file:///DIR                            local store (blobstore over fileblob)
//	s3://BUCKET?prefix=P                   S3 store (blobstore over s3blob)
//	asg://GROUP                            EC2 Auto Scaling group (asgfleet)
type opener[T any] func(ctx context.Context, env *environment, u *url.URL) (T, error)

var (
	queueOpeners    = map[string]opener[platform.Queue]{}
	storeOpeners    = map[string]opener[platform.Store]{}
	fleetOpeners    = map[string]opener[platform.Fleet]{}
	familyOpeners   = map[string]opener[platform.QueueFamily]{}
	registerOpeners = map[string]opener[platform.Register]{}
)

func openQueue(ctx context.Context, env *environment, raw string) (platform.Queue, error) {
	return openBackend(ctx, env, "queue", raw, queueOpeners)
}

func openStore(ctx context.Context, env *environment, raw string) (platform.Store, error) {
	return openBackend(ctx, env, "store", raw, storeOpeners)
}

func openFleet(ctx context.Context, env *environment, raw string) (platform.Fleet, error) {
	return openBackend(ctx, env, "fleet", raw, fleetOpeners)
}

// openFamily opens the reply queue family a --reply-prefix names: the URL
// of a queue name prefix (https://sqs.REGION.amazonaws.com/ACCOUNT/PREFIX,
// or sqlite:///DIR/queue.db?name=PREFIX).
func openFamily(ctx context.Context, env *environment, raw string) (platform.QueueFamily, error) {
	return openBackend(ctx, env, "reply queue prefix", raw, familyOpeners)
}

// openRegister opens the record a --lease names (s3://BUCKET/KEY).
func openRegister(ctx context.Context, env *environment, raw string) (platform.Register, error) {
	return openBackend(ctx, env, "lease", raw, registerOpeners)
}

func openBackend[T any](ctx context.Context, env *environment, kind, raw string, openers map[string]opener[T]) (T, error) {
	var zero T
	u, err := url.Parse(raw)
	if err != nil {
		return zero, fmt.Errorf("%s URL %q: %w", kind, raw, err)
	}
	open, ok := openers[u.Scheme]
	if !ok {
		schemes := make([]string, 0, len(openers))
		for s := range openers {
			schemes = append(schemes, s+"://")
		}
		sort.Strings(schemes)
		return zero, fmt.Errorf("%s URL %q: scheme %q not supported (use %s)", kind, raw, u.Scheme, strings.Join(schemes, ", "))
	}
	b, err := open(ctx, env, u)
	if err != nil {
		return zero, fmt.Errorf("open %s %s: %w", kind, raw, err)
	}
	return b, nil
}

// The data directory (--data DIR) of the local system and of the enroll and
// recognize commands: one SQLite file for all queues, one store tree.
const (
	RequestQueueName  = "requests"
	ReplyQueueName    = "replies"
	DeadLetterSuffix  = "-dlq"
	localQueueFile    = "queue.db"
	localStoreDirName = "store"
)

// localQueueURL names queue name in the data directory's queue file.
func localQueueURL(dataDir, name string) string {
	abs, _ := filepath.Abs(filepath.Join(dataDir, localQueueFile))
	return (&url.URL{Scheme: "sqlite", Path: filepath.ToSlash(abs), RawQuery: url.Values{"name": {name}}.Encode()}).String()
}

// localStoreURL names the data directory's store tree.
func localStoreURL(dataDir string) string {
	abs, _ := filepath.Abs(filepath.Join(dataDir, localStoreDirName))
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}
