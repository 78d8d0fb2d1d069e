package sqlitequeue_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/sqlitequeue"
)

// BenchmarkIdleHop is one message's hop from a sender to a receiver that has
// been waiting in Receive with nothing to do, as a worker waits for the next
// request and the web agent for the next reply. Sender and receiver use
// separate handles (separate SQLite connections), as separate processes do.
// Messages are spaced 50..150 ms apart at random, so each finds the
// receiver settled in its wait at a random phase. It reports the latency
// from the start of Send to Receive returning (p50-ms, p90-ms, max-ms), and
// how long Send itself took (send-p50-ms).
//
//	go test -run '^$' -bench IdleHop -benchtime 100x ./agents/platform/sqlitequeue/
func BenchmarkIdleHop(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(b.TempDir(), "queue.db")
	tx, err := sqlitequeue.Open(path, "requests", sqlitequeue.DefaultOptions)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	rx, err := sqlitequeue.Open(path, "requests", sqlitequeue.DefaultOptions)
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()

	type arrival struct {
		i  int
		at time.Time
	}
	got := make(chan arrival, 1)
	errs := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			msgs, err := rx.Receive(ctx, 1, 20*time.Second)
			at := time.Now()
			if err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			for _, m := range msgs {
				i, err := strconv.Atoi(string(m.Body))
				if err != nil {
					errs <- err
					return
				}
				if err := rx.Delete(ctx, m.Receipt); err != nil {
					errs <- err
					return
				}
				got <- arrival{i, at}
			}
		}
	}()

	lat := make([]time.Duration, 0, b.N)
	sends := make([]time.Duration, 0, b.N)
	for i := range b.N {
		time.Sleep(50*time.Millisecond + rand.N(100*time.Millisecond))
		t0 := time.Now()
		if err := tx.Send(ctx, []byte(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
		sends = append(sends, time.Since(t0))
		select {
		case a := <-got:
			if a.i != i {
				b.Fatalf("received message %d, want %d", a.i, i)
			}
			lat = append(lat, a.at.Sub(t0))
		case err := <-errs:
			b.Fatal(err)
		case <-time.After(10 * time.Second):
			b.Fatalf("message %d not received within 10 s", i)
		}
	}
	slices.Sort(lat)
	slices.Sort(sends)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*9/10]), "p90-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(ms(sends[len(sends)/2]), "send-p50-ms")
}

// BenchmarkIdleWaitCPU is what a receiver costs while it waits on an empty
// queue: CPU time of this process per second of waiting, in percent of one
// core (cpu-%). Each iteration is one Receive that waits a whole second.
//
//	go test -run '^$' -bench IdleWaitCPU -benchtime 5x ./agents/platform/sqlitequeue/
func BenchmarkIdleWaitCPU(b *testing.B) {
	ctx := context.Background()
	q, err := sqlitequeue.Open(filepath.Join(b.TempDir(), "queue.db"), "requests", sqlitequeue.DefaultOptions)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	// Settle first: the wait's first polls are denser than its steady state.
	if _, err := q.Receive(ctx, 1, time.Second); err != nil {
		b.Fatal(err)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, c0 := time.Now(), cpu()
	for range b.N {
		msgs, err := q.Receive(ctx, 1, time.Second)
		if err != nil || len(msgs) != 0 {
			b.Fatalf("Receive on an empty queue = %v, %v", msgs, err)
		}
	}
	b.ReportMetric(100*float64(cpu()-c0)/float64(time.Since(start)), "cpu-%")
}

// BenchmarkRoundTrip is the local system's request and reply through one
// file, as the web agent and a worker make them, each queue on handles of
// its own (separate connections, as separate processes have): the web
// side sends a request and waits on the reply queue; the worker side,
// waiting on the request queue, takes it, holds it for 10 ms (the face
// engine's time, as a sleep), replies and deletes the request, and the
// web side takes the reply and deletes it. Requests go one at a time,
// 20..60 ms apart. Two ways side by side: "separate", a write for each
// step (Send, Delete; Receive, Delete), and "joined", the worker's reply
// and delete in one (Forward) and the web side's receive and delete in
// one (Take), as the agents do. It reports the round trip less the 10 ms
// (p50-ms, p90-ms): what the queue adds to a request; and the CPU time of
// the whole process (both sides) per round trip (cpu-ms).
//
//	go test -run '^$' -bench RoundTrip -benchtime 100x ./agents/platform/sqlitequeue/
func BenchmarkRoundTrip(b *testing.B) {
	for _, joined := range []bool{false, true} {
		name := "separate"
		if joined {
			name = "joined"
		}
		b.Run(name, func(b *testing.B) { roundTrips(b, joined) })
	}
}

func roundTrips(b *testing.B, joined bool) {
	const work = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(b.TempDir(), "queue.db")
	handle := func(name string) *sqlitequeue.Queue { return open(b, path, name, sqlitequeue.DefaultOptions) }
	webReq, webRep := handle("requests"), handle("replies")
	workReq, workRep := handle("requests"), handle("replies")

	errs := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			msgs, err := workReq.Receive(ctx, 1, 20*time.Second)
			if err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			for _, m := range msgs {
				time.Sleep(work)
				if joined {
					if sendErr, delErr := workReq.Forward(ctx, workRep, m.Body, m.Receipt); sendErr != nil || delErr != nil {
						errs <- errors.Join(sendErr, delErr)
						return
					}
					continue
				}
				if err := workRep.Send(ctx, m.Body); err != nil {
					errs <- err
					return
				}
				if err := workReq.Delete(ctx, m.Receipt); err != nil {
					errs <- err
					return
				}
			}
		}
	}()

	var ru syscall.Rusage
	cpu := func() time.Duration {
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	lat := make([]time.Duration, 0, b.N)
	var used time.Duration
	for i := range b.N {
		time.Sleep(20*time.Millisecond + rand.N(40*time.Millisecond))
		c0 := cpu()
		t0 := time.Now()
		if err := webReq.Send(ctx, []byte(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
		for got := false; !got; {
			var msgs []platform.Message
			var err error
			if joined {
				msgs, err = webRep.Take(ctx, 10, 10*time.Second)
			} else {
				msgs, err = webRep.Receive(ctx, 10, 10*time.Second)
			}
			if err != nil {
				b.Fatal(err)
			}
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			if len(msgs) == 0 {
				b.Fatalf("reply %d not received within 10 s", i)
			}
			for _, m := range msgs {
				if string(m.Body) != strconv.Itoa(i) {
					b.Fatalf("reply %q, want %d", m.Body, i)
				}
				if !joined {
					if err := webRep.Delete(ctx, m.Receipt); err != nil {
						b.Fatal(err)
					}
				}
				got = true
			}
		}
		lat = append(lat, time.Since(t0)-work)
		// The worker side's last write (the delete, when separate) may
		// still run: let it finish inside the CPU window.
		time.Sleep(2 * time.Millisecond)
		used += cpu() - c0
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*9/10]), "p90-ms")
	b.ReportMetric(ms(used)/float64(b.N), "cpu-ms")
}

// BenchmarkBusyWorker is a worker's queue work per job behind a backlog
// of ten requests, on its own handles (connections), while another handle
// sends a request per job to keep the backlog: "separate" replies and
// deletes in one step (Forward) and then receives its next job, "along"
// takes the next job in that step (ForwardReceive), as the worker does.
//
//	go test -run '^$' -bench BusyWorker -benchtime 2000x ./agents/platform/sqlitequeue/
func BenchmarkBusyWorker(b *testing.B) {
	for _, along := range []bool{false, true} {
		name := "separate"
		if along {
			name = "along"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "queue.db")
			handle := func(name string) *sqlitequeue.Queue { return open(b, path, name, sqlitequeue.DefaultOptions) }
			web, requests, replies := handle("requests"), handle("requests"), handle("replies")
			body := make([]byte, 240) // a course request, with its reply address
			for range 10 {
				if err := web.Send(ctx, body); err != nil {
					b.Fatal(err)
				}
			}
			msgs, err := requests.Receive(ctx, 1, 0)
			if err != nil || len(msgs) != 1 {
				b.Fatalf("first receive = %d, %v", len(msgs), err)
			}
			m := msgs[0]
			for b.Loop() {
				if err := web.Send(ctx, body); err != nil {
					b.Fatal(err)
				}
				var sendErr, delErr error
				if along {
					msgs, sendErr, delErr = requests.ForwardReceive(ctx, replies, body, m.Receipt, 1)
				} else {
					sendErr, delErr = requests.Forward(ctx, replies, body, m.Receipt)
					if sendErr == nil && delErr == nil {
						msgs, err = requests.Receive(ctx, 1, 0)
					}
				}
				if err := errors.Join(sendErr, delErr, err); err != nil || len(msgs) != 1 {
					b.Fatalf("got %d messages, %v", len(msgs), err)
				}
				m = msgs[0]
			}
		})
	}
}
