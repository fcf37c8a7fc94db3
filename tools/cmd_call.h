// Shared set-up of the function-calling subcommands (`call`, `eval-calls`):
// model, context (with any --lora adapters), function registry and prompt template, each from a flag, the
// model's metadata, or the file beside the model, in that order.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache_flags.h"
#include "cmd_lora.h"
#include "common.h"
#include "ember/ember.h"

namespace ember::cli {

struct FunctionsDeleter {
  void operator()(ember_functions* f) const { ember_functions_free(f); }
};
using FunctionsPtr = std::unique_ptr<ember_functions, FunctionsDeleter>;

struct CallSetupOptions {
  std::string model_path;
  std::string functions_path;  // "" : metadata ember.functions, then functions.json beside the model
  std::string template_path;   // "" : metadata ember.prompt_template, then prompt_template.txt beside it
  std::string end_token;       // "" : the registry's
  std::vector<std::string> lora_specs;  // --lora FILE[:SCALE], applied to the context
  int32_t n_ctx = 0, n_threads = 0;
  CacheFlags cache;  // -ctk, -ctv, --swa-full
  bool reference = false;
};

struct CallSetup {
  ModelPtr model;
  std::vector<LoraPtr> loras;  // declared before ctx: freed after it
  ContextPtr ctx;
  FunctionsPtr fns;
  std::string prompt_template;
  std::string functions_source, template_source;  // where each came from (for --verbose)
};

// Prints one error line and returns false on failure.
bool prepare_call(std::string_view cmd, const CallSetupOptions& o, CallSetup* out);

// The call parameters `call` and `eval-calls` share: s's prompt template, constrained
// decoding and early stopping unless switched off, the token limit.
ember_call_params call_params(const CallSetup& s, bool no_constrain, bool no_early_stop, int32_t max_tokens);

}  // namespace ember::cli
