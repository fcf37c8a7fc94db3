// Text <-> token ids. SentencePiece does the work behind a pimpl; the model is
// built either from a GGUF vocabulary (tokenizer.ggml.*) or from a .model file.
//
// Semantics (follow llama.cpp / sentencepiece):
//  - Encode: optional BOS first; byte fallback for characters the vocabulary lacks;
//    user-defined tokens (type 4, e.g. `<nexa_3>`) are matched whole in text always;
//    control tokens (type 3, e.g. `<s>`, `<eos>`) only when parse_special is true.
//  - Token text: `▁` -> space, `<0xAB>` byte pieces -> that raw byte, control
//    tokens -> "" unless render_special, user-defined -> their text.
//
// Ember's choices where the above leaves room:
//  - Special tokens are found by a left-to-right scan taking the longest token that
//    starts at each position. Unknown-typed tokens (`<unk>`) count as control ones.
//  - Every plain-text segment between special tokens is encoded on its own, so with
//    add_space_prefix each gets the dummy space: at the start of the text and after
//    each matched special token (llama.cpp's rule; also what encoding the turns of a
//    chat separately gives). "<s>Hello" with parse_special == BOS + Encode("Hello").
//  - Invalid UTF-8: sentencepiece's behaviour (each malformed byte becomes U+FFFD).
//  - A bad vocabulary row (empty, duplicate, NUL) is kept for decoding but never
//    produced by encoding; byte fallback needs all 256 byte pieces.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ember {

class GgufFile;

// SentencePiece piece types; GGUF's tokenizer.ggml.token_type uses the same numbers.
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

// Everything needed to build a tokenizer; what GGUF's tokenizer.ggml.* keys hold.
struct VocabSpec {
  std::string model = "llama";          // tokenizer.ggml.model; only "llama" (SentencePiece) for now
  std::vector<std::string> tokens;      // pieces, ▁ for space
  std::vector<float> scores;
  std::vector<int32_t> types;           // TokenType values
  int32_t bos_id = 1, eos_id = 2, unk_id = 0, pad_id = -1;
  bool add_bos = true, add_eos = false;
  bool add_space_prefix = true;         // sentencepiece's add_dummy_prefix
  bool remove_extra_whitespaces = false;
  bool byte_fallback = true;            // true when the vocab has <0x00>..<0xFF>
};

// Reads tokenizer.ggml.* (tokens, scores, token_type, bos/eos/unknown/padding ids,
// add_bos_token, add_eos_token, add_space_prefix, remove_extra_whitespaces).
// Absent keys: scores 0, types normal, add_space_prefix true (llama.cpp's SPM
// default), unk = the piece typed unknown; ids outside the vocabulary become -1.
// Errors: NotFound without tokenizer.ggml.model, Unsupported for a model other than
// "llama", BadFormat for mismatched array lengths (naming the keys).
Status VocabFromGguf(const GgufFile& gguf, VocabSpec* out);

class Tokenizer {
 public:
  // Empty scores / types mean 0 / normal. InvalidArgument for arrays of different
  // lengths or ids out of range, Unsupported for a model other than "llama".
  static Status FromVocab(const VocabSpec& vocab, std::unique_ptr<Tokenizer>* out);
  static Status FromGguf(const GgufFile& gguf, std::unique_ptr<Tokenizer>* out);
  static Status FromModelFile(const std::string& path, std::unique_ptr<Tokenizer>* out);
  ~Tokenizer();

  // Never fails on any byte string (invalid UTF-8 included); Status for internal errors.
  // Replaces *ids. BOS (if add_bos and the vocab has one) first; EOS is never added.
  Status Encode(std::string_view text, bool add_bos, bool parse_special,
                std::vector<int32_t>* ids) const;
  // Bytes of one token as it appears in output (see header comment). Unknown tokens
  // render like control ones; unused/undefined like normal ones; "" for a bad id.
  std::string TokenText(int32_t id, bool render_special = true) const;
  // The same appended to *out: no allocation when *out has room (decode loops).
  void AppendTokenText(int32_t id, bool render_special, std::string* out) const;
  // An upper bound of TokenText's length over the vocabulary (its longest piece).
  size_t max_token_text_bytes() const;
  // Concatenated TokenText; drops the single leading space a dummy prefix added
  // when `strip_leading_space` and the vocab adds a space prefix. Mirrors Encode: the
  // first text token at the start and after each special token (rendered or not)
  // loses one leading space. So Decode(Encode(t)) == t for what sentencepiece
  // round-trips, and "<s>Hello" -> [1, ▁Hello] -> "<s>Hello".
  std::string Decode(const int32_t* ids, size_t n, bool render_special = true,
                     bool strip_leading_space = true) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t unk_id() const;
  bool add_bos() const;              // the model's add_bos_token default
  const std::string& piece(int32_t id) const;  // raw piece ("▁Hello", "<0x0A>")
  TokenType type(int32_t id) const;
  int32_t PieceToId(std::string_view piece) const;  // -1 when absent

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember
