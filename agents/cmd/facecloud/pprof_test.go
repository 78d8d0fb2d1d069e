package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"testing"
)

func TestCheckPprofAddr(t *testing.T) {
	tests := map[string]struct {
		addr string
		ok   bool
	}{
		"off":              {"", true},
		"loopback v4":      {"127.0.0.1:6060", true},
		"loopback v4 port": {"127.0.0.1:0", true},
		"loopback v6":      {"[::1]:6060", true},
		"localhost":        {"localhost:6060", true},
		"any interface":    {":6060", false},
		"all v4":           {"0.0.0.0:6060", false},
		"public":           {"192.0.2.1:6060", false},
		"a name":           {"example.com:6060", false},
		"no port":          {"127.0.0.1", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkPprofAddr(tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("checkPprofAddr(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}

// TestPprofServes starts the listener on a port of its choosing, reads
// the address from the log line as bench-local.sh does, and fetches a
// profile index and a heap profile from it.
func TestPprofServes(t *testing.T) {
	var logs bytes.Buffer
	stop, err := startPprof("127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	m := regexp.MustCompile(`msg="serving pprof" addr=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no address logged: %s", logs.String())
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
		resp, err := http.Get("http://" + m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s: %s, %d bytes", path, resp.Status, len(body))
		}
	}
	if _, err := startPprof("0.0.0.0:0", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("startPprof on all interfaces: want an error")
	}
}
