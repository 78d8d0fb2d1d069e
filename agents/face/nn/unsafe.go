package nn

import "unsafe"

// unsafeSlice views n floats starting at p; the micro-kernels take pointers
// so the assembly and the Go versions share one signature.
func unsafeSlice(p *float32, n int) []float32 { return unsafe.Slice(p, n) }
