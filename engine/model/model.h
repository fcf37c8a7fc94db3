// Model: configuration, tokenizer and weights of one model file. Weights are used
// in place in the mmapped file (mapped in at load: prefault_weights.h), except the
// matrices repacked into the Model's own buffer (repack_weights.h); a Model is
// read-only once loaded and may be shared by several Contexts.
#pragma once
#include <array>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "engine/model/config.h"
#include "engine/model/repack_weights.h"
#include "kernels/kernels.h"
#include "loader/gguf.h"
#include "tokenizer/tokenizer.h"

namespace ember {

// One transformer block's weights. Matrices are [rows = out][cols = in] as GGUF
// stores them (ne[0] = in); vectors are float. A fused file tensor (phi3's attn_qkv,
// ffn_up) is bound as row ranges of it: wq/wk/wv and gate/up are views into it.
struct LayerWeights {
  const float* attn_norm = nullptr;       // [n_embd]
  kernels::MatView wq;                    // [n_head*head_dim][n_embd]
  kernels::MatView wk;                    // [n_head_kv*head_dim][n_embd]
  kernels::MatView wv;                    // [n_head_kv*head_dim_v][n_embd]
  const float* bq = nullptr;              // [n_head*head_dim]      (qkv_bias only)
  const float* bk = nullptr;              // [n_head_kv*head_dim]   (qkv_bias only)
  const float* bv = nullptr;              // [n_head_kv*head_dim_v] (qkv_bias only)
  const float* q_norm = nullptr;          // [head_dim] (qk_norm only)
  const float* k_norm = nullptr;          // [head_dim] (qk_norm only)
  kernels::MatView wo;                    // [n_embd][n_head*head_dim_v]
  const float* post_attn_norm = nullptr;  // [n_embd] (post_norms only)
  const float* ffn_norm = nullptr;        // [n_embd]
  kernels::MatView gate;                  // [n_ff][n_embd]
  kernels::MatView up;                    // [n_ff][n_embd]
  kernels::MatView down;                  // [n_embd][n_ff]
  const float* post_ffn_norm = nullptr;   // [n_embd] (post_norms only)

  // The block's seven matrices, for passes over all of them (repacking, planning, prefault).
  std::array<kernels::MatView*, 7> matrices() { return {&wq, &wk, &wv, &wo, &gate, &up, &down}; }
  std::array<const kernels::MatView*, 7> matrices() const { return {&wq, &wk, &wv, &wo, &gate, &up, &down}; }
};

struct ModelWeights {
  kernels::MatView token_embd;  // [n_vocab][n_embd]
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;  // [n_embd]
  kernels::MatView output;             // [n_vocab][n_embd]; token_embd when tied
  const float* output_bias = nullptr;  // [n_vocab] added to the logits (may_have_output_bias)
  bool tied_output = false;
  // RoPE frequency divisors [rope_dim/2], nullptr when the file has none: rope_freqs
  // (Llama 3.x, every context) or LongRoPE's pair (phi3, chosen by the context's size).
  const float* rope_freqs = nullptr;
  const float* rope_factors_long = nullptr;
  const float* rope_factors_short = nullptr;
};

struct ModelParams {
  bool vocab_only = false;         // metadata and tokenizer only: no weights bound, no context
  // Repack the matrices the kernel table reads faster row-interleaved (engine/model/
  // repack_weights.h). false: use every weight in place in the mapping (no copy: for
  // devices that cannot afford the load-time pass, at the price of slower prefill).
  bool repack = true;
};

class Model {
 public:
  static Status Load(const std::string& path, const ModelParams& params, std::unique_ptr<Model>* out);
  // From an already-open GGUF (tests, in-memory files); takes ownership.
  static Status FromGguf(std::unique_ptr<GgufFile> gguf, const ModelParams& params,
                         std::unique_ptr<Model>* out);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& gguf() const { return *gguf_; }
  const ModelParams& params() const { return params_; }
  uint64_t n_params() const { return n_params_; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  const RepackedWeights& repacked() const { return repacked_; }
  // The weights' share of resident memory once loaded: the mapped file, less the pages
  // the repacking released, plus the repacked copies.
  uint64_t resident_weight_bytes() const;
  bool vocab_only() const { return params_.vocab_only; }
  // The RoPE frequency divisors a context of n_ctx positions uses (nullptr: none): rope_freqs
  // if present, else LongRoPE's long factors above rope.scaling.original_context_length and
  // its short ones up to it (llama.cpp's choice).
  const float* rope_factors(int32_t n_ctx) const;

 private:
  Model() = default;
  Status BindWeights();
  Status BindLayer(int32_t il, LayerWeights* l);
  Status BindRopeFactors();
  // The first tensor of the file no Bind* call used is an error naming it.
  Status CheckAllTensorsUsed() const;
  const GgufTensor* Use(const std::string& name);  // FindTensor, marked as used
  struct RowRange {
    int64_t rows;
    kernels::MatView* out;
  };
  // A 2-D weight of `cols` columns whose rows are the consecutive ranges `parts`, each
  // bound as a view in place (one part: a plain matrix; several: a fused tensor).
  Status Matrices(const std::string& name, int64_t cols, std::initializer_list<RowRange> parts);
  Status Matrix(const std::string& name, int64_t cols, int64_t rows, kernels::MatView* out) {
    return Matrices(name, cols, {{rows, out}});
  }
  Status Vector(const std::string& name, int64_t n, bool required, const float** out);

  std::unique_ptr<GgufFile> gguf_;
  ModelParams params_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::vector<float>> owned_vectors_;  // norm vectors stored as F16/BF16, converted
  std::vector<bool> used_;  // [gguf tensors] bound by BindWeights
  RepackedWeights repacked_;
  uint64_t n_params_ = 0;
  uint64_t weight_bytes_ = 0;
};

}  // namespace ember
