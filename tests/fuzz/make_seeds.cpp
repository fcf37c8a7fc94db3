// Writes the seed corpora of the fuzz targets from the fixtures (docs/TESTING.md,
// "Fuzzing"): `fuzz_make_seeds OUT_DIR` fills OUT_DIR/<target>/ with inputs in each
// target's format (see the header comment of tests/fuzz/fuzz_<target>.cpp).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "tests/fuzz/fuzz_support.h"
#include "tokenizer/chat/chat_template.h"

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

std::string nul_join(const std::string& a, const std::string& b) { return a + std::string(1, '\0') + b; }

void gguf_seeds(const fs::path& fx, Corpus& c) {
  for (const char* f : {"stories260K-f16.gguf", "tiny-llama-gqa-q4_0.gguf", "tiny-gemma-q4_0.gguf",
                        "tiny-llama256-q2_k.gguf", "tiny-llama256-iq4_xs.gguf", "tiny-llama256-q4_k_s.gguf"})
    c.Add(read_file(fx / "models" / f));
}

void tokenizer_seeds(const fs::path& fx, Corpus& c) {
  const std::vector<std::string> texts = {"Hello world", " leading space", "  two  spaces\n\nnew lines\t",
                                          "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "<s>special</s>",
                                          "<|im_start|>user\nhi<|im_end|>", "\xff\xfe invalid utf8 \xc3"};
  for (int vocab = 0; vocab < 10; ++vocab)  // mode: vocabulary (x5) and parse_special (x2)
    for (const std::string& t : texts) c.Add(std::string(1, static_cast<char>(vocab)) + t);
  c.Add(std::string(1, static_cast<char>(200)) + read_file(fx / "tokenizer" / "memo260K.model"));
  c.Add(std::string(1, static_cast<char>(228)) + read_file(fx / "tokenizer" / "memo260K-vocab.gguf"));
}

void adapter_seeds(const fs::path& fx, Corpus& c) {
  const fs::path o = fx / "models" / "octopus-tiny";
  c.Add(std::string(1, '\0') + read_file(o / "lora-phone.gguf"));
  const fs::path peft = o / "adapters" / "home";
  c.Add(std::string(1, '\1') +
        nul_join(read_file(peft / "adapter_config.json"), read_file(peft / "adapter_model.safetensors")));
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
  Corpus gguf(out, "gguf"), tok(out, "tokenizer"), ad(out, "adapter"), fn(out, "functions"), ct(out, "chat_template");
  gguf_seeds(fx, gguf);
  tokenizer_seeds(fx, tok);
  adapter_seeds(fx, ad);
  functions_seeds(fx, fn);
  chat_template_seeds(fx, ct);
  std::printf("fuzz_make_seeds: %d gguf, %d tokenizer, %d adapter, %d functions, %d chat_template seeds in %s\n",
              gguf.count(), tok.count(), ad.count(), fn.count(), ct.count(), out.c_str());
  return 0;
}
