// Offline LoRA tools (the offline library): blending several adapters into one (`ember lora
// blend`), merging adapters into the base weights (`ember lora merge`) and writing adapter
// files (`ember lora describe`, blends). Choosing blend weights from examples (`--weights
// auto`) is runtime: engine/lora/auto_weights.h.
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

class GgufWriter;

enum class LoraBlendMode { kExact, kAverage, kSvd };

struct LoraBlendInput {
  const LoraAdapter* adapter;
  float weight;
};

// rank: kSvd only (> 0; clamped to min(out, in) per target).
Status lora_blend(const Model& model, const std::vector<LoraBlendInput>& inputs, LoraBlendMode mode,
                  int32_t rank, std::unique_ptr<LoraAdapter>* out);

// Writes the adapter as a llama.cpp-style GGUF adapter (F32 or F16 as stored), with its
// task examples when it has any. rslora adapters are written with alpha·sqrt(r)/r
// folded so that factor is kept.
Status lora_write_gguf(const LoraAdapter& a, const std::string& path);
std::vector<uint8_t> lora_serialize_gguf(const LoraAdapter& a);

// ΔW of several adapters at scales, merged into the base weights, written as a GGUF
// model: every metadata key kept, adapted tensors converted to float, ΔW added and
// stored as `out_type` (F32, F16, BF16 or a quantized type quant/quantize.h can write),
// or as the base tensor's own type when out_type is nullptr. Other tensors are copied.
// A model whose output is tied to token_embd gets its own output.weight (token_embd as
// stored, plus any output.weight deltas) when an adapter touches either, so the merged
// model computes what the adapters do at run time (the embedding delta reaches the
// lookup only). llama.cpp reads such an output.weight for llama, not for gemma/gemma2,
// whose loaders always tie it.
Status lora_merge(const Model& model, const std::vector<std::pair<const LoraAdapter*, float>>& adapters,
                  const DType* out_type, GgufWriter* out);

}  // namespace ember
