// Quantized matmul: every table this CPU can run against the scalar reference
// (kernels/quant_scalar.cpp), and the reference against the block formulas.
//
// Exactness. The integer dot of a block is exact in every table, and the float side
// is the same sequence of IEEE operations per output (kernels.h), so every table must
// equal the reference BIT FOR BIT: quantizers, GEMV and GEMM, any row range, any
// token count, any thread count. No tolerance is involved in those comparisons.
//
// Against real arithmetic (the reference itself), derived bounds, u = 2^-24:
//  * dot: y = sum over m terms t_b = fl(fl(dw dx) fl(isum)) (m = blocks; 2 per block
//    for Q4_K), summed left to right. Each term has relative error <= 3u (two
//    multiplies, the int->float conversion; fp16 -> float is exact) and the sum adds
//    gamma_(m-1), so |y - exact| <= gamma_(m+2) sum_b |t_b|, gamma_j = j u / (1 - j u).
//    sum_b |t_b| <= sum_i |w_i x_i| (Q4_K: sum_i (|d sc q_i| + |dmin m|) |x_i|, its two
//    parts bounded separately). `exact` is computed in double from the dequantized
//    blocks (error <= K 2^-53 sum|.|, added to the bound).
//  * quantizer: Q8_0 q = round(x id), id = fl(1/fl(amax/127)), dequantized with
//    d' = fp16(d): |x - d' q| <= |x - d q| + |d - d'| |q| where |x - d q| <=
//    d (1/2 + 127 * 3u) (x id is within 3 roundings of x/d, |x/d| <= 127) and
//    |d - d'| <= 2^-11 d (fp16 rounding; fp16 subnormals: <= 2^-25 absolute). Q8_K
//    (q = rne(x s), s = fl(-127/max), d = fl(1/s)): |x - d q| <= |1/s| (1/2 + 256u)
//    (1 + u), |1/s| <= (amax/127)(1 + u): inside the same d (1/2 + 381u) (1 + 2u).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "loader/gguf.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize.h"
#include "support/fixtures.h"
#include "support/matmul.h"
#include "support/vnni_emulated.h"

namespace ember::kernels {
namespace {

constexpr double kU = 0x1p-24;

// Every table this CPU can run, then the AVX-VNNI code on emulated VNNI (AVX2 hosts).
std::vector<const Table*> tables() { return tables_with_emulated(); }

const DType kQTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q4_K, DType::Q6_K,
                          DType::Q5_K, DType::IQ4_XS, DType::Q2_K, DType::Q3_K};

size_t block_elems(DType t) { return dtype_info(t).block_size; }
size_t block_bytes(DType t) { return dtype_info(t).type_size; }

// The types whose dot takes a second float step per block, the min term (kernels.h).
bool has_min(DType t) {
  return t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q2_K;
}
bool is_super_block(DType t) { return block_elems(t) == kQKK; }

double gamma(size_t j) { return j * kU / (1 - j * kU); }

// The float terms of a row's dot (kernels.h): one per block, two for types with a min.
size_t float_terms(DType type, size_t K) { return K / block_elems(type) * (has_min(type) ? 2 : 1); }

// ---- random blocks ---------------------------------------------------------------------

// A random fp16 scale of magnitude in [2^-12, 2^-4), either sign when `sign`.
uint16_t random_scale(std::mt19937& g, bool sign = true) {
  std::uniform_real_distribution<float> mag(-12.0f, -4.0f);
  float v = std::exp2(mag(g));
  if (sign && (g() & 1)) v = -v;
  return fp32_to_fp16(v);
}

// One random weight block of `type` at p: random code bytes, random small scales.
void random_weight_block(std::mt19937& g, DType type, uint8_t* p) {
  const size_t bytes = block_bytes(type);
  for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(g());
  uint16_t d;
  switch (type) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::IQ4_NL:
      d = random_scale(g);
      std::memcpy(p, &d, 2);
      break;
    case DType::Q4_1:
    case DType::Q5_1: {
      d = random_scale(g);
      const uint16_t m = random_scale(g);
      std::memcpy(p, &d, 2);
      std::memcpy(p + 2, &m, 2);
      break;
    }
    case DType::Q4_K:
    case DType::Q5_K: {  // d and dmin first, both positive (as the quantizer writes them)
      d = random_scale(g, false);
      const uint16_t dmin = random_scale(g, false);
      std::memcpy(p, &d, 2);
      std::memcpy(p + 2, &dmin, 2);
      break;
    }
    case DType::Q6_K:
      d = random_scale(g);
      std::memcpy(p + offsetof(BlockQ6_K, d), &d, 2);
      break;
    case DType::IQ4_XS:
      d = random_scale(g);
      std::memcpy(p, &d, 2);
      break;
    case DType::Q2_K: {
      d = random_scale(g, false);
      const uint16_t dmin = random_scale(g, false);
      std::memcpy(p + offsetof(BlockQ2_K, d), &d, 2);
      std::memcpy(p + offsetof(BlockQ2_K, dmin), &dmin, 2);
      break;
    }
    case DType::Q3_K:
      d = random_scale(g);
      std::memcpy(p + offsetof(BlockQ3_K, d), &d, 2);
      break;
    default: FAIL() << "type";
  }
}

// Random activation block (codes in [-127, 127], consistent bsums).
void random_act_block(std::mt19937& g, DType act, uint8_t* p) {
  std::uniform_int_distribution<int> code(-127, 127);
  if (act == DType::Q8_0) {
    BlockQ8_0 b;
    b.d = random_scale(g);
    for (auto& q : b.qs) q = static_cast<int8_t>(code(g));
    std::memcpy(p, &b, sizeof b);
  } else {
    BlockQ8_K b;
    b.d = fp16_to_fp32(random_scale(g)) * 0.75f;  // a float scale, not an fp16 one
    for (auto& q : b.qs) q = static_cast<int8_t>(code(g));
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += b.qs[16 * j + i];
      b.bsums[j] = static_cast<int16_t>(s);
    }
    std::memcpy(p, &b, sizeof b);
  }
}

// ---- dequantization straight from quant/blocks.h (independent of the kernels) ------

struct Deq {
  std::vector<double> v;    // the weights
  std::vector<double> mag;  // |scale part| + |min part| per weight, for the bound
};

void dequant_block(DType type, const uint8_t* p, double* v, double* mag) {
  auto h = [&](size_t off) {
    uint16_t x;
    std::memcpy(&x, p + off, 2);
    return double(fp16_to_fp32(x));
  };
  switch (type) {
    case DType::Q8_0: {
      const double d = h(0);
      for (int i = 0; i < 32; ++i) v[i] = d * int8_t(p[2 + i]);
      for (int i = 0; i < 32; ++i) mag[i] = std::fabs(v[i]);
      break;
    }
    case DType::Q4_0: {
      const double d = h(0);
      for (int j = 0; j < 16; ++j) {
        v[j] = d * ((p[2 + j] & 0x0F) - 8);
        v[j + 16] = d * ((p[2 + j] >> 4) - 8);
      }
      for (int i = 0; i < 32; ++i) mag[i] = std::fabs(v[i]);
      break;
    }
    case DType::IQ4_NL: {
      const double d = h(0);
      for (int j = 0; j < 16; ++j) {
        v[j] = d * kIq4nlValues[p[2 + j] & 0x0F];
        v[j + 16] = d * kIq4nlValues[p[2 + j] >> 4];
      }
      for (int i = 0; i < 32; ++i) mag[i] = std::fabs(v[i]);
      break;
    }
    case DType::Q5_0: {
      const double d = h(0);
      uint32_t qh;
      std::memcpy(&qh, p + 2, 4);
      for (int j = 0; j < 16; ++j) {
        v[j] = d * (static_cast<int>((p[6 + j] & 0x0F) | ((qh >> j) & 1) << 4) - 16);
        v[j + 16] = d * (static_cast<int>((p[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
      }
      for (int i = 0; i < 32; ++i) mag[i] = std::fabs(v[i]);
      break;
    }
    case DType::Q5_1: {
      const double d = h(0), m = h(2);
      uint32_t qh;
      std::memcpy(&qh, p + 4, 4);
      for (int j = 0; j < 16; ++j) {
        const int q0 = static_cast<int>((p[8 + j] & 0x0F) | ((qh >> j) & 1) << 4);
        const int q1 = static_cast<int>((p[8 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
        v[j] = d * q0 + m;
        v[j + 16] = d * q1 + m;
        mag[j] = std::fabs(d * q0) + std::fabs(m);
        mag[j + 16] = std::fabs(d * q1) + std::fabs(m);
      }
      break;
    }
    case DType::Q4_1: {
      const double d = h(0), m = h(2);
      for (int j = 0; j < 16; ++j) {
        v[j] = d * (p[4 + j] & 0x0F) + m;
        v[j + 16] = d * (p[4 + j] >> 4) + m;
      }
      for (int j = 0; j < 16; ++j) {
        mag[j] = std::fabs(d * (p[4 + j] & 0x0F)) + std::fabs(m);
        mag[j + 16] = std::fabs(d * (p[4 + j] >> 4)) + std::fabs(m);
      }
      break;
    }
    case DType::Q4_K: {
      const double d = h(0), dmin = h(2);
      const uint8_t* sc = p + 4;
      const uint8_t* qs = p + 16;
      for (int s = 0; s < 8; ++s) {
        int scale, m;
        if (s < 4) {
          scale = sc[s] & 63;
          m = sc[s + 4] & 63;
        } else {
          scale = (sc[s + 4] & 0xF) | ((sc[s - 4] >> 6) << 4);
          m = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
        }
        for (int i = 0; i < 32; ++i) {
          const uint8_t byte = qs[32 * (s / 2) + i];
          const int q = s & 1 ? byte >> 4 : byte & 0xF;
          v[32 * s + i] = d * scale * q - dmin * m;
          mag[32 * s + i] = std::fabs(d * scale * q) + std::fabs(dmin * m);
        }
      }
      break;
    }
    case DType::Q6_K: {
      const uint8_t* ql = p;
      const uint8_t* qh = p + 128;
      const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
      const double d = h(208);
      for (int half = 0; half < 2; ++half) {
        const uint8_t* l = ql + 64 * half;
        const uint8_t* hh = qh + 32 * half;
        const int8_t* s = sc + 8 * half;
        double* o = v + 128 * half;
        for (int i = 0; i < 32; ++i) {
          const int q0 = (l[i] & 0xF) | (((hh[i] >> 0) & 3) << 4);
          const int q1 = (l[i + 32] & 0xF) | (((hh[i] >> 2) & 3) << 4);
          const int q2 = (l[i] >> 4) | (((hh[i] >> 4) & 3) << 4);
          const int q3 = (l[i + 32] >> 4) | (((hh[i] >> 6) & 3) << 4);
          o[i] = d * s[i / 16] * (q0 - 32);
          o[i + 32] = d * s[(i + 32) / 16] * (q1 - 32);
          o[i + 64] = d * s[(i + 64) / 16] * (q2 - 32);
          o[i + 96] = d * s[(i + 96) / 16] * (q3 - 32);
        }
      }
      for (int i = 0; i < 256; ++i) mag[i] = std::fabs(v[i]);
      break;
    }
    case DType::Q5_K: {  // Q4_K's scales and nibbles; fifth bit of weight l of sub-block s: qh[l] bit s
      const double d = h(0), dmin = h(2);
      const uint8_t* sc = p + 4;
      const uint8_t* qh = p + 16;
      const uint8_t* qs = p + 48;
      for (int s = 0; s < 8; ++s) {
        const int scale = s < 4 ? sc[s] & 63 : (sc[s + 4] & 0xF) | ((sc[s - 4] >> 6) << 4);
        const int m = s < 4 ? sc[s + 4] & 63 : (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
        for (int i = 0; i < 32; ++i) {
          const uint8_t byte = qs[32 * (s / 2) + i];
          const int q = (s & 1 ? byte >> 4 : byte & 0xF) + 16 * ((qh[i] >> s) & 1);
          v[32 * s + i] = d * scale * q - dmin * m;
          mag[32 * s + i] = std::fabs(d * scale * q) + std::fabs(dmin * m);
        }
      }
      break;
    }
    case DType::IQ4_XS: {  // d, scales_h (u16), scales_l[4], then 8 IQ4_NL-style code blocks
      const double d = h(0);
      uint16_t sh;
      std::memcpy(&sh, p + 2, 2);
      for (int s = 0; s < 8; ++s) {
        const int ls = ((p[4 + s / 2] >> (4 * (s % 2))) & 0xF) | (((sh >> (2 * s)) & 3) << 4);
        const uint8_t* qs = p + 8 + 16 * s;
        for (int j = 0; j < 16; ++j) {
          v[32 * s + j] = d * (ls - 32) * kIq4nlValues[qs[j] & 0xF];
          v[32 * s + j + 16] = d * (ls - 32) * kIq4nlValues[qs[j] >> 4];
        }
      }
      for (int i = 0; i < 256; ++i) mag[i] = std::fabs(v[i]);
      break;
    }
    case DType::Q2_K: {  // scales[16], qs[64], d, dmin
      const double d = h(80), dmin = h(82);
      for (int i = 0; i < 256; ++i) {
        const int q = (p[16 + 32 * (i / 128) + i % 32] >> (2 * (i % 128 / 32))) & 3;
        const int sc = p[i / 16] & 0xF, m = p[i / 16] >> 4;
        v[i] = d * sc * q - dmin * m;
        mag[i] = std::fabs(d * sc * q) + std::fabs(dmin * m);
      }
      break;
    }
    case DType::Q3_K: {  // hmask[32], qs[64], scales[12], d
      const double d = h(108);
      const uint8_t* sb = p + 96;
      for (int i = 0; i < 256; ++i) {
        const int s = i / 16;
        const int low = s < 8 ? sb[s] & 0xF : sb[s - 8] >> 4;
        const int sc = (low | ((sb[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
        const int q2 = (p[32 + 32 * (i / 128) + i % 32] >> (2 * (i % 128 / 32))) & 3;
        const int q = (p[i % 32] >> (i / 32)) & 1 ? q2 : q2 - 4;
        v[i] = d * sc * q;
        mag[i] = std::fabs(v[i]);
      }
      break;
    }
    case DType::Q8_K: {
      float d;
      std::memcpy(&d, p, 4);
      for (int i = 0; i < 256; ++i) v[i] = double(d) * int8_t(p[4 + i]);
      for (int i = 0; i < 256; ++i) mag[i] = std::fabs(v[i]);
      break;
    }
    default: ADD_FAILURE() << "type";
  }
}

Deq dequant_row(DType type, const uint8_t* row, size_t K) {
  Deq d{std::vector<double>(K), std::vector<double>(K)};
  const size_t be = block_elems(type), bb = block_bytes(type);
  for (size_t b = 0; b < K / be; ++b)
    dequant_block(type, row + b * bb, d.v.data() + b * be, d.mag.data() + b * be);
  return d;
}

// ---- a random quantized matrix with a stride and a misaligned start ------------------

struct QMat {
  DType type;
  size_t rows, K, stride;
  std::vector<uint8_t> mem;
  uint8_t* data;
  QMat(std::mt19937& g, DType type_, size_t rows_, size_t K_, size_t pad, size_t off)
      : type(type_),
        rows(rows_),
        K(K_),
        stride(row_bytes(type_, K_) + pad),
        mem(rows_ * stride + off + 1),
        data(mem.data() + off) {
    for (auto& b : mem) b = static_cast<uint8_t>(g());  // padding bytes random too
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < K / block_elems(type); ++b)
        random_weight_block(g, type, data + r * stride + b * block_bytes(type));
  }
  const uint8_t* row(size_t r) const { return data + r * stride; }
};

struct QAct {
  DType type;
  size_t n, K, stride;
  std::vector<uint8_t> mem;
  uint8_t* data;
  QAct(std::mt19937& g, DType type_, size_t n_, size_t K_, size_t pad, size_t off)
      : type(type_),
        n(n_),
        K(K_),
        stride(row_bytes(type_, K_) + pad),
        mem(n_ * stride + off + 1),
        data(mem.data() + off) {
    for (size_t t = 0; t < n; ++t)
      for (size_t b = 0; b < K / block_elems(type); ++b)
        random_act_block(g, type, data + t * stride + b * block_bytes(type));
  }
  const uint8_t* row(size_t t) const { return data + t * stride; }
};

// The bound on |x - dequantized code| for a block whose max |x| is amax (file header).
double quant_error_bound(DType act, double amax) {
  const double dd = amax / 127 * (1 + 2 * kU);  // >= fl(amax / 127)
  return dd * (0.5 + 127 * 3 * kU) + (act == DType::Q8_0 ? 127 * (0x1p-11 * dd + 0x1p-25) : 0.0);
}

std::string name(const Table& t, DType w) { return std::string(t.name) + " " + dtype_name(w); }

// ---- API ----------------------------------------------------------------------------

TEST(QuantApi, TypesWorkspaceAndSupport) {
  EXPECT_EQ(activation_type(DType::Q8_0), DType::Q8_0);
  EXPECT_EQ(activation_type(DType::Q4_0), DType::Q8_0);
  EXPECT_EQ(activation_type(DType::Q4_K), DType::Q8_K);
  EXPECT_EQ(activation_type(DType::Q6_K), DType::Q8_K);
  EXPECT_EQ(activation_type(DType::F16), DType::F32);
  EXPECT_EQ(activation_type(DType::IQ2_XXS), DType::F32);
  EXPECT_EQ(matmul_scratch_bytes(DType::F32, 7, 4096, 2), 0u);
  // Q8_0 activations: the rows, then (from a cache line) each block's float scale and code
  // sum for the packed kernels.
  EXPECT_EQ(matmul_scratch_bytes(DType::Q4_0, 3, 2048, 2), 3u * 64 * 34 + 64 + 3u * 64 * 8);
  EXPECT_EQ(matmul_scratch_bytes(DType::Q6_K, 2, 512, 4), 2u * 2 * 292);
  EXPECT_EQ(matmul_scratch_bytes(DType::F16, 1, 512, 2), 0u);  // GEMV converts on the fly
  EXPECT_GE(matmul_scratch_bytes(DType::F16, 5, 512, 2), 2u * kFloatGemmRows * 512 * 4);
  for (const Table* t : tables()) {
    SCOPED_TRACE(t->name);
    EXPECT_TRUE(t->of(DType::Q8_0).quantize_row && t->of(DType::Q8_K).quantize_row);
    for (DType w : kQTypes) {
      EXPECT_TRUE(supports(*t, w));
      EXPECT_NE(qmatmul_fn(*t, w), nullptr);
      EXPECT_EQ(matmul_fn(*t, w), nullptr);  // float kernels only
    }
    EXPECT_EQ(quantize_row_fn(*t, DType::Q8_0), t->of(DType::Q8_0).quantize_row);
    EXPECT_EQ(quantize_row_fn(*t, DType::Q8_K), t->of(DType::Q8_K).quantize_row);
    EXPECT_TRUE(supports(*t, DType::F32) && supports(*t, DType::F16) && supports(*t, DType::BF16));
    EXPECT_FALSE(supports(*t, DType::IQ2_XXS));
    EXPECT_FALSE(supports(*t, DType::Q8_K));  // an activation type only
  }
#if defined(__aarch64__)
  // On AArch64 each NEON level the CPU has must be compiled in and chosen.
  const CpuFeatures& f = cpu_features();
  EXPECT_NE(table_for(Isa::kNeon), nullptr);
  EXPECT_EQ(table_for(Isa::kNeonDotprod) != nullptr, f.dotprod);
  EXPECT_EQ(table_for(Isa::kNeonI8mm) != nullptr, f.dotprod && f.i8mm);
  const Isa want = f.i8mm && f.dotprod ? Isa::kNeonI8mm
                   : f.dotprod         ? Isa::kNeonDotprod
                                       : Isa::kNeon;
  EXPECT_EQ(best().isa, want);
#endif
#if defined(EMBER_HAVE_AVXVNNI) && defined(EMBER_HAVE_AVX512VNNI)
  // On x86 each VNNI level the CPU has must be compiled in, declining no type, and the
  // widest chosen (unless EMBER_ISA forces a table).
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni;
  EXPECT_EQ(table_for(Isa::kAvxVnni) != nullptr, avx2 && f.avx_vnni);
  EXPECT_EQ(table_for(Isa::kAvx512Vnni) != nullptr, avx512);
  for (Isa isa : {Isa::kAvxVnni, Isa::kAvx512Vnni}) {
    const Table* t = table_for(isa);
    if (!t) continue;
    for (const TypeKernels& k : t->types) EXPECT_FALSE(k.declined) << t->name;
  }
  const char* forced = std::getenv("EMBER_ISA");
  if (!forced || !*forced) {
    const Isa want = avx512 ? Isa::kAvx512Vnni : avx2 && f.avx_vnni ? Isa::kAvxVnni : avx2 ? Isa::kAvx2 : Isa::kScalar;
    EXPECT_EQ(best().isa, want);
  }
#endif
  // EMBER_ISA's lookup: every ISA by its name, unknown names refused.
  for (int i = 0; i < static_cast<int>(Isa::kCount); ++i) {
    const Table* t = nullptr;
    EXPECT_TRUE(table_by_name(isa_name(static_cast<Isa>(i)), &t));
    EXPECT_EQ(t, table_for(static_cast<Isa>(i))) << isa_name(static_cast<Isa>(i));
  }
  const Table* none = &reference();
  EXPECT_FALSE(table_by_name("avx3", &none));
  EXPECT_EQ(none, nullptr);
  EXPECT_FALSE(table_by_name("", &none));
  std::printf("[ kernels  ] quantized tables:");
  for (const Table* t : tables()) std::printf(" %s", t->name);
  std::printf("\n");
}

// ---- activation quantizers ------------------------------------------------------------

// Rows that exercise the quantizer: random magnitudes, an all-zero block, blocks with
// exact .5 ties (x = (k + 1/2) d with d = amax/127 a power of two times 127/127), huge
// and tiny scales (fp16 subnormal d for Q8_0), a single nonzero.
std::vector<float> quantizer_input(std::mt19937& g, size_t K, int kind) {
  std::vector<float> x(K);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (size_t i = 0; i < K; ++i) {
    switch (kind) {
      case 0: x[i] = u(g); break;
      case 1: x[i] = u(g) * std::exp2(float(int(g() % 40) - 20)); break;  // per-element scales
      case 2: x[i] = 0.0f; break;
      case 3: {
        // amax = 127 * 2^e -> d = 2^e exactly, id = 2^-e: x id = k + 1/2 exactly.
        const int k = int(g() % 253) - 126;  // x in [-126.5, 126.5]
        x[i] = (i % 32 == 0) ? 127.0f : float(k) + (k < 0 ? -0.5f : 0.5f);
        break;
      }
      case 4: x[i] = u(g) * 1e-6f; break;  // d below the fp16 normal range
      case 5: x[i] = (i % 37 == 5) ? -3.0f : 0.0f; break;
      default: x[i] = u(g) * 6e4f; break;
    }
  }
  return x;
}

TEST(QuantizeRow, BitwiseEqualToReference) {
  std::mt19937 g(21);
  for (const Table* t : tables()) {
    for (DType act : {DType::Q8_0, DType::Q8_K}) {
      const QuantizeRowFn fast = quantize_row_fn(*t, act), ref = quantize_row_fn(reference(), act);
      const size_t be = block_elems(act);
      for (size_t nb : {1, 2, 3, 8}) {
        const size_t K = nb * be;
        for (int kind = 0; kind <= 6; ++kind) {
          for (size_t off : {0, 1}) {  // input: 4-byte aligned only; output: odd address
            SCOPED_TRACE(std::string(t->name) + " " + dtype_name(act) + " K=" + std::to_string(K) +
                         " kind=" + std::to_string(kind) + " off=" + std::to_string(off));
            const auto x = quantizer_input(g, K, kind);
            std::vector<float> xin(K + 1);
            std::copy(x.begin(), x.end(), xin.begin() + off);
            const size_t bytes = row_bytes(act, K);
            std::vector<uint8_t> a(bytes + 8, 0xAB), b(bytes + 8, 0xAB);
            fast(xin.data() + off, a.data() + off, K);
            ref(x.data(), b.data(), K);
            ASSERT_EQ(std::memcmp(a.data() + off, b.data(), bytes), 0);
            for (size_t i = off + bytes; i < a.size(); ++i)
              ASSERT_EQ(a[i], 0xAB) << "wrote past the row";
          }
        }
      }
    }
  }
}

// A block holding NaN or infinity (a broken or hostile model's activations) gives garbage
// but never reads or writes outside its row: the row ends where a PROT_NONE page begins,
// so a read past it faults. fuzz_gguf found the Q8_K quantizer searching past its block
// for an element equal to a NaN maximum.
TEST(QuantizeRow, NonFiniteBlocksStayInsideTheRow) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (const Table* t : tables()) {
    for (DType act : {DType::Q8_0, DType::Q8_K}) {
      const size_t K = 2 * block_elems(act);
      ASSERT_LE(K * sizeof(float), page);
      void* mem = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      ASSERT_NE(mem, MAP_FAILED);
      ASSERT_EQ(mprotect(static_cast<uint8_t*>(mem) + page, page, PROT_NONE), 0);
      float* x = reinterpret_cast<float*>(static_cast<uint8_t*>(mem) + page) - K;  // ends at the guard
      for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
        SCOPED_TRACE(std::string(t->name) + " " + dtype_name(act) + " " + std::to_string(bad));
        for (size_t i = 0; i < K; ++i) x[i] = (i % 7 == 3) ? bad : 0.25f * static_cast<float>(i % 5);
        std::vector<uint8_t> q(row_bytes(act, K) + 8, 0xAB);
        quantize_row_fn(*t, act)(x, q.data(), K);
        for (size_t i = row_bytes(act, K); i < q.size(); ++i) ASSERT_EQ(q[i], 0xAB) << "wrote past the row";
        if (t == &reference() && act == DType::Q8_0) {  // defined codes (UBSan found a NaN cast to int8)
          const auto* blocks = reinterpret_cast<const BlockQ8_0*>(q.data());
          for (size_t i = 0; i < K; ++i) {
            if (x[i] == x[i]) continue;  // not a NaN
            ASSERT_EQ(blocks[i / 32].qs[i % 32], 0) << "NaN at " << i;
          }
        }
      }
      munmap(mem, 2 * page);
    }
  }
}

// The activation quantizers are the block formats' reference quantizers
// (quant/quantize.h, ggml's definitions): same bytes.
TEST(QuantizeRow, SameAsTheQuantReference) {
  std::mt19937 g(31);
  for (int kind = 0; kind <= 6; ++kind) {
    const size_t K = 512;
    const auto x = quantizer_input(g, K, kind);
    std::vector<BlockQ8_0> a(K / 32), b(K / 32);
    std::vector<BlockQ8_K> c(K / 256), d(K / 256);
    quantize_row_fn(reference(), DType::Q8_0)(x.data(), a.data(), K);
    quantize_row_q8_0_ref(x.data(), b.data(), K);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]), 0) << "q8_0 kind " << kind;
    quantize_row_fn(reference(), DType::Q8_K)(x.data(), c.data(), K);
    quantize_row_q8_K_ref(x.data(), d.data(), K);
    EXPECT_EQ(std::memcmp(c.data(), d.data(), c.size() * sizeof c[0]), 0) << "q8_K kind " << kind;
  }
}

TEST(QuantizeRow, ReferenceWithinDerivedBound) {
  std::mt19937 g(22);
  for (DType act : {DType::Q8_0, DType::Q8_K}) {
    const size_t be = block_elems(act), K = 4 * be;
    for (int kind = 0; kind <= 6; ++kind) {
      SCOPED_TRACE(std::string(dtype_name(act)) + " kind=" + std::to_string(kind));
      const auto x = quantizer_input(g, K, kind);
      std::vector<uint8_t> q(row_bytes(act, K));
      quantize_row_fn(reference(), act)(x.data(), q.data(), K);
      const Deq d = dequant_row(act, q.data(), K);
      for (size_t b = 0; b < K / be; ++b) {
        double amax = 0;
        for (size_t i = 0; i < be; ++i) amax = std::max(amax, std::fabs(double(x[b * be + i])));
        const double tol = quant_error_bound(act, amax);
        const uint8_t* blk = q.data() + b * block_bytes(act);
        const int8_t* codes = reinterpret_cast<const int8_t*>(blk + (act == DType::Q8_0 ? 2 : 4));
        for (size_t i = 0; i < be; ++i) {
          ASSERT_GE(codes[i], -127);
          ASSERT_LE(std::fabs(d.v[b * be + i] - x[b * be + i]), tol) << "block " << b << " i " << i;
        }
        if (kind == 3) {  // exact ties: Q8_0 away from zero (roundf); Q8_K (d = -1) to even
          for (size_t i = 1; i < be; ++i) {
            const float xi = x[b * be + i];
            if (act == DType::Q8_0) {
              ASSERT_EQ(codes[i], int(std::round(xi))) << xi;
            } else {
              ASSERT_EQ(codes[i], -int(std::nearbyint(xi))) << xi;
            }
          }
        }
        if (act == DType::Q8_K) {
          BlockQ8_K k;
          std::memcpy(&k, blk, sizeof k);
          for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int i = 0; i < 16; ++i) s += k.qs[16 * j + i];
            ASSERT_EQ(k.bsums[j], s);
          }
        }
      }
    }
  }
}

// ---- matmul: bit for bit against the reference -----------------------------------------

// Y for rows [r0, r1) and n tokens through `fn`; other entries keep the guard 99.
std::vector<float> run(QMatmulFn fn, const QMat& w, const QAct& x, size_t r0, size_t r1,
                       size_t ldy) {
  std::vector<float> y(x.n * ldy, 99.0f);
  fn(w.data, w.stride, x.data, x.stride, x.n, w.K, y.data(), ldy, r0, r1);
  return y;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(QMatmul, BitwiseEqualToReference) {
  std::mt19937 g(23);
  for (const Table* t : tables()) {
    if (t == &reference()) continue;
    for (DType type : kQTypes) {
      const DType act = activation_type(type);
      const size_t be = block_elems(type);
      for (size_t nb : {1, 2, 3, 5, 8}) {
        const size_t K = nb * be;
        for (size_t rows : {1, 3, 4, 5, 8, 9, 13, 17, 33}) {
          for (size_t n : {1, 2, 3, 4, 5}) {
            // Strides and starts: packed and aligned, then padded and odd.
            const size_t pad = (rows + n + nb) % 3, off = (rows + n) % 2;
            SCOPED_TRACE(name(*t, type) + " K=" + std::to_string(K) +
                         " rows=" + std::to_string(rows) + " n=" + std::to_string(n) +
                         " pad=" + std::to_string(pad) + " off=" + std::to_string(off));
            const QMat w(g, type, rows, K, pad, off);
            const QAct x(g, act, n, K, pad, 1 - off);
            const size_t ldy = rows + 3;
            const auto ref = run(qmatmul_fn(reference(), type), w, x, 0, rows, ldy);
            ASSERT_TRUE(same_bits(run(qmatmul_fn(*t, type), w, x, 0, rows, ldy), ref));
            // A sub-range: exactly those outputs, bit for bit.
            const size_t r0 = rows / 3, r1 = rows - rows / 4;
            const auto part = run(qmatmul_fn(*t, type), w, x, r0, r1, ldy);
            for (size_t tk = 0; tk < n; ++tk)
              for (size_t r = 0; r < ldy; ++r) {
                const float want = r >= r0 && r < r1 ? ref[tk * ldy + r] : 99.0f;
                ASSERT_EQ(std::memcmp(&part[tk * ldy + r], &want, 4), 0)
                    << "t " << tk << " r " << r;
              }
          }
        }
      }
    }
  }
}

// Every 4-bit code in every nibble position, against integers computed here: with
// d = dx = 1 every term is an integer below 2^24, so the float sums are exact.
TEST(QMatmul, AllInt4CodesExact) {
  std::mt19937 g(24);
  const size_t K = 256, rows = 16, n = 3;
  for (const Table* t : tables()) {
    // Q4_0: row r, byte j holds codes ((j + r) % 16, (j + 3r + 5) % 16): over 16 rows
    // every code meets every position, low and high nibble.
    QMat w(g, DType::Q4_0, rows, K, 0, 0);
    QAct x(g, DType::Q8_0, n, K, 0, 0);
    const uint16_t one = fp32_to_fp16(1.0f);
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < K / 32; ++b) {
        uint8_t* blk = w.data + r * w.stride + b * 18;
        std::memcpy(blk, &one, 2);
        for (size_t j = 0; j < 16; ++j)
          blk[2 + j] = uint8_t(((j + r + b) % 16) | (((j + 3 * r + 5 + b) % 16) << 4));
      }
    for (size_t tk = 0; tk < n; ++tk)
      for (size_t b = 0; b < K / 32; ++b) std::memcpy(x.data + tk * x.stride + b * 34, &one, 2);
    std::vector<float> y(n * rows);
    qmatmul_fn(*t, DType::Q4_0)(w.data, w.stride, x.data, x.stride, n, K, y.data(), rows, 0, rows);
    for (size_t tk = 0; tk < n; ++tk)
      for (size_t r = 0; r < rows; ++r) {
        long want = 0;
        for (size_t b = 0; b < K / 32; ++b) {
          const uint8_t* blk = w.row(r) + b * 18;
          const int8_t* xq = reinterpret_cast<const int8_t*>(x.row(tk) + b * 34 + 2);
          for (size_t j = 0; j < 16; ++j) {
            want += long((blk[2 + j] & 15) - 8) * xq[j];
            want += long((blk[2 + j] >> 4) - 8) * xq[j + 16];
          }
        }
        ASSERT_EQ(y[tk * rows + r], float(want)) << t->name << " q4_0 r " << r << " t " << tk;
      }
    // Q4_K: every code at every nibble position of the 128 code bytes; scales 1, mins 0
    // or 1, d = dmin = 1: y = sum q x - sum m (bsum pairs), all integers.
    QMat wk(g, DType::Q4_K, rows, K, 0, 0);
    QAct xk(g, DType::Q8_K, n, K, 0, 0);
    for (size_t tk = 0; tk < n; ++tk) {
      const float fone = 1.0f;
      std::memcpy(xk.data + tk * xk.stride, &fone, 4);
    }
    for (size_t r = 0; r < rows; ++r) {
      BlockQ4_K blk;
      blk.d = one;
      blk.dmin = one;
      // sc = 1 for every sub-block; m = 1 for even r, 0 for odd.
      const uint8_t m = r % 2 == 0 ? 1 : 0;
      for (int s = 0; s < 4; ++s) blk.scales[s] = 1, blk.scales[s + 4] = m;
      for (int s = 8; s < 12; ++s) blk.scales[s] = uint8_t(1 | (m << 4));
      for (int j = 0; j < 128; ++j) blk.qs[j] = uint8_t(((j + r) % 16) | (((j * 7 + r) % 16) << 4));
      std::memcpy(wk.data + r * wk.stride, &blk, sizeof blk);
    }
    qmatmul_fn(*t, DType::Q4_K)(wk.data, wk.stride, xk.data, xk.stride, n, K, y.data(), rows, 0, rows);
    for (size_t tk = 0; tk < n; ++tk)
      for (size_t r = 0; r < rows; ++r) {
        BlockQ4_K blk;
        std::memcpy(&blk, wk.row(r), sizeof blk);
        const int8_t* xq = reinterpret_cast<const int8_t*>(xk.row(tk) + 4);
        long dot = 0, xs = 0;
        for (int s = 0; s < 8; ++s)
          for (int i = 0; i < 32; ++i) {
            const uint8_t byte = blk.qs[32 * (s / 2) + i];
            dot += long(s % 2 ? byte >> 4 : byte & 15) * xq[32 * s + i];
            xs += xq[32 * s + i];
          }
        const float want = float(dot) - (r % 2 == 0 ? float(xs) : 0.0f);
        ASSERT_EQ(y[tk * rows + r], want) << t->name << " q4_k r " << r << " t " << tk;
      }
  }
}

// Q5_K and IQ4_XS: every code at every position (Q5_K: every nibble meets both fifth
// bits, rows r and r + 16 having the same nibbles and opposite qh), scales +1 (IQ4_XS:
// -1 on odd rows), Q5_K mins 1 on even rows, d = dmin = dx = 1. The outputs are then
// integers below 2^24 (|sum grid x| <= 127 * 127 * 256), exact in float and in the
// double sum of the independently decoded weights (dequant_block) times the codes.
TEST(QMatmul, AllCodesExactQ5_KAndIQ4_XS) {
  std::mt19937 g(32);
  const size_t K = 256, rows = 32, n = 3;
  const uint16_t one = fp32_to_fp16(1.0f);
  for (DType type : {DType::Q5_K, DType::IQ4_XS}) {
    QMat w(g, type, rows, K, 0, 0);
    QAct x(g, DType::Q8_K, n, K, 0, 0);
    for (size_t tk = 0; tk < n; ++tk) {
      const float fone = 1.0f;
      std::memcpy(x.data + tk * x.stride, &fone, 4);
    }
    for (size_t r = 0; r < rows; ++r) {
      uint8_t* blk = w.data + r * w.stride;
      const size_t r16 = r % 16;
      uint8_t* qs = blk + (type == DType::Q5_K ? 48 : 8);
      for (size_t j = 0; j < 128; ++j) qs[j] = uint8_t(((j + r16) % 16) | (((j * 7 + r16) % 16) << 4));
      std::memcpy(blk, &one, 2);
      if (type == DType::Q5_K) {
        std::memcpy(blk + 2, &one, 2);
        const uint8_t m = r % 2 == 0 ? 1 : 0;  // sc = 1, m as above (quant/blocks.h layout)
        for (int s = 0; s < 4; ++s) blk[4 + s] = 1, blk[8 + s] = m;
        for (int s = 8; s < 12; ++s) blk[4 + s] = uint8_t(1 | (m << 4));
        for (size_t l = 0; l < 32; ++l) {
          const uint8_t h = uint8_t(l * 37 + r16 * 11);
          blk[16 + l] = r < 16 ? h : uint8_t(~h);
        }
      } else {  // ls = 33 (scale +1): low 4 bits 1, high 2 bits 2; ls = 31 (-1): 15 and 1
        const uint16_t sh = r % 2 ? 0x5555 : 0xAAAA;
        std::memcpy(blk + 2, &sh, 2);
        std::memset(blk + 4, r % 2 ? 0xFF : 0x11, 4);
      }
    }
    for (const Table* t : tables())
      for (size_t nn : {size_t(1), n}) {
        std::vector<float> y(nn * rows);
        qmatmul_fn(*t, type)(w.data, w.stride, x.data, x.stride, nn, K, y.data(), rows, 0, rows);
        for (size_t tk = 0; tk < nn; ++tk)
          for (size_t r = 0; r < rows; ++r) {
            const Deq dw = dequant_row(type, w.row(r), K);
            const int8_t* xq = reinterpret_cast<const int8_t*>(x.row(tk) + 4);
            double want = 0;
            for (size_t i = 0; i < K; ++i) want += dw.v[i] * xq[i];
            ASSERT_EQ(y[tk * rows + r], float(want)) << name(*t, type) << " r " << r << " t " << tk;
          }
      }
  }
}

// Q4_1 codes the same way, with d = 1 and a min of +1 (even rows) or -1 (odd rows): the
// outputs sum(q x) + m sum(x) are integers below 2^24, exact in float.
TEST(QMatmul, AllInt4CodesExactQ4_1) {
  std::mt19937 g(25);
  const size_t K = 256, rows = 16, n = 3;
  for (const Table* t : tables()) {
    QMat w(g, DType::Q4_1, rows, K, 0, 0);
    QAct x(g, DType::Q8_0, n, K, 0, 0);
    const uint16_t one = fp32_to_fp16(1.0f), minus_one = fp32_to_fp16(-1.0f);
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < K / 32; ++b) {
        uint8_t* blk = w.data + r * w.stride + b * sizeof(BlockQ4_1);
        std::memcpy(blk, &one, 2);
        std::memcpy(blk + 2, r % 2 ? &minus_one : &one, 2);
        for (size_t j = 0; j < 16; ++j)
          blk[4 + j] = uint8_t(((j + r + b) % 16) | (((j + 3 * r + 5 + b) % 16) << 4));
      }
    for (size_t tk = 0; tk < n; ++tk)
      for (size_t b = 0; b < K / 32; ++b) std::memcpy(x.data + tk * x.stride + b * 34, &one, 2);
    for (size_t nn : {size_t(1), n}) {  // GEMV and GEMM
      std::vector<float> y(nn * rows);
      qmatmul_fn(*t, DType::Q4_1)(w.data, w.stride, x.data, x.stride, nn, K, y.data(), rows, 0, rows);
      for (size_t tk = 0; tk < nn; ++tk)
        for (size_t r = 0; r < rows; ++r) {
          long want = 0;
          for (size_t b = 0; b < K / 32; ++b) {
            const uint8_t* blk = w.row(r) + b * sizeof(BlockQ4_1);
            const int8_t* xq = reinterpret_cast<const int8_t*>(x.row(tk) + b * 34 + 2);
            for (size_t j = 0; j < 16; ++j)
              want += long(blk[4 + j] & 15) * xq[j] + long(blk[4 + j] >> 4) * xq[j + 16];
            for (size_t i = 0; i < 32; ++i) want += (r % 2 ? -1 : 1) * long(xq[i]);
          }
          ASSERT_EQ(y[tk * rows + r], float(want)) << t->name << " q4_1 r " << r << " t " << tk;
        }
    }
  }
}

// Extreme blocks: the largest codes and scales against activations of +-127, where
// intermediate sums are largest (16-bit pair sums, modular s16 reductions, SADALP and
// maddubs bounds): every table must still equal the reference bit for bit. Random
// blocks almost never reach these sums (a random row's code.x is ~3600, these 60960).
TEST(QMatmul, ExtremeBlocksBitwiseEqualToReference) {
  std::mt19937 g(30);
  const size_t rows = 16, n = 5;
  for (DType type : kQTypes) {
    const DType act = activation_type(type);
    const size_t K = 2 * block_elems(type);
    for (int pattern = 0; pattern < 6; ++pattern) {
      QMat w(g, type, rows, K, 0, 0);
      QAct x(g, act, n, K, 0, 0);
      // Weights: row r all 0x00, all 0xFF, alternating, or random bytes (scales kept).
      for (size_t r = 0; r < rows; ++r)
        for (size_t b = 0; b < K / block_elems(type); ++b) {
          uint8_t* blk = w.data + r * w.stride + b * block_bytes(type);
          const size_t bb = block_bytes(type);
          const uint8_t fill = (r + pattern) % 4 == 0   ? 0x00
                               : (r + pattern) % 4 == 1 ? 0xFF
                               : (r + pattern) % 4 == 2 ? 0x80
                                                        : 0x7F;
          if (type == DType::Q8_0 || type == DType::Q4_0 || type == DType::Q5_0 || type == DType::IQ4_NL) {
            std::memset(blk + 2, fill, bb - 2);
          } else if (type == DType::Q4_1 || type == DType::Q5_1) {  // codes after d and m
            std::memset(blk + 4, fill, bb - 4);
          } else if (type == DType::Q4_K || type == DType::Q5_K) {
            std::memset(blk + 4, 0xFF, 12);  // scales and mins 63
            std::memset(blk + 16, fill, bb - 16);  // (Q5_K: fifth bits too)
          } else if (type == DType::IQ4_XS) {  // scales 31 (0xFF) or -32 (0x00), codes
            std::memset(blk + 2, fill, bb - 2);
          } else if (type == DType::Q6_K) {  // codes, then scales -128 or 127
            std::memset(blk, fill, 192);
            std::memset(blk + 192, pattern % 2 ? 0x80 : 0x7F, 16);
          } else if (type == DType::Q2_K) {  // scales and mins 15, then codes
            std::memset(blk, 0xFF, 16);
            std::memset(blk + 16, fill, 64);
          } else {  // Q3_K: high bits and codes (0x00: all -4), then scales -32 or 31
            std::memset(blk, fill, 96);
            std::memset(blk + 96, pattern % 2 ? 0x00 : 0xFF, 12);
          }
        }
      // Activations: all +127, all -127, or alternating signs per token.
      for (size_t t = 0; t < n; ++t)
        for (size_t b = 0; b < K / block_elems(act); ++b) {
          uint8_t* blk = x.data + t * x.stride + b * block_bytes(act);
          int8_t* q = reinterpret_cast<int8_t*>(blk + (act == DType::Q8_0 ? 2 : 4));
          const size_t m = block_elems(act);
          for (size_t i = 0; i < m; ++i)
            q[i] = (t + pattern) % 3 == 0   ? 127
                   : (t + pattern) % 3 == 1 ? -127
                                            : (i % 2 ? 127 : -127);
          if (act == DType::Q8_K) {
            int16_t* bs = reinterpret_cast<int16_t*>(blk + 4 + 256);
            for (int j = 0; j < 16; ++j) {
              int s = 0;
              for (int i = 0; i < 16; ++i) s += q[16 * j + i];
              std::memcpy(bs + j, &s, 2);
            }
          }
        }
      for (size_t nn : {size_t(1), n}) {
        QAct xs = x;
        xs.n = nn;
        xs.data = xs.mem.data() + (x.data - x.mem.data());
        const auto ref = run(qmatmul_fn(reference(), type), w, xs, 0, rows, rows);
        for (const Table* t : tables())
          ASSERT_TRUE(same_bits(run(qmatmul_fn(*t, type), w, xs, 0, rows, rows), ref))
              << name(*t, type) << " pattern " << pattern << " n=" << nn;
      }
    }
  }
}

// The engine relies on this: an output does not depend on r0/r1 or on the batch.
TEST(QMatmul, BitwiseIndependentOfSplitAndBatch) {
  std::mt19937 g(25);
  const size_t rows = 37, n = 7;
  for (const Table* t : tables()) {
    for (DType type : kQTypes) {
      SCOPED_TRACE(name(*t, type));
      const size_t K = 2 * (is_super_block(type) ? 256 : 64);
      const QMat w(g, type, rows, K, 0, 0);
      const QAct x(g, activation_type(type), n, K, 0, 0);
      const QMatmulFn fn = qmatmul_fn(*t, type);
      const auto full = run(fn, w, x, 0, rows, rows);
      for (int trial = 0; trial < 10; ++trial) {
        std::vector<float> y(n * rows, -1.0f);
        for (size_t r0 = 0; r0 < rows;) {
          const size_t r1 = r0 + std::min<size_t>(rows - r0, g() % 11);
          fn(w.data, w.stride, x.data, x.stride, n, K, y.data(), rows, r0, r1);
          r0 = r1;
        }
        ASSERT_TRUE(same_bits(y, full)) << "row split";
      }
      for (int trial = 0; trial < 10; ++trial) {
        std::vector<float> y(n * rows, -1.0f);
        for (size_t t0 = 0; t0 < n;) {
          const size_t m = std::min<size_t>(n - t0, 1 + g() % 5);
          fn(w.data, w.stride, x.data + t0 * x.stride, x.stride, m, K, y.data() + t0 * rows, rows,
             0, rows);
          t0 += m;
        }
        ASSERT_TRUE(same_bits(y, full)) << "token groups";
      }
    }
  }
}

// The reference (hence every table) against the real-number dot of the dequantized
// blocks, within the bound derived at the top of this file.
TEST(QMatmul, ReferenceMatchesDequantizedDotWithinDerivedBound) {
  std::mt19937 g(26);
  double worst = 0;
  for (DType type : kQTypes) {
    for (size_t nb : {1, 4, 16}) {
      const size_t K = nb * block_elems(type), rows = 9, n = 3;
      const DType act = activation_type(type);
      const QMat w(g, type, rows, K, 0, 0);
      const QAct x(g, act, n, K, 0, 0);
      const auto y = run(qmatmul_fn(reference(), type), w, x, 0, rows, rows);
      const size_t terms = float_terms(type, K);
      for (size_t tk = 0; tk < n; ++tk) {
        const Deq dx = dequant_row(act, x.row(tk), K);
        for (size_t r = 0; r < rows; ++r) {
          const Deq dw = dequant_row(type, w.row(r), K);
          double exact = 0, mag = 0;
          for (size_t k = 0; k < K; ++k) {
            exact += dw.v[k] * dx.v[k];
            mag += dw.mag[k] * std::fabs(dx.v[k]);
          }
          const double tol = gamma(terms + 2) * mag + K * 0x1p-52 * mag;
          const double err = std::fabs(double(y[tk * rows + r]) - exact);
          worst = std::max(worst, err / tol);
          ASSERT_LE(err, tol) << dtype_name(type) << " K=" << K << " r " << r << " t " << tk;
        }
      }
    }
  }
  std::printf("[ kernels  ] quantized dot vs dequantized: worst/tol %.3f\n", worst);
}

// matmul() with float activations: the same as quantizing by hand then the kernel, and
// within the activation-quantization bound of the float dot of the dequantized weights.
TEST(QMatmul, MatmulFromFloatActivations) {
  std::mt19937 g(27);
  for (const Table* t : tables()) {
    for (DType type : kQTypes) {
      SCOPED_TRACE(name(*t, type));
      const DType act = activation_type(type);
      const size_t K = 2 * block_elems(type) * (is_super_block(type) ? 1 : 4);
      const size_t rows = 21, n = 5;
      const QMat w(g, type, rows, K, 3, 1);
      std::vector<float> x(n * K);
      std::uniform_real_distribution<float> u(-2.0f, 2.0f);
      for (auto& v : x) v = u(g);
      const MatView view{type, w.data, rows, K, w.stride};
      std::vector<uint8_t> ws(matmul_scratch_bytes(type, n, K, 1) + 1);
      std::vector<float> y(n * rows), y2(n * rows), by_hand(n * rows);
      matmul(*t, view, x.data(), n, y.data(), nullptr, ws.data());
      matmul(*t, view, x.data(), n, y2.data(), nullptr, ws.data() + 1);  // misaligned scratch
      ASSERT_TRUE(same_bits(y, y2));
      const size_t xs = row_bytes(act, K);
      std::vector<uint8_t> xq(n * xs);
      for (size_t tk = 0; tk < n; ++tk)
        quantize_row_fn(reference(), act)(x.data() + tk * K, xq.data() + tk * xs, K);
      qmatmul_fn(reference(), type)(w.data, w.stride, xq.data(), xs, n, K, by_hand.data(), rows, 0,
                                    rows);
      ASSERT_TRUE(same_bits(y, by_hand));
      // Float x against dequantized w: |sum w (x - x^)| <= sum |w| e, e the quantizer
      // bound of x's block, plus the dot bound.
      const size_t be = block_elems(act);
      for (size_t tk = 0; tk < n; ++tk) {
        const float* xt = x.data() + tk * K;
        for (size_t r = 0; r < rows; ++r) {
          const Deq dw = dequant_row(type, w.row(r), K);
          double exact = 0, err_bound = 0, mag = 0;
          for (size_t b = 0; b < K / be; ++b) {
            double amax = 0;
            for (size_t i = 0; i < be; ++i)
              amax = std::max(amax, std::fabs(double(xt[b * be + i])));
            const double e = quant_error_bound(act, amax);
            for (size_t i = 0; i < be; ++i) {
              const size_t k = b * be + i;
              exact += dw.v[k] * xt[k];
              err_bound += std::fabs(dw.v[k]) * e;
              mag += dw.mag[k] * (std::fabs(xt[k]) + e);
            }
          }
          const size_t terms = float_terms(type, K);
          const double tol = err_bound + gamma(terms + 2) * mag + K * 0x1p-52 * mag;
          ASSERT_LE(std::fabs(y[tk * rows + r] - exact), tol) << "r " << r << " t " << tk;
        }
      }
    }
  }
}

// Threads: a separate suite (it starts threads), like MatmulThreads in test_kernels.cpp.
TEST(QMatmulThreads, BitwiseIndependentOfThreadCount) {
  std::mt19937 g(28);
  const size_t rows = 100, n = 6;
  for (const Table* t : tables()) {
    for (DType type : kQTypes) {
      SCOPED_TRACE(name(*t, type));
      const size_t K = is_super_block(type) ? 512 : 320;
      const QMat w(g, type, rows, K, 0, 0);
      std::vector<float> x(n * K);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (auto& v : x) v = u(g);
      const MatView view{type, w.data, rows, K, 0};
      std::vector<float> full(n * rows);
      test::run_matmul(reference(), view, x.data(), n, full.data(), 1);  // the reference, 1 thread
      for (int threads : {1, 2, 3, 4}) {
        std::vector<float> y(n * rows, -1.0f);
        test::run_matmul(*t, view, x.data(), n, y.data(), threads);
        ASSERT_TRUE(same_bits(y, full)) << "threads=" << threads;
        std::fill(y.begin(), y.end(), -1.0f);
        for (size_t tk = 0; tk < n; ++tk)
          test::run_matmul(*t, view, x.data() + tk * K, 1, y.data() + tk * rows, threads);
        ASSERT_TRUE(same_bits(y, full)) << "n=1, threads=" << threads;
      }
    }
  }
}

// ---- a real tensor -------------------------------------------------------------------------

void fixture_tensor_check(const std::string& file, const char* tensor, DType want) {
  std::unique_ptr<GgufFile> f;
  const Status st = GgufFile::Open(testing::fixture("models/" + file), &f);
  ASSERT_TRUE(st.ok()) << st.message();
  const GgufTensor* w = f->FindTensor(tensor);
  ASSERT_NE(w, nullptr) << tensor;
  ASSERT_EQ(w->type, want);
  const size_t K = size_t(w->ne[0]), rows = size_t(w->rows());
  const MatView view{w->type, w->data, rows, K, 0};
  std::mt19937 g(29);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (size_t n : {1, 5}) {
    std::vector<float> x(n * K);
    for (auto& v : x) v = nd(g);
    std::vector<float> ref(n * rows);
    test::run_matmul(reference(), view, x.data(), n, ref.data(), 1);
    for (const Table* t : tables()) {
      std::vector<float> y(n * rows);
      test::run_matmul(*t, view, x.data(), n, y.data(), 2);
      EXPECT_TRUE(same_bits(y, ref)) << t->name << " " << file << " n=" << n;
    }
    // Against the float dot of the dequantized tensor: the derived bound (quantization of
    // x + rounding), and the relative error over the whole output as a sanity figure.
    const DType act = activation_type(want);
    const size_t be = block_elems(act);
    double num = 0, den = 0;
    for (size_t tk = 0; tk < n; ++tk)
      for (size_t r = 0; r < rows; ++r) {
        const Deq dw = dequant_row(want, w->data + r * row_bytes(want, K), K);
        const float* xt = x.data() + tk * K;
        double exact = 0, bound = 0, mag = 0;
        for (size_t b = 0; b < K / be; ++b) {
          double amax = 0;
          for (size_t i = 0; i < be; ++i) amax = std::max(amax, std::fabs(double(xt[b * be + i])));
          const double e = quant_error_bound(act, amax);
          for (size_t i = 0; i < be; ++i) {
            exact += dw.v[b * be + i] * xt[b * be + i];
            bound += std::fabs(dw.v[b * be + i]) * e;
            mag += dw.mag[b * be + i] * (std::fabs(xt[b * be + i]) + e);
          }
        }
        const double tol = bound + gamma(float_terms(want, K) + 2) * mag + K * 0x1p-52 * mag;
        ASSERT_LE(std::fabs(ref[tk * rows + r] - exact), tol) << "r " << r;
        num += (ref[tk * rows + r] - exact) * (ref[tk * rows + r] - exact);
        den += exact * exact;
      }
    std::printf("[ kernels  ] %s %s %zux%zu n=%zu: rel. rms error of Q8 activations %.2e\n",
                file.c_str(), tensor, rows, K, n, std::sqrt(num / den));
  }
}

TEST(QMatmulFixture, TinyLlamaAttnQ) {
  fixture_tensor_check("tiny-llama-gqa-q4_0.gguf", "blk.0.attn_q.weight", DType::Q4_0);
  fixture_tensor_check("tiny-llama-gqa-q8_0.gguf", "blk.0.attn_q.weight", DType::Q8_0);
  fixture_tensor_check("tiny-llama-gqa-q4_0.gguf", "blk.0.ffn_down.weight", DType::Q4_0);
  fixture_tensor_check("tiny-llama256-q4_1.gguf", "blk.0.attn_q.weight", DType::Q4_1);
  fixture_tensor_check("tiny-llama256-q4_1.gguf", "blk.1.ffn_down.weight", DType::Q4_1);
  fixture_tensor_check("tiny-llama256-q5_0.gguf", "blk.0.attn_q.weight", DType::Q5_0);
  fixture_tensor_check("tiny-gemma3w640-q4_k_m.gguf", "blk.0.ffn_up.weight", DType::Q5_0);
  fixture_tensor_check("tiny-llama256-iq4_nl.gguf", "blk.0.attn_q.weight", DType::IQ4_NL);
  fixture_tensor_check("tiny-llama256-q5_1.gguf", "blk.0.attn_q.weight", DType::Q5_1);
  fixture_tensor_check("tiny-llama256-q5_k_m.gguf", "blk.0.attn_q.weight", DType::Q5_K);
  fixture_tensor_check("tiny-llama256-q5_k_m.gguf", "blk.0.ffn_down.weight", DType::Q5_K);
  fixture_tensor_check("tiny-llama256-q4_k_s.gguf", "blk.1.attn_v.weight", DType::Q5_K);
  fixture_tensor_check("tiny-llama256-iq4_xs.gguf", "blk.0.attn_q.weight", DType::IQ4_XS);
  fixture_tensor_check("tiny-llama256-q2_k.gguf", "blk.0.attn_q.weight", DType::Q2_K);
  fixture_tensor_check("tiny-llama256-q2_k.gguf", "blk.0.attn_v.weight", DType::Q3_K);
}

}  // namespace
}  // namespace ember::kernels
