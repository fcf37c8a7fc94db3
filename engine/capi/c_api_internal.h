// Internal bridge for C API sections implemented outside engine/capi/c_api.cpp (e.g.
// engine/capi/c_api_call.cpp): the C++ objects behind the opaque handles, the context
// handle itself (so that a section can keep per-context state in it, as the LoRA
// section does). Errors and exceptions: engine/capi/guard.h. Not part of the public API.
#pragma once
#include <memory>
#include <string>

#include "ember/ember.h"
#include "engine/capi/guard.h"

namespace ember {
class Model;
class Context;
class LoraAdapter;
class LoraSet;
}  // namespace ember

namespace ember::capi {
// Frees a context's LoRA set (engine/capi/lora_capi.cpp), so that ember_context can own one
// without every includer needing its definition.
struct LoraSetDeleter {
  void operator()(LoraSet* s) const;
};
}  // namespace ember::capi

// A context handle (created and freed in c_api.cpp).
struct ember_context {
  ember_model* model;
  // Its LoRA adapters and their scales (engine/capi/lora_capi.cpp); null while none are set.
  // Declared before c, so the context that points at the set is destroyed first.
  std::unique_ptr<ember::LoraSet, ember::capi::LoraSetDeleter> loras;
  std::unique_ptr<ember::Context> c;
};

// A LoRA adapter handle (engine/capi/lora_capi.cpp; the offline section writes them).
namespace ember::capi {
struct LoraAdapterDeleter {
  void operator()(LoraAdapter* a) const;
};
}  // namespace ember::capi
struct ember_lora {
  const ember_model* model;
  std::unique_ptr<ember::LoraAdapter, ember::capi::LoraAdapterDeleter> a;
};

namespace ember::capi {

const Model* model_of(const ember_model* m);          // nullptr for a null handle
Context* context_of(ember_context* c);                // nullptr for a null handle

// The API's buffer convention: *n_out = n (the elements needed), then the n elements of
// `elem` bytes copied to dst when cap holds them, else EMBER_ERR_OUT_OF_RANGE naming `fn`.
ember_status copy_out(const void* src, size_t n, size_t elem, void* dst, size_t cap, size_t* n_out, const char* fn);

}  // namespace ember::capi
