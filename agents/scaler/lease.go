package scaler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// Lease elects one scaler of many (one per web host) to act, through a
// Register all of them can write by compare-and-swap.
//
// The record names its holder and a time to live. The holder renews it (a
// conditional write on the version it wrote) whenever half of that time has
// passed. A scaler that finds a record written by someone else waits until
// it has seen that same version unchanged for the whole time to live on its
// own clock, then takes it over with a conditional write on that version;
// only one of several contenders can win. No two clocks are compared: the
// holder counts its validity from before its write, a contender from after
// reading it, and the holder gives up acting a quarter of the time to live
// before a contender may take over, which absorbs scheduling delays and
// clock rate differences. A holder that stops cleanly writes the record as
// released, so the others take over at their next poll.
type Lease struct {
	reg    platform.Register
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu         sync.Mutex
	mine       string    // the version this process wrote last, if it still holds the lease
	wroteAt    time.Time // when the write of mine began
	seen       string    // the version last read while someone else held it
	seenSince  time.Time // when seen was first read
	seenHolder string
}

// leaseRecord is the register's content.
type leaseRecord struct {
	// Holder is who holds the lease; empty when released.
	Holder string `json:"holder"`
	// TTLMS is how long the record stays valid without renewal.
	TTLMS int64 `json:"ttl_ms"`
	// Written is the writer's wall clock, for people reading the record;
	// the algorithm never compares it with another clock.
	Written time.Time `json:"written"`
	// Nonce makes every write's bytes, and so its version, new.
	Nonce string `json:"nonce"`
}

// Lease bounds.
const (
	MinLeaseTTL = time.Second
	MaxLeaseTTL = 10 * time.Minute
)

// NewLease returns holder's view of the lease in reg. now nil means time.Now
// (whose readings carry the monotonic clock the lease relies on).
func NewLease(reg platform.Register, holder string, ttl time.Duration, now func() time.Time) (*Lease, error) {
	if holder == "" || len(holder) > 200 {
		return nil, fmt.Errorf("lease holder name must be 1..200 bytes, got %d", len(holder))
	}
	if ttl < MinLeaseTTL || ttl > MaxLeaseTTL {
		return nil, fmt.Errorf("lease time to live %s out of range %s..%s", ttl, MinLeaseTTL, MaxLeaseTTL)
	}
	if now == nil {
		now = time.Now
	}
	return &Lease{reg: reg, holder: holder, ttl: ttl, now: now}, nil
}

// Holder is the name this process holds the lease under.
func (l *Lease) Holder() string { return l.holder }

// Leading reports whether this process may act now.
func (l *Lease) Leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leadingAt(l.now())
}

func (l *Lease) leadingAt(t time.Time) bool {
	return l.mine != "" && t.Before(l.wroteAt.Add(l.ttl-l.ttl/4))
}

// Step looks at the lease and renews or takes it when it should; it
// returns whether this process leads afterwards. An error (the register
// unreachable) leaves the lease as it was: the holder keeps leading until
// its validity runs out.
func (l *Lease) Step(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.now()
	if l.mine != "" && start.Before(l.wroteAt.Add(l.ttl/2)) {
		return true, nil // fresh enough: no call at all
	}
	value, version, err := l.reg.Read(ctx)
	switch {
	case errors.Is(err, platform.ErrNotFound):
		return l.take(ctx, "", start)
	case err != nil:
		return l.leadingAt(start), fmt.Errorf("read lease: %w", err)
	}
	if version == l.mine {
		return l.take(ctx, version, start) // renew
	}
	l.mine = ""
	var rec leaseRecord
	ttl := l.ttl
	if json.Unmarshal(value, &rec) == nil {
		if rec.Holder == "" {
			return l.take(ctx, version, start) // released
		}
		if d := time.Duration(rec.TTLMS) * time.Millisecond; d >= MinLeaseTTL && d <= MaxLeaseTTL {
			ttl = d
		}
	}
	if version != l.seen {
		l.seen, l.seenSince, l.seenHolder = version, start, rec.Holder
		return false, nil
	}
	if start.Sub(l.seenSince) < ttl {
		return false, nil
	}
	return l.take(ctx, version, start) // not renewed for a whole time to live
}

// take writes the record as held by this process over version.
func (l *Lease) take(ctx context.Context, version string, start time.Time) (bool, error) {
	b, err := l.record(l.holder)
	if err != nil {
		return false, err
	}
	v, err := l.reg.Write(ctx, b, version)
	switch {
	case errors.Is(err, platform.ErrConflict):
		l.mine = ""
		return false, nil
	case err != nil:
		return l.leadingAt(start), fmt.Errorf("write lease: %w", err)
	}
	l.mine, l.wroteAt = v, start
	return true, nil
}

func (l *Lease) record(holder string) ([]byte, error) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	b, err := json.Marshal(leaseRecord{Holder: holder, TTLMS: l.ttl.Milliseconds(), Written: time.Now().UTC(), Nonce: hex.EncodeToString(nonce[:])})
	if err != nil {
		return nil, fmt.Errorf("encode lease: %w", err)
	}
	return b, nil
}

// Release gives the lease up if this process holds it, so another takes it
// at its next poll instead of after the time to live.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mine == "" {
		return nil
	}
	b, err := l.record("")
	if err != nil {
		return err
	}
	_, err = l.reg.Write(ctx, b, l.mine)
	l.mine = ""
	if err != nil && !errors.Is(err, platform.ErrConflict) {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// OtherHolder is the holder of the version last seen held by someone else.
func (l *Lease) OtherHolder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seenHolder
}
