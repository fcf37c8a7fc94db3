// Synthetic models (design in synth_model.h) and the synth section of the C API.
#include "offline/synth_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>

#include "ember/ember_tools.h"
#include "engine/capi/guard.h"
#include "loader/gguf.h"
#include "loader/gguf_writer.h"

namespace ember {
namespace {

constexpr SynthPreset kPresets[] = {
    // ---- test models (seconds to make; every architecture Ember runs) ----
    {"tiny", "llama",
     "test model: llama, n_embd 256, 2 layers, 4/2 heads x 64, n_ff 512, vocab 512, ctx 256, separate output",
     256, 2, 4, 2, 64, 512, 512, 256, 10000.0f, 1e-5f, false},
    {"tiny-gemma", "gemma",
     "test model: gemma, n_embd 256, 2 layers, 2/1 heads x 128, n_ff 512, vocab 512, ctx 256, tied output",
     256, 2, 2, 1, 128, 512, 512, 256, 10000.0f, 1e-6f, true},
    {"tiny-llama3", "llama",
     "test model: llama with rope_freqs (llama3 scaling, factor 32), n_embd 256, 2 layers, 4/2 heads x 64",
     256, 2, 4, 2, 64, 512, 512, 256, 500000.0f, 1e-5f, false, 0, 0, 0, 32.0f},
    {"tiny-qwen2", "qwen2", "test model: qwen2 (q/k/v biases), n_embd 256, 2 layers, 4/2 heads x 64, tied output",
     256, 2, 4, 2, 64, 512, 512, 256, 1000000.0f, 1e-6f, true},
    {"tiny-qwen3", "qwen3",
     "test model: qwen3 (QK-norm), n_embd 256, 2 layers, 4/2 heads x 128 (> n_embd/n_head), tied output",
     256, 2, 4, 2, 128, 512, 512, 256, 1000000.0f, 1e-6f, true},
    {"tiny-phi3", "phi3", "test model: phi3 (fused qkv and gate+up), n_embd 256, 2 layers, 4/4 heads x 64",
     256, 2, 4, 4, 64, 512, 512, 256, 10000.0f, 1e-5f, false},
    {"tiny-gemma2", "gemma2", "test model: gemma2 (soft-caps, window 8 on even layers), n_embd 256, 2 layers",
     256, 2, 2, 1, 128, 512, 512, 256, 10000.0f, 1e-6f, true, 8, 50.0f, 30.0f},
    {"tiny-gemma3", "gemma3", "test model: gemma3 (QK-norm, window 8 on 5 of 6 layers), n_embd 256, 6 layers",
     256, 6, 2, 1, 128, 512, 512, 256, 1000000.0f, 1e-6f, true, 8},
    // ---- real shapes ----
    {"tinyllama-1.1b", "llama",
     "TinyLlama 1.1B: llama, n_embd 2048, 22 layers, 32/4 heads x 64, n_ff 5632, vocab 32000, ctx 2048, "
     "separate output",
     2048, 22, 32, 4, 64, 5632, 32000, 2048, 10000.0f, 1e-5f, false},
    {"llama-3.2-1b", "llama",
     "Llama 3.2 1B: llama, n_embd 2048, 16 layers, 32/8 heads x 64, n_ff 8192, vocab 128256, ctx 131072, "
     "tied output, rope base 500000 with rope_freqs (llama3 scaling, factor 32)",
     2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000.0f, 1e-5f, true, 0, 0, 0, 32.0f},
    {"smollm2-360m", "llama",
     "SmolLM2 360M: llama, n_embd 960, 32 layers, 15/5 heads x 64, n_ff 2560, vocab 49152, ctx 8192, tied "
     "output, rope base 100000",
     960, 32, 15, 5, 64, 2560, 49152, 8192, 100000.0f, 1e-5f, true},
    {"qwen2.5-0.5b", "qwen2",
     "Qwen2.5 0.5B: qwen2, n_embd 896, 24 layers, 14/2 heads x 64, n_ff 4864, vocab 151936, ctx 32768, "
     "q/k/v biases, tied output, rope base 1e6",
     896, 24, 14, 2, 64, 4864, 151936, 32768, 1000000.0f, 1e-6f, true},
    {"qwen3-0.6b", "qwen3",
     "Qwen3 0.6B: qwen3, n_embd 1024, 28 layers, 16/8 heads x 128, n_ff 3072, vocab 151936, ctx 40960, "
     "QK-norm, tied output, rope base 1e6",
     1024, 28, 16, 8, 128, 3072, 151936, 40960, 1000000.0f, 1e-6f, true},
    {"phi-3-mini", "phi3",
     "Phi-3 mini 4k: phi3, n_embd 3072, 32 layers, 32/32 heads x 96, n_ff 8192, vocab 32064, ctx 4096, "
     "fused qkv and gate+up, separate output",
     3072, 32, 32, 32, 96, 8192, 32064, 4096, 10000.0f, 1e-5f, false},
    {"gemma-2b", "gemma",
     "Gemma 2B: gemma, n_embd 2048, 18 layers, 8/1 heads x 256, n_ff 16384, vocab 256000, ctx 8192, tied output",
     2048, 18, 8, 1, 256, 16384, 256000, 8192, 10000.0f, 1e-6f, true},
    {"gemma-2-2b", "gemma2",
     "Gemma 2 2B: gemma2, n_embd 2304, 26 layers, 8/4 heads x 256, n_ff 9216, vocab 256000, ctx 8192, "
     "window 4096 on even layers, soft-caps 50/30, tied output",
     2304, 26, 8, 4, 256, 9216, 256000, 8192, 10000.0f, 1e-6f, true, 4096, 50.0f, 30.0f},
    {"gemma-3-270m", "gemma3",
     "Gemma 3 270M: gemma3, n_embd 640, 18 layers, 4/1 heads x 256, n_ff 2048, vocab 262144, ctx 32768, "
     "window 512 on 5 of 6 layers, QK-norm, tied output",
     640, 18, 4, 1, 256, 2048, 262144, 32768, 1000000.0f, 1e-6f, true, 512},
    {"gemma-3-1b", "gemma3",
     "Gemma 3 1B: gemma3, n_embd 1152, 26 layers, 4/1 heads x 256, n_ff 6912, vocab 262144, ctx 32768, "
     "window 512 on 5 of 6 layers, QK-norm, tied output",
     1152, 26, 4, 1, 256, 6912, 262144, 32768, 1000000.0f, 1e-6f, true, 512},
};

// What an architecture's blocks hold beyond llama's (llama.cpp b10256's tensor lists).
struct SynthLayout {
  const char* arch;
  bool qkv_bias, qk_norm, post_norms, fused;
  // A control token the family's loaders insist on (llama.cpp requires <|endoftext|> of a
  // model whose name says phi-3); it replaces the last synthetic piece.
  const char* required_token = nullptr;
};
constexpr SynthLayout kLayouts[] = {
    {"llama", false, false, false, false}, {"gemma", false, false, false, false},
    {"gemma2", false, false, true, false}, {"gemma3", false, true, true, false},
    {"qwen2", true, false, false, false},  {"qwen3", false, true, false, false},
    {"phi3", false, false, false, true, "<|endoftext|>"},
};

// ---- random numbers ----------------------------------------------------------------------

uint64_t splitmix64(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman & Vigna), seeded through splitmix64 as its authors advise.
class Xoshiro {
 public:
  explicit Xoshiro(uint64_t key) {
    for (uint64_t& w : s_) w = splitmix64(&key);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Irwin-Hall(4): four 16-bit uniforms summed, standardized. Each lane has variance
  // (2^32 - 1)/12, the sum (2^32 - 1)/3, so dividing by 2^16/sqrt(3) gives ~unit variance.
  float normal() {
    const uint64_t r = next();
    const int64_t s = static_cast<int64_t>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48));
    constexpr float kScale = 1.7320508075688772f / 65536.0f;
    return static_cast<float>(s - 131070) * kScale;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Independent stream per (seed, tensor, row).
uint64_t row_key(uint64_t seed, uint64_t tensor, uint64_t row) {
  uint64_t s = seed;
  uint64_t k = splitmix64(&s) ^ (tensor * 0xD1B54A32D192ED03ull);
  k = splitmix64(&k) ^ row;
  return splitmix64(&k);
}

// "a".."z", "aa".."zz", ...: bijective base 26 of i >= 0.
std::string word(uint64_t i) {
  std::string w;
  ++i;
  while (i > 0) {
    --i;
    w.insert(w.begin(), static_cast<char>('a' + i % 26));
    i /= 26;
  }
  return w;
}

struct SynthTensor {
  std::string name;
  std::vector<int64_t> ne;    // ne[0] = fan_in
  bool ones = false;          // a norm: all 1
  std::vector<float> values;  // given values (1-D), else random or ones
};
SynthTensor random_weights(std::string name, std::vector<int64_t> ne) {
  return {std::move(name), std::move(ne), false, {}};
}
SynthTensor unit_norm(std::string name, std::vector<int64_t> ne) { return {std::move(name), std::move(ne), true, {}}; }
SynthTensor given_values(std::string name, std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return {std::move(name), {n}, false, std::move(v)};
}

const SynthLayout* find_layout(std::string_view arch) {
  for (const SynthLayout& l : kLayouts)
    if (arch == l.arch) return &l;
  return nullptr;
}

// Tensors in the order llama.cpp's converters write them.
std::vector<SynthTensor> tensors_of(const SynthPreset& p, const SynthLayout& lay) {
  std::vector<SynthTensor> ts;
  const int64_t E = p.n_embd, Q = int64_t{p.n_head} * p.head_dim, KV = int64_t{p.n_head_kv} * p.head_dim;
  const int64_t F = p.n_ff, D = p.head_dim;
  ts.push_back(random_weights("token_embd.weight", {E, p.n_vocab}));
  if (p.llama3_rope_factor > 0)
    ts.push_back(given_values("rope_freqs.weight", Llama3RopeFreqs(p.head_dim, p.rope_base, p.llama3_rope_factor)));
  ts.push_back(unit_norm("output_norm.weight", {E}));
  if (!p.tied) ts.push_back(random_weights("output.weight", {E, p.n_vocab}));
  for (int l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    ts.push_back(unit_norm(b + "attn_norm.weight", {E}));
    if (lay.fused) {
      ts.push_back(random_weights(b + "attn_qkv.weight", {E, Q + 2 * KV}));
    } else {
      ts.push_back(random_weights(b + "attn_q.weight", {E, Q}));
      ts.push_back(random_weights(b + "attn_k.weight", {E, KV}));
      ts.push_back(random_weights(b + "attn_v.weight", {E, KV}));
    }
    if (lay.qkv_bias)
      for (const char* t : {"attn_q.bias", "attn_k.bias", "attn_v.bias"})
        ts.push_back(random_weights(b + t, {t[5] == 'q' ? Q : KV}));
    if (lay.qk_norm) {
      ts.push_back(unit_norm(b + "attn_q_norm.weight", {D}));
      ts.push_back(unit_norm(b + "attn_k_norm.weight", {D}));
    }
    ts.push_back(random_weights(b + "attn_output.weight", {Q, E}));
    if (lay.post_norms) ts.push_back(unit_norm(b + "post_attention_norm.weight", {E}));
    ts.push_back(unit_norm(b + "ffn_norm.weight", {E}));
    if (!lay.fused) ts.push_back(random_weights(b + "ffn_gate.weight", {E, F}));
    ts.push_back(random_weights(b + "ffn_up.weight", {E, lay.fused ? 2 * F : F}));
    ts.push_back(random_weights(b + "ffn_down.weight", {F, E}));
    if (lay.post_norms) ts.push_back(unit_norm(b + "post_ffw_norm.weight", {E}));
  }
  return ts;
}

// The architecture's hyperparameters, as the converters write them.
void put_hyperparameters(const SynthPreset& p, GgufWriter* meta) {
  const std::string a = std::string(p.arch) + ".";
  meta->SetU32(a + "context_length", p.n_ctx);
  meta->SetU32(a + "embedding_length", p.n_embd);
  meta->SetU32(a + "block_count", p.n_layer);
  meta->SetU32(a + "feed_forward_length", p.n_ff);
  meta->SetU32(a + "attention.head_count", p.n_head);
  meta->SetU32(a + "attention.head_count_kv", p.n_head_kv);
  meta->SetF32(a + "attention.layer_norm_rms_epsilon", p.norm_eps);
  meta->SetU32(a + "attention.key_length", p.head_dim);
  meta->SetU32(a + "attention.value_length", p.head_dim);
  meta->SetU32(a + "rope.dimension_count", p.head_dim);
  meta->SetF32(a + "rope.freq_base", p.rope_base);
  meta->SetU32(a + "vocab_size", p.n_vocab);
  if (p.sliding_window > 0) meta->SetU32(a + "attention.sliding_window", p.sliding_window);
  if (p.attn_softcap > 0) meta->SetF32(a + "attn_logit_softcapping", p.attn_softcap);
  if (p.final_softcap > 0) meta->SetF32(a + "final_logit_softcapping", p.final_softcap);
  if (std::string_view(p.arch) == "phi3") meta->SetU32(a + "rope.scaling.original_context_length", p.n_ctx);
}

// Copies one metadata value with the writer's typed setters. Arrays of the element types
// vocabularies hold (string, f32, i32, u32); any other array is Unsupported, naming the key.
Status CopyValue(const std::string& key, const GgufValue& v, const GgufFile& src, GgufWriter* out) {
  switch (v.type) {
    case GgufType::kU8: out->SetU8(key, static_cast<uint8_t>(v.u)); return Status::Ok();
    case GgufType::kI8: out->SetI8(key, static_cast<int8_t>(v.i)); return Status::Ok();
    case GgufType::kU16: out->SetU16(key, static_cast<uint16_t>(v.u)); return Status::Ok();
    case GgufType::kI16: out->SetI16(key, static_cast<int16_t>(v.i)); return Status::Ok();
    case GgufType::kU32: out->SetU32(key, static_cast<uint32_t>(v.u)); return Status::Ok();
    case GgufType::kI32: out->SetI32(key, static_cast<int32_t>(v.i)); return Status::Ok();
    case GgufType::kU64: out->SetU64(key, v.u); return Status::Ok();
    case GgufType::kI64: out->SetI64(key, v.i); return Status::Ok();
    case GgufType::kF32: out->SetF32(key, static_cast<float>(v.f)); return Status::Ok();
    case GgufType::kF64: out->SetF64(key, v.f); return Status::Ok();
    case GgufType::kBool: out->SetBool(key, v.u != 0); return Status::Ok();
    case GgufType::kString: out->SetString(key, std::string(v.str)); return Status::Ok();
    case GgufType::kArray: break;
  }
  if (v.elem_type == GgufType::kString) {
    out->SetStringArray(key, std::vector<std::string>(v.strings.begin(), v.strings.end()));
  } else if (v.elem_type == GgufType::kF32) {
    std::vector<float> a;
    EMBER_RETURN_IF_ERROR(src.GetF32Array(key, &a));
    out->SetF32Array(key, std::move(a));
  } else if (v.elem_type == GgufType::kI32) {
    std::vector<int32_t> a;
    EMBER_RETURN_IF_ERROR(src.GetI32Array(key, &a));
    out->SetI32Array(key, std::move(a));
  } else if (v.elem_type == GgufType::kU32) {
    std::vector<uint32_t> a(v.count);
    if (v.count) std::memcpy(a.data(), v.elems, v.count * sizeof(uint32_t));  // GGUF is little-endian, as we are
    out->SetU32Array(key, std::move(a));
  } else {
    return Unsupported("synth: " + src.path() + ": key " + key + " is an array of " +
                       gguf_type_name(v.elem_type) + ", which synth does not copy");
  }
  return Status::Ok();
}

// --vocab: opens the file and reads its token count, which sets the shapes.
Status OpenVocabulary(const std::string& path, std::unique_ptr<GgufFile>* out, int32_t* n_vocab) {
  EMBER_RETURN_IF_ERROR(GgufFile::Open(path, out));
  const GgufValue* tokens = (*out)->Find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != GgufType::kArray || tokens->elem_type != GgufType::kString)
    return NotFound("synth: " + path + " has no vocabulary (string array tokenizer.ggml.tokens)");
  if (tokens->count < 1 || tokens->count > (1u << 24))
    return InvalidArgument("synth: " + path + ": tokenizer.ggml.tokens has " + std::to_string(tokens->count) +
                           " tokens (expected 1 .. 16777216)");
  *n_vocab = static_cast<int32_t>(tokens->count);
  return Status::Ok();
}

// Its tokenizer.* keys, in its order, and its file name.
Status CopyVocabulary(const GgufFile& src, const std::string& path, GgufWriter* meta) {
  for (const auto& [key, v] : src.metadata())
    if (key.rfind("tokenizer.", 0) == 0) EMBER_RETURN_IF_ERROR(CopyValue(key, v, src, meta));
  meta->SetString("ember.synth.vocab", std::filesystem::path(path).filename().string());
  return Status::Ok();
}

// The synthetic vocabulary (synth_model.h) of the preset's size.
void PutSynthVocabulary(const SynthPreset& p, const SynthLayout& layout, GgufWriter* meta) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  SynthVocab(p.n_vocab, &tokens, &scores, &types);
  if (layout.required_token) {
    tokens.back() = layout.required_token;
    types.back() = 3;
  }
  meta->SetString("tokenizer.ggml.model", "llama");
  meta->SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
  meta->SetF32Array("tokenizer.ggml.scores", std::move(scores));
  meta->SetI32Array("tokenizer.ggml.token_type", std::move(types));
  meta->SetU32("tokenizer.ggml.bos_token_id", 1);
  meta->SetU32("tokenizer.ggml.eos_token_id", 2);
  meta->SetU32("tokenizer.ggml.unknown_token_id", 0);
  meta->SetBool("tokenizer.ggml.add_bos_token", true);
  meta->SetBool("tokenizer.ggml.add_eos_token", false);
}

}  // namespace

std::span<const SynthPreset> SynthPresets() { return kPresets; }

// Wavelengths below original/high keep their frequency, above original/low divide it by
// `factor`, and between the two the divisor blends smoothly.
std::vector<float> Llama3RopeFreqs(int32_t head_dim, float rope_base, float factor) {
  constexpr double kLow = 1, kHigh = 4, kOrig = 8192, kPi = 3.14159265358979323846;
  std::vector<float> f(head_dim / 2);
  for (size_t i = 0; i < f.size(); ++i) {
    const double freq = std::pow(static_cast<double>(rope_base), -2.0 * i / head_dim);
    const double wavelen = 2 * kPi / freq;
    if (wavelen < kOrig / kHigh) {
      f[i] = 1;
    } else if (wavelen > kOrig / kLow) {
      f[i] = factor;
    } else {
      const double smooth = (kOrig / wavelen - kLow) / (kHigh - kLow);
      f[i] = static_cast<float>(1 / ((1 - smooth) / factor + smooth));
    }
  }
  return f;
}

const SynthPreset* FindSynthPreset(std::string_view name) {
  for (const SynthPreset& p : kPresets)
    if (name == p.name) return &p;
  return nullptr;
}

void SynthVocab(int32_t n_vocab, std::vector<std::string>* tokens, std::vector<float>* scores,
                std::vector<int32_t>* types) {
  // Token types as llama.cpp numbers them: 1 normal, 2 unknown, 3 control, 6 byte.
  tokens->clear();
  scores->clear();
  types->clear();
  tokens->reserve(n_vocab);
  auto add = [&](std::string piece, float score, int32_t type) {
    tokens->push_back(std::move(piece));
    scores->push_back(score);
    types->push_back(type);
  };
  add("<unk>", 0.0f, 2);
  add("<s>", 0.0f, 3);
  add("</s>", 0.0f, 3);
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) add(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">", 0.0f, 6);
  const std::string mark = "\xE2\x96\x81";  // U+2581, SentencePiece's word start
  for (int64_t k = 0; static_cast<int32_t>(tokens->size()) < n_vocab; ++k) {
    std::string piece = k == 0 ? mark : ((k - 1) % 2 == 0 ? mark : "") + word(static_cast<uint64_t>((k - 1) / 2));
    add(std::move(piece), -static_cast<float>(k), 1);
  }
}

Status SynthModel(const std::string& out_path, const SynthOptions& o) {
  const SynthPreset* preset = FindSynthPreset(o.preset);
  if (!preset) {
    std::string names;
    for (const SynthPreset& q : kPresets) names += std::string(names.empty() ? "" : ", ") + q.name;
    return InvalidArgument("unknown preset '" + o.preset + "' (expected one of: " + names + ")");
  }
  const SynthLayout* layout = find_layout(preset->arch);
  if (!layout) return Internal(std::string("synth: no tensor layout for architecture ") + preset->arch);
  // The vocabulary first: a --vocab file decides n_vocab, hence the shapes.
  std::unique_ptr<GgufFile> vocab;
  SynthPreset shapes = *preset;
  if (!o.vocab_path.empty()) EMBER_RETURN_IF_ERROR(OpenVocabulary(o.vocab_path, &vocab, &shapes.n_vocab));
  const SynthPreset* p = &shapes;
  const std::vector<SynthTensor> ts = tensors_of(*p, *layout);

  ModelFacts facts{p->n_layer, !p->tied, p->n_head, p->n_head_kv, p->arch, 0};
  std::vector<GgufStreamWriter::Tensor> infos;
  std::vector<std::string> notes(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    TensorShape shape{ts[i].name, static_cast<uint32_t>(ts[i].ne.size()), {1, 1, 1, 1}, DType::F32};
    for (size_t d = 0; d < ts[i].ne.size(); ++d) shape.ne[d] = ts[i].ne[d];
    DType type;
    EMBER_RETURN_IF_ERROR(ChooseTensorType(o.target, shape, facts, &type, &notes[i]));
    infos.push_back({ts[i].name, type, ts[i].ne});
  }

  GgufWriter meta;
  meta.SetString("general.architecture", p->arch);
  meta.SetString("general.name", std::string("synth-") + p->name);
  meta.SetU32("general.file_type", TargetInfo(o.target).file_type);
  meta.SetU32("general.quantization_version", 2);
  put_hyperparameters(*p, &meta);
  if (vocab) EMBER_RETURN_IF_ERROR(CopyVocabulary(*vocab, o.vocab_path, &meta));
  else PutSynthVocabulary(*p, *layout, &meta);
  meta.SetString("ember.synth.preset", p->name);
  meta.SetU64("ember.synth.seed", o.seed);

  GgufStreamWriter w;
  EMBER_RETURN_IF_ERROR(w.Open(out_path, meta, infos, 32));
  const int n = static_cast<int>(ts.size());
  for (int i = 0; i < n; ++i) {
    const SynthTensor& t = ts[i];
    if (o.progress && !o.progress(i + 1, n, t.name, infos[i].type, notes[i]))
      return Status(Code::kCancelled, "synth: cancelled at tensor " + std::to_string(i + 1) + " of " +
                                          std::to_string(n) + " ('" + t.name + "')");
    const int64_t cols = t.ne[0];
    const int64_t rows = t.ne.size() > 1 ? t.ne[1] : 1;
    const float sigma = 1.0f / std::sqrt(static_cast<float>(cols));
    const uint64_t seed = o.seed;
    RowSource source = [&, i](int64_t r, float* dst) -> Status {
      if (!t.values.empty()) {
        std::copy(t.values.begin(), t.values.end(), dst);
      } else if (t.ones) {
        for (int64_t c = 0; c < cols; ++c) dst[c] = 1.0f;
      } else {
        Xoshiro g(row_key(seed, static_cast<uint64_t>(i), static_cast<uint64_t>(r)));
        for (int64_t c = 0; c < cols; ++c) dst[c] = sigma * g.normal();
      }
      return Status::Ok();
    };
    EMBER_RETURN_IF_ERROR(WriteConvertedRows(&w, t.name, infos[i].type, rows, cols, o.n_threads, source));
  }
  return w.Finish();
}

}  // namespace ember

// ---- C API ---------------------------------------------------------------------------------

extern "C" {

ember_synth_params ember_synth_default_params(void) {
  ember_synth_params p;
  p.preset = "tiny";
  p.type = "f32";
  p.seed = 0;
  p.vocab = nullptr;
  p.n_threads = 0;
  p.progress = nullptr;
  p.user = nullptr;
  return p;
}

const char* ember_synth_preset_name(int32_t i) {
  return ember::capi::guard_value("ember_synth_preset_name", static_cast<const char*>(nullptr), {}, [&] {
    const auto ps = ember::SynthPresets();
    return i >= 0 && static_cast<size_t>(i) < ps.size() ? ps[i].name : nullptr;
  });
}

const char* ember_synth_preset_description(int32_t i) {
  return ember::capi::guard_value("ember_synth_preset_description", static_cast<const char*>(nullptr), {}, [&] {
    const auto ps = ember::SynthPresets();
    return i >= 0 && static_cast<size_t>(i) < ps.size() ? ps[i].description : nullptr;
  });
}

ember_status ember_synth_file(const char* out_path, const ember_synth_params* params) {
  return ember::capi::guard("ember_synth_file", {{"out_path", out_path}}, [&] {
    const ember_synth_params p = params ? *params : ember_synth_default_params();
    ember::SynthOptions o;
    o.preset = p.preset ? p.preset : "tiny";
    ember::Status s = ember::ParseQuantTarget(p.type ? p.type : "f32", &o.target);
    if (s.ok() && p.n_threads < 0) s = ember::InvalidArgument("ember_synth_file: n_threads < 0");
    if (s.ok()) {
      o.seed = p.seed;
      o.n_threads = p.n_threads;
      if (p.vocab) o.vocab_path = p.vocab;
      if (p.progress) {
        o.progress = [&p](int i, int n, const std::string& name, ember::DType t, const std::string& note) {
          return p.progress(i, n, name.c_str(), ember::dtype_name(t), note.c_str(), p.user) == 0;
        };
      }
      s = ember::SynthModel(out_path, o);
    }
    return ember::capi::to_c(s);
  });
}

}  // extern "C"
