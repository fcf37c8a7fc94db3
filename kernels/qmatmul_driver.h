// Private to kernels/: what every ISA's quantized matmul does the same way, written
// once: the row and token loops around the microkernels (incomplete row and token
// groups included), and the activation quantizers around their vector steps. An ISA
// file includes this header and instantiates the templates with its own small structs:
//
//   struct Kern {                       // one weight type's microkernels on one ISA
//     static constexpr size_t kBlockElems;          // weights per block (32 or 256)
//     static constexpr int kGemvRows;               // rows per gemv() call
//     static void gemv(const uint8_t* w, size_t w_stride, size_t rows,
//                      const uint8_t* x, size_t nb, float* y);
//         // rows (<= kGemvRows) consecutive rows from w against one activation row
//     static constexpr int kGemmRows, kGemmTokens;  // register tile
//     static void gemm(const uint8_t* const* w, const uint8_t* const* x, size_t nb,
//                      float* y, size_t ldy, size_t rows, size_t tokens);
//         // kGemmRows row pointers x kGemmTokens activation pointers; pointers past
//         // the valid `rows` / `tokens` repeat the last valid one, their outputs dropped
//   };
//   struct QuantOps {                   // the activation quantizers' vector steps
//     static float absmax(const float* x, int n);                    // max |x_i|
//     static void round_away(const float* x, float s, int8_t* q, int n);
//         // q_i = round(x_i * s), ties away from zero (roundf); |q_i| <= 127 given
//     static void round_even_capped(const float* x, float s, int8_t* q, int n);
//         // q_i = min(127, round_half_even(x_i * s))
//     static void sums16(const int8_t* q, int16_t* sums, int n_groups);
//         // sums[j] = q[16j] + ... + q[16j + 15]
//   };
//
// Everything is in an anonymous namespace: each ISA file compiles this header with its
// own target flags, so no symbol may be shared (and merged by the linker) between them.
#pragma once
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace ember::kernels {
namespace {

// Pointers to rows [r, r + R) of a matrix with rows < r1 (later ones repeat row r1 - 1).
template <int R>
void row_pointers(const uint8_t* base, size_t stride, size_t r, size_t r1, const uint8_t** p) {
  for (int i = 0; i < R; ++i) p[i] = base + (r + i < r1 ? r + i : r1 - 1) * stride;
}

inline size_t at_most(size_t v, size_t cap) { return v < cap ? v : cap; }

// The QMatmulFn of a Kern (kernels.h): GEMV for one token, register tiles for a batch.
template <class Kern>
void qmatmul(const void* W, size_t w_stride, const void* Xq, size_t xq_stride, size_t n, size_t K,
             float* Y, size_t ldy, size_t r0, size_t r1) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* x = static_cast<const uint8_t*>(Xq);
  const size_t nb = K / Kern::kBlockElems;
  if (n == 1) {
    for (size_t r = r0; r < r1; r += Kern::kGemvRows)
      Kern::gemv(w + r * w_stride, w_stride, at_most(r1 - r, Kern::kGemvRows), x, nb, Y + r);
    return;
  }
  for (size_t r = r0; r < r1; r += Kern::kGemmRows) {
    const uint8_t* p[Kern::kGemmRows];
    row_pointers<Kern::kGemmRows>(w, w_stride, r, r1, p);
    for (size_t t = 0; t < n; t += Kern::kGemmTokens) {
      const uint8_t* xt[Kern::kGemmTokens];
      row_pointers<Kern::kGemmTokens>(x, xq_stride, t, n, xt);
      Kern::gemm(p, xt, nb, Y + t * ldy + r, ldy, at_most(r1 - r, Kern::kGemmRows),
                 at_most(n - t, Kern::kGemmTokens));
    }
  }
}

// ---- activation quantizers (kernels.h gives the numerics; bitwise the reference's) ----

// Q8_0: per block of 32, d = amax / 127, q = round(x * (1 / d)) ties away from zero.
template <class Ops>
void quantize_row_q8_0(const float* x, void* y, size_t K) {
  auto* out = static_cast<uint8_t*>(y);
  for (size_t b = 0; b < K / kQK; ++b, x += kQK) {
    BlockQ8_0 blk;
    const float d = Ops::absmax(x, kQK) / 127.0f;
    Ops::round_away(x, d != 0.0f ? 1.0f / d : 0.0f, blk.qs, kQK);
    blk.d = fp32_to_fp16(d);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

// Q8_K: per block of 256, the first value of largest magnitude maps to -127, the rest
// round half to even, at most 127; bsums are the sums of 16 codes.
template <class Ops>
void quantize_row_q8_k(const float* x, void* y, size_t K) {
  auto* out = static_cast<uint8_t*>(y);
  for (size_t b = 0; b < K / kQKK; ++b, x += kQKK) {
    BlockQ8_K blk;
    const float amax = Ops::absmax(x, kQKK);
    if (amax == 0.0f) {
      std::memset(&blk, 0, sizeof blk);
    } else {
      // The reference keeps the first element of largest magnitude. Bounded: with a NaN in
      // the block (a hostile or broken model) no element may equal amax, and the output is
      // garbage either way, but it must not read past the block (found by fuzz_gguf).
      int first = 0;
      while (first < static_cast<int>(kQKK) - 1 && std::fabs(x[first]) != amax) ++first;
      const float iscale = -127.0f / x[first];
      Ops::round_even_capped(x, iscale, blk.qs, kQKK);
      blk.d = 1.0f / iscale;
      Ops::sums16(blk.qs, blk.bsums, kQKK / 16);
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

}  // namespace
}  // namespace ember::kernels
