// Byte-level BPE pre-tokenization: the text is cut into words by the regular
// expressions of the vocabulary's `tokenizer.ggml.pre` before BPE runs on each word.
//
// The table holds the regexes llama.cpp b10256 uses for each `pre` value (one list
// per value, applied in order: each regex cuts every piece the previous one left
// into its matches and the text between them, both kept as pieces), together with
// the flags that go with the value in llama.cpp: whether a whole word that is already
// a token skips the merges (ignore_merges), whether the detokenizer cleans spaces,
// and the add_bos default. An unknown `pre` is an error naming it: a wrong split
// changes every id, so there is no silent fallback.
//
// Matching uses PCRE2 (UTF + UCP, so \p{L}, \p{N} and \s are Unicode classes; JIT
// when the platform has it) with PCRE2_MATCH_INVALID_UTF: invalid UTF-8 never fails a
// match, it simply never belongs to one. Every byte of an ill-formed sequence then
// becomes a word of its own (so BPE gives its byte token): any byte string splits,
// nothing is dropped or replaced, and decoding gives the input bytes back.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ember::bpe {

struct PreTokenizerFlags {
  bool ignore_merges = false;    // a word that is a token as a whole is that token
  bool clean_spaces = false;     // llama.cpp's detokenizer space clean-up applies
  bool add_bos_default = false;  // when tokenizer.ggml.add_bos_token is absent
};

class PreTokenizer {
 public:
  // InvalidArgument naming `pre` (and the known values) when the table lacks it.
  static Status Create(std::string_view pre, std::unique_ptr<PreTokenizer>* out);
  // The table's flags for `pre`; false when the table lacks it.
  static bool FlagsOf(std::string_view pre, PreTokenizerFlags* out);
  // The `pre` values the table knows, in table order.
  static std::vector<std::string_view> KnownNames();
  ~PreTokenizer();

  // Replaces *words with the words of `text` in order; they concatenate to `text`
  // and point into it. Thread-safe (the compiled regexes are only read).
  void Split(std::string_view text, std::vector<std::string_view>* words) const;

  const PreTokenizerFlags& flags() const { return flags_; }
  const std::string& name() const { return name_; }
  bool jit() const;  // every regex JIT-compiled

 private:
  PreTokenizer();
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
  PreTokenizerFlags flags_;
  std::string name_;
};

}  // namespace ember::bpe
