// Tokenizer tests: golden ids from sentencepiece / llama.cpp for two llama vocabularies
// (from the .model file and from a vocab-only GGUF), the octopus-tiny prompts, special
// and user-defined tokens, decoding, and bad or hostile input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "loader/gguf_writer.h"
#include "support/fixtures.h"
#include "support/json.h"
#include "tokenizer/spm_proto.h"
#include "tokenizer/tokenizer.h"

namespace ember {

// A tokenizer from a fixture GGUF (path relative to the fixtures); EXPECTs success.
// Shared with test_tokenizer_bpe.cpp (same executable).
std::unique_ptr<Tokenizer> LoadTokenizerFixture(const std::string& rel) {
  std::unique_ptr<GgufFile> g;
  Status st = GgufFile::Open(testing::fixture(rel), &g);
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (!st.ok()) return nullptr;
  std::unique_ptr<Tokenizer> t;
  st = Tokenizer::FromGguf(*g, &t);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return t;
}

namespace {

using testing::fixture;
using testing::json;

std::string ReadText(const std::string& path) {
  std::vector<uint8_t> b = testing::read_file(path);
  return std::string(b.begin(), b.end());
}

std::vector<json> ReadJsonl(const std::string& path) { return testing::read_jsonl(path); }

std::unique_ptr<Tokenizer> LoadModel(const std::string& rel) {
  std::unique_ptr<Tokenizer> t;
  Status st = Tokenizer::FromModelFile(fixture(rel), &t);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return t;
}

std::unique_ptr<Tokenizer> LoadGguf(const std::string& rel) { return LoadTokenizerFixture(rel); }

std::vector<int32_t> Enc(const Tokenizer& t, std::string_view text, bool add_bos = true,
                         bool parse_special = false) {
  std::vector<int32_t> ids;
  Status st = t.Encode(text, add_bos, parse_special, &ids);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return ids;
}

std::string Dec(const Tokenizer& t, const std::vector<int32_t>& ids, bool render_special = false) {
  return t.Decode(ids.data(), ids.size(), render_special);
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// ---- golden strings: 2 vocabularies x {.model, vocab-only GGUF} --------------------

struct GoldenCase {
  const char* name;   // jsonl prefix
  const char* model;  // .model file
  const char* gguf;   // vocab-only GGUF
  bool from_gguf;
};

void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.name << (c.from_gguf ? " (gguf)" : " (.model)"); }

std::string CaseName(const ::testing::TestParamInfo<GoldenCase>& info) {
  return std::string(info.param.name) + (info.param.from_gguf ? "_gguf" : "_model");
}

class Golden : public ::testing::TestWithParam<GoldenCase> {
 protected:
  std::unique_ptr<Tokenizer> Load() const {
    const GoldenCase& c = GetParam();
    return c.from_gguf ? LoadGguf(std::string("tokenizer/") + c.gguf) : LoadModel(std::string("tokenizer/") + c.model);
  }
  std::string Jsonl(const char* suffix) const { return fixture(std::string("tokenizer/") + GetParam().name + suffix); }
};

TEST_P(Golden, ThirtyStringsMatchSentencePiece) {
  auto t = Load();
  ASSERT_TRUE(t);
  auto rows = ReadJsonl(Jsonl(".tokenizer.jsonl"));
  ASSERT_EQ(rows.size(), 30u);
  for (const json& r : rows) {
    const std::string& text = r.at("text").get<std::string>();
    std::vector<int32_t> want = r.at("ids_spm").get<std::vector<int32_t>>();
    EXPECT_EQ(Enc(*t, text), want) << "string " << r.at("i").get<double>() << ": " << text;
    EXPECT_EQ(r.at("ids_llamacpp").get<std::vector<int32_t>>(), want);  // the README says they agree on all 60
  }
}

TEST_P(Golden, DecodeRoundTrip) {
  auto t = Load();
  ASSERT_TRUE(t);
  int checked = 0;
  for (const json& r : ReadJsonl(Jsonl(".tokenizer.jsonl"))) {
    if (!r.at("spm_roundtrip").get<bool>()) continue;
    std::vector<int32_t> ids = r.at("ids_spm").get<std::vector<int32_t>>();
    EXPECT_EQ(Dec(*t, ids), r.at("text").get<std::string>()) << "string " << r.at("i").get<double>();
    // Rendering BOS puts "<s>" in front of the same text.
    EXPECT_EQ(Dec(*t, ids, /*render_special=*/true), "<s>" + r.at("text").get<std::string>())
        << "string " << r.at("i").get<double>();
    ++checked;
  }
  EXPECT_EQ(checked, 29);
}

TEST_P(Golden, PiecesAndSpecialIds) {
  auto t = Load();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->unk_id(), 0);
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->piece(1), "<s>");
  EXPECT_EQ(t->type(1), TokenType::kControl);
  EXPECT_EQ(t->type(0), TokenType::kUnknown);
  EXPECT_EQ(t->piece(3 + 0x0A), "<0x0A>");
  EXPECT_EQ(t->type(3 + 0x0A), TokenType::kByte);
  EXPECT_EQ(t->PieceToId("<0x0A>"), 3 + 0x0A);
  EXPECT_EQ(t->PieceToId("no such piece, surely"), -1);
  EXPECT_EQ(t->TokenText(3 + 0x0A), "\n");
  EXPECT_EQ(t->TokenText(1), "<s>");
  EXPECT_EQ(t->TokenText(1, /*render_special=*/false), "");
  EXPECT_EQ(t->TokenText(-5), "");
  EXPECT_EQ(t->TokenText(t->n_vocab()), "");
  EXPECT_EQ(t->piece(t->n_vocab()), "");
  EXPECT_EQ(t->type(-1), TokenType::kUndefined);
}

TEST_P(Golden, InvalidUtf8DoesNotCrash) {
  auto t = Load();
  ASSERT_TRUE(t);
  auto rows = ReadJsonl(Jsonl(".tokenizer-invalid-utf8.jsonl"));
  ASSERT_EQ(rows.size(), 6u);
  for (const json& r : rows) {
    std::string bytes = FromHex(r.at("bytes_hex").get<std::string>());
    std::vector<int32_t> ids = Enc(*t, bytes);
    // sentencepiece replaces malformed bytes with U+FFFD; llama.cpp does not. Either is fine.
    bool ok =
        ids == r.at("ids_spm").get<std::vector<int32_t>>() || ids == r.at("ids_llamacpp").get<std::vector<int32_t>>();
    EXPECT_TRUE(ok) << "input " << r.at("text_repr").get<std::string>();
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < t->n_vocab());
    (void)Dec(*t, ids);
  }
}

TEST_P(Golden, ParseSpecialSplitsControlTokens) {
  auto t = Load();
  ASSERT_TRUE(t);
  // Without parse_special "<s>" is text (golden string 25); with it, one id.
  EXPECT_EQ(Enc(*t, "<s>", false, true), std::vector<int32_t>({1}));
  std::vector<int32_t> plain = Enc(*t, "<s>", false, false);
  EXPECT_GT(plain.size(), 1u);
  // Each text segment gets the dummy prefix (llama.cpp's rule), so "<s>Hello" is BOS +
  // encode("Hello"); decoding strips each of those spaces again.
  std::vector<int32_t> hello = Enc(*t, "Hello", false, false);
  std::vector<int32_t> want = {1};
  want.insert(want.end(), hello.begin(), hello.end());
  EXPECT_EQ(Enc(*t, "<s>Hello", false, true), want);
  const std::string mixed = "a</s><s>b <s> c</s>";
  std::vector<int32_t> ids = Enc(*t, mixed, false, true);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 2);
  EXPECT_EQ(Dec(*t, ids, true), mixed);
  EXPECT_EQ(Dec(*t, ids, false), "ab  c");
  // Unknown's text is special too when parsing specials.
  EXPECT_EQ(Enc(*t, "<unk>", false, true), std::vector<int32_t>({0}));
}

TEST_P(Golden, EmptyAndNoBos) {
  auto t = Load();
  ASSERT_TRUE(t);
  EXPECT_EQ(Enc(*t, "", true), std::vector<int32_t>({1}));
  EXPECT_TRUE(Enc(*t, "", false).empty());
  std::vector<int32_t> ids = {99};
  ASSERT_TRUE(t->Encode("x", false, false, &ids).ok());
  EXPECT_NE(ids.front(), 99) << "Encode replaces the output";
}

INSTANTIATE_TEST_SUITE_P(
    Vocabularies, Golden,
    ::testing::Values(GoldenCase{"llama2", "llama2-tokenizer.model", "llama2-vocab.gguf", false},
                      GoldenCase{"llama2", "llama2-tokenizer.model", "llama2-vocab.gguf", true},
                      GoldenCase{"memo260K", "memo260K.model", "memo260K-vocab.gguf", false},
                      GoldenCase{"memo260K", "memo260K.model", "memo260K-vocab.gguf", true}),
    CaseName);

TEST(TokenizerGguf, SameVocabularyAsModelFile) {
  for (auto [model, gguf] : {std::pair{"tokenizer/llama2-tokenizer.model", "tokenizer/llama2-vocab.gguf"},
                             std::pair{"tokenizer/memo260K.model", "tokenizer/memo260K-vocab.gguf"},
                             std::pair{"models/octopus-tiny/tokenizer.model", "models/octopus-tiny/octopus-tiny.gguf"}}) {
    auto a = LoadModel(model);
    auto b = LoadGguf(gguf);
    ASSERT_TRUE(a && b);
    ASSERT_EQ(a->n_vocab(), b->n_vocab()) << gguf;
    for (int32_t i = 0; i < a->n_vocab(); ++i) {
      ASSERT_EQ(a->piece(i), b->piece(i)) << gguf << " id " << i;
      ASSERT_EQ(a->type(i), b->type(i)) << gguf << " id " << i;
    }
    EXPECT_EQ(a->unk_id(), b->unk_id());
    EXPECT_EQ(a->bos_id(), b->bos_id());
    EXPECT_EQ(a->eos_id(), b->eos_id());
  }
}

TEST(TokenizerGguf, EveryFixtureModelHasAUsableVocabulary) {
  for (const char* rel :
       {"models/memo260K.gguf", "models/stories260K.gguf", "models/stories260K-f16.gguf",
        "models/tiny-gemma-f32.gguf", "models/tiny-gemma-q4_0.gguf", "models/tiny-gemma-q8_0.gguf",
        "models/tiny-gemma2-f32.gguf", "models/tiny-llama-gqa-f32.gguf", "models/tiny-llama-gqa-q4_0.gguf",
        "models/tiny-llama-gqa-q8_0.gguf", "models/octopus-tiny/octopus-tiny-q4_0.gguf",
        "models/octopus-tiny/octopus-tiny-q8_0.gguf"}) {
    auto t = LoadGguf(rel);
    ASSERT_TRUE(t) << rel;
    std::vector<int32_t> ids = Enc(*t, "Once upon a time", true, true);
    EXPECT_GT(ids.size(), 2u) << rel;
    EXPECT_EQ(Dec(*t, ids), "Once upon a time") << rel;
  }
}

TEST(TokenizerGguf, VocabFromGgufKeys) {
  std::unique_ptr<GgufFile> g;
  ASSERT_TRUE(GgufFile::Open(fixture("tokenizer/memo260K-vocab.gguf"), &g).ok());
  VocabSpec v;
  ASSERT_TRUE(VocabFromGguf(*g, &v).ok());
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.tokens.size(), 512u);
  EXPECT_EQ(v.scores.size(), 512u);
  EXPECT_EQ(v.types.size(), 512u);
  EXPECT_TRUE(v.add_space_prefix);  // key absent: SentencePiece default
  EXPECT_TRUE(v.byte_fallback);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.unk_id, 0);

  ASSERT_TRUE(GgufFile::Open(fixture("models/octopus-tiny/octopus-tiny.gguf"), &g).ok());
  ASSERT_TRUE(VocabFromGguf(*g, &v).ok());
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_EQ(v.bos_id, 2);
  EXPECT_EQ(v.eos_id, 1);
  EXPECT_EQ(v.unk_id, 3);
  EXPECT_EQ(v.pad_id, 0);
  EXPECT_EQ(v.types[7], static_cast<int32_t>(TokenType::kUserDefined));
}

// ---- octopus-tiny: user-defined function tokens, no dummy prefix --------------------

class Octopus : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<Tokenizer> Load() const {
    return GetParam() ? LoadGguf("models/octopus-tiny/octopus-tiny.gguf")
                      : LoadModel("models/octopus-tiny/tokenizer.model");
  }
};

TEST_P(Octopus, PromptIdsForAllTestQueries) {
  auto t = Load();
  ASSERT_TRUE(t);
  std::string tmpl = ReadText(fixture("models/octopus-tiny/prompt_template.txt"));
  size_t at = tmpl.find("{query}");
  ASSERT_NE(at, std::string::npos);
  auto rows = ReadJsonl(fixture("models/octopus-tiny/test_queries.jsonl"));
  ASSERT_EQ(rows.size(), 1200u);
  int bad = 0;
  for (const json& r : rows) {
    std::string prompt = tmpl;
    prompt.replace(at, 7, r.at("query").get<std::string>());
    std::vector<int32_t> want = r.at("prompt_ids").get<std::vector<int32_t>>();
    std::vector<int32_t> got = Enc(*t, prompt, true, false);
    if (got != want && ++bad <= 5) ADD_FAILURE() << "query: " << r.at("query").get<std::string>();
    // The prompt holds no control-token text, so parsing specials changes nothing.
    if (Enc(*t, prompt, true, true) != want && ++bad <= 5)
      ADD_FAILURE() << "parse_special, query: " << r.at("query").get<std::string>();
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(Octopus, ExpectedCallsDecodeAndEncode) {
  auto t = Load();
  ASSERT_TRUE(t);
  auto rows = ReadJsonl(fixture("models/octopus-tiny/test_queries.jsonl"));
  ASSERT_FALSE(rows.empty());
  for (size_t i = 0; i < rows.size(); i += 10) {
    const json& r = rows[i];
    std::vector<int32_t> ids = r.at("expected_ids").get<std::vector<int32_t>>();
    EXPECT_EQ(Dec(*t, ids), r.at("expected").get<std::string>());
    EXPECT_EQ(Enc(*t, r.at("expected").get<std::string>(), false, false), ids) << r.at("expected").get<std::string>();
  }
}

TEST_P(Octopus, FunctionalTokensAreSingleIds) {
  auto t = Load();
  ASSERT_TRUE(t);
  EXPECT_EQ(Enc(*t, "<nexa_3>", false, false), std::vector<int32_t>({7}));
  EXPECT_EQ(Enc(*t, "<nexa_end>", false, false), std::vector<int32_t>({36}));
  EXPECT_EQ(Enc(*t, "<nexa_3>", false, true), std::vector<int32_t>({7}));
  EXPECT_EQ(t->TokenText(7), "<nexa_3>");
  EXPECT_EQ(t->TokenText(7, /*render_special=*/false), "<nexa_3>");  // user-defined: always
  EXPECT_EQ(t->TokenText(36), "<nexa_end>");
  EXPECT_EQ(t->type(36), TokenType::kUserDefined);
  EXPECT_EQ(t->PieceToId("<nexa_end>"), 36);
  // "<nexa_1" without '>' is not the token; "<nexa_10>" is not <nexa_1> + "0>".
  std::vector<int32_t> partial = Enc(*t, "<nexa_1", false, false);
  EXPECT_EQ(std::count(partial.begin(), partial.end(), 5), 0);
  EXPECT_EQ(Enc(*t, "<nexa_10>", false, false), std::vector<int32_t>({14}));
  // '\n' only exists as a byte piece.
  EXPECT_EQ(Enc(*t, "\n\n", false, false), std::vector<int32_t>({47, 47}));
  EXPECT_EQ(t->TokenText(47), "\n");
}

TEST_P(Octopus, ParseSpecial) {
  auto t = Load();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->bos_id(), 2);
  EXPECT_EQ(t->eos_id(), 1);
  EXPECT_EQ(t->unk_id(), 3);
  std::vector<int32_t> ids = Enc(*t, "<bos>x", false, true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(Dec(*t, ids, true), "<bos>x");
  EXPECT_EQ(Dec(*t, ids, false), "x");
  ids = Enc(*t, "<bos>x", false, false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 0);
  ids = Enc(*t, "a<eos>", true, true);
  EXPECT_EQ(ids.front(), 2);
  EXPECT_EQ(ids.back(), 1);
}

INSTANTIATE_TEST_SUITE_P(Sources, Octopus, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "gguf" : "model"; });

// ---- a vocabulary built in the test ---------------------------------------------

// <unk> <s> </s>, the 256 byte pieces, then a few merges of "hello world".
VocabSpec SmallVocab() {
  VocabSpec v;
  auto add = [&](std::string p, float s, TokenType t) {
    v.tokens.push_back(std::move(p));
    v.scores.push_back(s);
    v.types.push_back(static_cast<int32_t>(t));
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0, TokenType::kByte);
  }
  const char* pieces[] = {"\xe2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "ll", "he", "hell", "hello",
                          "\xe2\x96\x81hello", "wo", "wor", "worl", "world", "\xe2\x96\x81world"};
  float score = -1;
  for (const char* p : pieces) add(p, score--, TokenType::kNormal);
  add("<tool>", 0, TokenType::kUserDefined);
  return v;
}

TEST(TokenizerVocab, BuildsFromSpec) {
  std::unique_ptr<Tokenizer> t;
  Status st = Tokenizer::FromVocab(SmallVocab(), &t);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<int32_t> ids = Enc(*t, "hello world", false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(t->piece(ids[0]), "\xe2\x96\x81hello");
  EXPECT_EQ(t->piece(ids[1]), "\xe2\x96\x81world");
  EXPECT_EQ(Dec(*t, ids), "hello world");
  EXPECT_EQ(t->Decode(ids.data(), ids.size(), false, /*strip_leading_space=*/false), " hello world");
  // 'z' is not a piece: byte fallback.
  ids = Enc(*t, "z", false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], 3 + 'z');
  // User-defined: whole, and the segment after it gets its own dummy prefix.
  ids = Enc(*t, "hello<tool>world", false);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(t->piece(ids[1]), "<tool>");
  EXPECT_EQ(t->piece(ids[2]), "\xe2\x96\x81world");
  EXPECT_EQ(Dec(*t, ids), "hello<tool>world");
}

TEST(TokenizerVocab, NoByteFallbackGivesUnknown) {
  VocabSpec v = SmallVocab();
  v.byte_fallback = false;
  std::unique_ptr<Tokenizer> t;
  ASSERT_TRUE(Tokenizer::FromVocab(v, &t).ok());
  std::vector<int32_t> ids = Enc(*t, "z", false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0), ids.end());
  EXPECT_EQ(Dec(*t, ids, false), "");  // unknown renders only as special
}

TEST(TokenizerVocab, NoSpacePrefixAndRemoveWhitespace) {
  VocabSpec v = SmallVocab();
  v.add_space_prefix = false;
  std::unique_ptr<Tokenizer> t;
  ASSERT_TRUE(Tokenizer::FromVocab(v, &t).ok());
  std::vector<int32_t> ids = Enc(*t, "hello", false);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(t->piece(ids[0]), "hello");
  ids = Enc(*t, " hello", false);
  EXPECT_EQ(Dec(*t, ids), " hello");  // nothing to strip without a prefix

  v = SmallVocab();
  v.remove_extra_whitespaces = true;
  ASSERT_TRUE(Tokenizer::FromVocab(v, &t).ok());
  EXPECT_EQ(Enc(*t, "  hello   world ", false), Enc(*t, "hello world", false));
}

TEST(TokenizerVocab, Errors) {
  std::unique_ptr<Tokenizer> t;
  VocabSpec v = SmallVocab();
  v.scores.pop_back();
  Status st = Tokenizer::FromVocab(v, &t);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("scores"), std::string::npos) << st.message();

  v = SmallVocab();
  v.types.push_back(1);
  st = Tokenizer::FromVocab(v, &t);
  EXPECT_NE(st.message().find("token types"), std::string::npos) << st.message();

  v = SmallVocab();
  v.model = "gpt2";  // byte-level BPE wants its 256 byte tokens (and merges)
  st = Tokenizer::FromVocab(v, &t);
  EXPECT_EQ(st.code(), Code::kBadFormat);
  EXPECT_NE(st.message().find("byte"), std::string::npos) << st.message();

  v = SmallVocab();
  v.model = "bert";
  st = Tokenizer::FromVocab(v, &t);
  EXPECT_EQ(st.code(), Code::kUnsupported);
  EXPECT_NE(st.message().find("bert"), std::string::npos);

  v = SmallVocab();
  v.bos_id = 100000;
  st = Tokenizer::FromVocab(v, &t);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("bos_id"), std::string::npos);

  st = Tokenizer::FromVocab(VocabSpec{}, &t);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);

  v = SmallVocab();
  v.types[0] = 1;  // no unknown-typed piece and unk_id -1
  v.unk_id = -1;
  st = Tokenizer::FromVocab(v, &t);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown"), std::string::npos);
}

TEST(TokenizerVocab, ToleratesBrokenRows) {
  VocabSpec v = SmallVocab();
  const int32_t hello_id = static_cast<int32_t>(std::find(v.tokens.begin(), v.tokens.end(), "hello") - v.tokens.begin());
  v.tokens.push_back("");                  // empty
  v.tokens.push_back("hello");             // duplicate of a normal piece
  v.tokens.push_back(std::string("a\0b", 3));  // NUL
  v.tokens.push_back("<0x41>");            // duplicate byte piece
  v.tokens.push_back("<unk2>");            // second unknown
  for (int i = 0; i < 5; ++i) v.scores.push_back(0);
  v.types.insert(v.types.end(), {1, 1, 1, 6, 2});
  v.types.push_back(99);  // out-of-range type
  v.tokens.push_back("x");
  v.scores.push_back(0);
  std::unique_ptr<Tokenizer> t;
  Status st = Tokenizer::FromVocab(v, &t);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<int32_t> ids = Enc(*t, "hello", false);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(t->piece(ids[0]), "\xe2\x96\x81hello");
  EXPECT_EQ(t->PieceToId("hello"), hello_id);  // the first occurrence
  EXPECT_EQ(t->piece(hello_id + 0), "hello");
  EXPECT_EQ(t->unk_id(), 0);
  EXPECT_EQ(t->type(t->n_vocab() - 1), TokenType::kUndefined);
}

TEST(TokenizerVocab, IncompleteBytePiecesDisableFallback) {
  VocabSpec v = SmallVocab();
  v.types[3 + 0x7f] = 1;  // <0x7F> no longer a byte piece
  std::unique_ptr<Tokenizer> t;
  Status st = Tokenizer::FromVocab(v, &t);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<int32_t> ids = Enc(*t, "z", false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0), ids.end()) << "unknown, not bytes";
  EXPECT_EQ(t->TokenText(3 + 'z'), "z");  // byte pieces still decode
}

TEST(TokenizerVocab, HostileInputNeverCrashes) {
  auto t = LoadModel("tokenizer/llama2-tokenizer.model");
  ASSERT_TRUE(t);
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 300; ++iter) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xff);
    if (iter % 3 == 0) s += "<s></s><unk>";
    for (bool ps : {false, true}) {
      std::vector<int32_t> ids;
      ASSERT_TRUE(t->Encode(s, true, ps, &ids).ok());
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t->n_vocab());
      (void)t->Decode(ids.data(), ids.size());
    }
  }
  std::vector<int32_t> junk = {-1, 1 << 30, 0, 1, 2, 3, 31999, 32000};
  (void)t->Decode(junk.data(), junk.size());
  (void)t->Decode(nullptr, 0);
  std::string big(200000, 'a');
  std::vector<int32_t> ids;
  EXPECT_TRUE(t->Encode(big, true, true, &ids).ok());
  EXPECT_GT(ids.size(), 1u);
}

// ---- files and GGUF errors ----------------------------------------------------

TEST(TokenizerErrors, ModelFile) {
  std::unique_ptr<Tokenizer> t;
  Status st = Tokenizer::FromModelFile("/nonexistent/tok.model", &t);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("/nonexistent/tok.model"), std::string::npos);

  std::string path = ::testing::TempDir() + "/ember_garbage.model";
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  std::fputs("this is not a protobuf \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", f);
  std::fclose(f);
  st = Tokenizer::FromModelFile(path, &t);
  EXPECT_EQ(st.code(), Code::kBadFormat);
  EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
  std::remove(path.c_str());
}

TEST(TokenizerErrors, TruncatedModelFiles) {
  std::vector<uint8_t> bytes = testing::read_file(fixture("tokenizer/memo260K.model"));
  ASSERT_FALSE(bytes.empty());
  std::string path = ::testing::TempDir() + "/ember_trunc.model";
  for (size_t cut : {size_t{1}, size_t{7}, bytes.size() / 3, bytes.size() - 1}) {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_TRUE(f);
    std::fwrite(bytes.data(), 1, cut, f);
    std::fclose(f);
    std::unique_ptr<Tokenizer> t;
    Status st = Tokenizer::FromModelFile(path, &t);  // error or a usable model, never a crash
    if (st.ok()) (void)Enc(*t, "hello");
  }
  std::remove(path.c_str());
}

std::vector<uint8_t> VocabGguf(const VocabSpec& v, const std::string& model, bool drop_score = false) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("tokenizer.ggml.model", model);
  w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
  std::vector<float> scores = v.scores;
  if (drop_score) scores.pop_back();
  w.SetF32Array("tokenizer.ggml.scores", scores);
  w.SetI32Array("tokenizer.ggml.token_type", v.types);
  w.SetU32("tokenizer.ggml.bos_token_id", 1);
  w.SetU32("tokenizer.ggml.eos_token_id", 2);
  w.SetU32("tokenizer.ggml.unknown_token_id", 0);
  w.SetU32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  return w.Serialize();
}

TEST(TokenizerErrors, GgufVocabularies) {
  const VocabSpec v = SmallVocab();
  std::unique_ptr<GgufFile> g;
  std::unique_ptr<Tokenizer> t;

  std::vector<uint8_t> good = VocabGguf(v, "llama");
  ASSERT_TRUE(GgufFile::FromMemory(good.data(), good.size(), "small.gguf", &g).ok());
  Status st = Tokenizer::FromGguf(*g, &t);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<int32_t> ids = Enc(*t, "hello", false);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(t->piece(ids[0]), "hello");  // add_space_prefix false

  // gpt2 (byte-level BPE, test_tokenizer_bpe.cpp) needs merges; a model nobody knows is refused.
  std::vector<uint8_t> gpt2 = VocabGguf(v, "gpt2");
  ASSERT_TRUE(GgufFile::FromMemory(gpt2.data(), gpt2.size(), "gpt2.gguf", &g).ok());
  st = Tokenizer::FromGguf(*g, &t);
  EXPECT_EQ(st.code(), Code::kBadFormat);
  EXPECT_NE(st.message().find("tokenizer.ggml.merges"), std::string::npos) << st.message();
  std::vector<uint8_t> wpm = VocabGguf(v, "bert");
  ASSERT_TRUE(GgufFile::FromMemory(wpm.data(), wpm.size(), "bert.gguf", &g).ok());
  st = Tokenizer::FromGguf(*g, &t);
  EXPECT_EQ(st.code(), Code::kUnsupported);
  EXPECT_NE(st.message().find("'bert'"), std::string::npos) << st.message();

  std::vector<uint8_t> bad = VocabGguf(v, "llama", /*drop_score=*/true);
  ASSERT_TRUE(GgufFile::FromMemory(bad.data(), bad.size(), "bad.gguf", &g).ok());
  st = Tokenizer::FromGguf(*g, &t);
  EXPECT_EQ(st.code(), Code::kBadFormat);
  EXPECT_NE(st.message().find("tokenizer.ggml.scores"), std::string::npos) << st.message();

  GgufWriter w;
  w.SetString("general.architecture", "llama");
  std::vector<uint8_t> none = w.Serialize();
  ASSERT_TRUE(GgufFile::FromMemory(none.data(), none.size(), "none.gguf", &g).ok());
  st = Tokenizer::FromGguf(*g, &t);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("tokenizer.ggml.model"), std::string::npos) << st.message();
}

// ---- the protobuf codec ----------------------------------------------------------

TEST(SpmProto, RoundTrip) {
  spm::ModelProtoInfo a;
  a.pieces = {{"<unk>", 0.0f, 2}, {"\xe2\x96\x81x", -1.5f, 1}, {"<0x41>", 0.0f, 6}};
  a.model_type = spm::kBpe;
  a.vocab_size = 3;
  a.byte_fallback = true;
  a.pad_id = -1;
  a.bos_id = -1;
  a.normalizer_name = "identity";
  a.add_dummy_prefix = false;
  a.remove_extra_whitespaces = false;
  spm::ModelProtoInfo b;
  ASSERT_TRUE(spm::DecodeModelProto(spm::EncodeModelProto(a), "x", &b).ok());
  ASSERT_EQ(b.pieces.size(), 3u);
  EXPECT_EQ(b.pieces[1].piece, "\xe2\x96\x81x");
  EXPECT_EQ(b.pieces[1].score, -1.5f);
  EXPECT_EQ(b.pieces[2].type, 6);
  EXPECT_EQ(b.model_type, spm::kBpe);
  EXPECT_EQ(b.vocab_size, 3);
  EXPECT_TRUE(b.byte_fallback);
  EXPECT_EQ(b.pad_id, -1);
  EXPECT_EQ(b.bos_id, -1);
  EXPECT_EQ(b.normalizer_name, "identity");
  EXPECT_FALSE(b.add_dummy_prefix);
  EXPECT_FALSE(b.remove_extra_whitespaces);
  EXPECT_TRUE(b.escape_whitespaces);
}

TEST(SpmProto, ReadsLlama2Model) {
  std::string bytes = ReadText(fixture("tokenizer/llama2-tokenizer.model"));
  spm::ModelProtoInfo m;
  Status st = spm::DecodeModelProto(bytes, "llama2", &m);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(m.pieces.size(), 32000u);
  EXPECT_EQ(m.model_type, spm::kBpe);
  EXPECT_TRUE(m.byte_fallback);
  EXPECT_TRUE(m.add_dummy_prefix);
  EXPECT_FALSE(m.remove_extra_whitespaces);
  EXPECT_EQ(m.normalizer_name, "identity");
  EXPECT_EQ(m.pieces[1].piece, "<s>");
  EXPECT_EQ(m.pieces[1].type, 3);
}

}  // namespace
}  // namespace ember
