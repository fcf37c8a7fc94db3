// LoRA adapters against a fixed base: arbitrary bytes as a GGUF adapter
// (LoraAdapter::FromGguf) or as a PEFT directory (adapter_config.json + safetensors,
// written to a scratch directory because PEFT adapters are directories). An adapter that
// loads is applied to a context and two tokens are evaluated.
// Input: first byte bit 0 clear: the rest is a GGUF adapter; set: "<config JSON>\0<safetensors>"
// (no NUL: the rest is the safetensors with a valid rank-8 config). Bit 1 picks the base:
// clear, the tiny generated llama of tiny_models.h (1 block of 32: fast); set,
// octopus-tiny (gemma, 6 blocks, its real adapters cut to block 0 as seeds).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/lora/lora.h"
#include "engine/model/context.h"
#include "loader/gguf.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/tiny_models.h"

namespace {

using namespace ember;

const Model& octopus() { return fuzz::FixtureModel("models/octopus-tiny/octopus-tiny-q4_0.gguf"); }

const Model& tiny() {
  static const std::vector<uint8_t> bytes = fuzz::TinyModel({"llama", DType::F32, false});
  static std::unique_ptr<Model> model = [] {
    std::unique_ptr<GgufFile> g;
    std::unique_ptr<Model> m;
    if (!GgufFile::FromMemory(bytes.data(), bytes.size(), "tiny.gguf", &g).ok() ||
        !Model::FromGguf(std::move(g), {}, &m).ok())
      std::abort();
    return m;
  }();
  return *model;
}

// In memory (/dev/shm) when there is one: two file writes per input are this target's
// only I/O. Removed at exit (libFuzzer ends with exit(), findings included).
const std::string& scratch_dir() {
  static const std::string& dir = *[] {  // never destroyed: the exit handler reads it
    const std::string root = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    auto* d = new std::string(root + "/ember-fuzz-peft-" + std::to_string(::getpid()));
    std::error_code ec;
    std::filesystem::create_directories(*d, ec);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return d;
  }();
  return dir;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::unique_ptr<Context> make_context(const Model& m) {
  ContextParams cp;
  cp.n_ctx = 8;
  cp.n_threads = 1;
  std::unique_ptr<Context> c;
  if (!Context::Create(m, cp, &c).ok()) std::abort();
  return c;
}

void apply_and_eval(const Model& base, const LoraAdapter& adapter) {
  static std::unique_ptr<Context> octopus_ctx = make_context(octopus()), tiny_ctx = make_context(tiny());
  Context* ctx = &base == &octopus() ? octopus_ctx.get() : tiny_ctx.get();
  LoraSet set(base, ctx->n_batch());
  bool affects_cache = false;
  if (!set.Set(&adapter, 0.5f, &affects_cache).ok()) return;
  ctx->SetProjectionDelta(&set);
  ctx->Reset();
  // Two tokens through the tiny base (attention over a past position), one through
  // octopus-tiny's six blocks (the expensive part of this target).
  const int32_t ids[2] = {2, std::min(40, base.config().n_vocab - 1)};
  (void)ctx->Eval(ids, ctx == octopus_ctx.get() ? 1 : 2);
  ctx->SetProjectionDelta(nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::Silence();
  octopus();
  tiny();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::unique_ptr<LoraAdapter> adapter;
  const Model& base = data[0] & 2 ? octopus() : tiny();
  if (data[0] % 2 == 0) {
    std::unique_ptr<GgufFile> g;
    if (!GgufFile::FromMemory(data + 1, size - 1, "fuzz-adapter.gguf", &g).ok()) return 0;
    if (!LoraAdapter::FromGguf(base, *g, &adapter).ok()) return 0;
  } else {
    auto [config, tensors] = fuzz::SplitAtNul(data + 1, size - 1);
    if (tensors.empty()) {
      tensors = config;
      config = R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16})";
    }
    const std::string& dir = scratch_dir();
    write_file(dir + "/adapter_config.json", config);
    write_file(dir + "/adapter_model.safetensors", tensors);
    if (!LoraAdapter::FromPeft(base, dir, &adapter).ok()) return 0;
  }
  apply_and_eval(base, *adapter);
  return 0;
}
