package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/privacy"
)

// frontDoor holds the settings of the web agent's keys and of the
// retention sweeper, shared by web and local.
type frontDoor struct {
	keysRefresh     time.Duration
	inputRetention  time.Duration
	resultRetention time.Duration
	sweepEvery      time.Duration
}

// keyUseFlush is how often a web agent writes when each key was last used.
const keyUseFlush = time.Minute

func frontDoorFlags(fs *flag.FlagSet) *frontDoor {
	f := &frontDoor{}
	fs.DurationVar(&f.keysRefresh, "keys-refresh", 5*time.Second, "how often the API keys are re-read from the store, so a revocation reaches every web host (1s..5m)")
	fs.DurationVar(&f.inputRetention, "input-retention", privacy.DefaultInputRetention, "uploaded images older than this are deleted by the sweeper (1h..87600h)")
	fs.DurationVar(&f.resultRetention, "result-retention", privacy.DefaultResultRetention, "results older than this are deleted by the sweeper (1h..87600h)")
	fs.DurationVar(&f.sweepEvery, "sweep-every", time.Hour, "how often the retention sweeper runs over file:// stores (S3 buckets expire by their lifecycle rules); 0 turns it off (0 or 1m..24h)")
	return f
}

func (f *frontDoor) validate() error {
	var errs []error
	if f.keysRefresh < time.Second || f.keysRefresh > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--keys-refresh %s out of range 1s..5m", f.keysRefresh))
	}
	if f.sweepEvery != 0 && (f.sweepEvery < time.Minute || f.sweepEvery > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("--sweep-every %s out of range 0 (off) or 1m..24h", f.sweepEvery))
	}
	for _, r := range []privacy.Rule{{Store: nopStore{}, Prefix: job.InputPrefix, MaxAge: f.inputRetention}, {Store: nopStore{}, Prefix: job.ResultPrefix, MaxAge: f.resultRetention}} {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// nopStore lets validate check a rule's ages before any store is open.
type nopStore struct{ platform.Store }

// retentionRules are the sweeper's rules for the stores that are file://
// URLs; S3 buckets are expired by the stack's lifecycle rules instead.
func (f *frontDoor) retentionRules(inputURL string, inputs platform.Store, outputURL string, outputs platform.Store) []privacy.Rule {
	if f.sweepEvery == 0 {
		return nil
	}
	var rules []privacy.Rule
	if isFileURL(inputURL) {
		rules = append(rules, privacy.Rule{Store: inputs, Prefix: job.InputPrefix, MaxAge: f.inputRetention})
	}
	if isFileURL(outputURL) {
		rules = append(rules, privacy.Rule{Store: outputs, Prefix: job.ResultPrefix, MaxAge: f.resultRetention})
	}
	return rules
}

func isFileURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "file"
}

// start loads the keys from store (failing if it cannot) and runs, until
// ctx ends, their refresh and the sweeper; wait waits for both to stop.
func (f *frontDoor) start(ctx context.Context, store platform.Store, rules []privacy.Rule, openRecognition bool, log *slog.Logger) (ring *keys.Ring, wait func(), err error) {
	ring = keys.NewRing(keys.NewStore(store), log.With("part", "keys"))
	if _, err := ring.Refresh(ctx); err != nil {
		return nil, nil, fmt.Errorf("load API keys: %w", err)
	}
	switch {
	case ring.Len() == 0 && openRecognition:
		log.Warn("no API key in the store: only recognition (--open-recognition), /healthz and /readyz answer; create one with 'facecloud keys create'")
	case ring.Len() == 0:
		log.Warn("no API key in the store: every call but /healthz and /readyz is refused; create one with 'facecloud keys create'")
	default:
		log.Info("API keys loaded", "keys", ring.Len(), "refresh", f.keysRefresh, "open_recognition", openRecognition)
	}
	var wg sync.WaitGroup
	wg.Go(func() { ring.Run(ctx, f.keysRefresh, keyUseFlush) })
	if len(rules) > 0 {
		for _, r := range rules {
			log.Info("retention sweeper", "prefix", r.Prefix, "max_age", r.MaxAge, "every", f.sweepEvery)
		}
		wg.Go(func() { privacy.RunSweeper(ctx, rules, f.sweepEvery, log.With("part", "retention")) })
	}
	return ring, wg.Wait, nil
}

// adminKeyFile is where facecloud local writes the admin key it creates.
const adminKeyFile = "admin.key"

// ensureAdminKey creates an admin key when store holds no key at all (a
// first start), writes it to DIR/admin.key readable only by the user, and
// shows it once on stderr. It returns the file's path, or "" when keys
// existed already.
func ensureAdminKey(ctx context.Context, env *environment, store platform.Store, dataDir string) (string, error) {
	ks := keys.NewStore(store)
	empty, err := ks.Empty(ctx)
	if err != nil {
		return "", fmt.Errorf("look for API keys: %w", err)
	}
	if !empty {
		return "", nil
	}
	secret, k, err := ks.Create(ctx, "local admin", []keys.Scope{keys.Admin})
	if err != nil {
		return "", err
	}
	path, err := filepath.Abs(filepath.Join(dataDir, adminKeyFile))
	if err != nil {
		return "", err
	}
	if err := writePrivate(path, secret+"\n"); err != nil {
		_ = ks.Revoke(ctx, k.ID)
		return "", fmt.Errorf("write the admin key: %w", err)
	}
	fmt.Fprintf(env.stderr, "facecloud local: created admin API key %s, shown this once here and kept in %s (readable only by you):\n%s\n", k.ID, path, secret)
	return path, nil
}

// writePrivate writes data to path with mode 0600, replacing any file
// there atomically (a temporary file in the same directory, renamed).
func writePrivate(path, data string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".admin-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
