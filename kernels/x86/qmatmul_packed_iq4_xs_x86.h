// Private to kernels/x86/: the tile of T tokens against one row group of row-interleaved
// IQ4_XS weights (quant/repack.h, packing R x 4, R = the vector's s32 lanes), included by
// qmatmul_packed_k_x86.h (whose qmatmul_packed_k drives it and add_packed_x86 registers
// it for each x86 table) after qmatmul_packed_x86.h (VecYmm, Dot, prefetch_share).
//
// Sub-block s of a super-block is code pieces 4s .. 4s + 3; piece 4s + k holds, per row,
// weights 32s + 4k .. + 3 in its low nibbles and 32s + 16 + 4k .. + 3 in its high ones.
// The nibbles are looked up (VPSHUFB) in IQ4_NL's 16 signed levels, and as Q8_0's signed
// codes on AVX2 the level's sign moves onto the activation's 4 broadcast bytes (VPSIGNB)
// against |level| (VPMADDUBSW: pairs of products, |.| <= 2 * 127 * 127 < 2^15, no
// saturation). VPMADDWD against the row's (sc, sc), sc = ls - 32 from the record, then
// gives sc times the sum of the 4 products in each s32 lane, exact. Summed over the 8
// sub-blocks that is the reference's isum (integers, |.| <= 32 * 256 * 127 * 127 < 2^31).
// VNNI: the levels + 128 (unsigned, a second VPSHUFB table) go straight into VPDPBUSD, a
// sub-block's 32 products summed in s32 (|.| <= 32 * 241 * 127: past s16, so the scale
// comes in by VPMULLD, once per sub-block and token, not by VPDPWSSD); the bias's
// 128 * sum_s sc[s] * (bsums[2s] + bsums[2s + 1]) comes off once per super-block, the
// pairs by VPDPWSSD against (sc, sc) as Q6_K's offset (|sum_s sc * isub_s| <= 8 * 32 *
// 32 * 241 * 127 < 2^31). The same integer either way, and each lane then takes
// acc + (d * dx) * float(isum): kernels.h's step, bit for bit.
#pragma once

#include <array>
#include <cstddef>

#include "kernels/x86/packed_super_block_x86.h"

namespace ember::kernels {
namespace {

template <class V>
struct IQ4XSOps;

template <>
struct IQ4XSOps<VecYmm> {
  using I = __m256i;
  // R s8 scales as (sc, sc) s16 pairs, one per s32 lane.
  static I scale_words(const uint8_t* p) {
    const I v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
  }
  static I scale_dwords(const uint8_t* p) {  // R s8 scales as s32 lanes
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I mul(I a, I b) { return _mm256_mullo_epi32(a, b); }
  static I times128(I v) { return _mm256_slli_epi32(v, 7); }
  // acc + sc * (the four products of levels w, a = |w|, with the 4 bytes at x4), per lane.
  static I scaled4(I acc, I a, I w, const uint8_t* x4, I sc) {
    const I p = _mm256_maddubs_epi16(a, _mm256_sign_epi8(_mm256_set1_epi32(load_i32(x4)), w));
    return Dot::wdot(acc, p, sc);
  }
};

// IQ4_NL's levels + 128, as VPDPBUSD's unsigned bytes (VNNI).
constexpr auto kIq4nlBiased = [] {
  std::array<int8_t, 16> t{};
  for (size_t i = 0; i < 16; ++i) t[i] = static_cast<int8_t>(kIq4nlValues[i] ^ 0x80);
  return t;
}();

// Sub-block s of a super-block (codes q, scales [8][R]) for T tokens (Q8_K blocks xb), into
// isum. One code vector at a time serves every token: few live registers.
template <class V, int T>
[[gnu::always_inline]] inline void iq4_xs_sub_block(const uint8_t* q, const uint8_t* scales,
                                                    const uint8_t* const* xb, size_t s, typename V::I* isum) {
  using O = IQ4XSOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  if constexpr (Dot::kVnni) {  // biased levels; isum gets sc * (dot + 128 * bsums)
    I part[T];
    for (int t = 0; t < T; ++t) part[t] = V::zero();
    for (size_t k = 0; k < 4; ++k) {
      const I v = V::load(q + (4 * s + k) * R * 4);
      for (size_t half = 0; half < 2; ++half) {
        const I u = V::lookup16(kIq4nlBiased.data(), half == 0 ? V::low4(v) : V::high4(v));
        for (int t = 0; t < T; ++t) part[t] = V::dot4(part[t], u, xb[t] + kQ8KQs + 32 * s + 16 * half + 4 * k);
      }
    }
    const I sc = O::scale_dwords(scales + s * R);
    for (int t = 0; t < T; ++t) isum[t] = V::add(isum[t], O::mul(part[t], sc));
    return;
  }
  const I sc = O::scale_words(scales + s * R);
  for (size_t k = 0; k < 4; ++k) {
    const I v = V::load(q + (4 * s + k) * R * 4);
    for (size_t half = 0; half < 2; ++half) {
      const I w = V::lookup16(kIq4nlValues, half == 0 ? V::low4(v) : V::high4(v));
      const I a = V::abs8(w);
      for (int t = 0; t < T; ++t)
        isum[t] = O::scaled4(isum[t], a, w, xb[t] + kQ8KQs + 32 * s + 16 * half + 4 * k, sc);
    }
  }
}

// VNNI: the levels' bias, 128 * sum_s sc[s] * (bsums[2s] + bsums[2s + 1]), off isum.
template <class V, int T>
[[gnu::always_inline]] inline void iq4_xs_unbias(const uint8_t* scales, const uint8_t* const* xb,
                                                 typename V::I* isum) {
  typename V::I osum[T];
  for (int t = 0; t < T; ++t) osum[t] = V::zero();
  bsum_pairs<V, T>(xb, osum, [&](size_t s) __attribute__((always_inline)) {
    return IQ4XSOps<V>::scale_words(scales + s * V::kLanes);
  });
  for (int t = 0; t < T; ++t) isum[t] = V::sub(isum[t], IQ4XSOps<V>::times128(osum[t]));
}

// T tokens (t0 ..) against one IQ4_XS row group (rows r ..): kLanes x T outputs; `next`:
// the GEMV's prefetch of the next group (qmatmul_packed_x86.h).
template <class V, int T>
[[gnu::always_inline]] inline void packed_tile_iq4_xs(const uint8_t* group, const PackedActs& X, size_t t0,
                                                      float* Y, size_t ldy, size_t r,
                                                      const uint8_t* next = nullptr) {
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  const auto block = [](const uint8_t* q, const uint8_t* rec, const uint8_t* const* xb,
                        typename V::F* acc) __attribute__((always_inline)) {
    I isum[T];
    for (int t = 0; t < T; ++t) isum[t] = V::zero();
    for (size_t s = 0; s < 8; ++s) iq4_xs_sub_block<V, T>(q, rec + 2 * R, xb, s, isum);
    if constexpr (Dot::kVnni) iq4_xs_unbias<V, T>(rec + 2 * R, xb, isum);
    scale_steps<V, T>(acc, xb, V::half_scales(rec), isum);
  };
  super_block_tile<V, T, kQKK / 2, 10>(group, X, t0, Y, ldy, r, next, block);
}

}  // namespace
}  // namespace ember::kernels
