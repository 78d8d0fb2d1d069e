//go:build !purego

#include "textflag.h"

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

// func maxTapsAsmAVX2(dst, src *float32, n, c, step, k, tapStride int)
//
// dst[o·c + i] = max over j < k of src[o·step + j·tapStride + i], for n ≥ 1
// outputs of c values, c a positive multiple of 8, k ≥ 1.
TEXT ·maxTapsAsmAVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ c+24(FP), R8
	SHLQ $2, R8
	MOVQ step+32(FP), R9
	SHLQ $2, R9
	MOVQ k+40(FP), R10
	MOVQ tapStride+48(FP), R11
	SHLQ $2, R11

maxpix:
	XORQ R12, R12

maxchan:
	LEAQ    (SI)(R12*1), R14
	VMOVUPS (R14), Y0
	MOVQ    R10, R13
	DECQ    R13
	JZ      maxstore

maxtap:
	ADDQ   R11, R14
	VMAXPS (R14), Y0, Y0
	DECQ   R13
	JNZ    maxtap

maxstore:
	VMOVUPS Y0, (DI)(R12*1)
	ADDQ    $32, R12
	CMPQ    R12, R8
	JNE     maxchan
	ADDQ    R8, DI
	ADDQ    R9, SI
	DECQ    CX
	JNZ     maxpix
	VZEROUPPER
	RET
