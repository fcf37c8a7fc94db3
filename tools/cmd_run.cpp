// ember run: generate a continuation of a prompt, streamed to stdout token by
// token (flushed after each), with the sampling flags of llama.cpp's main example.
// Only the generated text goes to stdout; settings, timings and the stop reason go
// to stderr with --verbose.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "cmd_lora.h"
#include "common.h"

namespace ember::cli {
namespace {

// ---- Ctrl-C: the first stops generation at the next token, the second kills ---------

volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) {
  if (g_interrupted) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_interrupted = 1;
}

// ---- streaming output --------------------------------------------------------------

struct Stream {
  bool write_failed = false;
  char last = '\n';  // last byte written, to end a terminal line cleanly
  size_t bytes = 0;
};

int on_token(int32_t /*token*/, const char* text, size_t len, void* user) {
  auto* s = static_cast<Stream*>(user);
  if (len > 0) {
    if (std::fwrite(text, 1, len, stdout) != len) s->write_failed = true;
    s->last = text[len - 1];
    s->bytes += len;
  }
  if (std::fflush(stdout) != 0) s->write_failed = true;
  return (g_interrupted || s->write_failed) ? 1 : 0;
}

const char* stop_reason_name(ember_stop_reason r) {
  switch (r) {
    case EMBER_STOP_NONE: return "none";
    case EMBER_STOP_EOS: return "end of text (EOS)";
    case EMBER_STOP_TOKEN: return "stop token";
    case EMBER_STOP_STRING: return "stop string";
    case EMBER_STOP_MAX_TOKENS: return "max tokens (-n)";
    case EMBER_STOP_CONTEXT_FULL: return "context full (-c)";
    case EMBER_STOP_CALLBACK: return "interrupted";
  }
  return "unknown";
}

uint64_t random_seed() {
  try {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  } catch (const std::exception&) {
    // No entropy device: the clock and pid are enough for a sampling seed.
    auto t = std::chrono::high_resolution_clock::now().time_since_epoch().count();
    return static_cast<uint64_t>(t) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(::getpid());
  }
}

double per_second(double count, double ms) { return ms > 0 ? count * 1000.0 / ms : 0.0; }

}  // namespace

int cmd_run(const Args& args) {
  std::string model_path, prompt, prompt_file;
  std::vector<std::string> stops;
  ember_sampling_params sdef = ember_sampling_default_params();
  int32_t n_predict = 128;
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;
  int32_t top_k = 40, repeat_last_n = 64, n_threads = 0, n_ctx = 0;
  uint64_t seed = 0;
  bool reference = false, no_special = false, verbose = false, use_template = false;
  std::string template_file;

  ArgParser p("run", "-m MODEL (-p PROMPT | -f FILE) [options]",
              "Generate a continuation of the prompt, streamed to stdout as it is generated.\n"
              "Settings, timings and the stop reason go to stderr with --verbose.");
  p.option("model", 'm', "MODEL", &model_path, "model file (GGUF)").required();
  p.option("prompt", 'p', "PROMPT", &prompt, "the prompt text");
  p.option("file", 'f', "FILE", &prompt_file,
           "read the prompt from FILE (one trailing newline is dropped)");
  p.option("n-predict", 'n', "N", &n_predict,
           "tokens to generate; -1: until end of text or a full context")
      .range(-1, 1 << 30);
  p.option("temp", 0, "T", &temp, "temperature; 0: greedy").range(0.0, 100.0);
  p.option("top-k", 0, "K", &top_k, "keep the K most likely tokens; 0: off").range(0, 1 << 30);
  p.option("top-p", 0, "P", &top_p, "nucleus sampling mass; 1: off").range(0.0, 1.0);
  p.option("min-p", 0, "P", &min_p, "drop tokens below P x the top probability; 0: off")
      .range(0.0, 1.0);
  p.option("repeat-penalty", 0, "R", &repeat_penalty, "penalty of repeated tokens; 1: off")
      .range(0.0, 100.0, /*lo_open=*/true);
  p.option("repeat-last-n", 0, "N", &repeat_last_n,
           "tokens the penalties look back; 0: none, -1: the context size")
      .range(-1, 1 << 24);
  p.option("presence-penalty", 0, "P", &presence_penalty, "presence penalty; 0: off")
      .range(-2.0, 2.0);
  p.option("frequency-penalty", 0, "P", &frequency_penalty, "frequency penalty; 0: off")
      .range(-2.0, 2.0);
  p.option("seed", 's', "S", &seed, "sampling seed, for reproducible output")
      .default_text("random, shown with --verbose");
  p.option("threads", 't', "N", &n_threads, "threads; 0: all cores").range(0, 4096);
  std::vector<std::string> lora_specs;
  p.option("lora", 0, "FILE[:SCALE]", &lora_specs, kLoraFlagHelp);
  p.option("ctx-size", 'c', "N", &n_ctx, "context size in tokens; 0: the model's")
      .range(0, 1 << 24);
  p.option("stop", 0, "STRING", &stops,
           "stop when the output contains STRING (not printed); repeatable");
  p.flag("template", 0, &use_template,
         "put the prompt into the model's prompt template (GGUF key ember.prompt_template, "
         "'{query}' marks where it goes)");
  p.option("template-file", 0, "FILE", &template_file,
           "put the prompt into the template read from FILE ('{query}' marks where it goes)");
  p.flag("reference", 0, &reference, "use the scalar reference kernels (slow; for checking)");
  p.flag("no-special", 0, &no_special,
         "treat control-token texts in the prompt (\"</s>\") as plain text");
  p.flag("verbose", 'v', &verbose,
         "settings, timings (prefill, decode, ttft), stop reason on stderr");
  p.epilog(
      "examples:\n"
      "  ember run -m memo260K.gguf -p \"Once upon a time\" -n 20 --temp 0\n"
      "  ember run -m model.gguf -f prompt.txt --temp 0.7 --seed 1 --stop $'\\n\\n' --verbose\n"
      "  ember run -m models/octopus-tiny.gguf --template -p \"Take a selfie\" --temp 0 --stop \"<nexa_end>\"\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;

  if (p.seen("prompt") && p.seen("file")) return p.usage_error("give either -p or -f, not both");
  if (!p.seen("prompt") && !p.seen("file"))
    return p.usage_error("missing prompt (-p PROMPT or -f FILE)");
  if (n_predict == 0) return p.usage_error("-n must be positive, or -1 for no limit");
  for (const std::string& s : stops)
    if (s.empty()) return p.usage_error("--stop needs a non-empty string");

  if (p.seen("file")) {
    std::string err;
    if (!read_text_file(prompt_file, &prompt, &err)) {
      print_error("run", err);
      return kExitRuntime;
    }
    if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
    if (!prompt.empty() && prompt.back() == '\r') prompt.pop_back();
  }
  if (!p.seen("seed")) seed = random_seed();

  setup_logging(verbose);
  ModelPtr model = load_model("run", model_path, reference);
  if (!model) return kExitRuntime;
  ember_model_info info{};
  if (ember_status st = ember_model_get_info(model.get(), &info); st != EMBER_OK) {
    print_error("run", library_error(st));
    return kExitRuntime;
  }

  if (use_template && p.seen("template-file"))
    return p.usage_error("give either --template or --template-file, not both");
  if (use_template || p.seen("template-file")) {
    std::string tmpl, err;
    if (use_template) {
      const char* t = ember_model_meta_string(model.get(), "ember.prompt_template");
      if (!t) {
        print_error("run", model_path + ": the model has no prompt template (key ember.prompt_template); "
                           "use --template-file");
        return kExitRuntime;
      }
      tmpl = t;
    } else if (!read_text_file(template_file, &tmpl, &err)) {
      print_error("run", err);
      return kExitRuntime;
    }
    const size_t at = tmpl.find("{query}");
    if (at == std::string::npos) {
      print_error("run", "the prompt template has no '{query}' placeholder");
      return kExitRuntime;
    }
    prompt = tmpl.replace(at, 7, prompt);
  }

  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = n_ctx;
  cp.n_threads = n_threads;
  cp.reference_kernels = reference ? 1 : 0;
  ember_context* raw = nullptr;
  if (ember_status st = ember_context_create(model.get(), &cp, &raw); st != EMBER_OK || !raw) {
    print_error("run", library_error(st));
    ember_context_free(raw);
    return kExitRuntime;
  }
  ContextPtr ctx(raw);
  std::vector<LoraPtr> loras;  // freed before ctx, which is not evaluated after that
  if (!apply_loras("run", model.get(), ctx.get(), lora_specs, &loras)) return kExitRuntime;
  const int32_t ctx_size = ember_context_n_ctx(ctx.get());

  // Tokenized here rather than by ember_generate so that --no-special is honoured and
  // an over-long prompt gets a hint.
  std::vector<int32_t> ids;
  if (ember_status st = tokenize(model.get(), prompt, -1, no_special ? 0 : 1, &ids);
      st != EMBER_OK) {
    print_error("run", library_error(st));
    return kExitRuntime;
  }
  if (static_cast<int64_t>(ids.size()) > ctx_size) {
    print_error("run", "the prompt is " + std::to_string(ids.size()) +
                           " tokens, longer than the context of " + std::to_string(ctx_size) +
                           " (see -c)");
    return kExitRuntime;
  }

  ember_generate_params gp = ember_generate_default_params();
  gp.sampling = sdef;
  gp.sampling.temperature = temp;
  gp.sampling.top_k = top_k;
  gp.sampling.top_p = top_p;
  gp.sampling.min_p = min_p;
  gp.sampling.repeat_penalty = repeat_penalty;
  gp.sampling.repeat_last_n = repeat_last_n < 0 ? ctx_size : repeat_last_n;
  gp.sampling.presence_penalty = presence_penalty;
  gp.sampling.frequency_penalty = frequency_penalty;
  gp.sampling.seed = seed;
  gp.max_tokens = n_predict < 0 ? 0 : n_predict;
  std::vector<const char*> stop_ptrs;
  for (const std::string& s : stops) stop_ptrs.push_back(s.c_str());
  gp.stop_strings = stop_ptrs.empty() ? nullptr : stop_ptrs.data();
  gp.n_stop_strings = stop_ptrs.size();
  Stream stream;
  gp.on_token = on_token;
  gp.user = &stream;

  if (verbose) {
    std::fprintf(stderr,
                 "ember run: model '%s': %s%s%s, %d layers, n_embd %d, vocab %d, %.2fM params, "
                 "%.1f MiB of weights, kernels %s\n",
                 model_path.c_str(), info.architecture ? info.architecture : "?",
                 info.name && *info.name ? " " : "", info.name ? info.name : "", info.n_layer,
                 info.n_embd, info.n_vocab, info.n_params / 1e6, info.weight_bytes / 1048576.0,
                 reference ? "reference" : (info.kernels ? info.kernels : "?"));
    std::fprintf(stderr, "ember run: context %d tokens (%.1f MiB), threads %s\n", ctx_size,
                 ember_context_bytes(ctx.get()) / 1048576.0,
                 n_threads ? std::to_string(n_threads).c_str() : "all cores");
    std::fprintf(stderr, "ember run: seed %llu\n", static_cast<unsigned long long>(seed));
    std::fprintf(stderr,
                 "ember run: sampling temp %g, top-k %d, top-p %g, min-p %g, repeat-penalty %g "
                 "(last %d), presence %g, frequency %g; max tokens %s\n",
                 temp, top_k, top_p, min_p, repeat_penalty, gp.sampling.repeat_last_n,
                 presence_penalty, frequency_penalty,
                 n_predict < 0 ? "unlimited" : std::to_string(n_predict).c_str());
    std::fprintf(stderr, "ember run: prompt %zu tokens\n", ids.size());
  }

  struct sigaction sa {
  }, old_sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  ember_generate_result res{};
  ember_status st = ember_generate_tokens(ctx.get(), ids.data(), ids.size(), &gp, &res);
  sigaction(SIGINT, &old_sa, nullptr);

  // End the line on a terminal; a pipe gets exactly the generated text.
  if (stream.bytes > 0 && stream.last != '\n' && ::isatty(STDOUT_FILENO)) {
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  bool stopped_by_us = stream.write_failed || g_interrupted;
  if (st != EMBER_OK && !(st == EMBER_ERR_CANCELLED && stopped_by_us)) {
    print_error("run", library_error(st));
    return kExitRuntime;
  }
  if (stream.write_failed) {
    print_error("run", "cannot write to stdout");
    return kExitRuntime;
  }

  if (verbose) {
    std::fprintf(stderr, "ember run: prefill %d tokens in %.2f ms (%.1f tok/s)\n", res.n_prompt,
                 res.prefill_ms, per_second(res.n_prompt, res.prefill_ms));
    std::fprintf(stderr, "ember run: decode %d tokens in %.2f ms (%.1f tok/s)\n", res.n_generated,
                 res.decode_ms, per_second(res.n_generated, res.decode_ms));
    std::fprintf(stderr, "ember run: time to first token %.2f ms\n", res.ttft_ms);
    std::fprintf(stderr, "ember run: stop reason: %s\n",
                 g_interrupted ? "interrupted" : stop_reason_name(res.stop_reason));
  } else if (res.stop_reason == EMBER_STOP_CONTEXT_FULL) {
    std::fprintf(stderr, "ember run: stopped: the context of %d tokens is full (see -c)\n",
                 ctx_size);
  }
  if (g_interrupted) {
    if (!verbose) print_error("run", "interrupted");
    return kExitInterrupted;
  }
  return kExitOk;
}

}  // namespace ember::cli
