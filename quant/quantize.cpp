// Reference quantizers and dequantizers (contracts in quantize.h, layouts in blocks.h).
#include "quant/quantize.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "quant/fp16.h"
#include "quant/ref_helpers.h"

namespace ember {
namespace {

// Passes v through an empty asm statement: the compiler can no longer see the
// product that produced v, so it cannot contract `a * b + c` into one FMA even when
// built without -ffp-contract=off. The byte-exact Q4_0 reference depends on the
// product being rounded to float before the add.
inline float opaque(float v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#elif defined(__GNUC__)
  __asm__("" : "+m"(v));
#else
  volatile float t = v;
  v = t;
#endif
  return v;
}

// ---- Q6_K: one sub-block's signed scale -----------------------------------------
//
// Codes l in [-32, 31] for x[i] ~= scale * l, weighting each element by x[i]^2 (the
// large weights matter most). Starts from the grid that maps the element of largest
// magnitude to -32, then tries 18 neighbouring grids (-(32 + 0.1*is)/max, is = -9..9);
// for fixed codes the best scale is Sxl/Sll, and the grid maximising Sxl^2/Sll (i.e.
// minimising the weighted error) wins. Writes L[i] = l + 32; returns the scale.
float fit_scale_q6_K(const float* x, uint8_t* L) {
  constexpr int n = 16, nmax = 32;
  const float max = signed_extreme(x, n);
  if (std::fabs(max) < kGroupEps) {
    std::fill(L, L + n, uint8_t{nmax});
    return 0.0f;
  }
  auto code = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
  float iscale = -nmax / max;
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = code(iscale, i);
    L[i] = static_cast<uint8_t>(l + nmax);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * l;
    sum_l2 += w * l * l;
  }
  float scale = sum_l2 > 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sum_lx = sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = code(iscale, i);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * l;
      sum_l2 += w * l * l;
    }
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(code(iscale, i) + nmax);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

}  // namespace

// ---- Q8_0 ---------------------------------------------------------------------------

void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    // Half away from zero (roundf), as ggml's reference does. A non-finite input makes
    // the product NaN (inf * 0 or NaN * id), whose conversion to an integer would be
    // undefined: it becomes code 0 (finite inputs give |code| <= 127 and are unaffected).
    for (int j = 0; j < kQK; ++j) {
      const float r = std::roundf(x[j] * id);
      y[b].qs[j] = std::isnan(r) ? int8_t{0} : static_cast<int8_t>(r);
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK; ++j) y[j] = x[b].qs[j] * d;
  }
}

namespace {

// Packs 32 five-bit codes (weight order) into nibbles and fifth bits.
void pack_q5_codes(const int* q, uint8_t qs[kQK / 2], uint8_t qh[4]) {
  uint32_t bits = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kQK / 2] & 0x0F) << 4));
    bits |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    bits |= static_cast<uint32_t>((q[j + kQK / 2] >> 4) & 1) << (j + kQK / 2);
  }
  std::memcpy(qh, &bits, 4);
}

// The block's value of largest magnitude, signed (the first one on ties): Q4_0 and Q5_0
// map it to code 0, so that extreme is exact.
float block_signed_max(const float* x) { return signed_extreme(x, kQK); }

// The smallest and largest of a block's 32 values (Q4_1, Q5_1: the grid spans them).
void block_min_max(const float* x, float* mn, float* mx) {
  *mn = x[0];
  *mx = x[0];
  for (int j = 1; j < kQK; ++j) {
    *mn = std::min(*mn, x[j]);
    *mx = std::max(*mx, x[j]);
  }
}

}  // namespace

// ---- Q4_0 ---------------------------------------------------------------------------

void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK) {
    // The signed value of largest magnitude (the first one on ties) maps to code 0,
    // i.e. -8 * d: d = max / -8 carries the sign, so that extreme is exact.
    const float max = block_signed_max(x);
    const float d = max / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      // x*id in [-8, 8]; +8.5 then truncation rounds to the nearest code (ties up).
      const float s0 = opaque(x[j] * id);
      const float s1 = opaque(x[j + kQK / 2] * id);
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(s0 + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(s1 + 8.5f)));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((x[b].qs[j] & 0x0F) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}


// ---- Q4_1 ---------------------------------------------------------------------------

void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK) {
    // The block's range [min, max] in 15 steps: min is exact (code 0).
    float mn, mx;
    block_min_max(x, &mn, &mx);
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mn);
    for (int j = 0; j < kQK / 2; ++j) {
      // (x - min)*id in [0, 15]; +0.5 then truncation rounds to the nearest code (ties up).
      const float s0 = opaque((x[j] - mn) * id);
      const float s1 = opaque((x[j + kQK / 2] - mn) * id);
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(s0 + 0.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(s1 + 0.5f)));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = opaque(static_cast<float>(x[b].qs[j] & 0x0F) * d) + m;
      y[j + kQK / 2] = opaque(static_cast<float>(x[b].qs[j] >> 4) * d) + m;
    }
  }
}

// ---- Q5_0, Q5_1 ----------------------------------------------------------------------

void unpack_q5_codes(const uint8_t qs[kQK / 2], const uint8_t qh[4], uint8_t q[kQK]) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = static_cast<uint8_t>((qs[j] & 0x0F) | ((bits >> j) & 1) << 4);
    q[j + kQK / 2] = static_cast<uint8_t>((qs[j] >> 4) | ((bits >> (j + kQK / 2)) & 1) << 4);
  }
}


void quantize_row_q5_0_ref(const float* x, BlockQ5_0* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK) {
    // As Q4_0 with 32 levels: the signed extreme maps to code 0, i.e. -16 * d.
    const float max = block_signed_max(x);
    const float d = max / -16.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) {
      // x*id in [-16, 16]; +16.5 then truncation rounds to the nearest code (ties up).
      q[j] = std::min(31, static_cast<int>(static_cast<int8_t>(opaque(x[j] * id) + 16.5f)));
    }
    pack_q5_codes(q, y[b].qs, y[b].qh);
  }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    uint8_t q[kQK];
    unpack_q5_codes(x[b].qs, x[b].qh, q);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q[j] - 16) * d;
  }
}

// ---- Q5_1 ---------------------------------------------------------------------------

void quantize_row_q5_1_ref(const float* x, BlockQ5_1* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, x += kQK) {
    // The block's range [min, max] in 31 steps: min is exact (code 0).
    float mn, mx;
    block_min_max(x, &mn, &mx);
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mn);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = std::min(31, static_cast<int>(opaque((x[j] - mn) * id) + 0.5f));
    pack_q5_codes(q, y[b].qs, y[b].qh);
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    uint8_t q[kQK];
    unpack_q5_codes(x[b].qs, x[b].qh, q);
    for (int j = 0; j < kQK; ++j) y[j] = opaque(static_cast<float>(q[j]) * d) + m;
  }
}

// ---- IQ4_NL --------------------------------------------------------------------------

void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t k) {
  assert(k % kQK == 0);
  for (int64_t b = 0; b < k / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[x[b].qs[j] & 0x0F]);
      y[j + kQK / 2] = d * static_cast<float>(kIq4nlValues[x[b].qs[j] >> 4]);
    }
  }
}

// ---- Q4_K ---------------------------------------------------------------------------

void pack_scales_q4_K(const uint8_t sc[8], const uint8_t m[8], uint8_t scales[12]) {
  // Sub-blocks 0..3: six bits in bytes 0..3 (scale) and 4..7 (min). Sub-blocks 4..7:
  // low four bits of scale and min share byte s+4, the top two bits ride in the
  // spare top bits of bytes s-4 (scale) and s (min).
  for (int s = 0; s < 4; ++s) {
    scales[s] = static_cast<uint8_t>((sc[s] & 63) | ((sc[s + 4] >> 4) << 6));
    scales[s + 4] = static_cast<uint8_t>((m[s] & 63) | ((m[s + 4] >> 4) << 6));
    scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 0xF) | ((m[s + 4] & 0xF) << 4));
  }
}

void unpack_scale_min_q4_K(int s, const uint8_t scales[12], uint8_t* sc, uint8_t* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[s + 4] >> 4) | ((scales[s] >> 6) << 4));
  }
}

void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    for (int c = 0; c < kQKK / 64; ++c) {
      const uint8_t* q = x[b].qs + 32 * c;
      uint8_t sc, m;
      unpack_scale_min_q4_K(2 * c, x[b].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      unpack_scale_min_q4_K(2 * c + 1, x[b].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int i = 0; i < 32; ++i) *y++ = d1 * (q[i] & 0xF) - m1;
      for (int i = 0; i < 32; ++i) *y++ = d2 * (q[i] >> 4) - m2;
    }
  }
}

// ---- Q6_K ---------------------------------------------------------------------------

void pack_q6_K(const uint8_t q[kQKK], BlockQ6_K* b) {
  for (int h = 0; h < 2; ++h) {  // two halves of 128 weights
    const uint8_t* qh_src = q + 128 * h;
    uint8_t* ql = b->ql + 64 * h;
    uint8_t* qh = b->qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const uint8_t a = qh_src[l], c = qh_src[l + 32], e = qh_src[l + 64], g = qh_src[l + 96];
      ql[l] = static_cast<uint8_t>((a & 0xF) | ((e & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((c & 0xF) | ((g & 0xF) << 4));
      qh[l] = static_cast<uint8_t>(((a >> 4) & 3) | (((c >> 4) & 3) << 2) | (((e >> 4) & 3) << 4) |
                                   (((g >> 4) & 3) << 6));
    }
  }
}

void unpack_q6_K(const BlockQ6_K& b, uint8_t q[kQKK]) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    uint8_t* out = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      out[l] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
      out[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
      out[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      out[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
}

void quantize_row_q6_K_ref(const float* x, BlockQ6_K* y, int64_t k) {
  assert(k % kQKK == 0);
  constexpr int kSub = kQKK / 16;
  for (int64_t b = 0; b < k / kQKK; ++b, x += kQKK) {
    uint8_t L[kQKK];
    float scales[kSub];
    for (int s = 0; s < kSub; ++s) scales[s] = fit_scale_q6_K(x + 16 * s, L + 16 * s);
    const float max_scale = signed_extreme(scales, kSub);
    if (std::fabs(max_scale) < kGroupEps) {  // all zero: d = 0, every code decodes to 0
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    // int8 sub-block scales against d = -max_scale/128 (so the largest is -128).
    const float iscale = -128.0f / max_scale;
    y[b].d = fp32_to_fp16(1.0f / iscale);
    for (int s = 0; s < kSub; ++s)
      y[b].scales[s] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[s])));
    const float d = fp16_to_fp32(y[b].d);
    for (int s = 0; s < kSub; ++s) {
      const float ds = d * y[b].scales[s];
      if (ds == 0) continue;  // decodes to 0 whatever the codes
      for (int i = 0; i < 16; ++i)
        L[16 * s + i] = static_cast<uint8_t>(std::clamp(nearest_int(x[16 * s + i] / ds), -32, 31) + 32);
    }
    pack_q6_K(L, &y[b]);
  }
}

void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, y += kQKK) {
    const float d = fp16_to_fp32(x[b].d);
    uint8_t q[kQKK];
    unpack_q6_K(x[b], q);
    // Weight i uses sub-block scale i/16 (= scales[8h + i'/16] within half h).
    for (int i = 0; i < kQKK; ++i) y[i] = d * x[b].scales[i / 16] * (q[i] - 32);
  }
}

// ---- Q8_K ---------------------------------------------------------------------------

void quantize_row_q8_K_ref(const float* x, BlockQ8_K* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, x += kQKK) {
    const float max = signed_extreme(x, kQKK);
    if (max == 0) {
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    // The extreme maps to -127 * sign; the opposite side may round to 128: clamp.
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQKK; ++j) y[b].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < kQKK / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += y[b].qs[16 * g + i];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1.0f / iscale;
  }
}

void dequantize_row_q8_K(const BlockQ8_K* x, float* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, y += kQKK)
    for (int j = 0; j < kQKK; ++j) y[j] = x[b].d * x[b].qs[j];
}

// ---- whole tensors --------------------------------------------------------------------

bool is_quantize_target(DType type) {
  const TypeTraits& row = dtype_info(type);
  return row.is_weight && row.from_float;
}

// "f32, f16, ...": the targets, in the type table's order.
static std::string quantize_target_names() {
  std::string s;
  for (uint32_t id = 0; id < kDTypeSlots; ++id) {
    if (!is_quantize_target(static_cast<DType>(id))) continue;
    if (!s.empty()) s += ", ";
    s += dtype_info(id).name;
  }
  return s;
}

Status can_quantize(DType type, int64_t n_cols, std::string_view name) {
  const std::string what = "tensor '" + std::string(name) + "'";
  if (!is_quantize_target(type))
    return InvalidArgument(what + ": cannot quantize to " + dtype_name(type) + " (targets: " +
                           quantize_target_names() + ")");
  if (n_cols < 0) return InvalidArgument(what + ": negative row length " + std::to_string(n_cols));
  const uint32_t block = dtype_info(type).block_size;
  if (n_cols % block != 0)
    return InvalidArgument(what + ": row length " + std::to_string(n_cols) + " is not a multiple of " +
                           std::to_string(block) + ", the " + dtype_name(type) + " block size");
  return Status::Ok();
}

size_t quantize_tensor(DType type, const float* src, void* dst, int64_t n_rows, int64_t n_cols) {
  if (n_rows < 0 || !can_quantize(type, n_cols, "").ok()) return 0;
  const size_t row = row_bytes(type, static_cast<uint64_t>(n_cols));
  const FromFloatFn quantize = dtype_info(type).from_float;
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < n_rows; ++r, src += n_cols, out += row) quantize(src, out, n_cols);
  return row * static_cast<size_t>(n_rows);
}

namespace {

// The fp16 fields of each block type Ember writes (the scales and mins whose overflow
// row_data_finite() detects); a second offset of 0 means none (no block keeps a
// second fp16 field first).
struct HalfFields {
  DType type;
  size_t first, second;
};
constexpr HalfFields kHalfFields[] = {
    {DType::Q8_0, offsetof(BlockQ8_0, d), 0},        {DType::Q4_0, offsetof(BlockQ4_0, d), 0},
    {DType::Q4_1, offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)},
    {DType::Q5_0, offsetof(BlockQ5_0, d), 0},        {DType::Q5_1, offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)},
    {DType::IQ4_NL, offsetof(BlockIQ4_NL, d), 0},    {DType::Q2_K, offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)},
    {DType::Q3_K, offsetof(BlockQ3_K, d), 0},        {DType::Q4_K, offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)},
    {DType::Q5_K, offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)},
    {DType::Q6_K, offsetof(BlockQ6_K, d), 0},        {DType::IQ4_XS, offsetof(BlockIQ4_XS, d), 0},
};

bool half_ok(const uint8_t* at) {
  uint16_t h;
  std::memcpy(&h, at, 2);
  return (h & 0x7C00u) != 0x7C00u;  // exponent all ones: Inf or NaN
}

}  // namespace

bool row_data_finite(DType type, const void* row, int64_t n_cols) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  switch (type) {
    case DType::F32:
      for (int64_t i = 0; i < n_cols; ++i) {
        float f;
        std::memcpy(&f, p + 4 * i, 4);
        if (!std::isfinite(f)) return false;
      }
      return true;
    case DType::F16:
      for (int64_t i = 0; i < n_cols; ++i)
        if (!half_ok(p + 2 * i)) return false;
      return true;
    case DType::BF16:
      for (int64_t i = 0; i < n_cols; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        if ((h & 0x7F80u) == 0x7F80u) return false;
      }
      return true;
    default:
      break;
  }
  const TypeTraits& info = dtype_info(type);
  for (const HalfFields& f : kHalfFields) {
    if (f.type != type) continue;
    for (int64_t b = 0; b < n_cols / info.block_size; ++b) {
      const uint8_t* block = p + b * info.type_size;
      if (!half_ok(block + f.first) || (f.second != 0 && !half_ok(block + f.second))) return false;
    }
  }
  return true;
}

}  // namespace ember
