// C API section "LoRA adapters" (include/ember/ember.h) over engine/lora/: loading,
// setting on a context, automatic blend weights. Blending, merging and saving adapters
// are the offline library's (offline/lora_capi.cpp, include/ember/ember_tools.h).
//
// A context's adapters live in a LoraSet owned by its ember_context (c_api_internal.h),
// created by the first set and dropped when the last adapter goes; freeing the context
// frees it. Like the context itself, it is not for concurrent use from several threads.
#include <memory>
#include <string>
#include <vector>

#include "engine/capi/c_api_internal.h"
#include "engine/lora/auto_weights.h"
#include "engine/lora/lora.h"
#include "engine/model/context.h"

namespace ember::capi {
void LoraSetDeleter::operator()(LoraSet* s) const { delete s; }
void LoraAdapterDeleter::operator()(LoraAdapter* a) const { delete a; }
}  // namespace ember::capi

namespace {

using ember::capi::guard;
using ember::capi::guard_value;
using ember::capi::guard_void;
using ember::capi::set_error;
using ember::capi::to_c;
using LoraSetPtr = std::unique_ptr<ember::LoraSet, ember::capi::LoraSetDeleter>;

// A copy of the context's LoraSet (an empty one when it has none) to change: changes are
// made on the copy and committed only when they succeed, so a failure (out of memory
// while the set rebuilds its tables) leaves the context's adapters as they were.
LoraSetPtr copy_of_set(ember_context* ctx) {
  if (ctx->loras) return LoraSetPtr(new ember::LoraSet(*ctx->loras));
  return LoraSetPtr(new ember::LoraSet(ctx->c->model(), ctx->c->n_batch()));
}

// Installs `next` as the context's set (dropping an empty one) and resets the cache when
// the change made it stale. Allocates nothing.
void commit(ember_context* ctx, LoraSetPtr next, bool affects_cache) {
  ember::Context* c = ctx->c.get();
  if (next && next->empty()) next.reset();
  c->SetProjectionDelta(next.get());  // before the old set is freed
  ctx->loras = std::move(next);
  if (affects_cache) c->Reset();
}

}  // namespace

extern "C" {

ember_status ember_lora_load(const ember_model* model, const char* path, ember_lora** out) {
  return guard("ember_lora_load", {{"model", model}, {"path", path}, {"out", out}}, [&] {
    *out = nullptr;
    std::unique_ptr<ember::LoraAdapter> a;
    if (ember::Status st = ember::LoraAdapter::Load(*ember::capi::model_of(model), path, &a); !st.ok())
      return to_c(st);
    auto h = std::make_unique<ember_lora>();
    h->model = model;
    h->a.reset(a.release());
    *out = h.release();
    return EMBER_OK;
  });
}

void ember_lora_free(ember_lora* lora) {
  guard_void("ember_lora_free", [&] { delete lora; });
}

ember_status ember_lora_get_info(const ember_lora* lora, ember_lora_info* out) {
  return guard("ember_lora_get_info", {{"lora", lora}, {"out", out}}, [&] {
    out->rank = lora->a->max_rank();
    out->alpha = lora->a->alpha();
    out->n_weights = static_cast<int32_t>(lora->a->weights().size());
    out->affects_cache = lora->a->AffectsCache() ? 1 : 0;
    return EMBER_OK;
  });
}

ember_status ember_context_set_lora(ember_context* ctx, const ember_lora* lora, float scale) {
  return guard("ember_context_set_lora", {{"ctx", ctx}, {"lora", lora}}, [&] {
    LoraSetPtr next = copy_of_set(ctx);
    bool affects = false;
    ember::Status st = next->Set(lora->a.get(), scale, &affects);
    if (!st.ok()) return to_c(st);
    commit(ctx, std::move(next), affects);
    return EMBER_OK;
  });
}

ember_status ember_context_remove_lora(ember_context* ctx, const ember_lora* lora) {
  return guard("ember_context_remove_lora", {{"ctx", ctx}, {"lora", lora}}, [&] {
    LoraSetPtr next = copy_of_set(ctx);
    bool affects = false;
    if (!next->Remove(lora->a.get(), &affects))
      return set_error(EMBER_ERR_NOT_FOUND, "ember_context_remove_lora: adapter '" + lora->a->name() +
                                                "' is not set on this context");
    commit(ctx, std::move(next), affects);
    return EMBER_OK;
  });
}

ember_status ember_context_clear_loras(ember_context* ctx) {
  return guard("ember_context_clear_loras", {{"ctx", ctx}}, [&] {
    bool affects = false;
    if (ctx->loras) {
      LoraSetPtr next = copy_of_set(ctx);
      next->Clear(&affects);
      commit(ctx, std::move(next), affects);
    }
    return EMBER_OK;
  });
}

int32_t ember_context_n_loras(ember_context* ctx) {
  return guard_value("ember_context_n_loras", int32_t{0}, {{"ctx", ctx}},
                     [&] { return ctx->loras ? static_cast<int32_t>(ctx->loras->size()) : 0; });
}

ember_status ember_lora_set_task_examples(ember_lora* lora, const char* const* texts, size_t n) {
  return guard("ember_lora_set_task_examples", {{"lora", lora}}, [&] {
    if (n > 0 && !texts) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_set_task_examples: texts is NULL");
    std::vector<std::string> v;
    for (size_t i = 0; i < n; ++i) {
      if (!texts[i]) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_set_task_examples: text is NULL");
      v.emplace_back(texts[i]);
    }
    lora->a->set_task_examples(std::move(v));
    return EMBER_OK;
  });
}

ember_status ember_lora_auto_weights(const ember_model* model, const ember_lora* const* loras, size_t n,
                                     const char* const* examples, size_t n_examples, int centered,
                                     float temperature, int32_t n_threads, float* similarity, float* weights) {
  return guard("ember_lora_auto_weights",
               {{"model", model}, {"loras", loras}, {"examples", examples}, {"weights", weights}}, [&] {
    if (n == 0) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_auto_weights: no adapters");
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
    const ember::Model& m = *ember::capi::model_of(model);
    if (ember::Status st = ember::lora_auto_weights(m, as, ex, centered != 0, temperature, n_threads, &r); !st.ok())
      return to_c(st);
    for (size_t i = 0; i < n; ++i) {
      weights[i] = r.weight[i];
      if (similarity) similarity[i] = static_cast<float>(r.similarity[i]);
    }
    return EMBER_OK;
  });
}

}  // extern "C"
