// ember quantize IN.gguf OUT.gguf TYPE: converts a model's weights (F32/F16/BF16) to
// one of llama.cpp's file types (ember_quantize_type_name), choosing per tensor as
// llama.cpp's llama-quantize does by default; keeps all metadata. Through the C API only
// (ember_quantize_file); the rules are in offline/quant_rules.h.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <strings.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "ember/ember_tools.h"
#include "progress.h"

namespace ember::cli {
namespace {

std::string type_list() {
  std::string s;
  for (int32_t i = 0; const char* t = ember_quantize_type_name(i); ++i) s += std::string(i ? ", " : "") + t;
  return s;
}

bool known_type(const std::string& t) {
  for (int32_t i = 0; const char* n = ember_quantize_type_name(i); ++i)
    if (::strcasecmp(n, t.c_str()) == 0) return true;
  return false;
}

unsigned long long file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<unsigned long long>(st.st_size) : 0;
}

}  // namespace

int cmd_quantize(const Args& args) {
  std::string in_path, out_path, type;
  int32_t n_threads = 0;
  bool verbose = false, quiet = false;

  ArgParser p("quantize", "IN.gguf OUT.gguf TYPE [options]",
              "Convert the weights of a GGUF model (F32, F16 or BF16) to TYPE: " + type_list() +
                  ".\nTensor types are chosen as llama.cpp's llama-quantize chooses them by default (no\n"
                  "importance matrix), so the file holds the types llama.cpp's would: norms stay F32,\n"
                  "the output matrix gets Q6_K (Q8_0 when its rows are not a multiple of 256), the _k_m\n"
                  "and _k_s mixes give more bits to attn_v and ffn_down of some layers, and rows that are\n"
                  "not a multiple of 256 fall back to 32-element blocks (q4_k -> q5_0, q5_k -> q5_1,\n"
                  "q6_k -> q8_0, q2_k/q3_k -> q4_0). All metadata is kept.");
  p.positional("IN.gguf", &in_path, "input model");
  p.positional("OUT.gguf", &out_path, "output model (written via a temporary file + rename)");
  p.positional("TYPE", &type, "target type: " + type_list());
  p.option("threads", 't', "N", &n_threads, "threads; 0: the performance cores (the output is the same)").range(0, 4096);
  p.flag("verbose", 'v', &verbose, "one progress line per tensor even when stderr is not a terminal");
  p.flag("quiet", 'q', &quiet, "no progress display and no summary");
  p.epilog(
      "examples:\n"
      "  ember quantize model-f16.gguf model-q4_k_m.gguf q4_k_m\n"
      "  ember quantize model-f16.gguf model-q5_k_m.gguf q5_k_m\n"
      "  ember quantize model-f32.gguf model-q8_0.gguf q8_0 -t 4\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;
  if (!known_type(type)) return p.usage_error("unknown type '" + type + "' (expected one of: " + type_list() + ")");

  setup_logging(false);
  const auto t0 = std::chrono::steady_clock::now();
  ember_status st;
  {
    FileProgress progress("quantize", quiet, verbose);
    ember_quantize_params qp = ember_quantize_default_params();
    qp.n_threads = n_threads;
    qp.progress = FileProgress::callback;
    qp.user = &progress;
    st = ember_quantize_file(in_path.c_str(), out_path.c_str(), type.c_str(), &qp);
    if (st == EMBER_OK) progress.print_notes();
  }
  if (st != EMBER_OK) {
    print_error("quantize", library_error(st));
    return st == EMBER_ERR_CANCELLED && FileProgress::was_interrupted() ? kExitInterrupted : kExitRuntime;
  }
  if (!quiet) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %s, %s -> %s in %.1f s\n", out_path.c_str(), type.c_str(), human_bytes(file_size(in_path)).c_str(),
                human_bytes(file_size(out_path)).c_str(), s);
  }
  return kExitOk;
}

}  // namespace ember::cli
