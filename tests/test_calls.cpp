// Function calling: the library JSON reader/writer, the function registry and its
// error paths, the call automaton (every state and every token class on a tiny
// hand-made vocabulary; octopus-tiny's vocabulary against all expected calls),
// parsing of good and bad calls, early stopping (nothing is evaluated after the
// end token), the C API, and accuracy on a sample of octopus-tiny's held-out
// queries. EMBER_TEST_QUICK=1 or a cross build (tests under qemu) shrinks the sample.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"
#include "ember/ember.h"
#include "engine/calls/call.h"
#include "engine/model/context.h"
#include "engine/calls/functions.h"
#include "engine/model/model.h"
#include "support/fixtures.h"
#include "support/json.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

using testing::fixture;

// A smaller sample under emulation: EMBER_TEST_QUICK=1, or any cross build (its
// tests run under qemu, ~20x slower).
bool quick() {
#ifdef EMBER_TEST_EMULATOR
  return true;
#else
  const char* q = std::getenv("EMBER_TEST_QUICK");
  return q && *q && std::string(q) != "0";
#endif
}

const char* kOctopus = "models/octopus-tiny/octopus-tiny.gguf";
const char* kFunctionsJson = "models/octopus-tiny/functions.json";
const char* kQueries = "models/octopus-tiny/test_queries.jsonl";

// ==== core/json ======================================================================

TEST(Json, ParsesEveryKind) {
  Json v;
  Status s = ParseJson(R"( {"a": [1, -2.5e1, true, false, null], "b": {"c": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"},
                            "big": 12345678901234567890, "i": -9007199254740993, "z": 1.0} )",
                       "t.json", &v);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(v.is_object());
  const Json* a = JsonFind(v, "a");
  ASSERT_TRUE(a && a->is_array());
  ASSERT_EQ(a->size(), 5u);
  int64_t i = 0;
  EXPECT_TRUE(JsonInt64((*a)[0], &i));
  EXPECT_EQ(i, 1);
  EXPECT_FALSE(JsonInt64((*a)[1], &i));
  EXPECT_DOUBLE_EQ((*a)[1].get<double>(), -25.0);
  EXPECT_TRUE((*a)[2].get<bool>());
  EXPECT_FALSE((*a)[3].get<bool>());
  EXPECT_TRUE((*a)[4].is_null());
  EXPECT_EQ(JsonFind(*JsonFind(v, "b"), "c")->get<std::string>(), "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE(JsonFind(v, "big")->is_number_unsigned());
  EXPECT_FALSE(JsonInt64(*JsonFind(v, "big"), &i));  // does not fit int64
  ASSERT_TRUE(JsonInt64(*JsonFind(v, "i"), &i));
  EXPECT_EQ(i, -9007199254740993LL);                // exact, not through a double
  EXPECT_FALSE(JsonInt64(*JsonFind(v, "z"), &i));  // 1.0 is not an integer literal
  EXPECT_EQ(v.begin().key(), "a");                  // text order kept
  EXPECT_EQ(JsonFind(v, "missing"), nullptr);
  EXPECT_EQ(JsonFind(*a, "a"), nullptr);  // not an object
}

TEST(Json, ErrorsNameOffsetLineAndColumn) {
  struct Case {
    const char* text;
    const char* needle;
  } cases[] = {
      {"", "offset 0 (line 1, column 1): syntax error while parsing value - unexpected end of input"},
      {"{\"a\" 1}", "offset 5 (line 1, column 6): syntax error while parsing object separator"},
      {"{\n  \"a\": 1,\n}", "line 3, column 1): syntax error while parsing object key - unexpected '}'"},
      {"[1, 2,]", "offset 6"},
      {"[1 2]", "expected ']'"},
      {"{\"a\": 1} x", "offset 9 (line 1, column 10): syntax error while parsing value - invalid literal"},
      {"{\"a\": 1} x", "expected end of input"},
      {"01", "offset 1 (line 1, column 2): syntax error while parsing value - unexpected number literal; "
             "expected end of input"},  // a leading zero
      {"1.", "expected digit after '.'"},
      {"1e", "expected '+', '-', or digit after exponent"},
      {"-", "expected digit after '-'"},
      {"1e999", "offset 0 (line 1, column 1): number overflow parsing '1e999'"},
      {"[1,\n 1e999 ]", "offset 5 (line 2, column 2): number overflow parsing '1e999'"},
      {"NaN", "invalid literal; last read: 'N'"},
      {"'a'", "invalid literal; last read: '''"},
      {"\"abc", "missing closing quote"},
      {"\"a\tb\"", "control character U+0009 (HT) must be escaped"},
      {"\"\\x\"", "forbidden character after backslash"},
      {"\"\\u12g4\"", "'\\u' must be followed by 4 hex digits"},
      {"\"\\ud800\"", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {"\"\\udc00\"", "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"},
      {"\"\\ud800\\u0041\"", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      // The byte is quoted as text: the message stays valid UTF-8.
      {"\"\xff\"", "offset 1 (line 1, column 2): syntax error while parsing value - invalid string: ill-formed "
                   "UTF-8 byte; last read: '\"\\xFF'"},
      {"\"\xc0\xaf\"", "ill-formed UTF-8 byte"},      // overlong '/'
      {"\"\xed\xa0\x80\"", "ill-formed UTF-8 byte"},  // encoded surrogate
      {"{\"k\": 1, \"k\": 2}", "offset 9 (line 1, column 10): duplicate key \"k\""},
      {"{\"a\": {\"x\\\"\": 1,\n \"x\\\"\": 2}}", "offset 18 (line 2, column 2): duplicate key \"x\"\""},
      {"tru", "invalid literal"},
      {"nul", "invalid literal"},
  };
  for (const Case& c : cases) {
    Json v = "unchanged";
    Status s = ParseJson(c.text, "t.json", &v);
    EXPECT_EQ(s.code(), Code::kBadFormat) << c.text;
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << c.text << " -> " << s.message();
    EXPECT_EQ(s.message().rfind("t.json: ", 0), 0u) << s.message();
    EXPECT_EQ(v, "unchanged") << "output touched on error";
  }
  // The same key in different objects is fine.
  Json v;
  EXPECT_TRUE(ParseJson(R"({"k": {"k": 1}, "j": [{"k": 2}, {"k": 3}]})", "", &v).ok());
  EXPECT_EQ(ParseJson("[", "", &v).message().rfind("JSON: offset 1", 0), 0u);  // "" names it JSON
}

TEST(Json, DepthLimit) {
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  Json v;
  EXPECT_TRUE(ParseJson(ok, "", &v).ok());
  Status s = ParseJson(deep, "", &v);
  EXPECT_EQ(s.code(), Code::kBadFormat);
  EXPECT_NE(s.message().find("offset 64 (line 1, column 65): nesting deeper than 64"), std::string::npos)
      << s.message();
  // Hostile depth: an error, not a stack overflow.
  EXPECT_FALSE(ParseJson(std::string(1000000, '['), "", &v).ok());
  EXPECT_FALSE(ParseJson("[{\"a\": [1]}]", "", &v, 2).ok());
  EXPECT_TRUE(ParseJson("[{\"a\": 1}]", "", &v, 2).ok());
}

// Whatever the bytes, ParseJson returns a Status: no nlohmann exception escapes.
TEST(Json, MangledInputNeverThrows) {
  const std::string doc = R"({"functions": [{"name": "f\u00e9", "parameters": [{"name": "x", "type": "int"}],)"
                          R"( "token_id": 4}], "n": [-1.5e3, 0, 18446744073709551615, true, null]})";
  std::mt19937 rng(3);
  int failed = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string t = doc.substr(0, rng() % (doc.size() + 1));
    for (int k = rng() % 3; k > 0 && !t.empty(); --k) t[rng() % t.size()] = static_cast<char>(rng());
    Json v;
    Status s;
    EXPECT_NO_THROW(s = ParseJson(t, "m.json", &v)) << t;
    if (!s.ok()) {
      ++failed;
      EXPECT_EQ(s.code(), Code::kBadFormat) << t;
      EXPECT_EQ(s.message().rfind("m.json: offset ", 0), 0u) << s.message();
    }
  }
  EXPECT_GT(failed, 2900);  // nearly every prefix of the document is incomplete
}

TEST(Json, WriterEscapesAndRoundTrips) {
  Json o = Json::object();
  o["s"] = "q\"b\\n\n\x01\xc3\xa9";
  o["bad"] = "a\xff";  // invalid UTF-8 -> U+FFFD
  o["i"] = int64_t{-42};
  o["d"] = 0.1;
  o["inf"] = INFINITY;
  o["a"] = Json::array({true, nullptr});
  o["i"] = 7;  // replaces, keeps the position
  const std::string text = WriteJson(o);
  EXPECT_EQ(text,
            "{\"s\": \"q\\\"b\\\\n\\n\\u0001\xc3\xa9\", \"bad\": \"a\xef\xbf\xbd\", \"i\": 7, \"d\": 0.1, "
            "\"inf\": null, \"a\": [true, null]}");
  Json back;
  ASSERT_TRUE(ParseJson(text, "", &back).ok());
  EXPECT_EQ(JsonFind(back, "s")->get<std::string>(), "q\"b\\n\n\x01\xc3\xa9");
  EXPECT_EQ(JsonFind(back, "i")->get<int64_t>(), 7);
  EXPECT_DOUBLE_EQ(JsonFind(back, "d")->get<double>(), 0.1);
  EXPECT_EQ(JsonQuote("x"), "\"x\"");
  // Numbers as the library always wrote them (Json::dump would write 1.0).
  EXPECT_EQ(WriteJson(Json::array({1.0, 1e-7, -0.5, 1e21, uint64_t{18446744073709551615u}, int64_t{-1}})),
            "[1, 1e-07, -0.5, 1e+21, 18446744073709551615, -1]");
  EXPECT_EQ(WriteJson(Json::object()), "{}");
  EXPECT_EQ(WriteJson(Json::array()), "[]");
}

// ==== a tiny hand-made vocabulary ======================================================

// Every token class the automaton distinguishes: control/unknown, functional,
// end, no-function, unregistered user-defined, whitespace-only (incl. a control
// character), structural characters, tokens spanning a quote or a bracket, digits,
// sign, dot, letters, backslash.
const std::vector<std::pair<std::string, TokenType>> kTinyVocab = {
    {"<unk>", TokenType::kUnknown},      // 0
    {"<s>", TokenType::kControl},        // 1
    {"</s>", TokenType::kControl},       // 2
    {"<f0>", TokenType::kUserDefined},   // 3  zero()
    {"<f1>", TokenType::kUserDefined},   // 4  one(s: str)
    {"<f2>", TokenType::kUserDefined},   // 5  two(s: str, n: int)
    {"<f3>", TokenType::kUserDefined},   // 6  num(x: float)
    {"<f4>", TokenType::kUserDefined},   // 7  pair(a: str, b: str)
    {"<end>", TokenType::kUserDefined},  // 8
    {"<none>", TokenType::kUserDefined}, // 9  no function
    {"<x>", TokenType::kUserDefined},    // 10 not registered
    {"\xe2\x96\x81", TokenType::kNormal},                      // 11 " "
    {"\xe2\x96\x81\xe2\x96\x81", TokenType::kNormal},          // 12 "  "
    {"\n", TokenType::kNormal},                                // 13
    {"(", TokenType::kNormal},                                 // 14
    {")", TokenType::kNormal},                                 // 15
    {"'", TokenType::kNormal},                                 // 16
    {",", TokenType::kNormal},                                 // 17
    {"('", TokenType::kNormal},                                // 18
    {"')", TokenType::kNormal},                                // 19
    {"',", TokenType::kNormal},                                // 20
    {"\xe2\x96\x81'", TokenType::kNormal},                     // 21 " '"
    {"',\xe2\x96\x81'", TokenType::kNormal},                   // 22 "', '"
    {"a", TokenType::kNormal},                                 // 23
    {"\xe2\x96\x81" "a", TokenType::kNormal},                  // 24 " a"
    {"a'", TokenType::kNormal},                                // 25
    {"1", TokenType::kNormal},                                 // 26
    {"1)", TokenType::kNormal},                                // 27
    {"-", TokenType::kNormal},                                 // 28
    {".", TokenType::kNormal},                                 // 29
    {"\\", TokenType::kNormal},                                // 30
    {",\xe2\x96\x81", TokenType::kNormal},                     // 31 ", "
    {").", TokenType::kNormal},                                // 32
    {"()", TokenType::kNormal},                                // 33
};

const char* kTinyFunctions = R"({
  "functions": [
    {"token": "<f0>", "name": "zero", "parameters": []},
    {"token": "<f1>", "name": "one", "parameters": [{"name": "s", "type": "str"}]},
    {"token": "<f2>", "name": "two", "parameters": [{"name": "s", "type": "str"}, {"name": "n", "type": "int"}]},
    {"token": "<f3>", "name": "num", "parameters": [{"name": "x", "type": "float"}]},
    {"token": "<f4>", "name": "pair", "parameters": [{"name": "a", "type": "str"}, {"name": "b", "type": "string"}]}
  ],
  "end_token": "<end>",
  "no_function": {"token": "<none>", "name": "nothing"}
})";

std::unique_ptr<Tokenizer> tiny_tokenizer() {
  VocabSpec v;
  for (const auto& [piece, type] : kTinyVocab) {
    v.tokens.push_back(piece);
    v.types.push_back(static_cast<int32_t>(type));
    v.scores.push_back(0);
  }
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.byte_fallback = false;
  v.add_space_prefix = false;
  std::unique_ptr<Tokenizer> t;
  Status s = Tokenizer::FromVocab(v, &t);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return t;
}

struct Tiny {
  std::unique_ptr<Tokenizer> tok = tiny_tokenizer();
  FunctionRegistry reg;
  CallAutomaton a;
  Tiny() {
    Status s = FunctionRegistry::Parse(kTinyFunctions, "tiny.json", *tok, &reg);
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = CallAutomaton::Build(reg, *tok, &a);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  int32_t id(const std::string& piece) const {
    int32_t i = tok->PieceToId(piece);
    EXPECT_GE(i, 0) << piece;
    return i;
  }
};

// Readable names of the tiny tokens for the table below ("_" for the space piece).
std::string tiny_name(int32_t id) {
  std::string p = kTinyVocab[id].first;
  std::string out;
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, 3, "\xe2\x96\x81") == 0) {
      out += "_";
      i += 3;
    } else if (p[i] == '\n') {
      out += "\\n";
      ++i;
    } else {
      out += p[i++];
    }
  }
  return out;
}

TEST(CallAutomaton, TinyVocabularyEveryStateEveryToken) {
  Tiny t;
  ASSERT_EQ(t.tok->n_vocab(), static_cast<int32_t>(kTinyVocab.size()));
  // All text tokens except the one holding a control character, for the states
  // where any byte >= 0x20 goes (after a backslash).
  const std::string kAnyText =
      "_ __ ( ) ' , (' ') ', _' ',_' a _a a' 1 1) - . \\ ,_ ). ()";
  // Allowed tokens of every state, by state name (remaining parameter types:local).
  const std::map<std::string, std::string> expected = {
      {"-:start", "<f0> <f1> <f2> <f3> <f4> <none> _ __ \\n"},
      {"-:start+ws", "<f0> <f1> <f2> <f3> <f4> <none>"},
      {"-:closed", "<end>"},
      {"-:done", ""},  // everything: unconstrained (AllowedTokens is empty)
      {"-:open", "( ()"},
      {"-:expect-close", ")"},
      {"str:open", "( ('"},
      {"str:value-start", "' ') ', ',_'"},
      {"str:in-string", "_ __ ( ) ' , (' ') _' a _a a' 1 1) - . \\ ,_ ). ()"},
      {"str:in-escape", kAnyText},
      {"str:after-value", ")"},
      {"str:after-comma", "_ ' ') ', _' ',_'"},
      {"str,int:open", "( ('"},
      {"str,int:value-start", "' ') ', ',_'"},
      {"str,int:in-string", "_ __ ( ) ' , (' ', _' a _a a' 1 1) - . \\ ,_ ). ()"},
      {"str,int:in-escape", kAnyText},
      {"str,int:after-value", ", ,_"},
      {"int:after-comma", "_ 1 1) -"},
      {"int:value-start", "1 1) -"},
      {"int:num-sign", "1 1)"},
      {"int:num-int", ") 1 1)"},
      {"float:open", "("},
      {"float:value-start", "1 1) -"},
      {"float:num-sign", "1 1)"},
      {"float:num-int", ") 1 1) ."},
      {"float:num-dot", "1 1)"},
      {"float:num-frac", ") 1 1)"},
      {"str,str:open", "( ('"},
      {"str,str:value-start", "' ') ', ',_'"},
      {"str,str:in-string", "_ __ ( ) ' , (' ', _' ',_' a _a a' 1 1) - . \\ ,_ ). ()"},
      {"str,str:in-escape", kAnyText},
      {"str,str:after-value", ", ,_"},
  };
  std::set<std::string> seen;
  for (CallAutomaton::State s = 0; s < t.a.n_states(); ++s) {
    const std::string name = t.a.StateName(s);
    EXPECT_TRUE(seen.insert(name).second) << "two states named " << name;
    auto it = expected.find(name);
    if (it == expected.end()) {
      ADD_FAILURE() << "unexpected state " << name;
      continue;
    }
    std::set<std::string> want;
    {
      std::string w;
      for (size_t i = 0; i <= it->second.size(); ++i) {
        if (i == it->second.size() || it->second[i] == ' ') {
          if (!w.empty()) want.insert(w);
          w.clear();
        } else {
          w += it->second[i];
        }
      }
    }
    std::set<std::string> got;
    for (int32_t id : t.a.AllowedTokens(s)) got.insert(tiny_name(id));
    EXPECT_EQ(got, want) << "state " << name;
    // Mask, Allowed and Next agree with the list, for every token.
    for (int32_t id = 0; id < t.tok->n_vocab(); ++id) {
      const bool listed = got.count(tiny_name(id)) > 0;
      const bool done = s == t.a.done();
      EXPECT_EQ(t.a.Allowed(s, id), listed || done) << name << " " << tiny_name(id);
      EXPECT_EQ(t.a.Next(s, id) != CallAutomaton::kDead, listed || done) << name << " " << tiny_name(id);
      std::vector<float> logits(t.tok->n_vocab(), 1.0f);
      t.a.Mask(s, logits.data());
      EXPECT_EQ(std::isinf(logits[id]), !(listed || done)) << name << " " << tiny_name(id);
    }
  }
  EXPECT_EQ(seen.size(), expected.size()) << "states missing from the automaton";
  EXPECT_EQ(t.a.StateName(t.a.start()), "-:start");
  EXPECT_EQ(t.a.StateName(t.a.done()), "-:done");
}

// Walks ids through the automaton from the start; the state names visited.
std::vector<std::string> walk(const CallAutomaton& a, const std::vector<int32_t>& ids) {
  std::vector<std::string> names;
  CallAutomaton::State s = a.start();
  for (int32_t id : ids) {
    s = a.Next(s, id);
    names.push_back(a.StateName(s));
    if (s == CallAutomaton::kDead) break;
  }
  return names;
}

TEST(CallAutomaton, TokensSpanningQuotesMoveAcrossArguments) {
  Tiny t;
  auto ids = [&](std::initializer_list<const char*> pieces) {
    std::vector<int32_t> v;
    for (const char* p : pieces) v.push_back(t.id(p));
    return v;
  };
  // two('a', 1): "('" opens the string, "'," closes it and moves to the int.
  EXPECT_EQ(walk(t.a, ids({"\xe2\x96\x81", "<f2>", "('", "a", "',", "\xe2\x96\x81", "1)", "<end>"})),
            (std::vector<std::string>{"-:start+ws", "str,int:open", "str,int:in-string", "str,int:in-string",
                                      "int:after-comma", "int:value-start", "-:closed", "-:done"}));
  // pair('a', ' a'): "',▁'" closes the first string and opens the second.
  EXPECT_EQ(walk(t.a, ids({"<f4>", "('", "a", "',\xe2\x96\x81'", "\xe2\x96\x81" "a", "')", "<end>"})),
            (std::vector<std::string>{"str,str:open", "str,str:in-string", "str,str:in-string", "str:in-string",
                                      "str:in-string", "-:closed", "-:done"}));
  // one('\'') with an escaped quote; num(-1.1); zero(); no function.
  EXPECT_EQ(walk(t.a, ids({"<f1>", "('", "\\", "'", "')", "<end>"})).back(), "-:done");
  EXPECT_EQ(walk(t.a, ids({"<f3>", "(", "-", "1", ".", "1)", "<end>"})).back(), "-:done");
  EXPECT_EQ(walk(t.a, ids({"<f0>", "()", "<end>"})).back(), "-:done");
  EXPECT_EQ(walk(t.a, ids({"<none>", "<end>"})).back(), "-:done");
  // Done: anything goes (generation without early stopping continues freely).
  EXPECT_EQ(walk(t.a, ids({"<none>", "<end>", "\n", "</s>", "<x>"})).back(), "-:done");
  // Dead ends: a second leading space, ')' inside two(), a string for an int, '.' in an int.
  EXPECT_EQ(walk(t.a, ids({"\xe2\x96\x81", "\xe2\x96\x81"})).back(), "dead");
  EXPECT_EQ(walk(t.a, ids({"<f2>", "('", "a", "')"})).back(), "dead");
  EXPECT_EQ(walk(t.a, ids({"<f2>", "('", "a", "',", "'"})).back(), "dead");
  EXPECT_EQ(walk(t.a, ids({"<f2>", "('", "a", "',", "1", "."})).back(), "dead");
  EXPECT_EQ(walk(t.a, ids({"<x>"})).back(), "dead");
  EXPECT_EQ(walk(t.a, ids({"<end>"})).back(), "dead");
  EXPECT_EQ(t.a.Next(t.a.start(), -1), CallAutomaton::kDead);
  EXPECT_EQ(t.a.Next(t.a.start(), 1000), CallAutomaton::kDead);
  EXPECT_TRUE(t.a.IsWhitespaceToken(t.id("\n")));
  EXPECT_FALSE(t.a.IsWhitespaceToken(t.id("a")));
}

TEST(CallAutomaton, UnspellableCallIsAnError) {
  // A vocabulary without ')' cannot close a call of one(s).
  VocabSpec v;
  for (const char* p : {"<unk>", "<s>", "</s>", "<f1>", "<end>", "(", "'", "a"}) v.tokens.push_back(p);
  v.types = {2, 3, 3, 4, 4, 1, 1, 1};
  v.byte_fallback = false;
  v.add_space_prefix = false;
  std::unique_ptr<Tokenizer> tok;
  ASSERT_TRUE(Tokenizer::FromVocab(v, &tok).ok());
  FunctionRegistry reg;
  ASSERT_TRUE(FunctionRegistry::Parse(
                  R"({"functions": [{"token": "<f1>", "name": "one", "parameters": [{"name": "s", "type": "str"}]}],
                      "end_token": "<end>"})",
                  "x", *tok, &reg)
                  .ok());
  CallAutomaton a;
  Status s = CallAutomaton::Build(reg, *tok, &a);
  EXPECT_EQ(s.code(), Code::kUnsupported);
  EXPECT_NE(s.message().find("'one' (<f1>)"), std::string::npos) << s.message();
}

TEST(CallConstraint, MasksAndCountsChangedGreedyChoices) {
  Tiny t;
  CallConstraint c(t.a);
  const int32_t nv = t.tok->n_vocab();
  std::vector<int32_t> gen;
  auto step = [&](int32_t favourite) {
    std::vector<float> logits(nv, 0.0f);
    logits[favourite] = 5.0f;
    c(logits.data(), nv, gen.data(), gen.size());
    const int32_t pick = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    gen.push_back(pick);
    return pick;
  };
  EXPECT_EQ(step(t.id("<f1>")), t.id("<f1>"));  // allowed: unchanged
  EXPECT_EQ(c.n_changed(), 0);
  const int32_t p = step(t.id("a"));            // 'a' cannot follow <f1>: masked
  EXPECT_NE(p, t.id("a"));
  EXPECT_TRUE(t.a.Allowed(t.a.Next(t.a.start(), t.id("<f1>")), p));
  EXPECT_EQ(c.n_changed(), 1);
  EXPECT_EQ(c.n_steps(), 2);
}

TEST(CallConstraint, TokenBudgetForcesACompleteCall) {
  Tiny t;
  // Distances to the end: start -> <none> -> <end> is 2 tokens; the longest is a
  // call of pair() from the start: <f4> (' ',_' ') <end> = 5.
  EXPECT_EQ(t.a.Distance(t.a.done()), 0);
  EXPECT_EQ(t.a.Distance(t.a.start()), 2);
  const CallAutomaton::State f4 = t.a.Next(t.a.start(), t.id("<f4>"));
  EXPECT_EQ(t.a.Distance(f4), 4);
  EXPECT_EQ(t.a.max_distance(), 4);  // from pair()'s "open" state: (' ',_' ') <end>
  const int32_t nv = t.tok->n_vocab();
  for (int32_t budget : {4, 5, 6, 9, 20}) {
    // A model that wants <f4>, then 'a' forever: the budget closes the strings in time.
    CallConstraint c(t.a, budget);
    std::vector<int32_t> gen;
    while (gen.empty() || gen.back() != t.id("<end>")) {
      ASSERT_LT(static_cast<int32_t>(gen.size()), budget) << "budget " << budget;
      std::vector<float> logits(nv, 0.0f);
      logits[t.id("a")] = 5.0f;
      logits[t.id("<f4>")] = 4.0f;
      c(logits.data(), nv, gen.data(), gen.size());
      gen.push_back(static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    }
    const ParsedCall p = ParseCall(t.reg, *t.tok, gen.data(), gen.size());
    std::string shown;
    for (int32_t id : gen) shown += tiny_name(id) + " ";
    EXPECT_TRUE(p.valid) << "budget " << budget << ": " << shown << p.error;
    // Too small a budget for pair(): the model's wish for <f4> is overridden by a
    // function that fits (every candidate within 4 tokens keeps its score 0).
    if (budget >= 6) {
      EXPECT_EQ(p.function, 4) << shown;
    }
  }
}

// ==== registry =========================================================================

TEST(FunctionRegistry, TinyRegistry) {
  Tiny t;
  ASSERT_EQ(t.reg.size(), 5u);
  EXPECT_EQ(t.reg.end_token_id(), t.id("<end>"));
  EXPECT_EQ(t.reg.no_function_token_id(), t.id("<none>"));
  EXPECT_EQ(t.reg.no_function_name(), "nothing");
  EXPECT_EQ(t.reg.functions()[2].name, "two");
  EXPECT_EQ(t.reg.functions()[2].params[1].type, ParamType::kInt);
  EXPECT_EQ(t.reg.functions()[4].params[1].type, ParamType::kString);  // "string" alias
  EXPECT_EQ(t.reg.IndexOfToken(t.id("<f3>")), 3);
  EXPECT_EQ(t.reg.IndexOfToken(t.id("<x>")), -1);
  EXPECT_EQ(t.reg.IndexOfName("pair"), 4);
  // A bare array of functions, default end token <nexa_end> (absent here: NotFound).
  FunctionRegistry r;
  Status s = FunctionRegistry::Parse(R"([{"token": "<f0>", "name": "zero", "parameters": []}])", "a.json", *t.tok, &r);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("'<nexa_end>'"), std::string::npos) << s.message();
  // End-token override.
  EXPECT_TRUE(t.reg.SetEndToken("<x>", *t.tok).ok());
  EXPECT_EQ(t.reg.end_token_id(), t.id("<x>"));
  EXPECT_EQ(t.reg.SetEndToken("<f1>", *t.tok).code(), Code::kInvalidArgument);
  EXPECT_EQ(t.reg.SetEndToken("<nope>", *t.tok).code(), Code::kNotFound);
}

TEST(FunctionRegistry, ErrorPaths) {
  std::unique_ptr<Tokenizer> tok = tiny_tokenizer();
  struct Case {
    const char* json;
    Code code;
    const char* needle;
  } cases[] = {
      {"{\"functions\": [}", Code::kBadFormat, "bad.json: offset 15 (line 1, column 16)"},
      {"{}", Code::kBadFormat, "missing \"functions\""},
      {"{\"functions\": {}}", Code::kBadFormat, "expected an array of functions"},
      {"{\"functions\": [], \"end_token\": \"<end>\"}", Code::kBadFormat, "no functions"},
      {"{\"functions\": [1], \"end_token\": \"<end>\"}", Code::kBadFormat, "functions[0]: expected an object"},
      {"{\"functions\": [{\"token\": \"<f0>\", \"parameters\": []}], \"end_token\": \"<end>\"}", Code::kBadFormat,
       "functions[0]: missing \"name\""},
      {"{\"functions\": [{\"name\": \"z\", \"parameters\": []}], \"end_token\": \"<end>\"}", Code::kBadFormat,
       "functions[0] (z): missing \"token\""},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\"}], \"end_token\": \"<end>\"}", Code::kBadFormat,
       "functions[0] (z): missing \"parameters\""},
      {"{\"functions\": [{\"name\": 3, \"token\": \"<f0>\", \"parameters\": []}], \"end_token\": \"<end>\"}",
       Code::kBadFormat, "functions[0].name: expected a string"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": [{\"name\": \"p\"}]}], "
       "\"end_token\": \"<end>\"}",
       Code::kBadFormat, "parameters[0]: missing \"type\""},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": [{\"name\": \"p\", \"type\": "
       "\"bool\"}]}], \"end_token\": \"<end>\"}",
       Code::kBadFormat, "unsupported type 'bool'"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": [{\"name\": \"p\", \"type\": "
       "\"str\"}, {\"name\": \"p\", \"type\": \"int\"}]}], \"end_token\": \"<end>\"}",
       Code::kBadFormat, "parameter 'p' appears twice"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<nexa_9>\", \"parameters\": []}], \"end_token\": \"<end>\"}",
       Code::kNotFound, "functions[0] (z).token: token '<nexa_9>' is not in the model's vocabulary"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": []}], \"end_token\": \"<stop>\"}",
       Code::kNotFound, "end_token: token '<stop>' is not in the model's vocabulary"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": []}, {\"name\": \"y\", \"token\": "
       "\"<f0>\", \"parameters\": []}], \"end_token\": \"<end>\"}",
       Code::kBadFormat, "token '<f0>' is already used by function 'z'"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": []}, {\"name\": \"z\", \"token\": "
       "\"<f1>\", \"parameters\": []}], \"end_token\": \"<end>\"}",
       Code::kBadFormat, "function name 'z' appears twice"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<end>\", \"parameters\": []}], \"end_token\": \"<end>\"}",
       Code::kBadFormat, "is the end token"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"token_id\": 4, \"parameters\": []}], "
       "\"end_token\": \"<end>\"}",
       Code::kBadFormat, "token '<f0>' has id 3 in the vocabulary but 4 in the file"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": []}], \"nexa_end\": \"<end>\", "
       "\"nexa_end_id\": 9}",
       Code::kBadFormat, "token '<end>' has id 8 in the vocabulary but 9 in the file"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"<f0>\", \"parameters\": []}], \"end_token\": \"<end>\", "
       "\"no_function\": {\"token\": \"<f0>\"}}",
       Code::kBadFormat, "no_function.token"},
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"\", \"parameters\": []}], \"end_token\": \"<end>\"}",
       Code::kBadFormat, "empty token text"},
      // A text that is not one token (two pieces) is not a functional token.
      {"{\"functions\": [{\"name\": \"z\", \"token\": \"aa\", \"parameters\": []}], \"end_token\": \"<end>\"}",
       Code::kNotFound, "token 'aa' is not in the model's vocabulary"},
  };
  for (const Case& c : cases) {
    FunctionRegistry r;
    Status s = FunctionRegistry::Parse(c.json, "bad.json", *tok, &r);
    EXPECT_EQ(s.code(), c.code) << c.json << " -> " << s.ToString();
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << c.json << " -> " << s.message();
    EXPECT_EQ(r.size(), 0u);
  }
  FunctionRegistry r;
  Status s = FunctionRegistry::FromFile("/nonexistent/functions.json", *tok, &r);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/functions.json"), std::string::npos);
}

// ==== parsing ==========================================================================

TEST(ParseCall, GoodCalls) {
  Tiny t;
  auto parse = [&](std::initializer_list<const char*> pieces) {
    std::vector<int32_t> v;
    for (const char* p : pieces) v.push_back(t.id(p));
    return ParseCall(t.reg, *t.tok, v.data(), v.size());
  };
  ParsedCall c = parse({"\xe2\x96\x81", "<f2>", "('", "a", "\xe2\x96\x81" "a", "',", "\xe2\x96\x81", "-", "1",
                        "1)", "<end>", "\n", "a"});
  ASSERT_TRUE(c.valid) << c.error;
  EXPECT_EQ(WriteJson(c.ToJson(t.reg)), R"({"function": "two", "arguments": {"s": "a a", "n": -11}, "token": "<f2>"})");
  c = parse({"<f4>", "('", "\\", "'", "\\", "\\", "',\xe2\x96\x81'", "')", "<end>"});
  ASSERT_TRUE(c.valid) << c.error;
  EXPECT_EQ(WriteJson(c.ArgumentsJson(t.reg)), R"({"a": "'\\", "b": ""})");
  c = parse({"<f3>", "(", "1", ".", "1", ")", "<end>"});
  ASSERT_TRUE(c.valid) << c.error;
  EXPECT_EQ(WriteJson(c.ArgumentsJson(t.reg)), R"({"x": 1.1})");
  c = parse({"<f3>", "(", "1", ")", "<end>"});  // an int literal is a fine float
  ASSERT_TRUE(c.valid) << c.error;
  c = parse({"<f0>", "()", "<end>"});
  ASSERT_TRUE(c.valid) << c.error;
  EXPECT_EQ(WriteJson(c.ToJson(t.reg)), R"({"function": "zero", "arguments": {}, "token": "<f0>"})");
  c = parse({"<none>", "<end>"});
  ASSERT_TRUE(c.valid) << c.error;
  EXPECT_TRUE(c.no_function);
  EXPECT_EQ(WriteJson(c.ToJson(t.reg)), R"({"function": null, "arguments": {}, "token": "<none>"})");
  // Other backslash pairs stay as written.
  c = parse({"<f1>", "('", "\\", "a", "')", "<end>"});
  ASSERT_TRUE(c.valid) << c.error;
  EXPECT_EQ(c.args[0].get<std::string>(), "\\a");
}

TEST(ParseCall, BadCallsAreReportedNeverThrown) {
  Tiny t;
  auto parse = [&](std::vector<int32_t> v) { return ParseCall(t.reg, *t.tok, v.data(), v.size()); };
  auto ids = [&](std::initializer_list<const char*> pieces) {
    std::vector<int32_t> v;
    for (const char* p : pieces) v.push_back(t.id(p));
    return v;
  };
  struct Case {
    std::vector<int32_t> ids;
    const char* needle;
    int32_t function;
  } cases[] = {
      {{}, "no functional token", -1},
      {ids({"\xe2\x96\x81"}), "no functional token", -1},
      {ids({"<end>"}), "end token came before", -1},
      {ids({"<x>", "()", "<end>"}), "'<x>' (id 10) is not a registered function", -1},
      {ids({"a", "<f1>"}), "expected a functional token, got 'a'", -1},
      {ids({"\xe2\x96\x81", "\xe2\x96\x81", "<f1>"}), "expected a functional token", -1},
      {{-5}, "out of range", -1},
      {ids({"<f1>"}), "missing '('", 1},
      {ids({"<f1>", "a", "<end>"}), "expected '(' after the functional token", 1},
      {ids({"<f1>", "('", "a", "<end>"}), "unterminated string", 1},
      {ids({"<f1>", "('", "a", "'", "<end>"}), "missing ')'", 1},
      {ids({"<f1>", "('", "a", "')", "."}), "unexpected text after ')'", 1},
      {ids({"<f1>", "('", "a", "')"}), "missing end token <end>", 1},
      {ids({"<f1>", "('", "a", "</s>"}), "unexpected special token '</s>'", 1},
      {ids({"<f1>", "('", "a", "',", "\xe2\x96\x81'", "a", "')", "<end>"}),
       "function 'one' takes 1 argument (s), got 2", 1},
      {ids({"<f2>", "('", "a", "')", "<end>"}), "function 'two' takes 2 arguments (s, n), got 1", 2},
      {ids({"<f2>", "('", "a", "',", "'", "a", "')", "<end>"}), "argument 2 (n) must be an int, got a string", 2},
      {ids({"<f2>", "('", "a", "',", "1", ".", "1)", "<end>"}), "argument 2 (n) must be an int, got 1.1", 2},
      {ids({"<f1>", "(", "1)", "<end>"}), "argument 1 (s) must be a quoted string, got 1", 1},
      {ids({"<f3>", "('", "')", "<end>"}), "must be a number, got a string", 3},
      {ids({"<f3>", "(", "-", ")", "<end>"}), "expected a digit", 3},
      {ids({"<f3>", "(", "1", ".", ")", "<end>"}), "expected a digit after '.'", 3},
      {ids({"<f1>", "(", "a", ")", "<end>"}), "expected an argument", 1},
      {ids({"<f1>", "('", "\n", "')", "<end>"}), "control character in a string", 1},
      {ids({"<f0>", "(", ",", ")", "<end>"}), "expected an argument", 0},
      {ids({"<none>", "a"}), "expected the end token after the no-function token", -1},
      {ids({"<none>"}), "missing end token", -1},
  };
  for (const Case& c : cases) {
    ParsedCall p = parse(c.ids);
    EXPECT_FALSE(p.valid) << c.needle;
    EXPECT_NE(p.error.find(c.needle), std::string::npos) << "want '" << c.needle << "', got '" << p.error << "'";
    EXPECT_EQ(p.function, c.function) << c.needle;
    EXPECT_TRUE(p.args.empty());
  }
  // An int that does not fit int64.
  std::vector<int32_t> big = ids({"<f2>", "('", "a", "',"});
  for (int i = 0; i < 25; ++i) big.push_back(t.id("1"));
  big.push_back(t.id(")"));
  big.push_back(t.id("<end>"));
  ParsedCall p = parse(big);
  EXPECT_FALSE(p.valid);
  EXPECT_NE(p.error.find("out of range"), std::string::npos) << p.error;
  // Invalid-call JSON carries the error and the output text.
  p = parse(ids({"<f2>", "('", "a", "')", "<end>"}));
  EXPECT_EQ(WriteJson(p.ToJson(t.reg, "<f2>('a')<end>")),
            R"({"function": "two", "error": "function 'two' takes 2 arguments (s, n), got 1", "output": "<f2>('a')<end>"})");
}

// Random walks through the automaton always parse as valid calls: the constraint
// and the parser describe the same language.
TEST(ParseCall, EveryAutomatonCompletionParses) {
  Tiny t;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<int32_t> ids;
    CallAutomaton::State s = t.a.start();
    while (s != t.a.done() && ids.size() < 200) {
      const auto& allowed = t.a.AllowedTokens(s);
      ASSERT_FALSE(allowed.empty()) << t.a.StateName(s);
      // Prefer closing tokens as the walk grows, so walks end.
      int32_t pick = allowed[rng() % allowed.size()];
      if (ids.size() > 8) {
        for (int32_t id : allowed)
          if (t.a.StateName(t.a.Next(s, id)) == "-:closed" || id == t.reg.end_token_id()) pick = id;
      }
      ids.push_back(pick);
      s = t.a.Next(s, pick);
    }
    ASSERT_EQ(s, t.a.done());
    ParsedCall p = ParseCall(t.reg, *t.tok, ids.data(), ids.size());
    std::string shown;
    for (int32_t id : ids) shown += tiny_name(id) + " ";
    EXPECT_TRUE(p.valid) << shown << ": " << p.error;
  }
}

// ==== octopus-tiny =====================================================================

// The call's arguments as the test reader's JSON: objects compare regardless of
// order, integers by value whatever their type.
testing::json arguments(const ParsedCall& c, const FunctionRegistry& reg) {
  return testing::json(c.ArgumentsJson(reg));
}

class Octopus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ModelParams mp;
    Status s = Model::Load(fixture(kOctopus), mp, &model_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = FunctionRegistry::FromModel(*model_, &reg_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = CallAutomaton::Build(reg_, model_->tokenizer(), &automaton_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ContextParams cp;
    cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
    cp.n_threads = 1;
    s = Context::Create(*model_, cp, &ctx_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    queries_ = testing::read_jsonl(fixture(kQueries));
  }
  static void TearDownTestSuite() {
    ctx_.reset();
    model_.reset();
  }
  std::vector<int32_t> prompt(const std::string& query) {
    std::string text;
    const GgufValue* t = model_->gguf().Find("ember.prompt_template");
    EXPECT_TRUE(t);
    EXPECT_TRUE(FillPromptTemplate(t ? t->str : "{query}", query, &text).ok());
    std::vector<int32_t> ids;
    EXPECT_TRUE(model_->tokenizer().Encode(text, true, true, &ids).ok());
    return ids;
  }
  static inline std::unique_ptr<Model> model_;
  static inline FunctionRegistry reg_;
  static inline CallAutomaton automaton_;
  static inline std::unique_ptr<Context> ctx_;
  static inline std::vector<testing::json> queries_;
};

TEST_F(Octopus, RegistryFromMetadataEqualsFunctionsJson) {
  FunctionRegistry file;
  Status s = FunctionRegistry::FromFile(fixture(kFunctionsJson), model_->tokenizer(), &file);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(reg_.size(), 24u);
  ASSERT_EQ(file.size(), 24u);
  EXPECT_EQ(reg_.end_token_id(), 36);
  EXPECT_EQ(reg_.end_token(), "<nexa_end>");
  const testing::json fns = testing::read_json(fixture(kFunctionsJson)).at("functions");
  for (size_t i = 0; i < 24; ++i) {
    const FunctionSpec& f = reg_.functions()[i];
    EXPECT_EQ(f.name, file.functions()[i].name);
    EXPECT_EQ(f.token, "<nexa_" + std::to_string(i) + ">");
    EXPECT_EQ(f.token_id, static_cast<int32_t>(4 + i));
    EXPECT_EQ(f.token_id, fns.at(i).at("token_id").get<int32_t>());
    EXPECT_EQ(f.params.size(), fns.at(i).at("parameters").size());
    EXPECT_EQ(f.description, fns.at(i).at("description").get<std::string>());
  }
  EXPECT_EQ(reg_.functions()[8].name, "set_temperature");
  EXPECT_EQ(reg_.functions()[8].params[1].type, ParamType::kInt);
}

TEST_F(Octopus, AutomatonAcceptsEveryExpectedCall) {
  // Four signatures, (str), (str, str), (int), (str, int), share 25 states.
  EXPECT_EQ(automaton_.n_states(), 25);
  const CallAutomaton::State s0 = automaton_.start();
  EXPECT_TRUE(automaton_.Allowed(s0, 1977));  // ▁
  EXPECT_FALSE(automaton_.Allowed(s0, 1));    // <eos>
  EXPECT_FALSE(automaton_.Allowed(s0, 36));   // <nexa_end>
  EXPECT_FALSE(automaton_.Allowed(s0, 28));   // <nexa_24>: reserved, not registered
  EXPECT_EQ(automaton_.AllowedTokens(automaton_.Next(s0, 1977)).size(), 24u);
  for (const testing::json& q : queries_) {
    const std::vector<int32_t> ids = q.at("expected_ids").get<std::vector<int32_t>>();
    const std::string expected = q.at("expected").get<std::string>();
    CallAutomaton::State s = s0;
    for (int32_t id : ids) {
      ASSERT_TRUE(automaton_.Allowed(s, id)) << expected << ": " << id << " in " << automaton_.StateName(s);
      s = automaton_.Next(s, id);
    }
    EXPECT_EQ(s, automaton_.done()) << expected;
    const ParsedCall p = ParseCall(reg_, model_->tokenizer(), ids.data(), ids.size());
    ASSERT_TRUE(p.valid) << expected << ": " << p.error;
    EXPECT_EQ(reg_.functions()[p.function].name, q.at("function").get<std::string>());
    EXPECT_EQ(arguments(p, reg_), q.at("args")) << WriteJson(p.ArgumentsJson(reg_));
  }
}

// Random walks through octopus-tiny's automaton (byte tokens, multi-character
// pieces and all) end in calls the parser accepts.
TEST_F(Octopus, RandomAutomatonWalksParse) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < (quick() ? 50 : 500); ++trial) {
    std::vector<int32_t> ids;
    CallAutomaton::State s = automaton_.start();
    while (s != automaton_.done()) {
      const auto& allowed = automaton_.AllowedTokens(s);
      ASSERT_FALSE(allowed.empty()) << automaton_.StateName(s);
      int32_t pick = allowed[rng() % allowed.size()];
      if (ids.size() > 6)  // head for the end: prefer tokens that close a value or the call
        for (int32_t id : allowed) {
          const std::string next = automaton_.StateName(automaton_.Next(s, id));
          if (next == "-:closed" || next == "-:done" || next.find("after-comma") != std::string::npos) pick = id;
        }
      ids.push_back(pick);
      s = automaton_.Next(s, pick);
      ASSERT_LT(ids.size(), 400u);
    }
    const ParsedCall p = ParseCall(reg_, model_->tokenizer(), ids.data(), ids.size());
    EXPECT_TRUE(p.valid) << model_->tokenizer().Decode(ids.data(), ids.size()) << ": " << p.error;
  }
}

TEST_F(Octopus, MalformedReferenceOutputsAreRejectedWhereTheyGoWrong) {
  // " <nexa_2>('Bob', 'Bob', ...)": call takes one argument, so after 'Bob' the
  // automaton allows ')' but not ','.
  std::vector<int32_t> ids;
  ASSERT_TRUE(model_->tokenizer().Encode(" <nexa_2>('Bob', 'Bob', 'Cairo')<nexa_end>", false, true, &ids).ok());
  CallAutomaton::State s = automaton_.start();
  size_t i = 0;
  for (; i < ids.size() && automaton_.Allowed(s, ids[i]); ++i) s = automaton_.Next(s, ids[i]);
  ASSERT_LT(i, ids.size());
  EXPECT_EQ(model_->tokenizer().piece(ids[i]), "',");
  const ParsedCall p = ParseCall(reg_, model_->tokenizer(), ids.data(), ids.size());
  EXPECT_FALSE(p.valid);
  EXPECT_EQ(p.error, "function 'call' takes 1 argument (contact), got 3");
}

// Early stopping: generation ends when <nexa_end> is sampled; it is never fed to
// the model, so the context holds the prompt and all generated tokens but the last.
TEST_F(Octopus, EarlyStopComputesNothingAfterTheEndToken) {
  const testing::json cases = testing::read_json(fixture("models/octopus-tiny/reference/cases.json")).at("cases");
  // Under emulation one case, and only the early-stopped runs (prefills dominate).
  const size_t n_cases = quick() ? 1 : cases.size();
  for (size_t k = 0; k < n_cases; ++k) {
    const testing::json& c = cases.at(k);
    const auto ids_of = [&](const char* key) { return c.at(key).get<std::vector<int32_t>>(); };
    const std::vector<int32_t> p = prompt(c.at("query").get<std::string>());
    ASSERT_EQ(p, ids_of("tokens"));
    for (bool constrain : {false, true}) {
      CallOptions o;
      o.constrain = constrain;
      CallResult r;
      Status s = RunCall(*ctx_, reg_, &automaton_, p, o, &r);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(r.tokens, ids_of("base_greedy_to_nexa_end"));
      EXPECT_EQ(r.stop_reason, StopReason::kStopToken);
      EXPECT_EQ(r.tokens.back(), 36);
      EXPECT_EQ(r.n_call_tokens, r.n_generated);
      EXPECT_EQ(ctx_->n_past(), static_cast<int32_t>(p.size() + r.tokens.size()) - 1)
          << "a token after the end token was evaluated";
      EXPECT_EQ(r.n_no_stop, -1);
      EXPECT_TRUE(r.call.valid) << r.call.error;
      EXPECT_EQ(r.text, c.at("expected_call").get<std::string>());
      EXPECT_EQ(r.n_constraint_changed, 0);
      EXPECT_GT(r.total_ms, 0);
      EXPECT_GT(r.ttft_ms, 0);
      EXPECT_LE(r.ttft_ms, r.total_ms);
    }
    if (quick()) continue;
    // Without early stopping: on to <eos>, as the reference; the call is the same.
    CallOptions o;
    o.early_stop = false;
    CallResult full;
    ASSERT_TRUE(RunCall(*ctx_, reg_, &automaton_, p, o, &full).ok());
    EXPECT_EQ(full.tokens, ids_of("base_greedy_no_early_stop"));
    EXPECT_EQ(full.stop_reason, StopReason::kEos);
    EXPECT_EQ(full.n_call_tokens, static_cast<int32_t>(c.at("base_greedy_to_nexa_end").size()));
    EXPECT_EQ(full.n_no_stop, full.n_generated);
    EXPECT_EQ(full.n_saved, full.n_generated - full.n_call_tokens);
    EXPECT_TRUE(full.call.valid);
    // Counting without early stopping by continuing the call gives the same count.
    CallOptions oc;
    oc.count_no_stop = true;
    CallResult counted;
    ASSERT_TRUE(RunCall(*ctx_, reg_, &automaton_, p, oc, &counted).ok());
    EXPECT_EQ(counted.n_no_stop, full.n_generated);
    EXPECT_EQ(counted.n_saved, full.n_saved);
    EXPECT_EQ(counted.tokens, ids_of("base_greedy_to_nexa_end"));
  }
}

// A token limit below the call's natural length: unconstrained output is cut off
// (invalid); constrained output is closed in time and valid.
TEST_F(Octopus, TokenLimitStillGivesAValidConstrainedCall) {
  const std::vector<int32_t> p = prompt("Sms Oliver saying I got the tickets");  // 14-token call
  CallOptions o;
  o.max_tokens = 9;
  o.constrain = false;
  CallResult r;
  ASSERT_TRUE(RunCall(*ctx_, reg_, &automaton_, p, o, &r).ok());
  EXPECT_EQ(r.stop_reason, StopReason::kMaxTokens);
  EXPECT_FALSE(r.call.valid);
  o.constrain = true;
  ASSERT_TRUE(RunCall(*ctx_, reg_, &automaton_, p, o, &r).ok());
  EXPECT_EQ(r.stop_reason, StopReason::kStopToken);
  EXPECT_LE(r.n_generated, 9);
  ASSERT_TRUE(r.call.valid) << r.text << ": " << r.call.error;
  EXPECT_EQ(reg_.functions()[r.call.function].name, "send_text") << r.text;
  EXPECT_GE(r.n_constraint_changed, 1);
  std::printf("[ limit 9  ] %s\n", r.text.c_str());
}

TEST_F(Octopus, RunCallErrors) {
  CallOptions o;
  CallResult r;
  EXPECT_EQ(RunCall(*ctx_, reg_, nullptr, prompt("x"), o, &r).code(), Code::kInvalidArgument);
  o.constrain = false;
  EXPECT_EQ(RunCall(*ctx_, reg_, nullptr, {}, o, &r).code(), Code::kInvalidArgument);  // empty prompt
  Tiny t;  // an automaton over another vocabulary
  o.constrain = true;
  EXPECT_EQ(RunCall(*ctx_, reg_, &t.a, prompt("x"), o, &r).code(), Code::kInvalidArgument);
  std::string out;
  EXPECT_EQ(FillPromptTemplate("no placeholder", "q", &out).code(), Code::kInvalidArgument);
  ASSERT_TRUE(FillPromptTemplate("a {query} b {query}", "q", &out).ok());
  EXPECT_EQ(out, "a q b {query}");
}

// Accuracy on a sample of the 1200 held-out queries (all of them: ember eval-calls,
// docs/FUNCTION-CALLING.md). Unconstrained greedy decoding must reproduce the
// reference's token ids; constrained decoding must be at least as accurate and
// always valid.
TEST_F(Octopus, SampleAccuracyMatchesTheReference) {
  // Every 5th query natively (240); 4 under emulation, without the no-stop count.
  const size_t stride = quick() ? 300 : 5;
  int n = 0, ref_agree = 0, exact_free = 0, exact_cons = 0, valid_cons = 0, ref_correct = 0;
  double tokens_stop = 0, tokens_no_stop = 0;
  for (size_t i = 0; i < queries_.size(); i += stride) {
    const testing::json& q = queries_[i];
    const std::string query = q.at("query").get<std::string>();
    const std::vector<int32_t> p = prompt(query);
    ASSERT_EQ(p, q.at("prompt_ids").get<std::vector<int32_t>>()) << query;
    const bool reference_correct = q.at("reference_correct").get<bool>();
    auto exact = [&](const CallResult& r) {
      return r.call.valid && r.call.function >= 0 &&
             reg_.functions()[r.call.function].name == q.at("function").get<std::string>() &&
             arguments(r.call, reg_) == q.at("args");
    };
    CallOptions free;
    free.constrain = false;
    free.count_no_stop = !quick();
    CallResult rf;
    ASSERT_TRUE(RunCall(*ctx_, reg_, &automaton_, p, free, &rf).ok());
    CallOptions cons;
    CallResult rc;
    ASSERT_TRUE(RunCall(*ctx_, reg_, &automaton_, p, cons, &rc).ok());
    ++n;
    ref_agree += rf.tokens == q.at("reference_output_ids").get<std::vector<int32_t>>();
    ref_correct += reference_correct;
    exact_free += exact(rf);
    exact_cons += exact(rc);
    valid_cons += rc.call.valid;
    EXPECT_EQ(exact(rf), reference_correct) << query << " -> " << rf.text;
    tokens_stop += rf.n_call_tokens;
    tokens_no_stop += rf.n_no_stop;
  }
  EXPECT_EQ(ref_agree, n);
  EXPECT_EQ(exact_free, ref_correct);
  EXPECT_GE(exact_cons, exact_free);
  EXPECT_EQ(valid_cons, n);
  // Reference over all 1200: 8.11 tokens per call with early stopping, 35.39 without.
  if (!quick()) {
    EXPECT_NEAR(tokens_stop / n, 8.1, 1.0);
    EXPECT_NEAR(tokens_no_stop / n, 35.4, 3.0);
  }
  std::printf("[ sample   ] %d queries: exact %.1f%% unconstrained, %.1f%% constrained; tokens/call %.2f vs %.2f\n", n,
              100.0 * exact_free / n, 100.0 * exact_cons / n, tokens_stop / n, tokens_no_stop / n);
}

// ==== C API ============================================================================

TEST(CallApi, CallAndErrors) {
  ember_set_log_level(4);
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(fixture(kOctopus).c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
  ember_functions* fns = nullptr;
  ASSERT_EQ(ember_functions_load(m, nullptr, &fns), EMBER_OK) << ember_last_error();
  EXPECT_EQ(ember_functions_count(fns), 24);
  EXPECT_EQ(ember_functions_end_token(fns), 36);
  ember_function_info info{};
  ASSERT_EQ(ember_functions_get(fns, 3, &info), EMBER_OK);
  EXPECT_STREQ(info.name, "set_alarm");
  EXPECT_STREQ(info.token, "<nexa_3>");
  EXPECT_EQ(info.token_id, 7);
  EXPECT_EQ(info.n_params, 1);
  const char *pname = nullptr, *ptype = nullptr;
  ASSERT_EQ(ember_functions_param(fns, 8, 1, &pname, &ptype), EMBER_OK);
  EXPECT_STREQ(pname, "degrees");
  EXPECT_STREQ(ptype, "int");
  EXPECT_EQ(ember_functions_get(fns, 24, &info), EMBER_ERR_OUT_OF_RANGE);
  EXPECT_EQ(ember_functions_param(fns, 0, 1, &pname, &ptype), EMBER_ERR_OUT_OF_RANGE);

  ember_context_params cpar = ember_context_default_params();
  cpar.n_threads = 1;
  ember_context* c = nullptr;
  ASSERT_EQ(ember_context_create(m, &cpar, &c), EMBER_OK);
  ember_call_params p = ember_call_default_params();
  EXPECT_EQ(p.constrain, 1);
  EXPECT_EQ(p.early_stop, 1);
  EXPECT_EQ(p.sampling.temperature, 0.0f);
  p.count_no_stop = 1;
  p.max_tokens_no_stop = 16;  // the count stops at the limit (and stays cheap under qemu)
  ember_call_result r;
  ASSERT_EQ(ember_call(c, fns, "Adjust the temperature in the bedroom to 27", &p, &r), EMBER_OK) << ember_last_error();
  EXPECT_EQ(r.valid, 1);
  EXPECT_STREQ(r.json, R"({"function": "set_temperature", "arguments": {"room": "bedroom", "degrees": 27}, "token": "<nexa_8>"})");
  EXPECT_STREQ(r.function, "set_temperature");
  EXPECT_STREQ(r.token, "<nexa_8>");
  EXPECT_STREQ(r.arguments, R"({"room": "bedroom", "degrees": 27})");
  EXPECT_STREQ(r.error, "");
  EXPECT_STREQ(r.text, " <nexa_8>('bedroom', 27)<nexa_end>");
  EXPECT_EQ(r.function_index, 8);
  EXPECT_EQ(r.n_prompt, 41);
  EXPECT_EQ(r.n_tokens, r.n_generated);
  EXPECT_EQ(r.n_call_tokens, r.n_generated);
  EXPECT_EQ(r.tokens[r.n_tokens - 1], 36);
  EXPECT_EQ(r.n_generated_no_stop, 16);
  EXPECT_EQ(r.n_saved, r.n_generated_no_stop - r.n_call_tokens);
  EXPECT_EQ(r.stop_reason, EMBER_STOP_TOKEN);
  EXPECT_GT(r.total_ms, 0);
  ember_call_result_free(&r);
  EXPECT_EQ(r.internal_, nullptr);
  ember_call_result_free(&r);  // twice is harmless

  // Unconstrained: a malformed call is EMBER_OK with valid == 0.
  p.constrain = 0;
  ASSERT_EQ(ember_call(c, fns, "Call Bob on speaker", &p, &r), EMBER_OK);
  EXPECT_EQ(r.valid, 0);
  EXPECT_STREQ(r.function, "call");
  EXPECT_STREQ(r.arguments, "{}");
  EXPECT_STREQ(r.error, "function 'call' takes 1 argument (contact), got 3");
  EXPECT_NE(std::string(r.json).find("\"error\": "), std::string::npos);
  ember_call_result_free(&r);
  p.constrain = 1;
  ASSERT_EQ(ember_call(c, fns, "Call Bob on speaker", &p, &r), EMBER_OK);
  EXPECT_EQ(r.valid, 1);
  EXPECT_GE(r.n_constraint_changed, 1);
  ember_call_result_free(&r);

  // Template errors, NULLs.
  p.prompt_template = "no placeholder";
  EXPECT_EQ(ember_call(c, fns, "x", &p, &r), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("{query}"), std::string::npos);
  EXPECT_EQ(r.internal_, nullptr);
  EXPECT_EQ(ember_call(c, fns, nullptr, &p, &r), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_call(c, nullptr, "x", &p, &r), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_call(nullptr, fns, "x", &p, &r), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_call(c, fns, "x", &p, nullptr), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_functions_load(nullptr, nullptr, &fns), EMBER_ERR_INVALID_ARGUMENT);

  // Registry errors through the C API.
  ember_functions* bad = nullptr;
  EXPECT_EQ(ember_functions_load(m, "/nonexistent.json", &bad), EMBER_ERR_NOT_FOUND);
  const std::string unknown = R"({"functions": [{"token": "<nexa_99>", "name": "x", "parameters": []}]})";
  EXPECT_EQ(ember_functions_parse(m, unknown.data(), unknown.size(), &bad), EMBER_ERR_NOT_FOUND);
  EXPECT_NE(std::string(ember_last_error()).find("<nexa_99>"), std::string::npos);
  EXPECT_EQ(ember_functions_parse(m, "{", 1, &bad), EMBER_ERR_BAD_FORMAT);
  EXPECT_EQ(bad, nullptr);
  EXPECT_EQ(ember_functions_set_end_token(fns, "<nexa_3>"), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_functions_set_end_token(fns, "<nexa_31>"), EMBER_OK);
  EXPECT_EQ(ember_functions_end_token(fns), 35);

  // A model without a registry.
  ember_model* memo = nullptr;
  ASSERT_EQ(ember_model_load(fixture("models/memo260K.gguf").c_str(), nullptr, &memo), EMBER_OK);
  EXPECT_EQ(ember_functions_load(memo, nullptr, &bad), EMBER_ERR_NOT_FOUND);
  EXPECT_NE(std::string(ember_last_error()).find("ember.functions"), std::string::npos);
  // A registry of one model used with a context of another.
  ember_context* mc = nullptr;
  ASSERT_EQ(ember_context_create(memo, &cpar, &mc), EMBER_OK);
  EXPECT_EQ(ember_call(mc, fns, "x", nullptr, &r), EMBER_ERR_INVALID_ARGUMENT);
  ember_context_free(mc);
  ember_model_free(memo);

  ember_context_free(c);
  ember_functions_free(fns);
  ember_model_free(m);
}

}  // namespace
}  // namespace ember
