// Reference quantizers of the 256-element super-block types Q2_K, Q3_K, Q4_K, Q5_K and
// of the non-linear IQ4_NL / IQ4_XS (contracts in quant/quantize.h, layouts in
// quant/blocks.h). Each follows the algorithm of the ggml quantizer llama.cpp's
// `llama-quantize` runs when it has no importance matrix (ggml-quants.c:
// quantize_row_q{2,3,4,5}_K_ref; quantize_iq4_nl / quantize_iq4_xs), written from its
// description with the same float operations in the same order (the project builds
// with -ffp-contract=off), so the bytes are ggml's: tests/test_quant.cpp compares
// every tensor of the tiny-llama256 fixtures llama.cpp quantized.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "quant/fp16.h"
#include "quant/quantize.h"
#include "quant/ref_helpers.h"

namespace ember {
namespace {

// ---- scale-and-min fit of one sub-block (Q2_K, Q4_K, Q5_K) ---------------------------
//
// Fits x[i] ~= scale * L[i] - mn with codes L[i] in [0, nmax] and mn >= 0 (the formats
// can only subtract), minimising sum_i w[i] * e(scale*L[i] - mn - x[i]) with e the
// square, or the absolute value (Q2_K, whose 4 levels make outliers dominate squares).
// First the plain min/max grid; then the grids with (nmax + rmin + rdelta*k) steps
// across [min, max], k = 0..nstep: each fixes the codes, and the best (scale, min) for
// those codes is the 2x2 weighted least-squares solution
//   D     = Sw*Sll - Sl^2
//   scale = (Sw*Sxl - Sx*Sl) / D,   min = (Sll*Sx - Sl*Sxl) / D
// (with min forced to 0 and scale = Sxl/Sll when it comes out positive). The grid with
// the smallest error wins; later grids start from the improved min, as ggml's do.
struct GridSearch {
  float rmin, rdelta;
  int nstep;
  bool abs_error;
};
constexpr GridSearch kQ2_KSearch{-0.5f, 0.1f, 15, true};
constexpr GridSearch kQ4_KSearch{-1.0f, 0.1f, 20, false};
constexpr GridSearch kQ5_KSearch{-0.5f, 0.1f, 15, false};

float fit_scale_min(const float* x, const float* w, int n, int nmax, const GridSearch& g, uint8_t* L,
                    float* mn) {
  assert(n <= 32);
  float lo = x[0], hi = x[0];
  float sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;  // a positive min cannot be stored: codes start at zero
  if (hi == lo) {      // constant non-positive group: value = -mn exactly
    std::fill(L, L + n, uint8_t{0});
    *mn = -lo;
    return 0.0f;
  }
  auto error = [&g](float diff) { return g.abs_error ? std::fabs(diff) : diff * diff; };
  float iscale = nmax / (hi - lo);
  float scale = 1.0f / iscale;
  float best_err = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax));
    best_err += w[i] * error(scale * L[i] + lo - x[i]);
  }
  uint8_t cand[32];
  for (int is = 0; is <= g.nstep; ++is) {
    iscale = (g.rmin + g.rdelta * is + nmax) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax);
      cand[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) err += w[i] * error(this_scale * cand[i] + this_min - x[i]);
    if (err < best_err) {
      std::copy(cand, cand + n, L);
      best_err = err;
      scale = this_scale;
      lo = this_min;
    }
  }
  *mn = -lo;
  return scale;
}

// A sub-block scale as an unsigned code: ggml stores nearest_int's result in a uint8_t
// (so a negative fit, which the search can produce on odd data, wraps) and then caps it.
uint8_t scale_code(float v, int cap) { return std::min(static_cast<uint8_t>(nearest_int(v)), static_cast<uint8_t>(cap)); }

// ---- Q4_K and Q5_K: 8 sub-blocks of 32, 6-bit scales and mins ------------------------

// Codes L[256] in [0, nmax] and the super-block fields d, dmin, scales[12] of one block:
// per sub-block the fit above with weights rms + |x| (large weights count more without
// letting the small ones go unrepresented); the scales and mins as 6-bit multiples of
// d = max scale/63, dmin = max min/63; every weight requantized against them as stored.
void quantize_scale_min_block(const float* x, int nmax, const GridSearch& g, uint16_t* d_out, uint16_t* dmin_out,
                              uint8_t scales_out[12], uint8_t L[kQKK]) {
  constexpr int kSub = kQKK / 32;
  float scales[kSub], mins[kSub];
  float max_scale = 0, max_min = 0;
  for (int s = 0; s < kSub; ++s) {
    const float* xs = x + 32 * s;
    float sum_x2 = 0;
    for (int i = 0; i < 32; ++i) sum_x2 += xs[i] * xs[i];
    const float rms = std::sqrt(sum_x2 / 32);
    float w[32];
    for (int i = 0; i < 32; ++i) w[i] = rms + std::fabs(xs[i]);
    scales[s] = fit_scale_min(xs, w, 32, nmax, g, L + 32 * s, &mins[s]);
    max_scale = std::max(max_scale, scales[s]);
    max_min = std::max(max_min, mins[s]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t sc[kSub], m[kSub];
  for (int s = 0; s < kSub; ++s) {
    sc[s] = scale_code(inv_scale * scales[s], 63);
    m[s] = scale_code(inv_min * mins[s], 63);
  }
  pack_scales_q4_K(sc, m, scales_out);
  *d_out = fp32_to_fp16(max_scale / 63.0f);
  *dmin_out = fp32_to_fp16(max_min / 63.0f);
  const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
  for (int s = 0; s < kSub; ++s) {
    const float ds = d * sc[s];
    if (ds == 0) continue;  // the sub-block decodes to -dm whatever its codes
    const float dm = dmin * m[s];
    for (int i = 0; i < 32; ++i)
      L[32 * s + i] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * s + i] + dm) / ds), 0, nmax));
  }
}

// Two-bit codes of 256 weights (Q2_K's qs, Q3_K's low bits): weight 32j + l of each half
// of 128 in bits 2j..2j+1 of byte l of the half's 32.
void pack_q2_codes(const uint8_t* L, uint8_t qs[kQKK / 4]) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = L + 128 * h;
    for (int l = 0; l < 32; ++l)
      qs[32 * h + l] = static_cast<uint8_t>(q[l] | (q[l + 32] << 2) | (q[l + 64] << 4) | (q[l + 96] << 6));
  }
}

// ---- Q3_K: one sub-block's signed scale -----------------------------------------------
//
// Codes l in [-4, 3] for 16 weights, x ~= scale * l, each weight counting x^2. Starts
// from the grid that maps the value of largest magnitude to -4, then up to 5 passes of
// coordinate descent: each code moves to the value that is best for the scale the other
// codes imply (x * Sll' / Sxl'), kept when it raises Sxl^2/Sll (the error's reduction).
// Writes L[i] = l + 4 (0 for an all-zero group); returns Sxl / Sll.
float fit_scale_q3_K(const float* x, int8_t* L) {
  constexpr int n = 16, nmax = 4;
  const float max = signed_extreme(x, n);
  if (std::fabs(max) < kGroupEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  const float iscale = -nmax / max;
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * l;
    sum_l2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sum_lx - w * x[i] * L[i];
      if (!(slx > 0)) continue;
      float sl2 = sum_l2 - w * L[i] * L[i];
      const int l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (l == L[i]) continue;
      slx += w * x[i] * l;
      sl2 += w * l * l;
      if (sl2 > 0 && slx * slx * sum_l2 > sum_lx * sum_lx * sl2) {
        L[i] = static_cast<int8_t>(l);
        sum_lx = slx;
        sum_l2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sum_l2 > 0 ? sum_lx / sum_l2 : 0.0f;
}

}  // namespace

// Also the repacked layout's way back (quant/repack_k.cpp), hence outside the anonymous
// namespace.
// Q3_K's 16 six-bit scales (stored + 32) into scales[12]: low nibbles of sub-blocks 0..7
// in the low halves of bytes 0..7, of 8..15 in their high halves; the top two bits of
// sub-block s in bits 2*(s/4) of byte 8 + s%4.
void pack_scales_q3_K(const int sc[16], uint8_t scales[12]) {
  std::memset(scales, 0, 12);
  for (int s = 0; s < 16; ++s) {
    const int v = sc[s];
    if (s < 8) {
      scales[s] = static_cast<uint8_t>(v & 0xF);
    } else {
      scales[s - 8] = static_cast<uint8_t>(scales[s - 8] | ((v & 0xF) << 4));
    }
    scales[8 + s % 4] = static_cast<uint8_t>(scales[8 + s % 4] | ((v >> 4) << (2 * (s / 4))));
  }
}

namespace {

// ---- IQ4_NL / IQ4_XS: the non-linear grid -----------------------------------------------

// Index of the IQ4 grid level nearest to v (a tie goes to the upper level, as in ggml).
int nearest_level(float v) {
  const int8_t* g = kIq4nlValues;
  if (v <= g[0]) return 0;
  if (v >= g[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < g[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return v - g[hi - 1] < g[hi] - v ? hi - 1 : hi;
}

// Weighted fit of 32 values on the grid: the scale d of x ~= d * grid[code], each value
// counting x^2. The codes of d = max/127 (max the signed extreme, which lands on the top
// level) give a first least-squares scale Sqx/Sqq; then the 15 inverse scales
// (k - 127)/max, k = -7..7 (the extreme at or near the bottom level -127) each give codes
// and their least-squares scale; the one maximising Sqx^2/Sqq (the error's reduction)
// wins. Returns 0 for an all-zero group.
float fit_scale_iq4(const float* x) {
  constexpr int n = 32, ntry = 7;
  const int8_t* g = kIq4nlValues;
  const float max = signed_extreme(x, n);
  if (std::fabs(max) < kGroupEps) return 0.0f;
  auto sums = [&](float id, float* sqx, float* sqq) {
    *sqx = *sqq = 0;
    for (int i = 0; i < n; ++i) {
      const float q = g[nearest_level(id * x[i])];
      const float w = x[i] * x[i];
      *sqx += w * q * x[i];
      *sqq += w * q * q;
    }
  };
  float d = -max / g[0];
  float sqx, sqq;
  sums(1 / d, &sqx, &sqq);
  d = sqq > 0 ? sqx / sqq : 0.0f;
  float best = d * sqx;
  for (int k = -ntry; k <= ntry; ++k) {
    sums((k + g[0]) / max, &sqx, &sqq);
    if (sqq > 0 && sqx * sqx > best * sqq) {
      d = sqx / sqq;
      best = d * sqx;
    }
  }
  return d;
}

// 32 codes, the nibble layout of Q4_0: code j in the low nibble of byte j, j+16 in the high.
void pack_iq4_codes(const uint8_t L[kQK], uint8_t qs[kQK / 2]) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + kQK / 2] << 4));
}

void iq4_codes(const float* x, float id, uint8_t L[kQK]) {
  for (int j = 0; j < kQK; ++j) L[j] = static_cast<uint8_t>(nearest_level(id * x[j]));
}

}  // namespace

// ---- Q2_K ---------------------------------------------------------------------------

void quantize_row_q2_K_ref(const float* x, BlockQ2_K* y, int64_t k) {
  assert(k % kQKK == 0);
  constexpr int kSub = kQKK / 16;
  for (int64_t b = 0; b < k / kQKK; ++b, x += kQKK) {
    uint8_t L[kQKK];
    float scales[kSub], mins[kSub];
    float max_scale = 0, max_min = 0;
    for (int s = 0; s < kSub; ++s) {
      float w[16];
      for (int i = 0; i < 16; ++i) w[i] = std::fabs(x[16 * s + i]);
      scales[s] = fit_scale_min(x + 16 * s, w, 16, 3, kQ2_KSearch, L + 16 * s, &mins[s]);
      max_scale = std::max(max_scale, scales[s]);
      max_min = std::max(max_min, mins[s]);
    }
    // 4-bit scales (low nibble) and mins (high nibble) against d = max/15, dmin = max/15.
    uint8_t* sc = y[b].scales;
    std::fill(sc, sc + kSub, uint8_t{0});
    y[b].d = fp32_to_fp16(0.0f);
    y[b].dmin = fp32_to_fp16(0.0f);
    if (max_scale > 0) {
      const float iscale = 15.0f / max_scale;
      for (int s = 0; s < kSub; ++s) sc[s] = static_cast<uint8_t>(nearest_int(iscale * scales[s]));
      y[b].d = fp32_to_fp16(max_scale / 15.0f);
    }
    if (max_min > 0) {
      const float iscale = 15.0f / max_min;
      for (int s = 0; s < kSub; ++s) sc[s] = static_cast<uint8_t>(sc[s] | (nearest_int(iscale * mins[s]) << 4));
      y[b].dmin = fp32_to_fp16(max_min / 15.0f);
    }
    const float d = fp16_to_fp32(y[b].d), dmin = fp16_to_fp32(y[b].dmin);
    for (int s = 0; s < kSub; ++s) {
      const float ds = d * (sc[s] & 0xF);
      if (ds == 0) continue;
      const float dm = dmin * (sc[s] >> 4);
      for (int i = 0; i < 16; ++i)
        L[16 * s + i] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * s + i] + dm) / ds), 0, 3));
    }
    pack_q2_codes(L, y[b].qs);
  }
}

// ---- Q3_K ---------------------------------------------------------------------------

void quantize_row_q3_K_ref(const float* x, BlockQ3_K* y, int64_t k) {
  assert(k % kQKK == 0);
  constexpr int kSub = kQKK / 16;
  for (int64_t b = 0; b < k / kQKK; ++b, x += kQKK) {
    int8_t L[kQKK];
    float scales[kSub];
    for (int s = 0; s < kSub; ++s) scales[s] = fit_scale_q3_K(x + 16 * s, L + 16 * s);
    const float max_scale = signed_extreme(scales, kSub);
    // 6-bit signed scales (stored + 32) against d = -max scale/32.
    int sc[kSub] = {};
    if (max_scale != 0) {
      const float iscale = -32.0f / max_scale;
      for (int s = 0; s < kSub; ++s) sc[s] = std::clamp(nearest_int(iscale * scales[s]), -32, 31) + 32;
      y[b].d = fp32_to_fp16(1 / iscale);
    } else {
      y[b].d = fp32_to_fp16(0.0f);
    }
    pack_scales_q3_K(sc, y[b].scales);
    // Requantize against the scales as stored (an all-zero block stores code 0 = -32).
    const float d = fp16_to_fp32(y[b].d);
    for (int s = 0; s < kSub; ++s) {
      const float ds = d * (sc[s] - 32);
      if (ds == 0) continue;
      for (int i = 0; i < 16; ++i)
        L[16 * s + i] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * s + i] / ds), -4, 3) + 4);
    }
    // Codes 4..7 set the high bit (weight i: bit i/32 of hmask[i%32]) and keep l - 4.
    std::memset(y[b].hmask, 0, sizeof y[b].hmask);
    uint8_t low[kQKK];
    for (int i = 0; i < kQKK; ++i) {
      const bool high = L[i] > 3;
      if (high) y[b].hmask[i % 32] = static_cast<uint8_t>(y[b].hmask[i % 32] | (1u << (i / 32)));
      low[i] = static_cast<uint8_t>(high ? L[i] - 4 : L[i]);
    }
    pack_q2_codes(low, y[b].qs);
  }
}

// ---- Q4_K, Q5_K -----------------------------------------------------------------------

void quantize_row_q4_K_ref(const float* x, BlockQ4_K* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, x += kQKK) {
    uint8_t L[kQKK];
    quantize_scale_min_block(x, 15, kQ4_KSearch, &y[b].d, &y[b].dmin, y[b].scales, L);
    for (int c = 0; c < kQKK / 64; ++c)
      for (int i = 0; i < 32; ++i)
        y[b].qs[32 * c + i] = static_cast<uint8_t>(L[64 * c + i] | (L[64 * c + 32 + i] << 4));
  }
}

void quantize_row_q5_K_ref(const float* x, BlockQ5_K* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, x += kQKK) {
    uint8_t L[kQKK];
    quantize_scale_min_block(x, 31, kQ5_KSearch, &y[b].d, &y[b].dmin, y[b].scales, L);
    // Low nibbles as Q4_K's; the fifth bit of element l of sub-block s is bit s of qh[l].
    std::memset(y[b].qh, 0, sizeof y[b].qh);
    for (int c = 0; c < kQKK / 64; ++c)
      for (int i = 0; i < 32; ++i) {
        const uint8_t lo = L[64 * c + i], hi = L[64 * c + 32 + i];
        y[b].qs[32 * c + i] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        y[b].qh[i] = static_cast<uint8_t>(y[b].qh[i] | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

// ---- IQ4_NL, IQ4_XS -----------------------------------------------------------------------

void quantize_row_iq4_nl_ref(const float* x, BlockIQ4_NL* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK) {
    // One block: its fitted scale as fp16, the codes against the unrounded scale.
    const float d = fit_scale_iq4(x);
    y[b].d = fp32_to_fp16(d);
    uint8_t L[kQK];
    iq4_codes(x, d != 0 ? 1 / d : 0.0f, L);
    pack_iq4_codes(L, y[b].qs);
  }
}

void quantize_row_iq4_xs_ref(const float* x, BlockIQ4_XS* y, int64_t k) {
  assert(k % kQKK == 0);
  constexpr int kSub = kQKK / 32;
  for (int64_t b = 0; b < k / kQKK; ++b, x += kQKK) {
    float scales[kSub];
    for (int s = 0; s < kSub; ++s) scales[s] = fit_scale_iq4(x + 32 * s);
    const float max_scale = signed_extreme(scales, kSub);
    // 6-bit signed sub-block scales (stored + 32) against d = -max scale/32; the codes
    // against each sub-block's scale d*l before fp16 rounding, as ggml does.
    const float d = -max_scale / 32;
    y[b].d = fp32_to_fp16(d);
    const float id = d != 0 ? 1 / d : 0.0f;
    y[b].scales_h = 0;
    std::memset(y[b].scales_l, 0, sizeof y[b].scales_l);
    for (int s = 0; s < kSub; ++s) {
      const int l = std::clamp(nearest_int(id * scales[s]), -32, 31);
      const float dl = d * l;
      uint8_t L[kQK];
      iq4_codes(x + 32 * s, dl != 0 ? 1 / dl : 0.0f, L);
      pack_iq4_codes(L, y[b].qs + 16 * s);
      const int stored = l + 32;
      y[b].scales_l[s / 2] = static_cast<uint8_t>(y[b].scales_l[s / 2] | ((stored & 0xF) << (4 * (s % 2))));
      y[b].scales_h = static_cast<uint16_t>(y[b].scales_h | ((stored >> 4) << (2 * s)));
    }
  }
}

}  // namespace ember
