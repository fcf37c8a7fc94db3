// Tiny generated GGUF models and LoRA adapters for the fuzz targets' seeds (a few KB each:
// a fuzzer spends its time on what the input means, not on hashing and copying 600 KB).
// One block, 2 query heads of 16 (1 KV head), a 16-token SentencePiece vocabulary (or a
// byte-level BPE one), every architecture's tensors and keys, weights of any type.
// Weight bytes are 0x11 everywhere: a small positive value in every format (f16/bf16
// scales, f32, the 4-bit indices), so a loaded model computes finite numbers.
// Built with the GGUF writer: only executables linking ember_gguf_writer include this.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "loader/gguf_writer.h"
#include "quant/types.h"

namespace ember::fuzz {

struct TinyModelSpec {
  std::string arch = "llama";  // llama gemma gemma2 gemma3 qwen2 qwen3 phi3
  DType weights = DType::F32;  // the type of every matrix whose rows are n_embd long
  bool bpe_vocab = false;      // byte-level BPE (gpt2) instead of SentencePiece (llama)
};

// Dimensions: n_embd is the weight type's block (32 or 256) so rows of n_embd hold whole
// blocks; matrices with rows of q_dim or n_ff (attn_output, ffn_down) are Q8_0.
struct TinyDims {
  int64_t n_embd, n_head = 2, n_head_kv = 1, head_dim = 16, n_ff = 32, n_vocab = 16;
  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
};

inline TinyDims TinyDimsFor(DType weights) {
  const uint32_t block = dtype_info(weights).block_size;
  return TinyDims{.n_embd = block > 32 ? block : 32};
}

// GPT-2's byte-to-piece mapping: printable bytes stand for themselves, the others for
// U+0100 onwards, in byte order (UTF-8 encoded).
inline std::string ByteLevelPiece(int byte) {
  int cp = byte, shifted = 0;
  const bool printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174;
  if (!printable) {
    for (int b = 0; b < byte; ++b)
      if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) ++shifted;
    cp = 256 + shifted;
  }
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

inline int64_t TinyVocabSize(bool bpe) { return bpe ? 256 + 6 : 16; }

inline void AddTinyVocab(GgufWriter& w, bool bpe) {
  if (bpe) {
    // Every byte's piece (a byte-level vocabulary must have them), merges building "Ġab".
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(ByteLevelPiece(b));
    for (const char* t : {"\xc4\xa0" "a", "ab", "\xc4\xa0" "ab", "<|im_start|>", "<|im_end|>", "<|endoftext|>"})
      tokens.push_back(t);
    std::vector<int32_t> types(tokens.size(), 1);
    for (size_t i = tokens.size() - 3; i < tokens.size(); ++i) types[i] = 3;
    w.SetString("tokenizer.ggml.model", "gpt2");
    w.SetString("tokenizer.ggml.pre", "qwen2");
    w.SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
    w.SetI32Array("tokenizer.ggml.token_type", std::move(types));
    w.SetStringArray("tokenizer.ggml.merges", {"\xc4\xa0 a", "a b", "\xc4\xa0" "a b"});
    w.SetU32("tokenizer.ggml.bos_token_id", 261);
    w.SetU32("tokenizer.ggml.eos_token_id", 260);
    return;
  }
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "c",
                                             "\xe2\x96\x81" "a", "\xe2\x96\x81" "b", "ab", "\xe2\x96\x81" "ab",
                                             "<0x0A>", "<0x21>", "<start_of_turn>", "<end_of_turn>", "."});
  w.SetF32Array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3, -4, -5, -6, -7, -8, 0, 0, 0, 0, -9});
  w.SetI32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6, 3, 3, 1});
  w.SetU32("tokenizer.ggml.bos_token_id", 1);
  w.SetU32("tokenizer.ggml.eos_token_id", 2);
  w.SetU32("tokenizer.ggml.unknown_token_id", 0);
}

inline void AddTinyArchKeys(GgufWriter& w, const std::string& a, const TinyDims& d) {
  w.SetString("general.architecture", a);
  w.SetString("general.name", "fuzz-tiny-" + a);
  w.SetU32(a + ".context_length", 64);
  w.SetU32(a + ".embedding_length", static_cast<uint32_t>(d.n_embd));
  w.SetU32(a + ".block_count", 1);
  w.SetU32(a + ".feed_forward_length", static_cast<uint32_t>(d.n_ff));
  w.SetU32(a + ".attention.head_count", static_cast<uint32_t>(d.n_head));
  w.SetU32(a + ".attention.head_count_kv", static_cast<uint32_t>(d.n_head_kv));
  w.SetU32(a + ".attention.key_length", static_cast<uint32_t>(d.head_dim));
  w.SetU32(a + ".attention.value_length", static_cast<uint32_t>(d.head_dim));
  w.SetU32(a + ".rope.dimension_count", static_cast<uint32_t>(d.head_dim));
  w.SetF32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetF32(a + ".rope.freq_base", 10000.0f);
  if (a == "gemma2") {
    w.SetF32(a + ".attn_logit_softcapping", 50.0f);
    w.SetF32(a + ".final_logit_softcapping", 30.0f);
  }
  if (a == "gemma2" || a == "gemma3") w.SetU32(a + ".attention.sliding_window", 4);
}

// A tensor of `type` and shape ne (ne[0] contiguous), every byte 0x11 (F32 norms: 1.0).
inline void AddTinyTensor(GgufWriter& w, const std::string& name, DType type, std::vector<int64_t> ne) {
  const TypeTraits& t = dtype_info(type);
  int64_t n = 1;
  for (int64_t x : ne) n *= x;
  std::vector<uint8_t> bytes(static_cast<size_t>(n / t.block_size * t.type_size), 0x11);
  if (type == DType::F32 && ne.size() == 1) {
    const float one = 1.0f;
    for (size_t i = 0; i < bytes.size(); i += 4) std::memcpy(&bytes[i], &one, 4);
  }
  (void)w.AddTensor(name, type, std::move(ne), bytes.data(), bytes.size());
}

inline std::vector<uint8_t> TinyModel(const TinyModelSpec& s) {
  TinyDims d = TinyDimsFor(s.weights);
  d.n_vocab = TinyVocabSize(s.bpe_vocab);
  const std::string& a = s.arch;
  GgufWriter w;
  AddTinyArchKeys(w, a, d);
  AddTinyVocab(w, s.bpe_vocab);
  const DType wt = s.weights, narrow = DType::Q8_0;  // narrow: rows of q_dim / n_ff
  const bool qwen2 = a == "qwen2", qk_norm = a == "qwen3" || a == "gemma3";
  const bool post_norms = a == "gemma2" || a == "gemma3", phi3 = a == "phi3";
  AddTinyTensor(w, "token_embd.weight", wt, {d.n_embd, d.n_vocab});
  AddTinyTensor(w, "output_norm.weight", DType::F32, {d.n_embd});
  if (a == "llama" || phi3) AddTinyTensor(w, "output.weight", wt, {d.n_embd, d.n_vocab});
  if (qwen2) AddTinyTensor(w, "output.bias", DType::F32, {d.n_vocab});
  const std::string b = "blk.0.";
  AddTinyTensor(w, b + "attn_norm.weight", DType::F32, {d.n_embd});
  if (phi3) {
    AddTinyTensor(w, b + "attn_qkv.weight", wt, {d.n_embd, d.q_dim() + 2 * d.kv_dim()});
  } else {
    AddTinyTensor(w, b + "attn_q.weight", wt, {d.n_embd, d.q_dim()});
    AddTinyTensor(w, b + "attn_k.weight", wt, {d.n_embd, d.kv_dim()});
    AddTinyTensor(w, b + "attn_v.weight", wt, {d.n_embd, d.kv_dim()});
  }
  if (qwen2)
    for (const char* bias : {"attn_q.bias", "attn_k.bias", "attn_v.bias"})
      AddTinyTensor(w, b + bias, DType::F32, {bias[5] == 'q' ? d.q_dim() : d.kv_dim()});
  if (qk_norm) {
    AddTinyTensor(w, b + "attn_q_norm.weight", DType::F32, {d.head_dim});
    AddTinyTensor(w, b + "attn_k_norm.weight", DType::F32, {d.head_dim});
  }
  AddTinyTensor(w, b + "attn_output.weight", narrow, {d.q_dim(), d.n_embd});
  if (post_norms) AddTinyTensor(w, b + "post_attention_norm.weight", DType::F32, {d.n_embd});
  AddTinyTensor(w, b + "ffn_norm.weight", DType::F32, {d.n_embd});
  if (phi3) {
    AddTinyTensor(w, b + "ffn_up.weight", wt, {d.n_embd, 2 * d.n_ff});
  } else {
    AddTinyTensor(w, b + "ffn_gate.weight", wt, {d.n_embd, d.n_ff});
    AddTinyTensor(w, b + "ffn_up.weight", wt, {d.n_embd, d.n_ff});
  }
  AddTinyTensor(w, b + "ffn_down.weight", narrow, {d.n_ff, d.n_embd});
  if (post_norms) AddTinyTensor(w, b + "post_ffw_norm.weight", DType::F32, {d.n_embd});
  return w.Serialize();
}

// ---- LoRA adapters -------------------------------------------------------------------------

// One LoRA matrix as GGUF names it: "blk.0.attn_q.weight.lora_a", ne[0] contiguous.
struct LoraMatrix {
  std::string name;
  std::vector<int64_t> ne;  // lora_a: {in, rank}; lora_b: {rank, out}
  std::vector<float> values;
};

// Rank-2 A/B pairs for attn_q, attn_v and ffn_down of the tiny F32 llama model.
inline std::vector<LoraMatrix> TinyLoraMatrices() {
  const TinyDims d = TinyDimsFor(DType::F32);
  const int64_t r = 2;
  std::vector<LoraMatrix> out;
  auto pair = [&](const std::string& module, int64_t in, int64_t outd) {
    out.push_back({"blk.0." + module + ".weight.lora_a", {in, r}, std::vector<float>(in * r, 0.01f)});
    out.push_back({"blk.0." + module + ".weight.lora_b", {r, outd}, std::vector<float>(r * outd, 0.02f)});
  };
  pair("attn_q", d.n_embd, d.q_dim());
  pair("attn_v", d.n_embd, d.kv_dim());
  pair("ffn_down", d.n_ff, d.n_embd);
  return out;
}

inline std::vector<uint8_t> LoraGguf(const std::string& arch, float alpha, const std::vector<LoraMatrix>& m) {
  GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetF32("adapter.lora.alpha", alpha);
  for (const LoraMatrix& x : m)
    (void)w.AddTensor(x.name, DType::F32, x.ne, x.values.data(), x.values.size() * sizeof(float));
  return w.Serialize();
}

// The PEFT name of a GGUF LoRA matrix: blk.0.attn_q.weight.lora_a ->
// base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight ("" when unmapped).
inline std::string PeftName(const std::string& gguf_name) {
  static const std::pair<const char*, const char*> kModules[] = {
      {"attn_q", "self_attn.q_proj"},  {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"}, {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  const size_t dot1 = gguf_name.find('.'), dot2 = gguf_name.find('.', dot1 + 1);
  const size_t dot3 = gguf_name.find('.', dot2 + 1);
  if (dot3 == std::string::npos) return "";
  const std::string layer = gguf_name.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string module = gguf_name.substr(dot2 + 1, dot3 - dot2 - 1);
  const char ab = gguf_name.back() == 'a' ? 'A' : 'B';
  for (const auto& [g, p] : kModules)
    if (module == g)
      return "base_model.model.model.layers." + layer + "." + p + ".lora_" + ab + ".weight";
  return "";
}

// adapter_model.safetensors for these matrices (F32; torch shapes are ne reversed).
inline std::string LoraSafetensors(const std::vector<LoraMatrix>& m) {
  std::string header = "{", data;
  for (const LoraMatrix& x : m) {
    const std::string name = PeftName(x.name);
    if (name.empty()) continue;
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(x.values.data()), x.values.size() * sizeof(float));
    if (header.size() > 1) header += ",";
    header += "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(x.ne[1]) + "," +
              std::to_string(x.ne[0]) + "],\"data_offsets\":[" + std::to_string(begin) + "," +
              std::to_string(data.size()) + "]}";
  }
  header += "}";
  const uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);  // little-endian hosts only
  return out + header + data;
}

// The LoRA matrices of a GGUF adapter whose names start with `prefix` (F32 ones only).
inline std::vector<LoraMatrix> LoraMatricesOf(const GgufFile& g, const std::string& prefix) {
  std::vector<LoraMatrix> out;
  for (const GgufTensor& t : g.tensors()) {
    if (t.type != DType::F32 || t.name.rfind(prefix, 0) != 0) continue;
    LoraMatrix m{t.name, std::vector<int64_t>(t.ne, t.ne + t.n_dims), std::vector<float>(t.n_elements)};
    std::memcpy(m.values.data(), t.data, t.n_elements * sizeof(float));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace ember::fuzz
