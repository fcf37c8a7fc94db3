// Private to kernels/arm/: the SMMLA GEMM (prefill on i8mm cores) of Q4_K, Q5_K and Q6_K
// weights packed as on dotprod cores, Packing{4, 4} (qmatmul_packed_k_neon.h, whose GEMV and
// 1-token tile it keeps), included by qmatmul_i8mm.cpp after that file.
//
// SMMLA multiplies a 2 x 8 int8 tile (2 weight rows' 8 codes) by an 8 x 2 one (2 tokens'
// 8 codes) into 2 x 2 s32 lanes (row 2h, token a), (2h, b), (2h + 1, a), (2h + 1, b): 32
// multiply-adds per instruction where SDOT does 16. The Packing{4, 4} registers hold 4
// rows x 4 codes; one ZIP1 / ZIP2 of 32-bit lanes of two neighbours (codes 8j .. 8j + 3
// and 8j + 4 .. 8j + 7) gives rows 0, 1 and rows 2, 3 with 8 codes each, SMMLA's A
// operands. The ZIPs are made once per sub-block and row group for the tile's 8 tokens,
// so the layout (and with it the GEMV, the tests' packings and the repacked bytes) stays
// the dotprod table's.
//
// Per super-block, row group and token pair (activations Q8_K, their codes interleaved
// per pair once per tile and slab of super-blocks, as Q4_0's prep_pairs):
//   sub-block s: 4 SMMLAs per row pair into a fresh chain (|.| <= 32 * 31 * 127), then
//   isum += part * (sc_2h, sc_2h, sc_2h+1, sc_2h+1) (MLA; the rows' scales ZIPped to the
//   lanes' rows); after the 8 sub-blocks, UZP1 / UZP2 of the two row pairs' sums give
//   each token's 4 row lanes, and the rest is the SDOT tile's: the mins against the
//   token's bsums and kernels.h's two float steps (PackedK::steps). The integer sums are
//   exact in any order, so every output is the reference's bit for bit.
// llvm-mca (bench/mca_packed_k.sh), cycles per super-block x row x token of the 8-token
// tile on Neoverse N2: Q4_K 11.3, Q5_K 13.5, against the SDOT tile's 14.6 and 18.1 and
// llama.cpp b10256's SMMLA 8x8 GEMMs' 15.9 and 22.0 (bench/mca_llamacpp_k.sh). Per
// super-block and row group: 256 SMMLA, 64 MLA, 64 ops of codes, 64 ZIP; the tile is
// bound by N2's two vector pipes.
// Q6_K (mmla_slab_q6_k): sub-blocks of 16, so 2 SMMLAs per chain and twice the chains and
// MLAs; the codes signed (q - 32), no bsums. llvm-mca N2 12.9 (V2 6.3) against the SDOT
// tile's 20.6 (9.6) and llama.cpp's 23.3; bound by M0 (the chains' DUPs) and both V pipes.
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/arm/qmatmul_packed_k_neon.h"
#include "kernels/arm/qmatmul_packed_neon.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"

namespace ember::kernels {
namespace {

#if defined(__ARM_FEATURE_MATMUL_INT8)
// One token pair's codes of one super-block as SMMLA's B operands: bx[p] holds codes
// 8p .. 8p + 7 of token a, then those of token b (sub-block s: bx[4s .. 4s + 3]).
struct PairCodesK {
  int8x16_t bx[kQKK / 8];
};
constexpr size_t kSlabK = 8;  // super-blocks per prepared slab: 8 x 4 pairs x 512 bytes on the stack

// Super-blocks b0 .. b1 of the tile's P token pairs into buf[b - b0][q], once per tile and
// slab for every row group.
template <int P>
void prep_pairs_k(const PackedActs& X, size_t t0, size_t valid, size_t b0, size_t b1, PairCodesK (*buf)[4]) {
  for (int q = 0; q < P; ++q) {
    const size_t ta = slot_token(t0, valid, 2 * q), tb = slot_token(t0, valid, 2 * q + 1);
    for (size_t b = b0; b < b1; ++b) {
      const size_t at = b * sizeof(BlockQ8_K) + PackedQ4K::kXQs;
      const auto* xa = reinterpret_cast<const int8_t*>(X.q + ta * X.stride + at);
      const auto* xb = reinterpret_cast<const int8_t*>(X.q + tb * X.stride + at);
      PairCodesK& pc = buf[b - b0][q];
      for (size_t i = 0; i < kQKK / 16; ++i) {
        const int8x16_t la = vld1q_s8(xa + 16 * i), lb = vld1q_s8(xb + 16 * i);
        pc.bx[2 * i] = zip64_lo(la, lb);
        pc.bx[2 * i + 1] = zip64_hi(la, lb);
      }
    }
  }
}

// 32-bit interleaves: (a0 b0 a1 b1) and (a2 b2 a3 b3).
[[gnu::always_inline]] inline int8x16_t zip32_lo(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s32(vzip1q_s32(vreinterpretq_s32_s8(a), vreinterpretq_s32_s8(b)));
}
[[gnu::always_inline]] inline int8x16_t zip32_hi(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s32(vzip2q_s32(vreinterpretq_s32_s8(a), vreinterpretq_s32_s8(b)));
}

// Sub-block s of one row group (its 8 code registers c) against P token pairs (pc[q]):
// isum[2q + h] += the pair's 2 x 2 sums of row pair h times its rows' scales sc.
template <int P>
[[gnu::always_inline]] inline void mmla_sub32_scaled(const int8x16_t* c, int32x4_t sc, const PairCodesK* pc, size_t s,
                                                     int32x4_t* isum) {
  int8x16_t a[2][4];  // row pair h, codes 8j .. 8j + 7 of both rows
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    a[0][j] = zip32_lo(c[2 * j], c[2 * j + 1]);
    a[1][j] = zip32_hi(c[2 * j], c[2 * j + 1]);
  }
  const int32x4_t scp[2] = {vzip1q_s32(sc, sc), vzip2q_s32(sc, sc)};  // (s0 s0 s1 s1), (s2 s2 s3 s3)
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
    const int8x16_t* bx = pc[q].bx + 4 * s;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      int32x4_t part = vmmlaq_s32(start_lanes(0), a[h][0], bx[0]);
      part = vmmlaq_s32(part, a[h][1], bx[1]);
      part = vmmlaq_s32(part, a[h][2], bx[2]);
      part = vmmlaq_s32(part, a[h][3], bx[3]);
      isum[2 * q + h] = vmlaq_s32(isum[2 * q + h], part, scp[h]);
    }
  }
}

// Q6_K's sub-block s of 16 weights (its 4 code registers c, signed: q - 32) against P
// token pairs, as mmla_sub32_scaled: 2 SMMLAs per row pair into a fresh chain (|.| <=
// 16 * 32 * 128). Its own function, not mmla_sub32_scaled's chain as a loop: that
// changed Q4_K's code.
template <int P>
[[gnu::always_inline]] inline void mmla_sub16_scaled(const int8x16_t* c, int32x4_t sc, const PairCodesK* pc, size_t s,
                                                     int32x4_t* isum) {
  const int8x16_t a[2][2] = {{zip32_lo(c[0], c[1]), zip32_lo(c[2], c[3])},   // rows 0, 1
                             {zip32_hi(c[0], c[1]), zip32_hi(c[2], c[3])}};  // rows 2, 3
  const int32x4_t scp[2] = {vzip1q_s32(sc, sc), vzip2q_s32(sc, sc)};  // (s0 s0 s1 s1), (s2 s2 s3 s3)
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
    const int8x16_t* bx = pc[q].bx + 2 * s;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const int32x4_t part = vmmlaq_s32(vmmlaq_s32(start_lanes(0), a[h][0], bx[0]), a[h][1], bx[1]);
      isum[2 * q + h] = vmlaq_s32(isum[2 * q + h], part, scp[h]);
    }
  }
}

// One row group (rows r ..) of Q4_K (k5: Q5_K) against the tile's P token pairs over
// super-blocks b0 .. b1 (buf: their prepared codes). The float accumulators carry over
// between slabs in Y (stored and reloaded exactly); the first slab starts them at 0.
template <bool k5, int P>
[[gnu::always_inline]] inline void mmla_slab_q4_k(const uint8_t* group, const PackedActs& X,
                                                  const PairCodesK (*buf)[4], size_t b0, size_t b1, size_t t0,
                                                  size_t valid, float* Y, size_t ldy, size_t r) {
  using Pk = PackedK<k5>;
  const uint8_t* records = group + X.nb * Pk::kGroupQs;
  // The float accumulators stay in memory between super-blocks (read and written once per
  // super-block): in registers they pushed the 2P integer sums onto the stack (spilled and
  // reloaded per sub-block) and cost register copies.
  float32x4_t acc[2 * P];
#pragma GCC unroll 8
  for (int j = 0; j < 2 * P; ++j)
    acc[j] = b0 == 0 ? vdupq_n_f32(0.0f) : vld1q_f32(Y + slot_token(t0, valid, j) * ldy + r);
  asm volatile("" : : "r"(acc) : "memory");
  for (size_t b = b0; b < b1; ++b) {
    const uint8_t *q = group + b * Pk::kGroupQs, *rec = records + b * Pk::kRecord;
    const PairCodesK* pc = buf[b - b0];
    int32x4_t isum[2 * P];  // pair q's row pairs h = 0, 1 at 2q + h
#pragma GCC unroll 8
    for (int j = 0; j < 2 * P; ++j) isum[j] = start_lanes(0);
    auto sub = [&]<bool kHigh>(size_t s) [[gnu::always_inline]] {
      int8x16_t c[8];
      Pk::template codes<kHigh>(q, s, c);
      mmla_sub32_scaled<P>(c, Pk::scales(rec, s), pc, s, isum);  // no barrier (the SDOT tile's
      // "one sub-block at a time") here: with one, gcc kept the 2P sums on the stack
    };
#pragma GCC unroll 4
    for (size_t s = 0; s < 8; s += 2) {
      sub.template operator()<false>(s);
      sub.template operator()<true>(s + 1);
    }
    int16x8_t m[4];
    Pk::mins(rec, m);
    const float32x4_t d = half4(rec), dmin = half4(rec + 8);
#pragma GCC unroll 8
    for (int j = 0; j < 2 * P; ++j) {  // token slot j: rows 0..3 from the pair's two row pairs
      const int32x4_t* pair = isum + 2 * (j / 2);
      const int32x4_t is = j % 2 ? vuzp2q_s32(pair[0], pair[1]) : vuzp1q_s32(pair[0], pair[1]);
      const uint8_t* xb = X.q + slot_token(t0, valid, j) * X.stride + b * sizeof(BlockQ8_K);
      acc[j] = Pk::steps(acc[j], d, dmin, xb, is, Pk::min_sum(m, xb));
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < 2 * P; ++j)
    if (static_cast<size_t>(j) < valid) vst1q_f32(Y + (t0 + j) * ldy + r, acc[j]);
}

// One Q6_K row group against the tile's P token pairs over super-blocks b0 .. b1, as
// mmla_slab_q4_k: sub-block s = 8h + 2kQ + half (16 weights, the pairs' bx[2s], bx[2s + 1])
// from the SDOT tile's codes 0..63 less 32 (SUB), so that isum is kernels.h's
// sum_s sc[s] sum_i (q_i - 32) x_i itself, then per token acc + (d * dx) * float(isum).
// The SDOT tile's -32 via the bsums instead (16 SMLAL per token and super-block, on N2's
// V0 with the MLAs) cost more than the 64 SUBs: llvm-mca N2 17.4 against 12.9.
template <int P>
[[gnu::always_inline]] inline void mmla_slab_q6_k(const uint8_t* group, const PackedActs& X,
                                                  const PairCodesK (*buf)[4], size_t b0, size_t b1, size_t t0,
                                                  size_t valid, float* Y, size_t ldy, size_t r) {
  using Pk = PackedQ6K;
  const uint8_t* records = group + X.nb * Pk::kGroupQs;
  float32x4_t acc[2 * P];
#pragma GCC unroll 8
  for (int j = 0; j < 2 * P; ++j)
    acc[j] = b0 == 0 ? vdupq_n_f32(0.0f) : vld1q_f32(Y + slot_token(t0, valid, j) * ldy + r);
  for (size_t b = b0; b < b1; ++b) {
    const uint8_t *q = group + b * Pk::kGroupQs, *rec = records + b * Pk::kRecord;
    const PairCodesK* pc = buf[b - b0];
    // The float accumulators in memory across the sub-blocks (as mmla_slab_q4_k's, but
    // escaped per super-block: gcc kept them in registers too, and spilled 2 sums).
    asm volatile("" : : "r"(acc) : "memory");
    int32x4_t isum[2 * P];  // pair q's row pairs h = 0, 1 at 2q + h
#pragma GCC unroll 8
    for (int j = 0; j < 2 * P; ++j) isum[j] = start_lanes(0);
    auto sub = [&]<int kQ>(size_t h, size_t half) [[gnu::always_inline]] {
      int8x16_t c[4];
      Pk::codes<kQ>(q, h, half, c);
      for (int j = 0; j < 4; ++j) c[j] = vsubq_s8(c[j], vdupq_n_s8(32));
      const size_t s = 8 * h + 2 * kQ + half;
      mmla_sub16_scaled<P>(c, Pk::scales(rec, s), pc, s, isum);
    };
#pragma GCC unroll 2
    for (size_t h = 0; h < 2; ++h)
#pragma GCC unroll 2
      for (size_t half = 0; half < 2; ++half) {  // kQ = 0's SLI overwrites the ql pieces kQ = 2
        sub.template operator()<2>(h, half);     // reads too: after it (in order: 31 MOVs, now 18)
        sub.template operator()<3>(h, half);
        sub.template operator()<0>(h, half);
        sub.template operator()<1>(h, half);
      }
    const float32x4_t d = half4(rec);
#pragma GCC unroll 8
    for (int j = 0; j < 2 * P; ++j) {  // token slot j: rows 0..3 from the pair's two row pairs
      const int32x4_t* pair = isum + 2 * (j / 2);
      const int32x4_t is = j % 2 ? vuzp2q_s32(pair[0], pair[1]) : vuzp1q_s32(pair[0], pair[1]);
      const uint8_t* xb = X.q + slot_token(t0, valid, j) * X.stride + b * sizeof(BlockQ8_K);
      float dx;
      std::memcpy(&dx, xb, sizeof dx);
      acc[j] = vaddq_f32(acc[j], vmulq_f32(vmulq_n_f32(d, dx), vcvtq_f32_s32(is)));
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < 2 * P; ++j)
    if (static_cast<size_t>(j) < valid) vst1q_f32(Y + (t0 + j) * ldy + r, acc[j]);
}

// ---- drivers --------------------------------------------------------------------------
// A Kern: Sdot, the type's SDOT kernels (packed_super_block_neon.h: its layout's
// constants, decode and a lone last token), and slab<P>, the SMMLA row group of P token
// pairs over one slab (mmla_slab_q4_k's arguments).
template <bool k5>
struct MmlaQ45K {
  using Sdot = SdotQ45K<k5>;
  template <int P>
  [[gnu::always_inline]] static void slab(const uint8_t* group, const PackedActs& X, const PairCodesK (*buf)[4],
                                          size_t b0, size_t b1, size_t t0, size_t valid, float* Y, size_t ldy,
                                          size_t r) {
    mmla_slab_q4_k<k5, P>(group, X, buf, b0, b1, t0, valid, Y, ldy, r);
  }
};
struct MmlaQ6K {
  using Sdot = SdotQ6K;
  template <int P>
  [[gnu::always_inline]] static void slab(const uint8_t* group, const PackedActs& X, const PairCodesK (*buf)[4],
                                          size_t b0, size_t b1, size_t t0, size_t valid, float* Y, size_t ldy,
                                          size_t r) {
    mmla_slab_q6_k<P>(group, X, buf, b0, b1, t0, valid, Y, ldy, r);
  }
};

// Tokens t0 .. t0 + valid (2P - 1 or 2P of them) against row groups r0 .. r1: per slab
// of super-blocks, the pairs prepared once, then every row group.
template <class Kern, int P>
void mmla_tokens_k(const uint8_t* w, size_t group_bytes, const PackedActs& X, size_t t0, size_t valid, float* Y,
                   size_t ldy, size_t r0, size_t r1) {
  PairCodesK buf[kSlabK][4];
  for (size_t b0 = 0; b0 < X.nb; b0 += kSlabK) {
    const size_t b1 = b0 + kSlabK < X.nb ? b0 + kSlabK : X.nb;
    prep_pairs_k<P>(X, t0, valid, b0, b1, buf);
    for (size_t r = r0; r < r1; r += 4)
      Kern::template slab<P>(w + (r / 4) * group_bytes, X, buf, b0, b1, t0, valid, Y, ldy, r);
  }
}

// The i8mm table's PackedQMatmulFn for Q4_K, Q5_K and Q6_K (Kern) on Packing{4, 4}:
// tokens 8 at a time by SMMLA (the last 2..7 likewise, an odd count repeating one token);
// decode (n = 1) and a lone last token by the SDOT kernels of the dotprod table.
template <class Kern>
void qmatmul_packed_mmla_k(const void* W, Packing p, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                           size_t r0, size_t r1) {
  using Sdot = typename Kern::Sdot;
  if (n == 1) return sdot_super_blocks<Sdot>(W, p, X, n, K, Y, ldy, r0, r1);
  const size_t group_bytes = (K / kQKK) * (Sdot::kGroupQs + Sdot::kRecord);
  const auto* w = static_cast<const uint8_t*>(W);
  const auto pairs = [&]<int P>(size_t t, size_t valid) {
    mmla_tokens_k<Kern, P>(w, group_bytes, X, t, valid, Y, ldy, r0, r1);
  };
  const auto lone = [&](size_t t) {
    for (size_t r = r0; r < r1; r += 4) Sdot::template tile<1>(w + (r / 4) * group_bytes, X, t, Y, ldy, r);
  };
  mmla_token_tiles(n, pairs, lone);
}
constexpr PackedQMatmulFn qmatmul_packed_mmla_q4_k = qmatmul_packed_mmla_k<MmlaQ45K<false>>;
constexpr PackedQMatmulFn qmatmul_packed_mmla_q5_k = qmatmul_packed_mmla_k<MmlaQ45K<true>>;
constexpr PackedQMatmulFn qmatmul_packed_mmla_q6_k = qmatmul_packed_mmla_k<MmlaQ6K>;
#endif  // __ARM_FEATURE_MATMUL_INT8

}  // namespace
}  // namespace ember::kernels
