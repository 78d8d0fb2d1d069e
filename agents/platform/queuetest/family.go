package queuetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// FamilySetup is one fresh QueueFamily with no members.
type FamilySetup struct {
	Family platform.QueueFamily
	// Prefix is the string every member's address starts with.
	Prefix string
	// Settle bounds how long the service takes to list a new member or
	// make a sent message receivable.
	Settle time.Duration
}

// NewFamily makes a FamilySetup for one subtest and arranges (t.Cleanup)
// to remove what it created.
type NewFamily func(t *testing.T) FamilySetup

// RunFamily runs every clause of the QueueFamily contract.
func RunFamily(t *testing.T, newFamily NewFamily) {
	tests := map[string]func(t *testing.T, s FamilySetup){
		"CreateOpenSend":  testFamilyCreateOpenSend,
		"ContainsOnly":    testFamilyContainsOnly,
		"MembersAndTouch": testFamilyMembersAndTouch,
		"Remove":          testFamilyRemove,
	}
	runClauses(t, tests, newFamily, func(s FamilySetup) error {
		if s.Family == nil || s.Prefix == "" {
			return fmt.Errorf("FamilySetup needs Family and Prefix: %+v", s)
		}
		return nil
	})
}

func familyCtx(t *testing.T, s FamilySetup) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute+10*s.Settle)
	t.Cleanup(cancel)
	return ctx
}

func create(t *testing.T, ctx context.Context, f platform.QueueFamily, suffix string) (platform.Queue, string) {
	t.Helper()
	q, addr, err := f.Create(ctx, suffix)
	if err != nil {
		t.Fatalf("Create(%q): %v", suffix, err)
	}
	t.Cleanup(func() { q.Close(); _ = f.Remove(context.Background(), addr) })
	return q, addr
}

func testFamilyCreateOpenSend(t *testing.T, s FamilySetup) {
	ctx := familyCtx(t, s)
	q, addr := create(t, ctx, s.Family, "host-1_a")
	if !strings.HasPrefix(addr, s.Prefix) || !s.Family.Contains(addr) {
		t.Fatalf("address %q of a new member: want it under %q and contained", addr, s.Prefix)
	}
	// Another handle, as a worker opens the address a request names.
	sender, err := s.Family.Open(ctx, addr)
	if err != nil {
		t.Fatalf("Open(%q): %v", addr, err)
	}
	defer sender.Close()
	send(t, ctx, sender, "reply")
	m := receiveOne(t, ctx, q, 2*s.Settle+5*time.Second)
	if string(m.Body) != "reply" {
		t.Fatalf("received %q, want %q", m.Body, "reply")
	}
	if err := q.Delete(ctx, m.Receipt); err != nil {
		t.Fatal(err)
	}
	// Creating it again returns the same member.
	again, addr2, err := s.Family.Create(ctx, "host-1_a")
	if err != nil || addr2 != addr {
		t.Fatalf("Create of an existing member = %q, %v; want %q", addr2, err, addr)
	}
	again.Close()
	if _, _, err := s.Family.Create(ctx, "bad/suffix"); err == nil {
		t.Fatal("Create with a '/' in the suffix succeeded")
	}
}

func testFamilyContainsOnly(t *testing.T, s FamilySetup) {
	ctx := familyCtx(t, s)
	for _, addr := range []string{
		"", s.Prefix, s.Prefix + "a/b", s.Prefix + "a?x=1", s.Prefix + "a&name=other", s.Prefix + "a b",
		s.Prefix + "../x", s.Prefix + strings.Repeat("x", 41), "x" + s.Prefix + "a", strings.TrimSuffix(s.Prefix, s.Prefix[len(s.Prefix)-1:]) + "a",
	} {
		if s.Family.Contains(addr) {
			t.Errorf("Contains(%q) = true", addr)
		}
		if _, err := s.Family.Open(ctx, addr); !errors.Is(err, platform.ErrNotFound) {
			t.Errorf("Open(%q): %v, want ErrNotFound", addr, err)
		}
	}
	if !s.Family.Contains(s.Prefix + "ok-1") {
		t.Errorf("Contains(%q) = false", s.Prefix+"ok-1")
	}
	// A contained address that was never created does not open.
	if _, err := s.Family.Open(ctx, s.Prefix+"never-created"); !errors.Is(err, platform.ErrNotFound) {
		t.Errorf("Open of a member never created: %v, want ErrNotFound", err)
	}
}

func testFamilyMembersAndTouch(t *testing.T, s FamilySetup) {
	ctx := familyCtx(t, s)
	before := time.Now().Add(-2 * time.Second)
	_, a := create(t, ctx, s.Family, "a")
	_, b := create(t, ctx, s.Family, "b")
	members := func() map[string]time.Time {
		ms, err := s.Family.Members(ctx)
		if err != nil {
			t.Fatalf("Members: %v", err)
		}
		out := map[string]time.Time{}
		for _, m := range ms {
			out[m.Address] = m.Touched
		}
		return out
	}
	deadline := time.Now().Add(s.Settle + time.Second)
	got := members()
	for (got[a].IsZero() || got[b].IsZero()) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got = members()
	}
	if len(got) != 2 || got[a].Before(before) || got[b].Before(before) || got[a].After(time.Now().Add(2*time.Second)) {
		t.Fatalf("Members = %v, want %s and %s touched about now", got, a, b)
	}
	// The record is kept in whole seconds on some services: wait past one.
	time.Sleep(1100 * time.Millisecond)
	if err := s.Family.Touch(ctx, b); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	after := members()
	if !after[b].After(got[b]) || after[a] != got[a] {
		t.Fatalf("after touching b: %v, was %v; want only b later", after, got)
	}
	if err := s.Family.Touch(ctx, s.Prefix+"a/b"); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Touch of a foreign address: %v, want ErrNotFound", err)
	}
}

func testFamilyRemove(t *testing.T, s FamilySetup) {
	ctx := familyCtx(t, s)
	q, addr := create(t, ctx, s.Family, "gone")
	sender, err := s.Family.Open(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	send(t, ctx, q, "left behind")
	if err := s.Family.Remove(ctx, addr); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := s.Family.Remove(ctx, addr); err != nil {
		t.Fatalf("Remove again: %v", err)
	}
	deadline := time.Now().Add(s.Settle + time.Second)
	for {
		err := sender.Send(ctx, []byte("too late"))
		if errors.Is(err, platform.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Send to a removed member: %v, want ErrNotFound", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := s.Family.Open(ctx, addr); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("Open of a removed member: %v, want ErrNotFound", err)
	}
	ms, err := s.Family.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Address == addr {
			t.Fatalf("Members still lists removed %s", addr)
		}
	}
}
