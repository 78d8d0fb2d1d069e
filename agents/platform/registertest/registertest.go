// Package registertest is the conformance suite of the Register port: every
// adapter's tests call Run.
package registertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// NewRegister returns a register with no record, used by one subtest only.
type NewRegister func(t *testing.T) platform.Register

// Run runs every clause of the Register contract.
func Run(t *testing.T, newRegister NewRegister) {
	tests := map[string]func(t *testing.T, r platform.Register){
		"CreateReadSwap":   testCreateReadSwap,
		"StaleWriteFails":  testStaleWrite,
		"SameBytesNewVer":  testSameBytes,
		"OneWinnerOfRaces": testRace,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, newRegister(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testCreateReadSwap(t *testing.T, r platform.Register) {
	ctx := ctxFor(t)
	if _, _, err := r.Read(ctx); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Read of a new register: %v, want ErrNotFound", err)
	}
	v1, err := r.Write(ctx, []byte("one"), "")
	if err != nil || v1 == "" {
		t.Fatalf("create: %q, %v", v1, err)
	}
	got, ver, err := r.Read(ctx)
	if err != nil || string(got) != "one" || ver != v1 {
		t.Fatalf("Read = %q %q %v, want %q %q", got, ver, err, "one", v1)
	}
	if _, err := r.Write(ctx, []byte("again"), ""); !errors.Is(err, platform.ErrConflict) {
		t.Fatalf("create over an existing record: %v, want ErrConflict", err)
	}
	v2, err := r.Write(ctx, []byte("two"), v1)
	if err != nil || v2 == v1 {
		t.Fatalf("swap: %q, %v (old %q)", v2, err, v1)
	}
	if got, ver, _ := r.Read(ctx); string(got) != "two" || ver != v2 {
		t.Fatalf("after swap Read = %q %q", got, ver)
	}
}

func testStaleWrite(t *testing.T, r platform.Register) {
	ctx := ctxFor(t)
	v1, err := r.Write(ctx, []byte("a"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(ctx, []byte("b"), v1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(ctx, []byte("c"), v1); !errors.Is(err, platform.ErrConflict) {
		t.Fatalf("write with a stale version: %v, want ErrConflict", err)
	}
	if got, _, _ := r.Read(ctx); string(got) != "b" {
		t.Fatalf("a refused write changed the record to %q", got)
	}
}

func testSameBytes(t *testing.T, r platform.Register) {
	ctx := ctxFor(t)
	v1, err := r.Write(ctx, []byte("same"), "")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := r.Write(ctx, []byte("same!"), v1)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := r.Write(ctx, []byte("same"), v2)
	if err != nil {
		t.Fatal(err)
	}
	// Different bytes, different versions (callers put a nonce in each
	// value, since the same bytes may give the same version again).
	if v3 == v2 {
		t.Fatalf("two writes gave the same version %q", v3)
	}
	if _, err := r.Write(ctx, []byte("x"), v2); !errors.Is(err, platform.ErrConflict) {
		t.Fatalf("write with version %q after it was replaced: %v", v2, err)
	}
}

func testRace(t *testing.T, r platform.Register) {
	ctx := ctxFor(t)
	v0, err := r.Write(ctx, []byte("start"), "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan int, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := r.Write(ctx, []byte(fmt.Sprintf("writer %d", i)), v0)
			switch {
			case err == nil:
				wins <- i
			case !errors.Is(err, platform.ErrConflict):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(wins)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var winners []int
	for i := range wins {
		winners = append(winners, i)
	}
	if len(winners) != 1 {
		t.Fatalf("%d writers won a race on one version, want 1: %v", len(winners), winners)
	}
	if got, _, _ := r.Read(ctx); string(got) != fmt.Sprintf("writer %d", winners[0]) {
		t.Fatalf("record %q, want the winner's", got)
	}
}
