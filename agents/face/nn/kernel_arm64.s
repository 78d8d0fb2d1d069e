//go:build !purego

#include "textflag.h"

// func mulAddTiledAsmNEON(dst, src, f *float32, n, c int)
//
// dst[i] += src[i]·f[i mod c] over n pixels of c channels; c is a positive
// multiple of 8 and n ≥ 1.
TEXT ·mulAddTiledAsmNEON(SB), NOSPLIT, $0-40
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD f+16(FP), R2
	MOVD n+24(FP), R3
	MOVD c+32(FP), R4

pix:
	MOVD R2, R5
	MOVD R4, R6

ch:
	VLD1   (R0), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V2.S4, V3.S4]
	VLD1.P 32(R5), [V4.S4, V5.S4]
	VFMLA  V2.S4, V4.S4, V0.S4
	VFMLA  V3.S4, V5.S4, V1.S4
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $8, R6, R6
	BNE    ch
	SUBS   $1, R3, R3
	BNE    pix
	RET

// func reluAsmNEON(x *float32, n int)
//
// x[i] = max(x[i], 0) for n values, n a positive multiple of 16: values
// with the sign bit set (V30) are replaced by zero (V31).
TEXT ·reluAsmNEON(SB), NOSPLIT, $0-16
	MOVD x+0(FP), R0
	MOVD n+8(FP), R1
	MOVW $0x80000000, R2
	VDUP R2, V30.S4
	VEOR V31.B16, V31.B16, V31.B16

relu:
	VLD1   (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VCMTST V30.S4, V0.S4, V4.S4
	VCMTST V30.S4, V1.S4, V5.S4
	VCMTST V30.S4, V2.S4, V6.S4
	VCMTST V30.S4, V3.S4, V7.S4
	VBIT   V4.B16, V31.B16, V0.B16
	VBIT   V5.B16, V31.B16, V1.B16
	VBIT   V6.B16, V31.B16, V2.B16
	VBIT   V7.B16, V31.B16, V3.B16
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)
	SUBS   $16, R1, R1
	BNE    relu
	RET

// func leakyAsmNEON(x *float32, n int)
//
// x[i] = max(x[i], 0.1·x[i]) for n values, n a positive multiple of 16:
// 0.1·x is 0 + x·0.1 (one rounding, as a multiply), taken where the sign
// bit is set.
TEXT ·leakyAsmNEON(SB), NOSPLIT, $0-16
	MOVD x+0(FP), R0
	MOVD n+8(FP), R1
	MOVW $0x80000000, R2
	VDUP R2, V30.S4
	MOVW $0x3dcccccd, R3
	VDUP R3, V29.S4

leaky:
	VLD1   (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VEOR   V4.B16, V4.B16, V4.B16
	VEOR   V5.B16, V5.B16, V5.B16
	VEOR   V6.B16, V6.B16, V6.B16
	VEOR   V7.B16, V7.B16, V7.B16
	VFMLA  V29.S4, V0.S4, V4.S4
	VFMLA  V29.S4, V1.S4, V5.S4
	VFMLA  V29.S4, V2.S4, V6.S4
	VFMLA  V29.S4, V3.S4, V7.S4
	VCMTST V30.S4, V0.S4, V8.S4
	VCMTST V30.S4, V1.S4, V9.S4
	VCMTST V30.S4, V2.S4, V10.S4
	VCMTST V30.S4, V3.S4, V11.S4
	VBIT   V8.B16, V4.B16, V0.B16
	VBIT   V9.B16, V5.B16, V1.B16
	VBIT   V10.B16, V6.B16, V2.B16
	VBIT   V11.B16, V7.B16, V3.B16
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)
	SUBS   $16, R1, R1
	BNE    leaky
	RET

// Winograd F(4×4, 3×3) tile transforms, four channels per step (see
// winograd.go for the algebra and winoInGo / winoOutGo for the reference).
// Additions are FMLA / FMLS by a vector of ones (V20); V21, V22, V23, V24
// hold 2, 4, 5 and 8.

// BT6 applies Bᵀ to V0..V5 (clobbered): t0..t5 end in V6, V9, V7, V8, V10,
// V5. In order: t0 = d4 - 5 d2 + 4 d0; a = d4 - 4 d2, b = d3 - 4 d1,
// t1 = a + b, t2 = a - b; c = d4 - d2, e = d3 - d1, t3 = c + 2 e,
// t4 = c - 2 e; t5 = d5 - 5 d3 + 4 d1.
#define BT6 \
	VORR  V4.B16, V4.B16, V6.B16; \
	VFMLS V23.S4, V2.S4, V6.S4; \
	VFMLA V22.S4, V0.S4, V6.S4; \
	VORR  V4.B16, V4.B16, V7.B16; \
	VFMLS V22.S4, V2.S4, V7.S4; \
	VORR  V3.B16, V3.B16, V8.B16; \
	VFMLS V22.S4, V1.S4, V8.S4; \
	VORR  V7.B16, V7.B16, V9.B16; \
	VFMLA V20.S4, V8.S4, V9.S4; \
	VFMLS V20.S4, V8.S4, V7.S4; \
	VORR  V4.B16, V4.B16, V10.B16; \
	VFMLS V20.S4, V2.S4, V10.S4; \
	VORR  V3.B16, V3.B16, V11.B16; \
	VFMLS V20.S4, V1.S4, V11.S4; \
	VORR  V10.B16, V10.B16, V8.B16; \
	VFMLA V21.S4, V11.S4, V8.S4; \
	VFMLS V21.S4, V11.S4, V10.S4; \
	VFMLS V23.S4, V3.S4, V5.S4; \
	VFMLA V22.S4, V1.S4, V5.S4

// AT6 applies Aᵀ to V0..V5 (clobbered): y0..y3 end in V0, V1, V6, V7.
// With s12, d12 = m1 ± m2 and s34, d34 = m3 ± m4: y0 = m0 + s12 + s34,
// y1 = d12 + 2 d34, y2 = s12 + 4 s34, y3 = d12 + m5 + 8 d34.
#define AT6 \
	VORR  V1.B16, V1.B16, V6.B16; \
	VFMLA V20.S4, V2.S4, V6.S4; \
	VORR  V1.B16, V1.B16, V7.B16; \
	VFMLS V20.S4, V2.S4, V7.S4; \
	VORR  V3.B16, V3.B16, V8.B16; \
	VFMLA V20.S4, V4.S4, V8.S4; \
	VORR  V3.B16, V3.B16, V9.B16; \
	VFMLS V20.S4, V4.S4, V9.S4; \
	VFMLA V20.S4, V6.S4, V0.S4; \
	VFMLA V20.S4, V8.S4, V0.S4; \
	VORR  V7.B16, V7.B16, V1.B16; \
	VFMLA V21.S4, V9.S4, V1.S4; \
	VFMLA V22.S4, V8.S4, V6.S4; \
	VFMLA V20.S4, V5.S4, V7.S4; \
	VFMLA V24.S4, V9.S4, V7.S4

#define WINO_CONSTS \
	MOVW $0x3f800000, R14; \
	VDUP R14, V20.S4; \
	MOVW $0x40000000, R14; \
	VDUP R14, V21.S4; \
	MOVW $0x40800000, R14; \
	VDUP R14, V22.S4; \
	MOVW $0x40a00000, R14; \
	VDUP R14, V23.S4; \
	MOVW $0x41000000, R14; \
	VDUP R14, V24.S4

// func winoInAsmNEON(src *float32, rowStride, c int, dst *float32, dstStride int, tmp *float32)
//
// c is a positive multiple of 4; tmp holds 36 vectors. The first pass
// transforms each of the six input rows into tmp (row-major 6 × 6), the
// second each column of tmp into dst: point (i, j) at dst + (6 i + j)·dstStride.
TEXT ·winoInAsmNEON(SB), NOSPLIT, $0-48
	MOVD src+0(FP), R0
	MOVD rowStride+8(FP), R1
	LSL  $2, R1
	MOVD c+16(FP), R2
	LSL  $2, R2
	MOVD dst+24(FP), R3
	MOVD dstStride+32(FP), R4
	LSL  $2, R4
	MOVD tmp+40(FP), R5
	MOVD c+16(FP), R6
	ADD  R4, R4, R7
	ADD  R4, R7, R7
	ADD  R7, R7, R7
	MOVD $96, R8
	WINO_CONSTS

group:
	MOVD R0, R9
	MOVD R5, R11
	MOVD $6, R12

row:
	MOVD   R9, R10
	VLD1.P (R10)(R2), [V0.S4]
	VLD1.P (R10)(R2), [V1.S4]
	VLD1.P (R10)(R2), [V2.S4]
	VLD1.P (R10)(R2), [V3.S4]
	VLD1.P (R10)(R2), [V4.S4]
	VLD1.P (R10)(R2), [V5.S4]
	BT6
	VST1.P [V6.S4], 16(R11)
	VST1.P [V9.S4], 16(R11)
	VST1.P [V7.S4], 16(R11)
	VST1.P [V8.S4], 16(R11)
	VST1.P [V10.S4], 16(R11)
	VST1.P [V5.S4], 16(R11)
	ADD    R1, R9
	SUBS   $1, R12, R12
	BNE    row

	MOVD R5, R9
	MOVD R3, R13
	MOVD $6, R12

col:
	MOVD   R9, R10
	VLD1.P (R10)(R8), [V0.S4]
	VLD1.P (R10)(R8), [V1.S4]
	VLD1.P (R10)(R8), [V2.S4]
	VLD1.P (R10)(R8), [V3.S4]
	VLD1.P (R10)(R8), [V4.S4]
	VLD1.P (R10)(R8), [V5.S4]
	BT6
	MOVD   R13, R10
	VST1.P [V6.S4], (R10)(R7)
	VST1.P [V9.S4], (R10)(R7)
	VST1.P [V7.S4], (R10)(R7)
	VST1.P [V8.S4], (R10)(R7)
	VST1.P [V10.S4], (R10)(R7)
	VST1   [V5.S4], (R10)
	ADD    $16, R9
	ADD    R4, R13
	SUBS   $1, R12, R12
	BNE    col

	ADD  $16, R0
	ADD  $16, R3
	SUBS $4, R6, R6
	BNE  group
	RET

// func winoOutAsmNEON(src *float32, srcStride, c int, bias, dst *float32, dstRowStride int, relu bool, tmp *float32)
//
// c is a positive multiple of 4; tmp holds 24 vectors. The first pass
// transforms each row of six points (point (i, j) at src + (6 i + j)·srcStride)
// into four vectors of tmp, the second each column of tmp into four output
// pixels, adding the bias (V27) and, with relu, replacing negatives by zero.
TEXT ·winoOutAsmNEON(SB), NOSPLIT, $0-64
	MOVD  src+0(FP), R0
	MOVD  srcStride+8(FP), R1
	LSL   $2, R1
	MOVD  c+16(FP), R2
	LSL   $2, R2
	MOVD  bias+24(FP), R3
	MOVD  dst+32(FP), R4
	MOVD  dstRowStride+40(FP), R5
	LSL   $2, R5
	MOVBU relu+48(FP), R6
	MOVD  tmp+56(FP), R7
	MOVD  c+16(FP), R8
	MOVD  $64, R9
	WINO_CONSTS
	MOVW  $0x80000000, R14
	VDUP  R14, V25.S4
	VEOR  V26.B16, V26.B16, V26.B16

ogroup:
	MOVD R0, R10
	MOVD R7, R11
	MOVD $6, R12

orow:
	VLD1.P (R10)(R1), [V0.S4]
	VLD1.P (R10)(R1), [V1.S4]
	VLD1.P (R10)(R1), [V2.S4]
	VLD1.P (R10)(R1), [V3.S4]
	VLD1.P (R10)(R1), [V4.S4]
	VLD1.P (R10)(R1), [V5.S4]
	AT6
	VST1.P [V0.S4], 16(R11)
	VST1.P [V1.S4], 16(R11)
	VST1.P [V6.S4], 16(R11)
	VST1.P [V7.S4], 16(R11)
	SUBS   $1, R12, R12
	BNE    orow

	VLD1 (R3), [V27.S4]
	MOVD R7, R10
	MOVD R4, R13
	MOVD $4, R12

ocol:
	MOVD   R10, R11
	VLD1.P (R11)(R9), [V0.S4]
	VLD1.P (R11)(R9), [V1.S4]
	VLD1.P (R11)(R9), [V2.S4]
	VLD1.P (R11)(R9), [V3.S4]
	VLD1.P (R11)(R9), [V4.S4]
	VLD1.P (R11)(R9), [V5.S4]
	AT6
	VFMLA  V20.S4, V27.S4, V0.S4
	VFMLA  V20.S4, V27.S4, V1.S4
	VFMLA  V20.S4, V27.S4, V6.S4
	VFMLA  V20.S4, V27.S4, V7.S4
	CBZ    R6, store
	VCMTST V25.S4, V0.S4, V28.S4
	VBIT   V28.B16, V26.B16, V0.B16
	VCMTST V25.S4, V1.S4, V28.S4
	VBIT   V28.B16, V26.B16, V1.B16
	VCMTST V25.S4, V6.S4, V28.S4
	VBIT   V28.B16, V26.B16, V6.B16
	VCMTST V25.S4, V7.S4, V28.S4
	VBIT   V28.B16, V26.B16, V7.B16

store:
	MOVD   R13, R11
	VST1.P [V0.S4], (R11)(R5)
	VST1.P [V1.S4], (R11)(R5)
	VST1.P [V6.S4], (R11)(R5)
	VST1   [V7.S4], (R11)
	ADD    $16, R10
	ADD    R2, R13
	SUBS   $1, R12, R12
	BNE    ocol

	ADD  $16, R0
	ADD  $16, R3
	ADD  $16, R4
	SUBS $4, R8, R8
	BNE  ogroup
	RET

// func maxTapsAsmNEON(dst, src *float32, n, c, step, k, tapStride int)
//
// dst[o·c + i] = max over j < k of src[o·step + j·tapStride + i], for n ≥ 1
// outputs of c values, c a positive multiple of 4, k ≥ 1. FMAX is not in
// Go's arm64 assembler: it is encoded by hand (FMAX V0.4S, V0.4S, V1.4S).
TEXT ·maxTapsAsmNEON(SB), NOSPLIT, $0-56
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	MOVD c+24(FP), R3
	LSL  $2, R3
	MOVD step+32(FP), R4
	LSL  $2, R4
	MOVD k+40(FP), R5
	MOVD tapStride+48(FP), R6
	LSL  $2, R6

maxpix:
	MOVD $0, R7

maxchan:
	ADD  R7, R1, R8
	VLD1 (R8), [V0.S4]
	SUBS $1, R5, R9
	BEQ  maxstore

maxtap:
	ADD  R6, R8
	VLD1 (R8), [V1.S4]
	WORD $0x4e21f400
	SUBS $1, R9, R9
	BNE  maxtap

maxstore:
	ADD  R7, R0, R10
	VST1 [V0.S4], (R10)
	ADD  $16, R7
	CMP  R3, R7
	BNE  maxchan
	ADD  R3, R0
	ADD  R4, R1
	SUBS $1, R2, R2
	BNE  maxpix
	RET
