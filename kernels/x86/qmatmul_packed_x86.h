// Private to kernels/x86/: GEMM and GEMV on row-interleaved Q4_0, Q4_1, Q5_0, Q5_1,
// IQ4_NL and Q8_0 weights
// (quant/repack.h, packing 8 x 4: one ymm s32 lane per row; the same bytes for every
// x86 table). Included by each x86 ISA file after qmatmul_x86.h and instantiated with
// its Dot (qmatmul_packed_k_x86.h's add_packed_x86 registers them), with the vector
// traits V (VecYmm below):
//
//   V::I, V::F, V::kLanes            integer / float vector, lanes (rows per group)
//   V::load(p), zero(), set1(int32)  integer loads (any alignment)
//   V::dot4(acc, u, x4)              acc + per s32 lane the sum of four products of u's
//                                    unsigned bytes with the 4 signed bytes at x4 (Dot::dp)
//   V::abs8(w), dot4s(acc, |w|, w, x4) the same with w's bytes signed (AVX2)
//   V::dot4_small, finish_small      the same for unsigned codes below 16, in s16 (AVX2)
//   V::bias8(w)                      w + 128 as unsigned bytes (VNNI)
//   V::half_scales(p), step, store   kLanes fp16 -> float; acc + (dw * dx) * float(isum)
//
// One row group's block holds, per piece of 4 code bytes, lane i = row i's 4 bytes, so
// a block's 32 products per row are 8 lane-wise dot4 steps against the activation's
// bytes 4k .. 4k + 3 broadcast: the row sums come out in lanes, with no horizontal
// reduction. Q4_0's nibbles (0..15) are unsigned; their offset comes off once per block
// and token as 8 * sum(x) (sums precomputed, PackedActs). Q5_0's codes (0..31) are Q4_0's
// nibbles with a fifth bit from the row's transposed word (repack.h: one shift and one
// AND per piece), offset 16 * sum(x). Q4_1 and Q5_1 take the same codes with no offset,
// and each lane a second float step, acc + (m * dx) * float(sum(x)), as the reference
// does. IQ4_NL's nibbles are looked up (VPSHUFB) in its 16 signed levels and go as
// Q8_0's codes. Q8_0's codes are signed:
// AVX2 moves the sign onto x (VPSIGNB) against |w|; VNNI takes w + 128 (VPXOR once per
// piece for all tokens, |sum| <= 32 * 255 * 128) and subtracts 128 * sum(x) per block.
// VNNI: one VPDPBUSD per piece and token (AVX2: VPMADDUBSW and, per block or piece,
// VPMADDWD). Then each lane takes acc + (dw * dx) * float(isum), the reference's steps
// in its order: bit for bit the plain kernels' results. The VNNI forms are tested on
// AVX2 machines through the exact emulation of VPDPBUSD / VPDPWSSD (vnni_emulated_x86.h,
// test_kernels' "avxvnni-emulated" table); the real instructions have not run here.
#pragma once

namespace ember::kernels {
namespace {

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// GEMV streams the matrix from memory: while block b of a row group is read, block b's
// share of the next group (`next`, span = group bytes / blocks) is prefetched, a linear
// sweep one group ahead that keeps the codes and the records of a group in step.
// nullptr (GEMM): none. Past the matrix's end the hint is harmless.
// Into L2 (T1), not L1: a group is 9-48 KiB (Q4_K x 2048 to Q8_0 x 5632), so one group
// in flight beside the one being read overflows a 32 KiB L1 from Q6_K x 2048 (13 KiB) up,
// and the prefetched lines were evicted before their turn. TinyLlama Q4_K_M decode, Zen 4,
// 1 thread: 19.5 -> 32.5 tok/s; Q4_0 and Q8_0 no slower (docs/PERFORMANCE.md, Zen 4).
[[gnu::always_inline]] inline void prefetch_share(const uint8_t* next, size_t b, size_t span) {
  if (!next) return;
  const uintptr_t first = reinterpret_cast<uintptr_t>(next) + b * span;
  for (uintptr_t a = first & ~uintptr_t{63}; a < first + span; a += 64)
    _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T1);
}

// Piece k (0..7) of a block's codes for R rows, lane i = row i: the code bytes of
// weights 4k .. 4k + 3 (q: the block's quants in the group).
// kRecord: bytes per row and block after the quants (fp16 d, Q4_1/Q5_1's fp16 m, the Q5
// types' fifth-bit word); high(rec): what code() needs from the block's record besides
// the quants. kMin: the record's second fp16 field is a min.
// kSmallRun (small codes, AVX2): pieces whose VPMADDUBSW pair sums add up in s16 before
// one VPMADDWD widens them.
struct PackedQ4_0 {
  static constexpr size_t kQs = 16, kBlock = sizeof(BlockQ4_0), kRecord = 2;
  static constexpr int kOffsetShift = 3;  // codes - 8: subtract 8 * sum(x)
  static constexpr bool kSigned = false;
  static constexpr bool kSmallCodes = true;  // 0..15: s16 sums
  static constexpr int kSmallRun = 8;        // 8 * 2 * 15 * 127 < 2^15
  static constexpr bool kMin = false;
  template <class V>
  static typename V::I high(const uint8_t*) { return V::zero(); }
  template <class V>
  static typename V::I code(const uint8_t* q, int k, typename V::I) {  // piece k % 4's low (k < 4) or high nibbles
    const typename V::I v = V::load(q + (k & 3) * V::kLanes * 4);
    return k < 4 ? V::low4(v) : V::high4(v);
  }
};

// Q4_0's nibbles, each with its fifth bit at bit 4 (the word's bit k of every byte).
struct PackedQ5_0 : PackedQ4_0 {
  static constexpr size_t kBlock = sizeof(BlockQ5_0), kRecord = 6;
  static constexpr int kOffsetShift = 4;  // codes - 16
  static constexpr int kSmallRun = 4;     // 4 * 2 * 31 * 127 < 2^15
  template <class V>
  static typename V::I high(const uint8_t* rec) { return V::load(rec + 2 * V::kLanes); }
  template <class V>
  static typename V::I code(const uint8_t* q, int k, typename V::I h) {
    return V::or_(PackedQ4_0::code<V>(q, k, h), V::fifth_bits(h, k));
  }
};

// Q4_1 / Q5_1: the codes of Q4_0 / Q5_0, no offset, d and m per row.
struct PackedQ4_1 : PackedQ4_0 {
  static constexpr size_t kBlock = sizeof(BlockQ4_1), kRecord = 4;
  static constexpr int kOffsetShift = 0;
  static constexpr bool kMin = true;
};

struct PackedQ5_1 : PackedQ5_0 {
  static constexpr size_t kBlock = sizeof(BlockQ5_1), kRecord = 8;
  static constexpr int kOffsetShift = 0;
  static constexpr bool kMin = true;
  template <class V>
  static typename V::I high(const uint8_t* rec) { return V::load(rec + 4 * V::kLanes); }
};

// IQ4_NL: Q4_0's layout; the nibbles index the grid's 16 int8 levels (|level| <= 127, so
// the sign trick's pair sums fit s16 as Q8_0's do), then as Q8_0 below.
struct PackedIQ4_NL : PackedQ4_0 {
  static constexpr size_t kBlock = sizeof(BlockIQ4_NL);
  static constexpr int kOffsetShift = Dot::kVnni ? 7 : 0;
  static constexpr bool kSigned = true;
  static constexpr bool kSmallCodes = false;
  template <class V>
  static typename V::I code(const uint8_t* q, int k, typename V::I h) {
    return V::lookup16(kIq4nlValues, PackedQ4_0::code<V>(q, k, h));
  }
};

// Codes as in the file. AVX2: the sign trick; VNNI: codes + 128 (unsigned), then
// subtract 128 * sum(x).
struct PackedQ8_0Signed {
  static constexpr size_t kQs = 32, kBlock = sizeof(BlockQ8_0);
  static constexpr int kOffsetShift = Dot::kVnni ? 7 : 0;
  static constexpr bool kSigned = true;
  static constexpr bool kSmallCodes = false;
  static constexpr int kSmallRun = 8;
  static constexpr bool kMin = false;
  static constexpr size_t kRecord = 2;
  template <class V>
  static typename V::I high(const uint8_t*) { return V::zero(); }
  template <class V>
  static typename V::I code(const uint8_t* q, int k, typename V::I) { return V::load(q + k * V::kLanes * 4); }
};

// One block's integer sums for T tokens into s (and, for small codes on AVX2, the
// finished s16 runs into run): piece by piece, each piece's codes serving the T tokens.
template <class V, class Ty, int T>
[[gnu::always_inline]] inline void block_sums_by_piece(const uint8_t* q, typename V::I h, const uint8_t* const* xq,
                                                       typename V::I* s, typename V::I* run) {
  for (int k = 0; k < 8; ++k) {
    const typename V::I c = Ty::template code<V>(q, k, h);
    if constexpr (Dot::kVnni) {  // one VPDPBUSD per piece and token, unsigned codes
      const typename V::I u = Ty::kSigned ? V::bias8(c) : c;
      for (int t = 0; t < T; ++t) s[t] = V::dot4(s[t], u, xq[t] + 4 * k);
    } else if constexpr (Ty::kSigned) {
      const typename V::I a = V::abs8(c);
      for (int t = 0; t < T; ++t) {
        s[t] = V::dot4s(s[t], a, c, xq[t] + 4 * k);
        V::pin(s[t]);
      }
    } else if constexpr (Ty::kSmallCodes) {
      for (int t = 0; t < T; ++t) {
        s[t] = V::dot4_small(s[t], c, xq[t] + 4 * k);
        V::pin(s[t]);
      }
      if (k + 1 < 8 && (k + 1) % Ty::kSmallRun == 0)
        for (int t = 0; t < T; ++t) {
          run[t] = V::add(run[t], V::finish_small(s[t]));
          s[t] = V::zero();
        }
    } else {
      for (int t = 0; t < T; ++t) {
        s[t] = V::dot4(s[t], c, xq[t] + 4 * k);
        V::pin(s[t]);
      }
    }
  }
}

// The same for small codes in runs shorter than a block (AVX2 Q5_0 / Q5_1): the block's 8
// code vectors first, then the tokens one after the other (see packed_tile).
template <class V, class Ty, int T>
[[gnu::always_inline]] inline void block_sums_codes_first(const uint8_t* q, typename V::I h,
                                                          const uint8_t* const* xq, typename V::I* s,
                                                          typename V::I* run) {
  typename V::I c[8];
  for (int k = 0; k < 8; ++k) c[k] = Ty::template code<V>(q, k, h);
  for (int t = 0; t < T; ++t)
    for (int k0 = 0; k0 < 8; k0 += Ty::kSmallRun) {
      typename V::I a = V::zero();
      for (int k = k0; k < k0 + Ty::kSmallRun; ++k) a = V::dot4_small(a, c[k], xq[t] + 4 * k);
      if (k0 + Ty::kSmallRun < 8)
        run[t] = V::add(run[t], V::finish_small(a));
      else
        s[t] = a;
    }
}

// T tokens (t0 ..) against one row group (`group`, rows r ..): kLanes x T outputs.
// Pieces outermost within a block: one piece's codes live in a register while the T
// tokens' sums take it (T integer and T float accumulators, no spills on 16 ymm).
// Q5_0 / Q5_1 on AVX2 (s16 runs of 4 pieces) would need a third set of T accumulators that
// way, and spilled; it makes the block's 8 code vectors first and takes the tokens one
// after the other instead (n:32, 2048x2048: 2.9 -> 2.2 ms; Q4_0 that way went 1.6 -> 2.6,
// one pass with a helper building, so Q4_0 keeps the pieces-outermost order).
template <class V, class Ty, int T>
[[gnu::always_inline]] inline void packed_tile(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                               size_t ldy, size_t r, const uint8_t* next = nullptr) {
  constexpr size_t R = V::kLanes;
  const size_t nb = X.nb;
  const uint8_t* scales = group + nb * R * Ty::kQs;
  typename V::F acc[T];
  for (int t = 0; t < T; ++t) acc[t] = V::fzero();
  for (size_t b = 0; b < nb; ++b) {
    prefetch_share(next, b, R * Ty::kBlock);
    const uint8_t* q = group + b * R * Ty::kQs;
    const uint8_t* xq[T];
    for (int t = 0; t < T; ++t) xq[t] = X.q + (t0 + t) * X.stride + b * sizeof(BlockQ8_0) + 2;
    const uint8_t* rec = scales + b * R * Ty::kRecord;
    const typename V::I h = Ty::template high<V>(rec);
    typename V::I s[T], run[T];  // run: the small codes' finished s16 runs, in s32
    for (int t = 0; t < T; ++t) s[t] = run[t] = V::zero();
    if constexpr (Ty::kSmallRun < 8 && !Dot::kVnni && T > 1)
      block_sums_codes_first<V, Ty, T>(q, h, xq, s, run);
    else
      block_sums_by_piece<V, Ty, T>(q, h, xq, s, run);
    const typename V::F dw = V::half_scales(rec);
    for (int t = 0; t < T; ++t) {
      const size_t tb = (t0 + t) * nb + b;
      typename V::I isum = s[t];
      if constexpr (Ty::kSmallCodes && !Dot::kVnni) {
        isum = V::finish_small(s[t]);
        if constexpr (Ty::kSmallRun < 8) isum = V::add(run[t], isum);
      }
      if constexpr (Ty::kOffsetShift != 0) isum = V::sub(isum, V::set1(X.sums[tb] << Ty::kOffsetShift));
      acc[t] = V::step(acc[t], dw, X.d[tb], isum);
      if constexpr (Ty::kMin) acc[t] = V::step(acc[t], V::half_scales(rec + 2 * R), X.d[tb], V::set1(X.sums[tb]));
    }
  }
  for (int t = 0; t < T; ++t) V::store(Y + (t0 + t) * ldy + r, acc[t]);
}

// The last `left` (< T + 1) tokens as one tile of that many.
template <class V, class Ty, int T>
[[gnu::always_inline]] inline void packed_tail(const uint8_t* g, const PackedActs& X, size_t t, size_t left, float* Y,
                                               size_t ldy, size_t r) {
  if constexpr (T > 0) {
    if (left == T) return packed_tile<V, Ty, T>(g, X, t, Y, ldy, r);
    packed_tail<V, Ty, T - 1>(g, X, t, left, Y, ldy, r);
  }
}

// The PackedQMatmulFn: row groups of kLanes rows, tokens kTokens at a time (the
// activations of a tile stay in L1 while the group's blocks stream; the group's
// weights, nb * kLanes * 18, 22 or 34 bytes, stay in L1/L2 across the token tiles).
template <class V, class Ty, int kTokens>
void qmatmul_packed(const void* W, Packing, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                    size_t r0, size_t r1) {
  constexpr size_t R = V::kLanes;
  const size_t group_bytes = R * (K / kQK) * Ty::kBlock;
  const auto* w = static_cast<const uint8_t*>(W);
  for (size_t r = r0; r < r1; r += R) {
    const uint8_t* g = w + (r / R) * group_bytes;
    size_t t = 0;
    if (n == 1) {
      packed_tile<V, Ty, 1>(g, X, 0, Y, ldy, r, g + group_bytes);
      continue;
    }
    for (; t + kTokens <= n; t += kTokens) packed_tile<V, Ty, kTokens>(g, X, t, Y, ldy, r);
    packed_tail<V, Ty, kTokens - 1>(g, X, t, n - t, Y, ldy, r);
  }
}

// ---- ymm traits: 8 rows per vector ----------------------------------------------------
struct VecYmm {
  using I = __m256i;
  using F = __m256;
  static constexpr size_t kLanes = 8;
  static I load(const uint8_t* p) { return load256(p); }
  static I zero() { return _mm256_setzero_si256(); }
  static F fzero() { return _mm256_setzero_ps(); }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  // Bytes 0..15 of idx replaced by table[idx] (16 int8 entries).
  static I lookup16(const int8_t* table, I idx) {
    const I t = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table)));
    return _mm256_shuffle_epi8(t, idx);
  }
  // Bit k of every byte of h moved to bit 4, the rest cleared (Q5_0's fifth bits): a
  // 16-bit shift by at most 4 takes each byte's bit from its own byte.
  static I fifth_bits(I h, int k) {
    const I v = k < 4 ? _mm256_slli_epi16(h, 4 - k) : k > 4 ? _mm256_srli_epi16(h, k - 4) : h;
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
  }
  // The same for k known only at run time: right by k, left by 4 (no branch).
  static I fifth_bits_var(I h, int k) {
    const I v = _mm256_slli_epi16(_mm256_srl_epi16(h, _mm_cvtsi32_si128(k)), 4);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
  }
  static I low4(I v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
  static I high4(I v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)); }
  static I dot4(I acc, I u, const uint8_t* x4) { return Dot::dp(acc, u, _mm256_set1_epi32(load_i32(x4))); }
  // VNNI's unsigned operand from signed codes: w + 128 (flipping the top bit).
  static I bias8(I w) { return _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80))); }
  // Signed weights w (a = |w|): |w| against x with w's sign (|w| <= 128: the s16 pair
  // sums fit).
  static I abs8(I w) { return _mm256_sign_epi8(w, w); }
  static I dot4s(I acc, I a, I w, const uint8_t* x4) {
    return Dot::dp(acc, a, _mm256_sign_epi8(_mm256_set1_epi32(load_i32(x4)), w));
  }
  // Codes below 16: the eight pieces' s16 pair sums add up in s16 (8 * 2 * 15 * 127 <
  // 2^15) and one VPMADDWD (finish_small) makes them s32.
  static I dot4_small(I acc, I u, const uint8_t* x4) {
    return _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, _mm256_set1_epi32(load_i32(x4))));
  }
  // Keeps v in a register here: stops GCC from regrouping the s16 sums into a tree of
  // products (which spills them to the stack on 16 ymm registers).
  static void pin(I& v) { asm("" : "+x"(v)); }
  static I finish_small(I acc) { return pair_sums(acc); }
  static F half_scales(const uint8_t* p) { return _mm256_cvtph_ps(load128(p)); }
  static F step(F acc, F dw, float dx, I isum) {
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(dx)), _mm256_cvtepi32_ps(isum)));
  }
  static void store(float* y, F v) { _mm256_storeu_ps(y, v); }
};

}  // namespace
}  // namespace ember::kernels
