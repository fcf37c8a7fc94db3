// C API section "LoRA adapters" (include/ember/ember.h) over engine/lora/lora.h.
//
// A context's adapters live in a LoraSet owned by its ember_context (c_api_internal.h),
// created by the first set and dropped when the last adapter goes; freeing the context
// frees it. Like the context itself, it is not for concurrent use from several threads.
#include <cctype>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/capi/c_api_internal.h"
#include "engine/model/context.h"
#include "engine/lora/lora.h"
#include "offline/lora_tools.h"

struct ember_lora {
  const ember_model* model;
  std::unique_ptr<ember::LoraAdapter> a;
};

namespace ember::capi {
void LoraSetDeleter::operator()(LoraSet* s) const { delete s; }
}  // namespace ember::capi

namespace {

using ember::capi::set_error;

ember_status to_c(const ember::Status& s) {
  return s.ok() ? EMBER_OK : set_error(static_cast<ember_status>(s.code()), s.message());
}

// The context's LoraSet; created when `create`, else null when it has none.
ember::LoraSet* set_of(ember_context* ctx, bool create) {
  if (!ctx->loras && create) ctx->loras.reset(new ember::LoraSet(ctx->c->model(), ctx->c->n_batch()));
  return ctx->loras.get();
}

// After a change: attach or detach the set (dropping an empty one), reset the cache when
// it is stale.
void commit(ember_context* ctx, bool affects_cache) {
  ember::Context* c = ctx->c.get();
  if (ctx->loras && ctx->loras->empty()) ctx->loras.reset();
  c->SetProjectionDelta(ctx->loras.get());
  if (affects_cache) c->Reset();
}

}  // namespace

extern "C" {

ember_status ember_lora_load(const ember_model* model, const char* path, ember_lora** out) {
  if (!out) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_load: out is NULL");
  *out = nullptr;
  const ember::Model* m = ember::capi::model_of(model);
  if (!m || !path) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_load: model or path is NULL");
  std::unique_ptr<ember::LoraAdapter> a;
  if (ember::Status st = ember::LoraAdapter::Load(*m, path, &a); !st.ok()) return to_c(st);
  *out = new ember_lora{model, std::move(a)};
  return EMBER_OK;
}

void ember_lora_free(ember_lora* lora) { delete lora; }

ember_status ember_lora_get_info(const ember_lora* lora, ember_lora_info* out) {
  if (!lora || !out) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_get_info: NULL argument");
  out->rank = lora->a->max_rank();
  out->alpha = lora->a->alpha();
  out->n_weights = static_cast<int32_t>(lora->a->weights().size());
  out->affects_cache = lora->a->AffectsCache() ? 1 : 0;
  return EMBER_OK;
}

ember_status ember_context_set_lora(ember_context* ctx, const ember_lora* lora, float scale) {
  if (!ctx || !lora) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_context_set_lora: NULL argument");
  bool affects = false;
  ember::Status st = set_of(ctx, true)->Set(lora->a.get(), scale, &affects);
  commit(ctx, affects);
  return to_c(st);
}

ember_status ember_context_remove_lora(ember_context* ctx, const ember_lora* lora) {
  if (!ctx || !lora) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_context_remove_lora: NULL argument");
  ember::LoraSet* s = set_of(ctx, false);
  bool affects = false;
  if (!s || !s->Remove(lora->a.get(), &affects))
    return set_error(EMBER_ERR_NOT_FOUND, "ember_context_remove_lora: adapter '" + lora->a->name() +
                                              "' is not set on this context");
  commit(ctx, affects);
  return EMBER_OK;
}

ember_status ember_context_clear_loras(ember_context* ctx) {
  if (!ctx) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_context_clear_loras: ctx is NULL");
  ember::LoraSet* s = set_of(ctx, false);
  bool affects = false;
  if (s) s->Clear(&affects);
  commit(ctx, affects);
  return EMBER_OK;
}

int32_t ember_context_n_loras(ember_context* ctx) {
  const ember::LoraSet* s = ctx ? ctx->loras.get() : nullptr;
  return s ? static_cast<int32_t>(s->size()) : 0;
}

ember_status ember_lora_set_task_examples(ember_lora* lora, const char* const* texts, size_t n) {
  if (!lora || (n > 0 && !texts))
    return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_set_task_examples: NULL argument");
  std::vector<std::string> v;
  for (size_t i = 0; i < n; ++i) {
    if (!texts[i]) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_set_task_examples: text is NULL");
    v.emplace_back(texts[i]);
  }
  lora->a->set_task_examples(std::move(v));
  return EMBER_OK;
}

ember_status ember_lora_save(const ember_lora* lora, const char* path) {
  if (!lora || !path) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_save: NULL argument");
  return to_c(lora->a->WriteGguf(path));
}

ember_status ember_lora_auto_weights(const ember_model* model, const ember_lora* const* loras, size_t n,
                                     const char* const* examples, size_t n_examples, int centered,
                                     float temperature, int32_t n_threads, float* similarity, float* weights) {
  const ember::Model* m = ember::capi::model_of(model);
  if (!m || !loras || n == 0 || !examples || !weights)
    return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_auto_weights: NULL argument or no adapters");
  std::vector<const ember::LoraAdapter*> as;
  for (size_t i = 0; i < n; ++i) {
    if (!loras[i]) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_auto_weights: adapter is NULL");
    as.push_back(loras[i]->a.get());
  }
  std::vector<std::string> ex;
  for (size_t i = 0; i < n_examples; ++i) {
    if (!examples[i]) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_auto_weights: example is NULL");
    ex.emplace_back(examples[i]);
  }
  if (temperature <= 0)
    temperature = centered ? ember::kLoraAutoTemperatureCentered : ember::kLoraAutoTemperatureCosine;
  ember::LoraAutoWeights r;
  if (ember::Status st = ember::lora_auto_weights(*m, as, ex, centered != 0, temperature, n_threads, &r); !st.ok())
    return to_c(st);
  for (size_t i = 0; i < n; ++i) {
    weights[i] = r.weight[i];
    if (similarity) similarity[i] = static_cast<float>(r.similarity[i]);
  }
  return EMBER_OK;
}

}  // extern "C"

// ---- blend / merge --------------------------------------------------------------------

namespace {

bool parse_type(const char* name, ember::DType* out) {
  static const std::pair<const char*, ember::DType> kTypes[] = {
      {"f32", ember::DType::F32},   {"f16", ember::DType::F16},   {"bf16", ember::DType::BF16},
      {"q8_0", ember::DType::Q8_0}, {"q4_0", ember::DType::Q4_0}, {"q4_k", ember::DType::Q4_K},
      {"q6_k", ember::DType::Q6_K}};
  std::string n(name);
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& [k, t] : kTypes)
    if (n == k) { *out = t; return true; }
  return false;
}

}  // namespace

extern "C" {

ember_status ember_lora_blend(const ember_model* model, const ember_lora* const* loras, const float* weights,
                              size_t n, int mode, int32_t rank, const char* out_path) {
  const ember::Model* m = ember::capi::model_of(model);
  if (!m || !loras || !weights || n == 0 || !out_path)
    return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_blend: NULL argument or no adapters");
  if (mode < EMBER_LORA_BLEND_EXACT || mode > EMBER_LORA_BLEND_SVD)
    return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_blend: unknown mode " + std::to_string(mode));
  std::vector<ember::LoraBlendInput> in;
  for (size_t i = 0; i < n; ++i) {
    if (!loras[i]) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_blend: adapter is NULL");
    in.push_back({loras[i]->a.get(), weights[i]});
  }
  std::unique_ptr<ember::LoraAdapter> out;
  ember::Status st = ember::lora_blend(*m, in, static_cast<ember::LoraBlendMode>(mode), rank, &out);
  if (st.ok()) st = out->WriteGguf(out_path);
  return to_c(st);
}

ember_status ember_lora_merge(const ember_model* model, const ember_lora* const* loras, const float* scales,
                              size_t n, const char* type, const char* out_path) {
  const ember::Model* m = ember::capi::model_of(model);
  if (!m || (n > 0 && (!loras || !scales)) || !out_path)
    return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_merge: NULL argument");
  ember::DType t = ember::DType::F32;
  if (type && !parse_type(type, &t))
    return set_error(EMBER_ERR_INVALID_ARGUMENT, std::string("ember_lora_merge: unknown type '") + type +
                                                     "' (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)");
  std::vector<std::pair<const ember::LoraAdapter*, float>> as;
  for (size_t i = 0; i < n; ++i) {
    if (!loras[i]) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_merge: adapter is NULL");
    as.emplace_back(loras[i]->a.get(), scales[i]);
  }
  ember::GgufWriter w;
  ember::Status st = ember::lora_merge(*m, as, type ? &t : nullptr, &w);
  if (st.ok()) st = w.Write(out_path);
  return to_c(st);
}

}  // extern "C"
