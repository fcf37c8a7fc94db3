// Private to kernels/x86/: GEMM and GEMV on row-interleaved Q4_K, Q5_K, Q6_K, Q2_K, Q3_K
// and IQ4_XS weights (IQ4_XS's tile: qmatmul_packed_iq4_xs_x86.h; the super-block loop,
// bsum sums and float steps all tiles share: packed_super_block_x86.h)
// (quant/repack.h, packing R x 4, R = the vector's s32 lanes), after qmatmul_packed_x86.h,
// with its vector traits V (VecYmm: 8 rows, every x86 table, each with its own Dot) and
// the operations of KOps<V>:
//
//   KOps<V>::byte_pair(p), pick<..>  16 record bytes ([2][R]: two sub-blocks' rows) and
//                                    lane i's 4 bytes picked from bytes b + i (VPSHUFB)
//   KOps<V>::uscale<e>, sscale<e>    row e of a pair (unsigned / s8 bytes) as flush's operand
//   KOps<V>::swords<e>               row e of a pair (s8 bytes) as lanes (sc, sc) of two s16
//   KOps<V>::sub_scales(p)           R sub-block scales (bytes) as flush's operand
//   KOps<V>::part2(part, c, x)       part + the products of pieces c[0], c[1] (R rows'
//                                    codes) with x[0 .. 8), lane-wise
//   KOps<V>::flush(isum, part, sc)   isum + sc * part, every kFlush pieces
//   KOps<V>::min_words(mins, s)      sub-block s's R mins (bytes) as lanes (m, m) of two s16
//   KOps<V>::wdot(acc, a, b)         acc + lane-wise sum of the two s16 products
//   KOps<V>::sword_pair(p)           two rows of R s8 scales (p, p + R) as lanes (lo, hi)
//                                    of two s16: a pair of sub-blocks' weights for bsum_pairs
//   KOps<V>::two_bits<k>(v)          bits k, k + 1 of every byte as codes 0..3 (Q2_K, Q3_K)
//
// Q4_K, per super-block and token: a sub-block's 32 products per row are 8 lane-wise dot4
// steps (codes 0..15 against the activation's 4 bytes broadcast). AVX2: the 8
// VPMADDUBSW results add up in s16 (8 * 2 * 15 * 128 < 2^15) and VPMADDWD multiplies
// them by (sc, sc). VNNI: VPDPBUSD sums two halves of 16 products in s32 (|.| <= 16 * 15
// * 128 < 2^15: a whole sub-block, up to 60960, would not fit the s16 that VPDPWSSD
// reads), each multiplied by the row's scale with VPDPWSSD against (sc, 0). The mins:
// VPMADDWD (VNNI: VPDPWSSD) of (m, m) against the activation's adjacent bsums (2s,
// 2s + 1). Both integer sums are exact, so each lane then takes kernels.h's two float
// steps in its order: bit for bit the reference. Q6_K: see its section below. Both read
// the Q8_K activations' d, qs and bsums in place (PackedActs: q, stride, nb). The VNNI
// forms are tested through the exact AVX2 emulation of the instructions (test_kernels'
// "avxvnni-emulated" table, qmatmul_packed_x86.h); the real instructions have not run here.
#pragma once

#include "kernels/x86/packed_super_block_x86.h"
#include "kernels/x86/qmatmul_packed_iq4_xs_x86.h"

namespace ember::kernels {
namespace {

template <class V>
struct KOps;

template <>
struct KOps<VecYmm> : RecordBytes {
  using I = __m256i;
  // Sub-block s's R scale bytes (Q4_K's record, rec + (4 + s) * R) as flush's operand,
  // AVX2 (sc, sc) per s32 lane, VNNI (sc, 0); the 16 bytes read end inside the record.
  static I sub_scales(const uint8_t* p) { return uscale<0>(byte_pair(p)); }
  // Sub-block s's mins (row s of the [8][R] bytes at `mins`) as lanes (m, m).
  static I min_words(const uint8_t* mins, size_t s) {
    const I pair = byte_pair(mins + (s & ~size_t{1}) * 8);
    return s % 2 ? pick<8, -1, 8, -1>(pair) : pick<0, -1, 0, -1>(pair);
  }
  // VPDPWSSD with VNNI, VPMADDWD + VPADDD without: the same sums (exact here).
  static I wdot(I acc, I a, I b) { return Dot::wdot(acc, a, b); }
  // A sub-block's partial sum, flushed into isum times the scale every kFlush pieces.
  // AVX2: VPMADDUBSW pair sums of two pieces added in s16 lanes, kFlush = 8 (a whole
  // sub-block: each s16 lane sums 8 pair sums, |.| <= 8 * 2 * 15 * 128 < 2^15), times
  // (sc, sc) by VPMADDWD. VNNI: VPDPBUSD sums in s32 lanes, kFlush = 4 (16 products,
  // |.| <= 16 * 15 * 128 < 2^15, so the high s16 half is the low one's sign), times
  // (sc, 0) by VPDPWSSD.
  static constexpr int kFlush = Dot::kVnni ? 4 : 8;
  // Q5_K's codes (0..31) fill s16 twice as fast: AVX2 4 pieces (4 * 2 * 31 * 128 < 2^15),
  // VNNI 2 (8 * 31 * 128 < 2^15).
  static constexpr int kFlush5 = Dot::kVnni ? 2 : 4;
  static I part2(I part, const I* c, const uint8_t* x) {
    if constexpr (Dot::kVnni) return VecYmm::dot4(VecYmm::dot4(part, c[0], x), c[1], x + 4);
    return _mm256_add_epi16(part, _mm256_add_epi16(_mm256_maddubs_epi16(c[0], _mm256_set1_epi32(load_i32(x))),
                                                   _mm256_maddubs_epi16(c[1], _mm256_set1_epi32(load_i32(x + 4)))));
  }
  static I flush(I isum, I part, I sc) { return wdot(isum, part, sc); }
  // Q6_K's operations.
  static I pair16(const I* c, const uint8_t* x) {
    return _mm256_add_epi16(_mm256_maddubs_epi16(c[0], _mm256_set1_epi32(load_i32(x))),
                            _mm256_maddubs_epi16(c[1], _mm256_set1_epi32(load_i32(x + 4))));
  }
  static I six_bits(I low4, I high_pair) {
    return _mm256_or_si256(low4, _mm256_and_si256(high_pair, _mm256_set1_epi8(0x30)));
  }
  template <int kBits>
  static I shift32(I v) { return _mm256_slli_epi32(v, kBits); }
  // Q2_K's and Q3_K's operations.
  // Bits kShift, kShift + 1 of every byte as a code 0..3.
  template <int kShift>
  static I two_bits(I v) { return _mm256_and_si256(shift16<-kShift>(v), _mm256_set1_epi8(3)); }
  template <int kShift>  // > 0: left, < 0: right, by |kShift| within 16-bit lanes
  static I shift16(I v) {
    if constexpr (kShift > 0) return _mm256_slli_epi16(v, kShift);
    else if constexpr (kShift < 0) return _mm256_srli_epi16(v, -kShift);
    else return v;
  }
};

// Sub-block s of a Q4_K or Q5_K super-block (codes q, record rec) for T tokens, into
// isum: two code pieces at a time into all T tokens' partial sums (few live registers:
// AVX2 has 16). Q5_K: the pieces start with the block's qh (repack.h); sub-block s's
// fifth bits are bit s of each qh byte, so piece k's come from qh piece k by one shift
// and one AND, as Q5_0's (qmatmul_packed_x86.h): an immediate shift when s is a constant
// (the GEMV unrolls the sub-blocks), else two shifts by a count in a register.
template <class V, int T, bool k5>
[[gnu::always_inline]] inline void q4_k_sub_block(const uint8_t* q, const uint8_t* rec, const uint8_t* const* xb,
                                                  size_t s, typename V::I* isum) {
  using K = KOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes, kHigh = k5 ? 8 : 0;
  constexpr int kFlush = k5 ? K::kFlush5 : K::kFlush;
  const I sc = K::sub_scales(rec + (4 + s) * R);
  I part[T];
  for (int t = 0; t < T; ++t) part[t] = V::zero();
  for (size_t k = 0; k < 8; k += 2) {
    I c[2];
    for (size_t i = 0; i < 2; ++i) {
      const I v = V::load(q + (kHigh + 8 * (s / 2) + k + i) * R * 4);
      c[i] = s % 2 == 0 ? V::low4(v) : V::high4(v);
      if constexpr (k5) {
        const I h = V::load(q + (k + i) * R * 4);
        c[i] = V::or_(c[i], T == 1 ? V::fifth_bits(h, static_cast<int>(s)) : V::fifth_bits_var(h, static_cast<int>(s)));
      }
    }
    for (int t = 0; t < T; ++t) part[t] = K::part2(part[t], c, xb[t] + kQ8KQs + 32 * s + 4 * k);
    if ((k + 2) % kFlush == 0)
      for (int t = 0; t < T; ++t) {
        isum[t] = K::flush(isum[t], part[t], sc);
        part[t] = V::zero();
      }
  }
}

// T tokens (t0 ..) against one Q4_K or Q5_K row group (rows r ..): kLanes x T outputs.
// The GEMV (T = 1) unrolls the 8 sub-blocks (Q4_K 2048x2048 n:1 97 -> 80 us, Q5_K 189 ->
// 126); the GEMM does not (Q4_K n:32 1.5 -> 2.4 ms unrolled: spills).
template <class V, int T, DType kType = DType::Q4_K>
[[gnu::always_inline]] inline void packed_tile_q4_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                    size_t ldy, size_t r, const uint8_t* next = nullptr) {
  using K = KOps<V>;
  using I = typename V::I;
  constexpr bool k5 = kType == DType::Q5_K;
  constexpr size_t R = V::kLanes, kQs = (k5 ? 32 : 0) + kQKK / 2;
  const auto block = [](const uint8_t* q, const uint8_t* rec, const uint8_t* const* xb,
                        typename V::F* acc) __attribute__((always_inline)) {
    I isum[T], msum[T];
    for (int t = 0; t < T; ++t) isum[t] = msum[t] = V::zero();
    if constexpr (T == 1) {
#pragma GCC unroll 8
      for (size_t s = 0; s < 8; ++s) q4_k_sub_block<V, T, k5>(q, rec, xb, s, isum);
    } else {
      for (size_t s = 0; s < 8; ++s) q4_k_sub_block<V, T, k5>(q, rec, xb, s, isum);
    }
    bsum_pairs<V, T>(xb, msum, [&](size_t s) __attribute__((always_inline)) {
      return K::min_words(rec + 12 * R, s);
    });
    scale_min_steps<V, T>(acc, xb, V::half_scales(rec), V::half_scales(rec + 2 * R), isum, msum);
  };
  super_block_tile<V, T, kQs, 20>(group, X, t0, Y, ldy, r, next, block);
}

// isum - 2^kShift * sum_s sc[s] * bsums[s] over 16 sub-blocks of 16 with s8 scales
// [16][R] at `scales`: the offset of codes stored unsigned (Q6_K's -32, Q3_K's -4).
// |sum_s sc[s] * bsums[s]| <= 16 * 128 * 16 * 128 < 2^23, exact after the shift too.
template <class V, int T, int kShift>
[[gnu::always_inline]] inline void minus_code_offset(const uint8_t* scales, const uint8_t* const* xb,
                                                     typename V::I* isum) {
  using K = KOps<V>;
  typename V::I osum[T];
  for (int t = 0; t < T; ++t) osum[t] = V::zero();
  bsum_pairs<V, T>(xb, osum, [&](size_t u) __attribute__((always_inline)) {
    return K::sword_pair(scales + 2 * u * V::kLanes);
  });
  for (int t = 0; t < T; ++t) isum[t] = V::sub(isum[t], K::template shift32<kShift>(osum[t]));
}

// ---- Q6_K ---------------------------------------------------------------------------
// Codes: ql (pieces 0..31) and qh (pieces 32..47) as in the block, so a lane's 4 bytes
// at piece k of each give 4 whole codes: quarter qq (0..3) of half h holds weights
// 128h + 32qq + l (l < 32, sub-blocks 8h + 2qq and + 1), low 4 bits from ql bytes
// 64h + 32(qq & 1) + l (low nibble for qq < 2, high otherwise), high 2 bits from qh
// bytes 32h + l, bits 2qq. Codes 0..63 against |x| <= 128: two VPMADDUBSW pair sums
// add up to at most 4 * 63 * 128 < 2^15, and VPMADDWD + VPADDD (VNNI: one VPDPWSSD)
// against (sc, sc) multiplies them by the row's signed scale, exact in s32. (A VPDPBUSD
// form would take as many instructions: its s32 sums of 8 products, up to 64512, pass
// s16 before the scale, so it would go one piece at a time.) The -32 offset is
// sum_s sc[s] * bsums[s], (sc[2u], sc[2u + 1]) against the adjacent bsums, taken
// 32 times off the sum once per super-block: the reference's integer, exactly.

// Code vectors k0, k0 + 1 of quarter kQ of half h of a super-block's codes q.
template <class V, int kQ>
[[gnu::always_inline]] inline void q6_k_codes2(const uint8_t* q, size_t h, size_t k0, typename V::I* c) {
  using K = KOps<V>;
  constexpr size_t R = V::kLanes;
  constexpr int kShift = kQ == 0 ? 4 : kQ == 1 ? 2 : kQ == 2 ? 0 : -2;  // bits 2kQ to bits 4..5
  for (size_t k = k0; k < k0 + 2; ++k) {
    const typename V::I l = V::load(q + (16 * h + 8 * (kQ & 1) + k) * R * 4);
    const typename V::I hb = V::load(q + (32 + 8 * h + k) * R * 4);
    c[k - k0] = K::six_bits(kQ < 2 ? V::low4(l) : V::high4(l), K::template shift16<kShift>(hb));
  }
}

// Quarter kQ of half h for T tokens: sub-blocks 8h + 2kQ (pieces 0..3) and + 1 (4..7).
// Each pair of pieces goes into the sums as soon as it is made: few live registers.
template <class V, int T, int kQ>
[[gnu::always_inline]] inline void q6_k_quarter(const uint8_t* q, const uint8_t* scales, size_t h,
                                                const uint8_t* const* xb, typename V::I* isum) {
  using K = KOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  const size_t s = 8 * h + 2 * kQ;
  const I pair = K::byte_pair(scales + s * R);
  const auto half_sub = [&](size_t half, I sc) __attribute__((always_inline)) {
    for (size_t k0 = 4 * half; k0 < 4 * half + 4; k0 += 2) {
      I c[2];
      q6_k_codes2<V, kQ>(q, h, k0, c);
      for (int t = 0; t < T; ++t) {
        isum[t] = K::wdot(isum[t], K::pair16(c, xb[t] + kQ8KQs + 128 * h + 32 * kQ + 4 * k0), sc);
        if constexpr (T == 1) V::pin(isum[t]);  // the GEMV summed as written (a tree of products spills)
      }
    }
  };
  if constexpr (T == 1) {  // straight code; the GEMM's tile keeps its loop (unrolled, it spills)
    half_sub(0, K::template swords<0>(pair));
    half_sub(1, K::template swords<1>(pair));
  } else {
    for (size_t half = 0; half < 2; ++half)
      half_sub(half, half ? K::template swords<1>(pair) : K::template swords<0>(pair));
  }
}

template <class V, int T>
[[gnu::always_inline]] inline void packed_tile_q6_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                    size_t ldy, size_t r, const uint8_t* next = nullptr) {
  using I = typename V::I;
  constexpr size_t R = V::kLanes, kCodes = kQKK / 2 + kQKK / 4;
  const auto block = [](const uint8_t* q, const uint8_t* rec, const uint8_t* const* xb,
                        typename V::F* acc) __attribute__((always_inline)) {
    const uint8_t* scales = rec + 2 * R;
    I isum[T];
    for (int t = 0; t < T; ++t) isum[t] = V::zero();
    // Unrolled: 163 -> 149 us for the 2048x2048 GEMV (n:32 unchanged).
#pragma GCC unroll 2
    for (size_t h = 0; h < 2; ++h) {
      q6_k_quarter<V, T, 0>(q, scales, h, xb, isum);
      q6_k_quarter<V, T, 1>(q, scales, h, xb, isum);
      q6_k_quarter<V, T, 2>(q, scales, h, xb, isum);
      q6_k_quarter<V, T, 3>(q, scales, h, xb, isum);
    }
    minus_code_offset<V, T, 5>(scales, xb, isum);  // the codes' -32
    scale_steps<V, T>(acc, xb, V::half_scales(rec), isum);
  };
  super_block_tile<V, T, kCodes, 18>(group, X, t0, Y, ldy, r, next, block);
}

// ---- Q2_K ---------------------------------------------------------------------------
// Codes: the 64 qs bytes as 16 pieces; sub-block s = 8h + 2k + e is pieces 8h + 4e ..
// 8h + 4e + 3 at bits 2k, 2k + 1 (repack.h), against the activation's bytes 128h + 32k +
// 16e + 4i of piece i. Codes 0..3: AVX2 adds two pieces' VPMADDUBSW pair sums in s16
// (4 products a lane, |.| <= 4 * 3 * 128 < 2^15) and VPMADDWD multiplies them by (sc,
// sc) into isum; VNNI sums the 16 products in s32 with VPDPBUSD (|.| <= 16 * 3 * 128 <
// 2^15, so the high s16 half is the low one's sign) and VPDPWSSD by (sc, 0). The mins as
// Q6_K's offsets: (m[2u], m[2u + 1]) against the adjacent bsums (2u, 2u + 1). Both sums
// exact, then kernels.h's two float steps in order: bit for bit the reference.

// One sub-block of 16 weights (4 pieces, made two at a time by codes(i, c)) times its
// scale sc (scale_pair's), into isum for T tokens whose activation bytes start at x[t] +
// off. AVX2: each pair of pieces' VPMADDUBSW sums (4 products a lane) straight into isum
// by VPMADDWD, as Q6_K's (no partial sums live across the pieces: T = 4 fits 16 ymm;
// 2048x2048 n:32 Q2_K 1.98 -> 1.70 ms, Q3_K 2.28 -> 2.01 against s16 partial sums of the
// 4 pieces flushed once); VNNI: VPDPBUSD partial sums of the 16 products, then one
// VPDPWSSD (fewer instructions: 2.5 a pair of pieces and token against 4).
template <class V, int T, class Codes>
[[gnu::always_inline]] inline void sub_block16(Codes codes, typename V::I sc, const uint8_t* const* x, size_t off,
                                               typename V::I* isum) {
  using K = KOps<V>;
  using I = typename V::I;
  if constexpr (Dot::kVnni) {
    I part[T];
    for (int t = 0; t < T; ++t) part[t] = V::zero();
    for (size_t i = 0; i < 4; i += 2) {
      I c[2];
      codes(i, c);
      for (int t = 0; t < T; ++t) part[t] = K::part2(part[t], c, x[t] + off + 4 * i);
    }
    for (int t = 0; t < T; ++t) isum[t] = K::flush(isum[t], part[t], sc);
  } else {
    for (size_t i = 0; i < 4; i += 2) {
      I c[2];
      codes(i, c);
      for (int t = 0; t < T; ++t) {
        isum[t] = K::wdot(isum[t], K::pair16(c, x[t] + off + 4 * i), sc);
        V::pin(isum[t]);  // summed as written: regrouped into a tree, the products spill
      }
    }
  }
}

// Sub-block 8h + 2kK + e for T tokens, into isum (the record's scale bytes at `scales`,
// from the byte pair of sub-blocks 8h + 2kK and + 1).
template <class V, int T, int kK>
[[gnu::always_inline]] inline void q2_k_sub_block(const uint8_t* q, const uint8_t* scales, size_t h, size_t e,
                                                  const uint8_t* const* xb, typename V::I* isum) {
  using K = KOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  const I low = _mm256_and_si256(K::byte_pair(scales + (8 * h + 2 * kK) * R), _mm256_set1_epi8(0x0F));
  const I sc = e ? K::template uscale<1>(low) : K::template uscale<0>(low);
  const auto codes = [&](size_t i, I* c) __attribute__((always_inline)) {
    for (size_t j = 0; j < 2; ++j) c[j] = K::template two_bits<2 * kK>(V::load(q + (8 * h + 4 * e + i + j) * R * 4));
  };
  sub_block16<V, T>(codes, sc, xb, kQ8KQs + 128 * h + 32 * kK + 16 * e, isum);
}

// The AVX2 GEMV's sub-blocks 8h + 2kK + e, kK = 0..3, into isum[3]: each pair of pieces is
// loaded once and its four shifts go into the sums at once (sub-block by sub-block, gcc
// keeps a piece's four codes live across the sub-blocks and spills them). Codes of kK =
// 1, 2 are masked in place, not shifted down: 4^kK times the code (at most 48, so the
// VPMADDUBSW pair sums of two pieces stay below 2 * 2 * 48 * 128 < 2^15) into isum[kK],
// which the block divides by 4^kK exactly at the end; kK = 0, 3 into isum[0]. One shift
// fewer per piece on the shuffle pipes.
template <class V>
[[gnu::always_inline]] inline void q2_k_gemv_quarter(const uint8_t* q, const uint8_t* scales, size_t h, size_t e,
                                                     const uint8_t* x, typename V::I* isum) {
  using K = KOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  I sc[4];
  for (size_t k = 0; k < 4; ++k) {
    const I low = _mm256_and_si256(K::byte_pair(scales + (8 * h + 2 * k) * R), _mm256_set1_epi8(0x0F));
    sc[k] = e ? K::template uscale<1>(low) : K::template uscale<0>(low);
  }
  const auto shift = [&]<int kK>(const I* v, size_t i) __attribute__((always_inline)) {
    I c[2];
    for (size_t j = 0; j < 2; ++j)
      c[j] = kK == 1 || kK == 2 ? _mm256_and_si256(v[j], _mm256_set1_epi8(static_cast<char>(3 << (2 * kK))))
                                : K::template two_bits<2 * kK>(v[j]);
    isum[kK % 3] = K::wdot(isum[kK % 3], K::pair16(c, x + kQ8KQs + 128 * h + 32 * kK + 16 * e + 4 * i), sc[kK]);
    V::pin(isum[kK % 3]);  // summed as written: regrouped into a tree, the products spill
  };
  for (size_t i = 0; i < 4; i += 2) {
    const I v[2] = {V::load(q + (8 * h + 4 * e + i) * R * 4), V::load(q + (8 * h + 4 * e + i + 1) * R * 4)};
    shift.template operator()<0>(v, i);
    shift.template operator()<1>(v, i);
    shift.template operator()<2>(v, i);
    shift.template operator()<3>(v, i);
  }
}

template <class V, int T>
[[gnu::always_inline]] inline void packed_tile_q2_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                    size_t ldy, size_t r, const uint8_t* next = nullptr) {
  using K = KOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  // The AVX2 GEMV's in-place codes (VNNI sums 16 products: 16 * 48 * 128 >= 2^15).
  constexpr bool kScaled = T == 1 && !Dot::kVnni;
  const auto block = [](const uint8_t* q, const uint8_t* rec, const uint8_t* const* xb,
                        typename V::F* acc) __attribute__((always_inline)) {
    const uint8_t* scales = rec + 4 * R;
    I isum[kScaled ? 3 : T], msum[T];  // kScaled: the sums of codes x 1, x 4, x 16
    for (I& v : isum) v = V::zero();
    for (int t = 0; t < T; ++t) msum[t] = V::zero();
    if constexpr (kScaled) {  // (unrolled: no faster, 2048x2048 n:1 79 / 81 us best)
      for (size_t h = 0; h < 2; ++h)
        for (size_t e = 0; e < 2; ++e) q2_k_gemv_quarter<V>(q, scales, h, e, xb[0], isum);
    } else {
      for (size_t h = 0; h < 2; ++h)
        for (size_t e = 0; e < 2; ++e) {
          q2_k_sub_block<V, T, 0>(q, scales, h, e, xb, isum);
          q2_k_sub_block<V, T, 1>(q, scales, h, e, xb, isum);
          q2_k_sub_block<V, T, 2>(q, scales, h, e, xb, isum);
          q2_k_sub_block<V, T, 3>(q, scales, h, e, xb, isum);
        }
    }
    if constexpr (kScaled)
      isum[0] = V::add(isum[0], V::add(_mm256_srai_epi32(isum[1], 2), _mm256_srai_epi32(isum[2], 4)));
    bsum_pairs<V, T>(xb, msum, [&](size_t u) __attribute__((always_inline)) {
      return _mm256_srli_epi16(K::template pick<0, -1, 8, -1>(K::byte_pair(scales + 2 * u * R)), 4);
    });
    scale_min_steps<V, T>(acc, xb, V::half_scales(rec), V::half_scales(rec + 2 * R), isum, msum);
  };
  super_block_tile<V, T, kQKK / 4, 20>(group, X, t0, Y, ldy, r, next, block);
}

// ---- Q3_K ---------------------------------------------------------------------------
// Codes: hmask (pieces 0..7) then qs (pieces 8..23, as Q2_K's); sub-block s = 8h + 2k +
// e is qs pieces 8h + 4e + i (i < 4) at bits 2k, 2k + 1, their high bits bit 4h + k of
// hmask piece 4e + i (repack.h). u = low two bits | high bit << 2 is in 0..7 and the
// reference's code is u - 4, so isum = sum_s sc[s] * (dot(u, x)_s - 4 * bsums[s]):
// the dots as Q2_K's (AVX2 s16 lanes of 4 products, |.| <= 4 * 7 * 128 < 2^15; VNNI
// s32 sums of 16, |.| <= 16 * 7 * 128 < 2^15) times the row's signed scale, less 4 *
// sum_s sc[s] * bsums[s] (Q6_K's offset term): the reference's integer exactly, then
// its one float step.

// Sub-block 8kH + 2kK + e for T tokens, into isum (the record's s8 scales at `scales`,
// from the byte pair of sub-blocks 8kH + 2kK and + 1).
template <class V, int T, int kH, int kK>
[[gnu::always_inline]] inline void q3_k_sub_block(const uint8_t* q, const uint8_t* scales, size_t e,
                                                  const uint8_t* const* xb, typename V::I* isum) {
  using K = KOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  constexpr int kHigh = 4 * kH + kK;  // the hmask bit of these codes, to bit 2
  const I pair = K::byte_pair(scales + (8 * kH + 2 * kK) * R);
  const I sc = e ? K::template sscale<1>(pair) : K::template sscale<0>(pair);
  const auto codes = [&](size_t i, I* c) __attribute__((always_inline)) {
    for (size_t j = 0; j < 2; ++j) {
      const I low = K::template two_bits<2 * kK>(V::load(q + (8 + 8 * kH + 4 * e + i + j) * R * 4));
      const I hm = K::template shift16<2 - kHigh>(V::load(q + (4 * e + i + j) * R * 4));
      c[j] = V::or_(low, _mm256_and_si256(hm, _mm256_set1_epi8(4)));
    }
  };
  sub_block16<V, T>(codes, sc, xb, kQ8KQs + 128 * kH + 32 * kK + 16 * e, isum);
}

// Sub-blocks 8kH + 2kK + e, kH = 0, 1, kK = 0..3.
template <class V, int T>
[[gnu::always_inline]] inline void q3_k_half(const uint8_t* q, const uint8_t* scales, size_t e,
                                             const uint8_t* const* xb, typename V::I* isum) {
  q3_k_sub_block<V, T, 0, 0>(q, scales, e, xb, isum);
  q3_k_sub_block<V, T, 0, 1>(q, scales, e, xb, isum);
  q3_k_sub_block<V, T, 0, 2>(q, scales, e, xb, isum);
  q3_k_sub_block<V, T, 0, 3>(q, scales, e, xb, isum);
  q3_k_sub_block<V, T, 1, 0>(q, scales, e, xb, isum);
  q3_k_sub_block<V, T, 1, 1>(q, scales, e, xb, isum);
  q3_k_sub_block<V, T, 1, 2>(q, scales, e, xb, isum);
  q3_k_sub_block<V, T, 1, 3>(q, scales, e, xb, isum);
}

template <class V, int T>
[[gnu::always_inline]] inline void packed_tile_q3_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                    size_t ldy, size_t r, const uint8_t* next = nullptr) {
  using I = typename V::I;
  constexpr size_t R = V::kLanes, kCodes = kQKK / 8 + kQKK / 4;
  const auto block = [](const uint8_t* q, const uint8_t* rec, const uint8_t* const* xb,
                        typename V::F* acc) __attribute__((always_inline)) {
    const uint8_t* scales = rec + 2 * R;
    I isum[T];
    for (int t = 0; t < T; ++t) isum[t] = V::zero();
    for (size_t e = 0; e < 2; ++e) q3_k_half<V, T>(q, scales, e, xb, isum);
    minus_code_offset<V, T, 2>(scales, xb, isum);  // the codes' -4
    scale_steps<V, T>(acc, xb, V::half_scales(rec), isum);
  };
  super_block_tile<V, T, kCodes, 18>(group, X, t0, Y, ldy, r, next, block);
}

// One tile of T tokens of a K-quant type against one row group.
template <class V, DType kType, int T>
[[gnu::always_inline]] inline void packed_tile_k(const uint8_t* g, const PackedActs& X, size_t t, float* Y, size_t ldy,
                                                 size_t r, const uint8_t* next = nullptr) {
  if constexpr (kType == DType::Q4_K || kType == DType::Q5_K)
    packed_tile_q4_k<V, T, kType>(g, X, t, Y, ldy, r, next);
  else if constexpr (kType == DType::Q2_K)
    packed_tile_q2_k<V, T>(g, X, t, Y, ldy, r, next);
  else if constexpr (kType == DType::Q3_K)
    packed_tile_q3_k<V, T>(g, X, t, Y, ldy, r, next);
  else if constexpr (kType == DType::IQ4_XS)
    packed_tile_iq4_xs<V, T>(g, X, t, Y, ldy, r, next);
  else
    packed_tile_q6_k<V, T>(g, X, t, Y, ldy, r, next);
}

// The last `left` (< T + 1) tokens as one tile of that many (as packed_tail).
template <class V, DType kType, int T>
[[gnu::always_inline]] inline void packed_tail_k(const uint8_t* g, const PackedActs& X, size_t t, size_t left,
                                                 float* Y, size_t ldy, size_t r) {
  if constexpr (T > 0) {
    if (left == T) return packed_tile_k<V, kType, T>(g, X, t, Y, ldy, r);
    packed_tail_k<V, kType, T - 1>(g, X, t, left, Y, ldy, r);
  }
}

// The PackedQMatmulFn of a K-quant: row groups of kLanes rows, kTokens tokens at a time.
template <class V, DType kType, int kTokens>
void qmatmul_packed_k(const void* W, Packing p, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                      size_t r0, size_t r1) {
  constexpr size_t R = V::kLanes;
  const size_t group_bytes = packed_group_bytes(kType, p, K);
  const auto* w = static_cast<const uint8_t*>(W);
  for (size_t r = r0; r < r1; r += R) {
    const uint8_t* g = w + (r / R) * group_bytes;
    if (n == 1) {  // GEMV: prefetching the next group (qmatmul_packed_x86.h)
      packed_tile_k<V, kType, 1>(g, X, 0, Y, ldy, r, g + group_bytes);
      continue;
    }
    size_t t = 0;
    for (; t + kTokens <= n; t += kTokens) packed_tile_k<V, kType, kTokens>(g, X, t, Y, ldy, r);
    packed_tail_k<V, kType, kTokens - 1>(g, X, t, n - t, Y, ldy, r);
  }
}

// Row-interleaved 8 x 4 layouts, one ymm lane per row (the loader repacks into them; the
// same bytes for every x86 table), with the kernels of this file's Dot: each x86 ISA
// file registers its own instantiations.
void add_packed_x86(Table& t) {
  t.of(DType::Q4_0).packing = Packing{8, 4, false};
  t.of(DType::Q4_0).qmatmul_packed = qmatmul_packed<VecYmm, PackedQ4_0, 4>;
  t.of(DType::Q4_1).packing = Packing{8, 4, false};
  t.of(DType::Q4_1).qmatmul_packed = qmatmul_packed<VecYmm, PackedQ4_1, 4>;
  t.of(DType::Q5_1).packing = Packing{8, 4, false};
  t.of(DType::Q5_1).qmatmul_packed = qmatmul_packed<VecYmm, PackedQ5_1, 4>;
  t.of(DType::IQ4_NL).packing = Packing{8, 4, false};
  t.of(DType::IQ4_NL).qmatmul_packed = qmatmul_packed<VecYmm, PackedIQ4_NL, 4>;
  t.of(DType::Q5_0).packing = Packing{8, 4, false};
  t.of(DType::Q5_0).qmatmul_packed = qmatmul_packed<VecYmm, PackedQ5_0, 4>;
  t.of(DType::Q8_0).packing = Packing{8, 4, false};
  t.of(DType::Q8_0).qmatmul_packed = qmatmul_packed<VecYmm, PackedQ8_0Signed, 4>;
  t.of(DType::Q4_K).packing = Packing{8, 4, false};
  t.of(DType::Q4_K).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::Q4_K, 4>;
  t.of(DType::Q5_K).packing = Packing{8, 4, false};
  t.of(DType::Q5_K).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::Q5_K, 4>;
  t.of(DType::Q6_K).packing = Packing{8, 4, false};
  t.of(DType::Q6_K).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::Q6_K, 4>;
  t.of(DType::Q2_K).packing = Packing{8, 4, false};
  t.of(DType::Q2_K).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::Q2_K, 4>;
  t.of(DType::Q3_K).packing = Packing{8, 4, false};
  t.of(DType::Q3_K).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::Q3_K, 4>;
  t.of(DType::IQ4_XS).packing = Packing{8, 4, false};
  t.of(DType::IQ4_XS).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::IQ4_XS, 4>;
}

}  // namespace
}  // namespace ember::kernels
