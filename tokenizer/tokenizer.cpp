// Tokenizer: Ember's own special-token splitting and detokenization around a
// SentencePieceProcessor that does the BPE work on each plain-text segment.
//
// The model sentencepiece sees is a ModelProto: the .model file's own bytes, or one
// written by spm_proto.cpp from a VocabSpec. Ember keeps its own copy of the pieces
// and types (the originals), while the proto holds a sanitized copy: sentencepiece
// rejects empty or duplicate pieces, a second UNKNOWN piece, or BYTE pieces without a
// full <0x00>..<0xFF> set, and a bad vocabulary row must not make the whole model
// unusable. Such rows become inert CONTROL placeholders in the proto (never produced
// by encoding); their ids still decode through Ember's tables.
#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

#include "core/log.h"
#include "tokenizer/bpe/bpe_tokenizer.h"
#include "tokenizer/bpe/byte_unicode.h"
#include "tokenizer/spm_proto.h"

namespace ember {
namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81";  // U+2581 '▁'
constexpr size_t kMaxPieceBytes = 4096;  // sentencepiece refuses pieces of >= 8000 bytes

bool IsSpecialType(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
}

// "<0xAB>" (upper- or lower-case hex) -> 0xAB, else -1.
int ParseBytePiece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    char c = p[i];
    int d = (c >= '0' && c <= '9') ? c - '0'
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                     : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// sentencepiece only accepts byte pieces spelled exactly "<0x%02X>".
bool IsCanonicalBytePiece(std::string_view p) {
  int b = ParseBytePiece(p);
  if (b < 0) return false;
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return p == buf;
}

// Appends s to *out with every `from` replaced by `to` (no temporary string).
void AppendReplacing(std::string_view s, std::string_view from, std::string_view to, std::string* out) {
  size_t pos = 0;
  for (;;) {
    size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out->append(s.substr(pos, hit - pos));
    out->append(to);
    pos = hit + from.size();
  }
  out->append(s.substr(pos));
}

}  // namespace

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;  // SentencePiece vocabularies
  std::unique_ptr<bpe::BpeTokenizer> bpe;    // byte-level BPE vocabularies (then sp is unused)
  std::vector<std::string> pieces;  // originals, as given; never changed once built
  std::vector<TokenType> types;
  // First occurrence of each text; over `pieces`.
  TokenLookup piece_to_id;
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  bool add_bos = true;
  bool strip_space = false;  // a dummy prefix is added at the front of each segment
  bool clean_spaces = false;

  // Tokens matched whole in the text: user-defined always, control/unknown only
  // with parse_special. Bucketed by first byte, longest first.
  struct Special {
    std::string_view text;  // into `pieces`
    int32_t id;
    bool user_defined;
  };
  std::array<std::vector<Special>, 256> specials;
  bool any_user_defined = false;

  // Pieces, types and the ids both models take from a VocabSpec.
  void FillCommon(const VocabSpec& v) {
    const size_t n = v.tokens.size();
    pieces = v.tokens;
    types.resize(n);
    for (size_t i = 0; i < n; ++i) {
      int32_t ty = v.types.empty() ? 1 : v.types[i];
      types[i] = (ty >= 0 && ty <= 6) ? static_cast<TokenType>(ty) : TokenType::kUndefined;
    }
    bos = v.bos_id;
    eos = v.eos_id;
    pad = v.pad_id;
    eot = v.eot_id;
    add_bos = v.add_bos;
  }

  // Byte-level BPE: no sentencepiece model, no space prefix; special tokens as for
  // SentencePiece.
  Status InitBpe(const VocabSpec& v) {
    unk = v.unk_id;
    strip_space = false;
    BuildLookups();
    EMBER_RETURN_IF_ERROR(bpe::BpeTokenizer::Create(&piece_to_id, v.merges, v.pre, &bpe));
    clean_spaces = bpe->pre_tokenizer().flags().clean_spaces;
    return Status::Ok();
  }

  // Shared by every constructor once pieces/types/ids are filled; `proto` is what
  // sentencepiece loads. `name` is used in errors.
  Status Finish(const std::string& proto, const std::string& name) {
    auto st = sp.LoadFromSerializedProto(proto);
    if (!st.ok())
      return BadFormat(name + ": sentencepiece rejected the model: " + st.ToString());
    BuildLookups();
    return Status::Ok();
  }

  // piece_to_id, the special-token buckets and the end-of-turn token, from pieces/types.
  void BuildLookups() {
    if (!piece_to_id.built()) piece_to_id.Build(&pieces);
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (IsSpecialType(types[i]) && !pieces[i].empty()) {
        uint8_t first = static_cast<uint8_t>(pieces[i][0]);
        bool ud = types[i] == TokenType::kUserDefined;
        specials[first].push_back({pieces[i], static_cast<int32_t>(i), ud});
        any_user_defined |= ud;
      }
    }
    for (auto& bucket : specials) {
      // Longest first; among equal texts the lowest id (stable sort keeps id order).
      std::stable_sort(bucket.begin(), bucket.end(),
                       [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });
    }
    if (eot < 0) eot = FindEndOfTurnByText();
  }

  // llama.cpp's fallback when the vocabulary names no eot id: a token spelled like
  // one of the families' end-of-turn tokens; the first name of this list that is
  // present wins (llama.cpp takes whichever its hash map yields first).
  int32_t FindEndOfTurnByText() const {
    static constexpr std::string_view kNames[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                                  "<|endoftext|>", "<|end_of_text|>", "<EOT>"};
    for (std::string_view n : kNames)
      if (int32_t id = piece_to_id.Find(n); id >= 0) return id;
    return -1;
  }

  // Longest special token starting at text[pos], or nullptr.
  const Special* MatchAt(std::string_view text, size_t pos, bool parse_special) const {
    for (const Special& s : specials[static_cast<uint8_t>(text[pos])]) {
      if (!s.user_defined && !parse_special) continue;
      if (text.compare(pos, s.text.size(), s.text) == 0) return &s;
    }
    return nullptr;
  }

  Status EncodeSegment(std::string_view seg, std::vector<int32_t>* ids) const {
    if (seg.empty()) return Status::Ok();
    if (bpe) {
      bpe->Encode(seg, ids);
      return Status::Ok();
    }
    std::vector<int> out;
    auto st = sp.Encode(seg, &out);
    if (!st.ok()) return Internal("tokenizer: sentencepiece encode failed: " + st.ToString());
    ids->insert(ids->end(), out.begin(), out.end());
    return Status::Ok();
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

namespace {

// SentencePiece piece types (SentencePiece.Type) the proto is sanitized to.
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;

// Sizes of the parallel arrays and the special ids.
Status CheckVocabSpec(const VocabSpec& v) {
  if (v.model != "llama" && v.model != "gpt2")
    return Unsupported("tokenizer: tokenizer model '" + v.model +
                       "' is not supported (only 'llama', i.e. SentencePiece, and 'gpt2', byte-level BPE)");
  const size_t n = v.tokens.size();
  if (n == 0) return InvalidArgument("tokenizer: empty vocabulary (no tokens)");
  if (n > 0x7fffffff) return InvalidArgument("tokenizer: vocabulary too large");
  if (!v.scores.empty() && v.scores.size() != n)
    return InvalidArgument("tokenizer: vocabulary size mismatch: " + std::to_string(n) + " tokens but " +
                           std::to_string(v.scores.size()) + " scores");
  if (!v.types.empty() && v.types.size() != n)
    return InvalidArgument("tokenizer: vocabulary size mismatch: " + std::to_string(n) + " tokens but " +
                           std::to_string(v.types.size()) + " token types");
  const int32_t n32 = static_cast<int32_t>(n);
  auto check_id = [&](int32_t id, const char* what) -> Status {
    if (id < -1 || id >= n32)
      return InvalidArgument(std::string("tokenizer: ") + what + " " + std::to_string(id) +
                             " out of range for a vocabulary of " + std::to_string(n));
    return Status::Ok();
  };
  EMBER_RETURN_IF_ERROR(check_id(v.bos_id, "bos_id"));
  EMBER_RETURN_IF_ERROR(check_id(v.eos_id, "eos_id"));
  EMBER_RETURN_IF_ERROR(check_id(v.unk_id, "unk_id"));
  EMBER_RETURN_IF_ERROR(check_id(v.pad_id, "pad_id"));
  EMBER_RETURN_IF_ERROR(check_id(v.eot_id, "eot_id"));
  return Status::Ok();
}

// Byte fallback needs all 256 canonical byte pieces; otherwise byte pieces are inert.
void SanitizeBytePieces(const VocabSpec& v, spm::ModelProtoInfo* info_out) {
  spm::ModelProtoInfo& info = *info_out;
  std::array<bool, 256> have_byte{};
  for (auto& p : info.pieces)
    if (p.type == kByte && IsCanonicalBytePiece(p.piece)) have_byte[ParseBytePiece(p.piece)] = true;
  bool all_bytes = std::all_of(have_byte.begin(), have_byte.end(), [](bool b) { return b; });
  info.byte_fallback = v.byte_fallback && all_bytes;
  if (v.byte_fallback && !all_bytes)
    EMBER_LOG_WARN("tokenizer: byte_fallback requested but the vocabulary lacks some of <0x00>..<0xFF>; disabled");
  for (auto& p : info.pieces)
    if (p.type == kByte && (!info.byte_fallback || !IsCanonicalBytePiece(p.piece))) p.type = kControl;
}

// Exactly one UNKNOWN piece: the one at unk_id if it is typed unknown, else the first
// typed unknown, else the piece at unk_id is promoted. *unk_out: its id.
Status ChooseUnknownPiece(const VocabSpec& v, spm::ModelProtoInfo* info_out, int32_t* unk_out) {
  spm::ModelProtoInfo& info = *info_out;
  const int32_t n32 = static_cast<int32_t>(v.tokens.size());
  int32_t unk = -1;
  if (v.unk_id >= 0 && info.pieces[v.unk_id].type == kUnknown) unk = v.unk_id;
  for (int32_t i = 0; i < n32 && unk < 0; ++i)
    if (info.pieces[i].type == kUnknown) unk = i;
  if (unk < 0) unk = v.unk_id;
  if (unk < 0) return InvalidArgument("tokenizer: vocabulary has no unknown token (no piece of type 2, unk_id -1)");
  if (v.unk_id >= 0 && unk != v.unk_id)
    EMBER_LOG_WARN("tokenizer: unk_id %d is not the unknown piece; using %d", v.unk_id, unk);
  for (int32_t i = 0; i < n32; ++i)
    if (info.pieces[i].type == kUnknown && i != unk) info.pieces[i].type = kControl;
  info.pieces[unk].type = kUnknown;
  *unk_out = unk;
  return Status::Ok();
}

// Unusable texts (empty, NUL, huge, duplicate within sentencepiece's normal or reserved
// map) become unique CONTROL placeholders. `may_have_duplicates` false (no text twice in
// the vocabulary, the usual case) skips the sets that find duplicates: they are most of
// the cost of loading a large vocabulary.
Status ReplaceUnusablePieces(const VocabSpec& v, int32_t unk, bool may_have_duplicates,
                             spm::ModelProtoInfo* info_out) {
  spm::ModelProtoInfo& info = *info_out;
  const int32_t n32 = static_cast<int32_t>(v.tokens.size());
  std::unordered_set<std::string_view> normal_seen, reserved_seen;
  std::unordered_set<std::string_view> all_texts;  // filled at the first placeholder
  int n_placeholders = 0;
  for (int32_t i = 0; i < n32; ++i) {
    auto& p = info.pieces[i];
    bool normal = p.type == kNormal || p.type == 4 || p.type == 5;
    auto& seen = normal ? normal_seen : reserved_seen;
    bool bad = p.piece.empty() || p.piece.find('\0') != std::string::npos || p.piece.size() > kMaxPieceBytes ||
               (may_have_duplicates && !seen.insert(v.tokens[i]).second);
    if (!bad) continue;
    if (i == unk) return InvalidArgument("tokenizer: unknown token " + std::to_string(i) + " has an unusable text");
    if (all_texts.empty()) all_texts.insert(v.tokens.begin(), v.tokens.end());
    std::string name = "<ember:placeholder:" + std::to_string(i) + ">";
    while (all_texts.count(name)) name += "_";
    p.piece = name;
    p.type = kControl;
    ++n_placeholders;
  }
  if (n_placeholders)
    EMBER_LOG_WARN("tokenizer: %d vocabulary entries are empty, duplicated or invalid; they will never be produced by encoding",
                   n_placeholders);
  return Status::Ok();
}

}  // namespace

Status Tokenizer::FromVocab(const VocabSpec& v, std::unique_ptr<Tokenizer>* out) {
  EMBER_RETURN_IF_ERROR(CheckVocabSpec(v));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  Impl& im = *t->impl_;
  im.FillCommon(v);
  if (v.model == "gpt2") {
    EMBER_RETURN_IF_ERROR(im.InitBpe(v));
    *out = std::move(t);
    return Status::Ok();
  }
  const size_t n = v.tokens.size();
  const int32_t n32 = static_cast<int32_t>(n);

  // ---- the sanitized proto ----
  spm::ModelProtoInfo info;
  info.model_type = spm::kBpe;  // llama vocabularies are SentencePiece BPE
  info.vocab_size = n32;
  info.pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    int32_t ty = static_cast<int32_t>(im.types[i]);
    info.pieces[i].piece = v.tokens[i];
    info.pieces[i].score = v.scores.empty() ? 0.0f : v.scores[i];
    info.pieces[i].type = (ty >= 1 && ty <= 6) ? ty : kNormal;  // undefined -> normal
  }
  SanitizeBytePieces(v, &info);
  int32_t unk = -1;
  EMBER_RETURN_IF_ERROR(ChooseUnknownPiece(v, &info, &unk));
  im.piece_to_id.Build(&im.pieces);
  EMBER_RETURN_IF_ERROR(ReplaceUnusablePieces(v, unk, im.piece_to_id.has_duplicates(), &info));

  info.unk_id = unk;
  info.bos_id = v.bos_id;
  info.eos_id = v.eos_id;
  info.pad_id = v.pad_id;
  info.normalizer_name = "identity";
  info.add_dummy_prefix = v.add_space_prefix;
  info.remove_extra_whitespaces = v.remove_extra_whitespaces;
  info.escape_whitespaces = true;

  im.unk = unk;
  im.strip_space = v.add_space_prefix;
  EMBER_RETURN_IF_ERROR(im.Finish(spm::EncodeModelProto(info), "tokenizer vocabulary"));
  *out = std::move(t);
  return Status::Ok();
}

Status Tokenizer::FromModelFile(const std::string& path, std::unique_ptr<Tokenizer>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("tokenizer: cannot open '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return IoError("tokenizer: error reading '" + path + "'");
  return FromModelProto(bytes, path, out);
}

Status Tokenizer::FromModelProto(std::string_view bytes, const std::string& name, std::unique_ptr<Tokenizer>* out) {
  spm::ModelProtoInfo info;
  EMBER_RETURN_IF_ERROR(spm::DecodeModelProto(bytes, name, &info));
  if (info.pieces.size() > 0x7fffffff) return BadFormat(name + ": vocabulary too large");

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  Impl& im = *t->impl_;
  const int32_t n = static_cast<int32_t>(info.pieces.size());
  im.pieces.reserve(n);
  im.types.reserve(n);
  for (const auto& p : info.pieces) {
    im.pieces.push_back(p.piece);
    im.types.push_back(static_cast<TokenType>(p.type));
  }
  auto in_range = [&](int32_t id) { return id >= 0 && id < n ? id : -1; };
  im.bos = in_range(info.bos_id);
  im.eos = in_range(info.eos_id);
  im.unk = in_range(info.unk_id);
  for (int32_t i = 0; i < n; ++i)
    if (im.types[i] == TokenType::kUnknown) {
      im.unk = i;  // sentencepiece's own unk: the (single) UNKNOWN piece
      break;
    }
  im.add_bos = true;  // a .model has no such flag; llama models expect BOS
  // With treat_whitespace_as_suffix the dummy space goes at the end: nothing to strip
  // at the front.
  im.strip_space = info.add_dummy_prefix && !info.treat_whitespace_as_suffix;
  EMBER_RETURN_IF_ERROR(im.Finish(std::string(bytes), name));
  *out = std::move(t);
  return Status::Ok();
}

// Plain-text segments between special tokens are each encoded by sentencepiece, so
// each gets its own dummy prefix (when the vocabulary adds one): at the start of the
// text and after every special token matched in it. This is llama.cpp's rule
// (is_prev_special) and matches encoding the pieces of a chat turn separately;
// Decode mirrors it.
Status Tokenizer::Encode(std::string_view text, bool add_bos, bool parse_special,
                         std::vector<int32_t>* ids) const {
  const Impl& im = *impl_;
  ids->clear();
  if (add_bos && im.bos >= 0) ids->push_back(im.bos);
  size_t seg_start = 0, pos = 0;
  if (parse_special || im.any_user_defined) {
    while (pos < text.size()) {
      const Impl::Special* s = im.MatchAt(text, pos, parse_special);
      if (!s) {
        ++pos;
        continue;
      }
      EMBER_RETURN_IF_ERROR(im.EncodeSegment(text.substr(seg_start, pos - seg_start), ids));
      ids->push_back(s->id);
      pos += s->text.size();
      seg_start = pos;
    }
  }
  return im.EncodeSegment(text.substr(seg_start), ids);
}

std::string Tokenizer::TokenText(int32_t id, bool render_special) const {
  std::string s;
  AppendTokenText(id, render_special, &s);
  return s;
}

void Tokenizer::AppendTokenText(int32_t id, bool render_special, std::string* out) const {
  const Impl& im = *impl_;
  if (id < 0 || static_cast<size_t>(id) >= im.pieces.size()) return;
  const std::string& p = im.pieces[id];
  switch (im.types[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      if (render_special) out->append(p);
      return;
    case TokenType::kUserDefined: out->append(p); return;
    case TokenType::kByte: {
      int b = ParseBytePiece(p);
      if (b >= 0) {
        out->push_back(static_cast<char>(b));
        return;
      }
      AppendReplacing(p, kSpaceMarker, " ", out);
      return;
    }
    default:  // normal, unused, undefined
      if (im.bpe) {
        const size_t old = out->size();
        if (!bpe::AppendByteDecoded(p, out)) {  // not byte-encoded: as written
          out->resize(old);
          out->append(p);
        }
        return;
      }
      AppendReplacing(p, kSpaceMarker, " ", out);
      return;
  }
}

size_t Tokenizer::max_token_text_bytes() const {
  size_t m = 0;
  for (const std::string& p : impl_->pieces) m = std::max(m, p.size());  // text is never longer than its piece
  return m;
}

// Strips the one space the dummy prefix put at the front of each encoded segment:
// the first text-producing token at the start of `ids` and after each special token
// (control, unknown, user-defined; rendered or not) loses one leading space.
std::string Tokenizer::Decode(const int32_t* ids, size_t n, bool render_special,
                              bool strip_leading_space) const {
  const Impl& im = *impl_;
  const bool strip = strip_leading_space && im.strip_space;
  std::string out;
  bool at_segment_start = true;
  for (size_t i = 0; i < n; ++i) {
    int32_t id = ids[i];
    std::string s = TokenText(id, render_special);
    if (IsSpecialType(type(id))) {
      out += s;
      at_segment_start = true;
      continue;
    }
    if (s.empty()) continue;
    if (strip && at_segment_start && s[0] == ' ') s.erase(0, 1);
    at_segment_start = false;
    out += s;
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->pieces.size()); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::unk_id() const { return impl_->unk; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }
int32_t Tokenizer::eot_id() const { return impl_->eot; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::byte_level() const { return impl_->bpe != nullptr; }
bool Tokenizer::clean_spaces() const { return impl_->clean_spaces; }

const std::string& Tokenizer::piece(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || static_cast<size_t>(id) >= impl_->pieces.size()) return kEmpty;
  return impl_->pieces[id];
}

TokenType Tokenizer::type(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->types.size()) return TokenType::kUndefined;
  return impl_->types[id];
}

int32_t Tokenizer::PieceToId(std::string_view piece) const {
  return impl_->piece_to_id.Find(piece);
}

}  // namespace ember

namespace ember {

// Three passes over the bytes, each judging a byte by its neighbours in the pass's
// input, as llama.cpp's detokenizer does:
//  1. " ?", " !", " .", " ,"  lose the space;
//  2. " ' " becomes "'" (the byte after such a removal no longer counts as a space);
//  3. " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
void Tokenizer::CleanUpSpaces(std::string* text) {
  std::string& t = *text;
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (i > 0 && t[i - 1] == ' ' && (c == '?' || c == '!' || c == '.' || c == ',')) out.pop_back();
    out.push_back(c);
  }
  t.swap(out);
  out.clear();
  bool prev_removed = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    const bool prev_space = i > 0 && t[i - 1] == ' ' && !prev_removed;
    prev_removed = false;
    out.push_back(c);
    if (c == '\'' && prev_space && i + 1 < t.size() && t[i + 1] == ' ') {
      out.erase(out.size() - 2, 1);  // the space before
      ++i;                            // and the one after
      prev_removed = true;
    }
  }
  t.swap(out);
  out.clear();
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (i > 0 && t[i - 1] == ' ' && c == '\'' && i + 1 < t.size()) {
      const char x1 = t[i + 1];
      const bool two = i + 2 < t.size();
      const char x2 = two ? t[i + 2] : 0;
      if (x1 == 's' || x1 == 'm' || (two && ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')))) out.pop_back();
    }
    out.push_back(c);
  }
  t.swap(out);
}

}  // namespace ember
