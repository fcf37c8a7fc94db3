// Quantized block layouts, bit-compatible with ggml/GGUF. Each block is a plain
// struct; the comment gives bits per weight and the dequantization formula.
// fp16 fields are raw IEEE half bits (see quant/fp16.h).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ember {

constexpr int kQK = 32;    // elements per Q8_0 / Q4_0 block
constexpr int kQKK = 256;  // elements per K-quant super-block

// Q8_0: 32 weights, 8.5 bits/weight.   x[i] = d * qs[i]
struct BlockQ8_0 {
  uint16_t d;       // fp16 scale = max|x| / 127
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

// Q4_0: 32 weights, 4.5 bits/weight.
//   x[j]    = d * ((qs[j] & 0x0F) - 8)     j in [0, 16)
//   x[j+16] = d * ((qs[j] >>   4) - 8)
struct BlockQ4_0 {
  uint16_t d;           // fp16 scale = max/-8 (max: the value of largest magnitude, signed)
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

// Q4_1: 32 weights, 5 bits/weight; codes laid out as Q4_0's.
//   x[j]    = d * (qs[j] & 0x0F) + m     j in [0, 16)
//   x[j+16] = d * (qs[j] >>   4) + m
struct BlockQ4_1 {
  uint16_t d;           // fp16 scale = (max - min) / 15
  uint16_t m;           // fp16 min
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");

// Q5_0: 32 weights, 5.5 bits/weight; low nibbles laid out as Q4_0's, the fifth bit of
// weight j is bit j of qh (a little-endian u32).
//   x[j] = d * (((qs[j % 16] >> (4 * (j / 16))) & 0x0F | ((qh >> j) & 1) << 4) - 16)
struct BlockQ5_0 {
  uint16_t d;           // fp16 scale = max / -16 (max: the value of largest magnitude, signed)
  uint8_t qh[4];        // fifth bits
  uint8_t qs[kQK / 2];  // low nibbles
};
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");

// Q5_1: 32 weights, 6 bits/weight; codes as Q5_0's (fifth bits in qh), plus a min.
//   x[j] = d * code_j + m,  code_j in [0, 31]
struct BlockQ5_1 {
  uint16_t d;           // fp16 scale = (max - min) / 31
  uint16_t m;           // fp16 min
  uint8_t qh[4];        // fifth bits
  uint8_t qs[kQK / 2];  // low nibbles
};
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");

// IQ4_NL: 32 weights, 4.5 bits/weight; nibbles laid out as Q4_0's, each indexing a
// non-uniform grid of 16 int8 levels (kIq4nlValues).
//   x[j] = d * kIq4nlValues[code j]
struct BlockIQ4_NL {
  uint16_t d;           // fp16 scale
  uint8_t qs[kQK / 2];  // codes
};
static_assert(sizeof(BlockIQ4_NL) == 18, "IQ4_NL block is 18 bytes");
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K: 256 weights in 8 sub-blocks of 32, 4.5 bits/weight.
//   x = d * sc[s] * q - dmin * m[s],  q in [0, 15]
// sc[s], m[s] are 6-bit values packed in scales[12]: for s < 4,
// sc = scales[s] & 63, m = scales[s+4] & 63; for s >= 4,
// sc = (scales[s+4] & 0xF) | ((scales[s-4] >> 6) << 4),
// m  = (scales[s+4] >>  4) | ((scales[s]   >> 6) << 4).
// qs: 4 chunks of 64 weights; chunk c holds sub-block 2c in the low nibbles of
// qs[32c .. 32c+31] and sub-block 2c+1 in their high nibbles.
struct BlockQ4_K {
  uint16_t d;     // fp16 super-block scale of the sub-block scales
  uint16_t dmin;  // fp16 super-block scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");

// Q2_K: 256 weights in 16 sub-blocks of 16, 2.625 bits/weight.
//   x = (d * sc[s]) * q - dmin * m[s],  q in [0, 3]; scales[s] = sc (low nibble) | m << 4
// qs: 2 halves of 128 weights; within half h, weight 32*j + l (j in [0, 4), l in [0, 32))
// is bits 2j..2j+1 of qs[32h + l]; sub-block s covers weights 16s .. 16s+15.
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  uint16_t d;     // fp16 scale of the sub-block scales
  uint16_t dmin;  // fp16 scale of the sub-block mins
};
static_assert(sizeof(BlockQ2_K) == 84, "Q2_K block is 84 bytes");

// Q3_K: 256 weights in 16 sub-blocks of 16, 3.4375 bits/weight.
//   x = (d * (sc[s] - 32)) * (q - (hbit ? 0 : 4)),  q in [0, 3] as Q2_K's qs,
// hbit = bit j of hmask[l] for weight 32*j + l of the block (j in [0, 8)).
// sc[s] is 6-bit: low 4 bits from scales[s] (s < 8) or scales[s-8] >> 4 (s >= 8),
// high 2 bits from scales[8 + s%4] >> (2*(s/4)).
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  uint16_t d;  // fp16
};
static_assert(sizeof(BlockQ3_K) == 110, "Q3_K block is 110 bytes");

// Q5_K: Q4_K plus a fifth bit, 5.5 bits/weight.
//   x = d * sc[s] * (q + 16*hbit) - dmin * m[s]; scales, mins and nibbles as Q4_K;
//   hbit of element l of sub-block s = bit s of qh[l].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");

// IQ4_XS: 256 weights in 8 sub-blocks of 32, 4.25 bits/weight; IQ4_NL's grid.
//   x = (d * (ls[s] - 32)) * kIq4nlValues[code]; ls 6-bit: low 4 bits from
//   scales_l[s/2] >> 4*(s%2), high 2 from scales_h >> 2s; codes of sub-block s in
//   qs[16s .. 16s+15] laid out as one IQ4_NL block.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQKK / 64];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136, "IQ4_XS block is 136 bytes");

// Q6_K: 256 weights in 16 sub-blocks of 16, 6.5625 bits/weight.
//   x = d * scales[s] * (q - 32),  q in [0, 63] = 4 low bits from ql | 2 high bits from qh
// Layout per half (128 weights; ql += 64, qh += 32, scales += 8 for the second):
//   for l in [0, 32): q[l]    = (ql[l]    & 0xF) | (((qh[l] >> 0) & 3) << 4)
//                     q[l+32] = (ql[l+32] & 0xF) | (((qh[l] >> 2) & 3) << 4)
//                     q[l+64] = (ql[l]    >>  4) | (((qh[l] >> 4) & 3) << 4)
//                     q[l+96] = (ql[l+32] >>  4) | (((qh[l] >> 6) & 3) << 4)
//   weight i of the half uses scales[i / 16].
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];  // low 4 bits
  uint8_t qh[kQKK / 4];  // high 2 bits
  int8_t scales[kQKK / 16];
  uint16_t d;            // fp16 super-block scale
};
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");

// Q8_K: activations for the K-quant dot products; 256 values, 9.125 bits/value.
//   x[i] = d * qs[i];  bsums[j] = sum of qs[16j .. 16j+15] (for the min terms)
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block is 292 bytes");

}  // namespace ember
