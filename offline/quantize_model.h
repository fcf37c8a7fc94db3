// Model-level quantization: `ember quantize IN OUT TYPE` and the writer `ember synth`
// shares with it.
//
// Type choice per tensor: llama.cpp's rules, offline/quant_rules.h.
//
// Output: all metadata of the input (GgufWriter::CopyMetadata), general.file_type
// (llama_ftype: QuantTargetInfo::file_type) and general.quantization_version 2;
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
#include "offline/quant_rules.h"
#include "quant/types.h"

namespace ember {

class GgufFile;
class GgufWriter;
class GgufStreamWriter;

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
