// The type of every tensor in a quantized file: llama.cpp's choice, as data.
//
// `ember quantize` and `ember synth` write what llama.cpp b10256's `llama-quantize` writes
// with its default parameters and no importance matrix (src/llama-quant.cpp:
// tensor_allows_quantization, llama_tensor_get_type_impl, tensor_type_fallback), so a
// file Ember makes holds the same tensor types as llama.cpp's file of the same model:
//
//   1. Converted are tensors whose name ends in "weight", with 2 or more dimensions (as
//      ggml counts them: trailing 1s do not count), and not a norm, MoE router, RWKV /
//      SSM / multimodal small tensor (a list of name fragments). The others are copied
//      in their own type: 1-D norms stay F32.
//   2. Float targets (f32, f16, bf16): every converted tensor gets the target type.
//   3. Quantized targets start from the target's base type (q4_k_m: Q4_K, ...); the
//      rules table (quant_rules.cpp, kRules, with llama.cpp's names) then gives more bits
//      by category: the output matrix (output.weight, or token_embd.weight when the
//      model has none) Q6_K in every quantized file type but q8_0, and Q8_0 when its rows
//      are not a multiple of the base type's block; attn_v and ffn_down by layer
//      (use_more_bits, the first 1/8 or 1/16 of the layers, the first 2 or 4 attn_v),
//      attn_output in q2_k / q3_k_m; by model (n_head/n_head_kv >= 4, 8 experts, the 70B
//      llamas, falcon).
//   4. A chosen type whose block does not divide the row length falls back:
//      Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, IQ4_XS -> IQ4_NL,
//      and F16 when even that block does not fit; any other type that does not fit
//      (q8_0, q4_0, ... on rows that are not a multiple of 32) is an error naming the
//      tensor and its shape, as llama.cpp refuses it.
//
// llama.cpp counts attn_v and ffn_down tensors in the order it visits them (by layer,
// then name): ChooseTensorTypes does the same over a whole model. ChooseTensorType takes
// one tensor and uses its layer index as that count, which is the same number for every
// model whose layers each hold one attn_v (or attn_qkv) and one ffn_down.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "quant/types.h"

namespace ember {

// Targets of `ember quantize` / `ember synth`, named as llama.cpp names its file types.
enum class QuantTarget {
  kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1,
  kQ2_K, kQ3_K_M, kQ4_K_S, kQ4_K_M, kQ5_K_M, kQ6_K, kIQ4_NL, kIQ4_XS,
};

struct QuantTargetInfo {
  QuantTarget target;
  const char* name;    // "q4_k_m"
  DType base;          // the type most tensors get
  uint32_t file_type;  // general.file_type (llama_ftype)
};
std::span<const QuantTargetInfo> QuantTargets();
const QuantTargetInfo& TargetInfo(QuantTarget t);
// Case-insensitive name -> target; InvalidArgument listing the names otherwise.
Status ParseQuantTarget(std::string_view name, QuantTarget* out);

// The tensor facts the type choice looks at.
struct TensorShape {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};
  DType type = DType::F32;  // type in the input
};
// The model facts it looks at (GGUF keys {arch}.block_count, .attention.head_count,
// .attention.head_count_kv, .expert_count).
struct ModelFacts {
  int32_t n_layer = 0;      // block count (use_more_bits, the first 1/8 of ffn_down)
  bool has_output = false;  // output.weight exists (else token_embd is the output matrix)
  int32_t n_head = 0;       // layer 0's; n_gqa = n_head / n_head_kv (0 when n_head_kv is 0)
  int32_t n_head_kv = 0;
  std::string arch;         // general.architecture ("falcon" and the 70B llamas differ)
  int32_t n_expert = 0;
};

class GgufFile;
// The facts of a GGUF model (its keys; the block count from the tensor names when the
// key is missing).
Status ReadModelFacts(const GgufFile& f, ModelFacts* m);

// The type of every tensor of a model, in `tensors` order; *notes[i] is "" or the reason
// for a fallback ("row length 640 is not a multiple of 256: q5_0 instead of q4_k").
Status ChooseTensorTypes(QuantTarget target, std::span<const TensorShape> tensors, const ModelFacts& m,
                         std::vector<DType>* types, std::vector<std::string>* notes);
// One tensor, its layer index standing for llama.cpp's counts (see above).
Status ChooseTensorType(QuantTarget target, const TensorShape& t, const ModelFacts& m, DType* out, std::string* note);

}  // namespace ember
