// ModelConfig: a transformer's architecture as data. Filled once from GGUF
// metadata; the forward pass reads fields, never the architecture's name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace ember {

class GgufFile;

enum class RopeStyle : uint8_t {
  kNorm,  // rotate adjacent pairs (x[2i], x[2i+1]): llama.cpp's llama (Q/K permuted at conversion)
  kNeox,  // rotate halves (x[i], x[i+d/2]): HF rotate_half; gemma, qwen, phi3
};

enum class FfnActivation : uint8_t {
  kSilu,      // SwiGLU: down(silu(gate(x)) * up(x))
  kGeluTanh,  // GeGLU with the tanh approximation of GELU
};

struct ModelConfig {
  std::string arch;  // general.architecture
  std::string name;  // general.name (may be empty)

  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;    // per query/key head (attention.key_length, else n_embd/n_head)
  int32_t head_dim_v = 0;  // per value head (attention.value_length, else head_dim)
  int32_t n_ff = 0;

  float norm_eps = 1e-5f;  // RMSNorm epsilon

  RopeStyle rope_style = RopeStyle::kNorm;
  int32_t rope_dim = 0;          // rotated dims per head (rope.dimension_count, else head_dim)
  // theta_i = pos * freq_scale * base^(-2i/rope_dim) / factor_i; cos and sin times attn_factor.
  // The factors are tensors (ModelWeights::rope_factors), the rest is here.
  float rope_freq_base = 10000;  // global (non-sliding-window) layers
  float rope_freq_scale = 1;     // 1 / rope.scaling.factor (linear scaling), global layers
  float rope_freq_base_swa = 10000;  // sliding-window layers (gemma3: rope.freq_base_swa, else = global)
  float rope_freq_scale_swa = 1;     // sliding-window layers (gemma3: unscaled, else = global)
  float rope_attn_factor = 1;        // rope.scaling.attn_factor: cos and sin multiplied by it
  int32_t rope_ctx_orig = 0;         // rope.scaling.original_context_length (else n_ctx_train):
                                     // LongRoPE uses its long factors for contexts above it

  FfnActivation ffn_act = FfnActivation::kSilu;
  float embed_scale = 1;          // token embeddings multiplied by this (gemma: sqrt(n_embd))
  float attn_scale = 0;           // q.k multiplier (1/sqrt(head_dim))
  float attn_softcap = 0;         // scores = c*tanh(scores/c); 0 = off (gemma2)
  float final_softcap = 0;        // logits = c*tanh(logits/c); 0 = off (gemma2, gemma3 if the key exists)
  bool post_norms = false;        // norm after attention and after FFN outputs (gemma2, gemma3)
  int32_t sliding_window = 0;     // window of the layers marked in layer_swa; 0 = none
  std::vector<uint8_t> layer_swa; // [n_layer] 1: layer attends only to the last sliding_window positions

  // The family's tensor layout: which tensors the loader requires (and binds), beside the
  // norms and projections every family has. Anything else in a file is an error.
  bool qkv_bias = false;       // attn_q/k/v.bias, added right after the projections (qwen2)
  bool qk_norm = false;        // attn_q_norm/attn_k_norm [head_dim]: RMSNorm of each q and k head
                               // after the projection, before RoPE (qwen3, gemma3)
  bool fused_qkv = false;      // one attn_qkv matrix whose rows are q, then k, then v (phi3)
  bool fused_gate_up = false;  // ffn_up of 2*n_ff rows, gate (first n_ff) then up; no ffn_gate (phi3)
  // Optional tensors the family may carry (used when present).
  bool may_have_rope_freqs = false;   // rope_freqs.weight [rope_dim/2]: frequency divisors (llama 3.x)
  bool may_have_longrope = false;     // rope_factors_long/short.weight [rope_dim/2] (phi3 128k)
  bool may_have_output_bias = false;  // output.bias [n_vocab] added to the logits (qwen2)

  int32_t kv_dim() const { return n_head_kv * head_dim; }      // K row width
  int32_t kv_dim_v() const { return n_head_kv * head_dim_v; }  // V row width
  int32_t q_dim() const { return n_head * head_dim; }

  // Reads `<arch>.*` keys; errors name the key. n_vocab comes from the tokenizer
  // token list or the embedding tensor (set by the model loader).
  static Status FromGguf(const GgufFile& f, ModelConfig* out);
  // Consistency of the numbers (positive sizes, heads divide, rope dims even, ...).
  Status Validate() const;
  std::string Summary() const;  // one line for logs
};

}  // namespace ember
