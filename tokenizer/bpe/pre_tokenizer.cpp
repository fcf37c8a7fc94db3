// The per-`pre` regex table and the PCRE2 splitting loop.
#include "tokenizer/bpe/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <memory>

namespace ember::bpe {
namespace {

// The regexes are the tokenizer.json pre-tokenizer patterns of each family, written
// the way llama.cpp b10256 applies them: case-insensitive contractions spelled out
// ('[sS]...) because (?i) with Unicode case folding would also take 'ſ' (U+017F)
// and 'K' (U+212A), which the original (ASCII case-insensitive) does not.
constexpr std::string_view kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";

// GPT-2's own pattern (also the second pass of smollm and default).
constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

struct PreEntry {
  std::string_view name;
  std::vector<std::string> regexes;
  PreTokenizerFlags flags;
};

// Llama 3 and Qwen2 differ only in how many digits make one word.
std::string Llama3Style(std::string_view digits) {
  return std::string(kContractions) + R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})" + std::string(digits) +
         R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}

const std::vector<PreEntry>& Table() {
  // flags: {ignore_merges, clean_spaces, add_bos_default}, as llama.cpp sets them.
  static const std::vector<PreEntry> table = {
      {"default",
       {R"([\p{P}\$\+<=>\^~\|]+)", std::string(kGpt2), R"(\p{N}+)", "[0-9][0-9][0-9]"},
       {false, true, false}},
      {"llama-bpe", {Llama3Style("{1,3}")}, {true, true, true}},
      {"llama3", {Llama3Style("{1,3}")}, {true, true, true}},
      {"llama-v3", {Llama3Style("{1,3}")}, {true, true, true}},
      {"qwen2", {Llama3Style("")}, {false, false, false}},
      {"deepseek-r1-qwen", {Llama3Style("")}, {false, false, false}},
      {"smollm", {R"(\p{N})", std::string(kGpt2)}, {false, false, false}},
      {"gpt-2", {std::string(kGpt2)}, {false, true, false}},
  };
  return table;
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF), 0 when ill-formed.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

// Appends `word` to *out, with every byte of an ill-formed UTF-8 sequence cut out as a
// word of its own.
void AppendSplittingInvalid(std::string_view word, std::vector<std::string_view>* out) {
  size_t start = 0, i = 0;
  while (i < word.size()) {
    size_t n = Utf8SequenceLength(word, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > start) out->push_back(word.substr(start, i - start));
    out->push_back(word.substr(i, 1));
    start = ++i;
  }
  if (i > start) out->push_back(word.substr(start, i - start));
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

std::vector<std::string_view> PreTokenizer::KnownNames() {
  std::vector<std::string_view> names;
  for (const PreEntry& e : Table()) names.push_back(e.name);
  return names;
}

bool PreTokenizer::FlagsOf(std::string_view pre, PreTokenizerFlags* out) {
  for (const PreEntry& e : Table())
    if (e.name == pre) {
      *out = e.flags;
      return true;
    }
  return false;
}

Status PreTokenizer::Create(std::string_view pre, std::unique_ptr<PreTokenizer>* out) {
  const PreEntry* entry = nullptr;
  for (const PreEntry& e : Table())
    if (e.name == pre) entry = &e;
  if (!entry) {
    std::string known;
    for (std::string_view n : KnownNames()) known += (known.empty() ? "" : ", ") + std::string(n);
    return InvalidArgument("tokenizer: unknown pre-tokenizer '" + std::string(pre) +
                           "' (tokenizer.ggml.pre); known: " + known);
  }
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  p->flags_ = entry->flags;
  p->name_ = std::string(pre);
  for (const std::string& src : entry->regexes) {
    auto r = std::make_unique<Regex>();
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(src.data()), src.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_offset, nullptr);
    if (!r->code) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      return Internal("tokenizer: pre-tokenizer '" + p->name_ + "': regex does not compile at offset " +
                      std::to_string(err_offset) + ": " + reinterpret_cast<const char*>(msg.data()));
    }
    // JIT is an optimisation: without it (no JIT on the platform) matching still works.
    r->jit = pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
    p->regexes_.push_back(std::move(r));
  }
  *out = std::move(p);
  return Status::Ok();
}

bool PreTokenizer::jit() const {
  for (const auto& r : regexes_)
    if (!r->jit) return false;
  return true;
}

namespace {

// Cuts `piece` into matches of `code` and the text between them, appended in order.
// A matching error (e.g. a resource limit) keeps the rest of the piece as one word:
// the split differs from the reference there, but encoding never fails.
void SplitByRegex(const pcre2_code* code, pcre2_match_data* md, std::string_view piece,
                  std::vector<std::string_view>* out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t pos = 0, emitted = 0;
  while (pos < piece.size()) {
    int rc = pcre2_match(code, subject, piece.size(), pos, 0, md, nullptr);
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH or a limit: the rest is a gap
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t start = ov[0], end = ov[1];
    if (start > emitted) out->push_back(piece.substr(emitted, start - emitted));
    if (end > start) {
      out->push_back(piece.substr(start, end - start));
      emitted = end;
      pos = end;
    } else {
      pos = start + 1;  // an empty match (none of the table's regexes makes one): step on
    }
  }
  if (piece.size() > emitted) out->push_back(piece.substr(emitted));
}

}  // namespace

void PreTokenizer::Split(std::string_view text, std::vector<std::string_view>* words) const {
  words->clear();
  if (text.empty()) return;
  // Owned: a failed allocation below throws, and the match data must not leak then
  // (LeakSanitizer found it through test_capi_failure).
  const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(pcre2_match_data_create(1, nullptr),
                                                                              &pcre2_match_data_free);
  std::vector<std::string_view> pieces{text}, next;
  for (const auto& r : regexes_) {
    next.clear();
    if (md)
      for (std::string_view piece : pieces) SplitByRegex(r->code, md.get(), piece, &next);
    else
      next = pieces;  // out of memory for match data: keep the pieces as they are
    pieces.swap(next);
  }
  words->reserve(pieces.size());
  for (std::string_view w : pieces) AppendSplittingInvalid(w, words);
}

}  // namespace ember::bpe
