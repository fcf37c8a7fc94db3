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
// gives sc times the sum of the 4 products in each s32 lane, exact; VNNI: one VPDPWSSD
// for VPMADDWD + VPADDD (Dot::wdot), the same sums. Summed over the 8 sub-blocks that is
// the reference's isum (integers, |.| <= 32 * 256 * 127 * 127 < 2^31), and each lane takes
// acc + (d * dx) * float(isum): kernels.h's step, bit for bit.
// (A VNNI form with the levels + 128 in VPDPBUSD would need a 32-bit multiply by the scale
// per sub-block: a sub-block's sum passes s16. Not done; the form above serves every table.)
#pragma once

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
  // acc + sc * (the four products of levels w, a = |w|, with the 4 bytes at x4), per lane.
  static I scaled4(I acc, I a, I w, const uint8_t* x4, I sc) {
    const I p = _mm256_maddubs_epi16(a, _mm256_sign_epi8(_mm256_set1_epi32(load_i32(x4)), w));
    return Dot::wdot(acc, p, sc);
  }
};

// Sub-block s of a super-block (codes q, scales [8][R]) for T tokens (Q8_K blocks xb), into
// isum. One code vector at a time serves every token: few live registers.
template <class V, int T>
[[gnu::always_inline]] inline void iq4_xs_sub_block(const uint8_t* q, const uint8_t* scales,
                                                    const uint8_t* const* xb, size_t s, typename V::I* isum) {
  using O = IQ4XSOps<V>;
  using I = typename V::I;
  constexpr size_t R = V::kLanes;
  constexpr size_t kQs = offsetof(BlockQ8_K, qs);
  const I sc = O::scale_words(scales + s * R);
  for (size_t k = 0; k < 4; ++k) {
    const I v = V::load(q + (4 * s + k) * R * 4);
    for (size_t half = 0; half < 2; ++half) {
      const I w = V::lookup16(kIq4nlValues, half == 0 ? V::low4(v) : V::high4(v));
      const I a = V::abs8(w);
      for (int t = 0; t < T; ++t) isum[t] = O::scaled4(isum[t], a, w, xb[t] + kQs + 32 * s + 16 * half + 4 * k, sc);
    }
  }
}

// T tokens (t0 ..) against one IQ4_XS row group (rows r ..): kLanes x T outputs; `next`:
// the GEMV's prefetch of the next group (qmatmul_packed_x86.h).
template <class V, int T>
[[gnu::always_inline]] inline void packed_tile_iq4_xs(const uint8_t* group, const PackedActs& X, size_t t0,
                                                      float* Y, size_t ldy, size_t r,
                                                      const uint8_t* next = nullptr) {
  using I = typename V::I;
  constexpr size_t R = V::kLanes, kCodes = kQKK / 2, kRecord = 10 * R;
  const size_t nb = X.nb;
  const uint8_t* records = group + nb * R * kCodes;
  typename V::F acc[T];
  for (int t = 0; t < T; ++t) acc[t] = V::fzero();
  for (size_t b = 0; b < nb; ++b) {
    prefetch_share(next, b, R * kCodes + kRecord);
    const uint8_t* q = group + b * R * kCodes;
    const uint8_t* rec = records + b * kRecord;
    const uint8_t* xb[T];
    I isum[T];
    for (int t = 0; t < T; ++t) {
      xb[t] = X.q + (t0 + t) * X.stride + b * sizeof(BlockQ8_K);
      isum[t] = V::zero();
    }
    for (size_t s = 0; s < 8; ++s) iq4_xs_sub_block<V, T>(q, rec + 2 * R, xb, s, isum);
    const typename V::F d = V::half_scales(rec);
    for (int t = 0; t < T; ++t) {
      float dx;
      std::memcpy(&dx, xb[t] + offsetof(BlockQ8_K, d), sizeof dx);
      acc[t] = V::step(acc[t], d, dx, isum[t]);
    }
  }
  for (int t = 0; t < T; ++t) V::store(Y + (t0 + t) * ldy + r, acc[t]);
}

}  // namespace
}  // namespace ember::kernels
