// A logistic probe on the device model's final-normed hidden state (ember_call_result.hidden,
// the state the functional token is predicted from) and the call's own probabilities:
// P(the local call is right) = sigmoid(w · (x - mean) / scale + b), x = probe_features(call).
// Trained by `ember route train` from labelled queries (docs/HYBRID.md: the hidden state says
// which domain the query is in, the probabilities whether the arguments came out sure).
#pragma once
#include <string>
#include <vector>

#include "../json_io.h"
#include "ember/ember.h"

namespace ember::cli {

// x: the hidden state [n_hidden], then log min_prob, log function_prob, -mean_entropy and
// log call_prob (logs floored at 1e-30); empty when the call has no hidden state.
inline constexpr size_t kProbeScores = 4;
std::vector<float> probe_features(const ember_call_result& r);

struct Probe {
  std::vector<float> mean, scale, weights;  // [n_hidden] each
  float bias = 0;
  bool empty() const { return weights.empty(); }
  // The probability for features x [n]; 0 when n does not match the probe.
  float Predict(const float* x, size_t n) const;
};

struct ProbeTraining {
  float l2 = 1e-2f;       // weight decay (on standardized features)
  int32_t epochs = 500;   // full-batch gradient steps
  float learning_rate = 0.5f;
};

// Fits the probe to features [n][dim] (row-major) and labels (1: the local call was right).
Probe train_probe(const std::vector<std::vector<float>>& features, const std::vector<int>& labels,
                  const ProbeTraining& t);

Json probe_to_json(const Probe& p);
// false with *error when j is not a probe of matching sizes.
bool probe_from_json(const Json& j, Probe* out, std::string* error);

}  // namespace ember::cli
