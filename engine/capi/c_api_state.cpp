// The C API's saved state section (include/ember/ember.h): ember_context_save/load over
// engine/model/state_file.h.
#include "ember/ember.h"
#include "engine/capi/c_api_internal.h"
#include "engine/model/state_file.h"

extern "C" {

ember_status ember_context_save(const ember_context* ctx, const char* path) {
  return ember::capi::guard("ember_context_save", {{"ctx", ctx}, {"path", path}}, [&] {
    return ember::capi::to_c(ember::SaveContextState(*ctx->c, path));
  });
}

ember_status ember_context_load(ember_context* ctx, const char* path) {
  return ember::capi::guard("ember_context_load", {{"ctx", ctx}, {"path", path}}, [&] {
    return ember::capi::to_c(ember::LoadContextState(*ctx->c, path));
  });
}

}  // extern "C"
