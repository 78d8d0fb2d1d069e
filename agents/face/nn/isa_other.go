//go:build purego || !(amd64 || arm64)

package nn

// archSets is empty: this architecture (or the purego tag) runs the
// portable kernels only.
func archSets() []*isa { return nil }
