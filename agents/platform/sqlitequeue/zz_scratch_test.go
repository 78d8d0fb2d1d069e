package sqlitequeue

import (
	"syscall"
	"time"
	"context"
	"path/filepath"
	"testing"
)

func BenchmarkScratchDataVersion(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), "r", DefaultOptions)
	if err != nil { b.Fatal(err) }
	defer q.Close()
	ctx := context.Background()
	for b.Loop() {
		var v int64
		if err := q.db.QueryRowContext(ctx, `pragma data_version`).Scan(&v); err != nil { b.Fatal(err) }
	}
}
func BenchmarkScratchExists(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), "r", DefaultOptions)
	if err != nil { b.Fatal(err) }
	defer q.Close()
	ctx := context.Background()
	for b.Loop() {
		if m, err := q.tryReceive(ctx, 1); err != nil || len(m) > 0 { b.Fatal(err) }
	}
}

func BenchmarkScratchDataVersionPrepared(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), "r", DefaultOptions)
	if err != nil { b.Fatal(err) }
	defer q.Close()
	ctx := context.Background()
	st, err := q.db.PrepareContext(ctx, `pragma data_version`)
	if err != nil { b.Fatal(err) }
	for b.Loop() {
		var v int64
		if err := st.QueryRowContext(ctx).Scan(&v); err != nil { b.Fatal(err) }
	}
}
func BenchmarkScratchMinPrepared(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), "r", DefaultOptions)
	if err != nil { b.Fatal(err) }
	defer q.Close()
	ctx := context.Background()
	st, err := q.db.PrepareContext(ctx, `select min(visible_ms) from messages where queue = ?`)
	if err != nil { b.Fatal(err) }
	for b.Loop() {
		var v *int64
		if err := st.QueryRowContext(ctx, "r").Scan(&v); err != nil { b.Fatal(err) }
	}
}

func scratchCPU(b *testing.B, tick time.Duration, f func()) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, c0 := time.Now(), cpu()
	t := time.NewTicker(tick)
	for time.Since(start) < 2*time.Second {
		<-t.C
		f()
	}
	b.ReportMetric(100*float64(cpu()-c0)/float64(time.Since(start)), "cpu-%")
}

func BenchmarkScratchCPU(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), "r", DefaultOptions)
	if err != nil { b.Fatal(err) }
	defer q.Close()
	ctx := context.Background()
	for _, tick := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond} {
		b.Run("sleep-"+tick.String(), func(b *testing.B) { scratchCPU(b, tick, func() {}) })
		b.Run("dv-"+tick.String(), func(b *testing.B) {
			scratchCPU(b, tick, func() {
				var v int64
				if err := q.db.QueryRowContext(ctx, `pragma data_version`).Scan(&v); err != nil { b.Fatal(err) }
			})
		})
		b.Run("exists-"+tick.String(), func(b *testing.B) {
			scratchCPU(b, tick, func() {
				if m, err := q.tryReceive(ctx, 1); err != nil || len(m) > 0 { b.Fatal(err) }
			})
		})
	}
}
