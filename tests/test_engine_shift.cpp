// Context shift (Context::Shift): dropping a middle part of the cache and re-rotating
// the keys after it. Not the same as evaluating the kept tokens afresh (their keys and
// values above layer 0 attended to the dropped ones, in llama.cpp too), so the test is on
// the rows themselves: each moved key must be its old self rotated back by the discarded
// count, within the rounding of that rotation and of storing it again.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/generate/generator.h"
#include "engine/model/context.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "support/fixtures.h"

namespace ember {
namespace {

std::unique_ptr<Model> load(const std::string& rel) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(testing::fixture(rel), ModelParams{}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

std::unique_ptr<Context> make(const Model& m, DType cache, int32_t n_ctx, int32_t n_batch) {
  ContextParams cp;
  cp.n_ctx = n_ctx, cp.n_batch = n_batch, cp.n_threads = 2;
  cp.type_k = cp.type_v = cache;
  std::unique_ptr<Context> c;
  Status s = Context::Create(m, cp, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return c;
}

// A context's cache rows as floats: [layer][head][position][dim], positions [0, n).
std::vector<float> keys_of(const Context& c, int32_t n, bool values = false) {
  const KvCache& kv = c.kv_cache();
  const ModelConfig& mc = c.model().config();
  const int32_t dim = values ? mc.head_dim_v : mc.head_dim;
  std::vector<float> out(static_cast<size_t>(mc.n_layer) * mc.n_head_kv * n * dim);
  float* o = out.data();
  for (int32_t l = 0; l < mc.n_layer; ++l)
    for (int32_t h = 0; h < mc.n_head_kv; ++h)
      for (int32_t p = 0; p < n; ++p, o += dim)
        if (p >= kv.first_held(l, c.n_past()))
          KvCache::ToFloat(c.kernels(), values ? kv.type_v() : kv.type_k(), values ? kv.v_row(l, h, p) : kv.k_row(l, h, p),
                           o, dim);
  return out;
}

// Rotates x (one head) by -d in double: pairs (2i, 2i+1) or (i, i + rope_dim/2).
void rotate_back(const ModelConfig& c, const float* factors, int32_t layer, int32_t d, const float* x, double* y) {
  const bool swa = !c.layer_swa.empty() && c.layer_swa[layer];
  const double base = swa ? c.rope_freq_base_swa : c.rope_freq_base, scale = swa ? c.rope_freq_scale_swa : c.rope_freq_scale;
  const int32_t half = c.rope_dim / 2;
  for (int32_t i = 0; i < c.head_dim; ++i) y[i] = x[i];
  for (int32_t i = 0; i < half; ++i) {
    const double th = -d * scale * std::pow(base, -2.0 * i / c.rope_dim) / (factors ? factors[i] : 1.0);
    const int32_t a = c.rope_style == RopeStyle::kNorm ? 2 * i : i, b = c.rope_style == RopeStyle::kNorm ? 2 * i + 1 : i + half;
    y[a] = x[a] * std::cos(th) - x[b] * std::sin(th);
    y[b] = x[a] * std::sin(th) + x[b] * std::cos(th);
  }
}

// Evaluates 60 tokens, shifts (keep 4, discard 28), and checks every layer's rows: the kept
// ones untouched, the moved values the same bits, the moved keys the old ones rotated by
// -28 within the rounding: the float rotation (cos and sin rounded, two products and a
// sum: 4u of |x_a| + |x_b|) and, in F16 or Q8_0, storing again (2^-11 of the value, or
// half a Q8_0 step, amax/254 of the head's 32-block, with the fp16 scale's 2^-11).
TEST(ContextShift, MovesRowsAndRotatesKeysBackByTheDiscardedCount) {
  std::mt19937 g(21);
  std::vector<int32_t> ids(60);
  for (int32_t& id : ids) id = 1 + static_cast<int32_t>(g() % 500);
  const int32_t keep = 4, d = 28, n_after = 60 - d;
  for (const char* file : {"tiny-llama256-f32.gguf", "tiny-gemma3-f32.gguf", "tiny-qwen2-f32.gguf"}) {
    auto m = load(std::string("models/") + file);
    ASSERT_TRUE(m);
    const ModelConfig& c = m->config();
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
      if (t == DType::Q8_0 && c.head_dim % 32 != 0) continue;
      auto ctx = make(*m, t, 64, 8);  // gemma3: rings of 8 + 8 cells
      ASSERT_TRUE(ctx->Eval(ids.data(), ids.size()).ok());
      const std::vector<float> k0 = keys_of(*ctx, 60), v0 = keys_of(*ctx, 60, true);
      std::vector<int32_t> first(c.n_layer);
      for (int32_t l = 0; l < c.n_layer; ++l) first[l] = ctx->kv_cache().first_held(l, 60);
      ASSERT_TRUE(ctx->Shift(keep, d).ok());
      ASSERT_EQ(ctx->n_past(), n_after);
      const std::vector<float> k1 = keys_of(*ctx, 60), v1 = keys_of(*ctx, 60, true);
      const size_t hd = c.head_dim, hdv = c.head_dim_v;
      std::vector<double> want(hd);
      double worst = 0;  // |error| / bound
      size_t rows = 0;
      for (int32_t l = 0; l < c.n_layer; ++l)
        for (int32_t h = 0; h < c.n_head_kv; ++h)
          for (int32_t p = std::max(keep, first[l] - d); p < n_after; ++p, ++rows) {
            const size_t row = (static_cast<size_t>(l) * c.n_head_kv + h) * 60;
            const float* before = k0.data() + (row + p + d) * hd;
            const float* after = k1.data() + (row + p) * hd;
            EXPECT_TRUE(std::equal(v1.begin() + (row + p) * hdv, v1.begin() + (row + p + 1) * hdv,
                                   v0.begin() + (row + p + d) * hdv)) << file << " layer " << l << " value row " << p;
            rotate_back(c, m->rope_factors(64), l, d, before, want.data());
            for (size_t i = 0; i < hd; i += 32) {
              double amax = 0;
              for (size_t j = i; j < std::min(hd, i + 32); ++j) amax = std::max(amax, std::fabs(want[j]));
              for (size_t j = i; j < std::min(hd, i + 32); ++j) {
                const size_t half = c.rope_dim / 2;
                const size_t mate = c.rope_style == RopeStyle::kNorm ? (j ^ 1) : (j < half ? j + half : j - half);
                double bound = j < static_cast<size_t>(c.rope_dim) ? 4 * 0x1p-24 * (std::fabs(before[j]) + std::fabs(before[mate])) : 0;
                if (t == DType::F16) bound += 0x1p-11 * std::fabs(want[j]) + 0x1p-24;
                if (t == DType::Q8_0) bound += amax / 254 + amax * 0x1p-11;
                worst = std::max(worst, std::fabs(after[j] - want[j]) / (bound + 1e-30));
              }
            }
          }
      EXPECT_LE(worst, 1.0) << file << " " << dtype_name(t);
      EXPECT_GT(rows, 0u);
      // Rows below keep are untouched (full layers; rings no longer hold them).
      for (int32_t l = 0; l < c.n_layer; ++l)
        for (int32_t p = first[l]; p < keep; ++p) {
          const size_t at = (static_cast<size_t>(l) * c.n_head_kv * 60 + p) * hd;
          EXPECT_TRUE(std::equal(k1.begin() + at, k1.begin() + at + hd, k0.begin() + at)) << file << " kept row " << p;
        }
      std::printf("[ shift ] %s %s: %zu moved key rows, worst |error| / bound %.3f\n", file, dtype_name(t), rows, worst);
      // Generation goes on: the next token evaluates at n_after.
      ASSERT_TRUE(ctx->Eval(&ids[0], 1).ok());
      EXPECT_EQ(ctx->n_past(), n_after + 1);
    }
  }
}

TEST(ContextShift, RefusesWhatItCannotDo) {
  auto m = load("models/tiny-gemma3-f32.gguf");
  ASSERT_TRUE(m);
  auto c = make(*m, DType::F16, 64, 8);
  std::vector<int32_t> ids(40, 7);
  ASSERT_TRUE(c->Eval(ids.data(), ids.size()).ok());
  EXPECT_EQ(c->Shift(-1, 4).code(), Code::kInvalidArgument);
  EXPECT_EQ(c->Shift(4, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(c->Shift(30, 11).code(), Code::kInvalidArgument);  // beyond n_past
  // Keeping 30 and discarding 5 leaves 5 moved tokens, fewer than the window (8) a
  // sliding-window layer reads back: its ring no longer holds the kept tokens' rows.
  const Status s = c->Shift(30, 5);
  EXPECT_EQ(s.code(), Code::kOutOfRange);
  EXPECT_NE(s.message().find("sliding window"), std::string::npos) << s.message();
  EXPECT_EQ(c->n_past(), 40);  // refused: nothing changed
  // After a shift, a truncation that would read ring cells below the kept tokens is refused.
  ASSERT_TRUE(c->Shift(2, 20).ok());
  EXPECT_FALSE(c->CanTruncate(3));
  EXPECT_TRUE(c->CanTruncate(c->n_past()));
}

// Generation with context shift goes past n_ctx; without, it stops at a full context.
TEST(ContextShift, GenerationGoesOnPastAFullContext) {
  auto m = load("models/tiny-gemma3-f32.gguf");
  ASSERT_TRUE(m);
  auto c = make(*m, DType::F16, 48, 8);
  const std::vector<int32_t> prompt = {2, 10, 11, 12, 13, 14};
  GenerateParams p;
  p.sampling.temperature = 0;
  p.stop_at_eos = false;
  p.max_tokens = 150;
  GenerateResult r;
  ASSERT_TRUE(Generate(*c, prompt.data(), prompt.size(), p, nullptr, &r).ok());
  EXPECT_EQ(r.stop_reason, StopReason::kContextFull);
  EXPECT_EQ(r.n_shifts, 0);
  p.context_shift = true;
  p.n_keep = -1;  // the prompt
  ASSERT_TRUE(Generate(*c, prompt.data(), prompt.size(), p, nullptr, &r).ok());
  EXPECT_EQ(r.stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(r.tokens.size(), 150u);
  // Each shift frees half of what follows the kept prompt: (48 - 6) / 2 = 21 cells.
  EXPECT_GE(r.n_shifts, (6 + 150 - 48) / 21);
  EXPECT_LE(c->n_past(), c->n_ctx());
}

}  // namespace
}  // namespace ember
