// Tokenizer benchmarks (its own executable, ember_bench_tokenizer: it needs the
// tokenizer and loader modules and the vocabularies of $EMBER_FIXTURES/tokenizer).
//
//   BM_encode/<vocab>      text -> ids on 1 MiB of generated mixed text (English-like
//                          prose, C++/Python-like code, numbers, some CJK and emoji),
//                          bytes_per_second = input bytes; BOS added, no special parsing
//   BM_load_vocab/<vocab>  open the vocab-only GGUF and build the Tokenizer (what a
//                          model load spends on its vocabulary)
//   BM_load_vocab_parse/<vocab>  the GGUF parse alone, to split the figure above
//
// The text is made here from a fixed seed (not taken from the fixtures), so every run
// encodes the same bytes. A missing fixture is reported as an error of that benchmark.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "tokenizer/tokenizer.h"

namespace ember::bench {
namespace {

std::string VocabPath(const std::string& name) {
  const char* env = std::getenv("EMBER_FIXTURES");
  std::string root = env && *env ? env : EMBER_DEFAULT_FIXTURES;
  return root + "/tokenizer/" + name + "-vocab.gguf";
}

// Syllables make pronounceable words of 1..4 syllables; a few function words keep the
// prose realistic (short frequent words are most of English text).
std::string Word(std::mt19937& rng) {
  static const char* const kCommon[] = {"the", "a", "of", "and", "to", "in", "is", "was", "it", "that",
                                        "for", "on", "with", "as", "I", "he", "she", "they", "we", "you"};
  static const char* const kSyllables[] = {"ka", "ter", "mon", "li", "sa", "ven", "ro", "pel", "dis", "qua",
                                           "tion", "ing", "er", "al", "pro", "com", "ex", "ly", "ment", "un"};
  if (rng() % 3 == 0) return kCommon[rng() % 20];
  std::string w;
  for (int n = 1 + rng() % 4; n > 0; --n) w += kSyllables[rng() % 20];
  if (rng() % 10 == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
  return w;
}

void AppendProse(std::mt19937& rng, std::string* out) {
  for (int s = 0; s < 4; ++s) {
    std::string sentence = Word(rng);
    sentence[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(sentence[0])));
    for (int n = 6 + rng() % 14; n > 0; --n) {
      sentence += ' ' + Word(rng);
      if (rng() % 12 == 0) sentence += ',';
      if (rng() % 25 == 0) sentence += "'s";
    }
    *out += sentence + (rng() % 5 == 0 ? "? " : ". ");
  }
  *out += "\n\n";
}

void AppendCode(std::mt19937& rng, std::string* out) {
  const std::string name = Word(rng) + "_" + Word(rng);
  if (rng() % 2) {
    *out += "def " + name + "(x, n=" + std::to_string(rng() % 100) + "):\n";
    *out += "    \"\"\"" + Word(rng) + " " + Word(rng) + ".\"\"\"\n";
    *out += "    for i in range(n):\n        x = x * " + std::to_string(rng() % 997) + " + i  # " + Word(rng) + "\n";
    *out += "    return {\"" + Word(rng) + "\": x, \"ok\": True}\n\n";
  } else {
    *out += "static int " + name + "(const std::vector<int>& v) {\n";
    *out += "  int acc = 0x" + std::to_string(rng() % 9000 + 1000) + ";\n";
    *out += "  for (size_t i = 0; i < v.size(); ++i) acc ^= v[i] << (i % 7);\n";
    *out += "  return acc;  // " + Word(rng) + "\n}\n\n";
  }
}

void AppendNumbers(std::mt19937& rng, std::string* out) {
  *out += "Total: " + std::to_string(rng() % 100000000) + ", rate " + std::to_string(rng() % 100) + "." +
          std::to_string(rng() % 1000) + "% on 20" + std::to_string(10 + rng() % 15) + "-0" +
          std::to_string(1 + rng() % 9) + "-1" + std::to_string(rng() % 10) + " at " +
          std::to_string(rng() % 24) + ":" + std::to_string(10 + rng() % 50) + ".\n";
}

// CJK ideographs, kana, Hangul and emoji, drawn from their blocks.
void AppendCjkAndEmoji(std::mt19937& rng, std::string* out) {
  auto utf8 = [&](uint32_t cp) {
    if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    }
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  };
  for (int n = 8 + rng() % 24; n > 0; --n) {
    switch (rng() % 4) {
      case 0: utf8(0x4E00 + rng() % 0x800); break;  // common CJK ideographs
      case 1: utf8(0x3041 + rng() % 0x50); break;   // hiragana
      case 2: utf8(0xAC00 + rng() % 0x400); break;  // Hangul syllables
      default: utf8(0x1F600 + rng() % 0x40); break;  // emoticons
    }
    if (rng() % 6 == 0) *out += rng() % 2 ? "\xe3\x80\x82" : " ";  // 。 or a space
  }
  *out += "\n";
}

// 1 MiB: about 60% prose, 20% code, 10% numbers, 10% CJK/emoji (by pieces appended).
const std::string& MixedText() {
  static const std::string text = [] {
    std::mt19937 rng(2024);
    std::string t;
    while (t.size() < (1u << 20)) {
      const unsigned r = rng() % 10;
      if (r < 6) AppendProse(rng, &t);
      else if (r < 8) AppendCode(rng, &t);
      else if (r < 9) AppendNumbers(rng, &t);
      else AppendCjkAndEmoji(rng, &t);
    }
    // Cut at a character boundary.
    size_t n = 1u << 20;
    while (n > 0 && (static_cast<unsigned char>(t[n]) & 0xC0) == 0x80) --n;
    t.resize(n);
    return t;
  }();
  return text;
}

std::unique_ptr<Tokenizer> Load(const std::string& name, benchmark::State& state) {
  std::unique_ptr<GgufFile> g;
  Status st = GgufFile::Open(VocabPath(name), &g);
  std::unique_ptr<Tokenizer> t;
  if (st.ok()) st = Tokenizer::FromGguf(*g, &t);
  if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  return t;
}

void BM_encode(benchmark::State& state, const std::string& vocab) {
  std::unique_ptr<Tokenizer> t = Load(vocab, state);
  if (!t) return;
  const std::string& text = MixedText();
  std::vector<int32_t> ids;
  for (auto _ : state) {
    Status st = t->Encode(text, true, false, &ids);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(ids.size());
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(ids.size());
}

void BM_load_vocab(benchmark::State& state, const std::string& vocab) {
  for (auto _ : state) {
    std::unique_ptr<Tokenizer> t = Load(vocab, state);
    if (!t) return;
    benchmark::DoNotOptimize(t.get());
  }
}

void BM_load_vocab_parse(benchmark::State& state, const std::string& vocab) {
  for (auto _ : state) {
    std::unique_ptr<GgufFile> g;
    Status st = GgufFile::Open(VocabPath(vocab), &g);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(g.get());
  }
}

const bool kRegistered = [] {
  for (const char* v : {"llama3", "qwen3", "gemma3"}) {
    benchmark::RegisterBenchmark((std::string("BM_encode/") + v).c_str(), BM_encode, v)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("BM_load_vocab/") + v).c_str(), BM_load_vocab, v)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("BM_load_vocab_parse/") + v).c_str(), BM_load_vocab_parse, v)
        ->Unit(benchmark::kMillisecond);
  }
  return true;
}();

}  // namespace
}  // namespace ember::bench

BENCHMARK_MAIN();
