// Command slowclients keeps many slow uploads open against a web agent:
// each client sends a multipart POST whose image file is padded to -size
// bytes, trickling the body at -rate bytes a second, reads the answer, and
// starts again, until it is stopped (SIGINT or SIGTERM) or -for has passed.
// It then prints what the clients saw as JSON: answers by status code,
// connection errors, bytes sent, and the most clients sending at once.
//
//	go run ./scripts/slowclients -url http://127.0.0.1:8080/ -clients 500 -size 10MiB -rate 1KiB -image face.jpg
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
)

type summary struct {
	Clients    int            `json:"clients"`
	FileBytes  int            `json:"file_bytes"`
	RateBPS    int            `json:"rate_bytes_per_second"`
	Seconds    float64        `json:"seconds"`
	Uploads    int64          `json:"uploads_started"`
	Statuses   map[string]int `json:"answers_by_status"`
	Errors     int64          `json:"connection_errors"`
	BytesSent  int64          `json:"bytes_sent"`
	MaxSending int64          `json:"most_sending_at_once"`
}

func main() {
	target := flag.String("url", "", "the web agent's POST / URL")
	clients := flag.Int("clients", 500, "clients sending at once")
	sizeFlag := flag.String("size", "10MiB", "size of each uploaded file")
	rateFlag := flag.String("rate", "1KiB", "bytes a second each client sends")
	image := flag.String("image", "", "image the file starts with (padded with zeros to -size); empty: zeros only")
	dur := flag.Duration("for", 0, "stop after this long; 0: at SIGINT or SIGTERM")
	flag.Parse()
	size, err1 := humanize.ParseBytes(*sizeFlag)
	rate, err2 := humanize.ParseBytes(*rateFlag)
	u, err3 := url.Parse(*target)
	if *target == "" || err1 != nil || err2 != nil || err3 != nil || rate == 0 || *clients < 1 {
		fmt.Fprintln(os.Stderr, "slowclients: give -url, and valid -size, -rate and -clients")
		os.Exit(2)
	}
	file := make([]byte, size)
	if *image != "" {
		b, err := os.ReadFile(*image)
		if err != nil {
			fmt.Fprintln(os.Stderr, "slowclients:", err)
			os.Exit(1)
		}
		copy(file, b)
	}
	body, ctype := form(file)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	var (
		mu       sync.Mutex
		statuses = map[string]int{}
		started  atomic.Int64
		errs     atomic.Int64
		sent     atomic.Int64
		sending  atomic.Int64
		most     atomic.Int64
	)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range *clients {
		wg.Go(func() {
			// Spread the starts over a second so they do not arrive as one burst.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(i) * time.Second / time.Duration(*clients)):
			}
			for ctx.Err() == nil {
				started.Add(1)
				n := sending.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				code, err := upload(ctx, u, body, ctype, int64(rate), &sent)
				sending.Add(-1)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					errs.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				mu.Lock()
				statuses[fmt.Sprint(code)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s := summary{Clients: *clients, FileBytes: int(size), RateBPS: int(rate), Seconds: time.Since(t0).Seconds(),
		Uploads: started.Load(), Statuses: statuses, Errors: errs.Load(), BytesSent: sent.Load(), MaxSending: most.Load()}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s)
}

// form wraps file in a multipart body with the course's field name.
func form(file []byte) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="inputFile"; filename="slow.jpg"`)
	h.Set("Content-Type", "image/jpeg")
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write(file)
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// upload sends one request at rate bytes a second (a write every 250 ms)
// and returns the status of the answer.
func upload(ctx context.Context, u *url.URL, body []byte, ctype string, rate int64, sent *atomic.Int64) (int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		u.RequestURI(), u.Host, ctype, len(body)); err != nil {
		return 0, err
	}
	// Read the answer as it comes: the server may answer (and close)
	// before the body is all sent.
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	chunk := max(rate/4, 1)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for off := int64(0); off < int64(len(body)); off += chunk {
		select {
		case code := <-answered:
			if code == 0 {
				return 0, fmt.Errorf("connection closed without an answer")
			}
			return code, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
		n, err := c.Write(body[off:min(off+chunk, int64(len(body)))])
		sent.Add(int64(n))
		if err != nil {
			break // the server closed; its answer may be waiting
		}
	}
	select {
	case code := <-answered:
		if code == 0 {
			return 0, fmt.Errorf("connection closed without an answer")
		}
		return code, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
