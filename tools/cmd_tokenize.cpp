// ember tokenize: text -> token ids, one line of comma-separated ids, then one
// "id<TAB>piece" line per id: for SentencePiece the raw vocabulary piece ("▁Once",
// "<0x0A>"); for byte-level BPE, whose pieces are GPT-2 byte-encoded ("Ġworld"), the
// token's text (" world"), with bytes that would break the line or are not UTF-8 on
// their own escaped (\n, \t, \r, \xNN, and \\ for a backslash).
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"

namespace ember::cli {
namespace {

// Length of the well-formed UTF-8 character at s[i] (at most 4 bytes), 0 if none.
size_t Utf8CharLength(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

// A token's text on one line: control bytes, backslashes and stray bytes escaped.
std::string Readable(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t n = Utf8CharLength(text, i);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (n == 0 || c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.append(text, i, n);
      i += n;
      continue;
    }
    ++i;
  }
  return out;
}

// The token's text (control tokens included) for byte-level BPE vocabularies.
std::string TokenTextOf(const ember_model* model, int32_t id) {
  std::string buf(64, '\0');
  size_t n = 0;
  if (ember_token_to_text(model, id, 1, buf.data(), buf.size(), &n) == EMBER_OK && n > buf.size()) {
    buf.resize(n);
    if (ember_token_to_text(model, id, 1, buf.data(), buf.size(), &n) != EMBER_OK) n = 0;
  }
  buf.resize(n <= buf.size() ? n : 0);
  return buf;
}

}  // namespace

int cmd_tokenize(const Args& args) {
  std::string model_path, text;
  bool no_bos = false, special = false, verbose = false;

  ArgParser p("tokenize", "-m MODEL [--no-bos] [--special] TEXT",
              "Print the token ids of TEXT on one line (comma-separated), then one\n"
              "\"id<TAB>piece\" line per id (byte-level BPE vocabularies: the token's text,\n"
              "with \\n, \\t, \\r, \\xNN escapes).");
  p.option("model", 'm', "MODEL", &model_path, "model file (GGUF); a vocab-only GGUF (no tensors) will do")
      .required();
  p.flag("no-bos", 0, &no_bos, "do not add the BOS token (default: the model's rule)");
  p.flag("special", 0, &special, "parse control-token texts such as \"</s>\" as single tokens");
  p.flag("verbose", 'v', &verbose, "library log messages on stderr");
  p.positional("TEXT", &text, "the text to tokenize (use -- before a TEXT starting with '-')");
  p.epilog(
      "example:\n"
      "  ember tokenize -m memo260K.gguf \"Once upon a time\"\n"
      "  1,403,407,261,378\n"
      "  1\t<s>\n"
      "  403\t\xe2\x96\x81Once\n"
      "  ...\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;

  setup_logging(verbose);
  // Vocab-only, as llama.cpp's tokenizer tools: a GGUF without tensors works too.
  ModelPtr model = load_model("tokenize", model_path, /*vocab_only=*/true);
  if (!model) return kExitRuntime;

  std::vector<int32_t> ids;
  ember_status st = tokenize(model.get(), text, no_bos ? 0 : -1, special ? 1 : 0, &ids);
  if (st != EMBER_OK) {
    print_error("tokenize", library_error(st));
    return kExitRuntime;
  }

  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += '\n';
  const char* tokenizer_model = ember_model_meta_string(model.get(), "tokenizer.ggml.model");
  const bool byte_level = tokenizer_model && std::string(tokenizer_model) == "gpt2";
  for (int32_t id : ids) {
    const char* piece = ember_token_piece(model.get(), id);
    out += std::to_string(id) + '\t' + (byte_level ? Readable(TokenTextOf(model.get(), id)) : (piece ? piece : "")) + '\n';
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    print_error("tokenize", "cannot write to stdout");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
