// Model: configuration, tokenizer and weights of one model file. Weights stay in
// the mmapped file and are used in place; a Model is read-only once loaded and
// may be shared by several Contexts.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "engine/model/config.h"
#include "kernels/kernels.h"
#include "loader/gguf.h"
#include "tokenizer/tokenizer.h"

namespace ember {

// One transformer block's weights. Matrices are [rows = out][cols = in] as GGUF
// stores them (ne[0] = in); vectors are float.
struct LayerWeights {
  const float* attn_norm = nullptr;       // [n_embd]
  kernels::MatView wq;                    // [n_head*head_dim][n_embd]
  kernels::MatView wk;                    // [n_head_kv*head_dim][n_embd]
  kernels::MatView wv;                    // [n_head_kv*head_dim_v][n_embd]
  kernels::MatView wo;                    // [n_embd][n_head*head_dim_v]
  const float* post_attn_norm = nullptr;  // [n_embd] (post_norms only)
  const float* ffn_norm = nullptr;        // [n_embd]
  kernels::MatView gate;                  // [n_ff][n_embd]
  kernels::MatView up;                    // [n_ff][n_embd]
  kernels::MatView down;                  // [n_embd][n_ff]
  const float* post_ffn_norm = nullptr;   // [n_embd] (post_norms only)
};

struct ModelWeights {
  kernels::MatView token_embd;  // [n_vocab][n_embd]
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;  // [n_embd]
  kernels::MatView output;             // [n_vocab][n_embd]; token_embd when tied
  bool tied_output = false;
};

struct ModelParams {
  bool vocab_only = false;         // metadata and tokenizer only: no weights bound, no context
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
  bool vocab_only() const { return params_.vocab_only; }

 private:
  Model() = default;
  Status BindWeights();
  Status Matrix(const std::string& name, int64_t cols, int64_t rows, kernels::MatView* out);
  Status Vector(const std::string& name, int64_t n, bool required, const float** out);

  std::unique_ptr<GgufFile> gguf_;
  ModelParams params_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::vector<float>> owned_vectors_;  // norm vectors stored as F16/BF16, converted
  uint64_t n_params_ = 0;
  uint64_t weight_bytes_ = 0;
};

}  // namespace ember
