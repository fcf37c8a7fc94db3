// The KV cache flags shared by the commands that create a context (run, chat, call,
// eval-calls, logits, bench): --cache-type-k/-ctk, --cache-type-v/-ctv (llama.cpp's
// names) and --swa-full, declared on a command's ArgParser and put into
// ember_context_params. Type names are the library's (ember_cache_type_from_name): one
// list of what Ember supports, in the library.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "ember/ember.h"

namespace ember::cli {

struct CacheFlags {
  std::string type_k = "f16", type_v = "f16";
  bool swa_full = false;
};

// Declares -ctk, -ctv and --swa-full. A name Ember does not support is a usage error when
// the flags are parsed. lists: bench's axes, comma-separated names ("f16,q8_0").
void declare_cache_flags(ArgParser& p, CacheFlags& c, bool lists = false);
// The names of a comma-separated list, each checked by the library; "" on success, else
// the library's one-line reason (naming the bad name and what is supported).
std::string parse_cache_types(std::string_view list, std::vector<ember_cache_type>* out);
// The flags into a context's parameters (names already checked by the parser).
void apply_cache_flags(const CacheFlags& c, ember_context_params* cp);

}  // namespace ember::cli
