#include "common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ember::cli {

void print_error(std::string_view cmd, std::string_view message) {
  std::string line = cmd.empty() ? std::string("ember: ") : "ember " + std::string(cmd) + ": ";
  for (char c : message) line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  while (!line.empty() && line.back() == ' ') line.pop_back();
  line.push_back('\n');
  std::fflush(stdout);  // keep streamed output and the error in order on a terminal
  std::fputs(line.c_str(), stderr);
}

std::string library_error(ember_status status) {
  const char* msg = ember_last_error();
  if (msg && *msg) return msg;
  const char* name = ember_status_name(status);
  return name ? name : "error " + std::to_string(static_cast<int>(status));
}

bool& no_repack_option() {
  static bool no_repack = false;  // one command per process
  return no_repack;
}

ModelPtr load_model(std::string_view cmd, const std::string& path, bool vocab_only) {
  ember_model_params mp = ember_model_default_params();
  if (vocab_only) mp.vocab_only = 1;
  if (no_repack_option()) mp.no_repack = 1;
  ember_model* raw = nullptr;
  ember_status st = ember_model_load(path.c_str(), &mp, &raw);
  if (st != EMBER_OK || raw == nullptr) {
    std::string msg = library_error(st);
    // The library names the file in its messages; make sure the user sees it anyway.
    if (msg.find(path) == std::string::npos) msg = "'" + path + "': " + msg;
    print_error(cmd, msg);
    ember_model_free(raw);
    return nullptr;
  }
  return ModelPtr(raw);
}

bool get_model_info(std::string_view cmd, const ember_model* model, ember_model_info* info) {
  if (ember_status st = ember_model_get_info(model, info); st != EMBER_OK) {
    print_error(cmd, library_error(st));
    return false;
  }
  return true;
}

ContextPtr create_context(std::string_view cmd, ember_model* model, const ember_context_params& params) {
  ember_context* raw = nullptr;
  if (ember_status st = ember_context_create(model, &params, &raw); st != EMBER_OK || !raw) {
    print_error(cmd, library_error(st));
    ember_context_free(raw);
    return nullptr;
  }
  return ContextPtr(raw);
}

namespace {

void log_to_stderr(int level, const char* message, void* user) {
  bool verbose = user != nullptr;
  if (level >= 3 && !verbose) return;  // reported through the returned status instead
  static const char* const kNames[] = {"debug", "info", "warning", "error"};
  const char* name = kNames[level < 0 ? 0 : level > 3 ? 3 : level];
  std::string line = "ember: " + std::string(name) + ": " + (message ? message : "");
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  line.push_back('\n');
  std::fputs(line.c_str(), stderr);
}

}  // namespace

void setup_logging(bool verbose) {
  // Any non-null pointer marks verbose; the callback never dereferences it.
  static int verbose_tag = 0;
  ember_set_log_callback(log_to_stderr, verbose ? &verbose_tag : nullptr);
  if (verbose) ember_set_log_level(1);
}

bool read_text_file(const std::string& path, std::string* out, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    *error = "cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) {
    *error = "cannot read '" + path + "': " + std::strerror(err);
    return false;
  }
  *out = std::move(data);
  return true;
}

ember_status tokenize(const ember_model* model, std::string_view text, int add_bos,
                      int parse_special, std::vector<int32_t>* ids) {
  // Byte fallback gives at most one token per byte, plus BOS: usually one call.
  ids->resize(text.size() + 2);
  size_t n = 0;
  ember_status st = ember_tokenize(model, text.data(), text.size(), add_bos, parse_special,
                                   ids->data(), ids->size(), &n);
  if (st == EMBER_ERR_OUT_OF_RANGE && n > ids->size()) {
    ids->resize(n);
    st = ember_tokenize(model, text.data(), text.size(), add_bos, parse_special, ids->data(),
                        ids->size(), &n);
  }
  ids->resize(st == EMBER_OK ? n : 0);
  return st;
}

}  // namespace ember::cli
