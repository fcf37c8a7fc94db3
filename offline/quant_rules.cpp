// llama.cpp's tensor-type rules as tables (contract in quant_rules.h). Names in the
// comments are llama.cpp b10256's (src/llama-quant.cpp).
#include "offline/quant_rules.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>

#include "loader/gguf.h"

namespace ember {
namespace {

// ---- targets (llama_ftype_get_default_type; general.file_type = llama_ftype) -------------

constexpr QuantTargetInfo kTargets[] = {
    {QuantTarget::kQ8_0, "q8_0", DType::Q8_0, 7},        {QuantTarget::kQ6_K, "q6_k", DType::Q6_K, 18},
    {QuantTarget::kQ5_K_M, "q5_k_m", DType::Q5_K, 17},   {QuantTarget::kQ5_1, "q5_1", DType::Q5_1, 9},
    {QuantTarget::kQ5_0, "q5_0", DType::Q5_0, 8},        {QuantTarget::kQ4_K_M, "q4_k_m", DType::Q4_K, 15},
    {QuantTarget::kQ4_K_S, "q4_k_s", DType::Q4_K, 14},   {QuantTarget::kQ4_1, "q4_1", DType::Q4_1, 3},
    {QuantTarget::kQ4_0, "q4_0", DType::Q4_0, 2},        {QuantTarget::kIQ4_NL, "iq4_nl", DType::IQ4_NL, 25},
    {QuantTarget::kIQ4_XS, "iq4_xs", DType::IQ4_XS, 30}, {QuantTarget::kQ3_K_M, "q3_k_m", DType::Q3_K, 12},
    {QuantTarget::kQ2_K, "q2_k", DType::Q2_K, 10},       {QuantTarget::kF16, "f16", DType::F16, 1},
    {QuantTarget::kBF16, "bf16", DType::BF16, 32},       {QuantTarget::kF32, "f32", DType::F32, 0},
};

// ---- which tensors are converted (tensor_allows_quantization) --------------------------

// Name fragments of the 2-D tensors llama.cpp keeps in their own type: norms, MoE
// routers, Gemma 3n's small altup/laurel/projection tensors, SSM and RWKV's small
// matrices, T5's relative bias, vision/audio position and patch tensors.
constexpr const char* kKeptFragments[] = {
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
    "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
    "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
    ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger",
    "a.rvq.codebook", "mm.a.code_embd"};
// Whole names kept (positional embeddings and BERT's token types).
constexpr const char* kKeptNames[] = {"position_embd.weight", "token_types.weight"};

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// ggml_n_dims: the dimensions up to the last one larger than 1.
int ggml_dims(const TensorShape& t) {
  for (int d = 3; d >= 1; --d)
    if (d < static_cast<int>(t.n_dims) && t.ne[d] > 1) return d + 1;
  return 1;
}

bool is_converted(const TensorShape& t) {
  const std::string_view name = t.name;
  if (ggml_dims(t) < 2 || !name.ends_with("weight")) return false;
  for (const char* f : kKeptFragments)
    if (contains(name, f)) return false;
  return std::find(std::begin(kKeptNames), std::end(kKeptNames), name) == std::end(kKeptNames);
}

// ---- categories (tensor_category, tensor_get_category; first match wins) ---------------

enum class Category { kOutput, kTokenEmbd, kAttnV, kAttnK, kAttnQ, kAttnOutput, kFfnUp, kFfnGate, kFfnDown, kOther };

struct CategoryPattern {
  const char* text;
  bool whole_name;
  Category category;
};
constexpr CategoryPattern kCategories[] = {
    {"output.weight", true, Category::kOutput},
    {"token_embd.weight", true, Category::kTokenEmbd},
    {"per_layer_token_embd.weight", true, Category::kTokenEmbd},
    // category_is_attn_v: the fused qkv and MLA's kv_b carry V too
    {"attn_qkv.weight", false, Category::kAttnV},
    {"attn_kv_b.weight", false, Category::kAttnV},
    {"attn_v.weight", false, Category::kAttnV},
    {"attn_k.weight", false, Category::kAttnK},
    {"attn_q.weight", false, Category::kAttnQ},
    {"attn_output.weight", false, Category::kAttnOutput},
    {"ffn_up", false, Category::kFfnUp},
    {"ffn_gate", false, Category::kFfnGate},
    {"ffn_down", false, Category::kFfnDown},
};

Category category_of(std::string_view name) {
  for (const CategoryPattern& p : kCategories)
    if (p.whole_name ? name == p.text : contains(name, p.text)) return p.category;
  return Category::kOther;
}

// ---- the rules (llama_tensor_get_type_impl) ---------------------------------------------

constexpr uint32_t bit(QuantTarget t) { return 1u << static_cast<unsigned>(t); }
constexpr uint32_t kAllQuantized = ~(bit(QuantTarget::kF32) | bit(QuantTarget::kF16) | bit(QuantTarget::kBF16));

// Facts about the tensor and model a rule may require (all of a rule's bits must hold).
// i is the tensor's count among its category (i_attention_wv, i_ffn_down), n the total
// (n_attention_wv, n_ffn_down = the block count).
enum When : uint32_t {
  kAlways = 0,
  kGqa4 = 1u << 0,            // hparams.n_gqa() >= 4
  kFirst2 = 1u << 1,          // i < 2
  kFirst4 = 1u << 2,          // i < 4
  kMoreBits = 1u << 3,        // use_more_bits(i, n): i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
  kFirstEighth = 1u << 4,     // i < n/8
  kFirstSixteenth = 1u << 5,  // i < n/16
  kFalcon = 1u << 6,          // arch == LLM_ARCH_FALCON
  kNotFalcon = 1u << 7,
  kExperts8 = 1u << 8,        // hparams.n_expert == 8
  kNotExperts8 = 1u << 9,
  kModel70B = 1u << 10,       // model.type == LLM_TYPE_70B
  kRowsNotBase = 1u << 11,    // ne[0] % block size of the target's base type != 0
};

struct Rule {
  Category category;
  uint32_t targets;  // bit(QuantTarget) of the file types it applies to
  uint32_t when;
  DType type;
};
constexpr uint32_t of(QuantTarget a) { return bit(a); }
constexpr uint32_t of(QuantTarget a, QuantTarget b) { return bit(a) | bit(b); }
using QT = QuantTarget;

// For each category the first rule that matches sets the type (llama.cpp's else-if
// chains, restricted to Ember's targets); none: the base type stays.
constexpr Rule kRules[] = {
    // the output matrix (OUTPUT, or TOKEN_EMBD with has_tied_embeddings)
    {Category::kOutput, kAllQuantized, kFalcon, DType::Q8_0},
    {Category::kOutput, kAllQuantized, kRowsNotBase, DType::Q8_0},
    {Category::kOutput, kAllQuantized & ~bit(QT::kQ8_0), kAlways, DType::Q6_K},
    // ATTENTION_V (category_is_attn_v)
    {Category::kAttnV, of(QT::kQ2_K), kGqa4, DType::Q4_K},
    {Category::kAttnV, of(QT::kQ2_K), kAlways, DType::Q3_K},
    {Category::kAttnV, of(QT::kQ3_K_M), kFirst2, DType::Q5_K},
    {Category::kAttnV, of(QT::kQ3_K_M), kAlways, DType::Q4_K},
    {Category::kAttnV, of(QT::kIQ4_NL, QT::kIQ4_XS), kGqa4, DType::Q5_K},
    {Category::kAttnV, of(QT::kQ4_K_M, QT::kQ5_K_M), kMoreBits, DType::Q6_K},
    {Category::kAttnV, of(QT::kQ4_K_S), kFirst4, DType::Q5_K},
    // ATTENTION_K: 8 experts
    {Category::kAttnK, kAllQuantized, kExperts8, DType::Q8_0},
    // FFN_DOWN
    {Category::kFfnDown, of(QT::kQ2_K), kAlways, DType::Q3_K},
    {Category::kFfnDown, of(QT::kQ3_K_M), kFirstSixteenth, DType::Q5_K},
    {Category::kFfnDown, of(QT::kQ3_K_M), kNotFalcon, DType::Q4_K},
    {Category::kFfnDown, of(QT::kQ3_K_M), kMoreBits, DType::Q4_K},
    {Category::kFfnDown, of(QT::kQ3_K_M), kAlways, DType::Q3_K},
    {Category::kFfnDown, of(QT::kQ4_K_M), kFalcon | kFirstSixteenth, DType::Q6_K},
    {Category::kFfnDown, of(QT::kQ4_K_M), kFalcon | kMoreBits, DType::Q5_K},
    {Category::kFfnDown, of(QT::kQ4_K_M), kFalcon, DType::Q4_K},
    {Category::kFfnDown, of(QT::kQ4_K_M), kMoreBits, DType::Q6_K},
    {Category::kFfnDown, of(QT::kIQ4_NL, QT::kIQ4_XS), kFirstEighth, DType::Q5_K},  // (no imatrix)
    {Category::kFfnDown, of(QT::kQ5_K_M), kMoreBits, DType::Q6_K},
    {Category::kFfnDown, of(QT::kQ4_K_S), kNotFalcon | kFirstEighth, DType::Q5_K},
    // ATTENTION_OUTPUT
    {Category::kAttnOutput,
     of(QT::kQ2_K, QT::kQ3_K_M) | of(QT::kIQ4_NL, QT::kQ4_K_S) | of(QT::kQ4_K_M, QT::kIQ4_XS),
     kNotFalcon | kExperts8, DType::Q5_K},
    {Category::kAttnOutput, of(QT::kQ2_K), kNotFalcon | kNotExperts8, DType::Q3_K},
    {Category::kAttnOutput, of(QT::kQ3_K_M), kNotFalcon | kNotExperts8, DType::Q4_K},
};

// Then, in order, on the type the chain chose (ATTENTION_V's tail): the 70B llamas share
// each attn_v between 8 heads, so it gets Q5_K for little size; 8 experts: Q8_0.
struct Bump {
  Category category;
  uint32_t when;
  DType from;  // DType::F32: any
  DType to;
};
constexpr Bump kBumps[] = {
    {Category::kAttnV, kModel70B, DType::Q3_K, DType::Q5_K},
    {Category::kAttnV, kModel70B, DType::Q4_K, DType::Q5_K},
    {Category::kAttnV, kExperts8, DType::F32, DType::Q8_0},
};

// The architectures and depths llama.cpp types LLM_TYPE_70B (the llama one only with
// grouped-query attention and without experts: 80 layers with n_head == n_head_kv is 65B).
struct Model70B {
  const char* arch;
  int32_t n_layer;
  bool llama_rules;
};
constexpr Model70B k70BModels[] = {
    {"llama", 80, true}, {"qwen2", 80, false}, {"olmo", 80, false}, {"deci", 80, false}, {"jais2", 68, false}};

bool is_70b(const ModelFacts& m) {
  for (const Model70B& x : k70BModels)
    if (m.arch == x.arch && m.n_layer == x.n_layer)
      return !x.llama_rules || (m.n_head != m.n_head_kv && m.n_expert != 8);
  return false;
}

bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// A tensor's place among its category (i of n; see When).
struct Position {
  int i = 0, n = 0;
};

uint32_t facts_of(const ModelFacts& m, const QuantTargetInfo& target, const TensorShape& t, Position p) {
  uint32_t w = 0;
  if (m.n_head_kv > 0 && m.n_head / m.n_head_kv >= 4) w |= kGqa4;
  if (p.i < 2) w |= kFirst2;
  if (p.i < 4) w |= kFirst4;
  if (use_more_bits(p.i, p.n)) w |= kMoreBits;
  if (p.i < p.n / 8) w |= kFirstEighth;
  if (p.i < p.n / 16) w |= kFirstSixteenth;
  w |= m.arch == "falcon" ? kFalcon : kNotFalcon;
  w |= m.n_expert == 8 ? kExperts8 : kNotExperts8;
  if (is_70b(m)) w |= kModel70B;
  if (t.ne[0] % dtype_info(target.base).block_size != 0) w |= kRowsNotBase;
  return w;
}

DType apply_rules(Category c, const QuantTargetInfo& target, uint32_t facts) {
  DType type = target.base;
  for (const Rule& r : kRules) {
    if (r.category == c && (r.targets & bit(target.target)) && (facts & r.when) == r.when) {
      type = r.type;
      break;
    }
  }
  for (const Bump& b : kBumps)
    if (b.category == c && (facts & b.when) == b.when && (b.from == DType::F32 || b.from == type)) type = b.to;
  return type;
}

// ---- fallbacks (tensor_type_fallback) ----------------------------------------------------

struct Fallback {
  DType from, to;
};
constexpr Fallback kFallbacks[] = {{DType::IQ4_XS, DType::IQ4_NL}, {DType::Q2_K, DType::Q4_0}, {DType::Q3_K, DType::Q4_0},
                                   {DType::Q4_K, DType::Q5_0},     {DType::Q5_K, DType::Q5_1}, {DType::Q6_K, DType::Q8_0}};

std::string shape_text(const TensorShape& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

Status fall_back(const TensorShape& t, DType* type, std::string* note) {
  const int64_t nx = t.ne[0];
  auto fits = [nx](DType d) { return nx % dtype_info(d).block_size == 0; };
  if (fits(*type)) return Status::Ok();
  const DType wanted = *type;
  const Fallback* f = std::find_if(std::begin(kFallbacks), std::end(kFallbacks),
                                   [wanted](const Fallback& x) { return x.from == wanted; });
  if (f == std::end(kFallbacks))
    return InvalidArgument("tensor '" + t.name + "' " + shape_text(t) + ": row length " + std::to_string(nx) +
                           " is not a multiple of " + std::to_string(dtype_info(wanted).block_size) + ", the " +
                           dtype_name(wanted) + " block size");
  *type = fits(f->to) ? f->to : DType::F16;
  *note = "row length " + std::to_string(nx) + " is not a multiple of " +
          std::to_string(dtype_info(wanted).block_size) + ": " + dtype_name(*type) + " instead of " +
          dtype_name(wanted);
  return Status::Ok();
}

// llama_tensor_get_type for one tensor at position p of its category.
Status choose(QuantTarget target, const TensorShape& t, Category c, const ModelFacts& m, Position p, DType* out,
              std::string* note) {
  note->clear();
  if (!is_converted(t)) {
    *out = t.type;
    return Status::Ok();
  }
  const QuantTargetInfo& info = TargetInfo(target);
  if (!(bit(target) & kAllQuantized)) {
    *out = info.base;
    return Status::Ok();
  }
  if (c == Category::kTokenEmbd && !m.has_output) c = Category::kOutput;  // tied: the output matrix
  *out = apply_rules(c, info, facts_of(m, info, t, p));
  return fall_back(t, out, note);
}

// "blk.12.attn_v.weight" -> 12; -1 when the name has no layer index (sscanf "blk.%d.").
int layer_of(std::string_view name) {
  if (!name.starts_with("blk.")) return -1;
  int v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    v = v * 10 + (name[i] - '0');
    if (v > (1 << 24)) return -1;
  }
  return i < name.size() && name[i] == '.' ? v : -1;
}

}  // namespace

Status ReadModelFacts(const GgufFile& f, ModelFacts* m) {
  *m = ModelFacts();
  m->has_output = f.FindTensor("output.weight") != nullptr;
  EMBER_RETURN_IF_ERROR(f.GetStringOr("general.architecture", &m->arch));
  uint32_t n_layer = 0, n_expert = 0;
  if (!m->arch.empty()) {
    EMBER_RETURN_IF_ERROR(f.GetU32Or(m->arch + ".block_count", &n_layer));
    EMBER_RETURN_IF_ERROR(f.GetU32Or(m->arch + ".expert_count", &n_expert));
  }
  if (n_layer == 0)  // no usable key: the layers the tensor names show
    for (const GgufTensor& t : f.tensors()) n_layer = std::max(n_layer, static_cast<uint32_t>(layer_of(t.name) + 1));
  m->n_layer = static_cast<int32_t>(n_layer);
  m->n_expert = static_cast<int32_t>(n_expert);
  // Head counts may be per layer (arrays); llama.cpp's n_gqa() reads layer 0's, and
  // n_head_kv defaults to n_head.
  const std::string heads = m->arch + ".attention.head_count";
  std::vector<uint32_t> v;
  if (!m->arch.empty() && n_layer > 0 && f.Has(heads)) {
    EMBER_RETURN_IF_ERROR(f.GetU32PerLayer(heads, n_layer, &v));
    m->n_head = m->n_head_kv = static_cast<int32_t>(v[0]);
    if (f.Has(heads + "_kv")) {
      EMBER_RETURN_IF_ERROR(f.GetU32PerLayer(heads + "_kv", n_layer, &v));
      m->n_head_kv = static_cast<int32_t>(v[0]);
    }
  }
  return Status::Ok();
}

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

Status ChooseTensorType(QuantTarget target, const TensorShape& t, const ModelFacts& m, DType* out,
                        std::string* note) {
  return choose(target, t, category_of(t.name), m, Position{std::max(layer_of(t.name), 0), m.n_layer}, out, note);
}

Status ChooseTensorTypes(QuantTarget target, std::span<const TensorShape> tensors, const ModelFacts& m,
                         std::vector<DType>* types, std::vector<std::string>* notes) {
  const size_t n = tensors.size();
  types->assign(n, DType::F32);
  notes->assign(n, std::string());
  std::vector<Category> cats(n);
  int n_attn_v = 0;  // n_attention_wv: every attn_v-like name, converted or not
  for (size_t i = 0; i < n; ++i) {
    cats[i] = category_of(tensors[i].name);
    n_attn_v += cats[i] == Category::kAttnV;
  }
  // llama.cpp visits the tensors by layer (-1 first), then name (weight_name_comparer).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    return la != lb ? la < lb : tensors[a].name < tensors[b].name;
  });
  int i_attn_v = 0, i_ffn_down = 0;
  for (size_t k : order) {
    const TensorShape& t = tensors[k];
    Position p;
    const bool counted = is_converted(t) && (bit(target) & kAllQuantized);
    if (counted && cats[k] == Category::kAttnV) p = {i_attn_v++, n_attn_v};
    if (counted && cats[k] == Category::kFfnDown) {
      p = {i_ffn_down++, m.n_layer};
      // layer_info: with experts, the layer comes from the name (their tensors are not
      // one per layer in order)
      if (m.n_expert > 1) {
        p.i = layer_of(t.name);
        if (p.i < 0 || p.i >= m.n_layer)
          return InvalidArgument("tensor '" + t.name + "': no layer index in [0, " + std::to_string(m.n_layer) +
                                 ") (the block count) in its name");
      }
    }
    EMBER_RETURN_IF_ERROR(choose(target, t, cats[k], m, p, &(*types)[k], &(*notes)[k]));
  }
  return Status::Ok();
}

}  // namespace ember
