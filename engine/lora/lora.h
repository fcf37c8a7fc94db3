// LoRA adapters applied at run time, unmerged (DESIGN.md "LoRA unmerged by default"):
//
//   y = W·x + Σ_i s_i · B_i·(A_i·x),   s_i = scale_i · alpha_i / r   (rsLoRA: alpha_i / sqrt(r))
//
// for every projection an adapter targets (attention q/k/v/o, feed-forward gate/up/down,
// the output matrix). W stays as the model file stores it (any type); A and B are F32 or
// F16 copies owned by the adapter. alpha == 0 means "no alpha": the factor is 1 (llama.cpp).
//
// Two file forms load into the same LoraAdapter:
//  - GGUF, as llama.cpp's convert_lora_to_gguf.py writes it: general.type = "adapter",
//    adapter.type = "lora", adapter.lora.alpha (f32), general.architecture = the model's;
//    per adapted base tensor T: "T.lora_a" ne [in, r] (rows of A, [r][in]) and "T.lora_b"
//    ne [r, out] (rows of B, [out][r]). For token_embd.weight the roles are transposed as
//    llama.cpp expects: lora_a ne [r, n_vocab] (one r-vector per token), lora_b ne [r, n_embd].
//    Norm tensors are ignored. A tensor naming no base weight, a missing half, a shape that
//    does not fit the model or a type other than F32/F16 is an error naming the tensor.
//  - PEFT directory: adapter_config.json (r, lora_alpha, use_rslora; fan_in_fan_out, DoRA,
//    rank/alpha patterns are refused) + adapter_model.safetensors with
//    "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight" [r, in] and
//    ".lora_B.weight" [out, r] (mlp.gate_proj, ..., lm_head, model.embed_tokens with
//    lora_embedding_A [r, n_vocab] / lora_embedding_B [n_embd, r]). Mapped onto the GGUF
//    names; for models whose Q/K rows llama.cpp's converter permuted (RopeStyle::kNorm,
//    i.e. llama), the rows of B of q_proj / k_proj get the same permutation.
//
// Embedding adapters (token_embd) apply to the lookup only (ProjectionDelta::ApplyEmbedding),
// added to the stored rows before any embedding scale, as llama.cpp does. As in PEFT's
// unmerged forward, an output matrix tied to token_embd stays unadapted (lora_merge,
// offline/lora_tools.h, writes it as its own tensor).
//
// Task examples (optional, for `ember lora blend --weights auto`): a few texts of the task the
// adapter was trained for, in the GGUF metadata key ember.lora.task_examples (string array).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/model/context.h"
#include "engine/model/model.h"
#include "kernels/kernels.h"
#include "loader/gguf.h"

namespace ember {

// GGUF metadata key of an adapter's task examples (string array).
inline constexpr const char* kLoraTaskExamplesKey = "ember.lora.task_examples";

// One adapted weight matrix.
// Element i of adapter data stored as F32 or F16 (little-endian bytes), as a float.
float lora_element(DType t, const std::vector<uint8_t>& v, size_t i);

struct LoraWeight {
  std::string target;       // base tensor name: "blk.3.attn_q.weight", "output.weight", "token_embd.weight"
  int32_t layer = -1;       // -1 for output and token_embd
  Proj proj = Proj::kCount; // kCount: token_embd
  bool embedding = false;
  int32_t rank = 0, n_in = 0, n_out = 0;  // W is [n_out][n_in] (embedding: n_out = n_embd, n_in = n_vocab)
  DType type = DType::F32;  // of A and B: F32 or F16
  std::vector<uint8_t> a;   // [rank][n_in]    (embedding: [n_vocab][rank])
  std::vector<uint8_t> b;   // [n_out][rank]
  float factor = 1;         // alpha / rank (rsLoRA alpha / sqrt(rank)); 1 when alpha == 0
  kernels::MatView A() const;
  kernels::MatView B() const;
  // The dense ΔW = factor · B·A in float, [n_out][n_in] (embedding: [n_vocab][n_embd], as token_embd).
  std::vector<float> Dense() const;
};

class LoraAdapter {
 public:
  // `path`: a GGUF adapter file or a PEFT directory. Validated against `model`.
  static Status Load(const Model& model, const std::string& path, std::unique_ptr<LoraAdapter>* out);
  static Status FromGguf(const Model& model, const GgufFile& f, std::unique_ptr<LoraAdapter>* out);
  static Status FromPeft(const Model& model, const std::string& dir, std::unique_ptr<LoraAdapter>* out);
  // From weights built in memory (blends, tests); validated like a file. factor of each
  // weight is set from alpha and rank_scaling.
  static Status FromWeights(const Model& model, std::string name, float alpha, bool rslora,
                            std::vector<LoraWeight> weights, std::unique_ptr<LoraAdapter>* out);

  const std::string& name() const { return name_; }
  const Model& model() const { return *model_; }
  float alpha() const { return alpha_; }
  bool rslora() const { return rslora_; }
  int32_t max_rank() const;
  const std::vector<LoraWeight>& weights() const { return weights_; }
  // nullptr when the adapter does not touch (layer, p).
  const LoraWeight* Find(int32_t layer, Proj p) const;
  const LoraWeight* FindTarget(const std::string& target) const;
  // Whether changing this adapter's scale changes keys/values already in a KV cache:
  // false only when it adapts nothing but the output matrix and the last layer's q, o
  // and feed-forward (nothing that any cached K/V depends on).
  bool AffectsCache() const;
  // Texts of the adapter's task (kLoraTaskExamplesKey of a GGUF file, or set here).
  const std::vector<std::string>& task_examples() const { return task_examples_; }
  void set_task_examples(std::vector<std::string> v) { task_examples_ = std::move(v); }

 private:
  LoraAdapter() = default;
  Status Validate();
  const Model* model_ = nullptr;
  std::string name_;
  float alpha_ = 0;
  bool rslora_ = false;
  std::vector<LoraWeight> weights_;
  std::vector<std::string> task_examples_;
};

// The base matrix an adapted weight targets, or nullptr (embedding: token_embd).
const kernels::MatView* lora_target_matrix(const Model& model, int32_t layer, Proj p);
// "blk.3.attn_q.weight" <-> (3, kQ); "output.weight" <-> (-1, kOutput). False when unknown.
bool lora_parse_target(const std::string& name, int32_t* layer, Proj* p, bool* embedding);
std::string lora_target_name(int32_t layer, Proj p);

// Several adapters with per-adapter scales on one context: a ProjectionDelta.
// Scratch is sized when adapters change (never in Apply) for n_batch tokens.
class LoraSet : public ProjectionDelta {
 public:
  LoraSet(const Model& model, int32_t n_batch) : model_(model), n_batch_(n_batch) {}
  // Adds `a` at `scale`, or changes its scale when present. *affects_cache receives
  // whether keys/values computed before the change are now stale.
  Status Set(const LoraAdapter* a, float scale, bool* affects_cache);
  // Removes `a`; false when it was not there. *affects_cache as for Set.
  bool Remove(const LoraAdapter* a, bool* affects_cache);
  void Clear(bool* affects_cache);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Scale of `a`; false when absent.
  bool Scale(const LoraAdapter* a, float* scale) const;

  void Apply(const kernels::Table& k, int32_t layer, Proj p, const float* X, int32_t n, float* Y,
             ThreadPool* pool) const override;
  void ApplyEmbedding(const kernels::Table& k, const int32_t* ids, int32_t n, float* X,
                      ThreadPool* pool) const override;

 private:
  struct Entry { const LoraAdapter* adapter; float scale; };
  struct Term { const LoraWeight* w; float s; };  // s = scale · factor
  void Rebuild();
  size_t slot(int32_t layer, Proj p) const {
    return static_cast<size_t>(layer < 0 ? model_.config().n_layer : layer) * static_cast<size_t>(Proj::kCount) +
           static_cast<size_t>(p);
  }
  const Model& model_;
  int32_t n_batch_;
  std::vector<Entry> entries_;
  std::vector<std::vector<Term>> terms_;  // [(n_layer + 1) * kCount]; output at layer n_layer
  std::vector<Term> embd_terms_;          // token_embd
  mutable std::vector<float> t_;          // [n_batch][max rank]   A·x (embedding: rows of A)
  mutable std::vector<float> z_;          // [n_batch][max n_out]  B·(A·x)
};


}  // namespace ember
