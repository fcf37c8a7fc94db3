// Offline LoRA tools: blending several adapters into one (`ember lora blend`).
// Merging into base weights is lora_merge() in engine/lora.h.
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
#include <vector>

#include "core/status.h"
#include "engine/lora.h"

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

}  // namespace ember
