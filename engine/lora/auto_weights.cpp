// Automatic LoRA blend weights (engine/lora/auto_weights.h). Runtime: uses only a
// context's forward pass, no file writing and no Eigen.
#include "engine/lora/auto_weights.h"

#include <algorithm>
#include <cmath>

#include "engine/model/context.h"
#include "tokenizer/tokenizer.h"

namespace ember {

Status lora_mean_hidden(const Model& model, const std::vector<std::string>& texts, int32_t n_threads,
                        std::vector<double>* out) {
  if (texts.empty()) return InvalidArgument("lora auto weights: no examples");
  const Tokenizer& tok = model.tokenizer();
  const int32_t n_embd = model.config().n_embd, n_max = std::max(model.config().n_ctx_train, 2);
  std::vector<std::vector<int32_t>> ids(texts.size());
  int32_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    EMBER_RETURN_IF_ERROR(tok.Encode(texts[i], tok.add_bos(), false, &ids[i]));
    if (static_cast<int32_t>(ids[i].size()) > n_max) ids[i].resize(n_max);
    const bool bos = !ids[i].empty() && tok.add_bos() && ids[i][0] == tok.bos_id();
    if (ids[i].size() <= (bos ? 1u : 0u))
      return InvalidArgument("lora auto weights: example " + std::to_string(i + 1) + " ('" + texts[i] +
                             "') has no tokens");
    longest = std::max(longest, static_cast<int32_t>(ids[i].size()));
  }
  // One context for all texts, each evaluated in one batch with every position's state kept.
  ContextParams cp;
  cp.n_ctx = longest;
  cp.n_batch = longest;
  cp.n_threads = n_threads;
  cp.logits_all = true;
  std::unique_ptr<Context> ctx;
  EMBER_RETURN_IF_ERROR(Context::Create(model, cp, &ctx));
  out->assign(static_cast<size_t>(n_embd), 0.0);
  std::vector<double> text(static_cast<size_t>(n_embd));
  for (const std::vector<int32_t>& v : ids) {
    ctx->Reset();
    EMBER_RETURN_IF_ERROR(ctx->Eval(v.data(), v.size()));
    const int32_t first = tok.add_bos() && v[0] == tok.bos_id() ? 1 : 0, n = static_cast<int32_t>(v.size());
    std::fill(text.begin(), text.end(), 0.0);
    for (int32_t t = first; t < n; ++t) {
      const float* h = ctx->hidden(t);
      for (int32_t j = 0; j < n_embd; ++j) text[j] += h[j];
    }
    for (int32_t j = 0; j < n_embd; ++j) (*out)[j] += text[j] / (n - first);
  }
  for (double& x : *out) x /= static_cast<double>(ids.size());
  return Status::Ok();
}

double lora_cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

std::vector<double> lora_similarities(const std::vector<double>& user, const std::vector<std::vector<double>>& tasks,
                                      bool centered) {
  std::vector<double> c(user.size(), 0.0);
  if (centered && !tasks.empty())
    for (const std::vector<double>& t : tasks)
      for (size_t j = 0; j < c.size() && j < t.size(); ++j) c[j] += t[j] / static_cast<double>(tasks.size());
  auto minus_c = [&](std::vector<double> v) {
    for (size_t j = 0; j < v.size() && j < c.size(); ++j) v[j] -= c[j];
    return v;
  };
  const std::vector<double> u = minus_c(user);
  std::vector<double> sims;
  for (const std::vector<double>& t : tasks) sims.push_back(lora_cosine(u, minus_c(t)));
  return sims;
}

std::vector<double> lora_softmax(const std::vector<double>& x, double temperature) {
  std::vector<double> y(x.size());
  if (x.empty()) return y;
  const double mx = *std::max_element(x.begin(), x.end());
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += y[i] = std::exp((x[i] - mx) / temperature);
  for (double& v : y) v /= sum;
  return y;
}

Status lora_auto_weights(const Model& model, const std::vector<const LoraAdapter*>& adapters,
                         const std::vector<std::string>& examples, bool centered, float temperature,
                         int32_t n_threads, LoraAutoWeights* out) {
  if (adapters.empty()) return InvalidArgument("lora auto weights: no adapters");
  if (!(temperature > 0) || !std::isfinite(temperature))
    return InvalidArgument("lora auto weights: temperature must be positive, got " + std::to_string(temperature));
  for (const LoraAdapter* a : adapters) {
    if (!a) return InvalidArgument("lora auto weights: null adapter");
    if (&a->model() != &model) return InvalidArgument(a->name() + ": for another model");
    if (a->task_examples().empty())
      return InvalidArgument(a->name() + ": the adapter has no task examples (" + kLoraTaskExamplesKey +
                             " in its metadata, or given with its path)");
  }
  std::vector<double> user;
  EMBER_RETURN_IF_ERROR(lora_mean_hidden(model, examples, n_threads, &user));
  std::vector<std::vector<double>> tasks(adapters.size());
  for (size_t i = 0; i < adapters.size(); ++i)
    EMBER_RETURN_IF_ERROR(lora_mean_hidden(model, adapters[i]->task_examples(), n_threads, &tasks[i]));
  out->similarity = lora_similarities(user, tasks, centered);
  const std::vector<double> w = lora_softmax(out->similarity, temperature);
  out->weight.assign(w.begin(), w.end());
  return Status::Ok();
}

}  // namespace ember
