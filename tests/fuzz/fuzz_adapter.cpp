// LoRA adapters against a fixed base (octopus-tiny): arbitrary bytes as a GGUF adapter
// (LoraAdapter::FromGguf) or as a PEFT directory (adapter_config.json + safetensors,
// written to a scratch directory because PEFT adapters are directories). An adapter that
// loads is applied to a context and one token is evaluated.
// Input: first byte even: the rest is a GGUF adapter; odd: "<config JSON>\0<safetensors>"
// (no NUL: the rest is the safetensors with a valid rank-8 config).
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "engine/lora/lora.h"
#include "engine/model/context.h"
#include "loader/gguf.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace ember;

const Model& base() { return fuzz::FixtureModel("models/octopus-tiny/octopus-tiny-q4_0.gguf"); }

std::string scratch_dir() {
  static const std::string dir = [] {
    std::string d = "/tmp/ember-fuzz-peft-" + std::to_string(::getpid());
    (void)std::system(("mkdir -p '" + d + "'").c_str());
    return d;
  }();
  return dir;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void apply_and_eval(const LoraAdapter& adapter) {
  static std::unique_ptr<Context> ctx = [] {
    ContextParams cp;
    cp.n_ctx = 8;
    cp.n_threads = 1;
    std::unique_ptr<Context> c;
    if (!Context::Create(base(), cp, &c).ok()) std::abort();
    return c;
  }();
  LoraSet set(base(), ctx->n_batch());
  bool affects_cache = false;
  if (!set.Set(&adapter, 0.5f, &affects_cache).ok()) return;
  ctx->SetProjectionDelta(&set);
  ctx->Reset();
  const int32_t ids[2] = {2, 40};
  (void)ctx->Eval(ids, 2);
  ctx->SetProjectionDelta(nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::Silence();
  base();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::unique_ptr<LoraAdapter> adapter;
  if (data[0] % 2 == 0) {
    std::unique_ptr<GgufFile> g;
    if (!GgufFile::FromMemory(data + 1, size - 1, "fuzz-adapter.gguf", &g).ok()) return 0;
    if (!LoraAdapter::FromGguf(base(), *g, &adapter).ok()) return 0;
  } else {
    auto [config, tensors] = fuzz::SplitAtNul(data + 1, size - 1);
    if (tensors.empty()) {
      tensors = config;
      config = R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16})";
    }
    const std::string dir = scratch_dir();
    write_file(dir + "/adapter_config.json", config);
    write_file(dir + "/adapter_model.safetensors", tensors);
    if (!LoraAdapter::FromPeft(base(), dir, &adapter).ok()) return 0;
  }
  apply_and_eval(*adapter);
  return 0;
}
