// --prompt-cache FILE of `ember run` and `ember call`, as llama.cpp's: the first run saves the
// state of the evaluated prompt (ember_context_save), later runs load it and evaluate only
// what follows the prefix their prompt shares with it. Through the public C API only.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "ember/ember.h"

namespace ember::cli {

// Loads FILE into ctx when it exists (*n_loaded: the tokens it held; 0 when there is no file
// yet). false after printing the error: a file from another model, cache type or context
// size, or a damaged one (delete it, or give another FILE).
bool load_prompt_cache(std::string_view cmd, ember_context* ctx, const std::string& path, int32_t* n_loaded);
// Saves ctx's state to FILE; false after printing the error.
bool save_prompt_cache(std::string_view cmd, const ember_context* ctx, const std::string& path);
// "ember CMD: prompt cache FILE: R of N prompt tokens reused" on stderr.
void report_prompt_cache(std::string_view cmd, const std::string& path, int32_t n_reused, int32_t n_prompt);

}  // namespace ember::cli
