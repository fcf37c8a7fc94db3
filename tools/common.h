// Pieces shared by the `ember` subcommands: one-line error reporting, RAII handles
// for the C API objects, logging set-up, file reading and tokenization.
// Everything here goes through the public API (include/ember/ember.h) only.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "ember/ember.h"

namespace ember::cli {

// Prints "ember CMD: MESSAGE" as one line on stderr (newlines in MESSAGE become
// spaces); CMD "" prints "ember: MESSAGE".
void print_error(std::string_view cmd, std::string_view message);
// The message of a failed library call: ember_last_error(), or the status name
// when the library left no message.
std::string library_error(ember_status status);

struct ModelDeleter {
  void operator()(ember_model* m) const { ember_model_free(m); }
};
struct ContextDeleter {
  void operator()(ember_context* c) const { ember_context_free(c); }
};
using ModelPtr = std::unique_ptr<ember_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<ember_context, ContextDeleter>;

// Loads a model; on failure prints one line naming the path and returns null.
// vocab_only: metadata and tokenizer only (no weights; no context can be made from it).
// --no-repack (alias -nr), read by load_model: for the commands that compute.
bool& no_repack_option();
inline void add_model_load_flags(ArgParser& p) {
  p.flag("no-repack", 0, &no_repack_option(),
         "use the weights in place in the mapped file: no row-interleaved copy at load (slower prefill)")
      .alias("nr");
}
ModelPtr load_model(std::string_view cmd, const std::string& path, bool vocab_only = false);
// ember_model_get_info; false after printing the error.
bool get_model_info(std::string_view cmd, const ember_model* model, ember_model_info* info);
// Creates a context; on failure prints one line and returns null.
ContextPtr create_context(std::string_view cmd, ember_model* model, const ember_context_params& params);

// Routes library log messages to stderr as "ember: LEVEL: message". Errors of the
// library are not printed unless verbose: each also comes back as a status that the
// subcommand reports in its one-line error. verbose additionally lowers the level to info.
void setup_logging(bool verbose);

// Reads a whole file; false with *error set (naming the path) on failure.
bool read_text_file(const std::string& path, std::string* out, std::string* error);

// ember_tokenize into a vector, growing the buffer as the library asks.
ember_status tokenize(const ember_model* model, std::string_view text, int add_bos,
                      int parse_special, std::vector<int32_t>* ids);

}  // namespace ember::cli
