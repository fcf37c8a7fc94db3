#include "engine/generate/sampler.h"

#include <algorithm>
#include <cmath>

namespace ember {

Sampler::Sampler(const SamplerParams& p, int32_t n_vocab)
    : p_(p), n_vocab_(n_vocab), rng_(p.seed), cands_(n_vocab), probs_(n_vocab), counts_(n_vocab, 0) {}

double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0); }

int32_t Sampler::Sample(const float* logits, const int32_t* history, size_t n_history) {
  for (int32_t i = 0; i < n_vocab_; ++i) cands_[i] = {logits[i], i};

  // Penalties over the last repeat_last_n tokens of the history.
  const bool penalise = p_.repeat_penalty != 1.0f || p_.frequency_penalty != 0 || p_.presence_penalty != 0;
  if (penalise && p_.repeat_last_n != 0 && n_history > 0) {
    const size_t w = p_.repeat_last_n < 0 ? n_history : std::min<size_t>(n_history, p_.repeat_last_n);
    const int32_t* h = history + (n_history - w);
    for (size_t i = 0; i < w; ++i)
      if (h[i] >= 0 && h[i] < n_vocab_) ++counts_[h[i]];
    for (size_t i = 0; i < w; ++i) {
      const int32_t id = h[i];
      if (id < 0 || id >= n_vocab_ || counts_[id] == 0) continue;  // out of range, or done
      float& l = cands_[id].logit;
      if (p_.repeat_penalty != 1.0f) l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
      l -= counts_[id] * p_.frequency_penalty + p_.presence_penalty;
      counts_[id] = 0;  // each distinct token penalised once; leaves counts_ zeroed
    }
  }

  // Greedy: the first maximum (lowest id on ties).
  if (p_.temperature <= 0) {
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab_; ++i)
      if (cands_[i].logit > cands_[best].logit) best = i;
    return best;
  }

  auto by_logit = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  size_t n = n_vocab_;
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
    std::partial_sort(cands_.begin(), cands_.begin() + p_.top_k, cands_.begin() + n, by_logit);
    n = p_.top_k;
  } else {
    std::sort(cands_.begin(), cands_.begin() + n, by_logit);
  }
  // Softmax of the survivors (sorted, so cands_[0] is the max).
  auto softmax = [&](size_t m, float temp) {
    double sum = 0;
    for (size_t i = 0; i < m; ++i) {
      probs_[i] = static_cast<float>(std::exp(static_cast<double>(cands_[i].logit - cands_[0].logit) / temp));
      sum += probs_[i];
    }
    for (size_t i = 0; i < m; ++i) probs_[i] = static_cast<float>(probs_[i] / sum);
  };
  softmax(n, 1.0f);
  if (p_.top_p < 1.0f) {  // smallest prefix with cumulative probability >= top_p
    double cum = 0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += probs_[i];
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
    n = std::max<size_t>(keep, 1);
  }
  if (p_.min_p > 0) {  // drop tokens with p < min_p * p_max
    const float cut = p_.min_p * probs_[0];
    size_t keep = 1;
    while (keep < n && probs_[keep] >= cut) ++keep;
    n = keep;
  }
  softmax(n, p_.temperature);
  const double r = Uniform();
  double cum = 0;
  for (size_t i = 0; i < n; ++i) {
    cum += probs_[i];
    if (r < cum) return cands_[i].id;
  }
  return cands_[n - 1].id;
}

}  // namespace ember
