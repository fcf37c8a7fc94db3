// Offline LoRA output (offline/lora_tools.h): adapters written as GGUF adapter files, and
// adapters merged into the base weights as a GGUF model. Both go through the one GGUF
// writer (loader/gguf_writer.h).
#include <cstring>
#include <string>
#include <vector>

#include "loader/gguf_writer.h"
#include "offline/lora_tools.h"
#include "quant/convert.h"
#include "quant/fp16.h"
#include "quant/quantize.h"

namespace ember {

// ---- adapter files ---------------------------------------------------------------------

namespace {

// The adapter as a GgufWriter (tensors held in memory: adapters are small).
GgufWriter adapter_writer(const LoraAdapter& a) {
  GgufWriter w;
  w.SetString("general.architecture", a.model().config().arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  // rsLoRA has no GGUF key: write weights with factor alpha/sqrt(r) as alpha' = factor·r
  // per tensor when ranks agree (they do for PEFT adapters: one r).
  float alpha = a.alpha();
  if (a.rslora() && !a.weights().empty()) alpha = a.weights()[0].factor * static_cast<float>(a.weights()[0].rank);
  w.SetF32("adapter.lora.alpha", alpha);
  if (!a.task_examples().empty()) w.SetStringArray(kLoraTaskExamplesKey, a.task_examples());
  for (const LoraWeight& lw : a.weights()) {
    if (lw.embedding) {
      (void)w.AddTensor(lw.target + ".lora_a", lw.type, {lw.rank, lw.n_in}, lw.a.data(), lw.a.size());
      (void)w.AddTensor(lw.target + ".lora_b", lw.type, {lw.rank, lw.n_out}, lw.b.data(), lw.b.size());
    } else {
      (void)w.AddTensor(lw.target + ".lora_a", lw.type, {lw.n_in, lw.rank}, lw.a.data(), lw.a.size());
      (void)w.AddTensor(lw.target + ".lora_b", lw.type, {lw.rank, lw.n_out}, lw.b.data(), lw.b.size());
    }
  }
  return w;
}

}  // namespace

std::vector<uint8_t> lora_serialize_gguf(const LoraAdapter& a) { return adapter_writer(a).Serialize(); }

Status lora_write_gguf(const LoraAdapter& a, const std::string& path) { return adapter_writer(a).Write(path); }

// ---- merge -----------------------------------------------------------------------------

namespace {

// Writes `name`: tensor t's data plus Σ scales[i]·ΔW_i, stored as out_type (matrices) or t's
// own type. Copied unchanged when nothing is added and the type stays.
Status merge_tensor(const Model& model, const GgufTensor& t, const std::string& name,
                    const std::vector<const LoraWeight*>& ws, const std::vector<float>& scales, const DType* out_type,
                    GgufWriter* out) {
  const bool matrix = t.n_dims >= 2;
  std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
  if (ws.empty() && (!out_type || !matrix || t.type == *out_type))
    return out->AddTensor(name, t.type, ne, t.data, t.nbytes);
  const int64_t cols = t.ne[0], rows = t.rows();
  std::vector<float> w(static_cast<size_t>(rows * cols));
  const size_t rb = row_bytes(t.type, cols);
  for (int64_t r = 0; r < rows; ++r)
    if (!to_float_row(t.type, t.data + r * rb, w.data() + r * cols, static_cast<size_t>(cols)))
      return Unsupported(model.gguf().path() + ": tensor '" + t.name + "': cannot convert " + dtype_name(t.type) +
                         " to float");
  for (size_t i = 0; i < ws.size(); ++i) {
    std::vector<float> d = ws[i]->Dense();
    if (d.size() != w.size()) return Internal("tensor '" + name + "': delta size mismatch");
    for (size_t j = 0; j < w.size(); ++j) w[j] += scales[i] * d[j];
  }
  const DType type = out_type && matrix ? *out_type : t.type;
  std::vector<uint8_t> bytes;
  if (type == DType::F32) {
    bytes.resize(w.size() * 4);
    std::memcpy(bytes.data(), w.data(), bytes.size());
  } else if (type == DType::F16 || type == DType::BF16) {
    bytes.resize(w.size() * 2);
    for (size_t j = 0; j < w.size(); ++j) {
      uint16_t h = type == DType::F16 ? fp32_to_fp16(w[j]) : fp32_to_bf16(w[j]);
      std::memcpy(&bytes[2 * j], &h, 2);
    }
  } else {
    EMBER_RETURN_IF_ERROR(can_quantize(type, cols, name));
    bytes.resize(row_bytes(type, cols) * static_cast<size_t>(rows));
    quantize_tensor(type, w.data(), bytes.data(), rows, cols);
  }
  return out->AddTensor(name, type, ne, bytes.data(), bytes.size());
}

}  // namespace

Status lora_merge(const Model& model, const std::vector<std::pair<const LoraAdapter*, float>>& adapters,
                  const DType* out_type, GgufWriter* out) {
  const GgufFile& f = model.gguf();
  for (const auto& [a, s] : adapters)
    if (&a->model() != &model) return InvalidArgument(a->name() + ": adapter was loaded for another model");
  out->CopyMetadata(f);
  if (out_type) {
    // general.file_type: ggml's LLAMA_FTYPE ids for the plain types.
    int ft = -1;
    switch (*out_type) {
      case DType::F32: ft = 0; break;
      case DType::F16: ft = 1; break;
      case DType::Q4_0: ft = 2; break;
      case DType::Q8_0: ft = 7; break;
      case DType::BF16: ft = 32; break;
      default: break;
    }
    if (ft >= 0) out->SetU32("general.file_type", static_cast<uint32_t>(ft));
  }
  // The deltas (and their scales) that target `name`.
  auto deltas = [&](const std::string& name, std::vector<const LoraWeight*>* ws, std::vector<float>* scales) {
    ws->clear();
    scales->clear();
    for (const auto& [a, s] : adapters)
      if (const LoraWeight* w = s != 0 ? a->FindTarget(name) : nullptr) ws->push_back(w), scales->push_back(s);
  };
  std::vector<const LoraWeight*> ws;
  std::vector<float> scales;
  bool untie = false;
  for (const GgufTensor& t : f.tensors()) {
    deltas(t.name, &ws, &scales);
    untie |= t.name == "token_embd.weight" && !ws.empty();
    EMBER_RETURN_IF_ERROR(merge_tensor(model, t, t.name, ws, scales, out_type, out));
  }
  if (model.weights().tied_output) {
    deltas("output.weight", &ws, &scales);
    const GgufTensor* embd = f.FindTensor("token_embd.weight");
    if ((untie || !ws.empty()) && embd)
      EMBER_RETURN_IF_ERROR(merge_tensor(model, *embd, "output.weight", ws, scales, out_type, out));
  }
  return Status::Ok();
}

}  // namespace ember
