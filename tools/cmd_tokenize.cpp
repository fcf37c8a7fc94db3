// ember tokenize: text -> token ids, one line of comma-separated ids, then one
// "id<TAB>piece" line per id (the raw vocabulary piece, e.g. "▁Once", "<0x0A>").
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"

namespace ember::cli {

int cmd_tokenize(const Args& args) {
  std::string model_path, text;
  bool no_bos = false, special = false, verbose = false;

  ArgParser p("tokenize", "-m MODEL [--no-bos] [--special] TEXT",
              "Print the token ids of TEXT on one line (comma-separated), then one\n"
              "\"id<TAB>piece\" line per id.");
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
  for (int32_t id : ids) {
    const char* piece = ember_token_piece(model.get(), id);
    out += std::to_string(id) + '\t' + (piece ? piece : "") + '\n';
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    print_error("tokenize", "cannot write to stdout");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
