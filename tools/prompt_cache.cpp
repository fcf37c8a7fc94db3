#include "prompt_cache.h"

#include <sys/stat.h>

#include <cstdio>

#include "common.h"

namespace ember::cli {

bool load_prompt_cache(std::string_view cmd, ember_context* ctx, const std::string& path, int32_t* n_loaded) {
  *n_loaded = 0;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return true;  // the first run: nothing saved yet
  if (ember_status s = ember_context_load(ctx, path.c_str()); s != EMBER_OK) {
    print_error(cmd, library_error(s) + " (--prompt-cache: delete the file or give another)");
    return false;
  }
  *n_loaded = ember_n_past(ctx);
  return true;
}

bool save_prompt_cache(std::string_view cmd, const ember_context* ctx, const std::string& path) {
  if (ember_status s = ember_context_save(ctx, path.c_str()); s != EMBER_OK) {
    print_error(cmd, library_error(s));
    return false;
  }
  return true;
}

void report_prompt_cache(std::string_view cmd, const std::string& path, int32_t n_reused, int32_t n_prompt) {
  std::fprintf(stderr, "ember %.*s: prompt cache %s: %d of %d prompt tokens reused\n", static_cast<int>(cmd.size()),
               cmd.data(), path.c_str(), n_reused, n_prompt);
}

}  // namespace ember::cli
