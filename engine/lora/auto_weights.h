// Automatic blend weights for LoRA adapters (`ember lora blend --weights auto`,
// ember_lora_auto_weights). Part of the runtime library: it needs only the forward pass,
// so an application can choose blend weights per request; blending itself (Eigen SVD)
// and writing adapters are the offline library's (offline/lora_tools.h).
#pragma once
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/lora/lora.h"

namespace ember {

// Crayon, arXiv 2406.07007.
//
// A set of texts is represented by the base model's final-normed hidden state (the input of
// the output matrix), averaged over each text's tokens (BOS excluded: its state is the same
// for every text) and then over the texts. The user's examples (mean u) are compared with
// each adapter's task examples (mean t_i) by cosine similarity, and
// weights = softmax(similarity / T).
//
// Centered (the default): cos(u - c, t_i - c) with c the mean of the t_i. Hidden states of
// all texts share a large common direction: on octopus-tiny every plain cosine lies in
// 0.88..0.99 and the domain's own adapter leads the next by 0.035..0.048 (by 0.006 for one
// of twelve example sets tried); removing the pool's centre leaves what tells the adapters
// apart, and the own adapter then leads by 0.8..1.15 (0.21 for that set), same ranking.
// Plain cosine: cos(u, t_i).
//
// Mean over tokens rather than the last token: the examples are short commands whose task
// shows in which words they use ("brt", "lr", "NRT"); a causal model's last state is mostly
// about predicting the next token and is dominated by the final word, while the mean keeps
// every word (the usual pooling for decoder models without a trained pooling head).

// Default temperatures: well below the lead of the right adapter seen on octopus-tiny
// (about 1 centered, 0.04 plain), so that it gets most of the weight; a larger T blends more.
inline constexpr float kLoraAutoTemperatureCentered = 0.1f;
inline constexpr float kLoraAutoTemperatureCosine = 0.01f;

// Mean final-normed hidden state [n_embd] of `texts` under `model` (no adapters), each
// tokenized with the model's BOS setting and cut to the model's training context.
// InvalidArgument when there are no texts or one has no tokens.
Status lora_mean_hidden(const Model& model, const std::vector<std::string>& texts, int32_t n_threads,
                        std::vector<double>* out);
// Cosine similarity; 0 when either vector is zero.
double lora_cosine(const std::vector<double>& a, const std::vector<double>& b);
// Similarities of `user` with each of `tasks`: plain cosines, or (centered) cosines after
// subtracting the mean of `tasks` from all of them.
std::vector<double> lora_similarities(const std::vector<double>& user, const std::vector<std::vector<double>>& tasks,
                                      bool centered);
// softmax(x / temperature), computed stably (max subtracted); temperature > 0.
std::vector<double> lora_softmax(const std::vector<double>& x, double temperature);

struct LoraAutoWeights {
  std::vector<double> similarity;  // per adapter: cosine of its task mean with the examples' mean
  std::vector<float> weight;       // softmax(similarity / T): sums to 1
};
// Weights for `adapters` from the user's `examples` and each adapter's task_examples()
// (InvalidArgument naming the adapter when it has none).
Status lora_auto_weights(const Model& model, const std::vector<const LoraAdapter*>& adapters,
                         const std::vector<std::string>& examples, bool centered, float temperature,
                         int32_t n_threads, LoraAutoWeights* out);

}  // namespace ember
