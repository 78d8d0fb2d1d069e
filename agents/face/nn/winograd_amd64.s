//go:build !purego

#include "textflag.h"

// Winograd F(4×4, 3×3) tile transforms, eight channels per step (see
// winograd.go for the algebra and winoInGo / winoOutGo for the reference).

DATA winoConst<>+0(SB)/4, $0x40800000  // 4.0
DATA winoConst<>+4(SB)/4, $0x40a00000  // 5.0
DATA winoConst<>+8(SB)/4, $0x40000000  // 2.0
DATA winoConst<>+12(SB)/4, $0x41000000 // 8.0
DATA winoConst<>+16(SB)/4, $0xff800000 // -Inf
GLOBL winoConst<>(SB), RODATA|NOPTR, $20

// BT6 applies Bᵀ to Y0..Y5 (clobbered) with Y12 = 4, Y13 = 5, Y14 = 2:
// t0..t5 end in Y6, Y9, Y7, Y8, Y10, Y5. In order: t0 = d4 - 5 d2 + 4 d0;
// a = d4 - 4 d2, b = d3 - 4 d1, t1 = a + b, t2 = a - b; c = d4 - d2,
// e = 2 (d3 - d1), t3 = c + e, t4 = c - e; t5 = d5 - 5 d3 + 4 d1.
#define BT6 \
	VMOVAPS      Y4, Y6; \
	VFNMADD231PS Y13, Y2, Y6; \
	VFMADD231PS  Y12, Y0, Y6; \
	VMOVAPS      Y4, Y7; \
	VFNMADD231PS Y12, Y2, Y7; \
	VMOVAPS      Y3, Y8; \
	VFNMADD231PS Y12, Y1, Y8; \
	VADDPS       Y8, Y7, Y9; \
	VSUBPS       Y8, Y7, Y7; \
	VSUBPS       Y2, Y4, Y10; \
	VSUBPS       Y1, Y3, Y11; \
	VMULPS       Y14, Y11, Y11; \
	VADDPS       Y11, Y10, Y8; \
	VSUBPS       Y11, Y10, Y10; \
	VFNMADD231PS Y13, Y3, Y5; \
	VFMADD231PS  Y12, Y1, Y5

// func winoInAsmAVX2(src *float32, rowStride, c int, dst *float32, dstStride int)
//
// c is a positive multiple of 8. The first pass transforms each of the six
// input rows into a 6 × 6 block of vectors on the stack, the second each
// column of that block into dst.
TEXT ·winoInAsmAVX2(SB), 0, $1152-40
	MOVQ src+0(FP), SI
	MOVQ rowStride+8(FP), R8
	SHLQ $2, R8
	MOVQ c+16(FP), CX
	MOVQ CX, R9
	SHLQ $2, R9
	MOVQ dst+24(FP), DI
	MOVQ dstStride+32(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R13
	SHLQ $1, R13 // R13 = 6 points
	SHRQ $3, CX
	VBROADCASTSS winoConst<>+0(SB), Y12
	VBROADCASTSS winoConst<>+4(SB), Y13
	VBROADCASTSS winoConst<>+8(SB), Y14

group:
	// Rows: row r's pixels at SI + r·R8 + k·R9.
	MOVQ SI, R11
	XORQ DX, DX

row:
	LEAQ    (R11)(R9*2), R12
	ADDQ    R9, R12
	VMOVUPS (R11), Y0
	VMOVUPS (R11)(R9*1), Y1
	VMOVUPS (R11)(R9*2), Y2
	VMOVUPS (R12), Y3
	VMOVUPS (R12)(R9*1), Y4
	VMOVUPS (R12)(R9*2), Y5
	BT6
	VMOVUPS Y6, 0(SP)(DX*1)
	VMOVUPS Y9, 32(SP)(DX*1)
	VMOVUPS Y7, 64(SP)(DX*1)
	VMOVUPS Y8, 96(SP)(DX*1)
	VMOVUPS Y10, 128(SP)(DX*1)
	VMOVUPS Y5, 160(SP)(DX*1)
	ADDQ    R8, R11
	ADDQ    $192, DX
	CMPQ    DX, $1152
	JNE     row

	// Columns: column j of the block at SP + 32 j + 192 r; point (i, j)
	// goes to DI + (6 i + j)·R10.
	MOVQ DI, R11
	XORQ DX, DX

col:
	VMOVUPS 0(SP)(DX*1), Y0
	VMOVUPS 192(SP)(DX*1), Y1
	VMOVUPS 384(SP)(DX*1), Y2
	VMOVUPS 576(SP)(DX*1), Y3
	VMOVUPS 768(SP)(DX*1), Y4
	VMOVUPS 960(SP)(DX*1), Y5
	BT6
	LEAQ    (R11)(R13*2), R12
	ADDQ    R13, R12
	VMOVUPS Y6, (R11)
	VMOVUPS Y9, (R11)(R13*1)
	VMOVUPS Y7, (R11)(R13*2)
	VMOVUPS Y8, (R12)
	VMOVUPS Y10, (R12)(R13*1)
	VMOVUPS Y5, (R12)(R13*2)
	ADDQ    R10, R11
	ADDQ    $32, DX
	CMPQ    DX, $192
	JNE     col

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  group
	VZEROUPPER
	RET

// AT6 applies Aᵀ to Y0..Y5 (clobbered) with Y12 = 2, Y13 = 4, Y14 = 8:
// y0..y3 end in Y0, Y1, Y6, Y7. With s12, d12 = m1 ± m2 and s34, d34 =
// m3 ± m4: y0 = m0 + s12 + s34, y1 = d12 + 2 d34, y2 = s12 + 4 s34,
// y3 = d12 + m5 + 8 d34.
#define AT6 \
	VADDPS      Y2, Y1, Y6; \
	VSUBPS      Y2, Y1, Y7; \
	VADDPS      Y4, Y3, Y8; \
	VSUBPS      Y4, Y3, Y9; \
	VADDPS      Y6, Y0, Y0; \
	VADDPS      Y8, Y0, Y0 ; \
	VMOVAPS     Y7, Y1; \
	VFMADD231PS Y12, Y9, Y1; \
	VFMADD231PS Y13, Y8, Y6; \
	VADDPS      Y5, Y7, Y7; \
	VFMADD231PS Y14, Y9, Y7

// func winoOutAsmAVX2(src *float32, srcStride, c int, bias, dst *float32, dstRowStride int, relu bool)
//
// c is a positive multiple of 8. The first pass transforms each of the six
// rows of points into four vectors on the stack, the second each column of
// those into four output pixels, adding the bias and, with relu, clamping
// at zero (a max against 0, or against -Inf without relu).
TEXT ·winoOutAsmAVX2(SB), 0, $768-49
	MOVQ src+0(FP), SI
	MOVQ srcStride+8(FP), R8
	SHLQ $2, R8
	MOVQ c+16(FP), CX
	MOVQ CX, R9
	SHLQ $2, R9
	MOVQ bias+24(FP), BX
	MOVQ dst+32(FP), DI
	MOVQ dstRowStride+40(FP), R10
	SHLQ $2, R10
	VBROADCASTSS winoConst<>+16(SB), Y10
	MOVBLZX relu+48(FP), AX
	TESTQ   AX, AX
	JZ      consts
	VXORPS  Y10, Y10, Y10

consts:
	VBROADCASTSS winoConst<>+8(SB), Y12
	VBROADCASTSS winoConst<>+0(SB), Y13
	VBROADCASTSS winoConst<>+12(SB), Y14
	SHRQ $3, CX

ogroup:
	// Rows of points: point (i, j) at SI + (6 i + j)·R8.
	MOVQ SI, R11
	XORQ DX, DX

orow:
	LEAQ    (R11)(R8*2), R12
	ADDQ    R8, R12
	VMOVUPS (R11), Y0
	VMOVUPS (R11)(R8*1), Y1
	VMOVUPS (R11)(R8*2), Y2
	VMOVUPS (R12), Y3
	VMOVUPS (R12)(R8*1), Y4
	VMOVUPS (R12)(R8*2), Y5
	AT6
	VMOVUPS Y0, 0(SP)(DX*1)
	VMOVUPS Y1, 32(SP)(DX*1)
	VMOVUPS Y6, 64(SP)(DX*1)
	VMOVUPS Y7, 96(SP)(DX*1)
	LEAQ    (R12)(R8*2), R11
	ADDQ    R8, R11
	ADDQ    $128, DX
	CMPQ    DX, $768
	JNE     orow

	// Columns: column j at SP + 32 j + 128 i; output row a, column j at
	// DI + a·R10 + j·R9.
	VMOVUPS (BX), Y15
	MOVQ    DI, R11
	XORQ    DX, DX

ocol:
	VMOVUPS 0(SP)(DX*1), Y0
	VMOVUPS 128(SP)(DX*1), Y1
	VMOVUPS 256(SP)(DX*1), Y2
	VMOVUPS 384(SP)(DX*1), Y3
	VMOVUPS 512(SP)(DX*1), Y4
	VMOVUPS 640(SP)(DX*1), Y5
	AT6
	VADDPS  Y15, Y0, Y0
	VADDPS  Y15, Y1, Y1
	VADDPS  Y15, Y6, Y6
	VADDPS  Y15, Y7, Y7
	VMAXPS  Y10, Y0, Y0
	VMAXPS  Y10, Y1, Y1
	VMAXPS  Y10, Y6, Y6
	VMAXPS  Y10, Y7, Y7
	LEAQ    (R11)(R10*2), R12
	VMOVUPS Y0, (R11)
	VMOVUPS Y1, (R11)(R10*1)
	VMOVUPS Y6, (R12)
	VMOVUPS Y7, (R12)(R10*1)
	ADDQ    R9, R11
	ADDQ    $32, DX
	CMPQ    DX, $128
	JNE     ocol

	ADDQ $32, SI
	ADDQ $32, BX
	ADDQ $32, DI
	DECQ CX
	JNZ  ogroup
	VZEROUPPER
	RET
