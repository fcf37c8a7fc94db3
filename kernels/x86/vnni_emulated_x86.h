// Private to kernels/x86/, for tests only: VPDPBUSD and VPDPWSSD (ymm) emulated exactly
// in AVX2, so that the AVX-VNNI table's code can be built (with EMBER_EMULATE_VNNI and
// the AVX2 flags: qmatmul_x86.h then takes these as its VNNI primitive) and run against
// the scalar reference on a machine without VNNI (tests/support/vnni_emulated.cpp).
// Never in a dispatched table: each is several instructions where VNNI has one.
//
// Why exact (every input, not only the kernels' ranges):
//  * VPDPBUSD: per s32 lane, acc + u0 s0 + u1 s1 + u2 s2 + u3 s3 (u unsigned, s signed
//    bytes), no saturation: modulo 2^32. Here the even bytes (0, 2) zero-extended (u)
//    and sign-extended (s) to s16, VPMADDWD: u0 s0 + u2 s2, each product in
//    [-32640, 32385], the sum exact in s32 (VPMADDWD can only wrap when both products
//    are (-32768)^2, impossible with u <= 255); the same for the odd bytes (1, 3);
//    the three 32-bit additions are modulo 2^32, as the instruction's.
//  * VPDPWSSD: per s32 lane, acc + a0 b0 + a1 b1 (s16), no saturation: modulo 2^32.
//    VPMADDWD gives a0 b0 + a1 b1 modulo 2^32 (its one overflow, (-32768)^2 twice =
//    2^31, comes out as 0x80000000: 2^31 modulo 2^32), and VPADDD adds modulo 2^32:
//    the same bits.
#pragma once
#include <immintrin.h>

namespace ember::kernels {
namespace {

inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
  const __m256i low = _mm256_set1_epi16(0x00FF);
  const __m256i u_even = _mm256_and_si256(u, low), u_odd = _mm256_srli_epi16(u, 8);
  const __m256i s_even = _mm256_srai_epi16(_mm256_slli_epi16(s, 8), 8), s_odd = _mm256_srai_epi16(s, 8);
  return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(u_even, s_even), _mm256_madd_epi16(u_odd, s_odd)));
}

inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }

}  // namespace
}  // namespace ember::kernels
