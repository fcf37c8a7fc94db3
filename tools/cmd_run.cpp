// ember run: generate a continuation of a prompt, streamed to stdout token by
// token (flushed after each), with the sampling flags of llama.cpp's main example.
// Only the generated text goes to stdout; settings, timings and the stop reason go
// to stderr with --verbose.
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "cache_flags.h"
#include "commands.h"
#include "cmd_lora.h"
#include "common.h"
#include "prompt_cache.h"
#include "sampling_flags.h"

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

double per_second(double count, double ms) { return ms > 0 ? count * 1000.0 / ms : 0.0; }

// ---- options -------------------------------------------------------------------------

struct RunOptions {
  std::string model_path, prompt, prompt_file, template_file, prompt_cache;
  std::vector<std::string> stops, lora_specs;
  int32_t n_predict = 128;
  SamplingFlags sampling;
  int32_t n_threads = 0, n_ctx = 0, n_keep = 0;
  CacheFlags cache;
  bool reference = false, no_special = false, verbose = false, use_template = false, context_shift = false;
};

void declare_flags(ArgParser& p, RunOptions& o) {
  p.option("model", 'm', "MODEL", &o.model_path, "model file (GGUF)").required();
  add_model_load_flags(p);
  p.option("prompt", 'p', "PROMPT", &o.prompt, "the prompt text");
  p.option("file", 'f', "FILE", &o.prompt_file,
           "read the prompt from FILE (one trailing newline is dropped)");
  p.option("n-predict", 'n', "N", &o.n_predict,
           "tokens to generate; -1: until end of text or a full context")
      .range(-1, 1 << 30);
  declare_sampling_flags(p, o.sampling);
  p.option("threads", 't', "N", &o.n_threads, "threads; 0: the performance cores").range(0, 4096);
  p.option("lora", 0, "FILE[:SCALE]", &o.lora_specs, kLoraFlagHelp);
  p.option("ctx-size", 'c', "N", &o.n_ctx, "context size in tokens; 0: the model's, at most 4096")
      .range(0, 1 << 24);
  declare_cache_flags(p, o.cache);
  p.flag("context-shift", 0, &o.context_shift,
         "when the context is full, forget half of the tokens after the first --keep and go on");
  p.option("keep", 0, "N", &o.n_keep, "tokens of the prompt a context shift keeps; -1: all of it").range(-1, 1 << 24);
  p.option("stop", 0, "STRING", &o.stops,
           "stop when the output contains STRING (not printed); repeatable");
  p.flag("template", 0, &o.use_template,
         "put the prompt into the model's prompt template (GGUF key ember.prompt_template, "
         "'{query}' marks where it goes)");
  p.option("template-file", 0, "FILE", &o.template_file,
           "put the prompt into the template read from FILE ('{query}' marks where it goes)");
  p.option("prompt-cache", 0, "FILE", &o.prompt_cache,
           "keep the evaluated prompt's state in FILE: saved by the first run, loaded by the next, which "
           "evaluate only what follows the prefix their prompt shares with it (same model, -c and cache types)")
      .default_text("");
  p.flag("reference", 0, &o.reference, "use the scalar reference kernels (slow; for checking)");
  p.flag("no-special", 0, &o.no_special,
         "treat control-token texts in the prompt (\"</s>\") as plain text");
  p.flag("verbose", 'v', &o.verbose,
         "settings, timings (prefill, decode, ttft), stop reason on stderr");
  p.epilog(
      "examples:\n"
      "  ember run -m memo260K.gguf -p \"Once upon a time\" -n 20 --temp 0\n"
      "  ember run -m model.gguf -f prompt.txt --temp 0.7 --seed 1 --stop $'\\n\\n' --verbose\n"
      "  ember run -m models/octopus-tiny.gguf --template -p \"Take a selfie\" --temp 0 --stop \"<nexa_end>\"\n");
}

// The usage errors the parser cannot see; kContinue when the options are fine.
int check_options(const ArgParser& p, const RunOptions& o) {
  if (p.seen("prompt") && p.seen("file")) return p.usage_error("give either -p or -f, not both");
  if (!p.seen("prompt") && !p.seen("file"))
    return p.usage_error("missing prompt (-p PROMPT or -f FILE)");
  if (o.n_predict == 0) return p.usage_error("-n must be positive, or -1 for no limit");
  for (const std::string& s : o.stops)
    if (s.empty()) return p.usage_error("--stop needs a non-empty string");
  return kContinue;
}

// -f FILE: the prompt is the file less one trailing newline. false after printing the error.
bool read_prompt_file(const std::string& path, std::string* prompt) {
  std::string err;
  if (!read_text_file(path, prompt, &err)) {
    print_error("run", err);
    return false;
  }
  if (!prompt->empty() && prompt->back() == '\n') prompt->pop_back();
  if (!prompt->empty() && prompt->back() == '\r') prompt->pop_back();
  return true;
}

// --template / --template-file: the prompt put in place of '{query}'. false after
// printing the error.
bool apply_prompt_template(const RunOptions& o, const ember_model* model, std::string* prompt) {
  std::string tmpl, err;
  if (o.use_template) {
    const char* t = ember_model_meta_string(model, "ember.prompt_template");
    if (!t) {
      print_error("run", o.model_path + ": the model has no prompt template (key ember.prompt_template); "
                                        "use --template-file");
      return false;
    }
    tmpl = t;
  } else if (!read_text_file(o.template_file, &tmpl, &err)) {
    print_error("run", err);
    return false;
  }
  const size_t at = tmpl.find("{query}");
  if (at == std::string::npos) {
    print_error("run", "the prompt template has no '{query}' placeholder");
    return false;
  }
  *prompt = tmpl.replace(at, 7, *prompt);
  return true;
}

// ---- generation ----------------------------------------------------------------------

// The prompt's ids, which must fit the context. Tokenized here rather than by
// ember_generate so that --no-special is honoured and an over-long prompt gets a hint.
// false after printing the error.
bool tokenize_prompt(const RunOptions& o, const ember_model* model, int32_t ctx_size, std::vector<int32_t>* ids) {
  if (ember_status st = tokenize(model, o.prompt, -1, o.no_special ? 0 : 1, ids); st != EMBER_OK) {
    print_error("run", library_error(st));
    return false;
  }
  if (static_cast<int64_t>(ids->size()) > ctx_size) {
    print_error("run", "the prompt is " + std::to_string(ids->size()) + " tokens, longer than the context of " +
                           std::to_string(ctx_size) + " (see -c)");
    return false;
  }
  return true;
}

// Sampling and stopping as the flags say; stop_ptrs must outlive the result.
ember_generate_params generate_params(const RunOptions& o, int32_t ctx_size, std::vector<const char*>* stop_ptrs) {
  ember_generate_params gp = ember_generate_default_params();
  gp.sampling = sampling_params(o.sampling, ctx_size);
  gp.max_tokens = o.n_predict < 0 ? 0 : o.n_predict;
  gp.context_shift = o.context_shift;
  gp.n_keep = o.n_keep;
  for (const std::string& s : o.stops) stop_ptrs->push_back(s.c_str());
  gp.stop_strings = stop_ptrs->empty() ? nullptr : stop_ptrs->data();
  gp.n_stop_strings = stop_ptrs->size();
  return gp;
}

// --verbose: the model, the context, the seed, the sampling and the prompt's length.
void print_settings(const RunOptions& o, const ember_model_info& info, const ember_context* ctx,
                    const ember_generate_params& gp, size_t n_prompt) {
  std::fprintf(stderr,
               "ember run: model '%s': %s%s%s, %d layers, n_embd %d, vocab %d, %.2fM params, "
               "%.1f MiB of weights, kernels %s\n",
               o.model_path.c_str(), info.architecture ? info.architecture : "?",
               info.name && *info.name ? " " : "", info.name ? info.name : "", info.n_layer,
               info.n_embd, info.n_vocab, info.n_params / 1e6, info.weight_bytes / 1048576.0,
               o.reference ? "reference" : (info.kernels ? info.kernels : "?"));
  ember_memory_plan plan{};
  ember_context_memory(ctx, &plan);
  std::fprintf(stderr, "ember run: context %d tokens (%.1f MiB; KV cache %.1f MiB, %s), threads %s\n",
               ember_context_n_ctx(ctx), ember_context_bytes(ctx) / 1048576.0, plan.kv_bytes / 1048576.0,
               ("K " + o.cache.type_k + ", V " + o.cache.type_v).c_str(),
               o.n_threads ? std::to_string(o.n_threads).c_str() : "the performance cores");
  const SamplingFlags& s = o.sampling;
  std::fprintf(stderr, "ember run: seed %llu\n", static_cast<unsigned long long>(s.seed));
  std::fprintf(stderr,
               "ember run: sampling temp %g, top-k %d, top-p %g, min-p %g, repeat-penalty %g "
               "(last %d), presence %g, frequency %g; max tokens %s\n",
               s.temp, s.top_k, s.top_p, s.min_p, s.repeat_penalty, gp.sampling.repeat_last_n,
               s.presence_penalty, s.frequency_penalty,
               o.n_predict < 0 ? "unlimited" : std::to_string(o.n_predict).c_str());
  std::fprintf(stderr, "ember run: prompt %zu tokens\n", n_prompt);
}

// --prompt-cache: loads the saved state, evaluates the prompt after the prefix it shares with
// it, and saves the prompt's state unless the file held exactly this prompt. Generation then
// re-uses all of it but the last token. false after printing the error.
bool evaluate_with_prompt_cache(const RunOptions& o, ember_context* ctx, const std::vector<int32_t>& ids) {
  int32_t n_loaded = 0, n_reused = 0;
  if (!load_prompt_cache("run", ctx, o.prompt_cache, &n_loaded)) return false;
  if (ember_status st = ember_eval_prompt(ctx, ids.data(), ids.size(), &n_reused); st != EMBER_OK) {
    print_error("run", library_error(st));
    return false;
  }
  const auto n = static_cast<int32_t>(ids.size());
  report_prompt_cache("run", o.prompt_cache, n_reused, n);
  const bool saved_this_prompt = n_loaded == n && n_reused == n - 1;
  return saved_this_prompt || save_prompt_cache("run", ctx, o.prompt_cache);
}

// Generates with Ctrl-C handled: the first stops at the next token, the second kills.
ember_status generate_interruptibly(ember_context* ctx, const std::vector<int32_t>& ids,
                                    const ember_generate_params& gp, ember_generate_result* res) {
  struct sigaction sa {
  }, old_sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  ember_status st = ember_generate_tokens(ctx, ids.data(), ids.size(), &gp, res);
  sigaction(SIGINT, &old_sa, nullptr);
  return st;
}

// After the generation: timings and the stop reason (--verbose), the exit code.
int report_end(const RunOptions& o, const ember_generate_result& res, int32_t ctx_size) {
  if (o.verbose) {
    const int32_t evaluated = res.n_prompt - res.n_prompt_reused;
    std::fprintf(stderr, "ember run: prefill %d tokens in %.2f ms (%.1f tok/s)\n", evaluated, res.prefill_ms,
                 per_second(evaluated, res.prefill_ms));
    std::fprintf(stderr, "ember run: decode %d tokens in %.2f ms (%.1f tok/s)\n", res.n_generated,
                 res.decode_ms, per_second(res.n_generated, res.decode_ms));
    std::fprintf(stderr, "ember run: time to first token %.2f ms\n", res.ttft_ms);
    if (res.n_shifts) std::fprintf(stderr, "ember run: context shifts: %d\n", res.n_shifts);
    std::fprintf(stderr, "ember run: stop reason: %s\n",
                 g_interrupted ? "interrupted" : stop_reason_name(res.stop_reason));
  } else if (res.stop_reason == EMBER_STOP_CONTEXT_FULL) {
    std::fprintf(stderr, "ember run: stopped: the context of %d tokens is full (see -c)\n",
                 ctx_size);
  }
  if (g_interrupted) {
    if (!o.verbose) print_error("run", "interrupted");
    return kExitInterrupted;
  }
  return kExitOk;
}

}  // namespace

int cmd_run(const Args& args) {
  RunOptions o;
  ArgParser p("run", "-m MODEL (-p PROMPT | -f FILE) [options]",
              "Generate a continuation of the prompt, streamed to stdout as it is generated.\n"
              "Settings, timings and the stop reason go to stderr with --verbose.");
  declare_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;
  if (int rc = check_options(p, o); rc != kContinue) return rc;
  if (p.seen("file") && !read_prompt_file(o.prompt_file, &o.prompt)) return kExitRuntime;
  if (!p.seen("seed")) o.sampling.seed = random_seed();

  setup_logging(o.verbose);
  ModelPtr model = load_model("run", o.model_path);
  ember_model_info info{};
  if (!model || !get_model_info("run", model.get(), &info)) return kExitRuntime;
  if (o.use_template && p.seen("template-file"))
    return p.usage_error("give either --template or --template-file, not both");
  if ((o.use_template || p.seen("template-file")) && !apply_prompt_template(o, model.get(), &o.prompt))
    return kExitRuntime;

  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = o.n_ctx;
  cp.n_threads = o.n_threads;
  if (o.reference) cp.reference_kernels = 1;  // else the default: EMBER_REFERENCE
  apply_cache_flags(o.cache, &cp);
  ContextPtr ctx = create_context("run", model.get(), cp);
  if (!ctx) return kExitRuntime;
  std::vector<LoraPtr> loras;  // freed before ctx, which is not evaluated after that
  if (!apply_loras("run", model.get(), ctx.get(), o.lora_specs, &loras)) return kExitRuntime;
  const int32_t ctx_size = ember_context_n_ctx(ctx.get());
  std::vector<int32_t> ids;
  if (!tokenize_prompt(o, model.get(), ctx_size, &ids)) return kExitRuntime;
  if (!o.prompt_cache.empty() && !evaluate_with_prompt_cache(o, ctx.get(), ids)) return kExitRuntime;

  std::vector<const char*> stop_ptrs;
  ember_generate_params gp = generate_params(o, ctx_size, &stop_ptrs);
  Stream stream;
  gp.on_token = on_token;
  gp.user = &stream;
  if (o.verbose) print_settings(o, info, ctx.get(), gp, ids.size());
  ember_generate_result res{};
  const ember_status st = generate_interruptibly(ctx.get(), ids, gp, &res);

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
  return report_end(o, res, ctx_size);
}

}  // namespace ember::cli
