// Row-interleaved ("repacked") layouts of quantized weight matrices, made once at load
// so that one SIMD register holds the same few weights of several rows: a GEMM then
// broadcasts an activation's four bytes against R rows at once and gets R row sums in R
// lanes, with no horizontal reduction per block (kernels/kernels.h, PackedQMatmulFn).
//
// Layout of a matrix of `rows` rows (a multiple of R) and nb blocks per row, packed
// with Packing{R, G}: row groups of R consecutive rows, one after the other, each
// packed_group_bytes (Q4_0, Q8_0: nb * R * type_size, the plain rows' bytes):
//   quants: for block b, piece p (G bytes of the block's qs, p = 0 .. qs_bytes/G - 1),
//           row i of the group: qs[p*G .. p*G + G) at  (b * pieces + p) * R * G + i * G
//   scales: after the quants of all nb blocks, the fp16 d of block b, row i at
//           nb * R * qs_bytes + (b * R + i) * 2
// Q4_0's qs bytes are moved as they are (byte j: weight j in the low nibble, weight
// j + 16 in the high one). Q8_0 with `biased`: each code stored as code + 128 (code ^
// 0x80), the unsigned operand VPDPBUSD wants; the kernels subtract 128 * sum(x).
// IQ4_NL: as Q4_0 (an fp16 d, then 16 qs bytes of nibbles).
// Q5_0: qs as Q4_0's; per block b, after the R scales, row i's fifth bits as one
// little-endian u32 at nb * R * 16 + b * R * 6 + 2R + 4i (the scales at nb * R * 16 +
// b * R * 6 + 2i), transposed: bit j of byte m is the file's bit 4j + m, the fifth bit of
// byte m of code piece j (low nibbles of qs[4j ..] for j < 4, high ones of qs[4(j-4) ..]
// above), so piece j's fifth bits reach bit 4 of every byte by one shift of the word by
// 4 - j and one AND with 0x10, for any R and G = 4. Bytes: the file's, 22 per block.
// Q4_1 and Q5_1: as Q4_0 and Q5_0 with two fp16 fields, the R scales d then the R mins m
// (nb * R * 16 + b * R * h + 2i and + 2R + 2i, h = 4 or 8 record bytes per row), then
// Q5_1's R words (+ 4R + 4i).
// Q4_K (repack_k.cpp): the 128 qs bytes of a super-block as Q4_0's (chunk j = bytes
// 32j .. 32j + 31, low nibbles sub-block 2j, high 2j + 1), pieces as above; after the
// quants of all nb super-blocks, one scale record per super-block b, 20 * R bytes at
// nb * R * 128 + b * R * 20: d [R], dmin [R] (fp16), then the eight 6-bit sub-block
// scales [8][R] and mins [8][R] as bytes (row i of sub-block s at s * R + i): a group
// is nb * R * 148 bytes, 4 per row and super-block more than the file's 144.
// Q5_K: Q4_K's record; the codes are the block's qh (32 bytes) then qs (128) as one run of
// pieces (qh pieces 0..7, then qs as Q4_K's): nb * R * 180 bytes.
// Q6_K: the 192 bytes ql (128) then qh (64) of a super-block as one qs, pieces as
// above; records of 18 * R bytes at nb * R * 192 + b * R * 18: d [R] (fp16), then the
// sixteen s8 sub-block scales [16][R]: nb * R * 210 bytes, the file's size.
// Q2_K: the 64 qs bytes of a super-block as pieces (byte j of half h, j < 32, holds
// weights 128h + 32k + j at bits 2k, 2k + 1, so piece p at shift 2k holds 4 consecutive
// weights of sub-block 8(p/8) + 2k + (p%8)/4: four pieces make one sub-block of 16);
// records of 20 * R bytes at nb * R * 64 + b * R * 20: d [R], dmin [R] (fp16), then
// the sixteen scale bytes [16][R] as the file has them (scale low nibble, min high):
// nb * R * 84 bytes, the file's size.
// Q3_K: the codes are the block's hmask (32 bytes: bit k of byte j is weight 32k + j's
// high bit) then qs (64, as Q2_K's) as one run of pieces (hmask pieces 0..7, qs pieces
// 8..23: qs piece p's high bits are bit 4(p/8) + k of hmask piece p%8 at shift 2k);
// records of 18 * R bytes at nb * R * 96 + b * R * 18: d [R] (fp16), then the sixteen
// signed sub-block scales sc - 32 [16][R] as s8 (the file's 12-byte 6-bit encoding
// unpacked): nb * R * 114 bytes, 4 per row and super-block more than the file's 110.
// IQ4_XS: the 128 qs bytes as Q6_K's (sub-block s = bytes 16s .. 16s + 15: byte j's low
// nibble weight 32s + j, its high one 32s + 16 + j; so sub-block s is pieces 4s .. 4s + 3
// with G = 4), records of 10 * R bytes at nb * R * 128 + b * R * 10: d [R] (fp16), then
// the eight signed sub-block scales ls - 32 (-32 .. 31) as s8 [8][R]: nb * R * 138
// bytes, 2 per row and super-block more than the file's 136.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace ember {

struct Packing {
  uint8_t rows = 0;     // R rows interleaved; 0: plain (rows as in the file)
  uint8_t group = 0;    // G bytes of a row per piece (4: one s32 lane's VPDPBUSD / SDOT)
  bool biased = false;  // Q8_0 codes stored + 128
  bool plain() const { return rows == 0; }
  friend bool operator==(const Packing&, const Packing&) = default;
};

// Whether `type` has a packed layout and a matrix of rows x cols can take `p`:
// rows a multiple of p.rows, whole blocks, G dividing the block's qs bytes.
bool can_pack(DType type, Packing p, size_t rows, size_t cols);
// Bytes of one row group (p.rows rows) of `cols` columns.
size_t packed_group_bytes(DType type, Packing p, size_t cols);
// Bytes of a whole packed matrix (rows a multiple of p.rows; plain: rows * row_bytes).
size_t packed_bytes(DType type, Packing p, size_t rows, size_t cols);
// A short name for logs and benchmarks: "plain", "16x4", "8x4+128", ...
const char* packing_name(Packing p, char* buf, size_t cap);

// rows x cols of `type` from plain rows (src + r * src_stride) to the packed layout at
// dst (packed_bytes(type, p, rows, cols) bytes). Requires can_pack. Any alignment.
void pack_rows(DType type, Packing p, const uint8_t* src, size_t src_stride, size_t rows, size_t cols,
               uint8_t* dst);
// The inverse: packed -> plain rows (dst + r * dst_stride); bit for bit the original.
void unpack_rows(DType type, Packing p, const uint8_t* src, size_t rows, size_t cols, uint8_t* dst,
                 size_t dst_stride);
// Block b of row r of a packed matrix, as a plain block (type_size bytes) at out.
void packed_block(DType type, Packing p, const uint8_t* packed, size_t cols, size_t r, size_t b, uint8_t* out);

}  // namespace ember
