#include "engine/lora/lora.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/json.h"
#include "loader/safetensors.h"
#include "quant/convert.h"
#include "quant/fp16.h"
#include "quant/quantize.h"

namespace ember {
namespace {

struct ProjName { Proj p; const char* gguf; const char* peft; };
constexpr ProjName kProjNames[] = {
    {Proj::kQ, "attn_q", "self_attn.q_proj"},     {Proj::kK, "attn_k", "self_attn.k_proj"},
    {Proj::kV, "attn_v", "self_attn.v_proj"},     {Proj::kO, "attn_output", "self_attn.o_proj"},
    {Proj::kGate, "ffn_gate", "mlp.gate_proj"},   {Proj::kUp, "ffn_up", "mlp.up_proj"},
    {Proj::kDown, "ffn_down", "mlp.down_proj"},
};

size_t elem_bytes(DType t) { return t == DType::F16 ? 2 : 4; }

// Copies `n` elements of an F32/F16/BF16 tensor as F32 or F16 (BF16 becomes F32).
DType copy_elems(DType src_type, const uint8_t* src, size_t n, std::vector<uint8_t>* out) {
  if (src_type == DType::BF16) {
    out->resize(n * 4);
    float* d = reinterpret_cast<float*>(out->data());
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      d[i] = bf16_to_fp32(h);
    }
    return DType::F32;
  }
  out->assign(src, src + n * elem_bytes(src_type));
  return src_type;
}


// Transposes a [rows][cols] matrix of element type t.
std::vector<uint8_t> transpose(DType t, const std::vector<uint8_t>& m, size_t rows, size_t cols) {
  const size_t es = elem_bytes(t);
  std::vector<uint8_t> out(m.size());
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) std::memcpy(&out[(c * rows + r) * es], &m[(r * cols + c) * es], es);
  return out;
}

// llama.cpp's convert_hf_to_gguf permute() of Q/K rows for llama: within each of the
// n_head heads of hd rows, row (i*2 + j) takes HF row (j*hd/2 + i).
std::vector<uint8_t> permute_rows(DType t, const std::vector<uint8_t>& m, size_t rows, size_t cols,
                                  int32_t n_head) {
  const size_t es = elem_bytes(t), row = cols * es;
  const size_t hd = rows / n_head, half = hd / 2;
  std::vector<uint8_t> out(m.size());
  for (size_t h = 0; h < static_cast<size_t>(n_head); ++h)
    for (size_t i = 0; i < half; ++i)
      for (size_t j = 0; j < 2; ++j)
        std::memcpy(&out[(h * hd + i * 2 + j) * row], &m[(h * hd + j * half + i) * row], row);
  return out;
}

Status read_text(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return Status::Ok();
}

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Fused projections (phi3: attn_qkv holds the q, k and v rows, ffn_up the gate and up rows)
// are one file tensor the model binds as row ranges. An adapter of the fused tensor, or of
// one of its parts, is refused: it would otherwise be misapplied or silently dropped.
Status refuse_fused(const std::string& where, const std::string& fused) {
  return Unsupported(where + ": LoRA on the fused projection '" + fused + "' (or a part of it) is not supported");
}

// The fused tensor projection p of `c` lives in ("" when p has its own tensor).
std::string fused_tensor_of(const ModelConfig& c, Proj p) {
  if (c.fused_qkv && (p == Proj::kQ || p == Proj::kK || p == Proj::kV)) return "attn_qkv";
  if (c.fused_gate_up && (p == Proj::kGate || p == Proj::kUp)) return "ffn_up";
  return "";
}

}  // namespace

float lora_element(DType t, const std::vector<uint8_t>& v, size_t i) {
  if (t == DType::F16) {
    uint16_t h;
    std::memcpy(&h, v.data() + 2 * i, 2);
    return fp16_to_fp32(h);
  }
  float f;
  std::memcpy(&f, v.data() + 4 * i, 4);
  return f;
}

// ---- names -------------------------------------------------------------------------

std::string lora_target_name(int32_t layer, Proj p) {
  if (p == Proj::kOutput) return "output.weight";
  for (const ProjName& n : kProjNames)
    if (n.p == p) return "blk." + std::to_string(layer) + "." + n.gguf + ".weight";
  return "?";
}

bool lora_parse_target(const std::string& name, int32_t* layer, Proj* p, bool* embedding) {
  *embedding = false;
  *layer = -1;
  if (name == "output.weight") { *p = Proj::kOutput; return true; }
  if (name == "token_embd.weight") { *p = Proj::kCount; *embedding = true; return true; }
  if (name.rfind("blk.", 0) != 0) return false;
  size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return false;
  int32_t l = 0;
  for (size_t i = 4; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9' || l > 1000000) return false;
    l = l * 10 + (name[i] - '0');
  }
  const std::string rest = name.substr(dot + 1);
  for (const ProjName& n : kProjNames)
    if (rest == std::string(n.gguf) + ".weight") { *layer = l; *p = n.p; return true; }
  return false;
}

const kernels::MatView* lora_target_matrix(const Model& model, int32_t layer, Proj p) {
  const ModelWeights& w = model.weights();
  if (p == Proj::kOutput) return &w.output;
  if (p == Proj::kCount) return &w.token_embd;
  if (layer < 0 || layer >= static_cast<int32_t>(w.layers.size())) return nullptr;
  const LayerWeights& lw = w.layers[layer];
  switch (p) {
    case Proj::kQ: return &lw.wq;
    case Proj::kK: return &lw.wk;
    case Proj::kV: return &lw.wv;
    case Proj::kO: return &lw.wo;
    case Proj::kGate: return &lw.gate;
    case Proj::kUp: return &lw.up;
    case Proj::kDown: return &lw.down;
    default: return nullptr;
  }
}

// ---- LoraWeight ---------------------------------------------------------------------

kernels::MatView LoraWeight::A() const {
  kernels::MatView v;
  v.type = type;
  v.data = a.data();
  v.rows = embedding ? n_in : rank;
  v.cols = embedding ? rank : n_in;
  return v;
}

kernels::MatView LoraWeight::B() const {
  kernels::MatView v;
  v.type = type;
  v.data = b.data();
  v.rows = n_out;
  v.cols = rank;
  return v;
}

std::vector<float> LoraWeight::Dense() const {
  // Rows of the stored base tensor: [n_out][n_in]; embedding: [n_vocab][n_embd].
  const size_t rows = embedding ? n_in : n_out, cols = embedding ? n_out : n_in;
  std::vector<float> d(rows * cols, 0.0f);
  std::vector<float> av(static_cast<size_t>(rank) * n_in), bv(static_cast<size_t>(n_out) * rank);
  for (size_t i = 0; i < av.size(); ++i) av[i] = lora_element(type, a, i);
  for (size_t i = 0; i < bv.size(); ++i) bv[i] = lora_element(type, b, i);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      double acc = 0;
      for (int32_t k = 0; k < rank; ++k) {
        // ΔW[o][i] = Σ_k B[o][k] A[k][i]; embedding: ΔE[v][e] = Σ_k B[e][k] A[v][k]
        const float av_ = embedding ? av[r * rank + k] : av[k * n_in + c];
        const float bv_ = embedding ? bv[c * rank + k] : bv[r * rank + k];
        acc += static_cast<double>(bv_) * av_;
      }
      d[r * cols + c] = static_cast<float>(acc * factor);
    }
  return d;
}

// ---- LoraAdapter --------------------------------------------------------------------

int32_t LoraAdapter::max_rank() const {
  int32_t r = 0;
  for (const LoraWeight& w : weights_) r = std::max(r, w.rank);
  return r;
}

const LoraWeight* LoraAdapter::Find(int32_t layer, Proj p) const {
  for (const LoraWeight& w : weights_)
    if (!w.embedding && w.proj == p && (p == Proj::kOutput || w.layer == layer)) return &w;
  return nullptr;
}

const LoraWeight* LoraAdapter::FindTarget(const std::string& target) const {
  for (const LoraWeight& w : weights_)
    if (w.target == target) return &w;
  return nullptr;
}

bool LoraAdapter::AffectsCache() const {
  const int32_t last = model_->config().n_layer - 1;
  for (const LoraWeight& w : weights_) {
    if (w.embedding) return true;
    if (w.proj == Proj::kOutput) continue;
    if (w.layer < last || w.proj == Proj::kK || w.proj == Proj::kV) return true;
  }
  return false;
}

Status LoraAdapter::Validate() {
  const ModelConfig& c = model_->config();
  std::sort(weights_.begin(), weights_.end(), [](const LoraWeight& x, const LoraWeight& y) {
    return std::tie(x.layer, x.proj, x.embedding) < std::tie(y.layer, y.proj, y.embedding);
  });
  for (size_t i = 0; i < weights_.size(); ++i) {
    LoraWeight& w = weights_[i];
    const std::string where = name_ + ": tensor '" + w.target + "'";
    if (i > 0 && weights_[i - 1].target == w.target) return BadFormat(where + ": adapted twice");
    const std::string fused = w.embedding ? "" : fused_tensor_of(c, w.proj);
    if (!fused.empty()) return refuse_fused(where, fused);
    const kernels::MatView* m = lora_target_matrix(*model_, w.layer, w.proj);
    if (!m || !m->data) return NotFound(where + ": the model has no such weight");
    if (w.type != DType::F32 && w.type != DType::F16)
      return Unsupported(where + ": type " + dtype_name(w.type) + " (adapters must be F32 or F16)");
    if (w.rank <= 0) return BadFormat(where + ": rank " + std::to_string(w.rank));
    // Base matrix: rows = out, cols = in (embedding: rows = n_vocab, cols = n_embd).
    const int64_t want_in = w.embedding ? m->rows : m->cols, want_out = w.embedding ? m->cols : m->rows;
    if (w.n_in != want_in || w.n_out != want_out)
      return BadFormat(where + ": adapter is " + std::to_string(w.n_out) + "x" + std::to_string(w.n_in) +
                       " (out x in) but the model's weight is " + std::to_string(want_out) + "x" +
                       std::to_string(want_in));
    const size_t es = elem_bytes(w.type);
    if (w.a.size() != static_cast<size_t>(w.rank) * w.n_in * es ||
        w.b.size() != static_cast<size_t>(w.rank) * w.n_out * es)
      return Internal(where + ": data size does not match the shape");
    w.factor = alpha_ == 0 ? 1.0f : rslora_ ? alpha_ / std::sqrt(static_cast<float>(w.rank))
                                            : alpha_ / static_cast<float>(w.rank);
  }
  return Status::Ok();
}

Status LoraAdapter::FromWeights(const Model& model, std::string name, float alpha, bool rslora,
                                std::vector<LoraWeight> weights, std::unique_ptr<LoraAdapter>* out) {
  auto a = std::unique_ptr<LoraAdapter>(new LoraAdapter());
  a->model_ = &model;
  a->name_ = std::move(name);
  a->alpha_ = alpha;
  a->rslora_ = rslora;
  a->weights_ = std::move(weights);
  EMBER_RETURN_IF_ERROR(a->Validate());
  *out = std::move(a);
  return Status::Ok();
}

Status LoraAdapter::Load(const Model& model, const std::string& path, std::unique_ptr<LoraAdapter>* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return NotFound(path + ": no such file or directory");
  if (S_ISDIR(st.st_mode)) return FromPeft(model, path, out);
  std::unique_ptr<GgufFile> f;
  EMBER_RETURN_IF_ERROR(GgufFile::Open(path, &f));
  return FromGguf(model, *f, out);
}

namespace {

// The LoraWeight of a GGUF adapter's lora_a (t) / lora_b (tb) pair for `target`.
Status gguf_lora_weight(const std::string& where, const std::string& target, const GgufTensor& t,
                        const GgufTensor& tb, LoraWeight* out) {
  LoraWeight w;
  w.target = target;
  if (ends_with(target, ".attn_qkv.weight")) return refuse_fused(where, "attn_qkv");
  if (!lora_parse_target(target, &w.layer, &w.proj, &w.embedding))
    return NotFound(where + ": '" + target + "' is not a weight LoRA can adapt in this engine");
  if (t.n_dims != 2 || tb.n_dims != 2)
    return BadFormat(where + ": lora_a and lora_b must be 2-D");
  if (t.type != tb.type) return BadFormat(where + ": lora_a and lora_b have different types");
  if (t.type != DType::F32 && t.type != DType::F16)
    return Unsupported(where + ": type " + std::string(dtype_name(t.type)) + " (adapters must be F32 or F16)");
  if (w.embedding) {  // a: ne [r, n_vocab], b: ne [r, n_embd]
    w.rank = static_cast<int32_t>(t.ne[0]);
    w.n_in = static_cast<int32_t>(t.ne[1]);
    w.n_out = static_cast<int32_t>(tb.ne[1]);
    if (tb.ne[0] != w.rank)
      return BadFormat(where + ": rank of lora_a (" + std::to_string(w.rank) + ") and lora_b (" +
                       std::to_string(tb.ne[0]) + ") differ");
  } else {  // a: ne [in, r], b: ne [r, out]
    w.n_in = static_cast<int32_t>(t.ne[0]);
    w.rank = static_cast<int32_t>(t.ne[1]);
    w.n_out = static_cast<int32_t>(tb.ne[1]);
    if (tb.ne[0] != w.rank)
      return BadFormat(where + ": rank of lora_a (" + std::to_string(w.rank) + ") and lora_b (" +
                       std::to_string(tb.ne[0]) + ") differ (is lora_a transposed?)");
  }
  w.type = t.type;
  w.a.assign(t.data, t.data + t.nbytes);
  w.b.assign(tb.data, tb.data + tb.nbytes);
  *out = std::move(w);
  return Status::Ok();
}

}  // namespace

Status LoraAdapter::FromGguf(const Model& model, const GgufFile& f, std::unique_ptr<LoraAdapter>* out) {
  const std::string& name = f.path();
  std::string type, atype, arch;
  if (!f.GetString("general.type", &type).ok() || type != "adapter")
    return BadFormat(name + ": general.type is '" + type + "', not 'adapter' (not a GGUF adapter file)");
  if (!f.GetString("adapter.type", &atype).ok() || atype != "lora")
    return Unsupported(name + ": adapter.type is '" + atype + "', only 'lora' is supported");
  EMBER_RETURN_IF_ERROR(f.GetString("general.architecture", &arch));
  if (arch != model.config().arch)
    return InvalidArgument(name + ": adapter for architecture '" + arch + "', the model is '" +
                           model.config().arch + "'");
  float alpha = 0;
  EMBER_RETURN_IF_ERROR(f.GetF32Or("adapter.lora.alpha", &alpha));
  if (!std::isfinite(alpha) || alpha < 0) return BadFormat(name + ": adapter.lora.alpha " + std::to_string(alpha));

  std::vector<LoraWeight> ws;
  for (const GgufTensor& t : f.tensors()) {
    const bool is_a = ends_with(t.name, ".lora_a"), is_b = ends_with(t.name, ".lora_b");
    if (!is_a && !is_b) {
      if (t.name.find("norm") != std::string::npos) continue;  // llama.cpp ignores these too
      return BadFormat(name + ": tensor '" + t.name + "' is neither .lora_a nor .lora_b");
    }
    if (!is_a) continue;
    const std::string target = t.name.substr(0, t.name.size() - 7);
    const std::string where = name + ": tensor '" + t.name + "'";
    if (target.find("norm") != std::string::npos) continue;
    const GgufTensor* tb = f.FindTensor(target + ".lora_b");
    if (!tb) return BadFormat(where + ": no matching '" + target + ".lora_b'");
    LoraWeight w;
    EMBER_RETURN_IF_ERROR(gguf_lora_weight(where, target, t, *tb, &w));
    ws.push_back(std::move(w));
  }
  for (const GgufTensor& t : f.tensors())
    if (ends_with(t.name, ".lora_b") && !f.FindTensor(t.name.substr(0, t.name.size() - 7) + ".lora_a"))
      return BadFormat(name + ": tensor '" + t.name + "': no matching .lora_a");
  if (ws.empty()) return BadFormat(name + ": the adapter has no lora_a/lora_b tensors");
  std::vector<std::string> examples;
  if (f.Has(kLoraTaskExamplesKey)) {
    std::vector<std::string_view> v;
    EMBER_RETURN_IF_ERROR(f.GetStringArray(kLoraTaskExamplesKey, &v));
    examples.assign(v.begin(), v.end());
  }
  EMBER_RETURN_IF_ERROR(FromWeights(model, name, alpha, false, std::move(ws), out));
  (*out)->task_examples_ = std::move(examples);
  return Status::Ok();
}

namespace {

// adapter_config.json of a PEFT directory: alpha and rsLoRA; refuses what the
// engine cannot apply.
Status read_peft_config(const std::string& cfg_path, double* alpha_out, bool* rslora_out) {
  std::string text;
  EMBER_RETURN_IF_ERROR(read_text(cfg_path, &text));
  Json cfg;
  EMBER_RETURN_IF_ERROR(ParseJson(text, cfg_path, &cfg));
  if (!cfg.is_object()) return BadFormat(cfg_path + ": not a JSON object");
  auto num = [&](const char* key, double* v) -> Status {
    const Json* j = JsonFind(cfg, key);
    if (!j || !j->is_number()) return BadFormat(cfg_path + ": '" + key + "' missing or not a number");
    *v = j->get<double>();
    return Status::Ok();
  };
  auto flag = [&](const char* key) {
    const Json* j = JsonFind(cfg, key);
    return j && j->is_boolean() && j->get<bool>();
  };
  auto nonempty = [&](const char* key) {  // a non-empty array or object
    const Json* j = JsonFind(cfg, key);
    return j && j->is_structured() && !j->empty();
  };
  if (const Json* pt = JsonFind(cfg, "peft_type"); pt && pt->is_string() && pt->get<std::string>() != "LORA")
    return Unsupported(cfg_path + ": peft_type '" + pt->get<std::string>() + "' (only LORA)");
  double r = 0, alpha = 0;
  EMBER_RETURN_IF_ERROR(num("r", &r));
  EMBER_RETURN_IF_ERROR(num("lora_alpha", &alpha));
  if (r <= 0 || alpha < 0) return BadFormat(cfg_path + ": r and lora_alpha must be positive");
  if (flag("fan_in_fan_out")) return Unsupported(cfg_path + ": fan_in_fan_out adapters");
  if (flag("use_dora")) return Unsupported(cfg_path + ": DoRA adapters");
  if (nonempty("rank_pattern") || nonempty("alpha_pattern"))
    return Unsupported(cfg_path + ": rank_pattern / alpha_pattern");
  if (nonempty("modules_to_save")) return Unsupported(cfg_path + ": modules_to_save (full weights)");
  const bool rslora = flag("use_rslora");
  *alpha_out = alpha;
  *rslora_out = rslora;
  return Status::Ok();
}

// The lora_A and lora_B tensors of one adapted weight.
struct PeftPair { const SafetensorsTensor* a = nullptr; const SafetensorsTensor* b = nullptr; };

// Pairs the safetensors' lora_A / lora_B tensors by GGUF target name, in first-seen order.
Status pair_peft_tensors(const SafetensorsFile& st, const std::string& st_path,
                         std::vector<std::pair<std::string, PeftPair>>* pending) {
  auto slot = [&](const std::string& target) -> PeftPair& {
    for (auto& [n, p] : *pending)
      if (n == target) return p;
    pending->emplace_back(target, PeftPair{});
    return pending->back().second;
  };
  for (const SafetensorsTensor& t : st.tensors()) {
    const std::string where = st_path + ": tensor '" + t.name + "'";
    std::string n = t.name;
    if (n.rfind("base_model.model.", 0) == 0) n = n.substr(17);
    bool is_a = false;
    std::string module;
    for (const char* suf : {".lora_A.weight", ".lora_embedding_A", ".lora_B.weight", ".lora_embedding_B"}) {
      if (ends_with(n, suf)) {
        is_a = std::string_view(suf).find("_A") != std::string_view::npos;
        module = n.substr(0, n.size() - std::strlen(suf));
        break;
      }
    }
    if (module.empty()) return Unsupported(where + ": not a lora_A/lora_B tensor");
    std::string target;
    if (module == "lm_head") target = "output.weight";
    else if (module == "model.embed_tokens") target = "token_embd.weight";
    else if (module.rfind("model.layers.", 0) == 0) {
      size_t dot = module.find('.', 13);
      if (dot == std::string::npos) return Unsupported(where + ": unknown module '" + module + "'");
      const std::string layer = module.substr(13, dot - 13), sub = module.substr(dot + 1);
      for (const ProjName& pn : kProjNames)
        if (sub == pn.peft) target = "blk." + layer + "." + pn.gguf + ".weight";
      if (sub == "self_attn.qkv_proj" || sub == "mlp.gate_up_proj") return refuse_fused(where, sub);
    }
    if (target.empty()) return Unsupported(where + ": module '" + module + "' has no GGUF counterpart");
    if (!t.supported) return Unsupported(where + ": dtype " + t.dtype_name);
    if (t.shape.size() != 2) return BadFormat(where + ": not 2-D");
    PeftPair& p = slot(target);
    (is_a ? p.a : p.b) = &t;
  }
  return Status::Ok();
}

// The LoraWeight of one PEFT pair, in GGUF layout: embeddings' A transposed, and Q/K
// rows of B permuted as llama.cpp's converter permutes the base weights (permute_qk).
Status peft_weight(const std::string& where, const std::string& target, const PeftPair& p,
                   const ModelConfig& c, bool permute_qk, LoraWeight* out) {
  LoraWeight w;
  w.target = target;
  lora_parse_target(target, &w.layer, &w.proj, &w.embedding);
  std::vector<uint8_t> a, b;
  DType ta = copy_elems(p.a->type, p.a->data, p.a->n_elements(), &a);
  DType tb = copy_elems(p.b->type, p.b->data, p.b->n_elements(), &b);
  if (ta != tb) {  // mixed types: both to F32
    auto to_f32 = [](DType t, std::vector<uint8_t>& v) {
      if (t != DType::F16) return;
      std::vector<uint8_t> o(v.size() * 2);
      for (size_t i = 0; i < v.size() / 2; ++i) {
        float f = lora_element(DType::F16, v, i);
        std::memcpy(&o[4 * i], &f, 4);
      }
      v.swap(o);
    };
    to_f32(ta, a);
    to_f32(tb, b);
    ta = tb = DType::F32;
  }
  w.type = ta;
  // lora_A [r, in] / lora_B [out, r]; embeddings: lora_embedding_A [r, n_vocab], _B [n_embd, r].
  w.rank = static_cast<int32_t>(p.a->shape[0]);
  if (p.b->shape[1] != w.rank)
    return BadFormat(where + ": rank of lora_A (" + std::to_string(w.rank) + ") and lora_B (" +
                     std::to_string(p.b->shape[1]) + ") differ");
  w.n_in = static_cast<int32_t>(p.a->shape[1]);
  w.n_out = static_cast<int32_t>(p.b->shape[0]);
  if (w.embedding) a = transpose(ta, a, w.rank, w.n_in);  // -> [n_vocab][r]
  if (permute_qk && (w.proj == Proj::kQ || w.proj == Proj::kK) && !w.embedding) {
    const int32_t heads = w.proj == Proj::kQ ? c.n_head : c.n_head_kv;
    if (heads <= 0 || w.n_out % (2 * heads) != 0)
      return BadFormat(where + ": " + std::to_string(w.n_out) + " rows do not split into " +
                       std::to_string(heads) + " heads");
    b = permute_rows(ta, b, w.n_out, w.rank, heads);
  }
  w.a = std::move(a);
  w.b = std::move(b);
  *out = std::move(w);
  return Status::Ok();
}

}  // namespace

Status LoraAdapter::FromPeft(const Model& model, const std::string& dir, std::unique_ptr<LoraAdapter>* out) {
  double alpha = 0;
  bool rslora = false;
  EMBER_RETURN_IF_ERROR(read_peft_config(dir + "/adapter_config.json", &alpha, &rslora));

  const std::string st_path = dir + "/adapter_model.safetensors";
  std::unique_ptr<SafetensorsFile> st;
  EMBER_RETURN_IF_ERROR(SafetensorsFile::Open(st_path, &st));
  const ModelConfig& c = model.config();
  const bool permute_qk = c.rope_style == RopeStyle::kNorm;

  std::vector<std::pair<std::string, PeftPair>> pending;  // by target name
  EMBER_RETURN_IF_ERROR(pair_peft_tensors(*st, st_path, &pending));
  std::vector<LoraWeight> ws;
  for (auto& [target, p] : pending) {
    const std::string where = st_path + ": '" + target + "'";
    if (!p.a || !p.b) return BadFormat(where + ": lora_A or lora_B missing");
    LoraWeight w;
    EMBER_RETURN_IF_ERROR(peft_weight(where, target, p, c, permute_qk, &w));
    ws.push_back(std::move(w));
  }
  if (ws.empty()) return BadFormat(st_path + ": no LoRA tensors");
  return FromWeights(model, dir, static_cast<float>(alpha), rslora, std::move(ws), out);
}

// ---- LoraSet --------------------------------------------------------------------------

Status LoraSet::Set(const LoraAdapter* a, float scale, bool* affects_cache) {
  *affects_cache = false;
  if (!a) return InvalidArgument("LoRA adapter is null");
  if (&a->model() != &model_) return InvalidArgument(a->name() + ": adapter was loaded for another model");
  if (!std::isfinite(scale)) return InvalidArgument(a->name() + ": scale is not finite");
  for (Entry& e : entries_) {
    if (e.adapter != a) continue;
    if (e.scale == scale) return Status::Ok();  // no-op
    e.scale = scale;
    *affects_cache = a->AffectsCache();
    Rebuild();
    return Status::Ok();
  }
  entries_.push_back({a, scale});
  *affects_cache = scale != 0 && a->AffectsCache();
  Rebuild();
  return Status::Ok();
}

bool LoraSet::Remove(const LoraAdapter* a, bool* affects_cache) {
  *affects_cache = false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].adapter != a) continue;
    *affects_cache = entries_[i].scale != 0 && a->AffectsCache();
    entries_.erase(entries_.begin() + static_cast<ptrdiff_t>(i));
    Rebuild();
    return true;
  }
  return false;
}

void LoraSet::Clear(bool* affects_cache) {
  *affects_cache = false;
  for (const Entry& e : entries_) *affects_cache |= e.scale != 0 && e.adapter->AffectsCache();
  entries_.clear();
  Rebuild();
}

bool LoraSet::Scale(const LoraAdapter* a, float* scale) const {
  for (const Entry& e : entries_)
    if (e.adapter == a) { *scale = e.scale; return true; }
  return false;
}

void LoraSet::Rebuild() {
  terms_.assign(static_cast<size_t>(model_.config().n_layer + 1) * static_cast<size_t>(Proj::kCount), {});
  embd_terms_.clear();
  size_t max_rank = 0, max_out = 0;
  for (const Entry& e : entries_) {
    if (e.scale == 0) continue;  // scale 0: exactly the base (nothing added)
    for (const LoraWeight& w : e.adapter->weights()) {
      const Term term{&w, e.scale * w.factor};
      if (w.embedding) embd_terms_.push_back(term);
      else terms_[slot(w.proj == Proj::kOutput ? -1 : w.layer, w.proj)].push_back(term);
      max_rank = std::max(max_rank, static_cast<size_t>(w.rank));
      max_out = std::max(max_out, static_cast<size_t>(w.n_out));
    }
  }
  const size_t nb = static_cast<size_t>(std::max(n_batch_, 1));
  t_.assign(nb * max_rank, 0.0f);
  z_.assign(nb * max_out, 0.0f);
}

// Y[n][out] += s · (X[n][in] A^T) B^T, per adapter targeting (layer, p).
// (Adapters are F32/F16: no scratch needed; half rows of a batch convert on the fly.)
void LoraSet::Apply(const kernels::Table& k, int32_t layer, Proj p, const float* X, int32_t n, float* Y,
                    ThreadPool* pool) const {
  if (terms_.empty() || n <= 0) return;
  const std::vector<Term>& terms = terms_[slot(p == Proj::kOutput ? -1 : layer, p)];
  for (const Term& term : terms) {
    const LoraWeight& w = *term.w;
    kernels::matmul(k, w.A(), X, static_cast<size_t>(n), t_.data(), pool, nullptr);     // t[n][r] = X A^T
    kernels::matmul(k, w.B(), t_.data(), static_cast<size_t>(n), z_.data(), pool, nullptr);  // z[n][out] = t B^T
    k.axpy(term.s, z_.data(), Y, static_cast<size_t>(n) * w.n_out);                  // Y += s z
  }
}

// X[t][n_embd] += s · B·a[ids[t]] with a[v] the r-vector of token v (row v of A): the
// rows of A are gathered (as float) and multiplied by B for the whole batch at once.
void LoraSet::ApplyEmbedding(const kernels::Table& k, const int32_t* ids, int32_t n, float* X,
                             ThreadPool* pool) const {
  if (n <= 0) return;
  for (const Term& term : embd_terms_) {
    const LoraWeight& w = *term.w;
    const size_t r = static_cast<size_t>(w.rank), row = r * elem_bytes(w.type);
    for (int32_t t = 0; t < n; ++t)
      to_float_row(w.type, w.a.data() + static_cast<size_t>(ids[t]) * row, t_.data() + t * r, r);
    kernels::matmul(k, w.B(), t_.data(), static_cast<size_t>(n), z_.data(), pool, nullptr);  // z[n][n_embd] = t B^T
    k.axpy(term.s, z_.data(), X, static_cast<size_t>(n) * w.n_out);
  }
}

}  // namespace ember
