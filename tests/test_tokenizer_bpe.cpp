// Byte-level BPE (tokenizer.ggml.model "gpt2") and Gemma 3 vocabulary tests: the
// goldens of ../shared/tokenizer (Llama 3, Qwen3: byte-level BPE; Gemma 3: SentencePiece
// with 262144 pieces), special tokens inside text, round trips, invalid UTF-8, and
// malformed vocabularies.
//
// Which column is matched: `ids_llamacpp` (special parsing on) and
// `ids_llamacpp_parse_special_off` (off), exactly, on every line. Where Hugging Face and
// llama.cpp disagree (qwen3 #26: HF applies NFC first; gemma3 #40: HF merges literal
// U+2581 runs into whitespace tokens) the test follows llama.cpp, whose ids users
// compare with. Decoding is checked against `decoded_llamacpp`: Decode itself never
// cleans spaces (it is lossless, so Decode(Encode(t)) == t); llama.cpp's clean-up is
// Tokenizer::CleanUpSpaces, applied here when the vocabulary's clean_spaces() says so
// (llama3 #27 is the line where it changes the text).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "loader/gguf_writer.h"
#include "support/fixtures.h"
#include "support/json.h"
#include "tokenizer/bpe/bpe_tokenizer.h"
#include "tokenizer/bpe/byte_unicode.h"
#include "tokenizer/bpe/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace ember {

std::unique_ptr<Tokenizer> LoadTokenizerFixture(const std::string& rel);  // test_tokenizer.cpp

namespace {

using testing::fixture;
using testing::json;

std::unique_ptr<Tokenizer> LoadVocab(const std::string& name) {
  return LoadTokenizerFixture("tokenizer/" + name + "-vocab.gguf");
}

std::vector<int32_t> Enc(const Tokenizer& t, std::string_view text, bool add_bos, bool parse_special) {
  std::vector<int32_t> ids;
  Status st = t.Encode(text, add_bos, parse_special, &ids);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return ids;
}

// llama_detokenize(ids, remove_special = true, unparse_special = true): the BOS the
// vocabulary adds is dropped, control tokens are rendered, spaces cleaned when the
// vocabulary asks for it.
std::string DetokenizeLikeLlamaCpp(const Tokenizer& t, std::vector<int32_t> ids) {
  if (t.add_bos() && !ids.empty() && ids[0] == t.bos_id()) ids.erase(ids.begin());
  std::string s = t.Decode(ids.data(), ids.size(), /*render_special=*/true);
  if (t.clean_spaces()) Tokenizer::CleanUpSpaces(&s);
  return s;
}

class BpeGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(BpeGolden, MatchesLlamaCpp) {
  const std::string name = GetParam();
  std::unique_ptr<Tokenizer> t = LoadVocab(name);
  ASSERT_TRUE(t);
  const std::vector<json> lines = testing::read_jsonl(fixture("tokenizer/" + name + ".tokenizer.jsonl"));
  ASSERT_EQ(lines.size(), 41u);
  for (const json& g : lines) {
    const std::string text = g.at("text").get<std::string>();
    SCOPED_TRACE(name + " #" + std::to_string(g.at("i").get<int>()) + ": " + g.at("note").get<std::string>());
    const auto want_on = g.at("ids_llamacpp").get<std::vector<int32_t>>();
    const auto want_off = g.at("ids_llamacpp_parse_special_off").get<std::vector<int32_t>>();
    EXPECT_EQ(Enc(*t, text, t->add_bos(), /*parse_special=*/true), want_on);
    EXPECT_EQ(Enc(*t, text, t->add_bos(), /*parse_special=*/false), want_off);
    EXPECT_EQ(DetokenizeLikeLlamaCpp(*t, want_on), g.at("decoded_llamacpp").get<std::string>());
    // Lossless round trip wherever the vocabulary can spell the text (all but gemma3
    // #40, whose literal U+2581 decode as spaces).
    if (t->byte_level() || g.at("roundtrip_llamacpp").get<bool>()) {
      std::vector<int32_t> ids = Enc(*t, text, false, false);
      EXPECT_EQ(t->Decode(ids.data(), ids.size(), true), text);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TokenizerBpe, BpeGolden, ::testing::Values("llama3", "qwen3", "gemma3"));

TEST(TokenizerBpe, VocabularyFacts) {
  std::unique_ptr<Tokenizer> llama3 = LoadVocab("llama3"), qwen3 = LoadVocab("qwen3"), gemma3 = LoadVocab("gemma3");
  ASSERT_TRUE(llama3 && qwen3 && gemma3);
  EXPECT_TRUE(llama3->byte_level());
  EXPECT_EQ(llama3->n_vocab(), 128256);
  EXPECT_EQ(llama3->bos_id(), 128000);
  EXPECT_EQ(llama3->eos_id(), 128009);
  EXPECT_EQ(llama3->eot_id(), 128009);  // <|eot_id|>, found by its text (no eot key)
  EXPECT_TRUE(llama3->add_bos());
  EXPECT_TRUE(llama3->clean_spaces());
  EXPECT_EQ(llama3->TokenText(128009, false), "");
  EXPECT_EQ(llama3->TokenText(128009, true), "<|eot_id|>");
  EXPECT_EQ(llama3->TokenText(llama3->PieceToId("\xc4\xa0world")), " world");  // Ġworld

  EXPECT_TRUE(qwen3->byte_level());
  EXPECT_EQ(qwen3->n_vocab(), 151936);
  EXPECT_FALSE(qwen3->add_bos());
  EXPECT_FALSE(qwen3->clean_spaces());
  EXPECT_EQ(qwen3->eos_id(), 151645);
  EXPECT_EQ(qwen3->eot_id(), 151645);  // <|im_end|>
  EXPECT_EQ(qwen3->pad_id(), 151643);
  EXPECT_EQ(qwen3->TokenText(151669), "[PAD151669]");  // unused: rendered as written

  EXPECT_FALSE(gemma3->byte_level());
  EXPECT_EQ(gemma3->n_vocab(), 262144);
  EXPECT_EQ(gemma3->eot_id(), 106);  // <end_of_turn>
}

// Special-token texts inside the text: control tokens only with parse_special,
// user-defined ones (Qwen3's <think>) always.
TEST(TokenizerBpe, SpecialTokensInText) {
  std::unique_ptr<Tokenizer> llama3 = LoadVocab("llama3"), qwen3 = LoadVocab("qwen3");
  ASSERT_TRUE(llama3 && qwen3);
  const std::vector<int32_t> hello = Enc(*llama3, "Hello", false, false);
  ASSERT_EQ(hello.size(), 1u);
  std::vector<int32_t> on = Enc(*llama3, "<|begin_of_text|>Hello", true, true);
  EXPECT_EQ(on, (std::vector<int32_t>{128000, 128000, hello[0]}));
  std::vector<int32_t> off = Enc(*llama3, "<|begin_of_text|>Hello", false, false);
  EXPECT_GT(off.size(), 3u);
  for (int32_t id : off) EXPECT_LT(id, 128000);
  EXPECT_EQ(llama3->Decode(off.data(), off.size(), false), "<|begin_of_text|>Hello");

  const int32_t think = qwen3->PieceToId("<think>");
  ASSERT_GE(think, 0);
  EXPECT_EQ(qwen3->type(think), TokenType::kUserDefined);
  for (bool parse : {false, true}) {
    std::vector<int32_t> ids = Enc(*qwen3, "a<think>b", false, parse);
    ASSERT_EQ(ids.size(), 3u);
    EXPECT_EQ(ids[1], think);
  }
  const int32_t im_end = qwen3->PieceToId("<|im_end|>");
  EXPECT_EQ(Enc(*qwen3, "<|im_end|>", false, true), std::vector<int32_t>{im_end});
  EXPECT_GT(Enc(*qwen3, "<|im_end|>", false, false).size(), 1u);
}

// Invalid UTF-8: every byte of an ill-formed sequence becomes its own byte token (the
// token spelling that byte); the valid text around it tokenizes as it would alone, and
// decoding gives the input bytes back. llama.cpp instead replaces such bytes by U+FFFD.
TEST(TokenizerBpe, InvalidUtf8BecomesByteTokens) {
  std::unique_ptr<Tokenizer> t = LoadVocab("llama3");
  ASSERT_TRUE(t);
  auto byte_token = [&](uint8_t b) { return t->PieceToId(bpe::ByteToUnicode(b)); };
  std::vector<int32_t> want = Enc(*t, "caf", false, false);
  want.push_back(byte_token(0xC3));
  EXPECT_EQ(Enc(*t, "caf\xc3", false, false), want);

  std::vector<int32_t> ids = Enc(*t, "\xff\xfe abc", false, false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], byte_token(0xFF));
  EXPECT_EQ(ids[1], byte_token(0xFE));
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 2, ids.end()), Enc(*t, " abc", false, false));

  for (std::string s : {"\xc3( x", "\xe2\x82 y", "\xf0\x9f\x98 z", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
                        "\xf5\x80\x80\x80 beyond"}) {
    ids = Enc(*t, s, false, false);
    EXPECT_EQ(t->Decode(ids.data(), ids.size(), true), s);
    EXPECT_EQ(ids[0], byte_token(static_cast<uint8_t>(s[0]))) << s;
  }
  // Random bytes: never a failure, always the same bytes back.
  std::mt19937 rng(12);
  for (int n = 0; n < 300; ++n) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    ids = Enc(*t, s, false, true);
    EXPECT_EQ(t->Decode(ids.data(), ids.size(), true), s);
  }
}

// The two ways of picking the next merge (a scan for short words, a heap for long
// ones) give the same ids, on words of every length around the switch.
TEST(TokenizerBpe, ScanAndHeapMergeAlike) {
  std::unique_ptr<GgufFile> g;
  ASSERT_TRUE(GgufFile::Open(fixture("tokenizer/llama3-vocab.gguf"), &g).ok());
  VocabSpec v;
  ASSERT_TRUE(VocabFromGguf(*g, &v).ok());
  TokenLookup lookup;
  lookup.Build(&v.tokens);
  std::unique_ptr<bpe::BpeTokenizer> bpe;
  ASSERT_TRUE(bpe::BpeTokenizer::Create(&lookup, v.merges, v.pre, &bpe).ok());
  const std::string alphabet = "etaoinshrdlucmfwypvbgkqjxz";
  std::mt19937 rng(7);
  for (int n = 1; n <= 300; n += 1 + n / 16) {
    std::string word(n, 'a');
    for (char& c : word) c = alphabet[std::min<size_t>(rng() % 40, alphabet.size() - 1)];  // skewed: realistic pairs
    std::vector<int32_t> scan, heap;
    bpe->EncodeWord(word, bpe::BpeTokenizer::MergeMethod::kScan, &scan);
    bpe->EncodeWord(word, bpe::BpeTokenizer::MergeMethod::kHeap, &heap);
    EXPECT_EQ(scan, heap) << word;
    std::string back;
    for (int32_t id : scan) bpe::AppendByteDecoded(v.tokens[id], &back);
    EXPECT_EQ(back, word);
  }
}

// One word of 200000 letters (the pre-tokenizer cannot cut it), and long runs of spaces,
// punctuation and newlines: they encode (in linear time) and decode back.
TEST(TokenizerBpe, VeryLongWord) {
  std::unique_ptr<Tokenizer> t = LoadVocab("qwen3");
  ASSERT_TRUE(t);
  std::string text;
  while (text.size() < 200000) text += "pneumonoultramicroscopicsilicovolcanoconiosis";
  std::vector<int32_t> ids = Enc(*t, text, false, false);
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_EQ(t->Decode(ids.data(), ids.size(), true), text);
  // Long runs the regexes backtrack over (\s+(?!\S)) or repeat ([^\s\p{L}\p{N}]+).
  for (const std::string& run : {std::string(200000, ' ') + "x", std::string(200000, '!'), std::string(100000, '\n')}) {
    ids = Enc(*t, run, false, false);
    EXPECT_EQ(t->Decode(ids.data(), ids.size(), true), run);
  }
}

// ---- malformed vocabularies -------------------------------------------------------

// A tiny byte-level vocabulary: the 256 byte tokens, "ab", "abc" and one control token.
VocabSpec TinyBpe() {
  VocabSpec v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  for (int b = 0; b < 256; ++b) v.tokens.emplace_back(bpe::ByteToUnicode(static_cast<uint8_t>(b)));
  v.tokens.push_back("ab");
  v.tokens.push_back("abc");
  v.tokens.push_back("<|end|>");
  v.types.assign(v.tokens.size(), 1);
  v.types.back() = 3;
  v.merges = {"a b", "ab c"};
  v.bos_id = v.eos_id = v.unk_id = -1;
  v.add_bos = false;
  v.add_space_prefix = false;
  return v;
}

TEST(TokenizerBpe, TinyVocabularyMerges) {
  std::unique_ptr<Tokenizer> t;
  Status st = Tokenizer::FromVocab(TinyBpe(), &t);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Enc(*t, "abc", false, false), std::vector<int32_t>{257});
  EXPECT_EQ(Enc(*t, "abab", false, false), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ(Enc(*t, "cab", false, false), (std::vector<int32_t>{'c', 256}));
  EXPECT_EQ(Enc(*t, "ab<|end|>", false, true), (std::vector<int32_t>{256, 258}));
  EXPECT_EQ(t->eot_id(), 258);  // "<|end|>" by its text
}

TEST(TokenizerBpe, MalformedVocabulariesRejected) {
  std::unique_ptr<Tokenizer> t;
  auto expect_error = [&](const VocabSpec& v, Code code, const std::string& needle) {
    Status st = Tokenizer::FromVocab(v, &t);
    EXPECT_EQ(st.code(), code) << st.ToString();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find('\n'), std::string::npos) << "one line: " << st.message();
  };
  VocabSpec v = TinyBpe();
  v.merges.clear();
  expect_error(v, Code::kBadFormat, "no merges");
  v = TinyBpe();
  v.merges.push_back("x zz");
  expect_error(v, Code::kBadFormat, "'zz', which is not in the vocabulary");
  v = TinyBpe();
  v.merges.push_back("abc");
  expect_error(v, Code::kBadFormat, "not two tokens");
  v = TinyBpe();
  v.merges.push_back("b c");  // "bc" is not a token
  expect_error(v, Code::kBadFormat, "makes 'bc'");
  v = TinyBpe();
  v.pre = "no-such-pre";
  expect_error(v, Code::kInvalidArgument, "unknown pre-tokenizer 'no-such-pre'");
  v = TinyBpe();
  v.tokens[0] = "\x01";  // byte 0x00's spelling missing
  expect_error(v, Code::kBadFormat, "no token for byte 0x00");
}

// The same through GGUF keys: a missing merges key and merges that are not strings.
TEST(TokenizerBpe, MalformedGgufVocabulariesRejected) {
  const VocabSpec v = TinyBpe();
  auto write = [&](bool with_merges, bool merges_as_ints, const char* pre) {
    GgufWriter w;
    w.SetString("general.architecture", "llama");
    w.SetString("tokenizer.ggml.model", "gpt2");
    w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
    w.SetI32Array("tokenizer.ggml.token_type", v.types);
    if (pre) w.SetString("tokenizer.ggml.pre", pre);
    if (with_merges && merges_as_ints) w.SetI32Array("tokenizer.ggml.merges", {1, 2});
    if (with_merges && !merges_as_ints) w.SetStringArray("tokenizer.ggml.merges", v.merges);
    return w.Serialize();
  };
  auto load = [&](const std::vector<uint8_t>& bytes, std::unique_ptr<Tokenizer>* t) {
    std::unique_ptr<GgufFile> g;
    Status st = GgufFile::FromMemory(bytes.data(), bytes.size(), "bpe.gguf", &g);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return st.ok() ? Tokenizer::FromGguf(*g, t) : st;
  };
  std::unique_ptr<Tokenizer> t;
  Status st = load(write(true, false, "gpt-2"), &t);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Enc(*t, "abc", false, false), std::vector<int32_t>{257});
  EXPECT_FALSE(t->add_bos());  // gpt-2's default without add_bos_token

  st = load(write(false, false, "gpt-2"), &t);
  EXPECT_EQ(st.code(), Code::kBadFormat);
  EXPECT_NE(st.message().find("tokenizer.ggml.merges"), std::string::npos) << st.message();
  st = load(write(true, true, "gpt-2"), &t);
  EXPECT_EQ(st.code(), Code::kBadFormat);
  EXPECT_NE(st.message().find("tokenizer.ggml.merges"), std::string::npos) << st.message();
  st = load(write(true, false, "llama-4000"), &t);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("'llama-4000'"), std::string::npos) << st.message();
  st = load(write(true, false, nullptr), &t);  // no pre: "default", as llama.cpp
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// llama.cpp's detokenizer clean-up, pass by pass.
TEST(TokenizerBpe, CleanUpSpaces) {
  auto clean = [](std::string s) {
    Tokenizer::CleanUpSpaces(&s);
    return s;
  };
  EXPECT_EQ(clean("a , b . c ! d ?"), "a, b. c! d?");
  EXPECT_EQ(clean("it 's I 'm we 're they 've"), "it's I'm we're they've");
  EXPECT_EQ(clean("don 't I 'd we 'll"), "don 't I 'd we 'll");
  EXPECT_EQ(clean("a ' b"), "a'b");
  EXPECT_EQ(clean("a ' ' b"), "a'' b");  // the second ' no longer follows a space
  EXPECT_EQ(clean(" ."), ".");
  EXPECT_EQ(clean(""), "");
}

TEST(TokenizerBpe, PreTokenizerTable) {
  for (std::string_view name : bpe::PreTokenizer::KnownNames()) {
    std::unique_ptr<bpe::PreTokenizer> p;
    ASSERT_TRUE(bpe::PreTokenizer::Create(name, &p).ok()) << name;
    std::vector<std::string_view> words;
    const std::string text = "Hello world's 12345 \xe4\xbd\xa0\xe5\xa5\xbd!!  \n\n x\xff";
    p->Split(text, &words);
    std::string joined;
    for (std::string_view w : words) joined += w;
    EXPECT_EQ(joined, text) << name;
  }
  std::unique_ptr<bpe::PreTokenizer> p;
  ASSERT_TRUE(bpe::PreTokenizer::Create("llama-bpe", &p).ok());
  std::vector<std::string_view> words;
  p->Split("I'm 1234567 ok  \n", &words);
  EXPECT_EQ(words, (std::vector<std::string_view>{"I", "'m", " ", "123", "456", "7", " ok", "  \n"}));
}

}  // namespace
}  // namespace ember
