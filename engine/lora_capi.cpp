// C API section "LoRA adapters" (include/ember/ember.h) over engine/lora.h.
//
// A context's adapters live in a LoraSet kept beside the context (ember_context is
// defined in c_api.cpp), keyed by the engine Context and recognised by being the
// context's current projection delta: an entry whose context was freed and whose
// address was reused is stale (the new context has no delta) and is dropped.
#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include "engine/c_api_internal.h"
#include "engine/context.h"
#include "engine/lora.h"

struct ember_lora {
  const ember_model* model;
  std::unique_ptr<ember::LoraAdapter> a;
};

namespace {

using ember::capi::set_error;

ember_status to_c(const ember::Status& s) {
  return s.ok() ? EMBER_OK : set_error(static_cast<ember_status>(s.code()), s.message());
}

std::mutex g_mu;
std::map<const ember::Context*, std::unique_ptr<ember::LoraSet>> g_sets;

// The context's LoraSet; created when `create`. Caller holds g_mu.
ember::LoraSet* set_of(ember::Context* c, bool create) {
  auto it = g_sets.find(c);
  if (it != g_sets.end() && c->projection_delta() != it->second.get()) {
    g_sets.erase(it);  // stale: a freed context's set
    it = g_sets.end();
  }
  if (it != g_sets.end()) return it->second.get();
  if (!create) return nullptr;
  auto s = std::make_unique<ember::LoraSet>(c->model(), c->n_batch());
  ember::LoraSet* p = s.get();
  g_sets[c] = std::move(s);
  return p;
}

// After a change: attach or detach the set, reset the cache when it is stale.
void commit(ember::Context* c, ember::LoraSet* s, bool affects_cache) {
  c->SetProjectionDelta(s && !s->empty() ? s : nullptr);
  if (s && s->empty()) g_sets.erase(c);
  if (affects_cache) c->Reset();
}

}  // namespace

namespace ember {
// For ember_context_free (c_api.cpp): forget the context's adapters.
void lora_release_context(const Context* c) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sets.erase(c);
}
}  // namespace ember

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
  ember::Context* c = ember::capi::context_of(ctx);
  if (!c || !lora) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_context_set_lora: NULL argument");
  std::lock_guard<std::mutex> lock(g_mu);
  ember::LoraSet* s = set_of(c, true);
  bool affects = false;
  ember::Status st = s->Set(lora->a.get(), scale, &affects);
  commit(c, s, affects);
  return to_c(st);
}

ember_status ember_context_remove_lora(ember_context* ctx, const ember_lora* lora) {
  ember::Context* c = ember::capi::context_of(ctx);
  if (!c || !lora) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_context_remove_lora: NULL argument");
  std::lock_guard<std::mutex> lock(g_mu);
  ember::LoraSet* s = set_of(c, false);
  bool affects = false;
  if (!s || !s->Remove(lora->a.get(), &affects))
    return set_error(EMBER_ERR_NOT_FOUND, "ember_context_remove_lora: adapter '" + lora->a->name() +
                                              "' is not set on this context");
  commit(c, s, affects);
  return EMBER_OK;
}

ember_status ember_context_clear_loras(ember_context* ctx) {
  ember::Context* c = ember::capi::context_of(ctx);
  if (!c) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_context_clear_loras: ctx is NULL");
  std::lock_guard<std::mutex> lock(g_mu);
  ember::LoraSet* s = set_of(c, false);
  bool affects = false;
  if (s) s->Clear(&affects);
  if (s) commit(c, s, affects);
  return EMBER_OK;
}

int32_t ember_context_n_loras(ember_context* ctx) {
  ember::Context* c = ember::capi::context_of(ctx);
  if (!c) return 0;
  std::lock_guard<std::mutex> lock(g_mu);
  ember::LoraSet* s = set_of(c, false);
  return s ? static_cast<int32_t>(s->size()) : 0;
}

}  // extern "C"

// ---- blend / merge --------------------------------------------------------------------

#include "engine/lora_tools.h"

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
