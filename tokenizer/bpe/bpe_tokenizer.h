// Byte-level BPE (GGUF tokenizer.ggml.model "gpt2": Llama 3, Qwen, GPT-2, SmolLM):
// the model behind Tokenizer for such vocabularies. Tokenizer keeps the public face
// (special tokens, BOS, decoding of special tokens); this class encodes plain text.
//
// Encoding one plain-text segment (as llama.cpp b10256 does):
//  1. the pre-tokenizer cuts it into words (pre_tokenizer.h);
//  2. each word is byte-encoded (byte_unicode.h); with ignore_merges a word that is a
//     token as a whole is that token;
//  3. otherwise the word starts as one token per byte and the adjacent pair with the
//     lowest merge rank is merged until no pair has a rank (leftmost pair on ties).
// Merges are held as (left id, right id) -> (rank, merged id), so the merge loop
// never builds strings; words already seen in the same call come from a cache.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/bpe/pre_tokenizer.h"
#include "tokenizer/token_lookup.h"

namespace ember::bpe {

class BpeTokenizer {
 public:
  // `lookup` maps every vocabulary string to its id (it must outlive the tokenizer); `merges` are "left right" in
  // rank order. BadFormat for a merge without a space, one naming a token the
  // vocabulary lacks, or whose result is not a token; for a vocabulary without the
  // 256 single-byte tokens. InvalidArgument for an unknown `pre`.
  static Status Create(const TokenLookup* lookup, const std::vector<std::string>& merges, std::string_view pre,
                       std::unique_ptr<BpeTokenizer>* out);
  ~BpeTokenizer();

  // Appends the ids of a plain-text segment (special tokens already cut out).
  // Any bytes are accepted (see pre_tokenizer.h for invalid UTF-8).
  void Encode(std::string_view text, std::vector<int32_t>* ids) const;

  // How MergeSymbols picks the next pair: both give the same ids; kAuto scans short
  // words and uses a heap for long ones. Tests compare the two on the same words.
  enum class MergeMethod { kAuto, kScan, kHeap };
  // Appends the ids of one pre-tokenized word (no cache).
  void EncodeWord(std::string_view word, MergeMethod method, std::vector<int32_t>* ids) const;

  const PreTokenizer& pre_tokenizer() const { return *pre_; }
  size_t n_merges() const { return n_merges_; }

 private:
  BpeTokenizer() = default;
  struct MergeTable;
  struct Scratch;
  void EncodeWord(std::string_view word, Scratch* s, std::vector<int32_t>* ids, MergeMethod method) const;
  void MergeSymbols(Scratch* s, MergeMethod method) const;
  void LookUpPair(Scratch* s, int32_t left) const;
  Status ReadMerges(const std::vector<std::string>& merges);

  const TokenLookup* lookup_ = nullptr;
  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<MergeTable> merges_;
  size_t n_merges_ = 0;
  int32_t byte_token_[256] = {};  // id of the token spelling each single byte
};

}  // namespace ember::bpe
