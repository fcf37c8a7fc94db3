// Attention over the KV cache (engine/model/attention.h): the blocked online softmax
// against the formula in double, and the identities it promises on whole models over
// contexts longer than one key block — thread count, batching, decode split and
// sliding-window rings change no bit, for every cache type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/model/attention.h"
#include "engine/model/context.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "kernels/kernels.h"
#include "support/fixtures.h"

namespace ember {
namespace {

constexpr double kU = 0x1p-24;  // unit roundoff of float

struct Shape {
  int32_t n_head, n_kv, hd, window;
  float softcap;
};

ModelConfig config_of(const Shape& s) {
  ModelConfig c;
  c.n_layer = 1, c.n_head = s.n_head, c.n_head_kv = s.n_kv, c.head_dim = c.head_dim_v = s.hd;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  c.attn_softcap = s.softcap;
  c.sliding_window = s.window;
  c.layer_swa = {static_cast<uint8_t>(s.window > 0)};
  return c;
}

// out[h][d] in double for the query of head h at position pos, from the keys and
// values as the cache stores them (read back as floats).
std::vector<double> naive(const ModelConfig& c, const kernels::Table& kt, const KvCache& kv, const float* q,
                          int32_t pos, double* bound) {
  const int32_t group = c.n_head / c.n_head_kv, lo = c.sliding_window > 0 ? std::max(0, pos - c.sliding_window + 1) : 0;
  std::vector<double> out(static_cast<size_t>(c.n_head) * c.head_dim_v);
  std::vector<float> k(c.head_dim), v(c.head_dim_v);
  *bound = 0;
  for (int32_t h = 0; h < c.n_head; ++h) {
    std::vector<double> s;
    double ds = 0, vmax = 0;  // score error bound, largest |v|
    for (int32_t p = lo; p <= pos; ++p) {
      KvCache::ToFloat(kt, kv.type_k(), kv.k_row(0, h / group, p), k.data(), c.head_dim);
      double dot = 0, mag = 0, qround = 0;
      for (int32_t i = 0; i < c.head_dim; ++i) {
        dot += static_cast<double>(q[h * c.head_dim + i]) * k[i];
        mag += std::fabs(static_cast<double>(q[h * c.head_dim + i]) * k[i]);
      }
      // A Q8_0 key cache dots with the query quantized to Q8_0 blocks (as llama.cpp):
      // each element within half a step, amax / 254 (+ the fp16 scale's rounding, 2^-11
      // relative), times |k_i|.
      for (int32_t b = 0; kv.type_k() == DType::Q8_0 && b < c.head_dim; b += 32) {
        double amax = 0, ksum = 0;
        for (int32_t i = b; i < b + 32; ++i) {
          amax = std::max(amax, std::fabs(static_cast<double>(q[h * c.head_dim + i])));
          ksum += std::fabs(static_cast<double>(k[i]));
        }
        qround += (amax / 254 + amax * 0x1p-11) * ksum;
      }
      double x = dot * c.attn_scale;
      if (c.attn_softcap > 0) x = c.attn_softcap * std::tanh(x / c.attn_softcap);
      s.push_back(x);
      ds = std::max(ds, ((c.head_dim + 2) * kU * mag + qround) * c.attn_scale + 8 * kU * std::fabs(x));
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double l = 0;
    for (double& x : s) l += (x = std::exp(x - mx));
    for (int32_t p = lo; p <= pos; ++p) {
      KvCache::ToFloat(kt, kv.type_v(), kv.v_row(0, h / group, p), v.data(), c.head_dim_v);
      for (int32_t d = 0; d < c.head_dim_v; ++d) {
        out[static_cast<size_t>(h) * c.head_dim_v + d] += s[p - lo] / l * v[d];
        vmax = std::max(vmax, std::fabs(static_cast<double>(v[d])));
      }
    }
    // Each weight p/l moves by at most 2 ds relative (scores), exp 6u, the sums of n
    // positive terms gamma_n each, the merges and the final divide a few u: the output,
    // a convex combination of values, moves by at most that times max |v|.
    const double n = pos - lo + 1;
    *bound = std::max(*bound, (2 * ds + (2 * n + 32) * kU) * vmax * 1.5);
  }
  return out;
}

// The blocked online softmax = the formula, for every cache type, batched or not,
// with and without threads, contexts of several key blocks, windows and soft-caps.
TEST(Attention, MatchesTheFormulaInDouble) {
  std::mt19937 g(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const Shape shapes[] = {{4, 2, 64, 0, 0.0f}, {8, 1, 32, 0, 50.0f}, {4, 4, 64, 150, 0.0f}};
  const int32_t n_ctx = 3 * Attention::kKeyBlock + 17;
  ThreadPool pool(2);
  for (const Shape& sh : shapes)
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
      const ModelConfig c = config_of(sh);
      const kernels::Table& kt = kernels::best();
      KvCache kv;
      ASSERT_TRUE(kv.Init(c, {n_ctx, n_ctx, t, t}).ok());
      Attention att;
      att.Init(c, n_ctx, 2);
      std::vector<float> k(c.kv_dim()), v(c.kv_dim_v());
      for (int32_t p = 0; p < n_ctx; ++p) {
        for (float& x : k) x = 3 * u(g);
        for (float& x : v) x = u(g);
        kv.Store(kt, 0, p, k.data(), v.data());
      }
      const int32_t n = 11, pos0 = n_ctx - n;  // a batch at the end of the context
      std::vector<float> q(static_cast<size_t>(n) * c.q_dim()), out(static_cast<size_t>(n) * c.n_head * c.head_dim_v);
      for (float& x : q) x = 3 * u(g);
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        att.Run(kt, kv, 0, sh.window, q.data(), n, pos0, out.data(), tp);
        for (int32_t t0 = 0; t0 < n; ++t0) {
          double bound = 0;
          const std::vector<double> want = naive(c, kt, kv, q.data() + t0 * c.q_dim(), pos0 + t0, &bound);
          double worst = 0;
          for (size_t i = 0; i < want.size(); ++i)
            worst = std::max(worst, std::fabs(out[t0 * want.size() + i] - want[i]));
          EXPECT_LE(worst, bound) << dtype_name(t) << " token " << t0 << " heads " << sh.n_head << "/" << sh.n_kv;
        }
      }
      // One token on 2 threads takes the decode split: the same bits as the batch.
      std::vector<float> one(static_cast<size_t>(c.n_head) * c.head_dim_v);
      att.Run(kt, kv, 0, sh.window, q.data() + (n - 1) * c.q_dim(), 1, n_ctx - 1, one.data(), &pool);
      EXPECT_TRUE(std::equal(one.begin(), one.end(), out.end() - one.size())) << dtype_name(t);
    }
}

std::unique_ptr<Model> load(const std::string& rel) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(testing::fixture(rel), ModelParams{}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

// Last logits after evaluating ids in chunks of `chunk` (the context's n_batch).
std::vector<float> logits_in_chunks(const Model& m, const std::vector<int32_t>& ids, int32_t chunk, int threads,
                                    DType cache, std::vector<std::vector<float>>* each = nullptr) {
  ContextParams cp;
  cp.n_ctx = static_cast<int32_t>(ids.size()) + 4;
  cp.n_batch = chunk;
  cp.n_threads = threads;
  cp.type_k = cp.type_v = cache;
  std::unique_ptr<Context> c;
  Status s = Context::Create(m, cp, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return {};
  const int32_t nv = m.config().n_vocab;
  for (size_t i = 0; i < ids.size(); i += chunk) {
    const size_t len = std::min<size_t>(chunk, ids.size() - i);
    EXPECT_TRUE(c->Eval(ids.data() + i, len).ok());
    if (each) each->emplace_back(c->logits(), c->logits() + nv);
  }
  return std::vector<float>(c->logits(), c->logits() + nv);
}

// 160 positions: two key blocks (the decode split and the merge at work past 128).
// Gemma 2/3's window of 8 makes their sliding-window layers rings of 8 + n_batch cells
// when n_batch is small, and full caches when it is the whole prompt. Every path must
// give the same bits.
TEST(Attention, ThreadsBatchesRingsAndDecodeSplitChangeNoBit) {
  std::mt19937 g(11);
  std::vector<int32_t> ids(160);
  for (int32_t& id : ids) id = static_cast<int32_t>(g() % 512);
  for (const char* file : {"models/tiny-llama256-f32.gguf", "models/tiny-gemma2-f32.gguf", "models/tiny-gemma3-f32.gguf"}) {
    auto m = load(file);
    ASSERT_TRUE(m);
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
      const std::vector<float> whole = logits_in_chunks(*m, ids, 160, 1, t);  // no ring, one batch
      EXPECT_TRUE(logits_in_chunks(*m, ids, 160, 2, t) == whole) << file << " " << dtype_name(t) << " threads";
      EXPECT_TRUE(logits_in_chunks(*m, ids, 7, 2, t) == whole) << file << " " << dtype_name(t) << " chunks of 7";
      EXPECT_TRUE(logits_in_chunks(*m, ids, 1, 2, t) == whole) << file << " " << dtype_name(t) << " token by token";
    }
  }
}

// A sliding-window layer's ring keeps window + n_batch cells, not n_ctx.
TEST(Attention, RingLayersDoNotGrowWithTheContext) {
  auto m = load("models/tiny-gemma3-f32.gguf");
  ASSERT_TRUE(m);
  ContextParams cp;
  cp.n_ctx = 2048;
  cp.n_batch = 64;
  std::unique_ptr<Context> c;
  ASSERT_TRUE(Context::Create(*m, cp, &c).ok());
  const KvCache& kv = c->kv_cache();
  const ModelConfig& mc = m->config();
  for (int32_t l = 0; l < mc.n_layer; ++l) {
    const bool swa = mc.layer_swa[l] != 0;
    EXPECT_EQ(kv.cells(l), swa ? mc.sliding_window + 64 : 2048) << "layer " << l;
  }
  // 5 ring layers of 72 cells and one full layer of 2048, F16 K and V of 2 heads x 64.
  EXPECT_EQ(kv.bytes(), (5u * 72 + 2048) * 2 * 2 * 64 * sizeof(uint16_t));
}

}  // namespace
}  // namespace ember
