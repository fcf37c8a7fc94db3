#include "engine/model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace ember {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

size_t q8_row_bytes(int32_t hd) { return hd % 32 == 0 ? row_bytes(DType::Q8_0, hd) : 0; }
}  // namespace

struct Attention::Job {
  const kernels::Table* kt;
  const KvCache* kv;
  int32_t layer, window, n, pos0;
  const float* q;
  float* out;
  // The keys a query of token t sees: [lo(t), hi(t)].
  int32_t lo(int32_t t) const { return window > 0 ? std::max(0, pos0 + t - window + 1) : 0; }
  int32_t hi(int32_t t) const { return pos0 + t; }
};

uint64_t Attention::PlannedBytes(const ModelConfig& c, int32_t n_ctx, int32_t n_threads) {
  const uint64_t R = static_cast<uint64_t>(kQueryBlock) * (c.n_head / c.n_head_kv);
  const uint64_t floats = R * c.head_dim + R * kKeyBlock + static_cast<uint64_t>(kKeyBlock) * c.head_dim_v +
                          2 * R * (c.head_dim_v + 2) + kernels::kFloatGemmRows * c.head_dim;
  const uint64_t per_thread = floats * sizeof(float) + R * q8_row_bytes(c.head_dim);
  const uint64_t partials = static_cast<uint64_t>(c.n_head) * (n_ctx / kKeyBlock + 1) * (c.head_dim_v + 2);
  return per_thread * n_threads + partials * sizeof(float);
}

void Attention::Init(const ModelConfig& c, int32_t n_ctx, int32_t n_threads) {
  n_head_ = c.n_head, n_kv_ = c.n_head_kv, hd_ = c.head_dim, hdv_ = c.head_dim_v;
  group_ = c.n_head / c.n_head_kv;
  scale_ = c.attn_scale, softcap_ = c.attn_softcap;
  n_blocks_ = n_ctx / kKeyBlock + 1;
  const size_t R = static_cast<size_t>(kQueryBlock) * group_;
  scratch_.resize(n_threads);
  for (Scratch& s : scratch_) {
    s.q.resize(R * hd_);
    s.qq.resize(R * q8_row_bytes(hd_));
    s.scores.resize(R * kKeyBlock);
    s.values.resize(static_cast<size_t>(kKeyBlock) * hdv_);
    s.m.resize(R), s.l.resize(R), s.o.resize(R * hdv_);
    s.M.resize(R), s.L.resize(R), s.O.resize(R * hdv_);
    s.rows.resize(kernels::kFloatGemmRows * hd_);
  }
  partials_.resize(static_cast<size_t>(n_head_) * n_blocks_ * (hdv_ + 2));
}

// s.q (and s.qq for a Q8_0 key cache): row (t - t0) * group + g is query head
// kvh * group + g of token t.
void Attention::GatherQueries(const Job& j, Scratch& s, int32_t kvh, int32_t t0, int32_t t1) const {
  const size_t q_dim = static_cast<size_t>(n_head_) * hd_;
  const bool q8 = j.kv->type_k() == DType::Q8_0;
  const size_t qq_row = q8_row_bytes(hd_);
  int32_t r = 0;
  for (int32_t t = t0; t < t1; ++t)
    for (int32_t g = 0; g < group_; ++g, ++r) {
      const float* src = j.q + t * q_dim + static_cast<size_t>(kvh * group_ + g) * hd_;
      std::memcpy(s.q.data() + static_cast<size_t>(r) * hd_, src, hd_ * sizeof(float));
      if (q8) kernels::quantize_row_fn(*j.kt, DType::Q8_0)(src, s.qq.data() + r * qq_row, hd_);
    }
}

// s.scores[r][p - lo] = q_r . k_p for p in [lo, hi], one GEMM per stretch of the
// (possibly ring) cache that is contiguous.
void Attention::Scores(const Job& j, Scratch& s, int32_t kvh, int32_t rows, int32_t lo, int32_t hi) const {
  const KvCache& kv = *j.kv;
  const DType tk = kv.type_k();
  for (int32_t p = lo; p <= hi;) {
    const int32_t len = kv.contiguous(j.layer, p, hi - p + 1);
    const uint8_t* W = kv.k_row(j.layer, kvh, p);
    float* Y = s.scores.data() + (p - lo);
    if (tk == DType::Q8_0)
      kernels::qmatmul_fn(*j.kt, tk)(W, kv.k_row_bytes(), s.qq.data(), q8_row_bytes(hd_), rows, hd_, Y, kKeyBlock, 0,
                                     len);
    else
      kernels::matmul_fn(*j.kt, tk)(W, kv.k_row_bytes(), s.q.data(), hd_, rows, hd_, Y, kKeyBlock, 0, len,
                                    s.rows.data());
    p += len;
  }
}

// Values of positions [lo, hi] as float rows: the cache itself when it holds them as
// contiguous floats, else converted into s.values.
const float* Attention::ValueRows(const Job& j, Scratch& s, int32_t kvh, int32_t lo, int32_t hi) const {
  const KvCache& kv = *j.kv;
  const int32_t n = hi - lo + 1;
  if (kv.type_v() == DType::F32 && kv.contiguous(j.layer, lo, n) == n)
    return reinterpret_cast<const float*>(kv.v_row(j.layer, kvh, lo));
  for (int32_t p = lo; p <= hi; ++p)
    KvCache::ToFloat(*j.kt, kv.type_v(), kv.v_row(j.layer, kvh, p), s.values.data() + static_cast<size_t>(p - lo) * hdv_,
                     hdv_);
  return s.values.data();
}

void Attention::BlockPartial(const Job& j, Scratch& s, int32_t kvh, int32_t t0, int32_t t1, int32_t b, float* m,
                             float* l, float* o) const {
  const kernels::Table& kt = *j.kt;
  const int32_t rows = (t1 - t0) * group_;
  const int32_t klo = std::max(b * kKeyBlock, j.lo(t0)), khi = std::min((b + 1) * kKeyBlock - 1, j.hi(t1 - 1));
  std::fill(l, l + rows, 0.0f);
  if (klo > khi) return;
  Scores(j, s, kvh, rows, klo, khi);
  const float* V = ValueRows(j, s, kvh, klo, khi);
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t t = t0 + r / group_;
    const int32_t a = std::max(klo, j.lo(t)), e = std::min(khi, j.hi(t));
    if (a > e) continue;  // l = 0: the block adds nothing to this query
    const size_t len = static_cast<size_t>(e - a + 1);
    float* sc = s.scores.data() + static_cast<size_t>(r) * kKeyBlock + (a - klo);
    kt.scale(sc, scale_, len);
    if (softcap_ > 0) kt.softcap(sc, softcap_, len);
    float mx = sc[0];
    for (size_t i = 1; i < len; ++i) mx = sc[i] > mx ? sc[i] : mx;
    m[r] = mx;
    l[r] = kt.exp_sum(sc, mx, len);
    float* orow = o + static_cast<size_t>(r) * hdv_;
    std::fill(orow, orow + hdv_, 0.0f);
    const float* v = V + static_cast<size_t>(a - klo) * hdv_;
    for (size_t i = 0; i < len; ++i) kt.axpy(sc[i], v + i * hdv_, orow, hdv_);
  }
}

namespace {

// (M, L, O) <- the online-softmax merge of (M, L, O) and a block's (m, l, o); l = 0: an
// empty block. The first block is taken as is (M = -inf marks "none yet").
void Merge(const kernels::Table& kt, float& M, float& L, float* O, float m, float l, const float* o, size_t hdv) {
  if (l == 0.0f) return;
  if (M == kNegInf) {
    M = m, L = l;
    std::memcpy(O, o, hdv * sizeof(float));
    return;
  }
  const float Mn = std::max(M, m);
  const float a = std::exp(M - Mn), b = std::exp(m - Mn);
  L = L * a + l * b;
  kt.scale(O, a, hdv);
  kt.axpy(b, o, O, hdv);
  M = Mn;
}

}  // namespace

// Tokens [t0, t1) of KV head kvh: every key block in order, merged as it comes.
void Attention::QueryBlockTask(const Job& j, Scratch& s, int32_t kvh, int32_t t0, int32_t t1) const {
  const int32_t rows = (t1 - t0) * group_;
  GatherQueries(j, s, kvh, t0, t1);
  std::fill(s.M.begin(), s.M.begin() + rows, kNegInf);
  for (int32_t b = j.lo(t0) / kKeyBlock; b <= j.hi(t1 - 1) / kKeyBlock; ++b) {
    BlockPartial(j, s, kvh, t0, t1, b, s.m.data(), s.l.data(), s.o.data());
    for (int32_t r = 0; r < rows; ++r)
      Merge(*j.kt, s.M[r], s.L[r], s.O.data() + static_cast<size_t>(r) * hdv_, s.m[r], s.l[r],
            s.o.data() + static_cast<size_t>(r) * hdv_, hdv_);
  }
  const size_t out_dim = static_cast<size_t>(n_head_) * hdv_;
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t t = t0 + r / group_, h = kvh * group_ + r % group_;
    float* dst = j.out + t * out_dim + static_cast<size_t>(h) * hdv_;
    std::memcpy(dst, s.O.data() + static_cast<size_t>(r) * hdv_, hdv_ * sizeof(float));
    j.kt->scale(dst, 1.0f / s.L[r], hdv_);
  }
}

// One token: tasks (KV head, key block) write their partials, then each head merges its
// blocks in order (the same merges QueryBlockTask makes, so the same bits).
void Attention::RunSplitDecode(const Job& j, ThreadPool* pool) {
  const int32_t b0 = j.lo(0) / kKeyBlock, nb = j.hi(0) / kKeyBlock - b0 + 1;
  const size_t stride = hdv_ + 2;  // per (head, block): m, l, o[hdv]
  auto partial = [&](size_t i, int tid) {
    const int32_t kvh = static_cast<int32_t>(i) / nb, bi = static_cast<int32_t>(i) % nb;
    Scratch& s = scratch_[tid];
    GatherQueries(j, s, kvh, 0, 1);
    BlockPartial(j, s, kvh, 0, 1, b0 + bi, s.m.data(), s.l.data(), s.o.data());
    for (int32_t g = 0; g < group_; ++g) {
      float* p = partials_.data() + (static_cast<size_t>(kvh * group_ + g) * n_blocks_ + bi) * stride;
      p[0] = s.m[g], p[1] = s.l[g];
      std::memcpy(p + 2, s.o.data() + static_cast<size_t>(g) * hdv_, hdv_ * sizeof(float));
    }
  };
  pool->ParallelFor(static_cast<size_t>(n_kv_) * nb, partial);
  auto merge = [&](size_t h, int tid) {
    Scratch& s = scratch_[tid];
    float M = kNegInf, L = 0;
    for (int32_t bi = 0; bi < nb; ++bi) {
      const float* p = partials_.data() + (h * n_blocks_ + bi) * stride;
      Merge(*j.kt, M, L, s.O.data(), p[0], p[1], p + 2, hdv_);
    }
    float* dst = j.out + h * hdv_;
    std::memcpy(dst, s.O.data(), hdv_ * sizeof(float));
    j.kt->scale(dst, 1.0f / L, hdv_);
  };
  pool->ParallelFor(static_cast<size_t>(n_head_), merge);
}

void Attention::Run(const kernels::Table& kt, const KvCache& kv, int32_t layer, int32_t window, const float* q,
                    int32_t n, int32_t pos0, float* out, ThreadPool* pool) {
  const Job j{&kt, &kv, layer, window, n, pos0, q, out};
  if (n == 1 && pool && j.hi(0) / kKeyBlock > j.lo(0) / kKeyBlock) return RunSplitDecode(j, pool);
  const int32_t n_qb = (n + kQueryBlock - 1) / kQueryBlock;
  auto task = [&](size_t i, int tid) {
    const int32_t kvh = static_cast<int32_t>(i) % n_kv_, qb = static_cast<int32_t>(i) / n_kv_;
    QueryBlockTask(j, scratch_[tid], kvh, qb * kQueryBlock, std::min(n, (qb + 1) * kQueryBlock));
  };
  if (pool) pool->ParallelFor(static_cast<size_t>(n_kv_) * n_qb, task);
  else
    for (int32_t i = 0; i < n_kv_ * n_qb; ++i) task(static_cast<size_t>(i), 0);
}

}  // namespace ember
