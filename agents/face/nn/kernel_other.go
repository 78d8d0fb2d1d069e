//go:build !amd64 || purego

package nn

// Accelerated says whether the products run on an assembly micro-kernel;
// on this architecture (or with the purego tag) they run in portable Go.
const Accelerated = false

var kernel = kernelGo

// mulAddTiled sets dst[i] += src[i]·f[i mod len(f)] for n pixels of len(f) channels.
func mulAddTiled(dst, src, f []float32, n int) { mulAddTiledGo(dst, src, f, n) }

// vectorPrefix is how many leading values the vector activations handle:
// none here, the portable loops do all.
func vectorPrefix(int) int { return 0 }

func reluVec([]float32)  {}
func leakyVec([]float32) {}
