// VocabSpec from a GGUF file's tokenizer.ggml.* keys (as llama.cpp's converters write
// them for a SentencePiece vocabulary), and Tokenizer::FromGguf.
#include <array>
#include <cstdint>

#include "core/log.h"
#include "loader/gguf.h"
#include "tokenizer/bpe/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

// A token-id key: absent keeps `*out`; any integer type is accepted. Ids outside
// [0, n_vocab) (e.g. 0xFFFFFFFF or -1 meaning "none") become -1, as in llama.cpp.
Status ReadTokenId(const GgufFile& g, const char* key, size_t n_vocab, int32_t* out) {
  const GgufValue* v = g.Find(key);
  if (!v) return Status::Ok();
  int64_t id;
  switch (v->type) {
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
      id = v->i;
      break;
    case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: case GgufType::kU64:
      id = v->u > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v->u);
      break;
    default:
      return BadFormat(g.path() + ": key '" + key + "': expected an integer token id, found " +
                       gguf_type_name(v->type));
  }
  if (id < 0 || static_cast<uint64_t>(id) >= n_vocab) {
    if (id != -1 && id != 0xFFFFFFFFll)
      EMBER_LOG_WARN("%s: %s = %lld is outside the vocabulary (%zu tokens); ignored", g.path().c_str(), key,
                     static_cast<long long>(id), n_vocab);
    *out = -1;
    return Status::Ok();
  }
  *out = static_cast<int32_t>(id);
  return Status::Ok();
}

// gpt2: merges and pre, and the add_bos default that goes with the pre (llama.cpp's).
Status ReadBpeKeys(const GgufFile& g, VocabSpec* v) {
  const GgufValue* merges = g.Find("tokenizer.ggml.merges");
  if (!merges)
    return BadFormat(g.path() + ": byte-level BPE vocabulary without merges (key 'tokenizer.ggml.merges' not found)");
  std::vector<std::string_view> m;
  EMBER_RETURN_IF_ERROR(g.GetStringArray("tokenizer.ggml.merges", &m));
  v->merges.assign(m.begin(), m.end());
  v->pre = "default";
  if (g.Has("tokenizer.ggml.pre")) {
    EMBER_RETURN_IF_ERROR(g.GetString("tokenizer.ggml.pre", &v->pre));
  } else {
    EMBER_LOG_WARN("%s: no tokenizer.ggml.pre; using the 'default' pre-tokenizer (ids may differ from the original)",
                   g.path().c_str());
  }
  bpe::PreTokenizerFlags flags;  // an unknown pre is refused by Tokenizer::FromVocab, naming it
  if (bpe::PreTokenizer::FlagsOf(v->pre, &flags)) v->add_bos = flags.add_bos_default;
  v->add_space_prefix = false;
  return Status::Ok();
}

}  // namespace

Status VocabFromGguf(const GgufFile& g, VocabSpec* out) {
  VocabSpec v;
  Status st = g.GetString("tokenizer.ggml.model", &v.model);
  if (st.code() == Code::kNotFound)
    return NotFound(g.path() + ": no vocabulary (key 'tokenizer.ggml.model' not found)");
  EMBER_RETURN_IF_ERROR(st);
  if (v.model != "llama" && v.model != "gpt2")
    return Unsupported(g.path() + ": tokenizer.ggml.model '" + v.model +
                       "' is not supported (only 'llama', i.e. SentencePiece, and 'gpt2', byte-level BPE)");
  const bool bpe = v.model == "gpt2";

  std::vector<std::string_view> tokens;
  EMBER_RETURN_IF_ERROR(g.GetStringArray("tokenizer.ggml.tokens", &tokens));
  const size_t n = tokens.size();
  if (n == 0) return BadFormat(g.path() + ": tokenizer.ggml.tokens is empty");
  if (n > 0x7fffffff) return BadFormat(g.path() + ": tokenizer.ggml.tokens: too many tokens");
  v.tokens.assign(tokens.begin(), tokens.end());

  if (g.Has("tokenizer.ggml.scores")) {
    EMBER_RETURN_IF_ERROR(g.GetF32Array("tokenizer.ggml.scores", &v.scores));
    if (v.scores.size() != n)
      return BadFormat(g.path() + ": vocabulary size mismatch: tokenizer.ggml.scores has " +
                       std::to_string(v.scores.size()) + " entries, tokenizer.ggml.tokens " + std::to_string(n));
  } else {
    v.scores.assign(n, 0.0f);
  }
  if (g.Has("tokenizer.ggml.token_type")) {
    EMBER_RETURN_IF_ERROR(g.GetI32Array("tokenizer.ggml.token_type", &v.types));
    if (v.types.size() != n)
      return BadFormat(g.path() + ": vocabulary size mismatch: tokenizer.ggml.token_type has " +
                       std::to_string(v.types.size()) + " entries, tokenizer.ggml.tokens " + std::to_string(n));
  } else {
    v.types.assign(n, static_cast<int32_t>(TokenType::kNormal));
  }

  if (bpe) v.bos_id = v.eos_id = v.unk_id = -1;  // no conventional ids in a BPE vocabulary
  EMBER_RETURN_IF_ERROR(ReadTokenId(g, "tokenizer.ggml.bos_token_id", n, &v.bos_id));
  EMBER_RETURN_IF_ERROR(ReadTokenId(g, "tokenizer.ggml.eos_token_id", n, &v.eos_id));
  EMBER_RETURN_IF_ERROR(ReadTokenId(g, "tokenizer.ggml.unknown_token_id", n, &v.unk_id));
  EMBER_RETURN_IF_ERROR(ReadTokenId(g, "tokenizer.ggml.padding_token_id", n, &v.pad_id));
  EMBER_RETURN_IF_ERROR(ReadTokenId(g, "tokenizer.ggml.eot_token_id", n, &v.eot_id));
  // Defaults for absent ids are VocabSpec's (bos 1, eos 2, unk 0), valid only if in range.
  auto clamp = [&](int32_t* id) { if (*id >= static_cast<int32_t>(n)) *id = -1; };
  clamp(&v.bos_id);
  clamp(&v.eos_id);
  clamp(&v.unk_id);
  // An unknown piece typed in the vocabulary wins over the default unk id 0.
  if (!g.Has("tokenizer.ggml.unknown_token_id")) {
    for (size_t i = 0; i < n; ++i)
      if (v.types[i] == static_cast<int32_t>(TokenType::kUnknown)) {
        v.unk_id = static_cast<int32_t>(i);
        break;
      }
  }

  if (bpe) EMBER_RETURN_IF_ERROR(ReadBpeKeys(g, &v));
  EMBER_RETURN_IF_ERROR(g.GetBoolOr("tokenizer.ggml.add_bos_token", &v.add_bos));
  EMBER_RETURN_IF_ERROR(g.GetBoolOr("tokenizer.ggml.add_eos_token", &v.add_eos));
  v.add_space_prefix = !bpe;  // llama.cpp's default for SentencePiece when the key is absent
  EMBER_RETURN_IF_ERROR(g.GetBoolOr("tokenizer.ggml.add_space_prefix", &v.add_space_prefix));
  v.remove_extra_whitespaces = false;
  EMBER_RETURN_IF_ERROR(g.GetBoolOr("tokenizer.ggml.remove_extra_whitespaces", &v.remove_extra_whitespaces));

  // Byte fallback when every byte <0x00>..<0xFF> is a byte-typed piece.
  std::array<bool, 256> have{};
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = v.tokens[i];
    if (v.types[i] != static_cast<int32_t>(TokenType::kByte) || t.size() != 6 || t.compare(0, 3, "<0x") != 0 ||
        t[5] != '>')
      continue;
    auto hex = [](char c) {
      return (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    };
    int hi = hex(t[3]), lo = hex(t[4]);  // upper case only, as sentencepiece spells them
    if (hi >= 0 && lo >= 0) have[hi * 16 + lo] = true;
  }
  v.byte_fallback = true;
  for (bool h : have) v.byte_fallback = v.byte_fallback && h;

  *out = std::move(v);
  return Status::Ok();
}

Status Tokenizer::FromGguf(const GgufFile& gguf, std::unique_ptr<Tokenizer>* out) {
  VocabSpec v;
  EMBER_RETURN_IF_ERROR(VocabFromGguf(gguf, &v));
  Status st = FromVocab(v, out);
  if (!st.ok()) return Status(st.code(), gguf.path() + ": " + st.message());
  return Status::Ok();
}

}  // namespace ember
