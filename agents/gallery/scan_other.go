//go:build purego || !(amd64 || arm64)

package gallery

// archScanKernels is empty: this architecture (or the purego tag) scans
// with the portable kernel.
func archScanKernels() []scanKernel { return nil }
