package datadir_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/platform/datadir"
)

// TestHelperHolder is not a test: it is a second process that takes the
// lock, says so on stdout and holds it until its stdin closes.
func TestHelperHolder(t *testing.T) {
	dir := os.Getenv("DATADIR_TEST_DIR")
	if dir == "" {
		return
	}
	l, err := datadir.Acquire(dir, "local")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("held")
	buf := make([]byte, 1)
	os.Stdin.Read(buf)
	l.Release()
	os.Exit(0)
}

// TestSecondOwnerRefused: while one process holds a directory, another is
// refused with a message naming the holder's pid and the directory; once
// the holder is gone (here killed), the lock is free.
func TestSecondOwnerRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$")
	cmd.Env = append(os.Environ(), "DATADIR_TEST_DIR="+dir)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	line := make([]byte, 5)
	if _, err := out.Read(line); err != nil || string(line) != "held\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}

	_, err := datadir.Acquire(dir, "web")
	if !errors.Is(err, datadir.ErrInUse) {
		t.Fatalf("second Acquire = %v, want ErrInUse", err)
	}
	for _, want := range []string{dir, "facecloud local", fmt.Sprintf("pid %d", cmd.Process.Pid)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %q", err, want)
		}
	}

	// SIGKILL: no chance to release; the kernel frees the lock.
	cmd.Process.Kill()
	cmd.Wait()
	l, err := datadir.Acquire(dir, "web")
	if err != nil {
		t.Fatalf("Acquire after the holder died: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}
