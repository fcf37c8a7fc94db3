#include "engine/model/config.h"

#include <cmath>
#include <cstdio>

#include "loader/gguf.h"

namespace ember {
namespace {

// Behaviour that differs between families, as data. A new family is a new row.
struct ArchTraits {
  const char* arch;
  RopeStyle rope;
  FfnActivation act;
  bool scale_embeddings;  // multiply embeddings by sqrt(n_embd)
  bool post_norms;
  int swa_period;         // layer i uses the sliding window when i % period == 0 (0: never)
};

constexpr ArchTraits kArchs[] = {
    {"llama", RopeStyle::kNorm, FfnActivation::kSilu, false, false, 0},
    {"gemma", RopeStyle::kNeox, FfnActivation::kGeluTanh, true, false, 0},
    {"gemma2", RopeStyle::kNeox, FfnActivation::kGeluTanh, true, true, 2},
};

const ArchTraits* find_arch(const std::string& a) {
  for (const auto& t : kArchs)
    if (a == t.arch) return &t;
  return nullptr;
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
  const std::string p = c.arch + ".";
  auto u32 = [&](const char* key, int32_t* v) -> Status {
    uint32_t x;
    EMBER_RETURN_IF_ERROR(f.GetU32(p + key, &x));
    if (x > (1u << 30)) return BadFormat(f.path() + ": '" + p + key + "' = " + std::to_string(x) + " is absurd");
    *v = static_cast<int32_t>(x);
    return Status::Ok();
  };
  auto u32_or = [&](const char* key, int32_t* v) -> Status {
    if (!f.Has(p + key)) return Status::Ok();
    return u32(key, v);
  };
  EMBER_RETURN_IF_ERROR(u32("context_length", &c.n_ctx_train));
  EMBER_RETURN_IF_ERROR(u32("embedding_length", &c.n_embd));
  EMBER_RETURN_IF_ERROR(u32("block_count", &c.n_layer));
  EMBER_RETURN_IF_ERROR(u32("feed_forward_length", &c.n_ff));
  EMBER_RETURN_IF_ERROR(u32("attention.head_count", &c.n_head));
  c.n_head_kv = c.n_head;
  EMBER_RETURN_IF_ERROR(u32_or("attention.head_count_kv", &c.n_head_kv));
  c.head_dim = c.n_head > 0 ? c.n_embd / c.n_head : 0;
  EMBER_RETURN_IF_ERROR(u32_or("attention.key_length", &c.head_dim));
  c.head_dim_v = c.head_dim;
  EMBER_RETURN_IF_ERROR(u32_or("attention.value_length", &c.head_dim_v));
  EMBER_RETURN_IF_ERROR(f.GetF32(p + "attention.layer_norm_rms_epsilon", &c.norm_eps));
  c.rope_dim = c.head_dim;
  EMBER_RETURN_IF_ERROR(u32_or("rope.dimension_count", &c.rope_dim));
  EMBER_RETURN_IF_ERROR(f.GetF32Or(p + "rope.freq_base", &c.rope_freq_base));
  float factor = 1;
  EMBER_RETURN_IF_ERROR(f.GetF32Or(p + "rope.scale_linear", &factor));
  EMBER_RETURN_IF_ERROR(f.GetF32Or(p + "rope.scaling.factor", &factor));
  std::string scaling = "linear";
  EMBER_RETURN_IF_ERROR(f.GetStringOr(p + "rope.scaling.type", &scaling));
  if (scaling != "linear" && scaling != "none")
    return Unsupported(f.path() + ": '" + p + "rope.scaling.type' = '" + scaling + "' is not supported");
  if (scaling == "linear" && factor > 0) c.rope_freq_scale = 1.0f / factor;

  c.rope_style = t->rope;
  c.ffn_act = t->act;
  c.post_norms = t->post_norms;
  c.embed_scale = t->scale_embeddings ? std::sqrt(static_cast<float>(c.n_embd)) : 1.0f;
  c.attn_scale = c.head_dim > 0 ? 1.0f / std::sqrt(static_cast<float>(c.head_dim)) : 0;
  EMBER_RETURN_IF_ERROR(f.GetF32Or(p + "attn_logit_softcapping", &c.attn_softcap));
  EMBER_RETURN_IF_ERROR(f.GetF32Or(p + "final_logit_softcapping", &c.final_softcap));
  EMBER_RETURN_IF_ERROR(u32_or("attention.sliding_window", &c.sliding_window));
  c.layer_swa.assign(c.n_layer > 0 ? c.n_layer : 0, 0);
  if (t->swa_period > 0 && c.sliding_window > 0)
    for (int32_t i = 0; i < c.n_layer; ++i) c.layer_swa[i] = (i % t->swa_period) == 0;
  if (c.sliding_window > 0 && t->swa_period == 0) c.sliding_window = 0;  // key present, family has none

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
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2)
    return bad("rope.dimension_count " + std::to_string(rope_dim) + " must be even and at most the head size " +
               std::to_string(head_dim));
  if (!(norm_eps > 0) || !std::isfinite(norm_eps)) return bad("layer_norm_rms_epsilon must be positive");
  if (!(rope_freq_base > 0) || !std::isfinite(rope_freq_base)) return bad("rope.freq_base must be positive");
  if (attn_softcap < 0 || final_softcap < 0 || sliding_window < 0) return bad("soft-caps and sliding window must be >= 0");
  return Status::Ok();
}

std::string ModelConfig::Summary() const {
  char b[512];
  std::snprintf(b, sizeof b,
                "%s: n_vocab %d, n_embd %d, n_layer %d, heads %d/%d x %d, n_ff %d, ctx %d, rope %s base %g, ffn %s%s%s",
                arch.c_str(), n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train,
                rope_style == RopeStyle::kNorm ? "norm" : "neox", rope_freq_base,
                ffn_act == FfnActivation::kSilu ? "swiglu" : "geglu", final_softcap > 0 ? ", soft-caps" : "",
                sliding_window > 0 ? ", sliding window" : "");
  return b;
}

}  // namespace ember
