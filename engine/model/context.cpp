#include "engine/model/context.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <tuple>

#include "core/cpu_topology.h"
#include "core/log.h"
#include "core/meminfo.h"
#include "core/thread_pool.h"
#include "quant/convert.h"

namespace ember {

Context::~Context() = default;

namespace {

// Refuses a context whose n_ctx-sized part (`ctx_bytes`) and the model's weights do not
// fit the available memory, before anything is allocated: one line with the figures,
// instead of an allocation that swaps the device to a halt or is killed. No check where
// the system does not say what is available.
Status CheckMemory(const Model& model, size_t n_ctx, uint64_t ctx_bytes) {
  const std::optional<uint64_t> avail = AvailableMemoryBytes();
  const uint64_t need = model.resident_weight_bytes() + ctx_bytes;
  if (!avail || need <= *avail) return Status::Ok();
  auto mib = [](uint64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; };
  std::string msg = "context: needs " + mib(need) + " (weights " + mib(model.resident_weight_bytes());
  msg += ", KV cache and tables for n_ctx " + std::to_string(n_ctx) + ": " + mib(ctx_bytes) + ") but only ";
  msg += mib(*avail) + " are available; use a smaller context (-c)";
  return Status(Code::kOutOfMemory, msg);
}

// More threads than CPUs is allowed (a user may know better) but each parallel loop then
// waits for threads the scheduler has parked: say so once per context.
void warn_if_oversubscribed(int n_threads) {
  const CpuTopology& cpu = SystemCpuTopology();
  if (n_threads > cpu.n_allowed)
    EMBER_LOG_WARN("context: %d threads on %d CPUs: threads beyond the cores wait for each other (slower); "
                   "the default is %d (performance cores)", n_threads, cpu.n_allowed, cpu.n_performance);
}

}  // namespace

Status Context::Create(const Model& model, const ContextParams& p, std::unique_ptr<Context>* out) {
  const ModelConfig& c = model.config();
  if (model.vocab_only())
    return InvalidArgument(model.gguf().path() + ": loaded vocab-only (metadata and tokenizer, no weights): cannot create a context");
  if (p.n_ctx < 0 || p.n_batch < 0 || p.n_threads < 0)
    return InvalidArgument("context: n_ctx, n_batch and n_threads must not be negative");
  std::unique_ptr<Context> ctx(new Context(model));
  ctx->n_ctx_ = p.n_ctx > 0 ? p.n_ctx : std::min(c.n_ctx_train > 0 ? c.n_ctx_train : kDefaultContext, kDefaultContext);
  ctx->n_batch_ = p.n_batch > 0 ? std::min(p.n_batch, ctx->n_ctx_) : std::min(ctx->n_ctx_, 512);
  ctx->n_threads_ = p.n_threads > 0 ? p.n_threads : ThreadPool::DefaultThreads();
  warn_if_oversubscribed(ctx->n_threads_);
  if (c.n_ctx_train > 0 && ctx->n_ctx_ > c.n_ctx_train)  // allowed, as llama.cpp does: the user may know
    EMBER_LOG_WARN("context: n_ctx %d exceeds the model's training context %d: positions past it were never "
                   "trained (expect worse output there)", ctx->n_ctx_, c.n_ctx_train);
  ctx->logits_all_ = p.logits_all;
  ctx->kt_ = p.reference_kernels ? &kernels::reference() : &kernels::best();
  if (ctx->n_ctx_ > (1 << 24)) return InvalidArgument("context: n_ctx " + std::to_string(ctx->n_ctx_) + " is too large");

  const size_t T = ctx->n_ctx_, B = ctx->n_batch_;
  const size_t half = c.rope_dim / 2;
  const KvCacheShape shape{ctx->n_ctx_, ctx->n_batch_, p.type_k, p.type_v, p.swa_full};
  EMBER_RETURN_IF_ERROR(KvCache::CheckType(p.type_k, c.head_dim, "keys"));
  EMBER_RETURN_IF_ERROR(KvCache::CheckType(p.type_v, c.head_dim_v, "values"));
  try {
    ctx->PlanRope();
    const uint64_t planned = KvCache::PlannedBytes(c, shape) + Attention::PlannedBytes(c, ctx->n_ctx_, ctx->n_threads_) +
                             2 * ctx->rope_params_.size() * half * T * sizeof(float);
    EMBER_RETURN_IF_ERROR(CheckMemory(model, T, planned));
    EMBER_RETURN_IF_ERROR(ctx->kv_.Init(c, shape));
    ctx->attention_.Init(c, ctx->n_ctx_, ctx->n_threads_);
    ctx->rope_cos_.resize(ctx->rope_params_.size() * T * half);
    ctx->rope_sin_.resize(ctx->rope_params_.size() * T * half);
    ctx->x_.resize(B * c.n_embd);
    ctx->xn_.resize(B * c.n_embd);
    ctx->q_.resize(B * c.q_dim());
    ctx->k_.resize(B * c.kv_dim());
    ctx->v_.resize(B * c.kv_dim_v());
    ctx->attn_.resize(B * c.n_head * c.head_dim_v);
    ctx->proj_.resize(B * c.n_embd);
    ctx->gate_.resize(B * c.n_ff);
    ctx->up_.resize(B * c.n_ff);
    ctx->logits_.resize((p.logits_all ? B : 1) * static_cast<size_t>(c.n_vocab));
    // Matmul scratch (quantized activations, converted half rows): sized for the
    // widest matrix of a batch.
    size_t ws = 0;
    auto need = [&](const kernels::MatView& m) {
      ws = std::max(ws, kernels::matmul_scratch_bytes(m.type, B, m.cols, ctx->n_threads_));
    };
    const ModelWeights& w = model.weights();
    for (const LayerWeights& l : w.layers)
      for (const kernels::MatView* m : l.matrices()) need(*m);
    need(w.output);
    ctx->workspace_.resize(ws);
    ctx->shift_row_.resize(c.head_dim);
    ctx->shift_cos_.resize(half);
    ctx->shift_sin_.resize(half);
    if (ctx->n_threads_ > 1) ctx->pool_ = std::make_unique<ThreadPool>(ctx->n_threads_);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "context: cannot allocate the KV cache and buffers for n_ctx " +
                                          std::to_string(T) + ", n_batch " + std::to_string(B));
  }
  for (const auto* v : {&ctx->rope_cos_, &ctx->rope_sin_, &ctx->x_, &ctx->xn_, &ctx->q_, &ctx->k_, &ctx->v_,
                        &ctx->attn_, &ctx->proj_, &ctx->gate_, &ctx->up_, &ctx->logits_})
    ctx->allocated_bytes_ += v->size() * sizeof(float);
  ctx->allocated_bytes_ += ctx->workspace_.size() + ctx->kv_.bytes() +
                           Attention::PlannedBytes(c, ctx->n_ctx_, ctx->n_threads_);

  ctx->FillRopeTables();
  try {
    ctx->tokens_.reserve(ctx->n_ctx_);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "context: cannot allocate the token list for n_ctx " + std::to_string(T));
  }
  ctx->allocated_bytes_ += ctx->tokens_.capacity() * sizeof(int32_t);
  EMBER_LOG_INFO("context: n_ctx %d, n_batch %d, %d threads, kernels %s, %.1f MiB (KV cache %s/%s %.1f MiB)",
                 ctx->n_ctx_, ctx->n_batch_, ctx->n_threads_, ctx->kt_->name, ctx->allocated_bytes_ / 1048576.0,
                 dtype_name(p.type_k), dtype_name(p.type_v), ctx->kv_.bytes() / 1048576.0);
  *out = std::move(ctx);
  return Status::Ok();
}

// One table per distinct rotary parameter set; sliding-window layers may rope differently
// (gemma3). The frequency divisors depend on the context's size (LongRoPE).
void Context::PlanRope() {
  const ModelConfig& c = model_.config();
  const float* factors = model_.rope_factors(n_ctx_);
  layer_rope_.assign(c.n_layer, 0);
  rope_params_.clear();
  for (int32_t l = 0; l < c.n_layer; ++l) {
    const bool swa = !c.layer_swa.empty() && c.layer_swa[l];
    const RopeParams p{swa ? c.rope_freq_base_swa : c.rope_freq_base, swa ? c.rope_freq_scale_swa : c.rope_freq_scale,
                       factors};
    auto it = std::find(rope_params_.begin(), rope_params_.end(), p);
    layer_rope_[l] = static_cast<int32_t>(it - rope_params_.begin());
    if (it == rope_params_.end()) rope_params_.push_back(p);
  }
}

// In double precision, rounded once (theta's operation order is that of the tables
// before per-layer sets existed, so files without factors get the same bits).
void Context::FillRopeTables() {
  const ModelConfig& c = model_.config();
  const size_t half = c.rope_dim / 2, T = n_ctx_;
  const double mscale = c.rope_attn_factor;
  for (size_t k = 0; k < rope_params_.size(); ++k) {
    const RopeParams& p = rope_params_[k];
    float* cs = rope_cos_.data() + k * T * half;
    float* sn = rope_sin_.data() + k * T * half;
    for (size_t pos = 0; pos < T; ++pos)
      for (size_t i = 0; i < half; ++i) {
        const double divisor = p.factors ? static_cast<double>(p.factors[i]) : 1.0;
        const double theta = static_cast<double>(pos) * p.scale * std::pow(p.base, -2.0 * i / c.rope_dim) / divisor;
        cs[pos * half + i] = static_cast<float>(std::cos(theta) * mscale);
        sn[pos * half + i] = static_cast<float>(std::sin(theta) * mscale);
      }
  }
}

Status Context::CheckEval(const int32_t* ids, size_t n, int32_t n_past) const {
  if (n == 0) return InvalidArgument("eval: no tokens");
  if (!ids) return InvalidArgument("eval: ids is null");
  const int32_t nv = model_.config().n_vocab;
  for (size_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= nv)
      return InvalidArgument("eval: token " + std::to_string(i) + " has id " + std::to_string(ids[i]) +
                             ", outside the vocabulary [0, " + std::to_string(nv) + ")");
  if (n > static_cast<size_t>(n_ctx_ - n_past))
    return OutOfRange("eval: " + std::to_string(n) + " tokens do not fit: the context holds " +
                      std::to_string(n_ctx_) + " and " + std::to_string(n_past) + " are in use");
  if (logits_all_ && n > static_cast<size_t>(n_batch_))
    return OutOfRange("eval: logits for all " + std::to_string(n) + " tokens need n_batch >= " + std::to_string(n) +
                      " (it is " + std::to_string(n_batch_) + ")");
  return Status::Ok();
}

Status Context::Eval(const int32_t* ids, size_t n) {
  EMBER_RETURN_IF_ERROR(CheckEval(ids, n, n_past_));
  tokens_.insert(tokens_.end(), ids, ids + n);  // within the reserved n_ctx: no allocation
  if (n_exact_ == n_past_) n_exact_ += static_cast<int32_t>(n);
  for (size_t done = 0; done < n;) {
    const int32_t m = static_cast<int32_t>(std::min<size_t>(n - done, n_batch_));
    const bool last_chunk = done + m == n;
    Forward(ids + done, m, last_chunk);
    done += m;
  }
  n_logits_ = logits_all_ ? static_cast<int32_t>(n) : 1;
  logits_token_ = static_cast<int32_t>(n) - n_logits_;
  return Status::Ok();
}

Status Context::Truncate(int32_t n_past) {
  if (n_past < 0 || n_past > n_past_)
    return InvalidArgument("truncate: n_past " + std::to_string(n_past) + " is outside [0, " +
                           std::to_string(n_past_) + "] (the tokens in the cache)");
  if (!CanTruncate(n_past))
    return OutOfRange("truncate: to " + std::to_string(n_past) + " of " + std::to_string(n_past_) +
                              " tokens: a sliding-window layer's cache has overwritten the positions that needs"
                              " (re-evaluate from 0)");
  n_past_ = n_past;
  n_logits_ = 0;
  tokens_.resize(n_past);
  n_exact_ = std::min(n_exact_, n_past);
  return Status::Ok();
}

void Context::Restore(const int32_t* ids, int32_t n, const float* logits, const float* hidden) {
  tokens_.assign(ids, ids + n);
  n_past_ = n;
  n_exact_ = n;
  ring_floor_ = 0;
  n_logits_ = logits && hidden ? 1 : 0;
  logits_token_ = 0;
  hidden_row_ = 0;
  if (n_logits_) {
    std::copy_n(logits, n_vocab(), logits_.begin());
    std::copy_n(hidden, model_.config().n_embd, xn_.begin());
  }
}

Status Context::EvalPrompt(const int32_t* ids, size_t n, int32_t* n_reused) {
  if (n_reused) *n_reused = 0;
  // The common prefix, short of the last prompt token (whose logits are wanted).
  size_t keep = 0;
  if (ids) {
    const size_t limit = std::min({tokens_.size(), static_cast<size_t>(n_exact_), n > 0 ? n - 1 : 0});
    while (keep < limit && tokens_[keep] == ids[keep]) ++keep;
  }
  if (keep > 0 && !CanTruncate(static_cast<int32_t>(keep))) keep = 0;
  EMBER_RETURN_IF_ERROR(CheckEval(ids ? ids + keep : ids, n - keep, static_cast<int32_t>(keep)));
  if (keep == 0) Reset();
  else EMBER_RETURN_IF_ERROR(Truncate(static_cast<int32_t>(keep)));
  if (n_reused) *n_reused = static_cast<int32_t>(keep);
  return Eval(ids + keep, n - keep);
}

// A ring layer holds positions first_held(l, n_past_).. ; the next query, at n_past, reads
// back to n_past - window + 1.
bool Context::CanTruncate(int32_t n_past) const {
  if (n_past < 0 || n_past > n_past_) return false;
  const ModelConfig& c = model_.config();
  for (int32_t l = 0; l < c.n_layer; ++l)
    if (kv_.is_ring(l) && std::max(0, n_past - c.sliding_window + 1) < std::max(kv_.first_held(l, n_past_), ring_floor_))
      return false;
  return true;
}

// The row of logits_ (and of the hidden states) holding token i of the last Eval (-1:
// its last token), or -1 when that token's logits were not kept: without logits_all
// only the last token's are, so token 0 of a longer Eval has none.
int32_t Context::logits_row(int32_t i) const {
  if (n_logits_ == 0) return -1;
  const int32_t row = i < 0 ? n_logits_ - 1 : i - logits_token_;
  return row >= 0 && row < n_logits_ ? row : -1;
}

const float* Context::logits(int32_t i) const {
  const int32_t row = logits_row(i);
  return row < 0 ? nullptr : logits_.data() + static_cast<size_t>(row) * n_vocab();
}

const float* Context::hidden(int32_t i) const {
  const int32_t row = logits_row(i);
  return row < 0 ? nullptr : xn_.data() + static_cast<size_t>(hidden_row_ + row) * model_.config().n_embd;
}

void Context::Linear(int32_t layer, Proj p, const kernels::MatView& W, const float* X, int32_t n, float* Y) {
  kernels::matmul(*kt_, W, X, n, Y, pool_.get(), workspace_.data());
  if (delta_) delta_->Apply(*kt_, layer, p, X, n, Y, pool_.get());
}

template <size_t N>
void Context::LinearShared(int32_t layer, const std::array<Proj, N>& p,
                           const std::array<const kernels::MatView*, N>& W, const float* X, int32_t n,
                           const std::array<float*, N>& Y) {
  std::array<kernels::MatView, N> views;
  for (size_t i = 0; i < N; ++i) views[i] = *W[i];
  kernels::matmul_shared(*kt_, views, X, n, Y, pool_.get(), workspace_.data());
  for (size_t i = 0; delta_ && i < N; ++i) delta_->Apply(*kt_, layer, p[i], X, n, Y[i], pool_.get());
}

// out[t] = RMSNorm(in[t]) * w for the n tokens of a batch.
void Context::Norm(const float* w, int32_t n, float* out, const float* in) {
  const int32_t d = model_.config().n_embd;
  for (int32_t t = 0; t < n; ++t) kt_->rmsnorm(out + t * d, in + t * d, w, d, model_.config().norm_eps);
}

void Context::Forward(const int32_t* ids, int32_t n, bool want_logits) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = model_.weights();
  Embed(ids, n);
  for (int32_t l = 0; l < c.n_layer; ++l) {
    // x = x + PostNorm(Attention(Norm(x)))
    Norm(w.layers[l].attn_norm, n, xn_.data(), x_.data());
    SelfAttention(l, n);
    if (c.post_norms) Norm(w.layers[l].post_attn_norm, n, proj_.data(), proj_.data());
    kt_->add(x_.data(), proj_.data(), static_cast<size_t>(n) * c.n_embd);
    // x = x + PostNorm(FeedForward(Norm(x)))
    Norm(w.layers[l].ffn_norm, n, xn_.data(), x_.data());
    FeedForward(l, n);
    if (c.post_norms) Norm(w.layers[l].post_ffn_norm, n, proj_.data(), proj_.data());
    kt_->add(x_.data(), proj_.data(), static_cast<size_t>(n) * c.n_embd);
  }
  n_past_ += n;
  if (want_logits) {
    if (logits_all_) Output(0, n);
    else Output(n - 1, 1);
  }
}

// x[t] = embed_scale * (token_embd[ids[t]] + delta(ids[t])): an embedding adapter adds to
// the rows as stored, before the scale (as llama.cpp and a merged token_embd do).
void Context::Embed(const int32_t* ids, int32_t n) {
  const ModelConfig& c = model_.config();
  const kernels::MatView& e = model_.weights().token_embd;
  for (int32_t t = 0; t < n; ++t)
    to_float_row(e.type, static_cast<const uint8_t*>(e.data) + ids[t] * e.row_stride,
                 x_.data() + static_cast<size_t>(t) * c.n_embd, c.n_embd);
  if (delta_) delta_->ApplyEmbedding(*kt_, ids, n, x_.data(), pool_.get());
  if (c.embed_scale != 1.0f) kt_->scale(x_.data(), c.embed_scale, static_cast<size_t>(n) * c.n_embd);
}

// q = xn Wq^T (+ bq), k and v alike; then, with QK-norm, each head of q and k
// RMS-normalized over head_dim (norm_eps), before RoPE.
void Context::ProjectQkv(int32_t l, int32_t n) {
  const ModelConfig& c = model_.config();
  const LayerWeights& w = model_.weights().layers[l];
  LinearShared<3>(l, {Proj::kQ, Proj::kK, Proj::kV}, {&w.wq, &w.wk, &w.wv}, xn_.data(), n,
                  {q_.data(), k_.data(), v_.data()});
  for (const auto& [b, y, dim] : {std::tuple{w.bq, q_.data(), c.q_dim()}, std::tuple{w.bk, k_.data(), c.kv_dim()},
                                  std::tuple{w.bv, v_.data(), c.kv_dim_v()}})
    for (int32_t t = 0; b && t < n; ++t) kt_->add(y + static_cast<size_t>(t) * dim, b, dim);
  const size_t hd = c.head_dim;
  for (const auto& [g, y, heads] :
       {std::tuple{w.q_norm, q_.data(), c.n_head}, std::tuple{w.k_norm, k_.data(), c.n_head_kv}})
    for (size_t h = 0; g && h < static_cast<size_t>(n) * heads; ++h)  // heads are contiguous rows of hd
      kt_->rmsnorm(y + h * hd, y + h * hd, g, hd, c.norm_eps);
}

void Context::RopeAndStore(int32_t l, int32_t n) {
  const ModelConfig& c = model_.config();
  const size_t half = c.rope_dim / 2;
  auto rope = c.rope_style == RopeStyle::kNorm ? kt_->rope_norm : kt_->rope_neox;
  const size_t table = static_cast<size_t>(layer_rope_[l]) * n_ctx_ * half;
  for (int32_t t = 0; t < n; ++t) {
    const int32_t pos = n_past_ + t;
    const float* cs = rope_cos_.data() + table + pos * half;
    const float* sn = rope_sin_.data() + table + pos * half;
    float* k = k_.data() + static_cast<size_t>(t) * c.kv_dim();
    rope(q_.data() + static_cast<size_t>(t) * c.q_dim(), c.n_head, c.head_dim, c.rope_dim, cs, sn);
    rope(k, c.n_head_kv, c.head_dim, c.rope_dim, cs, sn);
    kv_.Store(*kt_, l, pos, k, v_.data() + static_cast<size_t>(t) * c.kv_dim_v());
  }
}

// Multi-head causal self-attention with grouped K/V heads, reading xn_, writing proj_.
void Context::SelfAttention(int32_t l, int32_t n) {
  const ModelConfig& c = model_.config();
  ProjectQkv(l, n);
  RopeAndStore(l, n);
  const int32_t window = c.layer_swa.empty() || !c.layer_swa[l] ? 0 : c.sliding_window;
  attention_.Run(*kt_, kv_, l, window, q_.data(), n, n_past_, attn_.data(), pool_.get());
  Linear(l, Proj::kO, model_.weights().layers[l].wo, attn_.data(), n, proj_.data());  // proj = attn Wo^T
}

// Gated feed-forward: proj = down(act(gate(xn)) * up(xn)).
void Context::FeedForward(int32_t l, int32_t n) {
  const ModelConfig& c = model_.config();
  const LayerWeights& w = model_.weights().layers[l];
  LinearShared<2>(l, {Proj::kGate, Proj::kUp}, {&w.gate, &w.up}, xn_.data(), n, {gate_.data(), up_.data()});
  const size_t m = static_cast<size_t>(n) * c.n_ff;
  if (c.ffn_act == FfnActivation::kSilu) kt_->silu_mul(gate_.data(), up_.data(), m);
  else kt_->gelu_mul(gate_.data(), up_.data(), m);
  Linear(l, Proj::kDown, w.down, gate_.data(), n, proj_.data());
}

// logits[i] = softcap(Norm(x[first + i]) W_out^T) for i in [0, n).
void Context::Output(int32_t first, int32_t n) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = model_.weights();
  float* xn = xn_.data() + static_cast<size_t>(first) * c.n_embd;
  hidden_row_ = first;  // hidden(i) reads these rows
  Norm(w.output_norm, n, xn, x_.data() + static_cast<size_t>(first) * c.n_embd);
  Linear(-1, Proj::kOutput, w.output, xn, n, logits_.data());
  for (int32_t i = 0; w.output_bias && i < n; ++i)
    kt_->add(logits_.data() + static_cast<size_t>(i) * c.n_vocab, w.output_bias, c.n_vocab);
  if (c.final_softcap > 0) kt_->softcap(logits_.data(), c.final_softcap, static_cast<size_t>(n) * c.n_vocab);
}

}  // namespace ember
