// Package storetest is the conformance suite of the Store port, in the
// manner of gocloud.dev's drivertest: every adapter's tests call Run with a
// constructor, so all adapters are held to the same contract.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// NewStore returns an empty store for one subtest and arranges (t.Cleanup)
// for it to be closed and removed.
type NewStore func(t *testing.T) platform.Store

// Run runs every clause of the Store contract against stores from newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := map[string]func(t *testing.T, s platform.Store){
		"RoundTrip":         testRoundTrip,
		"Overwrite":         testOverwrite,
		"NotFound":          testNotFound,
		"Exists":            testExists,
		"ListPrefixSorted":  testListPrefixSorted,
		"ListManyPages":     testListManyPages,
		"ListOrder":         testListOrder,
		"Subdirectories":    testSubdirectories,
		"ConcurrentPutsGet": testConcurrentPuts,
		"Delete":            testDelete,
	}
	for _, name := range slices.Sorted(maps.Keys(tests)) {
		t.Run(name, func(t *testing.T) {
			tests[name](t, newStore(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s platform.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctxFor(t), key, data, "application/octet-stream"); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func testRoundTrip(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	binary := make([]byte, 70000)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	cases := map[string]struct {
		key         string
		data        []byte
		contentType string
	}{
		"binary":       {"inputs/a.jpg", binary, "image/jpeg"},
		"text":         {"outputs/b.json", []byte(`{"name":"Zoë"}`), "application/json"},
		"empty":        {"empty", []byte{}, ""},
		"unicode key":  {"gallery/Zoë Ångström/0.json", []byte("x"), ""},
		"dotted parts": {"a.b/c.d.e", []byte("y"), "text/plain"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := s.Put(ctx, c.key, c.data, c.contentType); err != nil {
				t.Fatalf("Put(%q): %v", c.key, err)
			}
			got, err := s.Get(ctx, c.key)
			if err != nil {
				t.Fatalf("Get(%q): %v", c.key, err)
			}
			if !bytes.Equal(got, c.data) {
				t.Fatalf("Get(%q) = %d bytes, want the %d put", c.key, len(got), len(c.data))
			}
		})
	}
}

func testOverwrite(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	mustPut(t, s, "k", []byte("first, longer value"))
	mustPut(t, s, "k", []byte("second"))
	got, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "second" {
		t.Fatalf("after overwrite Get = %q, want %q", got, "second")
	}
	keys, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("after overwrite List = %q, want [k]", keys)
	}
}

func testNotFound(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	mustPut(t, s, "present/x", []byte("x"))
	for _, key := range []string{"absent", "present/y", "present/x/deeper"} {
		_, err := s.Get(ctx, key)
		if !errors.Is(err, platform.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want one wrapping platform.ErrNotFound", key, err)
		}
	}
}

func testExists(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	mustPut(t, s, "dir/obj", []byte("1"))
	cases := map[string]struct {
		key  string
		want bool
	}{
		"object":        {"dir/obj", true},
		"missing":       {"dir/other", false},
		"prefix only":   {"dir", false},
		"longer prefix": {"dir/obj2", false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := s.Exists(ctx, c.key)
			if err != nil {
				t.Fatalf("Exists(%q): %v", c.key, err)
			}
			if got != c.want {
				t.Fatalf("Exists(%q) = %v, want %v", c.key, got, c.want)
			}
		})
	}
}

func testListPrefixSorted(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	// Put in an order that is neither sorted nor reverse-sorted.
	for _, k := range []string{"b/2", "a/1", "b/10", "c", "b/1", "ba/1", "a/0"} {
		mustPut(t, s, k, []byte(k))
	}
	cases := map[string]struct {
		prefix string
		want   []string
	}{
		"all":         {"", []string{"a/0", "a/1", "b/1", "b/10", "b/2", "ba/1", "c"}},
		"directory":   {"b/", []string{"b/1", "b/10", "b/2"}},
		"partial":     {"b", []string{"b/1", "b/10", "b/2", "ba/1"}},
		"key prefix":  {"b/1", []string{"b/1", "b/10"}},
		"none":        {"zzz", nil},
		"no such dir": {"nosuch/dir/", nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := s.List(ctx, c.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", c.prefix, err)
			}
			if len(got) == 0 && len(c.want) == 0 {
				return
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("List(%q) = %q, want %q", c.prefix, got, c.want)
			}
		})
	}
}

// testListManyPages lists more keys than a page of S3 or of fileblob's
// default holds: List returns every one, in order, and none from beside
// the prefix.
func testListManyPages(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	const n = 1100 // S3 pages hold 1,000
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("many/%05d", i)
	}
	keys := append([]string{"man", "manz/0", "mana"}, want...)
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	next := make(chan string)
	for range 16 {
		wg.Go(func() {
			for k := range next {
				if err := s.Put(ctx, k, []byte(k), "application/octet-stream"); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", k, err)
				}
			}
		})
	}
	// Put in an order that is neither sorted nor reverse-sorted.
	for i := range keys {
		next <- keys[(i*7919)%len(keys)]
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "many/")
	if err != nil {
		t.Fatalf("List(many/): %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(many/) = %d keys (first %q, last %q), want the %d keys many/00000..many/%05d", len(got), got[:min(len(got), 1)], got[max(len(got)-1, 0):], n, n-1)
	}
	all, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List(\"\"): %v", err)
	}
	if len(all) != len(keys) {
		t.Fatalf("List(\"\") = %d keys, want %d", len(all), len(keys))
	}
}

func testSubdirectories(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	keys := []string{"gallery/Paul/1.json", "gallery/Paul/2.json", "gallery/Zoe/deep/er/1.json", "gallery.json"}
	for _, k := range keys {
		mustPut(t, s, k, []byte(k))
	}
	for _, k := range keys {
		got, err := s.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if string(got) != k {
			t.Fatalf("Get(%q) = %q", k, got)
		}
	}
	got, err := s.List(ctx, "gallery/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gallery/Paul/1.json", "gallery/Paul/2.json", "gallery/Zoe/deep/er/1.json"}
	if !slices.Equal(got, want) {
		t.Fatalf("List(gallery/) = %q, want %q (flat listing of every depth)", got, want)
	}
}

// testDelete checks the Delete contract: the object is gone for Get,
// Exists and List; its neighbours, including keys it is a prefix of, stay;
// a missing key (also one deleted twice) is not an error; and the key can
// be written again. (A key and a longer key it is a prefix of cannot both
// hold objects in a file store, so "dir" here is a prefix only.)
func testDelete(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	for _, k := range []string{"gallery/Paul/1.json", "gallery/Paul/2.json", "gallery/Paula/1.json", "dir/obj"} {
		mustPut(t, s, k, []byte(k))
	}
	cases := map[string]struct {
		del  []string
		want []string // every key left afterwards
	}{
		"one of two":          {[]string{"gallery/Paul/1.json"}, []string{"dir/obj", "gallery/Paul/2.json", "gallery/Paula/1.json"}},
		"twice":               {[]string{"gallery/Paul/1.json"}, []string{"dir/obj", "gallery/Paul/2.json", "gallery/Paula/1.json"}},
		"missing":             {[]string{"gallery/Nobody/1.json", "absent", "dir/obj/deeper"}, []string{"dir/obj", "gallery/Paul/2.json", "gallery/Paula/1.json"}},
		"prefix key":          {[]string{"dir"}, []string{"dir/obj", "gallery/Paul/2.json", "gallery/Paula/1.json"}},
		"last of a directory": {[]string{"gallery/Paul/2.json"}, []string{"dir/obj", "gallery/Paula/1.json"}},
	}
	// The cases build on each other, in this order.
	for _, name := range []string{"one of two", "twice", "missing", "prefix key", "last of a directory"} {
		c := cases[name]
		t.Run(name, func(t *testing.T) {
			for _, k := range c.del {
				if err := s.Delete(ctx, k); err != nil {
					t.Fatalf("Delete(%q): %v", k, err)
				}
				if _, err := s.Get(ctx, k); !errors.Is(err, platform.ErrNotFound) {
					t.Errorf("Get(%q) after Delete: error %v, want ErrNotFound", k, err)
				}
				if ok, err := s.Exists(ctx, k); err != nil || ok {
					t.Errorf("Exists(%q) after Delete = %v, %v; want false", k, ok, err)
				}
			}
			got, err := s.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("List after deleting %q = %q, want %q", c.del, got, c.want)
			}
		})
	}
	mustPut(t, s, "gallery/Paul/1.json", []byte("again"))
	got, err := s.Get(ctx, "gallery/Paul/1.json")
	if err != nil || string(got) != "again" {
		t.Fatalf("Get after deleting and putting again = %q, %v", got, err)
	}
}

// testConcurrentPuts races writers of one key against readers: every read
// must be one whole value that some writer put, never a mix or a prefix.
func testConcurrentPuts(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	const writers, rounds, size = 4, 15, 64 * 1024
	value := func(w, r int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%02d-%02d|", w, r)), size/6)
	}
	valid := map[string]bool{}
	for w := range writers {
		for r := range rounds {
			valid[string(value(w, r))] = true
		}
	}
	mustPut(t, s, "hot", value(0, 0))
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds*2)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if err := s.Put(ctx, "hot", value(w, r), ""); err != nil {
					errs <- fmt.Errorf("Put: %w", err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	reads := 0
	var mu sync.Mutex
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				got, err := s.Get(ctx, "hot")
				if err != nil {
					errs <- fmt.Errorf("Get during puts: %w", err)
					return
				}
				if !valid[string(got)] {
					errs <- fmt.Errorf("Get during puts returned %d bytes that no writer put (torn read)", len(got))
					return
				}
				mu.Lock()
				reads++
				mu.Unlock()
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				default:
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reads == 0 {
		t.Error("no read completed during the puts")
	}
	keys, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"hot"}) {
		t.Fatalf("after concurrent puts List = %q, want only [hot] (no temporary objects left)", keys)
	}
}

// testListOrder checks the order a listing promises under concurrent
// writes: a writer puts p/b/<n> and then deletes p/a/<n> (as a gallery
// compaction writes a manifest and then deletes the log events it folded),
// while listings of p/ run. A listing that misses p/a/<n> must hold
// p/b/<n>: it was written before the deletion and sorts after the deleted
// key, so a listing that reached p/a/ after the deletion reaches p/b/
// after the write. Nested directories are created as the writer goes, so
// a file store's walk meets directories that appear behind it.
func testListOrder(t *testing.T, s platform.Store) {
	ctx := ctxFor(t)
	const rounds = 20
	for n := range rounds {
		p := fmt.Sprintf("order/%02d/", n)
		a, b := p+"a/x/1", p+"b/y/1"
		mustPut(t, s, a, []byte("a"))
		wrote := make(chan error, 1)
		go func() {
			err := s.Put(ctx, b, []byte("b"), "")
			if err == nil {
				err = s.Delete(ctx, a)
			}
			wrote <- err
		}()
		listings := 0
		for done := false; !done; {
			select {
			case err := <-wrote:
				if err != nil {
					t.Fatalf("round %d: writer: %v", n, err)
				}
				done = true
			default:
			}
			keys, err := s.List(ctx, p)
			if err != nil {
				t.Fatalf("round %d: List(%q): %v", n, p, err)
			}
			listings++
			if !slices.Contains(keys, a) && !slices.Contains(keys, b) {
				t.Fatalf("round %d, listing %d: List(%q) = %q holds neither %s (deleted after the write) nor %s (written before the deletion)", n, listings, p, keys, a, b)
			}
		}
	}
}
