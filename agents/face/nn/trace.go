package nn

import (
	"sync"
	"sync/atomic"
)

// Product is one matrix product a network ran: M rows of A against rows
// KOff to KOff+K of B.
type Product struct {
	M, KOff, K int
	B          *PackedB
}

// productTrace collects products; the engine runs faces of one photo in
// parallel, hence the lock.
type productTrace struct {
	mu   sync.Mutex
	list []Product
}

var tracing atomic.Pointer[productTrace]

// TraceProducts records every product run, in any goroutine, until the
// returned stop, which gives them in the order they ran. It is for
// benchmarks that ask what the same products would cost with more rows
// (Replay): what running several images through a network at once would
// save. One trace at a time.
func TraceProducts() (stop func() []Product) {
	t := new(productTrace)
	if !tracing.CompareAndSwap(nil, t) {
		panic("nn: a product trace is already running")
	}
	return func() []Product {
		tracing.CompareAndSwap(t, nil)
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.list
	}
}

func traceProduct(m, kOff, k int, b *PackedB) {
	t := tracing.Load()
	if t == nil {
		return
	}
	t.mu.Lock()
	t.list = append(t.list, Product{M: m, KOff: kOff, K: k, B: b})
	t.mu.Unlock()
}

// Replay runs p's product with m rows of A instead of p.M: C = A·B + C for
// A m × p.K (rows contiguous) and C m × p.B.N (rows contiguous).
func Replay(p Product, m int, a, c []float32) {
	gemmRows(m, a, p.K, p.B, p.KOff, p.K, c, p.B.N)
}
