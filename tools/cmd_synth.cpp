// ember synth --preset NAME --type TYPE -o FILE [--seed S] [--vocab FILE.gguf]: writes a
// model with the exact shapes of a real one (llama/gemma), random N(0, 1/fan_in) weights and
// a valid SentencePiece vocabulary (or the vocabulary and chat template of --vocab), for
// benchmarks without downloads and tests. Through the C API only
// (ember_synth_file); the design is in offline/synth_model.h.
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

std::string preset_list() {
  std::string s;
  for (int32_t i = 0; const char* n = ember_synth_preset_name(i); ++i) s += std::string(i ? ", " : "") + n;
  return s;
}

std::string type_list() {
  std::string s;
  for (int32_t i = 0; const char* t = ember_quantize_type_name(i); ++i) s += std::string(i ? ", " : "") + t;
  return s;
}

bool known(const std::string& v, const char* (*name)(int32_t), bool any_case) {
  for (int32_t i = 0; const char* n = name(i); ++i)
    if (any_case ? ::strcasecmp(n, v.c_str()) == 0 : v == n) return true;
  return false;
}

}  // namespace

int cmd_synth(const Args& args) {
  std::string preset, type, out_path, vocab;
  uint64_t seed = 0;
  int32_t n_threads = 0;
  bool list = false, verbose = false, quiet = false;

  ArgParser p("synth", "--preset NAME --type TYPE -o FILE [options]",
              "Write a model with the exact tensor shapes of a real one, random weights N(0, 1/fan_in)\n"
              "(deterministic by --seed) and a SentencePiece vocabulary of the right size. For\n"
              "benchmarks and tests: it loads and runs, its text is noise.");
  p.option("preset", 'p', "NAME", &preset, "model shapes: " + preset_list() + " (--list describes them)");
  p.option("type", 0, "TYPE", &type, "weight type: " + type_list());
  p.option("out", 'o', "FILE", &out_path, "output model (written via a temporary file + rename)");
  p.option("seed", 's', "S", &seed, "random seed; same preset, type and seed: same bytes");
  p.option("vocab", 0, "FILE.gguf", &vocab,
           "copy the tokenizer.* keys (vocabulary, merges, special ids, chat template) of this GGUF "
           "(a vocab-only file will do) instead of the synthetic vocabulary; n_vocab follows it");
  p.option("threads", 't', "N", &n_threads, "threads; 0: the performance cores (the output is the same)").range(0, 4096);
  p.flag("list", 0, &list, "print the presets and exit");
  p.flag("verbose", 'v', &verbose, "one progress line per tensor even when stderr is not a terminal");
  p.flag("quiet", 'q', &quiet, "no progress display and no summary");
  p.epilog(
      "examples:\n"
      "  ember synth --preset tinyllama-1.1b --type q4_k_m -o tinyllama-synth.gguf\n"
      "  ember synth --preset gemma-2b --type q8_0 -o gemma-synth.gguf --seed 7\n"
      "  ember synth --preset tiny-gemma3 --type q8_0 --vocab gemma3-vocab.gguf -o chat-test.gguf\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;
  if (list) {
    for (int32_t i = 0; const char* n = ember_synth_preset_name(i); ++i)
      std::printf("%-16s %s\n", n, ember_synth_preset_description(i));
    return kExitOk;
  }
  if (preset.empty()) return p.usage_error("missing --preset (one of: " + preset_list() + ")");
  if (type.empty()) return p.usage_error("missing --type (one of: " + type_list() + ")");
  if (out_path.empty()) return p.usage_error("missing -o FILE");
  if (!known(preset, ember_synth_preset_name, false))
    return p.usage_error("unknown preset '" + preset + "' (expected one of: " + preset_list() + ")");
  if (!known(type, ember_quantize_type_name, true))
    return p.usage_error("unknown type '" + type + "' (expected one of: " + type_list() + ")");

  setup_logging(false);
  const auto t0 = std::chrono::steady_clock::now();
  ember_status st;
  {
    FileProgress progress("synth", quiet, verbose);
    ember_synth_params sp = ember_synth_default_params();
    sp.preset = preset.c_str();
    sp.type = type.c_str();
    sp.seed = seed;
    sp.vocab = vocab.empty() ? nullptr : vocab.c_str();
    sp.n_threads = n_threads;
    sp.progress = FileProgress::callback;
    sp.user = &progress;
    st = ember_synth_file(out_path.c_str(), &sp);
    if (st == EMBER_OK) progress.print_notes();
  }
  if (st != EMBER_OK) {
    print_error("synth", library_error(st));
    return st == EMBER_ERR_CANCELLED && FileProgress::was_interrupted() ? kExitInterrupted : kExitRuntime;
  }
  if (!quiet) {
    struct stat s;
    const unsigned long long size = ::stat(out_path.c_str(), &s) == 0 ? static_cast<unsigned long long>(s.st_size) : 0;
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string with_vocab = vocab.empty() ? "" : ", vocabulary of " + vocab;
    std::printf("%s: %s %s%s, seed %llu, %s in %.1f s\n", out_path.c_str(), preset.c_str(), type.c_str(),
                with_vocab.c_str(), static_cast<unsigned long long>(seed), human_bytes(size).c_str(), sec);
  }
  return kExitOk;
}

}  // namespace ember::cli
