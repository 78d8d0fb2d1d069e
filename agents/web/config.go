package web

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/facecloud/facecloud/agents/imageio"
)

// Config holds the web agent's limits and timings. Zero values are not
// defaults: start from DefaultConfig.
type Config struct {
	// Addr is the listen address of Run, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// MaxBodyBytes bounds a request body (413 beyond it); it is also the
	// largest image accepted.
	MaxBodyBytes int64
	// MaxPixels bounds width*height of an image, checked before decoding
	// (422 beyond it), so a small file cannot expand into gigabytes.
	MaxPixels int
	// MaxInFlight bounds concurrent work requests (uploads and waits); more
	// are answered 503 with Retry-After instead of piling up.
	MaxInFlight int
	// RetryAfter is what a 503 asks the client to wait (whole seconds).
	RetryAfter time.Duration
	// TextWait is how long POST / waits for an answer before 504. The
	// course's client has no timeout, so this is long.
	TextWait time.Duration
	// APIWait is how long the /v1 routes wait before answering 202 when the
	// request does not say (?wait=).
	APIWait time.Duration
	// MaxWait is the largest ?wait= a client may ask for.
	MaxWait time.Duration
	// PollInterval is how soon a waiting call first looks in the output
	// store in case its reply was lost; the interval doubles up to PollMax.
	PollInterval, PollMax time.Duration
	// ReplyBatch is how many replies one receive call takes (1..10, SQS's limit).
	ReplyBatch int
	// ReplyWait is the long-poll wait of one receive call on the reply queue.
	ReplyWait time.Duration
	// ReplyTouch is how often a server with a reply queue of its own marks
	// it alive; the collector of dead hosts' queues must wait several times
	// as long before it removes one.
	ReplyTouch time.Duration
	// ReadyCache is how long a /readyz verdict is reused, so probes do not
	// hammer the queue and store.
	ReadyCache time.Duration
	// DrainTimeout is how long Run lets requests in progress finish after
	// its context ends; waits still open after it are answered 503.
	DrainTimeout time.Duration
	// ReadTimeout bounds reading one whole request, headers and body, on
	// the routes that take no upload; uploads are bounded by
	// MinUploadRate and UploadIdle instead.
	ReadTimeout time.Duration
	// UploadMemory is the byte budget of all calls together: their upload
	// bytes as they arrive and the working memory of checking their images.
	// A call that finds it exhausted for MemoryWait is answered 503.
	UploadMemory int64
	// MemoryWait is how long a call waits for UploadMemory to free up.
	MemoryWait time.Duration
	// MinUploadRate (bytes a second) and UploadIdle cut slow senders: an
	// upload must arrive at MinUploadRate on average and never pause for
	// longer than UploadIdle, else it is answered 408.
	MinUploadRate int64
	UploadIdle    time.Duration
	// MaxEnrollImages bounds the images of one enrolment request.
	MaxEnrollImages int
	// OpenRecognition lets POST / and the recognition routes through
	// without an API key (the course's workload generator sends none);
	// every other route but /healthz, /readyz and the upload page always
	// needs one.
	OpenRecognition bool
	// KeyRate and KeyBurst are each API key's token bucket: requests a
	// second, and how many may come at once; beyond it 429. The defaults
	// let one key send the course's whole workload (1000 requests, 100 at
	// a time) at the speed one host answers it; the limit is there to stop
	// a runaway or stolen key from starving the others.
	KeyRate  float64
	KeyBurst int
	// TLSCert and TLSKey are PEM files; when set, Run and Serve speak
	// HTTPS (TLS 1.2 and later) instead of plain HTTP.
	TLSCert, TLSKey string
	// Nearest makes every recognition name the nearest gallery person even
	// beyond the match threshold unless the request says ?nearest=0.
	Nearest bool
	// StatusEvery is how often, while calls come, the agent writes its
	// status report (status.WebKey) to the output store, for the other
	// hosts' GET /v1/status and `facecloud status --data`; 0 never writes
	// it (GET /v1/status still shows this host's calls).
	StatusEvery time.Duration
	// EraseWait bounds how long an erasure of faces waits for the gallery's
	// compaction to remove their descriptors from the store (503 after it,
	// the faces no longer matched).
	EraseWait time.Duration
}

// DefaultConfig returns the limits the agent runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		Addr:            ":8080",
		MaxBodyBytes:    int64(imageio.DefaultLimits.MaxBytes),
		MaxPixels:       imageio.DefaultLimits.MaxPixels,
		MaxInFlight:     1024,
		RetryAfter:      time.Second,
		TextWait:        10 * time.Minute,
		APIWait:         20 * time.Second,
		MaxWait:         10 * time.Minute,
		PollInterval:    2 * time.Second,
		PollMax:         30 * time.Second,
		ReplyBatch:      10,
		ReplyWait:       10 * time.Second,
		ReplyTouch:      time.Minute,
		ReadyCache:      2 * time.Second,
		DrainTimeout:    30 * time.Second,
		ReadTimeout:     2 * time.Minute,
		UploadMemory:    96 << 20,
		MemoryWait:      5 * time.Second,
		MinUploadRate:   8 << 10,
		UploadIdle:      10 * time.Second,
		MaxEnrollImages: 64,
		KeyRate:         500,
		KeyBurst:        1000,
		StatusEvery:     5 * time.Second,
		EraseWait:       30 * time.Second,
	}
}

// Validate reports every setting out of its allowed range.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	durIn := func(name string, d, lo, hi time.Duration) {
		check(d >= lo && d <= hi, "%s %s out of range %s..%s", name, d, lo, hi)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		hint := "HOST:PORT such as 127.0.0.1:8080, or :8080 for every interface"
		if _, nerr := strconv.Atoi(c.Addr); nerr == nil {
			hint = fmt.Sprintf("HOST:PORT: for port %s write 127.0.0.1:%s (this machine only) or :%s (every interface)", c.Addr, c.Addr, c.Addr)
		}
		errs = append(errs, fmt.Errorf("addr %q is not an address; want %s", c.Addr, hint))
	}
	check(c.MaxBodyBytes >= 1<<10 && c.MaxBodyBytes <= 1<<30, "max body %d bytes out of range 1KiB..1GiB", c.MaxBodyBytes)
	check(c.MaxPixels >= 256 && c.MaxPixels <= 500_000_000, "max pixels %d out of range 256..500000000", c.MaxPixels)
	check(c.MaxInFlight >= 1 && c.MaxInFlight <= 100_000, "max in-flight %d out of range 1..100000", c.MaxInFlight)
	durIn("retry-after", c.RetryAfter, time.Second, time.Hour)
	durIn("text wait", c.TextWait, time.Second, 24*time.Hour)
	durIn("max wait", c.MaxWait, time.Second, 24*time.Hour)
	durIn("api wait", c.APIWait, 0, c.MaxWait)
	durIn("poll interval", c.PollInterval, 10*time.Millisecond, time.Minute)
	durIn("poll max", c.PollMax, c.PollInterval, 10*time.Minute)
	check(c.ReplyBatch >= 1 && c.ReplyBatch <= 10, "reply batch %d out of range 1..10", c.ReplyBatch)
	durIn("reply wait", c.ReplyWait, 0, 20*time.Second)
	durIn("reply touch", c.ReplyTouch, time.Second, time.Hour)
	durIn("ready cache", c.ReadyCache, 0, time.Minute)
	durIn("drain timeout", c.DrainTimeout, 0, time.Hour)
	durIn("read timeout", c.ReadTimeout, time.Second, time.Hour)
	check(c.KeyRate >= 0.01 && c.KeyRate <= 1e6, "key rate %g requests a second out of range 0.01..1000000", c.KeyRate)
	check(c.KeyBurst >= 1 && c.KeyBurst <= 1_000_000, "key burst %d out of range 1..1000000", c.KeyBurst)
	check((c.TLSCert == "") == (c.TLSKey == ""), "TLS needs both a certificate and a key file (or neither)")
	check(c.UploadMemory >= c.MaxBodyBytes && c.UploadMemory <= 64<<30, "upload memory %d bytes out of range %d (the max body)..64GiB", c.UploadMemory, c.MaxBodyBytes)
	durIn("memory wait", c.MemoryWait, 0, time.Minute)
	check(c.MinUploadRate >= 1 && c.MinUploadRate <= 1<<30, "min upload rate %d bytes/s out of range 1..1GiB/s", c.MinUploadRate)
	durIn("upload idle", c.UploadIdle, 100*time.Millisecond, 10*time.Minute)
	durIn("erase wait", c.EraseWait, time.Second, 10*time.Minute)
	check(c.MaxEnrollImages >= 1 && c.MaxEnrollImages <= 1000, "max enrol images %d out of range 1..1000", c.MaxEnrollImages)
	durIn("status interval", c.StatusEvery, 0, 5*time.Minute)
	return errors.Join(errs...)
}
