// Model quantization (rules in quantize_model.h) and the quantize section of the C API.
#include "offline/quantize_model.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>

#include "core/log.h"
#include "core/thread_pool.h"
#include "ember/ember_tools.h"
#include "engine/capi/guard.h"
#include "loader/gguf.h"
#include "loader/gguf_writer.h"
#include "quant/convert.h"
#include "quant/quantize.h"

namespace ember {

namespace {

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

}  // namespace

// ---- row conversion ------------------------------------------------------------------------

Status WriteConvertedRows(GgufStreamWriter* w, const std::string& name, DType type, int64_t n_rows, int64_t n_cols,
                          int n_threads, const RowSource& source) {
  EMBER_RETURN_IF_ERROR(can_quantize(type, n_cols, name));
  const size_t rb = row_bytes(type, static_cast<uint64_t>(n_cols));
  if (n_rows == 0 || n_cols == 0) return Status::Ok();
  // Chunks of about 8 MiB of float input (at least one row): big enough to keep every
  // thread busy, small enough that memory stays flat whatever the model size.
  const int64_t chunk = std::clamp<int64_t>((int64_t{8} << 20) / (n_cols * 4), 1, n_rows);
  std::vector<float> f(static_cast<size_t>(chunk * n_cols));
  std::vector<uint8_t> q(static_cast<size_t>(chunk) * rb + 1);
  // One pool for the whole tensor (its own: nothing thread-local outlives the call).
  std::unique_ptr<ThreadPool> owned;
  try {
    owned = std::make_unique<ThreadPool>(n_threads > 0 ? n_threads : ThreadPool::DefaultThreads());
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "tensor '" + name + "': cannot start the conversion threads");
  }
  ThreadPool* pool = owned.get();
  for (int64_t r0 = 0; r0 < n_rows; r0 += chunk) {
    const int64_t n = std::min(chunk, n_rows - r0);
    Status first_error;
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    auto convert_row = [&](size_t i, int) {
      const int64_t r = static_cast<int64_t>(i);
      if (failed.load(std::memory_order_relaxed)) return;
      float* row = f.data() + r * n_cols;
      Status s;
      try {  // nothing may leave a pool thread by exception
        s = source(r0 + r, row);
      } catch (const std::bad_alloc&) {
        s = Status(Code::kOutOfMemory, "tensor '" + name + "': out of memory");
      } catch (...) {
        s = Internal("tensor '" + name + "': row source failed");
      }
      if (s.ok() && !row_data_finite(DType::F32, row, n_cols)) {
        s = InvalidArgument("tensor '" + name + "': row " + std::to_string(r0 + r) + " holds NaN or Inf");
      }
      if (s.ok()) {
        uint8_t* out = q.data() + r * rb;
        quantize_tensor(type, row, out, 1, n_cols);
        if (!row_data_finite(type, out, n_cols))
          s = InvalidArgument("tensor '" + name + "': row " + std::to_string(r0 + r) +
                              " holds values beyond the range of " + dtype_name(type) +
                              " (a block scale overflows fp16)");
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!failed.load()) {
          first_error = s;
          failed.store(true);
        }
      }
    };
    if (pool) {
      pool->ParallelFor(static_cast<size_t>(n), convert_row);
    } else {
      for (int64_t r = 0; r < n; ++r) convert_row(static_cast<size_t>(r), 0);
    }
    if (failed.load()) return first_error;
    EMBER_RETURN_IF_ERROR(w->Append(q.data(), static_cast<size_t>(n) * rb));
  }
  return Status::Ok();
}

// ---- QuantizeModel -------------------------------------------------------------------------

Status QuantizeModel(const std::string& in_path, const std::string& out_path, const QuantizeOptions& options) {
  std::unique_ptr<GgufFile> src;
  EMBER_RETURN_IF_ERROR(GgufFile::Open(in_path, &src));
  struct stat a, b;
  if (::stat(in_path.c_str(), &a) == 0 && ::stat(out_path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
      a.st_ino == b.st_ino)
    return InvalidArgument("'" + out_path + "' is the input file: write the output to another path");

  ModelFacts facts;
  EMBER_RETURN_IF_ERROR(ReadModelFacts(*src, &facts));

  // Plan every tensor before writing anything: errors come first and cost nothing.
  const std::vector<GgufTensor>& ts = src->tensors();
  std::vector<TensorShape> shapes;
  for (const GgufTensor& t : ts) shapes.push_back({t.name, t.n_dims, {t.ne[0], t.ne[1], t.ne[2], t.ne[3]}, t.type});
  std::vector<DType> types;
  std::vector<std::string> notes;
  Status chosen = ChooseTensorTypes(options.target, shapes, facts, &types, &notes);
  if (!chosen.ok()) return Status(chosen.code(), in_path + ": " + chosen.message());
  std::vector<GgufStreamWriter::Tensor> infos;
  for (size_t i = 0; i < ts.size(); ++i) {
    const GgufTensor& t = ts[i];
    if (types[i] != t.type && !is_float_type(t.type))
      return Unsupported(in_path + ": tensor '" + t.name + "' is " + dtype_name(t.type) +
                         ": only f32, f16 and bf16 tensors can be converted (requantizing is not supported)");
    if (types[i] != t.type) {
      Status s = can_quantize(types[i], t.ne[0], t.name);
      if (!s.ok()) return Status(s.code(), in_path + ": " + s.message());
    }
    if (!notes[i].empty()) EMBER_LOG_INFO("%s: %s", t.name.c_str(), notes[i].c_str());
    infos.push_back({t.name, types[i], std::vector<int64_t>(t.ne, t.ne + t.n_dims)});
  }

  GgufWriter meta;
  meta.CopyMetadata(*src);
  meta.SetU32("general.file_type", TargetInfo(options.target).file_type);
  meta.SetU32("general.quantization_version", 2);

  GgufStreamWriter w;
  EMBER_RETURN_IF_ERROR(w.Open(out_path, meta, infos, src->alignment()));
  const int n = static_cast<int>(ts.size());
  for (int i = 0; i < n; ++i) {
    const GgufTensor& t = ts[i];
    const DType type = infos[i].type;
    if (options.progress && !options.progress(i + 1, n, t.name, type, notes[i]))
      return Status(Code::kCancelled, "quantize: cancelled at tensor " + std::to_string(i + 1) + " of " +
                                          std::to_string(n) + " ('" + t.name + "')");
    if (type == t.type) {
      EMBER_RETURN_IF_ERROR(w.Append(t.data, t.nbytes));
      continue;
    }
    const int64_t cols = t.ne[0];
    const size_t in_row = row_bytes(t.type, static_cast<uint64_t>(cols));
    RowSource source = [&](int64_t r, float* dst) -> Status {
      if (!to_float_row(t.type, t.data + static_cast<size_t>(r) * in_row, dst, static_cast<size_t>(cols)))
        return Unsupported("tensor '" + t.name + "': cannot read " + dtype_name(t.type));
      return Status::Ok();
    };
    Status s = WriteConvertedRows(&w, t.name, type, t.rows(), cols, options.n_threads, source);
    if (!s.ok()) return Status(s.code(), in_path + ": " + s.message());
  }
  return w.Finish();
}

}  // namespace ember

// ---- C API ---------------------------------------------------------------------------------

extern "C" {

ember_quantize_params ember_quantize_default_params(void) {
  ember_quantize_params p;
  p.n_threads = 0;
  p.progress = nullptr;
  p.user = nullptr;
  return p;
}

const char* ember_quantize_type_name(int32_t i) {
  return ember::capi::guard_value("ember_quantize_type_name", static_cast<const char*>(nullptr), {}, [&] {
    const auto targets = ember::QuantTargets();
    return i >= 0 && static_cast<size_t>(i) < targets.size() ? targets[i].name : nullptr;
  });
}

ember_status ember_quantize_file(const char* in_path, const char* out_path, const char* type,
                                 const ember_quantize_params* params) {
  return ember::capi::guard(
      "ember_quantize_file", {{"in_path", in_path}, {"out_path", out_path}, {"type", type}}, [&] {
        const ember_quantize_params p = params ? *params : ember_quantize_default_params();
        ember::QuantizeOptions o;
        ember::Status s = ember::ParseQuantTarget(type, &o.target);
        if (!s.ok()) return ember::capi::to_c(s);
        if (p.n_threads < 0)
          return ember::capi::set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_quantize_file: n_threads < 0");
        o.n_threads = p.n_threads;
        if (p.progress) {
          o.progress = [&p](int i, int n, const std::string& name, ember::DType t, const std::string& note) {
            return p.progress(i, n, name.c_str(), ember::dtype_name(t), note.c_str(), p.user) == 0;
          };
        }
        return ember::capi::to_c(ember::QuantizeModel(in_path, out_path, o));
      });
}

}  // extern "C"
