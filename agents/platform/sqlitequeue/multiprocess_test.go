package sqlitequeue_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

// The helper process is this test binary run again with roleEnv set: it
// plays a producer, a consumer or a holder on the queue file in fileEnv.
const (
	roleEnv  = "SQLITEQUEUE_TEST_ROLE"
	fileEnv  = "SQLITEQUEUE_TEST_FILE"
	countEnv = "SQLITEQUEUE_TEST_COUNT"
	tagEnv   = "SQLITEQUEUE_TEST_TAG"
)

// The visibility timeout is long next to a consumer's work (a receive and
// a delete), so a redelivery needs a stall of seconds; short enough that the
// killed holder's messages come back soon.
var multiOptions = sqlitequeue.Options{Visibility: 3 * time.Second, MaxReceives: 5, MaxBytes: 1024}

// SQLITEQUEUE_TEST_VISIBILITY overrides the visibility timeout, to run the
// test closer to the edge (e.g. 1s on a loaded machine).
func init() {
	if v, err := time.ParseDuration(os.Getenv("SQLITEQUEUE_TEST_VISIBILITY")); err == nil {
		multiOptions.Visibility = v
	}
}

// TestHelperProcess is not a test: it is the body of the child processes of
// TestSeveralProcesses, and does nothing when run directly.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	if err := helper(role); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helper(role string) error {
	q, err := sqlitequeue.Open(os.Getenv(fileEnv), "requests", multiOptions)
	if err != nil {
		return err
	}
	defer q.Close()
	n, _ := strconv.Atoi(os.Getenv(countEnv))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch role {
	case "producer":
		for i := range n {
			if err := q.Send(ctx, fmt.Appendf(nil, "%s-%03d", os.Getenv(tagEnv), i)); err != nil {
				return err
			}
		}
		return nil
	case "holder":
		// Take n messages, say so, and wait to be killed.
		for held := 0; held < n; {
			msgs, err := q.Receive(ctx, min(5, n-held), time.Second)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				fmt.Fprintf(out, "held %s\n", m.Body)
			}
			held += len(msgs)
		}
		fmt.Fprintln(out, "holding")
		out.Flush()
		select {}
	case "consumer":
		// Consume until stdin closes; report each message whose Delete
		// succeeded, so that exactly-once is checked on acknowledgements.
		go func() {
			io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
		for ctx.Err() == nil {
			msgs, err := q.Receive(ctx, 3, 200*time.Millisecond)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, m := range msgs {
				err := q.Delete(context.Background(), m.Receipt)
				switch {
				case err == nil:
					fmt.Fprintf(out, "consumed %s %d\n", m.Body, m.ReceiveCount)
				case strings.Contains(err.Error(), "stale"):
					fmt.Fprintf(out, "stale %s %d\n", m.Body, m.ReceiveCount)
				default:
					return err
				}
			}
			out.Flush()
		}
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func start(t *testing.T, path, role, tag string, n int, lines chan<- string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, fileEnv+"="+path, countEnv+"="+strconv.Itoa(n), tagEnv+"="+tag)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	return &child{cmd: cmd, stdin: stdin}
}

// TestSeveralProcesses shares one queue file between producer and consumer
// processes: every message is acknowledged exactly once, and the messages
// of a consumer killed with SIGKILL while holding them come back.
func TestSeveralProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "queue.db")
	lines := make(chan string, 1024)

	// Seed, then let a holder take some messages and die holding them.
	const seed, held = 20, 5
	seeder := start(t, path, "producer", "seed", seed, lines)
	if err := seeder.cmd.Wait(); err != nil {
		t.Fatalf("seeding producer: %v", err)
	}
	holder := start(t, path, "holder", "", held, lines)
	heldBodies := map[string]bool{}
	for waiting := true; waiting; {
		select {
		case l := <-lines:
			if b, ok := strings.CutPrefix(l, "held "); ok {
				heldBodies[b] = true
			}
			waiting = l != "holding"
		case <-ctx.Done():
			t.Fatal("holder did not take its messages")
		}
	}
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	holder.cmd.Wait()
	if len(heldBodies) != held {
		t.Fatalf("holder took %d messages, want %d", len(heldBodies), held)
	}

	// Three consumers and two producers at once.
	const producers, perProducer = 2, 150
	var consumers []*child
	for range 3 {
		consumers = append(consumers, start(t, path, "consumer", "", 0, lines))
	}
	var prodWG sync.WaitGroup
	for p := range producers {
		c := start(t, path, "producer", fmt.Sprintf("p%d", p), perProducer, lines)
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			if err := c.cmd.Wait(); err != nil {
				t.Errorf("producer %d: %v", p, err)
			}
		}()
	}

	total := seed + producers*perProducer
	consumed := map[string][]string{} // body -> ReceiveCount of each acknowledged delivery
	stale := 0
	// After the last acknowledgement, keep listening for one visibility
	// timeout: a duplicate would show up then.
	var grace <-chan time.Time
	for collecting := true; collecting; {
		select {
		case l := <-lines:
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "consumed":
				consumed[f[1]] = append(consumed[f[1]], f[2])
				if heldBodies[f[1]] && f[2] == "1" {
					t.Errorf("%s was held by the killed consumer, yet its acknowledged delivery has ReceiveCount 1", f[1])
				}
			case len(f) == 3 && f[0] == "stale":
				stale++
			}
			if len(consumed) == total && grace == nil {
				grace = time.After(multiOptions.Visibility)
			}
		case <-grace:
			collecting = false
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d messages before the deadline", len(consumed), total)
		}
	}
	prodWG.Wait()
	for _, c := range consumers {
		c.stdin.Close()
	}
	for i, c := range consumers {
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("consumer %d: %v", i, err)
		}
	}
	// Exactly once: with every consumer succeeding and a visibility timeout
	// far above a consumer's work, no message may be acknowledged twice.
	// (Two acknowledged deliveries with different ReceiveCounts would mean a
	// consumer stalled past the timeout, which at-least-once allows but this
	// run must not see; equal counts would mean one delivery went to two
	// consumers, which is never allowed.)
	for body, counts := range consumed {
		if len(counts) == 1 {
			continue
		}
		slices.Sort(counts)
		if len(slices.Compact(slices.Clone(counts))) != len(counts) {
			t.Errorf("%s acknowledged by deliveries with ReceiveCounts %v: one delivery went to two consumers", body, counts)
		} else {
			t.Errorf("%s acknowledged %d times (ReceiveCounts %v): a consumer stalled past the %s visibility timeout", body, len(counts), counts, multiOptions.Visibility)
		}
	}
	for b := range heldBodies {
		if len(consumed[b]) == 0 {
			t.Errorf("%s, held by the killed consumer, was not consumed after its visibility lapsed", b)
		}
	}
	q := open(t, path, "requests", multiOptions)
	if d, err := q.Depth(ctx); err != nil || d != (platform.Depth{}) {
		t.Errorf("queue after the run: %+v, %v; want empty", d, err)
	}
	t.Logf("%d messages through 3 consumer processes, %d held by a killed one; %d late acknowledgements refused as stale", total, held, stale)
}
