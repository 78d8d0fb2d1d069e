package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// Default retentions: the stack's S3 lifecycle rules expire inputs after
// 7 days and results after 30 (stack config inputRetentionDays,
// outputRetentionDays); the local sweeper uses the same.
const (
	DefaultInputRetention  = 7 * 24 * time.Hour
	DefaultResultRetention = 30 * 24 * time.Hour
)

// Rule expires the objects under Prefix (inputs/<id>, results/<id>.json)
// whose request id says they are older than MaxAge. The age comes from the
// UUIDv7 id in the key, so no object's metadata is read; keys without such
// an id are left alone.
type Rule struct {
	Store  platform.Store
	Prefix string
	MaxAge time.Duration
}

// Validate states the allowed range.
func (r Rule) Validate() error {
	if r.Store == nil {
		return errors.New("retention rule without a store")
	}
	if r.Prefix != job.InputPrefix && r.Prefix != job.ResultPrefix {
		return fmt.Errorf("retention prefix %q: want %s or %s", r.Prefix, job.InputPrefix, job.ResultPrefix)
	}
	if r.MaxAge < time.Hour || r.MaxAge > 10*365*24*time.Hour {
		return fmt.Errorf("retention %s of %s out of range 1h..87600h (10 years)", r.MaxAge, r.Prefix)
	}
	return nil
}

// Sweep deletes the objects of rule r older than r.MaxAge at now and
// returns how many it deleted: one List, and a Delete per expired object.
func Sweep(ctx context.Context, r Rule, now time.Time) (int, error) {
	keys, err := r.Store.List(ctx, r.Prefix)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", r.Prefix, err)
	}
	cutoff := now.Add(-r.MaxAge)
	n := 0
	for _, k := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(k, r.Prefix), ".json")
		t, err := job.IDTime(id)
		if err != nil || !t.Before(cutoff) {
			continue
		}
		if err := r.Store.Delete(ctx, k); err != nil {
			return n, fmt.Errorf("expire %s: %w", k, err)
		}
		n++
	}
	return n, nil
}

// RunSweeper sweeps every rule now and then every interval until ctx ends,
// logging what it expired and any failure (the next sweep tries again).
func RunSweeper(ctx context.Context, rules []Rule, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, r := range rules {
			n, err := Sweep(ctx, r, time.Now())
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("retention sweep failed", "prefix", r.Prefix, "err", err)
			case n > 0:
				log.Info("retention sweep expired objects", "prefix", r.Prefix, "objects", n, "older_than", r.MaxAge)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
