// Offline LoRA tools: blending several adapters into one (`ember lora blend`), and
// choosing the blend weights from a few user examples (`--weights auto`).
// Merging into base weights is lora_merge() in engine/lora/lora.h.
//
// Modes, for adapters i with blend weights w_i and factors f_i = alpha_i / r_i:
//  - kExact:   ranks concatenated per target: A = [A_1; A_2; ...], B = [w_1 f_1 B_1, ...],
//              so ΔW = Σ w_i f_i B_i A_i exactly (rank Σ r_i).
//  - kAverage: Crayon-style A = Σ w_i A_i, B = Σ w_i f_i B_i at the common rank (every
//              adapter must have the same rank for a target). Not ΔW-preserving: cross
//              terms B_i A_j appear; it is what Crayon averages.
//  - kSvd:     the best rank-R approximation (Frobenius) of the exact ΔW, from a float64
//              SVD (Eigen): ΔW ≈ U_R Σ_R V_R^T, B = U_R Σ_R^½, A = Σ_R^½ V_R^T.
// The result has F32 weights and alpha = its largest rank, with each target's
// factor alpha / r_t folded into B, so any GGUF reader (llama.cpp too) applies it at scale 1.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/lora/lora.h"

namespace ember {

enum class LoraBlendMode { kExact, kAverage, kSvd };

struct LoraBlendInput {
  const LoraAdapter* adapter;
  float weight;
};

// rank: kSvd only (> 0; clamped to min(out, in) per target).
Status lora_blend(const Model& model, const std::vector<LoraBlendInput>& inputs, LoraBlendMode mode,
                  int32_t rank, std::unique_ptr<LoraAdapter>* out);

// Whether kSvd is available (Eigen found at build time).
bool lora_blend_has_svd();

// ---- automatic blend weights (Crayon, arXiv 2406.07007) --------------------------------
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
