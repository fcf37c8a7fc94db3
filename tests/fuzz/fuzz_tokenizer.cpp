// Tokenizers: arbitrary bytes as text through Encode and Decode of the real vocabularies
// (SentencePiece: Llama 2, memo260K; byte-level BPE: Llama 3, Qwen3, Gemma 3's SPM), and
// arbitrary bytes as a vocabulary (a SentencePiece tokenizer.model, or a GGUF vocabulary
// file: tokens, scores, types, merges, pre). The first byte chooses what the rest is.
// Properties besides "no crash": every id is inside the vocabulary; byte-level BPE
// without special-token parsing decodes back to exactly the text.
// Texts are cut at kMaxText bytes: Encode looks for a special token at every byte, among
// all those sharing its first byte (thousands in Gemma 3 and Llama 3: user-defined and
// reserved tokens), so a text costs length x bucket compares, each traced by libFuzzer;
// a longer text reaches no other code. Vocabularies from bytes are not cut (their seeds
// are a few KB: tiny generated .model and GGUF vocabularies, make_seeds.cpp).
#include <cstdlib>
#include <vector>

#include "loader/gguf.h"
#include "tests/fuzz/fuzz_support.h"
#include "tokenizer/tokenizer.h"

namespace {

using ember::Tokenizer;

constexpr size_t kMaxText = 1024;

struct Vocab {
  std::unique_ptr<Tokenizer> tok;
};

std::vector<Vocab>& vocabularies() {
  static std::vector<Vocab> v = [] {
    std::vector<Vocab> out;
    const std::string dir = ember::fuzz::Fixtures() + "/tokenizer/";
    for (const char* file : {"llama2-vocab.gguf", "memo260K-vocab.gguf", "llama3-vocab.gguf", "qwen3-vocab.gguf",
                             "gemma3-vocab.gguf"}) {
      std::unique_ptr<ember::GgufFile> g;
      Vocab voc;
      if (!ember::GgufFile::Open(dir + file, &g).ok() || !Tokenizer::FromGguf(*g, &voc.tok).ok()) {
        std::fprintf(stderr, "fuzz_tokenizer: cannot load %s%s\n", dir.c_str(), file);
        std::abort();
      }
      out.push_back(std::move(voc));
    }
    return out;
  }();
  return v;
}

void check_round_trip(const Vocab& v, std::string_view text, bool parse_special) {
  std::vector<int32_t> ids;
  if (!v.tok->Encode(text, /*add_bos=*/false, parse_special, &ids).ok()) return;
  for (int32_t id : ids)
    if (id < 0 || id >= v.tok->n_vocab()) std::abort();
  const std::string back = v.tok->Decode(ids.data(), ids.size(), /*render_special=*/true,
                                        /*strip_leading_space=*/false);
  // Byte-level BPE maps every byte to a piece: without special tokens or llama.cpp's
  // space clean-up, decoding gives the text back exactly.
  if (v.tok->byte_level() && !v.tok->clean_spaces() && !parse_special && back != text) std::abort();
}

void vocabulary_from_bytes(std::string_view bytes, bool as_gguf) {
  std::unique_ptr<Tokenizer> tok;
  if (as_gguf) {
    std::unique_ptr<ember::GgufFile> g;
    if (!ember::GgufFile::FromMemory(bytes.data(), bytes.size(), "fuzz-vocab.gguf", &g).ok()) return;
    if (!Tokenizer::FromGguf(*g, &tok).ok()) return;
  } else if (!Tokenizer::FromModelProto(bytes, "fuzz.model", &tok).ok()) {
    return;
  }
  std::vector<int32_t> ids;
  (void)tok->Encode("Hello world, 123 \xc3\xbc <s> \xe2\x96\x81x", true, true, &ids);
  (void)tok->Decode(ids.data(), ids.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::Silence();
  vocabularies();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto& vocabs = vocabularies();
  if (mode < 200) {
    check_round_trip(vocabs[mode % vocabs.size()], rest.substr(0, kMaxText), (mode / vocabs.size()) % 2 == 1);
  } else {
    vocabulary_from_bytes(rest, mode >= 228);
  }
  return 0;
}
