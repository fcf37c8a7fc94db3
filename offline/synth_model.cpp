// Synthetic models (design in synth_model.h) and the synth section of the C API.
#include "offline/synth_model.h"

#include <cmath>
#include <cstring>
#include <new>

#include "ember/ember_tools.h"
#include "engine/capi/guard.h"
#include "loader/gguf.h"
#include "loader/gguf_writer.h"

namespace ember {
namespace {

constexpr SynthPreset kPresets[] = {
    {"tiny", "llama",
     "test model: llama, n_embd 256, 2 layers, 4/2 heads x 64, n_ff 512, vocab 512, ctx 256, separate output",
     256, 2, 4, 2, 64, 512, 512, 256, 10000.0f, 1e-5f, false},
    {"tiny-gemma", "gemma",
     "test model: gemma, n_embd 256, 2 layers, 2/1 heads x 128, n_ff 512, vocab 512, ctx 256, tied output",
     256, 2, 2, 1, 128, 512, 512, 256, 10000.0f, 1e-6f, true},
    {"tinyllama-1.1b", "llama",
     "TinyLlama 1.1B: llama, n_embd 2048, 22 layers, 32/4 heads x 64, n_ff 5632, vocab 32000, ctx 2048, "
     "separate output",
     2048, 22, 32, 4, 64, 5632, 32000, 2048, 10000.0f, 1e-5f, false},
    {"llama-3.2-1b", "llama",
     "Llama 3.2 1B: llama, n_embd 2048, 16 layers, 32/8 heads x 64, n_ff 8192, vocab 128256, tied output, "
     "rope base 500000; without llama3 rope scaling (not supported), so ctx 8192 instead of 131072",
     2048, 16, 32, 8, 64, 8192, 128256, 8192, 500000.0f, 1e-5f, true},
    {"gemma-2b", "gemma",
     "Gemma 2B: gemma, n_embd 2048, 18 layers, 8/1 heads x 256, n_ff 16384, vocab 256000, ctx 8192, tied output",
     2048, 18, 8, 1, 256, 16384, 256000, 8192, 10000.0f, 1e-6f, true},
    {"qwen2.5-0.5b", "llama",
     "Qwen2.5 0.5B shapes: n_embd 896, 24 layers, 14/2 heads x 64, n_ff 4864, vocab 151936, ctx 32768, tied "
     "output, rope base 1e6; written as arch llama (qwen2's q/k/v biases are not supported yet, so omitted)",
     896, 24, 14, 2, 64, 4864, 151936, 32768, 1000000.0f, 1e-6f, true},
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
  std::vector<int64_t> ne;  // ne[0] = fan_in
  bool ones;                // a norm: all 1
};

}  // namespace

std::span<const SynthPreset> SynthPresets() { return kPresets; }

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
  const SynthPreset* p = FindSynthPreset(o.preset);
  if (!p) {
    std::string names;
    for (const SynthPreset& q : kPresets) names += std::string(names.empty() ? "" : ", ") + q.name;
    return InvalidArgument("unknown preset '" + o.preset + "' (expected one of: " + names + ")");
  }
  const std::string a = p->arch;

  // Tensors in the order llama.cpp's converters write them.
  std::vector<SynthTensor> ts;
  const int64_t E = p->n_embd, Q = int64_t{p->n_head} * p->head_dim, KV = int64_t{p->n_head_kv} * p->head_dim;
  ts.push_back({"token_embd.weight", {E, p->n_vocab}, false});
  ts.push_back({"output_norm.weight", {E}, true});
  if (!p->tied) ts.push_back({"output.weight", {E, p->n_vocab}, false});
  for (int l = 0; l < p->n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    ts.push_back({b + "attn_norm.weight", {E}, true});
    ts.push_back({b + "attn_q.weight", {E, Q}, false});
    ts.push_back({b + "attn_k.weight", {E, KV}, false});
    ts.push_back({b + "attn_v.weight", {E, KV}, false});
    ts.push_back({b + "attn_output.weight", {Q, E}, false});
    ts.push_back({b + "ffn_norm.weight", {E}, true});
    ts.push_back({b + "ffn_gate.weight", {E, p->n_ff}, false});
    ts.push_back({b + "ffn_up.weight", {E, p->n_ff}, false});
    ts.push_back({b + "ffn_down.weight", {p->n_ff, E}, false});
  }

  ModelFacts facts{p->n_layer, !p->tied, p->n_head, p->n_head_kv, a, 0};
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
  meta.SetString("general.architecture", a);
  meta.SetString("general.name", std::string("synth-") + p->name);
  meta.SetU32("general.file_type", TargetInfo(o.target).file_type);
  meta.SetU32("general.quantization_version", 2);
  meta.SetU32(a + ".context_length", p->n_ctx);
  meta.SetU32(a + ".embedding_length", p->n_embd);
  meta.SetU32(a + ".block_count", p->n_layer);
  meta.SetU32(a + ".feed_forward_length", p->n_ff);
  meta.SetU32(a + ".attention.head_count", p->n_head);
  meta.SetU32(a + ".attention.head_count_kv", p->n_head_kv);
  meta.SetF32(a + ".attention.layer_norm_rms_epsilon", p->norm_eps);
  meta.SetU32(a + ".attention.key_length", p->head_dim);
  meta.SetU32(a + ".attention.value_length", p->head_dim);
  meta.SetU32(a + ".rope.dimension_count", p->head_dim);
  meta.SetF32(a + ".rope.freq_base", p->rope_base);
  meta.SetU32(a + ".vocab_size", p->n_vocab);
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  SynthVocab(p->n_vocab, &tokens, &scores, &types);
  meta.SetString("tokenizer.ggml.model", "llama");
  meta.SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
  meta.SetF32Array("tokenizer.ggml.scores", std::move(scores));
  meta.SetI32Array("tokenizer.ggml.token_type", std::move(types));
  meta.SetU32("tokenizer.ggml.bos_token_id", 1);
  meta.SetU32("tokenizer.ggml.eos_token_id", 2);
  meta.SetU32("tokenizer.ggml.unknown_token_id", 0);
  meta.SetBool("tokenizer.ggml.add_bos_token", true);
  meta.SetBool("tokenizer.ggml.add_eos_token", false);
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
      if (t.ones) {
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
