// Writes the seed corpora of the fuzz targets from the fixtures and the generators of
// tiny_models.h (docs/TESTING.md, "Fuzzing"): `fuzz_make_seeds OUT_DIR` fills
// OUT_DIR/<target>/ with inputs in each target's format (see the header comment of
// tests/fuzz/fuzz_<target>.cpp). A generated seed that does not load is reported.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/tiny_models.h"
#include "tokenizer/chat/chat_template.h"
#include "tokenizer/spm_proto.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

class Corpus {
 public:
  Corpus(const fs::path& root, const std::string& target) : dir_(root / target) { fs::create_directories(dir_); }
  void Add(const std::string& bytes) {
    std::ofstream(dir_ / ("seed-" + std::to_string(n_++)), std::ios::binary) << bytes;
  }
  int count() const { return n_; }

 private:
  fs::path dir_;
  int n_ = 0;
};

std::string as_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

std::string nul_join(const std::string& a, const std::string& b) { return a + std::string(1, '\0') + b; }

// A seed that does not load tests only the loader's refusals: say so (the generator and
// the loader disagree), but write it anyway.
void check_loads(const std::string& bytes, const std::string& what) {
  std::unique_ptr<ember::GgufFile> g;
  std::unique_ptr<ember::Model> m;
  ember::Status s = ember::GgufFile::FromMemory(bytes.data(), bytes.size(), what, &g);
  if (s.ok()) s = ember::Model::FromGguf(std::move(g), {}, &m);
  if (!s.ok()) std::fprintf(stderr, "fuzz_make_seeds: %s does not load: %s\n", what.c_str(), s.ToString().c_str());
}

// As check_loads, for a vocabulary (.model bytes or a GGUF vocabulary).
void check_vocab(const std::string& bytes, bool gguf, const std::string& what) {
  std::unique_ptr<ember::Tokenizer> tok;
  std::unique_ptr<ember::GgufFile> g;
  ember::Status s = gguf ? ember::GgufFile::FromMemory(bytes.data(), bytes.size(), what, &g)
                         : ember::Tokenizer::FromModelProto(bytes, what, &tok);
  if (s.ok() && gguf) s = ember::Tokenizer::FromGguf(*g, &tok);
  if (!s.ok()) std::fprintf(stderr, "fuzz_make_seeds: %s does not load: %s\n", what.c_str(), s.ToString().c_str());
}

// Tiny generated models (a few KB, so the fuzzer runs thousands a second): every
// architecture with F32 weights (qwen2 with a byte-level BPE vocabulary), and a llama
// with each weight type Ember computes with (every type the loader binds as weights).
void gguf_seeds(Corpus& c) {
  using ember::DType;
  for (const char* arch : {"llama", "gemma", "gemma2", "gemma3", "qwen2", "qwen3", "phi3"}) {
    const std::string m = as_string(ember::fuzz::TinyModel({arch, DType::F32, std::string(arch) == "qwen2"}));
    check_loads(m, std::string("tiny ") + arch);
    c.Add(m);
  }
  for (uint32_t id = 1; id < ember::kDTypeSlots; ++id) {
    const ember::TypeTraits& t = ember::dtype_info(id);
    if (!t.name || !t.is_weight || !t.to_float) continue;
    const std::string m = as_string(ember::fuzz::TinyModel({"llama", static_cast<DType>(id), false}));
    check_loads(m, std::string("tiny llama ") + t.name);
    c.Add(m);
  }
}

// A SentencePiece .model of a few KB: byte fallback pieces, a few words, one
// user-defined piece.
std::string tiny_model_proto(int32_t model_type) {
  ember::spm::ModelProtoInfo info;
  info.model_type = model_type;
  info.byte_fallback = true;
  info.pieces = {{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}};
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    info.pieces.push_back({hex, 0, 6});
  }
  float score = -1;
  for (const char* p : {"\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab", "<|user|>"})
    info.pieces.push_back({p, score--, std::string(p) == "<|user|>" ? 4 : 1});
  info.vocab_size = static_cast<int32_t>(info.pieces.size());
  return ember::spm::EncodeModelProto(info);
}

void tokenizer_seeds(Corpus& c) {
  const std::vector<std::string> texts = {"Hello world", " leading space", "  two  spaces\n\nnew lines\t",
                                          "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "<s>special</s>",
                                          "<|im_start|>user\nhi<|im_end|>", "\xff\xfe invalid utf8 \xc3"};
  for (int vocab = 0; vocab < 10; ++vocab)  // mode: vocabulary (x5) and parse_special (x2)
    for (const std::string& t : texts) c.Add(std::string(1, static_cast<char>(vocab)) + t);
  // Vocabularies from bytes: generated ones of a few KB (the fixtures' memo260K files are
  // 8 and 11 KB, and libFuzzer lets every input grow to the longest seed): a
  // SentencePiece .model of each model type and both kinds of GGUF vocabulary.
  for (int32_t type : {ember::spm::kBpe, ember::spm::kUnigram}) {
    const std::string proto = tiny_model_proto(type);
    check_vocab(proto, false, "tiny .model");
    c.Add(std::string(1, static_cast<char>(200)) + proto);
  }
  for (bool bpe : {false, true}) {
    ember::GgufWriter w;
    ember::fuzz::AddTinyVocab(w, bpe);
    const std::string vocab = as_string(w.Serialize());
    check_vocab(vocab, true, "tiny GGUF vocabulary");
    c.Add(std::string(1, static_cast<char>(228)) + vocab);
  }
}

// First byte: bit 0 the format (GGUF / PEFT), bit 1 the base (tiny llama / octopus-tiny);
// see fuzz_adapter.cpp. Octopus-tiny's real adapters are cut to their block 0 (they
// still load: an adapter may leave blocks alone) so that both bases get small seeds.
void adapter_seeds(const fs::path& fx, Corpus& c) {
  namespace fz = ember::fuzz;
  const std::string config = R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]})";
  const std::vector<fz::LoraMatrix> tiny = fz::TinyLoraMatrices();
  c.Add(std::string(1, '\0') + as_string(fz::LoraGguf("llama", 4.0f, tiny)));
  c.Add(std::string(1, '\1') + nul_join(config, fz::LoraSafetensors(tiny)));
  c.Add(std::string(1, '\1') + fz::LoraSafetensors(tiny));  // the target's default config
  const fs::path o = fx / "models" / "octopus-tiny";
  std::unique_ptr<ember::GgufFile> phone;
  if (!ember::GgufFile::Open((o / "lora-phone.gguf").string(), &phone).ok()) return;
  float alpha = 16;
  (void)phone->GetF32("adapter.lora.alpha", &alpha);
  const std::vector<fz::LoraMatrix> block0 = fz::LoraMatricesOf(*phone, "blk.0.");
  c.Add(std::string(1, '\2') + as_string(fz::LoraGguf("gemma", alpha, block0)));
  c.Add(std::string(1, '\3') +
        nul_join(read_file(o / "adapters" / "home" / "adapter_config.json"), fz::LoraSafetensors(block0)));
}

void functions_seeds(const fs::path& fx, Corpus& c) {
  const std::string fns = read_file(fx / "models" / "octopus-tiny" / "functions.json");
  c.Add(fns);
  // The call " <nexa_2>('Rosa')<nexa_end>" as octopus-tiny's ids (its test_queries.jsonl).
  const std::vector<int32_t> ids = {1977, 6, 376, 1957, 378, 36};
  c.Add(nul_join(fns, std::string(reinterpret_cast<const char*>(ids.data()), ids.size() * 4)));
}

void chat_template_seeds(const fs::path& fx, Corpus& c) {
  const std::string messages = "system\x1f" "Be brief.\x1euser\x1fHi\x1e" "assistant\x1fHello!\x1euser\x1f" "2+2?";
  for (std::string_view name : ember::ChatTemplate::BuiltinNames())
    c.Add(nul_join(std::string(ember::ChatTemplate::BuiltinSource(name)), messages));
  for (const char* f : {"llama3-vocab.gguf", "qwen3-vocab.gguf", "gemma3-vocab.gguf"}) {
    std::unique_ptr<ember::GgufFile> g;
    if (!ember::GgufFile::Open((fx / "tokenizer" / f).string(), &g).ok()) continue;
    std::string t;
    if (g->GetString("tokenizer.chat_template", &t).ok()) c.Add(nul_join(t, messages));
  }
}

// OpenAI request bodies as clients send them; first byte 1: chat, 0: completion.
void server_request_seeds(Corpus& c) {
  const std::string chat(1, '\1'), completion(1, '\0');
  c.Add(chat + R"({"model": "m", "messages": [{"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"}], "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "seed": 42})");
  c.Add(chat + R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "Call Rosa"}]}],
    "tools": [{"type": "function", "function": {"name": "call", "parameters": {"type": "object"}}}],
    "tool_choice": "auto"})");
  c.Add(chat + R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
    "function": {"name": "call"}}], "tool_choice": {"type": "function", "function": {"name": "call"}}})");
  c.Add(chat + R"({"messages": [{"role": "developer", "content": "d"}, {"role": "assistant", "content": null},
    {"role": "tool", "content": "42"}], "stream": true, "stream_options": {"include_usage": true}, "n": 1})");
  c.Add(chat + R"({"messages": [{"role": "user", "content": "turn on the lights"}],
    "lora": [{"id": 0, "scale": 0.5}, {"id": 1}], "max_completion_tokens": -1})");
  c.Add(chat + R"({"messages": [{"role": "user", "content": "book a flight"}],
    "lora_blend": {"examples": ["call mom", "book a flight to Oslo"]}, "ignore_eos": false})");
  c.Add(completion + R"({"prompt": "Once upon a time", "max_tokens": 32, "stop": ["\n", "."], "stream": false})");
  c.Add(completion + R"({"prompt": ["one prompt"], "n_predict": 8, "stop": "\n\n", "seed": 18446744073709551615})");
  c.Add(completion + R"({"prompt": "caf\u00e9 \ud83d\ude00", "temperature": null, "lora": [{"id": 2, "scale": -1e3}]})");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR\n");
    return 2;
  }
  ember::fuzz::Silence();
  const fs::path fx = ember::fuzz::Fixtures(), out = argv[1];
  if (!fs::exists(fx / "models" / "octopus-tiny" / "functions.json")) {
    std::fprintf(stderr, "fuzz_make_seeds: fixtures not found in %s (set EMBER_FIXTURES)\n", fx.c_str());
    return 1;
  }
  Corpus gguf(out, "gguf"), tok(out, "tokenizer"), ad(out, "adapter"), fn(out, "functions"), ct(out, "chat_template"),
      srv(out, "server_request");
  gguf_seeds(gguf);
  tokenizer_seeds(tok);
  adapter_seeds(fx, ad);
  functions_seeds(fx, fn);
  chat_template_seeds(fx, ct);
  server_request_seeds(srv);
  std::printf("fuzz_make_seeds: %d gguf, %d tokenizer, %d adapter, %d functions, %d chat_template, %d server_request"
              " seeds in %s\n", gguf.count(), tok.count(), ad.count(), fn.count(), ct.count(), srv.count(), out.c_str());
  return 0;
}
