// Text <-> token ids. Two models behind one pimpl, chosen by tokenizer.ggml.model:
//  - "llama": SentencePiece (sentencepiece does the work); built from a GGUF vocabulary
//    or from a .model file.
//  - "gpt2": byte-level BPE (Llama 3, Qwen, GPT-2, SmolLM; tokenizer/bpe/), built from a
//    GGUF vocabulary's tokens, token types, merges and pre-tokenizer name (`pre`).
// Special tokens, BOS and decoding are shared; the differences are listed below.
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
//    Byte-level BPE: each byte of an ill-formed sequence becomes its own byte token
//    (nothing replaced or dropped: Decode gives the input bytes back). llama.cpp
//    differs there (it replaces them by U+FFFD).
//  - Byte-level BPE has no space prefix; its token texts are GPT-2 byte-encoded and
//    decode to raw bytes (a token that is not byte-encoded renders verbatim). Decode
//    never cleans spaces; CleanUpSpaces does llama.cpp's detokenizer clean-up when
//    clean_spaces() (llama-bpe, gpt-2, default) for those who want its output.
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
  std::string model = "llama";          // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2"
  std::vector<std::string> tokens;      // pieces, ▁ for space (gpt2: byte-encoded, Ġ for space)
  std::vector<float> scores;
  std::vector<int32_t> types;           // TokenType values
  int32_t bos_id = 1, eos_id = 2, unk_id = 0, pad_id = -1;
  bool add_bos = true, add_eos = false;
  bool add_space_prefix = true;         // sentencepiece's add_dummy_prefix
  bool remove_extra_whitespaces = false;
  bool byte_fallback = true;            // true when the vocab has <0x00>..<0xFF>
  int32_t eot_id = -1;                  // end of turn; -1: found by text (<|eot_id|>, <|im_end|>, ...)
  // gpt2 only:
  std::vector<std::string> merges;      // "left right", in rank order
  std::string pre = "default";          // pre-tokenizer (tokenizer/bpe/pre_tokenizer.h)
};

// Reads tokenizer.ggml.* (tokens, scores, token_type, bos/eos/eot/unknown/padding ids,
// add_bos_token, add_eos_token, add_space_prefix, remove_extra_whitespaces; for gpt2
// also merges and pre). Absent keys: scores 0, types normal, add_space_prefix true
// (llama.cpp's SPM default), unk = the piece typed unknown; ids outside the vocabulary
// become -1. gpt2: absent ids are -1, add_space_prefix false, add_bos from the `pre`
// (true for llama-bpe, as llama.cpp), an absent `pre` is "default" (with a warning).
// Errors: NotFound without tokenizer.ggml.model, Unsupported for a model other than
// "llama" / "gpt2", BadFormat for mismatched array lengths (naming the keys), for a
// gpt2 vocabulary without merges or with merges that are not an array of strings.
Status VocabFromGguf(const GgufFile& gguf, VocabSpec* out);

class Tokenizer {
 public:
  // Empty scores / types mean 0 / normal. InvalidArgument for arrays of different
  // lengths or ids out of range or an unknown gpt2 `pre`, Unsupported for a model
  // other than "llama" / "gpt2", BadFormat for bad gpt2 merges (bpe_tokenizer.h).
  static Status FromVocab(const VocabSpec& vocab, std::unique_ptr<Tokenizer>* out);
  static Status FromGguf(const GgufFile& gguf, std::unique_ptr<Tokenizer>* out);
  static Status FromModelFile(const std::string& path, std::unique_ptr<Tokenizer>* out);
  // A SentencePiece tokenizer.model's bytes (`name` in errors).
  static Status FromModelProto(std::string_view bytes, const std::string& name, std::unique_ptr<Tokenizer>* out);
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
  int32_t pad_id() const;
  int32_t eot_id() const;            // end-of-turn token; -1 when none
  bool add_bos() const;              // the model's add_bos_token default
  bool byte_level() const;           // gpt2 (byte-level BPE) rather than SentencePiece
  // Whether llama.cpp's detokenizer cleans spaces for this vocabulary (llama-bpe,
  // gpt-2, default pre-tokenizers), and that clean-up: drops a space before . , ! ?
  // and before 's 'm 're 've, and the spaces around a lone ' between spaces.
  bool clean_spaces() const;
  static void CleanUpSpaces(std::string* text);
  const std::string& piece(int32_t id) const;  // raw piece ("▁Hello", "<0x0A>")
  TokenType type(int32_t id) const;
  int32_t PieceToId(std::string_view piece) const;  // -1 when absent

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember
