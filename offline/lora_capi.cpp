// C API section "LoRA adapters, offline" (include/ember/ember_tools.h): saving, blending
// and merging adapters, over offline/lora_tools.h. Entry points run inside the C ABI
// guard (engine/capi/guard.h).
#include <cctype>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/ember_tools.h"
#include "engine/capi/c_api_internal.h"
#include "engine/lora/lora.h"
#include "loader/gguf_writer.h"
#include "offline/lora_tools.h"

namespace {

using ember::capi::guard;
using ember::capi::set_error;
using ember::capi::to_c;

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

ember_status ember_lora_save(const ember_lora* lora, const char* path) {
  return guard("ember_lora_save", {{"lora", lora}, {"path", path}},
               [&] { return to_c(ember::lora_write_gguf(*lora->a, path)); });
}

ember_status ember_lora_blend(const ember_model* model, const ember_lora* const* loras, const float* weights,
                              size_t n, int mode, int32_t rank, const char* out_path) {
  return guard("ember_lora_blend", {{"model", model}, {"loras", loras}, {"weights", weights}, {"out_path", out_path}},
               [&] {
    if (n == 0) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_blend: no adapters");
    if (mode < EMBER_LORA_BLEND_EXACT || mode > EMBER_LORA_BLEND_SVD)
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_blend: unknown mode " + std::to_string(mode));
    std::vector<ember::LoraBlendInput> in;
    for (size_t i = 0; i < n; ++i) {
      if (!loras[i]) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_blend: adapter is NULL");
      in.push_back({loras[i]->a.get(), weights[i]});
    }
    std::unique_ptr<ember::LoraAdapter> out;
    const ember::Model& m = *ember::capi::model_of(model);
    ember::Status st = ember::lora_blend(m, in, static_cast<ember::LoraBlendMode>(mode), rank, &out);
    if (st.ok()) st = ember::lora_write_gguf(*out, out_path);
    return to_c(st);
  });
}

ember_status ember_lora_merge(const ember_model* model, const ember_lora* const* loras, const float* scales,
                              size_t n, const char* type, const char* out_path) {
  return guard("ember_lora_merge", {{"model", model}, {"out_path", out_path}}, [&] {
    if (n > 0 && (!loras || !scales))
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_lora_merge: loras or scales is NULL with n > 0");
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
    ember::Status st = ember::lora_merge(*ember::capi::model_of(model), as, type ? &t : nullptr, &w);
    if (st.ok()) st = w.Write(out_path);
    return to_c(st);
  });
}

}  // extern "C"
