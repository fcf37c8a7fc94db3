// Reference quantizers (quant/quantize.h):
//   - Q8_0 / Q4_0 reproduce the fixtures' blocks (made by ggml's reference quantizers)
//     byte for byte, for every 2-D tensor of every F32 fixture with quantized twins; every
//     other written type (Q4_1 .. Q6_K, IQ4_NL, IQ4_XS) every tensor llama.cpp's quantizer
//     wrote into the tiny-llama256 files;
//   - dequantize(quantize(x)) within DERIVED bounds (each test states its bound);
//   - every int4 / int8 code decodes exactly; K-quant packings round-trip every value;
//   - edge cases: zero rows, one huge value, negative extremes, tiny values: no NaN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "quant/convert.h"
#include "quant/fp16.h"
#include "quant/quantize.h"
#include "quant/unpack.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using testing::fixture;

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = nd(g);
  return v;
}

// quantize_tensor + to_float_row over one row-major matrix.
std::vector<float> round_trip(DType type, const std::vector<float>& x, int64_t cols,
                              std::vector<uint8_t>* blocks = nullptr) {
  const int64_t rows = static_cast<int64_t>(x.size()) / cols;
  const size_t rb = row_bytes(type, cols);
  std::vector<uint8_t> q(rb * rows + 1);
  EXPECT_EQ(quantize_tensor(type, x.data(), q.data(), rows, cols), rb * rows);
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) EXPECT_TRUE(to_float_row(type, q.data() + r * rb, y.data() + r * cols, cols));
  if (blocks) *blocks = std::move(q);
  return y;
}

double nmse(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    s += double(x[i]) * x[i];
  }
  return s > 0 ? e / s : e;
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
}

// ---- byte-exact against the fixtures --------------------------------------------------

struct FixturePair {
  const char* f32;
  const char* quantized;
};

// Every 2-D tensor of the quantized file, quantized from the F32 file to the type the
// fixture holds, must give exactly the fixture's bytes; 1-D tensors are copies.
TEST(QuantFixtures, Q8_0AndQ4_0MatchTheFixturesByteForByte) {
  const FixturePair pairs[] = {
      {"models/tiny-llama-gqa-f32.gguf", "models/tiny-llama-gqa-q8_0.gguf"},
      {"models/tiny-llama-gqa-f32.gguf", "models/tiny-llama-gqa-q4_0.gguf"},
      {"models/tiny-gemma-f32.gguf", "models/tiny-gemma-q8_0.gguf"},
      {"models/tiny-gemma-f32.gguf", "models/tiny-gemma-q4_0.gguf"},
      {"models/octopus-tiny/octopus-tiny.gguf", "models/octopus-tiny/octopus-tiny-q8_0.gguf"},
      {"models/octopus-tiny/octopus-tiny.gguf", "models/octopus-tiny/octopus-tiny-q4_0.gguf"},
  };
  int n_q8 = 0, n_q4 = 0;
  for (const FixturePair& p : pairs) {
    SCOPED_TRACE(p.quantized);
    std::unique_ptr<GgufFile> src, ref;
    ASSERT_TRUE(GgufFile::Open(fixture(p.f32), &src).ok());
    ASSERT_TRUE(GgufFile::Open(fixture(p.quantized), &ref).ok());
    ASSERT_EQ(src->tensors().size(), ref->tensors().size());
    int n_2d = 0;
    for (const GgufTensor& rt : ref->tensors()) {
      SCOPED_TRACE(rt.name);
      const GgufTensor* st = src->FindTensor(rt.name);
      ASSERT_NE(st, nullptr);
      ASSERT_EQ(st->type, DType::F32);
      ASSERT_EQ(st->n_elements, rt.n_elements);
      if (rt.n_dims == 1) {
        EXPECT_EQ(rt.type, DType::F32);
        EXPECT_EQ(std::memcmp(st->data, rt.data, rt.nbytes), 0);
        continue;
      }
      ++n_2d;
      ASSERT_TRUE(can_quantize(rt.type, rt.ne[0], rt.name).ok());
      std::vector<uint8_t> out(rt.nbytes);
      ASSERT_EQ(quantize_tensor(rt.type, reinterpret_cast<const float*>(st->data), out.data(), rt.rows(), rt.ne[0]),
                rt.nbytes);
      size_t first_diff = rt.nbytes;
      for (size_t i = 0; i < rt.nbytes; ++i)
        if (out[i] != rt.data[i]) {
          first_diff = i;
          break;
        }
      EXPECT_EQ(first_diff, rt.nbytes) << "first differing byte " << first_diff << " of " << rt.nbytes << " ("
                                       << dtype_name(rt.type) << ")";
      n_q8 += rt.type == DType::Q8_0;
      n_q4 += rt.type == DType::Q4_0;
    }
    EXPECT_GT(n_2d, 0);
  }
  // Counts from the fixture READMEs: tiny-llama 30 Q8_0 | 29 Q4_0 + 1 Q8_0; tiny-gemma
  // 22 | 21 + 1; octopus-tiny 43 | 42 + 1.
  EXPECT_EQ(n_q8, 30 + 1 + 22 + 1 + 43 + 1);
  EXPECT_EQ(n_q4, 29 + 21 + 42);
}

// The 32-element types llama.cpp's quantizer wrote into the tiny-llama256 files (no
// importance matrix): every tensor of type `want` must be what the reference quantizer
// makes of the F32 file's tensor, byte for byte (the files' other types, the Q6_K output
// matrix among them: EveryLlama256TensorMatchesLlamaCppByteForByte below).
TEST(QuantFixtures, Q4_1Q5_0Q5_1MatchLlamaCppByteForByte) {
  const std::pair<const char*, DType> files[] = {{"models/tiny-llama256-q4_1.gguf", DType::Q4_1},
                                                 {"models/tiny-llama256-q5_0.gguf", DType::Q5_0},
                                                 {"models/tiny-llama256-q5_1.gguf", DType::Q5_1}};
  std::unique_ptr<GgufFile> src;
  ASSERT_TRUE(GgufFile::Open(fixture("models/tiny-llama256-f32.gguf"), &src).ok());
  for (const auto& [file, want] : files) {
    SCOPED_TRACE(file);
    std::unique_ptr<GgufFile> ref;
    ASSERT_TRUE(GgufFile::Open(fixture(file), &ref).ok());
    int n = 0;
    for (const GgufTensor& rt : ref->tensors()) {
      if (rt.type != want) continue;
      SCOPED_TRACE(rt.name);
      const GgufTensor* st = src->FindTensor(rt.name);
      ASSERT_TRUE(st && st->type == DType::F32 && st->n_elements == rt.n_elements);
      std::vector<uint8_t> out(rt.nbytes);
      ASSERT_EQ(quantize_tensor(want, reinterpret_cast<const float*>(st->data), out.data(), rt.rows(), rt.ne[0]),
                rt.nbytes);
      EXPECT_EQ(std::memcmp(out.data(), rt.data, rt.nbytes), 0);
      ++n;
    }
    EXPECT_EQ(n, 2 * 7 + 1) << "token_embd and 7 matrices per layer";  // the fixture README's table
  }
}

// ---- decoding: every code ---------------------------------------------------------------

// All 16 int4 codes, in both nibble positions, decode as (q - 8) * d exactly, for
// scales of both signs, a subnormal fp16 scale and zero.
TEST(QuantDecode, EveryInt4CodeOfQ4_0) {
  for (uint16_t dh : {uint16_t{0x3C00}, fp32_to_fp16(0.0371f), fp32_to_fp16(-2.5f), uint16_t{0x0001}, uint16_t{0}}) {
    const float d = fp16_to_fp32(dh);
    BlockQ4_0 b{};
    b.d = dh;
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    float y[32];
    dequantize_row_q4_0(&b, y, 32);
    for (int q = 0; q < 16; ++q) {
      EXPECT_EQ(y[q], static_cast<float>(q - 8) * d) << "low nibble q=" << q << " d=" << d;
      EXPECT_EQ(y[16 + q], static_cast<float>((15 - q) - 8) * d) << "high nibble q=" << 15 - q << " d=" << d;
    }
  }
}

TEST(QuantDecode, EveryInt8CodeOfQ8_0) {
  const uint16_t dh = fp32_to_fp16(0.0123f);
  for (int start = -128; start < 128; start += 32) {
    BlockQ8_0 b{};
    b.d = dh;
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(start + j);
    float y[32];
    dequantize_row_q8_0(&b, y, 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], static_cast<float>(start + j) * fp16_to_fp32(dh));
  }
}

// Q4_K: every 6-bit value of every scale and min slot survives pack + unpack, with
// the other 15 fields holding other values (so no field leaks into another).
TEST(QuantPacking, Q4_KScalesAndMinsRoundTripAll64Values) {
  std::mt19937 g(7);
  for (int slot = 0; slot < 8; ++slot) {
    for (int v = 0; v < 64; ++v) {
      for (int which = 0; which < 2; ++which) {
        uint8_t sc[8], m[8];
        for (int s = 0; s < 8; ++s) {
          sc[s] = static_cast<uint8_t>(g() & 63);
          m[s] = static_cast<uint8_t>(g() & 63);
        }
        (which ? m : sc)[slot] = static_cast<uint8_t>(v);
        uint8_t packed[12];
        pack_scales_q4_K(sc, m, packed);
        uint64_t sc_bytes, m_bytes;  // the kernels' word-wise unpacker (quant/unpack.h)
        q4_K_scales_mins_bytes(packed, &sc_bytes, &m_bytes);
        for (int s = 0; s < 8; ++s) {
          uint8_t a, b;
          unpack_scale_min_q4_K(s, packed, &a, &b);
          ASSERT_EQ(a, sc[s]) << "slot " << s << " value " << v;
          ASSERT_EQ(b, m[s]) << "slot " << s << " value " << v;
          ASSERT_EQ((sc_bytes >> (8 * s)) & 0xFF, sc[s]) << "word-wise, slot " << s;
          ASSERT_EQ((m_bytes >> (8 * s)) & 0xFF, m[s]) << "word-wise, slot " << s;
        }
      }
    }
  }
}

// Q6_K: every 6-bit code at every one of the 256 positions survives pack + unpack,
// and decodes as d * scale[i/16] * (q - 32).
TEST(QuantPacking, Q6_KCodesRoundTripAll64ValuesAtEveryPosition) {
  std::mt19937 g(11);
  BlockQ6_K b{};
  b.d = fp32_to_fp16(0.25f);
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s * 17 - 128);
  for (int v = 0; v < 64; ++v) {
    uint8_t q[kQKK], back[kQKK];
    for (int i = 0; i < kQKK; ++i) q[i] = static_cast<uint8_t>((v + i * 7 + (g() & 1)) & 63);
    pack_q6_K(q, &b);
    unpack_q6_K(b, back);
    ASSERT_EQ(std::memcmp(q, back, kQKK), 0) << "pattern " << v;
    float y[kQKK];
    dequantize_row_q6_K(&b, y, kQKK);
    for (int i = 0; i < kQKK; ++i) ASSERT_EQ(y[i], 0.25f * b.scales[i / 16] * (q[i] - 32)) << i;
  }
  // Every value at every position: position i carries value (i + v) mod 64.
  for (int v = 0; v < 64; ++v) {
    uint8_t q[kQKK], back[kQKK];
    for (int i = 0; i < kQKK; ++i) q[i] = static_cast<uint8_t>((i + v) & 63);
    pack_q6_K(q, &b);
    unpack_q6_K(b, back);
    ASSERT_EQ(std::memcmp(q, back, kQKK), 0) << "shift " << v;
  }
}

// The layout in blocks.h, spelled out once independently of pack/unpack.
TEST(QuantPacking, Q4_KNibbleLayoutMatchesBlocksH) {
  BlockQ4_K b{};
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(0.0f);
  uint8_t sc[8] = {1, 1, 1, 1, 1, 1, 1, 1}, m[8] = {};
  pack_scales_q4_K(sc, m, b.scales);
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 32; ++i) b.qs[32 * c + i] = static_cast<uint8_t>((i & 15) | (((i + c) & 15) << 4));
  float y[kQKK];
  dequantize_row_q4_K(&b, y, kQKK);
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(y[64 * c + i], static_cast<float>(i & 15));             // sub-block 2c: low nibbles
      EXPECT_EQ(y[64 * c + 32 + i], static_cast<float>((i + c) & 15));  // sub-block 2c+1: high nibbles
    }
}

// ---- error bounds -----------------------------------------------------------------------

// Q8_0. The quantizer rounds x / d_f32 to the nearest integer, d_f32 = amax/127 in
// float, so |x - q*d_f32| <= d_f32/2 (plus float rounding of x*(1/d_f32): at most
// 3 * 2^-24 relative on a value <= 127, i.e. 127*2^-22 * d). The file stores
// d16 = fp16(d_f32), which moves each value by |q| * |d16 - d_f32| <= 127 * |d16 - d_f32|
// (|d16 - d_f32| <= 2^-11 d_f32 for normal halves). Bound per element:
//   |x - q*d16| <= d_f32/2 + 127*|d16 - d_f32| + 127*2^-22*d_f32.
// The rounding step alone meets the d/2 figure: |x - q*d_f32| <= d_f32/2 (+ float slack).
TEST(QuantBounds, Q8_0ErrorWithinHalfAStepPlusTheScaleRounding) {
  for (float sigma : {1.0f, 1e-3f, 3e-6f, 100.0f}) {
    std::vector<float> x = gaussian(32 * 512, 3, sigma);
    std::vector<uint8_t> q;
    std::vector<float> y = round_trip(DType::Q8_0, x, 32 * 16, &q);
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(q.data());
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * blk + j]));
      const double d32 = amax / 127.0f, d16 = fp16_to_fp32(b[blk].d);
      const double bound = d32 / 2 + 127 * std::fabs(d16 - d32) + 127 * std::ldexp(d32, -22);
      for (int j = 0; j < 32; ++j) {
        const size_t i = 32 * blk + j;
        ASSERT_LE(std::fabs(double(x[i]) - double(b[blk].qs[j]) * d32), d32 / 2 * (1 + std::ldexp(1.0, -20)))
            << "sigma " << sigma << " element " << i;
        ASSERT_LE(std::fabs(double(x[i]) - y[i]), bound) << "sigma " << sigma << " element " << i;
      }
      if (d32 >= std::ldexp(1.0, -14)) {  // normal fp16 scale: rounding of d is at most 2^-11 relative
        ASSERT_LE(std::fabs(d16 - d32), std::ldexp(d32, -11));
      } else {  // subnormal: absolute half-unit 2^-25
        ASSERT_LE(std::fabs(d16 - d32), std::ldexp(1.0, -25));
      }
    }
  }
}

// Q4_0. d_f32 = max/-8 (max: the signed extreme), codes q = min(15, trunc(x/d_f32 + 8.5)),
// so x/d_f32 in [-8, 8] rounds to the nearest of -8..7: |x - (q-8)*d_f32| <= |d_f32|/2,
// except where x/d_f32 > 7.5 (only on the side opposite the extreme, which code 15 = +7
// caps): there the error is (x/d_f32 - 7)*|d_f32| <= |d_f32|. The stored fp16 scale adds
// |q-8| * |d16 - d_f32| <= 8*|d16 - d_f32|; float rounding adds < 2^-18 |d_f32|.
TEST(QuantBounds, Q4_0ErrorWithinHalfAStepExceptTheCappedSide) {
  for (float sigma : {1.0f, 1e-2f, 50.0f}) {
    std::vector<float> x = gaussian(32 * 1024, 5, sigma);
    std::vector<uint8_t> q;
    std::vector<float> y = round_trip(DType::Q4_0, x, 32 * 8, &q);
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(q.data());
    int capped = 0;
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
      float amax = 0, max = 0;
      for (int j = 0; j < 32; ++j)
        if (amax < std::fabs(x[32 * blk + j])) {
          amax = std::fabs(x[32 * blk + j]);
          max = x[32 * blk + j];
        }
      const double d32 = max / -8.0f, d16 = fp16_to_fp32(b[blk].d);
      for (int j = 0; j < 32; ++j) {
        const size_t i = 32 * blk + j;
        const double t = x[i] / d32;  // in [-8, 8]
        const double step_err = t > 7.5 ? (t - 7) : 0.5;
        capped += t > 7.5;
        const double bound = step_err * std::fabs(d32) + 8 * std::fabs(d16 - d32) + std::ldexp(std::fabs(d32), -18);
        ASSERT_LE(std::fabs(double(x[i]) - y[i]), bound) << "sigma " << sigma << " element " << i << " t " << t;
      }
      // The extreme itself is exact up to the scale rounding: code 0 = -8 * d.
    }
    EXPECT_GT(capped, 0) << "the capped side was exercised";
  }
}

// K-quants: NMSE against a derived figure, the uniform-rounding model. A grid of step
// h rounds with error uniform in [-h/2, h/2]: mean square h^2/12. Figures per sub-block:
//   Q4_K: 16 levels spanning [min(0, lo), hi] of 32 weights: h = (hi - min(0,lo)) / 15;
//   Q6_K: codes -32..31, the extreme of 16 weights at -32: h = amax / 32.
// model NMSE = sum_s n_s * h_s^2 / 12 / sum x^2. The quantizers search scales that
// lower the (weighted) error below the plain grid's, and the 6-/8-bit sub-block scales
// cost a little back, so the measured NMSE must stay below the model figure; the test
// also requires it to be at least a third of it (a quantizer that fits too well is
// suspect too: it would be storing more than the format holds).
// step(lo, hi, amax) of a sub-block (lo <= 0 <= hi) -> the model's grid step h.
template <class Step>
double model_nmse(const std::vector<float>& x, int sub, Step step) {
  double e = 0, s = 0;
  for (size_t b = 0; b < x.size(); b += sub) {
    float lo = 0, hi = 0, amax = 0;
    for (int i = 0; i < sub; ++i) {
      lo = std::min(lo, x[b + i]);
      hi = std::max(hi, x[b + i]);
      amax = std::max(amax, std::fabs(x[b + i]));
      s += double(x[b + i]) * x[b + i];
    }
    const double h = step(lo, hi, amax);
    e += sub * h * h / 12;
  }
  return e / s;
}
// The grids: n+1 levels spanning [min(0, lo), hi] (asymmetric, with a min), or
// signed codes whose extreme -n holds amax (symmetric).
auto asym_step(int n) {
  return [n](float lo, float hi, float) { return double(hi - lo) / n; };
}
auto sym_step(double n) {
  return [n](float, float, float amax) { return double(amax) / n; };
}

TEST(QuantBounds, Q4_KNmseBelowTheUniformRoundingModel) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<float> x = gaussian(256 * 256, seed, 0.02f);
    const double model = model_nmse(x, 32, asym_step(15));
    const double got = nmse(x, round_trip(DType::Q4_K, x, 256 * 4));
    RecordProperty("q4_k_nmse_seed" + std::to_string(seed), std::to_string(got) + " (model " + std::to_string(model) + ")");
    EXPECT_LT(got, model) << "seed " << seed;
    EXPECT_GT(got, model / 3) << "seed " << seed;
    // Gaussian weights: model ~6.5e-3, measured ~5.1e-3 (these seeds).
    EXPECT_LT(got, 6e-3);
  }
}

TEST(QuantBounds, Q6_KNmseBelowTheUniformRoundingModel) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<float> x = gaussian(256 * 256, seed, 0.02f);
    const double model = model_nmse(x, 16, sym_step(32));
    const double got = nmse(x, round_trip(DType::Q6_K, x, 256 * 4));
    RecordProperty("q6_k_nmse_seed" + std::to_string(seed), std::to_string(got) + " (model " + std::to_string(model) + ")");
    EXPECT_LT(got, model) << "seed " << seed;
    EXPECT_GT(got, model / 3) << "seed " << seed;
    // Gaussian weights: model ~3.7e-4, measured ~3.2e-4 (these seeds).
    EXPECT_LT(got, 3.5e-4);
  }
}

// Q8_K (activations): nearest rounding against d = max/-127 (f32, not rounded), so
// |x - q*d| <= |d|/2 + float slack; bsums are the sums of 16 codes.
// The types added for llama.cpp's files (Q2_K, Q3_K, Q5_K, IQ4_XS): llama.cpp's
// quantizer made the fixtures' tensors from tiny-llama256-f32's weights, so decoding
// them must give those weights back within the type's rounding model (above). A wrong
// bit layout decodes to noise (NMSE ~1 or more), far outside it. The lower bound (a
// third of the model) guards against decoding that is "too good" to come from the
// format. IQ4_XS's 16 non-uniform levels are modelled as 16 uniform ones across
// [-amax, amax] (step amax / 7.5).
TEST(QuantFixtures, ReadOnlyTypesDecodeLlamaCppTensorsWithinTheirRoundingModel) {
  struct Case {
    const char* file;
    DType type;
    int sub;
    std::function<double(float, float, float)> step;
  };
  const Case cases[] = {{"models/tiny-llama256-q2_k.gguf", DType::Q2_K, 16, asym_step(3)},
                        {"models/tiny-llama256-q2_k.gguf", DType::Q3_K, 16, sym_step(4)},
                        {"models/tiny-llama256-q3_k_m.gguf", DType::Q5_K, 32, asym_step(31)},
                        {"models/tiny-llama256-iq4_xs.gguf", DType::IQ4_XS, 32, sym_step(7.5)}};
  std::unique_ptr<GgufFile> src;
  ASSERT_TRUE(GgufFile::Open(fixture("models/tiny-llama256-f32.gguf"), &src).ok());
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.file) + " " + dtype_name(c.type));
    std::unique_ptr<GgufFile> q;
    ASSERT_TRUE(GgufFile::Open(fixture(c.file), &q).ok());
    int n = 0;
    for (const GgufTensor& t : q->tensors()) {
      if (t.type != c.type) continue;
      SCOPED_TRACE(t.name);
      const GgufTensor* st = src->FindTensor(t.name);
      ASSERT_TRUE(st && st->type == DType::F32 && st->n_elements == t.n_elements);
      const float* w = reinterpret_cast<const float*>(st->data);
      std::vector<float> x(w, w + t.n_elements), y(t.n_elements);
      ASSERT_TRUE(to_float_row(t.type, t.data, y.data(), y.size()));
      const double model = model_nmse(x, c.sub, c.step), got = nmse(x, y);
      RecordProperty(t.name + "_" + dtype_name(c.type), std::to_string(got / model) + " of the model");
      EXPECT_LT(got, model);
      EXPECT_GT(got, model / 3);
      ++n;
    }
    EXPECT_GT(n, 0);
  }
}

TEST(QuantBounds, Q8_KWithinHalfAStepAndBsumsAreSums) {
  std::vector<float> x = gaussian(256 * 16, 9, 3.0f);
  std::vector<BlockQ8_K> b(16);
  quantize_row_q8_K_ref(x.data(), b.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  dequantize_row_q8_K(b.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t blk = 0; blk < b.size(); ++blk) {
    const double d = std::fabs(b[blk].d);
    for (int j = 0; j < 256; ++j)
      ASSERT_LE(std::fabs(double(x[256 * blk + j]) - y[256 * blk + j]), d / 2 * (1 + 1e-5)) << blk << " " << j;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += b[blk].qs[16 * g + i];
      EXPECT_EQ(b[blk].bsums[g], sum);
    }
  }
}

// ---- edge cases ---------------------------------------------------------------------------

const DType kBlockTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q6_K};

TEST(QuantEdges, AllZeroRowsDecodeToZero) {
  std::vector<float> x(512, 0.0f);
  for (DType t : kBlockTypes) {
    std::vector<float> y = round_trip(t, x, 512);
    for (float v : y) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
  std::vector<BlockQ8_K> b(2);
  quantize_row_q8_K_ref(x.data(), b.data(), 512);
  EXPECT_EQ(b[0].d, 0.0f);
}

// One value 1e4 among values ~1e-3: the huge value is reproduced within its block's
// step; the small ones land within the same bound of their true value (they decode
// to about zero) and nothing is NaN.
TEST(QuantEdges, SingleHugeValue) {
  std::vector<float> x = gaussian(512, 13, 1e-3f);
  x[77] = 1e4f;
  x[300] = -2.5e4f;
  for (DType t : kBlockTypes) {
    SCOPED_TRACE(dtype_name(t));
    std::vector<float> y = round_trip(t, x, 512);
    ASSERT_TRUE(all_finite(y));
    // Step of the block holding the huge value (bound: one step of the largest grid).
    const double step = t == DType::Q8_0 ? 2.5e4 / 127 : t == DType::Q4_0 ? 2.5e4 / 8 : t == DType::Q6_K ? 2.5e4 / 32 : 2.5e4 / 15;
    for (size_t i = 0; i < x.size(); ++i) ASSERT_LE(std::fabs(double(x[i]) - y[i]), step) << i;
    EXPECT_NEAR(y[77], 1e4, step / 2 * 1.1);
    EXPECT_NEAR(y[300], -2.5e4, step / 2 * 1.1);
  }
}

// Rows whose extreme is negative (and rows that are entirely negative or constant):
// the sign of the scale flips, the error bounds hold the same way.
TEST(QuantEdges, NegativeMaxAndConstantRows) {
  std::vector<float> x = gaussian(1024, 17, 1.0f);
  for (float& v : x) v = -std::fabs(v) - 0.5f;  // all negative
  for (DType t : kBlockTypes) {
    SCOPED_TRACE(dtype_name(t));
    std::vector<float> y = round_trip(t, x, 512);
    ASSERT_TRUE(all_finite(y));
    // Loose shared figure: a 4-bit grid over a range of at most max|x| ~ 4.5 in 15 steps.
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(double(x[i]) - y[i]));
    EXPECT_LE(worst, 4.6 / 15 + 1e-3);
    EXPECT_LT(nmse(x, y), 1e-2);
  }
  for (float c : {-3.0f, 2.0f, 1e-20f, -1e-30f}) {
    std::vector<float> k(512, c);
    for (DType t : kBlockTypes) {
      std::vector<float> y = round_trip(t, k, 512);
      for (float v : y) {
        ASSERT_TRUE(std::isfinite(v)) << dtype_name(t) << " c=" << c;
        // fp16 scales: relative 2^-11 per stored scale (two for Q4_K/Q6_K) plus the
        // subnormal floor 2^-24 * code for tiny constants.
        ASSERT_LE(std::fabs(double(v) - c), std::fabs(c) * 4e-3 + 1e-6) << dtype_name(t) << " c=" << c;
      }
    }
  }
}

TEST(QuantEdges, TinyAndMixedMagnitudesAreNaNFree) {
  std::mt19937 g(23);
  std::vector<float> x(256 * 32);
  for (size_t i = 0; i < x.size(); ++i) {
    const int e = static_cast<int>(g() % 60) - 45;  // 1e-45 .. 1e14 range of exponents (base 2 below)
    x[i] = std::ldexp((g() & 1) ? 1.0f : -1.0f, std::clamp(e, -149, 14));
    if (g() % 7 == 0) x[i] = 0;
  }
  for (DType t : kBlockTypes) {
    std::vector<float> y = round_trip(t, x, 256);
    EXPECT_TRUE(all_finite(y)) << dtype_name(t);
  }
}

// ---- tensor-level API ----------------------------------------------------------------------

TEST(QuantTensor, RowsAreIndependent) {
  std::vector<float> x = gaussian(512 * 3, 29);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q6_K}) {
    const size_t rb = row_bytes(t, 512);
    std::vector<uint8_t> all(rb * 3), one(rb);
    ASSERT_EQ(quantize_tensor(t, x.data(), all.data(), 3, 512), rb * 3);
    for (int r = 0; r < 3; ++r) {
      ASSERT_EQ(quantize_tensor(t, x.data() + 512 * r, one.data(), 1, 512), rb);
      EXPECT_EQ(std::memcmp(one.data(), all.data() + rb * r, rb), 0) << dtype_name(t) << " row " << r;
    }
  }
}

TEST(QuantTensor, FloatTargetsConvert) {
  std::vector<float> x = gaussian(64, 31);
  std::vector<float> y = round_trip(DType::F32, x, 64);
  EXPECT_EQ(x, y);
  y = round_trip(DType::F16, x, 64);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], fp16_to_fp32(fp32_to_fp16(x[i])));
  y = round_trip(DType::BF16, x, 64);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], bf16_to_fp32(fp32_to_bf16(x[i])));
}

TEST(QuantTensor, CanQuantizeNamesTheTensorAndTheShape) {
  EXPECT_TRUE(can_quantize(DType::Q4_K, 2048, "x").ok());
  Status s = can_quantize(DType::Q4_K, 896, "blk.0.attn_q.weight");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("blk.0.attn_q.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("896"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("256"), std::string::npos) << s.message();
  s = can_quantize(DType::Q8_0, 100, "t");
  EXPECT_NE(s.message().find("32"), std::string::npos) << s.message();
  s = can_quantize(DType::IQ2_XXS, 256, "t");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("iq2_xxs"), std::string::npos) << s.message();
  std::vector<float> x(100);
  std::vector<uint8_t> out(1024);
  EXPECT_EQ(quantize_tensor(DType::Q8_0, x.data(), out.data(), 1, 100), 0u);
}

TEST(QuantTensor, ToFloatCoversTheBlockTypes) {
  for (DType t : kBlockTypes) EXPECT_TRUE(has_to_float(t)) << dtype_name(t);
  EXPECT_FALSE(has_to_float(DType::IQ2_XXS));
  std::vector<uint8_t> buf(1024);
  float y[64];
  EXPECT_FALSE(to_float_row(DType::Q8_0, buf.data(), y, 33));  // not whole blocks
}

// ---- the K-quants and IQ4 types llama.cpp's quantizer writes (quant/quantize_k.cpp) --------

const DType kWrittenKTypes[] = {DType::Q2_K, DType::Q3_K, DType::Q5_K, DType::IQ4_NL, DType::IQ4_XS};

// Every 2-D tensor of every tiny-llama256 file, whatever its type (the mixes put Q3_K,
// Q4_K, Q5_K and Q6_K on attn_v / attn_output / ffn_down, Q6_K on the output matrix), is
// what the type table's reference quantizer makes of the F32 file's tensor, byte for byte:
// llama.cpp b10256 wrote them with no importance matrix. Counts per type from the fixture
// README's table (16 matrices per file).
TEST(QuantFixtures, EveryLlama256TensorMatchesLlamaCppByteForByte) {
  std::unique_ptr<GgufFile> src;
  ASSERT_TRUE(GgufFile::Open(fixture("models/tiny-llama256-f32.gguf"), &src).ok());
  std::map<DType, int> n_by_type;
  for (const char* file : {"q2_k", "q3_k_m", "q4_1", "q4_k_s", "q5_0", "q5_1", "q5_k_m", "q6_k", "iq4_nl", "iq4_xs"}) {
    std::unique_ptr<GgufFile> ref;
    ASSERT_TRUE(GgufFile::Open(fixture(std::string("models/tiny-llama256-") + file + ".gguf"), &ref).ok());
    for (const GgufTensor& rt : ref->tensors()) {
      if (rt.n_dims < 2) continue;
      SCOPED_TRACE(std::string(file) + " " + rt.name + " " + dtype_name(rt.type));
      const GgufTensor* st = src->FindTensor(rt.name);
      ASSERT_TRUE(st && st->type == DType::F32 && st->n_elements == rt.n_elements);
      const FromFloatFn quantize = dtype_info(rt.type).from_float;
      ASSERT_NE(quantize, nullptr);
      const int64_t cols = rt.ne[0];
      const size_t rb = row_bytes(rt.type, cols);
      std::vector<uint8_t> out(rt.nbytes);
      for (int64_t r = 0; r < rt.rows(); ++r)
        quantize(reinterpret_cast<const float*>(st->data) + r * cols, out.data() + r * rb, cols);
      size_t differing = 0;
      const size_t block = dtype_info(rt.type).type_size;
      for (size_t b = 0; b < rt.nbytes / block; ++b) differing += std::memcmp(&out[b * block], rt.data + b * block, block) != 0;
      EXPECT_EQ(differing, 0u) << "blocks of " << rt.nbytes / block;
      ++n_by_type[rt.type];
    }
  }
  const std::map<DType, int> want = {{DType::Q2_K, 9},   {DType::Q3_K, 15},   {DType::Q4_K, 17},
                                     {DType::Q5_K, 17},  {DType::Q6_K, 27},   {DType::Q4_1, 15},
                                     {DType::Q5_0, 15},  {DType::Q5_1, 15},   {DType::IQ4_NL, 15},
                                     {DType::IQ4_XS, 15}};
  EXPECT_EQ(n_by_type, want);
}

// Round trips against the uniform-rounding model (model_nmse above, the same figures as
// ReadOnlyTypesDecodeLlamaCppTensorsWithinTheirRoundingModel): Gaussian rows, and rows of
// one sign (the asymmetric types' min, the symmetric types' sign of the scale), must
// stay below the model and above a third of it.
TEST(QuantBounds, WrittenKTypesNmseWithinTheirRoundingModel) {
  struct Case {
    DType type;
    int sub;
    std::function<double(float, float, float)> step;
  };
  const Case cases[] = {{DType::Q2_K, 16, asym_step(3)},
                        {DType::Q3_K, 16, sym_step(4)},
                        {DType::Q5_K, 32, asym_step(31)},
                        {DType::IQ4_NL, 32, sym_step(7.5)},
                        {DType::IQ4_XS, 32, sym_step(7.5)}};
  for (const Case& c : cases) {
    for (uint32_t seed : {1u, 2u}) {
      std::vector<float> x = gaussian(256 * 64, seed, 0.02f);
      if (seed == 2)
        for (float& v : x) v = -std::fabs(v);
      const double model = model_nmse(x, c.sub, c.step), got = nmse(x, round_trip(c.type, x, 256 * 4));
      RecordProperty(std::string(dtype_name(c.type)) + "_seed" + std::to_string(seed),
                     std::to_string(got / model) + " of the model");
      EXPECT_LT(got, model) << dtype_name(c.type) << " seed " << seed;
      EXPECT_GT(got, model / 3) << dtype_name(c.type) << " seed " << seed;
    }
  }
}

// The edge cases of QuantEdges above, for the written K types: zero rows decode to zero;
// constant rows within the fp16 rounding of their scales (relative 2^-11 per stored scale,
// two stored scales at most, plus the subnormal floor for tiny constants); values from
// 2^-149 to 2^14 decode finite. One huge value among values ~1e-3: its sub-block's codes
// take two values (the small ones share one), so every least-squares fit of these
// quantizers represents it exactly and only the fp16 rounding of the stored scales moves
// it (<= |x| 2^-10, plus the small values' share of the fitted min); the small values
// decode within one step of that sub-block's grid (IQ4: the grid level nearest zero,
// 1 * |d| with |d| <= max/113), plus the same fp16 rounding.
TEST(QuantEdges, WrittenKTypesZeroConstantHugeAndTinyRows) {
  for (DType t : kWrittenKTypes) {
    SCOPED_TRACE(dtype_name(t));
    for (float v : round_trip(t, std::vector<float>(512, 0.0f), 512)) ASSERT_EQ(v, 0.0f);
    for (float c : {-3.0f, 2.0f, 1e-20f, -1e-30f}) {
      for (float v : round_trip(t, std::vector<float>(512, c), 512))
        ASSERT_LE(std::fabs(double(v) - c), std::fabs(c) * 4e-3 + 1e-6) << "c=" << c;
    }
    std::vector<float> x = gaussian(512, 13, 1e-3f);
    x[77] = 1e4f;
    x[300] = -2.5e4f;
    std::vector<float> y = round_trip(t, x, 512);
    ASSERT_TRUE(all_finite(y));
    const double fp16_scales = std::ldexp(1.0, -10);
    EXPECT_NEAR(y[77], 1e4, 1e4 * fp16_scales + 0.01);
    EXPECT_NEAR(y[300], -2.5e4, 2.5e4 * fp16_scales + 0.01);
    const double levels = t == DType::Q2_K ? 3 : t == DType::Q3_K ? 4 : t == DType::Q5_K ? 31 : 113;
    for (size_t i = 0; i < x.size(); ++i) ASSERT_LE(std::fabs(double(x[i]) - y[i]), 2.5e4 / levels * (1 + fp16_scales)) << i;

    std::mt19937 g(23);
    std::vector<float> mixed(256 * 32);
    for (float& v : mixed) {
      v = std::ldexp((g() & 1) ? 1.0f : -1.0f, std::clamp(static_cast<int>(g() % 60) - 45, -149, 14));
      if (g() % 7 == 0) v = 0;
    }
    EXPECT_TRUE(all_finite(round_trip(t, mixed, 256)));
  }
}

// row_data_finite sees the fp16 scales of every written type: a scale beyond fp16's range
// (all values 1e9: Q2_K's d = 1e9/45) is flagged, a normal row is not.
TEST(QuantTensor, RowDataFiniteFlagsOverflowingScalesOfEveryWrittenType) {
  for (DType t : {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q5_K, DType::IQ4_NL,
                  DType::IQ4_XS}) {
    SCOPED_TRACE(dtype_name(t));
    std::vector<uint8_t> q(row_bytes(t, 256));
    std::vector<float> x = gaussian(256, 41);
    dtype_info(t).from_float(x.data(), q.data(), 256);
    EXPECT_TRUE(row_data_finite(t, q.data(), 256));
    for (float& v : x) v = 1e9f;
    dtype_info(t).from_float(x.data(), q.data(), 256);
    EXPECT_FALSE(row_data_finite(t, q.data(), 256));
  }
}

}  // namespace
}  // namespace ember
