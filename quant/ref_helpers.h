// Helpers the reference quantizers share (quant/quantize.cpp, quant/quantize_k.cpp).
// Internal to quant/: they reproduce ggml's steps of the same purpose, so quantizers built
// on them can match ggml's bytes.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace ember {

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves a float
// whose unit in the last place is 1, so the addition itself rounds v to an integer,
// which then sits in the low mantissa bits (offset by 2^22). Larger magnitudes (and
// Inf/NaN, which the Q3_K and IQ4 searches can produce from near-zero denominators)
// give some integer in [-2^22, 2^22) without undefined behaviour, as ggml's does; every
// caller clamps the result to its code range.
inline int nearest_int(float v) {
  const float t = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// Below this a group of weights counts as all zero (no scale can be derived).
constexpr float kGroupEps = 1e-15f;

// The value of largest magnitude among x[0..n), with its sign (the first one on ties; 0
// when all are zero): the extreme a symmetric grid maps to its outermost code.
inline float signed_extreme(const float* x, int n) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

}  // namespace ember
