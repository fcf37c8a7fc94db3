#include "engine/model/config.h"

#include <cmath>
#include <cstdio>

#include "loader/gguf.h"

namespace ember {
namespace {

// Behaviour that differs between families, as data. A new family is a new row; the
// forward pass reads the ModelConfig fields these set, never the family's name.
struct ArchTraits {
  const char* arch;
  RopeStyle rope;
  FfnActivation act;
  bool scale_embeddings = false;  // multiply embeddings by sqrt(n_embd)
  bool post_norms = false;        // post_attention_norm and post_ffw_norm
  bool qkv_bias = false;          // attn_q/k/v.bias
  bool qk_norm = false;           // attn_q_norm/attn_k_norm
  bool fused_qkv = false;         // attn_qkv instead of attn_q/k/v
  bool fused_gate_up = false;     // ffn_up = [gate; up], no ffn_gate
  bool rope_freqs = false;        // may carry rope_freqs.weight
  bool longrope = false;          // may carry rope_factors_long/short.weight
  bool output_bias = false;       // may carry output.bias
  bool attn_softcap = false;      // reads attn_logit_softcapping
  bool final_softcap = false;     // reads final_logit_softcapping
  // Sliding window: layer il slides when il % P < P - 1 (P = 0: every layer), P from
  // attention.sliding_window_pattern, else this default; 0: the family has no sliding
  // window and ignores the key (llama.cpp disables phi3's).
  int swa_period = 0;
  // > 0: sliding-window layers rope with rope.freq_base_swa (default this) and no
  // scaling, global layers with rope.freq_base and rope.scaling.factor. 0: all alike.
  float swa_rope_base = 0;
  // The layer count of the family's variant that scales q by 1/sqrt(n_embd/n_head)
  // instead of 1/sqrt(head_dim) (Gemma 2/3 27B, as llama.cpp); 0: none.
  int embd_head_q_scale_layers = 0;
};

// Bounds of the sizes (Validate()): far above any real model, so that their products
// index buffers without overflow (a hostile file otherwise overflows q_dim()).
constexpr int64_t kMaxWidth = int64_t{1} << 24, kMaxCount = 1 << 16;

constexpr ArchTraits kArchs[] = {
    {.arch = "llama", .rope = RopeStyle::kNorm, .act = FfnActivation::kSilu, .rope_freqs = true},
    {.arch = "gemma", .rope = RopeStyle::kNeox, .act = FfnActivation::kGeluTanh, .scale_embeddings = true},
    {.arch = "gemma2", .rope = RopeStyle::kNeox, .act = FfnActivation::kGeluTanh, .scale_embeddings = true,
     .post_norms = true, .attn_softcap = true, .final_softcap = true, .swa_period = 2,
     .embd_head_q_scale_layers = 46},
    {.arch = "gemma3", .rope = RopeStyle::kNeox, .act = FfnActivation::kGeluTanh, .scale_embeddings = true,
     .post_norms = true, .qk_norm = true, .final_softcap = true, .swa_period = 6, .swa_rope_base = 10000,
     .embd_head_q_scale_layers = 62},
    {.arch = "qwen2", .rope = RopeStyle::kNeox, .act = FfnActivation::kSilu, .qkv_bias = true,
     .output_bias = true},
    {.arch = "qwen3", .rope = RopeStyle::kNeox, .act = FfnActivation::kSilu, .qk_norm = true},
    {.arch = "phi3", .rope = RopeStyle::kNeox, .act = FfnActivation::kSilu, .fused_qkv = true,
     .fused_gate_up = true, .longrope = true},
};

const ArchTraits* find_arch(const std::string& a) {
  for (const auto& t : kArchs)
    if (a == t.arch) return &t;
  return nullptr;
}

// The `<arch>.` keys of one file; errors name the key.
class ArchKeys {
 public:
  ArchKeys(const GgufFile& f, const std::string& arch) : f_(f), p_(arch + ".") {}
  Status U32(const char* key, int32_t* v) const {
    uint32_t x;
    EMBER_RETURN_IF_ERROR(f_.GetU32(p_ + key, &x));
    if (x > (1u << 30)) return BadFormat(f_.path() + ": '" + p_ + key + "' = " + std::to_string(x) + " is absurd");
    *v = static_cast<int32_t>(x);
    return Status::Ok();
  }
  Status U32Or(const char* key, int32_t* v) const { return Has(key) ? U32(key, v) : Status::Ok(); }
  Status F32(const char* key, float* v) const { return f_.GetF32(p_ + key, v); }
  Status F32Or(const char* key, float* v) const { return f_.GetF32Or(p_ + key, v); }
  Status StringOr(const char* key, std::string* v) const { return f_.GetStringOr(p_ + key, v); }
  bool Has(const char* key) const { return f_.Has(p_ + key); }
  std::string Name(const char* key) const { return f_.path() + ": '" + p_ + key + "'"; }

 private:
  const GgufFile& f_;
  std::string p_;
};

Status read_sizes(const ArchKeys& k, ModelConfig* c) {
  EMBER_RETURN_IF_ERROR(k.U32("context_length", &c->n_ctx_train));
  EMBER_RETURN_IF_ERROR(k.U32("embedding_length", &c->n_embd));
  EMBER_RETURN_IF_ERROR(k.U32("block_count", &c->n_layer));
  EMBER_RETURN_IF_ERROR(k.U32("feed_forward_length", &c->n_ff));
  EMBER_RETURN_IF_ERROR(k.U32("attention.head_count", &c->n_head));
  c->n_head_kv = c->n_head;
  EMBER_RETURN_IF_ERROR(k.U32Or("attention.head_count_kv", &c->n_head_kv));
  c->head_dim = c->n_head > 0 ? c->n_embd / c->n_head : 0;
  EMBER_RETURN_IF_ERROR(k.U32Or("attention.key_length", &c->head_dim));
  c->head_dim_v = c->head_dim;
  EMBER_RETURN_IF_ERROR(k.U32Or("attention.value_length", &c->head_dim_v));
  return k.F32("attention.layer_norm_rms_epsilon", &c->norm_eps);
}

Status read_rope(const ArchKeys& k, const ArchTraits& t, ModelConfig* c) {
  c->rope_style = t.rope;
  c->rope_dim = c->head_dim;
  EMBER_RETURN_IF_ERROR(k.U32Or("rope.dimension_count", &c->rope_dim));
  EMBER_RETURN_IF_ERROR(k.F32Or("rope.freq_base", &c->rope_freq_base));
  float factor = 1;
  EMBER_RETURN_IF_ERROR(k.F32Or("rope.scale_linear", &factor));
  EMBER_RETURN_IF_ERROR(k.F32Or("rope.scaling.factor", &factor));
  std::string scaling = "linear";
  EMBER_RETURN_IF_ERROR(k.StringOr("rope.scaling.type", &scaling));
  if (scaling != "linear" && scaling != "none")
    return Unsupported(k.Name("rope.scaling.type") + " = '" + scaling + "' is not supported");
  if (scaling == "linear" && factor > 0) c->rope_freq_scale = 1.0f / factor;
  EMBER_RETURN_IF_ERROR(k.F32Or("rope.scaling.attn_factor", &c->rope_attn_factor));
  c->rope_ctx_orig = c->n_ctx_train;
  EMBER_RETURN_IF_ERROR(k.U32Or("rope.scaling.original_context_length", &c->rope_ctx_orig));
  c->rope_freq_base_swa = c->rope_freq_base;
  c->rope_freq_scale_swa = c->rope_freq_scale;
  if (t.swa_rope_base > 0) {
    c->rope_freq_base_swa = t.swa_rope_base;
    EMBER_RETURN_IF_ERROR(k.F32Or("rope.freq_base_swa", &c->rope_freq_base_swa));
    c->rope_freq_scale_swa = 1;
  }
  return Status::Ok();
}

Status read_attention(const ArchKeys& k, const ArchTraits& t, ModelConfig* c) {
  const bool embd_head_scale = t.embd_head_q_scale_layers > 0 && c->n_layer == t.embd_head_q_scale_layers;
  const int32_t q_scale_dim = embd_head_scale ? c->n_embd / c->n_head : c->head_dim;
  c->attn_scale = q_scale_dim > 0 ? 1.0f / std::sqrt(static_cast<float>(q_scale_dim)) : 0;
  if (t.attn_softcap) EMBER_RETURN_IF_ERROR(k.F32Or("attn_logit_softcapping", &c->attn_softcap));
  if (t.final_softcap) EMBER_RETURN_IF_ERROR(k.F32Or("final_logit_softcapping", &c->final_softcap));
  EMBER_RETURN_IF_ERROR(k.U32Or("attention.sliding_window", &c->sliding_window));
  // Nothing allocated for a block_count that Validate() refuses next (a hostile 2^30
  // cost 1 GiB and a billion-step loop first; found by fuzz_gguf).
  if (c->n_layer > kMaxCount) return Status::Ok();
  c->layer_swa.assign(c->n_layer > 0 ? c->n_layer : 0, 0);
  if (t.swa_period == 0 || c->sliding_window <= 0) {
    c->sliding_window = 0;  // no window (or the family ignores the key)
    return Status::Ok();
  }
  int32_t period = t.swa_period;
  EMBER_RETURN_IF_ERROR(k.U32Or("attention.sliding_window_pattern", &period));
  for (int32_t i = 0; i < c->n_layer; ++i) c->layer_swa[i] = period == 0 || i % period < period - 1;
  return Status::Ok();
}

}  // namespace

Status ModelConfig::FromGguf(const GgufFile& f, ModelConfig* out) {
  ModelConfig c;
  EMBER_RETURN_IF_ERROR(f.GetString("general.architecture", &c.arch));
  const ArchTraits* t = find_arch(c.arch);
  if (!t) {
    std::string known;
    for (const auto& a : kArchs) known += std::string(known.empty() ? "" : ", ") + a.arch;
    return Unsupported(f.path() + ": architecture '" + c.arch + "' is not supported (supported: " +
                       known + ")");
  }
  EMBER_RETURN_IF_ERROR(f.GetStringOr("general.name", &c.name));
  const ArchKeys k(f, c.arch);
  EMBER_RETURN_IF_ERROR(read_sizes(k, &c));
  EMBER_RETURN_IF_ERROR(read_rope(k, *t, &c));
  EMBER_RETURN_IF_ERROR(read_attention(k, *t, &c));
  c.ffn_act = t->act;
  c.post_norms = t->post_norms;
  c.embed_scale = t->scale_embeddings ? std::sqrt(static_cast<float>(c.n_embd)) : 1.0f;
  c.qkv_bias = t->qkv_bias;
  c.qk_norm = t->qk_norm;
  c.fused_qkv = t->fused_qkv;
  c.fused_gate_up = t->fused_gate_up;
  c.may_have_rope_freqs = t->rope_freqs;
  c.may_have_longrope = t->longrope;
  c.may_have_output_bias = t->output_bias;

  Status v = c.Validate();
  if (!v.ok()) return BadFormat(f.path() + ": " + v.message());
  *out = std::move(c);
  return Status::Ok();
}

Status ModelConfig::Validate() const {
  auto bad = [](const std::string& m) { return BadFormat(m); };
  if (n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_ff <= 0 || n_ctx_train <= 0)
    return bad("embedding_length, block_count, head_count, feed_forward_length and context_length must be positive");
  if (n_head_kv <= 0 || n_head % n_head_kv != 0)
    return bad("head_count " + std::to_string(n_head) + " is not a multiple of head_count_kv " +
               std::to_string(n_head_kv));
  if (head_dim <= 0 || head_dim_v <= 0) return bad("attention key/value length must be positive");
  // Sizes are int32 and their products index buffers: bound each, and the widths built
  // from them, far above any real model (a hostile file otherwise overflows q_dim()).
  const std::pair<const char*, int64_t> widths[] = {
      {"embedding_length", n_embd}, {"feed_forward_length", n_ff},
      {"head_count x key_length", int64_t{n_head} * head_dim},
      {"head_count_kv x key_length", int64_t{n_head_kv} * head_dim},
      {"head_count x value_length", int64_t{n_head} * head_dim_v}};
  for (const auto& [name, value] : widths)
    if (value > kMaxWidth) return bad(std::string(name) + " " + std::to_string(value) + " exceeds " + std::to_string(kMaxWidth));
  if (n_layer > kMaxCount || n_head > kMaxCount)
    return bad("block_count " + std::to_string(n_layer) + " / head_count " + std::to_string(n_head) + " exceeds " +
               std::to_string(kMaxCount));
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2)
    return bad("rope.dimension_count " + std::to_string(rope_dim) + " must be even and at most the head size " +
               std::to_string(head_dim));
  if (!(norm_eps > 0) || !std::isfinite(norm_eps)) return bad("layer_norm_rms_epsilon must be positive");
  if (!(rope_freq_base > 0) || !std::isfinite(rope_freq_base)) return bad("rope.freq_base must be positive");
  if (!(rope_freq_base_swa > 0) || !std::isfinite(rope_freq_base_swa))
    return bad("rope.freq_base_swa must be positive");
  if (!(rope_attn_factor > 0) || !std::isfinite(rope_attn_factor))
    return bad("rope.scaling.attn_factor must be positive");
  if (attn_softcap < 0 || final_softcap < 0 || sliding_window < 0) return bad("soft-caps and sliding window must be >= 0");
  return Status::Ok();
}

std::string ModelConfig::Summary() const {
  char b[512];
  std::snprintf(b, sizeof b,
                "%s: n_vocab %d, n_embd %d, n_layer %d, heads %d/%d x %d, n_ff %d, ctx %d, rope %s/%d base %g, ffn %s",
                arch.c_str(), n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train,
                rope_style == RopeStyle::kNorm ? "norm" : "neox", rope_dim, rope_freq_base,
                ffn_act == FfnActivation::kSilu ? "swiglu" : "geglu");
  std::string s = b;
  for (const auto& [on, what] : {std::pair{final_softcap > 0 || attn_softcap > 0, "soft-caps"},
                                 std::pair{sliding_window > 0, "sliding window"}, std::pair{qkv_bias, "qkv bias"},
                                 std::pair{qk_norm, "qk-norm"}, std::pair{post_norms, "post-norms"},
                                 std::pair{fused_qkv || fused_gate_up, "fused projections"}})
    if (on) s += std::string(", ") + what;
  return s;
}

}  // namespace ember
