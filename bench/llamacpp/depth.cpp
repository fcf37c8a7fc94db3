// Decode tok/s of llama.cpp at a depth (tokens already in the cache) with its cache types:
// what `ember bench -p 1 -n NGEN -d DEPTH -ctk T -ctv T` measures, for the KV tables of
// docs/PERFORMANCE.md (the shared driver in ../shared/llamacpp has no depth or cache
// types). Not part of the build; against the llama.cpp that ../shared/llamacpp/build.sh makes:
//   g++ -std=gnu++17 -O2 -march=native -I/tmp/llamacpp-b10256/src bench/llamacpp/depth.cpp \
//       /tmp/llamacpp-b10256/build/libllama-ref.a -fopenmp -pthread -ldl -o /tmp/llamacpp-depth
// usage: llamacpp-depth MODEL DEPTH NGEN THREADS REPS CTK CTV [swa_full]
// Prints "decode_tok_s X" (median of REPS after one warm-up) and llama.cpp's KV cache lines.
#include "llama.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
static lm_ggml_type ty(const char* s) {
  if (!strcmp(s, "f32")) return LM_GGML_TYPE_F32;
  if (!strcmp(s, "q8_0")) return LM_GGML_TYPE_Q8_0;
  return LM_GGML_TYPE_F16;
}
static void logcb(lm_ggml_log_level, const char* t, void*) {
  if (strstr(t, "llama_kv_cache") && strstr(t, "MiB")) fprintf(stderr, "%s", t);
}
int main(int argc, char** argv) {
  if (argc < 8) { fprintf(stderr, "usage\n"); return 2; }
  const int depth = atoi(argv[2]), ngen = atoi(argv[3]), thr = atoi(argv[4]), reps = atoi(argv[5]);
  llama_log_set(logcb, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = depth + ngen + 1;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = thr;
  cp.type_k = ty(argv[6]);
  cp.type_v = ty(argv[7]);
  cp.swa_full = argc > 8;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) { fprintf(stderr, "no context\n"); return 1; }
  const int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::mt19937 rng(42);
  std::vector<llama_token> ids(depth + ngen);
  for (auto& t : ids) t = rng() % nv;
  for (int i = 0; i < depth; i += 512) {
    int n = std::min(512, depth - i);
    if (llama_decode(ctx, llama_batch_get_one(ids.data() + i, n))) return 1;
  }
  llama_memory_t mem = llama_get_memory(ctx);
  std::vector<double> v;
  for (int r = 0; r <= reps; ++r) {
    llama_memory_seq_rm(mem, 0, depth, -1);
    double t0 = now();
    for (int i = 0; i < ngen; ++i) {
      if (llama_decode(ctx, llama_batch_get_one(&ids[depth + i], 1))) return 1;
      llama_synchronize(ctx);
    }
    if (r) v.push_back(ngen / (now() - t0));
  }
  std::sort(v.begin(), v.end());
  printf("decode_tok_s %.2f\n", v[v.size() / 2]);
  llama_free(ctx);
  llama_model_free(model);
}
