// Context: the state of one sequence being evaluated: KV cache, scratch
// buffers and rotary tables, all allocated once at creation from n_ctx and
// n_batch. Evaluating tokens allocates nothing.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/model/attention.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "kernels/kernels.h"

namespace ember {

// Which projection of a block a weight matrix is.
enum class Proj : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown, kOutput, kCount };

// Extra terms added to projection outputs, e.g. LoRA adapters (engine/lora/lora.h):
// Y[n][out] += delta(X[n][in]) for projection `p` of layer `layer` (kOutput: layer -1).
// Must not allocate in Apply; whatever scratch it needs is sized up front.
class ProjectionDelta {
 public:
  virtual ~ProjectionDelta() = default;
  // `pool`: the context's threads (nullptr: the calling thread only).
  virtual void Apply(const kernels::Table& k, int32_t layer, Proj p, const float* X, int32_t n, float* Y,
                     ThreadPool* pool) const = 0;
  // Embedding rows: X[t][n_embd] += delta(ids[t]) for the n tokens of a batch, on the rows
  // as token_embd stores them, before any embedding scale (Gemma's sqrt(n_embd)): what a
  // merged token_embd would give. Default: none.
  virtual void ApplyEmbedding(const kernels::Table& k, const int32_t* ids, int32_t n, float* X,
                              ThreadPool* pool) const {
    (void)k, (void)ids, (void)n, (void)X, (void)pool;
  }
};

// The context a caller gets without asking: a 131072-token training context (Llama 3.2)
// would otherwise plan gigabytes of KV cache before the first token.
constexpr int32_t kDefaultContext = 4096;

struct ContextParams {
  int32_t n_ctx = 0;        // 0: min(the model's training context, kDefaultContext)
  int32_t n_batch = 0;      // 0: min(n_ctx, 512)
  int32_t n_threads = 0;    // 0: all cores
  bool logits_all = false;  // keep logits of every token of an Eval (then n <= n_batch)
  // Cache types of keys and values (F32, F16 or Q8_0; engine/model/kv_cache.h).
  DType type_k = DType::F16, type_v = DType::F16;
  // Sliding-window layers keep all n_ctx positions instead of a ring (llama.cpp's
  // --swa-full): the same results with more memory; tests compare the two.
  bool swa_full = false;
  // The one reference switch: every kernel from the scalar reference table. Its
  // default follows the environment (EMBER_REFERENCE=1).
  bool reference_kernels = kernels::reference_requested_by_env();
};

class Context {
 public:
  // OutOfMemory, naming the bytes, when the weights and what n_ctx adds (KV cache, rotary
  // tables, attention scores) exceed the system's available memory (core/meminfo.h).
  static Status Create(const Model& model, const ContextParams& params, std::unique_ptr<Context>* out);
  ~Context();

  // Appends ids at positions n_past.., in chunks of n_batch. Validates ids and
  // room in the cache first: on error nothing is evaluated and n_past is unchanged.
  Status Eval(const int32_t* ids, size_t n);
  // Evaluates a whole prompt (positions 0..n-1) re-using what the cache already holds:
  // keeps the longest common prefix of ids and tokens() (within n_exact()), at most n - 1
  // tokens so that the last prompt token is always evaluated and its logits exist, and
  // evaluates the rest.
  // When the cache cannot be cut there (CanTruncate), it resets and evaluates all. The
  // logits are the bits Reset() + Eval(ids, n) gives (the forward pass does not depend on
  // the batch split); with logits_all, logits(i) are those of the evaluated tokens, i = 0
  // being token *n_reused. *n_reused (may be null): the tokens taken from the cache.
  // Validates as Eval does before changing anything.
  Status EvalPrompt(const int32_t* ids, size_t n, int32_t* n_reused);
  // Logits [n_vocab] of token i of the last Eval (i = -1: its last token);
  // nullptr when not kept (without logits_all, only the last token's are).
  const float* logits(int32_t i = -1) const;
  // The final-normed hidden state [n_embd] those logits were computed from (the input
  // of the output matrix), for the same tokens; valid until the next Eval or Reset.
  const float* hidden(int32_t i = -1) const;

  int32_t n_past() const { return n_past_; }
  int32_t n_ctx() const { return n_ctx_; }
  int32_t n_batch() const { return n_batch_; }
  int32_t n_threads() const { return n_threads_; }
  int32_t n_vocab() const { return model_.config().n_vocab; }
  void Reset() {
    n_past_ = 0;
    n_logits_ = 0;
    ring_floor_ = 0;
    n_exact_ = 0;
    tokens_.clear();
  }
  // The token ids the cache holds, position by position (size n_past()).
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // How many of them hold the rows a fresh evaluation of tokens() gives: n_past() until a
  // Shift, then its n_keep (the moved keys are re-rotated and attended to what is gone).
  int32_t n_exact() const { return n_exact_; }
  // Saved state (engine/model/state_file.h): once the caller has written the cached rows
  // of positions [0, n) through kv_cache(), the context holds ids[0..n) (n <= n_ctx, ids in
  // the vocabulary: the caller checked), with `logits` [n_vocab] and `hidden` [n_embd] as
  // the last token's (both null: none, as after Truncate).
  void Restore(const int32_t* ids, int32_t n, const float* logits, const float* hidden);
  // Keeps the first n_past tokens of the cache and forgets the rest (0 <= n_past <=
  // n_past()), e.g. to re-evaluate a conversation from where it changed. The logits of
  // the last Eval are dropped (they may belong to a forgotten token). Allocates nothing.
  Status Truncate(int32_t n_past);
  // Context shift: forgets positions [n_keep, n_keep + n_discard) and moves the later ones
  // down by n_discard, their keys re-rotated by -n_discard (RoPE is relative), so that
  // generation can go on in a full context. Allocates nothing. Refused (OutOfRange) when
  // a sliding-window layer would need positions its ring no longer holds.
  Status Shift(int32_t n_keep, int32_t n_discard);
  // Whether Truncate(n_past) can keep what the next Eval needs: a sliding-window layer's
  // ring has overwritten positions that far back once more than a batch was evaluated
  // after them (then the caller re-evaluates from 0).
  bool CanTruncate(int32_t n_past) const;
  // The cache: its types, cells and rows (engine/model/kv_cache.h).
  const KvCache& kv_cache() const { return kv_; }
  KvCache& kv_cache() { return kv_; }
  const Model& model() const { return model_; }
  const kernels::Table& kernels() const { return *kt_; }
  uint64_t allocated_bytes() const { return allocated_bytes_; }
  // The parts of allocated_bytes(): the KV cache, and everything else (scratch of one
  // batch, logits, rotary tables, matmul scratch).
  uint64_t kv_bytes() const { return kv_.bytes(); }
  uint64_t scratch_bytes() const { return allocated_bytes_ - kv_bytes(); }
  // Adds `delta` to every projection from the next Eval on (nullptr: none). Not
  // owned. The caller decides whether cached K/V must be recomputed (Reset()).
  void SetProjectionDelta(const ProjectionDelta* delta) { delta_ = delta; }
  const ProjectionDelta* projection_delta() const { return delta_; }

 private:
  Context(const Model& model) : model_(model) {}
  int32_t logits_row(int32_t i) const;  // row of logits_ for token i of the last Eval, or -1
  // Forward pass of n (<= n_batch) tokens at positions n_past_.., one function per block.
  void Forward(const int32_t* ids, int32_t n, bool all_logits);
  void Embed(const int32_t* ids, int32_t n);
  void SelfAttention(int32_t layer, int32_t n);
  // RoPE on the batch's q_ and k_ at positions n_past_.., then its keys and values stored.
  void RopeAndStore(int32_t layer, int32_t n);
  // q_, k_, v_ of the batch: projections, biases, per-head QK-norm (before RoPE).
  void ProjectQkv(int32_t layer, int32_t n);
  void FeedForward(int32_t layer, int32_t n);
  void Output(int32_t first, int32_t n);
  void Norm(const float* w, int32_t n, float* out, const float* in);
  // Y[n][W.rows] = X[n][W.cols] W^T (+ the projection delta, if any).
  void Linear(int32_t layer, Proj p, const kernels::MatView& W, const float* X, int32_t n, float* Y);
  // Y[i] = X W[i]^T (+ delta) for projections sharing X: X quantized once (matmul_shared).
  template <size_t N>
  void LinearShared(int32_t layer, const std::array<Proj, N>& p, const std::array<const kernels::MatView*, N>& W,
                    const float* X, int32_t n, const std::array<float*, N>& Y);

  const Model& model_;
  const kernels::Table* kt_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;  // n_threads - 1 workers; null for one thread
  int32_t n_ctx_ = 0, n_batch_ = 0, n_threads_ = 1;
  bool logits_all_ = false;
  int32_t n_past_ = 0;
  int32_t n_logits_ = 0;  // rows of logits_ valid after the last Eval
  int32_t logits_token_ = 0;  // the last Eval's token (index in that Eval) of logits_ row 0
  int32_t ring_floor_ = 0;  // after a Shift: ring cells below this position hold no valid rows
  int32_t hidden_row_ = 0;  // row of xn_ holding the normed state of logits_ row 0
  uint64_t allocated_bytes_ = 0;

  KvCache kv_;            // keys and values in their cache types (sliding-window layers: rings)
  Attention attention_;   // its scratch: per-thread buffers, the decode split's partials
  // Rotary tables, one per distinct (base, scale, factors) among the layers (gemma3: its
  // sliding-window and global layers; others: one), each [n_ctx][rope_dim/2]:
  // cos/sin(theta) * attn_factor, theta(p, i) = p * freq_scale * base^(-2i/rope_dim) / factor_i.
  struct RopeParams {
    double base, scale;
    const float* factors;  // nullptr: all 1
    bool operator==(const RopeParams&) const = default;
  };
  void PlanRope();         // rope_params_, layer_rope_
  // Context shift (context_shift.cpp): keys of positions [first, end) of a layer rotated by -d.
  void RerotateKeys(int32_t layer, int32_t first, int32_t end, int32_t d);
  void FillRopeTables();   // rope_cos_, rope_sin_ (allocated)
  std::vector<RopeParams> rope_params_;
  std::vector<int32_t> layer_rope_;  // [n_layer] index into rope_params_
  std::vector<float> rope_cos_;  // [n_tables][n_ctx][rope_dim/2]
  std::vector<float> rope_sin_;  // [n_tables][n_ctx][rope_dim/2]
  // Scratch for one batch.
  std::vector<float> x_;       // [n_batch][n_embd]   residual stream
  std::vector<float> xn_;      // [n_batch][n_embd]   normed input of a block
  std::vector<float> q_;       // [n_batch][n_head*head_dim]
  std::vector<float> k_;       // [n_batch][n_head_kv*head_dim]
  std::vector<float> v_;       // [n_batch][n_head_kv*head_dim_v]
  std::vector<float> attn_;    // [n_batch][n_head*head_dim_v]
  std::vector<float> proj_;    // [n_batch][n_embd]   block output before the residual add
  std::vector<float> gate_;    // [n_batch][n_ff]
  std::vector<float> up_;      // [n_batch][n_ff]
  std::vector<float> logits_;  // [logits_all ? n_batch : 1][n_vocab]
  std::vector<uint8_t> workspace_;  // matmul scratch for the widest matrix of a batch
  std::vector<float> shift_row_;    // [head_dim] a key row being re-rotated
  std::vector<float> shift_cos_, shift_sin_;  // [rope_dim/2] the rotation by -n_discard
  const ProjectionDelta* delta_ = nullptr;
  // The ids of the cached positions (reserved to n_ctx: appending allocates nothing).
  std::vector<int32_t> tokens_;
  // Leading positions whose rows are those a fresh evaluation of tokens_ writes (after a
  // Shift, the moved rows and what follows them are not): what EvalPrompt may reuse.
  int32_t n_exact_ = 0;
  // Eval's checks for n tokens appended after n_past cached ones.
  Status CheckEval(const int32_t* ids, size_t n, int32_t n_past) const;
};

}  // namespace ember
