// ember logits: evaluate a token sequence in one forward pass and write every
// position's logits as raw float32 little-endian [n_tokens][n_vocab], row-major
// (row i: the next-token logits after positions 0..i), the layout of the golden
// files in shared/models. The ids are used as given: no BOS is added.
//
// The file is written to a temporary name in the same directory, then renamed,
// so a reader never sees a partial file.
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "cache_flags.h"
#include "commands.h"
#include "cmd_lora.h"
#include "common.h"

namespace ember::cli {
namespace {

// Writes n floats little-endian; false on a short write.
bool write_f32_le(std::FILE* f, const float* v, size_t n) {
  if constexpr (std::endian::native == std::endian::little) {
    return std::fwrite(v, sizeof(float), n, f) == n;
  } else {
    std::vector<uint32_t> le(n);
    std::memcpy(le.data(), v, n * sizeof(float));
    for (uint32_t& w : le)
      w = (w >> 24) | ((w >> 8) & 0xff00u) | ((w << 8) & 0xff0000u) | (w << 24);
    return std::fwrite(le.data(), sizeof(uint32_t), n, f) == n;
  }
}

// Writes `rows` to path via a temporary file + rename. "" on success, else the error.
std::string write_atomically(const std::string& path, const std::vector<const float*>& rows,
                             size_t n_vocab) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return "'" + path + "' is a directory";
  std::string tmpl = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    return "cannot create a temporary file next to '" + path + "': " + std::strerror(errno);
  std::FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmpl.c_str());
    return "cannot write '" + tmpl + "': " + err;
  }
  bool ok = true;
  for (const float* row : rows) ok = ok && write_f32_le(f, row, n_vocab);
  ok = ok && std::fflush(f) == 0;
  int err = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    ::unlink(tmpl.c_str());
    return "cannot write '" + tmpl + "': " + std::strerror(err ? err : errno);
  }
  // mkstemp creates 0600; give the result the usual permissions (umask applies).
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(tmpl.c_str(), 0666 & ~mask);
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmpl.c_str());
    return "cannot rename '" + tmpl + "' to '" + path + "': " + std::strerror(err);
  }
  return "";
}

struct LogitsOptions {
  std::string model_path, out_path;
  std::vector<int32_t> tokens;
  std::vector<std::string> lora_specs;
  int32_t n_threads = 0, n_ctx = 0;
  CacheFlags cache;
  bool reference = false, verbose = false;
};

void declare_flags(ArgParser& p, LogitsOptions& o) {
  p.option("model", 'm', "MODEL", &o.model_path, "model file (GGUF)").required();
  add_model_load_flags(p);
  p.option("tokens", 0, "IDS", &o.tokens, "comma-separated token ids, e.g. 1,403,407").required();
  p.option("out", 'o', "FILE", &o.out_path, "output file (written via a temporary file + rename)")
      .required();
  p.option("threads", 't', "N", &o.n_threads, "threads; 0: the performance cores").range(0, 4096);
  p.option("lora", 0, "FILE[:SCALE]", &o.lora_specs, kLoraFlagHelp);
  p.option("ctx-size", 'c', "N", &o.n_ctx, "context size; 0: the number of tokens").range(0, 1 << 24);
  declare_cache_flags(p, o.cache);
  p.flag("reference", 0, &o.reference, "use the scalar reference kernels");
  p.flag("verbose", 'v', &o.verbose, "library log messages and a summary on stderr");
  p.epilog(
      "example:\n"
      "  ember logits -m memo260K.gguf --tokens 1,403,407,261,378 --out logits.f32\n"
      "  python3 -c \"import numpy as np; print(np.fromfile('logits.f32', '<f4').reshape(5, "
      "-1))\"\n");
}

// Every id must be in the vocabulary; false after printing the first that is not.
bool check_token_ids(const std::vector<int32_t>& tokens, int32_t n_vocab) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab) {
      print_error("logits", "token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                " is out of range: the vocabulary has " + std::to_string(n_vocab) +
                                " tokens (ids 0.." + std::to_string(n_vocab - 1) + ")");
      return false;
    }
  }
  return true;
}

// Evaluates the ids in one batch and writes every position's logits. false after
// printing the error.
bool eval_and_write(const LogitsOptions& o, ember_model* model, int32_t n_vocab) {
  const int32_t n = static_cast<int32_t>(o.tokens.size());
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = o.n_ctx != 0 ? o.n_ctx : n;
  cp.n_batch = n;
  cp.n_threads = o.n_threads;
  cp.logits_all = 1;
  if (o.reference) cp.reference_kernels = 1;  // else the default: EMBER_REFERENCE
  apply_cache_flags(o.cache, &cp);
  ContextPtr ctx = create_context("logits", model, cp);
  if (!ctx) return false;
  std::vector<LoraPtr> loras;  // freed before ctx, which is not evaluated after that
  if (!apply_loras("logits", model, ctx.get(), o.lora_specs, &loras)) return false;
  if (ember_status st = ember_eval(ctx.get(), o.tokens.data(), o.tokens.size()); st != EMBER_OK) {
    print_error("logits", library_error(st));
    return false;
  }
  std::vector<const float*> rows(n);
  for (int32_t i = 0; i < n; ++i) {
    rows[i] = ember_get_logits(ctx.get(), i);
    if (!rows[i]) {
      print_error("logits", "the engine kept no logits for position " + std::to_string(i));
      return false;
    }
  }
  std::string err = write_atomically(o.out_path, rows, static_cast<size_t>(n_vocab));
  if (!err.empty()) {
    print_error("logits", err);
    return false;
  }
  return true;
}

}  // namespace

int cmd_logits(const Args& args) {
  LogitsOptions o;
  ArgParser p("logits", "-m MODEL --tokens IDS --out FILE [options]",
              "Evaluate the token ids (as given, no BOS added) in one forward pass and write\n"
              "the logits of every position to FILE: float32 little-endian, [n_tokens][n_vocab],\n"
              "row-major (row i: the next-token logits after positions 0..i).");
  declare_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;
  const int32_t n = static_cast<int32_t>(o.tokens.size());
  if (o.n_ctx != 0 && o.n_ctx < n)
    return p.usage_error("context size " + std::to_string(o.n_ctx) + " is smaller than the " +
                         std::to_string(n) + " tokens");

  setup_logging(o.verbose);
  ModelPtr model = load_model("logits", o.model_path);
  ember_model_info info{};
  if (!model || !get_model_info("logits", model.get(), &info)) return kExitRuntime;
  if (!check_token_ids(o.tokens, info.n_vocab) || !eval_and_write(o, model.get(), info.n_vocab))
    return kExitRuntime;
  if (o.verbose)
    std::fprintf(stderr, "ember logits: wrote %d x %d float32 to '%s' (%s kernels)\n", n,
                 info.n_vocab, o.out_path.c_str(),
                 o.reference ? "reference" : (info.kernels ? info.kernels : "?"));
  return kExitOk;
}

}  // namespace ember::cli
