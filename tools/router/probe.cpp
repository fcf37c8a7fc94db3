#include "probe.h"

#include <algorithm>
#include <cmath>

namespace ember::cli {

namespace {

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// Standardization of every feature over the training rows (scale 1 for a constant one).
void fit_standardization(const std::vector<std::vector<float>>& x, Probe* p) {
  const size_t dim = x[0].size(), n = x.size();
  p->mean.assign(dim, 0);
  p->scale.assign(dim, 1);
  for (size_t k = 0; k < dim; ++k) {
    double s = 0, s2 = 0;
    for (const auto& row : x) s += row[k];
    const double m = s / n;
    for (const auto& row : x) s2 += (row[k] - m) * (row[k] - m);
    const double sd = std::sqrt(s2 / n);
    p->mean[k] = static_cast<float>(m);
    p->scale[k] = sd > 1e-6 ? static_cast<float>(sd) : 1.0f;
  }
}

float log_floor(float p) { return static_cast<float>(std::log(std::max(static_cast<double>(p), 1e-30))); }

}  // namespace

std::vector<float> probe_features(const ember_call_result& r) {
  if (!r.hidden || r.n_hidden <= 0) return {};
  std::vector<float> x(r.hidden, r.hidden + r.n_hidden);
  x.push_back(log_floor(r.min_prob));
  x.push_back(log_floor(r.function_prob));
  x.push_back(-r.mean_entropy);
  x.push_back(log_floor(r.call_prob));
  return x;
}

float Probe::Predict(const float* h, size_t n) const {
  if (n != weights.size() || n == 0) return 0;
  double z = bias;
  for (size_t k = 0; k < n; ++k) z += weights[k] * (h[k] - mean[k]) / scale[k];
  return static_cast<float>(sigmoid(z));
}

Probe train_probe(const std::vector<std::vector<float>>& features, const std::vector<int>& labels,
                  const ProbeTraining& t) {
  Probe p;
  if (features.empty() || features[0].empty()) return p;
  fit_standardization(features, &p);
  const size_t dim = features[0].size(), n = features.size();
  std::vector<std::vector<double>> z(n, std::vector<double>(dim));
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < dim; ++k) z[i][k] = (features[i][k] - p.mean[k]) / p.scale[k];
  // Full-batch gradient descent on the mean log loss plus l2/2 |w|^2: convex, so the
  // plain method reaches the optimum; no randomness, so training is reproducible.
  std::vector<double> w(dim, 0.0);
  double b = 0;
  for (int32_t e = 0; e < t.epochs; ++e) {
    std::vector<double> gw(dim, 0.0);
    double gb = 0;
    for (size_t i = 0; i < n; ++i) {
      double s = b;
      for (size_t k = 0; k < dim; ++k) s += w[k] * z[i][k];
      const double err = sigmoid(s) - labels[i];
      gb += err;
      for (size_t k = 0; k < dim; ++k) gw[k] += err * z[i][k];
    }
    for (size_t k = 0; k < dim; ++k) w[k] -= t.learning_rate * (gw[k] / n + t.l2 * w[k]);
    b -= t.learning_rate * gb / n;
  }
  p.weights.assign(w.begin(), w.end());
  p.bias = static_cast<float>(b);
  return p;
}

Json probe_to_json(const Probe& p) {
  return Json{{"n_features", p.weights.size()}, {"mean", p.mean}, {"scale", p.scale},
              {"weights", p.weights},         {"bias", p.bias}};
}

bool probe_from_json(const Json& j, Probe* out, std::string* error) {
  const auto floats = [&](const char* key, std::vector<float>* v) {
    const Json* a = json_member(j, key);
    if (!a || !a->is_array()) return false;
    v->clear();
    for (const Json& e : *a) {
      if (!e.is_number()) return false;
      v->push_back(e.get<float>());
    }
    return true;
  };
  Probe p;
  const Json* bias = json_member(j, "bias");
  if (!floats("mean", &p.mean) || !floats("scale", &p.scale) || !floats("weights", &p.weights) || !bias ||
      !bias->is_number()) {
    *error = "the probe needs number arrays \"mean\", \"scale\", \"weights\" and a number \"bias\"";
    return false;
  }
  if (p.mean.size() != p.weights.size() || p.scale.size() != p.weights.size() || p.weights.empty()) {
    *error = "the probe's \"mean\", \"scale\" and \"weights\" differ in length";
    return false;
  }
  p.bias = bias->get<float>();
  *out = std::move(p);
  return true;
}

}  // namespace ember::cli
