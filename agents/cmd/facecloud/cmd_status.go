package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/status"
)

func init() {
	register(command{
		name:    "status",
		summary: "show the service's live state: queue, dead letters, fleet, scaler decisions, throughput, latency, failures",
		run:     runStatus,
	})
}

func runStatus(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "status")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud status (--data DIR | --url URL [--api-key KEY]) [--json] [--watch 2s]

Shows the request queue (visible, in flight, dead letters), the worker fleet
(desired, running, starting), the calls of the last minute (answered a
second, latency p50 and p95, failed), the scaler's latest decisions with
their reasons and the latest failed calls: in a few lines, or as JSON.

--data reads a data directory of facecloud local directly: its queue file
and the status reports the agents write to its store. --url asks a deployed
web agent (GET /v1/status) with an admin API key.

flags:`)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "data directory of facecloud local, read directly")
	base := fs.String("url", "", "web agent to ask, e.g. http://HOST:8080/ (GET /v1/status)")
	apiKey := fs.String("api-key", "", "admin API key for --url, sent as Authorization: Bearer")
	asJSON := fs.Bool("json", false, "print the status as JSON (the answer of GET /v1/status)")
	watch := fs.Duration("watch", 0, "print the status again every this long until interrupted; 0: once")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if *data != "" && *base != "" {
		// One of them may come from the environment (FACECLOUD_URL is
		// submit's too): the one on the command line wins.
		switch d, u := onCommandLine(args, "data"), onCommandLine(args, "url"); {
		case d && !u:
			*base = ""
		case u && !d:
			*data = ""
		}
	}
	if (*data == "") == (*base == "") {
		return usageError(env, fs, "give one of --data and --url")
	}
	if *watch != 0 && (*watch < 500*time.Millisecond || *watch > time.Hour) {
		return usageError(env, fs, fmt.Sprintf("--watch %s out of range 500ms..1h (or 0: once)", *watch))
	}
	var get func(context.Context) (status.Status, error)
	if *data != "" {
		r, err := openLocalStatus(ctx, env, *data)
		if err != nil {
			return err
		}
		defer r.close()
		get = r.read
	} else {
		if *apiKey == "" {
			return usageError(env, fs, "--url needs an admin API key: --api-key or FACECLOUD_API_KEY")
		}
		u, err := statusURL(*base)
		if err != nil {
			return err
		}
		client := &http.Client{Timeout: 15 * time.Second}
		get = func(ctx context.Context) (status.Status, error) { return fetchStatus(ctx, client, u, *apiKey) }
	}
	for {
		st, err := get(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(st)
		} else {
			err = status.WriteText(env.stdout, st)
		}
		if err != nil || *watch == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*watch):
		}
		if !*asJSON {
			fmt.Fprintln(env.stdout)
		}
	}
}

// localStatus reads a data directory's status: the queue file's depth
// (with dead letters) and the reports in its store.
type localStatus struct {
	close func()
	read  func(context.Context) (status.Status, error)
}

func openLocalStatus(ctx context.Context, env *environment, dir string) (*localStatus, error) {
	// Reading must not make a data directory where there was none.
	for _, p := range []string{filepath.Join(dir, localQueueFile), filepath.Join(dir, localStoreDirName)} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is not a data directory of facecloud local (no %s): %w", dir, filepath.Base(p), err)
		}
	}
	store, err := openStore(ctx, env, localStoreURL(dir))
	if err != nil {
		return nil, err
	}
	reqs, err := openQueue(ctx, env, localQueueURL(dir, RequestQueueName))
	if err != nil {
		store.Close()
		return nil, err
	}
	dead, err := openQueue(ctx, env, localQueueURL(dir, RequestQueueName+DeadLetterSuffix))
	if err != nil {
		reqs.Close()
		store.Close()
		return nil, err
	}
	return &localStatus{
		close: func() { dead.Close(); reqs.Close(); store.Close() },
		read: func(ctx context.Context) (status.Status, error) {
			src := status.Sources{Now: time.Now()}
			d, err := reqs.Depth(ctx)
			if err == nil {
				var dl int
				dd, derr := dead.Depth(ctx)
				err, dl = derr, dd.Visible+dd.InFlight
				src.Live = &status.Queue{Visible: d.Visible, InFlight: d.InFlight, DeadLetter: &dl}
			}
			if err != nil {
				src.Live, src.LiveErr = nil, err
			}
			if r, err := status.ReadScaler(ctx, store); err == nil {
				src.Scaler = &r
			} else {
				src.ScalerErr = err
			}
			src.Web, src.WebErr = status.ReadWeb(ctx, store, "")
			return status.Merge(src), nil
		},
	}, nil
}

// statusURL is base's /v1/status.
func statusURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url %q: want the web agent's address, e.g. http://HOST:8080/", base)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/status"
	u.RawQuery = ""
	return u.String(), nil
}

// fetchStatus asks a web agent for its status.
func fetchStatus(ctx context.Context, client *http.Client, u, key string) (status.Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return status.Status{}, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return status.Status{}, fmt.Errorf("ask %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return status.Status{}, fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return status.Status{}, fmt.Errorf("%s answered %d: %s", u, resp.StatusCode, e.Error)
		}
		return status.Status{}, fmt.Errorf("%s answered %s", u, resp.Status)
	}
	var st status.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return status.Status{}, fmt.Errorf("%s: not a status answer: %w", u, err)
	}
	if st.V != status.Version {
		return status.Status{}, fmt.Errorf("%s: status schema version %d, this build reads %d", u, st.V, status.Version)
	}
	return st, nil
}

// onCommandLine reports whether flag name is among args.
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
