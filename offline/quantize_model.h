// Model-level quantization: `ember quantize IN OUT TYPE` and the writer `ember synth`
// shares with it.
//
// Type choice per tensor (llama.cpp's llama-quantize with its default parameters and
// no importance matrix; src/llama-quant.cpp, llama_tensor_get_type):
//   - Only tensors whose name ends in "weight", with 2 or more dimensions and not a
//     "_norm.weight" (nor "ffn_gate_inp.weight") are converted; everything else is
//     copied in its own type (1-D norms stay F32).
//   - Float targets (f32, f16, bf16): every converted tensor gets that type.
//   - Quantized targets start from the target's base type (q8_0: Q8_0, q4_0: Q4_0,
//     q4_k_m: Q4_K), then
//       * the output matrix (output.weight, or token_embd.weight when the model has no
//         output.weight) becomes Q6_K, unless the target is q8_0 (it stays Q8_0) or its
//         row length is not a multiple of the base block size (Q8_0);
//       * q4_k_m: attn_v.weight and ffn_down.weight of the layers use_more_bits() picks
//         become Q6_K:  i < n/8  ||  i >= 7n/8  ||  (i - n/8) % 3 == 2
//         (i the layer index, n the block count);
//       * a row length the chosen K type cannot hold (not a multiple of 256) falls back
//         as llama.cpp does: Q6_K -> Q8_0; Q4_K -> Q4_0 (llama.cpp uses Q5_0, which Ember
//         does not implement; Q4_0 keeps the 4.5 bits/weight of the target); and to F16
//         when even 32 does not divide the row. The fallback is logged and reported to
//         the progress callback.
//       * q8_0 / q4_0 with a row length that is not a multiple of 32: an error naming the
//         tensor and its shape (llama.cpp also refuses).
// Input tensors to convert must be F32, F16 or BF16 (no requantization).
//
// Output: all metadata of the input (GgufWriter::CopyMetadata), general.file_type
// (F32 0, F16 1, Q4_0 2, Q8_0 7, Q4_K_M 15, BF16 32) and general.quantization_version 2;
// tensors in input order; written to a temporary file that is renamed into place, so a
// failed or cancelled run leaves nothing behind. Tensors are converted in chunks of rows,
// in parallel (the calling thread's pool, core/thread_pool.h), streaming to the file: memory stays at a few chunks, not a model.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "quant/types.h"

namespace ember {

class GgufFile;
class GgufWriter;
class GgufStreamWriter;

// Targets of `ember quantize` / `ember synth`, named as llama.cpp names its file types.
enum class QuantTarget { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_K_M };

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
struct ModelFacts {
  int32_t n_layer = 0;      // block count (for use_more_bits)
  bool has_output = false;  // output.weight exists
};
// Output type of one tensor (rules at the top of this file). *note receives "" or the
// reason for a fallback ("row length 896 is not a multiple of 256: q4_0 instead of q4_k").
Status ChooseTensorType(QuantTarget target, const TensorShape& t, const ModelFacts& m, DType* out,
                        std::string* note);

// Step i (1-based) of n is starting: tensor `name`, written as `type`; `note` is "" or
// a fallback reason. Return false to cancel (the operation returns kCancelled).
using ProgressFn = std::function<bool(int i, int n, const std::string& name, DType type, const std::string& note)>;

struct QuantizeOptions {
  QuantTarget target = QuantTarget::kQ8_0;
  int n_threads = 0;  // 0: ThreadPool::DefaultThreads() (the CPUs we may run on)
  ProgressFn progress;
};
Status QuantizeModel(const std::string& in_path, const std::string& out_path, const QuantizeOptions& options);

// ---- streaming conversion (the writer: loader/gguf_writer.h) ------------------------

// Fills rows: writes row `row` (n_cols floats) of the tensor being produced.
using RowSource = std::function<Status(int64_t row, float* dst)>;
// Produces n_rows x n_cols floats through `source` in chunks of rows, converts them to
// `type` on n_threads threads (each row by one thread, so the bytes do not depend on
// the thread count) and appends them to `w`. Non-finite input, or a block scale that
// overflows fp16, is an error naming the tensor and the row.
Status WriteConvertedRows(GgufStreamWriter* w, const std::string& name, DType type, int64_t n_rows, int64_t n_cols,
                          int n_threads, const RowSource& source);

}  // namespace ember
