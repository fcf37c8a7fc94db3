// GGUF model files from bytes, through everything a user's load does: the header,
// metadata and tensor table (loader/gguf.cpp), the architecture and tokenizer
// (engine/model/config.cpp, tokenizer/), the tensor data of every type bound as weights,
// a context, and two evaluated tokens. Seeds: tiny generated models (make_seeds.cpp,
// tiny_models.h): every architecture, and every weight type the loader binds.
// Memory: EMBER_MEMINFO points the context's up-front check at a 512 MiB budget, so a
// file that asks for a huge context is refused (as on a small device), not allocated.
#include <cstdio>

#include "engine/model/context.h"
#include "loader/gguf.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

void fake_small_memory() {
  static const char* path = [] {
    const char* p = "/tmp/ember-fuzz-meminfo";
    if (FILE* f = std::fopen(p, "w")) {
      std::fputs("MemTotal: 1048576 kB\nMemAvailable: 524288 kB\n", f);
      std::fclose(f);
    }
    return p;
  }();
  setenv("EMBER_MEMINFO", path, 1);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::Silence();
  fake_small_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  std::unique_ptr<GgufFile> gguf;
  if (!GgufFile::FromMemory(data, size, "fuzz.gguf", &gguf).ok()) return 0;
  std::unique_ptr<Model> model;
  if (!Model::FromGguf(std::move(gguf), {}, &model).ok()) return 0;
  ContextParams cp;
  cp.n_ctx = 16;
  cp.n_threads = 1;
  std::unique_ptr<Context> ctx;
  if (!Context::Create(*model, cp, &ctx).ok()) return 0;
  const int32_t n_vocab = model->config().n_vocab;
  const int32_t ids[2] = {0, n_vocab > 1 ? n_vocab - 1 : 0};
  (void)ctx->Eval(ids, 2);
  return 0;
}
