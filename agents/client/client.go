// Package client submits images to a facecloud web agent the way the course's
// workload generator does (one multipart POST / per image, field inputFile,
// many at once) and checks every answer: it must name the request's own file
// and, when labels are given, the labelled person. Requests are retried on
// connection errors, 5xx and 429 answers (honouring Retry-After), never on
// other 4xx.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/facecloud/facecloud/agents/imagefiles"
	"github.com/hashicorp/go-retryablehttp"
)

// Config says where and how to submit.
type Config struct {
	// URL is the web agent's text endpoint, e.g. http://host:8080/.
	URL string
	// Concurrency is how many requests are in flight at once (the course uses 100).
	Concurrency int
	// Field is the multipart field carrying the image.
	Field string
	// Timeout bounds one HTTP attempt; 0 waits as long as it takes, as the
	// course's generator does.
	Timeout time.Duration
	// RetryMax is how many times a request is retried after a connection
	// error or a 5xx answer.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff between
	// attempts (a Retry-After header on 503 and 429 takes precedence).
	RetryWaitMin, RetryWaitMax time.Duration
	// APIKey, when set, is sent as Authorization: Bearer with every request
	// (a web agent without --open-recognition answers 401 without one).
	APIKey string
	// Labels maps a file stem to the expected name; nil checks only that
	// each answer is for its own request.
	Labels map[string]string
	// Logger receives retry details at debug level; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the course's workload shape against url.
func DefaultConfig(url string) Config {
	return Config{
		URL:          url,
		Concurrency:  100,
		Field:        "inputFile",
		RetryMax:     4,
		RetryWaitMin: 500 * time.Millisecond,
		RetryWaitMax: 15 * time.Second,
	}
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q must be an http:// or https:// URL with a host", c.URL)
	}
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		return fmt.Errorf("concurrency %d out of range 1..10000", c.Concurrency)
	}
	if c.Field == "" || strings.ContainsAny(c.Field, "\"\r\n") {
		return fmt.Errorf("field %q must be a non-empty name without quotes or line breaks", c.Field)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %s must be 0 (none) or positive", c.Timeout)
	}
	if c.RetryMax < 0 || c.RetryMax > 100 {
		return fmt.Errorf("retries %d out of range 0..100", c.RetryMax)
	}
	if strings.ContainsAny(c.APIKey, " \t\r\n") {
		return errors.New("API key must not contain spaces or line breaks")
	}
	if c.RetryWaitMin <= 0 || c.RetryWaitMax < c.RetryWaitMin {
		return fmt.Errorf("retry waits %s..%s must be positive with min <= max", c.RetryWaitMin, c.RetryWaitMax)
	}
	return nil
}

// Verdict is what the client concluded about one request.
type Verdict string

// Verdicts.
const (
	// Failed: no 200 answer (connection error, 4xx, 5xx after retries, unreadable file).
	Failed Verdict = "failed"
	// Correct: the answer names the request's own stem and, with labels, the labelled person.
	Correct Verdict = "correct"
	// Wrong: a 200 answer for another request's stem, or naming someone else.
	Wrong Verdict = "wrong"
)

// Outcome is the fate of one image.
type Outcome struct {
	File string `json:"file"`
	Stem string `json:"stem"`
	// Status is the last HTTP status seen, 0 when no answer came.
	Status int `json:"status"`
	// Answer is the response body of a 200 answer, byte for byte.
	Answer   string  `json:"answer,omitempty"`
	Expected string  `json:"expected,omitempty"`
	Verdict  Verdict `json:"verdict"`
	// Reason says why a request failed or was wrong, in one line.
	Reason  string        `json:"reason,omitempty"`
	Latency time.Duration `json:"-"`
}

// Summary is what the course's workload generator prints, plus latency
// percentiles over the answered requests.
type Summary struct {
	Requests        int     `json:"requests"`
	Completed       int     `json:"completed"`
	Failed          int     `json:"failed"`
	Correct         int     `json:"correct"`
	Wrong           int     `json:"wrong"`
	Labelled        bool    `json:"labelled"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Throughput is answered requests per second of the whole run.
	Throughput float64 `json:"throughput_per_second"`
	P50MS      float64 `json:"p50_ms"`
	P95MS      float64 `json:"p95_ms"`
	P99MS      float64 `json:"p99_ms"`
}

// OK reports whether every request was answered correctly.
func (s Summary) OK() bool { return s.Failed == 0 && s.Wrong == 0 && s.Correct == s.Requests }

// Write prints s the way the course's workload generator does, then the latencies.
func (s Summary) Write(w io.Writer) error {
	correct, wrong := fmt.Sprint(s.Correct), fmt.Sprint(s.Wrong)
	if !s.Labelled {
		correct += " (no labels given: answers checked for their own file name only)"
	}
	_, err := fmt.Fprintf(w, "Total number of requests: %d\n"+
		"Total number of requests completed successfully: %d\n"+
		"Total number of failed requests: %d\n"+
		"Total number of correct predictions : %s\n"+
		"Total number of wrong predictions: %s\n"+
		"Total Test Duration: %.3f seconds\n"+
		"Throughput: %.1f requests/second\n"+
		"Latency p50: %.1f ms, p95: %.1f ms, p99: %.1f ms\n",
		s.Requests, s.Completed, s.Failed, correct, wrong, s.DurationSeconds, s.Throughput, s.P50MS, s.P95MS, s.P99MS)
	return err
}

// Client submits images, through the typed API client.
type Client struct {
	cfg  Config
	api  *API
	http *retryablehttp.Client
}

// New checks cfg and builds a client whose connection pool fits its concurrency.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	api, err := NewAPI(APIConfig{URL: cfg.URL, APIKey: cfg.APIKey, Timeout: cfg.Timeout, RetryMax: cfg.RetryMax,
		RetryWaitMin: cfg.RetryWaitMin, RetryWaitMax: cfg.RetryWaitMax, Conns: cfg.Concurrency})
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	if cfg.Logger != nil {
		api.http.Logger = cfg.Logger
	}
	return &Client{cfg: cfg, api: api, http: api.http}, nil
}

// spreadBackoff is retryablehttp's default backoff, except that a
// Retry-After of n seconds waits a random time between n and 2n: a hundred
// requests refused by one rate limit in the same instant then come back
// spread out instead of all together, to be refused together again.
func spreadBackoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	wait := retryablehttp.DefaultBackoff(lo, hi, attempt, resp)
	if resp == nil || resp.Header.Get("Retry-After") == "" || wait <= 0 {
		return wait
	}
	return wait + rand.N(wait)
}

// ErrUnreachable means nothing answers HTTP at the client's URL.
var ErrUnreachable = errors.New("cannot connect")

// Reachable checks, before a run, that something answers HTTP at the URL:
// any answer will do. It tries a few times over about two seconds (a
// service may be starting) and then fails with ErrUnreachable and the
// reason, so a run against a server that is down ends at once with one
// line instead of retrying every request.
func (c *Client) Reachable(ctx context.Context) error {
	const tries = 4
	var last error
	for i := range tries {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", c.cfg.URL, err)
		}
		cl := *c.http.HTTPClient
		cl.Timeout = 5 * time.Second
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		last = err
		if i < tries-1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("%w to %s: %s (is the web agent running there?)", ErrUnreachable, c.cfg.URL, oneLine(errors.Unwrap(last).Error()))
}

// Close releases idle connections.
func (c *Client) Close() { c.http.HTTPClient.CloseIdleConnections() }

// Submit posts one image and judges the answer.
func (c *Client) Submit(ctx context.Context, file imagefiles.File) Outcome {
	start := time.Now()
	o := c.submit(ctx, file)
	o.Latency = time.Since(start)
	return o
}

func (c *Client) submit(ctx context.Context, file imagefiles.File) Outcome {
	o := Outcome{File: file.Name, Stem: file.Stem(), Verdict: Failed}
	data, err := file.Read(0)
	if err != nil {
		o.Reason = fmt.Sprintf("read image: %v", err)
		return o
	}
	text, err := c.api.RecognizeText(ctx, c.cfg.Field, Image{Name: file.Base(), Data: data})
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr):
		o.Status = apiErr.Status
		o.Reason = fmt.Sprintf("HTTP %d: %s", apiErr.Status, oneLine("error: "+apiErr.Message))
		return o
	case err != nil:
		o.Reason = oneLine(err.Error())
		return o
	}
	o.Status = http.StatusOK
	o.Answer = text
	c.judge(&o)
	return o
}

// judge sets the verdict of a 200 answer "stem:name".
func (c *Client) judge(o *Outcome) {
	stem, name, ok := strings.Cut(o.Answer, ":")
	switch {
	case !ok:
		o.Verdict, o.Reason = Wrong, fmt.Sprintf("answer %q is not <stem>:<name>", o.Answer)
	case stem != o.Stem:
		o.Verdict, o.Reason = Wrong, fmt.Sprintf("answer %q is for %q, not this request's %q", o.Answer, stem, o.Stem)
	case c.cfg.Labels == nil:
		o.Verdict = Correct
	default:
		want, labelled := c.cfg.Labels[o.Stem]
		o.Expected = want
		switch {
		case !labelled:
			o.Verdict, o.Reason = Wrong, fmt.Sprintf("no label for %q", o.Stem)
		case name != want:
			o.Verdict, o.Reason = Wrong, fmt.Sprintf("answer %q, label says %q", name, want)
		default:
			o.Verdict = Correct
		}
	}
}

// Run submits every file with cfg.Concurrency requests in flight, calling
// done (if not nil, from one goroutine at a time) as each finishes, and
// returns the summary and outcomes in the order of files. Cancelling ctx
// stops new submissions; unsent files count as failed.
func (c *Client) Run(ctx context.Context, files []imagefiles.File, done func(Outcome)) (Summary, []Outcome) {
	start := time.Now()
	outcomes := make([]Outcome, len(files))
	next := make(chan int)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	workers := min(c.cfg.Concurrency, len(files))
	for range workers {
		wg.Go(func() {
			for i := range next {
				o := c.Submit(ctx, files[i])
				mu.Lock()
				outcomes[i] = o
				if done != nil {
					done(o)
				}
				mu.Unlock()
			}
		})
	}
	sent := 0
feed:
	for i := range files {
		select {
		case <-ctx.Done():
			break feed
		case next <- i:
			sent++
		}
	}
	close(next)
	wg.Wait()
	for i := sent; i < len(files); i++ {
		outcomes[i] = Outcome{File: files[i].Name, Stem: files[i].Stem(), Verdict: Failed, Reason: "not sent: " + context.Cause(ctx).Error()}
	}
	return summarize(outcomes, time.Since(start), c.cfg.Labels != nil), outcomes
}

func summarize(outcomes []Outcome, elapsed time.Duration, labelled bool) Summary {
	s := Summary{Requests: len(outcomes), Labelled: labelled, DurationSeconds: elapsed.Seconds()}
	var lat []time.Duration
	for _, o := range outcomes {
		switch o.Verdict {
		case Failed:
			s.Failed++
			continue
		case Correct:
			s.Correct++
		case Wrong:
			s.Wrong++
		}
		s.Completed++
		lat = append(lat, o.Latency)
	}
	if elapsed > 0 {
		s.Throughput = float64(s.Completed) / elapsed.Seconds()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	s.P50MS, s.P95MS, s.P99MS = percentileMS(lat, 50), percentileMS(lat, 95), percentileMS(lat, 99)
	return s
}

// percentileMS is the nearest-rank percentile of sorted latencies, in ms.
func percentileMS(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	rank = max(rank, 1)
	return float64(sorted[rank-1].Microseconds()) / 1000
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
