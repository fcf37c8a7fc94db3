// Sampler: logits -> next token. Order as in llama.cpp: penalties, then top-k,
// top-p, min-p, temperature, then a draw from the softmax. Temperature <= 0 is
// greedy (argmax after penalties). All buffers are allocated once; sampling a
// token allocates nothing. Deterministic for a seed on every platform (own
// uniform-from-bits conversion, no std:: distributions).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace ember {

struct SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off. logit > 0 ? logit / r : logit * r
  int32_t repeat_last_n = 64;   // window for all penalties
  float frequency_penalty = 0;  // logit -= count * f
  float presence_penalty = 0;   // logit -= (count > 0) * p
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplerParams& p, int32_t n_vocab);
  // `history`: tokens so far (prompt and generated), the last repeat_last_n are penalised.
  int32_t Sample(const float* logits, const int32_t* history, size_t n_history);
  const SamplerParams& params() const { return p_; }

 private:
  struct Cand { float logit; int32_t id; };
  double Uniform();  // [0, 1)
  SamplerParams p_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<Cand> cands_;      // [n_vocab]
  std::vector<float> probs_;     // [n_vocab]
  std::vector<int32_t> counts_;  // [n_vocab], zero between calls
};

}  // namespace ember
