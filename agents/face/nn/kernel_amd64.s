//go:build !purego

#include "textflag.h"

// func kernel6x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int)
//
// Y4..Y15 accumulate the 6×16 tile (two 8-wide registers per row); each step
// loads one 16-wide row of the packed B panel and broadcasts one value of
// each of the six A rows.
TEXT ·kernel6x16AVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), DI
	SHLQ $2, DI
	MOVQ b+24(FP), DX
	MOVQ c+32(FP), R8
	MOVQ ldc+40(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(DI*2), R10
	ADDQ DI, R10

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

loop:
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VBROADCASTSS (SI), Y2
	VFMADD231PS Y0, Y2, Y4
	VFMADD231PS Y1, Y2, Y5
	VBROADCASTSS (SI)(DI*1), Y3
	VFMADD231PS Y0, Y3, Y6
	VFMADD231PS Y1, Y3, Y7
	VBROADCASTSS (SI)(DI*2), Y2
	VFMADD231PS Y0, Y2, Y8
	VFMADD231PS Y1, Y2, Y9
	VBROADCASTSS (R10), Y3
	VFMADD231PS Y0, Y3, Y10
	VFMADD231PS Y1, Y3, Y11
	VBROADCASTSS (R10)(DI*1), Y2
	VFMADD231PS Y0, Y2, Y12
	VFMADD231PS Y1, Y2, Y13
	VBROADCASTSS (R10)(DI*2), Y3
	VFMADD231PS Y0, Y3, Y14
	VFMADD231PS Y1, Y3, Y15
	ADDQ $4, SI
	ADDQ $4, R10
	ADDQ $64, DX
	DECQ CX
	JNZ  loop

	VADDPS (R8), Y4, Y4
	VMOVUPS Y4, (R8)
	VADDPS 32(R8), Y5, Y5
	VMOVUPS Y5, 32(R8)
	ADDQ R9, R8
	VADDPS (R8), Y6, Y6
	VMOVUPS Y6, (R8)
	VADDPS 32(R8), Y7, Y7
	VMOVUPS Y7, 32(R8)
	ADDQ R9, R8
	VADDPS (R8), Y8, Y8
	VMOVUPS Y8, (R8)
	VADDPS 32(R8), Y9, Y9
	VMOVUPS Y9, 32(R8)
	ADDQ R9, R8
	VADDPS (R8), Y10, Y10
	VMOVUPS Y10, (R8)
	VADDPS 32(R8), Y11, Y11
	VMOVUPS Y11, 32(R8)
	ADDQ R9, R8
	VADDPS (R8), Y12, Y12
	VMOVUPS Y12, (R8)
	VADDPS 32(R8), Y13, Y13
	VMOVUPS Y13, 32(R8)
	ADDQ R9, R8
	VADDPS (R8), Y14, Y14
	VMOVUPS Y14, (R8)
	VADDPS 32(R8), Y15, Y15
	VMOVUPS Y15, 32(R8)
	VZEROUPPER
	RET

// func mulAddTiledAsmAVX2(dst, src, f *float32, n, c int)
//
// dst[i] += src[i]·f[i mod c] over n pixels of c channels; c is a positive
// multiple of 8 and n ≥ 1.
TEXT ·mulAddTiledAsmAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ f+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ c+32(FP), R8

pix:
	XORQ R9, R9
	MOVQ R8, R10

ch:
	VMOVUPS (DX)(R9*1), Y0
	VMOVUPS (DI)(R9*1), Y1
	VFMADD231PS (SI)(R9*1), Y0, Y1
	VMOVUPS Y1, (DI)(R9*1)
	ADDQ $32, R9
	SUBQ $8, R10
	JNZ  ch
	ADDQ R9, DI
	ADDQ R9, SI
	DECQ CX
	JNZ  pix
	VZEROUPPER
	RET

// func reluAsmAVX2(x *float32, n int)
//
// x[i] = max(x[i], 0) for n values, n a positive multiple of 8.
TEXT ·reluAsmAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VXORPS Y1, Y1, Y1

relu:
	VMAXPS (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  relu
	VZEROUPPER
	RET

DATA leakySlope<>+0(SB)/4, $0x3dcccccd // float32 0.1
GLOBL leakySlope<>(SB), RODATA|NOPTR, $4

// func leakyAsmAVX2(x *float32, n int)
//
// x[i] = max(x[i], 0.1·x[i]) for n values, n a positive multiple of 8.
TEXT ·leakyAsmAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS leakySlope<>(SB), Y2

leaky:
	VMOVUPS (DI), Y0
	VMULPS Y2, Y0, Y1
	VMAXPS Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  leaky
	VZEROUPPER
	RET
