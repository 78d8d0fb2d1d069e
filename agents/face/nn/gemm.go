// Package nn holds the numeric kernels of the face networks: a blocked
// single-precision matrix product with a register-tiled micro-kernel (AVX2 +
// FMA assembly on amd64, portable Go elsewhere), and the convolution, pooling
// and resizing operations built on it, all on HWC float32 tensors of one image.
//
// The layouts follow TensorFlow.js so published weights drop in unchanged:
// activations are height × width × channels, convolution filters are
// kh × kw × in × out, which is exactly the right-hand matrix of the product
// of an im2col patch matrix and the filter.
package nn

// Tile sizes of the micro-kernel: it computes a tileM × tileN block of the
// output, keeping all of it in 12 vector registers on amd64.
const (
	tileM = 6
	tileN = 16
	// blockK bounds the slice of K one pass of the micro-kernel walks, so the
	// packed B panel it reads (blockK × tileN floats, 16 KiB) stays in L1.
	blockK = 256
	// blockM bounds the rows of A one B panel is applied to, so they stay in L2.
	blockM = 96
)

// PackedB is the right-hand matrix of a product, K × N, laid out once in
// panels of tileN columns (the last one zero-padded), each panel K rows of
// tileN contiguous values: the order in which the micro-kernel reads it.
type PackedB struct {
	K, N   int
	panels []float32
}

// PackB lays out the row-major K × N matrix b for Gemm.
func PackB(b []float32, k, n int) *PackedB {
	np := (n + tileN - 1) / tileN
	p := &PackedB{K: k, N: n, panels: make([]float32, np*k*tileN)}
	for j := 0; j < np; j++ {
		panel := p.panels[j*k*tileN : (j+1)*k*tileN]
		for r := 0; r < k; r++ {
			for c := 0; c < tileN; c++ {
				if col := j*tileN + c; col < n {
					panel[r*tileN+c] = b[r*n+col]
				}
			}
		}
	}
	return p
}

// Gemm sets C = A·B + C for the m × K matrix A (row stride lda) and the
// packed K × N matrix B, with C m × N (row stride ldc). Callers that want
// C = A·B (plus a bias) initialise C first.
func Gemm(m int, a []float32, lda int, b *PackedB, c []float32, ldc int) {
	k, n := b.K, b.N
	if m == 0 || n == 0 || k == 0 {
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	var edgeA [tileM * blockK]float32
	var edgeC [tileM * tileN]float32
	np := (n + tileN - 1) / tileN
	for k0 := 0; k0 < k; k0 += blockK {
		kc := min(blockK, k-k0)
		for i0 := 0; i0 < m; i0 += blockM {
			i1 := min(i0+blockM, m)
			for j := 0; j < np; j++ {
				bp := b.panels[(j*k+k0)*tileN:]
				col := j * tileN
				full := col+tileN <= n
				for i := i0; i < i1; i += tileM {
					rows := min(tileM, i1-i)
					if rows == tileM && full {
						kernel(kc, &a[i*lda+k0], lda, &bp[0], &c[i*ldc+col], ldc)
						continue
					}
					// Edge tile: work on zero-padded copies of A and C.
					ap, alda := &a[i*lda+k0], lda
					if rows < tileM {
						clear(edgeA[:])
						for r := 0; r < rows; r++ {
							copy(edgeA[r*kc:(r+1)*kc], a[(i+r)*lda+k0:(i+r)*lda+k0+kc])
						}
						ap, alda = &edgeA[0], kc
					}
					cols := min(tileN, n-col)
					clear(edgeC[:])
					for r := 0; r < rows; r++ {
						copy(edgeC[r*tileN:r*tileN+cols], c[(i+r)*ldc+col:(i+r)*ldc+col+cols])
					}
					kernel(kc, ap, alda, &bp[0], &edgeC[0], tileN)
					for r := 0; r < rows; r++ {
						copy(c[(i+r)*ldc+col:(i+r)*ldc+col+cols], edgeC[r*tileN:r*tileN+cols])
					}
				}
			}
		}
	}
}

// kernelGo is the portable micro-kernel: C[6×16] += A[6×k]·Bpanel[k×16].
// It walks k once per 3 × 4 sub-tile, keeping those 12 sums in locals (the
// compiler holds them in registers: 12 sums, 3 A and 4 B values fit the 32
// floating-point registers of arm64), so each step does 12 multiply-adds for
// 7 loads.
func kernelGo(k int, a *float32, lda int, b *float32, c *float32, ldc int) {
	as := unsafeSlice(a, (tileM-1)*lda+k)
	bs := unsafeSlice(b, k*tileN)
	cs := unsafeSlice(c, (tileM-1)*ldc+tileN)
	for r := 0; r < tileM; r += 3 {
		a0 := as[r*lda : r*lda+k]
		a1 := as[(r+1)*lda : (r+1)*lda+k]
		a2 := as[(r+2)*lda : (r+2)*lda+k]
		a1, a2 = a1[:len(a0)], a2[:len(a0)]
		for j := 0; j < tileN; j += 4 {
			var s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23 float32
			bp := bs[j:]
			for p, x0 := range a0 {
				bv := bp[:4:4]
				bp = bp[min(tileN, len(bp)):]
				b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
				x1, x2 := a1[p], a2[p]
				s00 += x0 * b0
				s01 += x0 * b1
				s02 += x0 * b2
				s03 += x0 * b3
				s10 += x1 * b0
				s11 += x1 * b1
				s12 += x1 * b2
				s13 += x1 * b3
				s20 += x2 * b0
				s21 += x2 * b1
				s22 += x2 * b2
				s23 += x2 * b3
			}
			c0 := cs[r*ldc+j : r*ldc+j+4 : r*ldc+j+4]
			c1 := cs[(r+1)*ldc+j : (r+1)*ldc+j+4 : (r+1)*ldc+j+4]
			c2 := cs[(r+2)*ldc+j : (r+2)*ldc+j+4 : (r+2)*ldc+j+4]
			c0[0], c0[1], c0[2], c0[3] = c0[0]+s00, c0[1]+s01, c0[2]+s02, c0[3]+s03
			c1[0], c1[1], c1[2], c1[3] = c1[0]+s10, c1[1]+s11, c1[2]+s12, c1[3]+s13
			c2[0], c2[1], c2[2], c2[3] = c2[0]+s20, c2[1]+s21, c2[2]+s22, c2[3]+s23
		}
	}
}
