// Every kernel of every table this CPU can run, against the scalar reference
// (kernels/scalar.cpp), over lengths 0..kMaxLen and pointers offset by one float.
//
// Tolerances are derived, not tuned. u = 2^-24 is the unit roundoff of float; a
// correctly rounded operation has relative error <= u, and 1 ulp of y is <= 2u|y|
// for normal y. Summing n terms in any order (sequential, lane-parallel, tree)
// with products rounded or fused errs by at most gamma_n * sum|terms|, gamma_n =
// n u / (1 - n u) <= (n + 1) u here, so two such sums differ by <= 2 (n + 1) u sum|.|.
//
// Transcendentals: the SIMD tables use xsimd 8.1's float exp and tanh. Measured
// over a scan of every 64th float (AVX2 and NEON builds, against double):
// xsimd::exp <= 1.51 ulp on (-87, 88.37), xsimd::tanh <= 1.62 ulp; glibc's expf
// <= 0.51 ulp, tanhf <= 2.13 ulp. Budgets used below: exp 2 ulp (fast) + 1 ulp
// (reference), tanh 2 ulp (fast) + 3 ulp (reference). xsimd::exp returns 0 below
// -87.34 (where expf is subnormal) and inf from 88.37 on: inputs stay in ranges
// where that does not matter, or an absolute floor of 2^-126 covers it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "support/matmul.h"

namespace ember::kernels {
namespace {

constexpr double kU = 0x1p-24;           // unit roundoff of float
constexpr double kMinNormal = 0x1p-126;  // smallest normal float
constexpr size_t kMaxLen = 70;           // > 2 x (4 accumulators x 8 lanes) on AVX2
const float kInf = std::numeric_limits<float>::infinity();

// Every table this CPU can run, the reference included.
std::vector<const Table*> tables() {
  std::vector<const Table*> v;
  for (int i = 0; i < static_cast<int>(Isa::kCount); ++i)
    if (const Table* t = table_for(static_cast<Isa>(i))) v.push_back(t);
  return v;
}

// A float buffer whose data starts `off` floats into its allocation (off = 1: only
// 4-byte aligned), with guard floats after it that must stay untouched.
struct Buf {
  static constexpr float kGuard = 12345.0f;
  std::vector<float> mem;
  float* p;
  size_t n;
  Buf(size_t n_, size_t off) : mem(n_ + off + 8, kGuard), p(mem.data() + off), n(n_) {}
  float& operator[](size_t i) { return p[i]; }
  bool guards_intact() const {
    for (size_t i = 0; i < 8; ++i)
      if (p[n + i] != kGuard) return false;
    return true;
  }
};

std::vector<float> uniform(std::mt19937& g, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// Worst |fast - ref| / tol over one case; reports the first offending index.
struct Check {
  double worst = 0;
  size_t at = 0;
  void operator()(size_t i, double fast, double ref, double tol) {
    if (fast == ref || (std::isnan(fast) && std::isnan(ref))) return;
    const double r = std::isfinite(fast - ref) && tol > 0 ? std::fabs(fast - ref) / tol
                                                          : std::numeric_limits<double>::infinity();
    if (r > worst) worst = r, at = i;
  }
  bool ok() const { return worst <= 1.0; }
};

// Worst |fast - ref| / tol per (kernel, table) over the run, printed at the end: how
// much of each derived bound is used (a bound used to 1% says little).
std::map<std::string, double>& worst_seen() {
  static std::map<std::string, double> m;
  return m;
}
void note(const std::string& what, const Table& t, const Check& c) {
  double& w = worst_seen()[what + " " + t.name];
  if (c.worst > w) w = c.worst;
}
struct PrintWorst : ::testing::Environment {
  void TearDown() override {
    for (const auto& [k, v] : worst_seen())
      std::printf("[ kernels  ] %-24s worst/tol %.3f\n", k.c_str(), v);
  }
};
const auto* const kPrintWorst = ::testing::AddGlobalTestEnvironment(new PrintWorst);

std::string where(const Table* t, size_t n, size_t off) {
  return std::string(t->name) + " n=" + std::to_string(n) + " off=" + std::to_string(off);
}

// Runs body(table, n, off) for every table, n in 0..kMaxLen and both offsets.
template <class F>
void for_all(F body) {
  for (const Table* t : tables())
    for (size_t off : {0, 1})
      for (size_t n = 0; n <= kMaxLen; ++n) {
        SCOPED_TRACE(where(t, n, off));
        body(*t, n, off);
      }
}

// ---- dispatch -------------------------------------------------------------------

TEST(Dispatch, TablesAndNames) {
  EXPECT_EQ(reference().isa, Isa::kScalar);
  EXPECT_EQ(table_for(Isa::kScalar), &reference());
  EXPECT_STREQ(isa_name(Isa::kScalar), "scalar");
  EXPECT_STREQ(isa_name(Isa::kAvx2), "avx2");
  EXPECT_STREQ(isa_name(Isa::kNeon), "neon");
  for (const Table* t : tables()) {
    EXPECT_EQ(table_for(t->isa), t);
    EXPECT_STREQ(t->name, isa_name(t->isa));
    // Every pointer filled.
    EXPECT_TRUE(t->dot && t->axpy && t->scale && t->add && t->rmsnorm && t->softmax && t->exp_sum &&
                t->silu_mul && t->gelu_mul && t->softcap && t->rope_norm && t->rope_neox &&
                t->f16_to_f32 && t->bf16_to_f32 && t->f32_to_f16 && t->q8_0_to_f32)
        << t->name;
    for (DType f : {DType::F32, DType::F16, DType::BF16})
      EXPECT_TRUE(matmul_fn(*t, f) && matmul_fn(*t, f) == t->of(f).matmul) << dtype_name(f);
    EXPECT_EQ(matmul_fn(*t, DType::Q4_0), nullptr);  // quantized weights: qmatmul_fn
  }
  const CpuFeatures& f = cpu_features();
#if defined(EMBER_HAVE_AVX2)
  EXPECT_EQ(table_for(Isa::kAvx2) != nullptr, f.avx2 && f.fma && f.f16c);
#else
  EXPECT_EQ(table_for(Isa::kAvx2), nullptr);
#endif
#if defined(EMBER_HAVE_NEON)
  EXPECT_EQ(table_for(Isa::kNeon) != nullptr, f.neon);
#else
  EXPECT_EQ(table_for(Isa::kNeon), nullptr);
#endif
  std::printf("[ kernels  ] tables:");
  for (const Table* t : tables()) std::printf(" %s", t->name);
  std::printf("; best: %s\n", best().name);
}

TEST(Dispatch, BestIsTheFastestAvailable) {
  for (const Table* t : tables()) EXPECT_LE(static_cast<int>(t->isa), static_cast<int>(best().isa));
  // EMBER_REFERENCE=1 only sets the default of the engine's switch (ContextParams).
  const char* env = std::getenv("EMBER_REFERENCE");
  EXPECT_EQ(reference_requested_by_env(), env && std::string(env) == "1");
}

// ---- vectors ----------------------------------------------------------------------

// dot: both sums err by <= gamma_n sum|a_i b_i| -> |fast - ref| <= 2 (n + 1) u sum|a_i b_i|.
TEST(Kernels, Dot) {
  std::mt19937 g(1);
  for_all([&](const Table& t, size_t n, size_t off) {
    Buf a(n, off), b(n, off);
    auto va = uniform(g, n, -1, 1), vb = uniform(g, n, -1, 1);
    double mag = 0;
    for (size_t i = 0; i < n; ++i)
      a[i] = va[i], b[i] = vb[i], mag += std::fabs(double(va[i]) * vb[i]);
    const float fast = t.dot(a.p, b.p, n), ref = reference().dot(va.data(), vb.data(), n);
    if (n == 0) {
      EXPECT_EQ(fast, 0.0f);
    }
    Check c;
    c(0, fast, ref, 2 * (n + 1) * kU * mag);
    note("Dot", t, c);
    EXPECT_TRUE(c.ok()) << fast << " vs " << ref << " worst/tol=" << c.worst;
  });
}

// axpy: ref = fl(fl(a x) + y); a fused fast = fl(a x + y). Each is within
// u|ax + y| + u|ax| of exact: |fast - ref| <= 2u (2|a x| + |y|). scale and add are
// one correctly rounded operation: exact.
TEST(Kernels, AxpyScaleAdd) {
  std::mt19937 g(2);
  for_all([&](const Table& t, size_t n, size_t off) {
    auto x = uniform(g, n, -2, 2), y = uniform(g, n, -2, 2);
    const float a = 0.37f;
    Buf bx(n, off), by(n, off);
    for (size_t i = 0; i < n; ++i) bx[i] = x[i], by[i] = y[i];
    std::vector<float> ry = y;
    t.axpy(a, bx.p, by.p, n);
    reference().axpy(a, x.data(), ry.data(), n);
    Check c;
    for (size_t i = 0; i < n; ++i)
      c(i, by[i], ry[i], 2 * kU * (2 * std::fabs(double(a) * x[i]) + std::fabs(y[i])));
    note("Axpy", t, c);
    EXPECT_TRUE(c.ok()) << "axpy i=" << c.at << " worst/tol=" << c.worst;
    EXPECT_TRUE(by.guards_intact());

    for (size_t i = 0; i < n; ++i) by[i] = y[i];
    ry = y;
    t.scale(by.p, -1.7f, n);
    reference().scale(ry.data(), -1.7f, n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(by[i], ry[i]) << "scale i=" << i;
    EXPECT_TRUE(by.guards_intact());

    for (size_t i = 0; i < n; ++i) by[i] = y[i];
    ry = y;
    t.add(by.p, bx.p, n);
    reference().add(ry.data(), x.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(by[i], ry[i]) << "add i=" << i;
    EXPECT_TRUE(by.guards_intact());
  });
}

// rmsnorm: each sum of squares errs by <= gamma_n relative (positive terms); /n,
// +eps, sqrt (halves the relative error), 1/x add <= 3u, so each inverse norm is
// within gamma_n/2 + 3u: they differ by <= gamma_n + 6u. Then x*inv*w: 2 roundings
// each side. |fast - ref| <= ((n + 1) + 10) u |ref|.
TEST(Kernels, Rmsnorm) {
  std::mt19937 g(3);
  for_all([&](const Table& t, size_t n, size_t off) {
    auto x = uniform(g, n, -2, 2), w = uniform(g, n, 0.5f, 1.5f);
    for (bool with_w : {true, false}) {
      for (bool alias : {false, true}) {
        Buf bx(n, off), bw(n, off), bo(n, off);
        for (size_t i = 0; i < n; ++i) bx[i] = x[i], bw[i] = w[i];
        std::vector<float> ref(n);
        reference().rmsnorm(ref.data(), x.data(), with_w ? w.data() : nullptr, n, 1e-5f);
        float* out = alias ? bx.p : bo.p;
        t.rmsnorm(out, bx.p, with_w ? bw.p : nullptr, n, 1e-5f);
        Check c;
        for (size_t i = 0; i < n; ++i) c(i, out[i], ref[i], (n + 11) * kU * std::fabs(ref[i]));
        note("Rmsnorm", t, c);
        EXPECT_TRUE(c.ok()) << "w=" << with_w << " alias=" << alias << " i=" << c.at
                            << " worst/tol=" << c.worst;
        EXPECT_TRUE(bx.guards_intact() && bo.guards_intact());
      }
    }
  });
  // The reference against the formula in double: 2u headroom per float operation.
  std::vector<float> x = {3.0f, -4.0f}, out(2);
  reference().rmsnorm(out.data(), x.data(), nullptr, 2, 0.0f);
  EXPECT_NEAR(out[0], 3.0 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(out[1], -4.0 / std::sqrt(12.5), 1e-6);
}

// softmax: x - max is the same operation on the same values in both. exp: 2 ulp +
// 1 ulp = 6u relative; each sum of positive terms adds gamma_n relative (2 gamma_n
// together) on top of its terms' exp errors (6u); 1/sum and the multiply 4u.
// |fast - ref| <= (2 (n + 1) + 16) u |ref| + 2^-126 (exp flushing to 0 below
// -87.34; sum >= 1 since the max term is exp(0)).
TEST(Kernels, Softmax) {
  std::mt19937 g(4);
  for_all([&](const Table& t, size_t n, size_t off) {
    auto x = uniform(g, n, -20, 20);
    for (size_t i = 3; i < n; i += 7) x[i] = -kInf;  // masked positions
    if (n > 5) x[5] = -100.0f;                       // exp underflows
    Buf b(n, off);
    for (size_t i = 0; i < n; ++i) b[i] = x[i];
    std::vector<float> ref = x;
    t.softmax(b.p, n);
    reference().softmax(ref.data(), n);
    Check c;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      c(i, b[i], ref[i], (2 * (n + 1) + 16) * kU * std::fabs(ref[i]) + kMinNormal);
      sum += b[i];
      if (x[i] == -kInf) {
        EXPECT_EQ(b[i], 0.0f);
      }
    }
    note("Softmax", t, c);
    EXPECT_TRUE(c.ok()) << "i=" << c.at << " worst/tol=" << c.worst;
    if (n) {
      EXPECT_NEAR(sum, 1.0, 2 * (n + 4) * kU);
    }
    EXPECT_TRUE(b.guards_intact());
  });
}

// exp_sum: each exp within 6u relative of the reference's (as Softmax above); the sums
// of positive terms within gamma_n each (2 gamma_n together) on top of those: the sum
// within (2 n + 6) u of the reference's, each element within 6u (+ 2^-126 flushing).
TEST(Kernels, ExpSum) {
  std::mt19937 g(41);
  for_all([&](const Table& t, size_t n, size_t off) {
    auto x = uniform(g, n, -20, 20);
    for (size_t i = 3; i < n; i += 7) x[i] = -kInf;  // masked positions
    const float mx = 7.5f;                           // any shift: the caller's running max
    Buf b(n, off);
    for (size_t i = 0; i < n; ++i) b[i] = x[i];
    std::vector<float> ref = x;
    const float s = t.exp_sum(b.p, mx, n);
    const float s_ref = reference().exp_sum(ref.data(), mx, n);
    Check c;
    for (size_t i = 0; i < n; ++i) {
      c(i, b[i], ref[i], 6 * kU * std::fabs(ref[i]) + kMinNormal);
      if (x[i] == -kInf) {
        EXPECT_EQ(b[i], 0.0f);
      }
    }
    note("ExpSum", t, c);
    EXPECT_TRUE(c.ok()) << "i=" << c.at << " worst/tol=" << c.worst;
    EXPECT_NEAR(s, s_ref, (2 * n + 6) * kU * s_ref + n * kMinNormal);
    EXPECT_TRUE(b.guards_intact());
  });
}

// silu(g) u = g / (1 + E) * u, E = exp(-g): E differs by 6u relative; 1 + E passes
// at most that on (E / (1 + E) <= 1), plus one rounding each side; the divide and the
// multiply one each. |fast - ref| <= 12u |ref|. Inputs |g| <= 20 keep E finite.
TEST(Kernels, SiluMul) {
  std::mt19937 g(5);
  for_all([&](const Table& t, size_t n, size_t off) {
    auto x = uniform(g, n, -20, 20), u = uniform(g, n, -2, 2);
    Buf bg(n, off), bu(n, off);
    for (size_t i = 0; i < n; ++i) bg[i] = x[i], bu[i] = u[i];
    std::vector<float> ref = x;
    t.silu_mul(bg.p, bu.p, n);
    reference().silu_mul(ref.data(), u.data(), n);
    Check c;
    for (size_t i = 0; i < n; ++i) c(i, bg[i], ref[i], 12 * kU * std::fabs(ref[i]));
    note("SiluMul", t, c);
    EXPECT_TRUE(c.ok()) << "i=" << c.at << " worst/tol=" << c.worst;
    EXPECT_TRUE(bg.guards_intact());
  });
}

// gelu(g) u = 0.5 g (1 + T) u with T = tanh(z); z is computed by the same float
// operations in both. The reference: T within 3 ulp <= 6u |T| <= 6u, 1 + T rounded
// (<= 2u), times 0.5|g u|: 4u |g u|, plus two roundings of |ref| <= |g u|: 6u |g u|.
// The SIMD tables compute g / (1 + E) u, E = exp(-2z) (-2z exact) within 2 ulp <= 4u E:
// relative 4u E / (1 + E) in 1 + E, plus the roundings of 1 + E, the division and the
// product: (4u E / (1 + E) + 3u) |g u| / (1 + E) <= (4u / 4 + 3u) |g u| = 4u |g u|.
// |fast - ref| <= 10u |g u|, tested at 11u. Relative to |ref| would not do: 1 + T
// cancels for g << 0.
TEST(Kernels, GeluMul) {
  std::mt19937 g(6);
  for_all([&](const Table& t, size_t n, size_t off) {
    auto x = uniform(g, n, -12, 12), u = uniform(g, n, -2, 2);
    Buf bg(n, off), bu(n, off);
    for (size_t i = 0; i < n; ++i) bg[i] = x[i], bu[i] = u[i];
    std::vector<float> ref = x;
    t.gelu_mul(bg.p, bu.p, n);
    reference().gelu_mul(ref.data(), u.data(), n);
    Check c;
    for (size_t i = 0; i < n; ++i) c(i, bg[i], ref[i], 11 * kU * std::fabs(double(x[i]) * u[i]));
    note("GeluMul", t, c);
    EXPECT_TRUE(c.ok()) << "i=" << c.at << " worst/tol=" << c.worst;
    EXPECT_TRUE(bg.guards_intact());
  });
  // The reference against the formula in double, |g| <= 12.
  std::vector<float> x = {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f}, one(x.size(), 1.0f);
  std::vector<float> y = x;
  reference().gelu_mul(y.data(), one.data(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double e =
        0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y[i], e, 32 * kU * std::fabs(v)) << x[i];
  }
}

// softcap: x / cap is the same operation in both; tanh differs by 5 ulp <= 10u |T|;
// times cap one rounding each side: |fast - ref| <= 12u |ref| + cap 2^-126.
TEST(Kernels, Softcap) {
  std::mt19937 g(7);
  for_all([&](const Table& t, size_t n, size_t off) {
    for (float cap : {30.0f, 50.0f}) {
      auto x = uniform(g, n, -200, 200);
      Buf b(n, off);
      for (size_t i = 0; i < n; ++i) b[i] = x[i];
      std::vector<float> ref = x;
      t.softcap(b.p, cap, n);
      reference().softcap(ref.data(), cap, n);
      Check c;
      for (size_t i = 0; i < n; ++i)
        c(i, b[i], ref[i], 12 * kU * std::fabs(ref[i]) + cap * kMinNormal);
      note("Softcap", t, c);
      EXPECT_TRUE(c.ok()) << "cap=" << cap << " i=" << c.at << " worst/tol=" << c.worst;
      EXPECT_TRUE(b.guards_intact());
    }
  });
}

// Rope against the formula in double: x0 c - x1 s in float (two products, one
// difference, fused or not) is (a (1 + d1) - b (1 + d2)) (1 + d3), |d| <= u: it errs
// by <= (2u + u^2) (|x0 c| + |x1 s|); the double formula by far less than u^2.
// Unrotated dims (>= rot_dim) must be untouched.
TEST(Kernels, Rope) {
  std::mt19937 g(8);
  for (const Table* t : tables()) {
    for (bool neox : {false, true}) {
      for (size_t head_dim : {2, 8, 14, 64, 80, 128}) {
        for (size_t rot_dim : {head_dim, head_dim / 2 - (head_dim / 2) % 2}) {
          for (size_t off : {0, 1}) {
            const size_t n_heads = 3, half = rot_dim / 2;
            SCOPED_TRACE(where(t, head_dim, off) + " rot_dim=" + std::to_string(rot_dim) +
                         (neox ? " neox" : " norm"));
            auto x = uniform(g, n_heads * head_dim, -3, 3);
            auto ang = uniform(g, half, -3.1f, 3.1f);
            std::vector<float> cs(half), sn(half);
            for (size_t i = 0; i < half; ++i) cs[i] = std::cos(ang[i]), sn[i] = std::sin(ang[i]);
            Buf b(x.size(), off), bc(half, off), bs(half, off);
            for (size_t i = 0; i < x.size(); ++i) b[i] = x[i];
            for (size_t i = 0; i < half; ++i) bc[i] = cs[i], bs[i] = sn[i];
            (neox ? t->rope_neox : t->rope_norm)(b.p, n_heads, head_dim, rot_dim, bc.p, bs.p);
            Check c;
            for (size_t h = 0; h < n_heads; ++h) {
              const float* v = x.data() + h * head_dim;
              const float* o = b.p + h * head_dim;
              for (size_t i = 0; i < half; ++i) {
                const size_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
                const double x0 = v[i0], x1 = v[i1], co = cs[i], si = sn[i];
                const double e = 2 * kU + 2 * kU * kU;
                const double tol = e * (std::fabs(x0 * co) + std::fabs(x1 * si));
                const double tol1 = e * (std::fabs(x0 * si) + std::fabs(x1 * co));
                c(h * head_dim + i0, o[i0], x0 * co - x1 * si, tol);
                c(h * head_dim + i1, o[i1], x0 * si + x1 * co, tol1);
              }
              for (size_t i = rot_dim; i < head_dim; ++i) EXPECT_EQ(o[i], v[i]);
            }
            note("Rope", *t, c);
            EXPECT_TRUE(c.ok()) << "i=" << c.at << " worst/tol=" << c.worst;
            EXPECT_TRUE(b.guards_intact());
          }
        }
      }
    }
  }
}

// ---- conversions: exact, bit for bit, against quant/fp16.h -------------------------

TEST(Conversions, F16ToF32AllHalves) {
  std::vector<uint16_t> h(65536 + 1);
  for (uint32_t i = 0; i < 65536; ++i) h[i + 1] = static_cast<uint16_t>(i);
  for (const Table* t : tables()) {
    for (size_t off : {0, 1}) {  // off 1: misaligned source and a tail (65535 values)
      const size_t n = 65536 - off;
      std::vector<float> y(n + off + 1, 7.0f);
      t->f16_to_f32(h.data() + 1 + off, y.data() + off, n);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(fp32_to_bits(y[off + i]), fp32_to_bits(fp16_to_fp32(h[1 + off + i])))
            << t->name << " half 0x" << std::hex << h[1 + off + i];
      EXPECT_EQ(y[n + off], 7.0f);
    }
  }
}

TEST(Conversions, Bf16ToF32AllValues) {
  std::vector<uint16_t> h(65536 + 1);
  for (uint32_t i = 0; i < 65536; ++i) h[i + 1] = static_cast<uint16_t>(i);
  for (const Table* t : tables()) {
    for (size_t off : {0, 1}) {
      const size_t n = 65536 - off;
      std::vector<float> y(n + off + 1, 7.0f);
      t->bf16_to_f32(h.data() + 1 + off, y.data() + off, n);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(fp32_to_bits(y[off + i]), fp32_to_bits(bf16_to_fp32(h[1 + off + i])))
            << t->name << " bf16 0x" << std::hex << h[1 + off + i];
      EXPECT_EQ(y[n + off], 7.0f);
    }
  }
}

// Every half, its float neighbours, every tie between adjacent halves (normal and
// subnormal) and its neighbours, overflow and underflow edges, float subnormals,
// infinities, NaNs with assorted payloads (quiet and signalling), random patterns.
std::vector<float> f32_to_f16_inputs() {
  std::vector<uint32_t> bits;
  auto add = [&bits](float f) {
    const uint32_t b = fp32_to_bits(f);
    bits.push_back(b);
    bits.push_back(b + 1);
    bits.push_back(b - 1);
  };
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const float a = fp16_to_fp32(static_cast<uint16_t>(sign | h));
      const float b = fp16_to_fp32(static_cast<uint16_t>(sign | (h + 1)));  // h + 1 may be inf
      add(a);
      if (std::isfinite(b)) add(static_cast<float>((double(a) + double(b)) / 2));  // exact tie
    }
  }
  for (float f :
       {65504.0f, 65519.0f, 65520.0f, 65536.0f, 1e10f, 3.4e38f, 0x1p-24f, 0x1p-25f, 0x1p-26f,
        0x1.8p-25f, 0x1p-14f, 0x1p-15f, 1e-30f, 0x1p-126f, 0x1p-149f, 0x1p-140f, kInf}) {
    add(f);
    add(-f);
  }
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0x7fffffffu, 0x7fa00000u, 0x7f802000u, 0x7fc01234u,
                       0x7f801fffu, 0xffc00000u, 0xff800001u, 0xffffffffu})
    bits.push_back(nan);
  std::mt19937 g(9);
  for (int i = 0; i < (1 << 20); ++i) bits.push_back(static_cast<uint32_t>(g()));
  std::vector<float> v(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) v[i] = fp32_from_bits(bits[i]);
  return v;
}

TEST(Conversions, F32ToF16MatchesReferenceBitForBit) {
  const std::vector<float> x = f32_to_f16_inputs();
  std::vector<uint16_t> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = fp32_to_fp16(x[i]);
  for (const Table* t : tables()) {
    for (size_t off : {0, 1}) {
      const size_t n = x.size() - off;
      Buf bx(n, off);
      std::memcpy(bx.p, x.data() + off, n * sizeof(float));
      std::vector<uint16_t> y(n + 1, 0xabcd);
      t->f32_to_f16(bx.p, y.data(), n);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(y[i], ref[off + i])
            << t->name << " float bits 0x" << std::hex << fp32_to_bits(x[off + i]);
      EXPECT_EQ(y[n], 0xabcd);
    }
    // Short lengths: only the tail path.
    for (size_t n = 0; n <= kMaxLen; ++n) {
      std::vector<uint16_t> y(n + 1, 0xabcd);
      t->f32_to_f16(x.data() + 1000, y.data(), n);
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], ref[1000 + i]) << t->name << " n=" << n;
      EXPECT_EQ(y[n], 0xabcd);
    }
  }
}

// Q8_0 to float: float(q) * d is exact in the conversion and one rounding in the multiply,
// so every table gives the reference's bits: random blocks, extreme codes and scales
// (subnormal, largest, infinite and NaN fp16 scales), misaligned (odd address) rows.
TEST(Conversions, Q8_0ToF32MatchesReferenceBitForBit) {
  std::mt19937 g(12);
  const size_t nb = 64;
  std::vector<uint8_t> bytes(1 + nb * sizeof(BlockQ8_0));
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(g());
  auto* blocks = reinterpret_cast<BlockQ8_0*>(bytes.data() + 1);  // odd address
  const uint16_t scales[] = {0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3c00};
  for (size_t i = 0; i < std::size(scales); ++i) {
    BlockQ8_0 b;
    std::memcpy(&b, &blocks[i], sizeof b);
    b.d = scales[i];
    b.qs[0] = -128, b.qs[1] = 127;
    std::memcpy(&blocks[i], &b, sizeof b);
  }
  std::vector<float> ref(nb * 32);
  reference().q8_0_to_f32(blocks, ref.data(), ref.size());
  for (const Table* t : tables())
    for (size_t n : {size_t{32}, size_t{96}, nb * 32}) {
      std::vector<float> y(n + 1, 7.0f);
      t->q8_0_to_f32(blocks, y.data(), n);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(fp32_to_bits(y[i]), fp32_to_bits(ref[i])) << t->name << " element " << i;
      EXPECT_EQ(y[n], 7.0f);
    }
}

// ---- matmul ------------------------------------------------------------------------

// A weight matrix of `type` with row stride of K + pad elements, starting `off`
// elements into its buffer (misaligned for off = 1), and its values as floats.
struct Weights {
  DType type;
  size_t rows, K, stride_elems, elem;
  std::vector<uint8_t> mem;
  const uint8_t* data;
  std::vector<float> values;  // [rows][K]: the exact float value of every weight
  Weights(DType t, size_t rows_, size_t K_, size_t pad, size_t off, std::mt19937& g)
      : type(t),
        rows(rows_),
        K(K_),
        stride_elems(K_ + pad),
        elem(t == DType::F32 ? 4 : 2),
        mem((rows_ * (K_ + pad) + off + 1) * elem),
        data(mem.data() + off * elem),
        values(rows_ * K_) {
    auto v = uniform(g, rows * K, -1, 1);
    for (size_t r = 0; r < rows; ++r)
      for (size_t k = 0; k < K; ++k) {
        uint8_t* p = mem.data() + (off + r * stride_elems + k) * elem;
        const float f = v[r * K + k];
        if (t == DType::F32) {
          std::memcpy(p, &f, 4);
          values[r * K + k] = f;
        } else {
          const uint16_t h = t == DType::F16 ? fp32_to_fp16(f) : fp32_to_bf16(f);
          std::memcpy(p, &h, 2);
          values[r * K + k] = t == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
        }
      }
  }
  size_t stride() const { return stride_elems * elem; }
};

const DType kMatTypes[] = {DType::F32, DType::F16, DType::BF16};

// Each output is a dot of K exact float weights with K floats:
// |fast - ref| <= 2 (K + 1) u sum_k |w_rk x_tk| (the dot bound).
TEST(Matmul, MatchesReferenceWithinDotBound) {
  std::mt19937 g(10);
  for (const Table* t : tables()) {
    for (DType type : kMatTypes) {
      for (size_t rows : {1, 4, 5, 9, 17, 33}) {
        for (size_t K :
             {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70, 129, 300}) {
          for (size_t n : {1, 2, 3, 4, 5, 7, 8}) {
            const size_t off = (rows + K + n) % 2, pad = off;
            SCOPED_TRACE(std::string(t->name) + " " + dtype_name(type) +
                         " rows=" + std::to_string(rows) + " K=" + std::to_string(K) +
                         " n=" + std::to_string(n) + " off=" + std::to_string(off));
            Weights w(type, rows, K, pad, off, g);
            auto x = uniform(g, n * K, -1, 1);
            Buf bx(n * K, off);
            for (size_t i = 0; i < n * K; ++i) bx[i] = x[i];
            // ldy = rows + 3: outputs are strided like the header says.
            const size_t ldy = rows + 3;
            std::vector<float> y(n * ldy, 99.0f), ref(n * ldy, 99.0f);
            std::vector<float> rows_buf(kFloatGemmRows * K);  // the planned path
            matmul_fn(*t, type)(w.data, w.stride(), bx.p, K, n, K, y.data(), ldy, 0, rows,
                                rows_buf.data());
            matmul_fn(reference(), type)(w.data, w.stride(), x.data(), K, n, K, ref.data(), ldy, 0,
                                         rows, nullptr);
            Check c;
            for (size_t tk = 0; tk < n; ++tk) {
              for (size_t r = 0; r < rows; ++r) {
                double mag = 0;
                for (size_t k = 0; k < K; ++k)
                  mag += std::fabs(double(w.values[r * K + k]) * x[tk * K + k]);
                c(tk * ldy + r, y[tk * ldy + r], ref[tk * ldy + r], 2 * (K + 1) * kU * mag);
              }
              for (size_t r = rows; r < ldy; ++r) ASSERT_EQ(y[tk * ldy + r], 99.0f);
            }
            note("Matmul " + std::string(dtype_name(type)), *t, c);
            EXPECT_TRUE(c.ok()) << "at " << c.at << " worst/tol=" << c.worst;
          }
        }
      }
    }
  }
}

// The engine relies on this: an output element does not depend on how rows are
// split (r0, r1) or on how many tokens are batched (hence not on the thread count).
TEST(Matmul, BitwiseIndependentOfSplitAndBatch) {
  std::mt19937 g(11);
  const size_t rows = 100, K = 300, n = 7;  // K % 8 = 4: the tail path too
  for (const Table* t : tables()) {
    for (DType type : kMatTypes) {
      SCOPED_TRACE(std::string(t->name) + " " + dtype_name(type));
      Weights w(type, rows, K, 0, 0, g);
      const MatmulFn fn = matmul_fn(*t, type);
      auto x = uniform(g, n * K, -1, 1);
      std::vector<float> full(n * rows);
      std::vector<float> rows_buf(kFloatGemmRows * K);
      fn(w.data, w.stride(), x.data(), K, n, K, full.data(), rows, 0, rows, rows_buf.data());
      auto same = [&](const std::vector<float>& y, const char* what) {
        EXPECT_EQ(std::memcmp(y.data(), full.data(), full.size() * sizeof(float)), 0) << what;
      };
      // Random row splits, including empty and single-row ranges.
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> y(n * rows, -1.0f);
        for (size_t r0 = 0; r0 < rows;) {
          const size_t r1 = r0 + std::min<size_t>(rows - r0, g() % 23);
          fn(w.data, w.stride(), x.data(), K, n, K, y.data(), rows, r0, r1, rows_buf.data());
          r0 = r1;
        }
        same(y, "row split");
      }
      // Tokens one at a time, and in random groups.
      {
        std::vector<float> y(n * rows, -1.0f);
        for (size_t tk = 0; tk < n; ++tk)
          fn(w.data, w.stride(), x.data() + tk * K, K, 1, K, y.data() + tk * rows, rows, 0, rows, nullptr);
        same(y, "one token at a time");
        for (int trial = 0; trial < 10; ++trial) {
          std::fill(y.begin(), y.end(), -1.0f);
          for (size_t t0 = 0; t0 < n;) {
            const size_t m = std::min<size_t>(n - t0, 1 + g() % 5);
            fn(w.data, w.stride(), x.data() + t0 * K, K, m, K, y.data() + t0 * rows, rows, 0, rows,
               nullptr);  // on-the-fly conversion: the same values
            t0 += m;
          }
          same(y, "token groups");
        }
      }
      // matmul() on the calling thread (threads = 1; see MatmulThreads for more).
      MatView view{type, w.data, rows, K, 0};
      std::vector<float> y(n * rows, -1.0f);
      test::run_matmul(*t, view, x.data(), n, y.data(), 1);
      same(y, "matmul()");
    }
  }
}

// matmul() with 1..4 threads, batched and decode-style. A separate suite because it
// starts threads: user-mode qemu-aarch64 7.2 hangs in pthread_create on this CI's
// kernel, so cross runs filter it out (--gtest_filter=-MatmulThreads.*).
TEST(MatmulThreads, BitwiseIndependentOfThreadCount) {
  std::mt19937 g(13);
  const size_t rows = 100, K = 300, n = 7;  // 100 * 300 * 7 MACs: above the parallel threshold
  for (const Table* t : tables()) {
    for (DType type : kMatTypes) {
      SCOPED_TRACE(std::string(t->name) + " " + dtype_name(type));
      Weights w(type, rows, K, 0, 0, g);
      auto x = uniform(g, n * K, -1, 1);
      std::vector<float> full(n * rows);
      matmul_fn(*t, type)(w.data, w.stride(), x.data(), K, n, K, full.data(), rows, 0, rows, nullptr);
      MatView view{type, w.data, rows, K, 0};
      for (int threads : {1, 2, 3, 4}) {
        std::vector<float> y(n * rows, -1.0f);
        test::run_matmul(*t, view, x.data(), n, y.data(), threads);
        EXPECT_EQ(std::memcmp(y.data(), full.data(), y.size() * sizeof(float)), 0)
            << "threads=" << threads;
        std::fill(y.begin(), y.end(), -1.0f);
        for (size_t tk = 0; tk < n; ++tk)  // decode-style, one token per call
          test::run_matmul(*t, view, x.data() + tk * K, 1, y.data() + tk * rows, threads);
        EXPECT_EQ(std::memcmp(y.data(), full.data(), y.size() * sizeof(float)), 0)
            << "n=1, threads=" << threads;
      }
    }
  }
}

TEST(MatmulThreads, LargeShapeAgrees) {
  // 2053 rows of 256: 129 chunks, a real parallel region, F16 with 3 tokens.
  std::mt19937 g(12);
  const size_t rows = 2048 + 5, K = 256, n = 3;
  for (const Table* t : tables()) {
    Weights w(DType::F16, rows, K, 0, 0, g);
    auto x = uniform(g, n * K, -1, 1);
    MatView view{DType::F16, w.data, rows, K, w.stride()};
    std::vector<float> y1(n * rows), y3(n * rows);
    test::run_matmul(*t, view, x.data(), n, y1.data(), 1);
    test::run_matmul(*t, view, x.data(), n, y3.data(), 3);
    EXPECT_EQ(std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)), 0) << t->name;
  }
}

}  // namespace
}  // namespace ember::kernels
