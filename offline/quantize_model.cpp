// Model quantization (rules in quantize_model.h) and the quantize section of the C API.
#include "offline/quantize_model.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
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

// ---- targets ---------------------------------------------------------------------------

namespace {

constexpr QuantTargetInfo kTargets[] = {
    {QuantTarget::kQ8_0, "q8_0", DType::Q8_0, 7},
    {QuantTarget::kQ4_0, "q4_0", DType::Q4_0, 2},
    {QuantTarget::kQ4_K_M, "q4_k_m", DType::Q4_K, 15},
    {QuantTarget::kF16, "f16", DType::F16, 1},
    {QuantTarget::kBF16, "bf16", DType::BF16, 32},
    {QuantTarget::kF32, "f32", DType::F32, 0},
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// "blk.12.attn_v.weight" -> 12; -1 when the name has no layer index.
int layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    v = v * 10 + (name[i] - '0');
    if (v > (1 << 24)) return -1;
  }
  return i < name.size() && name[i] == '.' ? v : -1;
}

// llama.cpp's rule for the layers that get more bits in the _M k-quant mixes: the first
// and last eighth of the layers, and every third layer in between.
bool use_more_bits(int i_layer, int n_layer) {
  return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

std::string shape_text(const TensorShape& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

}  // namespace

std::span<const QuantTargetInfo> QuantTargets() { return kTargets; }

const QuantTargetInfo& TargetInfo(QuantTarget t) {
  for (const QuantTargetInfo& i : kTargets)
    if (i.target == t) return i;
  return kTargets[0];
}

Status ParseQuantTarget(std::string_view name, QuantTarget* out) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string names;
  for (const QuantTargetInfo& i : kTargets) {
    if (lower == i.name) {
      *out = i.target;
      return Status::Ok();
    }
    names += std::string(names.empty() ? "" : ", ") + i.name;
  }
  return InvalidArgument("unknown type '" + std::string(name) + "' (expected one of: " + names + ")");
}

// ---- type choice -------------------------------------------------------------------------

Status ChooseTensorType(QuantTarget target, const TensorShape& t, const ModelFacts& m, DType* out,
                        std::string* note) {
  note->clear();
  const std::string& name = t.name;
  const bool convert = ends_with(name, "weight") && t.n_dims >= 2 && !contains(name, "_norm.weight") &&
                       !contains(name, "ffn_gate_inp.weight");
  if (!convert) {
    *out = t.type;
    return Status::Ok();
  }
  const QuantTargetInfo& info = TargetInfo(target);
  DType type = info.base;
  const int64_t nx = t.ne[0];
  auto fits = [nx](DType d) { return nx % dtype_info(d).block_size == 0; };
  if (is_float_type(type)) {
    *out = type;
    return Status::Ok();
  }

  const bool is_output = name == "output.weight" || (!m.has_output && name == "token_embd.weight");
  if (is_output) {
    if (!fits(type)) {
      type = DType::Q8_0;
    } else if (type != DType::Q8_0) {
      type = DType::Q6_K;
    }
  } else if (target == QuantTarget::kQ4_K_M &&
             (contains(name, "attn_v.weight") || contains(name, "ffn_down"))) {
    const int layer = layer_of(name);
    if (layer >= 0 && m.n_layer > 0 && use_more_bits(layer, m.n_layer)) type = DType::Q6_K;
  }

  if (!fits(type)) {
    const DType wanted = type;
    switch (type) {
      case DType::Q6_K: type = DType::Q8_0; break;
      case DType::Q4_K: type = DType::Q4_0; break;  // llama.cpp: Q5_0 (not in Ember)
      default:
        return InvalidArgument("tensor '" + name + "' " + shape_text(t) + ": row length " + std::to_string(nx) +
                               " is not a multiple of " + std::to_string(dtype_info(type).block_size) +
                               ", the " + dtype_name(type) + " block size");
    }
    if (!fits(type)) type = DType::F16;
    *note = "row length " + std::to_string(nx) + " is not a multiple of " +
            std::to_string(dtype_info(wanted).block_size) + ": " + dtype_name(type) + " instead of " +
            dtype_name(wanted);
  }
  *out = type;
  return Status::Ok();
}

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
  facts.has_output = src->FindTensor("output.weight") != nullptr;
  std::string arch;
  EMBER_RETURN_IF_ERROR(src->GetStringOr("general.architecture", &arch));
  uint32_t n_layer = 0;
  if (!arch.empty()) EMBER_RETURN_IF_ERROR(src->GetU32Or(arch + ".block_count", &n_layer));
  if (n_layer == 0)  // no usable key: the layers the tensor names show
    for (const GgufTensor& t : src->tensors()) n_layer = std::max<uint32_t>(n_layer, layer_of(t.name) + 1);
  facts.n_layer = static_cast<int32_t>(n_layer);

  // Plan every tensor before writing anything: errors come first and cost nothing.
  const std::vector<GgufTensor>& ts = src->tensors();
  std::vector<GgufStreamWriter::Tensor> infos;
  std::vector<std::string> notes(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const GgufTensor& t = ts[i];
    TensorShape shape{t.name, t.n_dims, {t.ne[0], t.ne[1], t.ne[2], t.ne[3]}, t.type};
    DType type;
    Status s = ChooseTensorType(options.target, shape, facts, &type, &notes[i]);
    if (!s.ok()) return Status(s.code(), in_path + ": " + s.message());
    if (type != t.type && !is_float_type(t.type))
      return Unsupported(in_path + ": tensor '" + t.name + "' is " + dtype_name(t.type) +
                         ": only f32, f16 and bf16 tensors can be converted (requantizing is not supported)");
    if (!notes[i].empty()) EMBER_LOG_INFO("%s: %s", t.name.c_str(), notes[i].c_str());
    infos.push_back({t.name, type, std::vector<int64_t>(t.ne, t.ne + t.n_dims)});
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
