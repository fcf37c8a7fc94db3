// llama.cpp b10256's per-type GEMV (its vec_dot over 2048 rows x 2048 cols, one thread, the
// activation quantized once): the microseconds per GEMV that Ember's
// BM_matmul_<type>/avx2/2048x2048/n:1 measures. Not part of the build:
//   g++ -O2 -std=gnu++17 -I/tmp/llamacpp-b10256/src bench/llamacpp/vecdot.cpp /tmp/llamacpp-b10256/build/libllama-ref.a -fopenmp -pthread -ldl -o /tmp/lcpp-vecdot
#include "ggml.h"
#include "ggml-cpu.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
int main(int argc, char** argv) {
  const int rows = 2048, cols = 2048, reps = argc > 1 ? atoi(argv[1]) : 200;
  lm_ggml_cpu_init();
  struct T { const char* name; lm_ggml_type t; } types[] = {
      {"q4_k", LM_GGML_TYPE_Q4_K}, {"q5_k", LM_GGML_TYPE_Q5_K}, {"iq4_xs", LM_GGML_TYPE_IQ4_XS},
      {"q2_k", LM_GGML_TYPE_Q2_K}, {"q3_k", LM_GGML_TYPE_Q3_K}, {"q4_1", LM_GGML_TYPE_Q4_1},
      {"q5_0", LM_GGML_TYPE_Q5_0}, {"q5_1", LM_GGML_TYPE_Q5_1}, {"iq4_nl", LM_GGML_TYPE_IQ4_NL},
      {"q4_0", LM_GGML_TYPE_Q4_0}, {"q6_k", LM_GGML_TYPE_Q6_K}, {"q8_0", LM_GGML_TYPE_Q8_0}};
  std::mt19937 g(7);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> w(size_t(rows) * cols), x(cols), y(rows);
  for (auto& v : w) v = nd(g);
  for (auto& v : x) v = nd(g);
  for (const T& ty : types) {
    const auto* tr = lm_ggml_get_type_traits_cpu(ty.t);
    const size_t rb = lm_ggml_row_size(ty.t, cols);
    std::vector<uint8_t> wq(rb * rows);
    lm_ggml_quantize_chunk(ty.t, w.data(), wq.data(), 0, rows, cols, nullptr);
    const auto* vt = lm_ggml_get_type_traits_cpu(tr->vec_dot_type);
    std::vector<uint8_t> xq(lm_ggml_row_size(tr->vec_dot_type, cols));
    vt->from_float(x.data(), xq.data(), cols);
    double best = 1e9;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < rows; ++i) tr->vec_dot(cols, &y[i], 0, wq.data() + i * rb, 0, xq.data(), 0, 1);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    printf("%-7s %8.1f us  %6.2f GB/s (weights)\n", ty.name, best * 1e6, wq.size() / best / 1e9);
  }
}
