// ember call: ask a function-calling model (Octopus-style functional tokens) for a
// call and print it as one JSON line:
//   {"function": "set_alarm", "arguments": {"time": "7 am"}, "token": "<nexa_3>"}
// Decoding is constrained to valid calls and stops at the end token unless told
// otherwise. With --verbose, stderr gets the raw output, time to first token, total
// latency, tokens generated and the tokens early stopping saved. An output that is
// not a valid call (possible with --no-constrain) is printed as
//   {"function": ..., "error": "...", "output": "..."}  and the exit status is 1.
#include "cmd_call.h"

#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "prompt_cache.h"
#include "router/route.h"

namespace ember::cli {

namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

bool file_exists(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f) std::fclose(f);
  return f != nullptr;
}

const char* stop_name(ember_stop_reason r) {
  switch (r) {
    case EMBER_STOP_NONE: return "none";
    case EMBER_STOP_EOS: return "end of text (EOS)";
    case EMBER_STOP_TOKEN: return "end token";
    case EMBER_STOP_STRING: return "stop string";
    case EMBER_STOP_MAX_TOKENS: return "max tokens (-n)";
    case EMBER_STOP_CONTEXT_FULL: return "context full";
    case EMBER_STOP_CALLBACK: return "interrupted";
  }
  return "unknown";
}

// Registry: --functions, else the model's metadata, else functions.json beside it.
// false after printing the error.
bool load_functions(std::string_view cmd, const CallSetupOptions& o, const std::string& beside, CallSetup* out) {
  ember_functions* fns = nullptr;
  ember_status st;
  if (!o.functions_path.empty()) {
    st = ember_functions_load(out->model.get(), o.functions_path.c_str(), &fns);
    out->functions_source = o.functions_path;
  } else if (ember_model_meta_string(out->model.get(), "ember.functions")) {
    st = ember_functions_load(out->model.get(), nullptr, &fns);
    out->functions_source = "model metadata ember.functions";
  } else if (file_exists(beside + "/functions.json")) {
    out->functions_source = beside + "/functions.json";
    st = ember_functions_load(out->model.get(), out->functions_source.c_str(), &fns);
  } else {
    print_error(cmd, o.model_path + ": the model has no function registry (key ember.functions) and there is "
                                    "no functions.json beside it; give --functions FILE");
    return false;
  }
  if (st != EMBER_OK || !fns) {
    print_error(cmd, library_error(st));
    ember_functions_free(fns);
    return false;
  }
  out->fns.reset(fns);
  if (!o.end_token.empty()) {
    if (ember_status s = ember_functions_set_end_token(fns, o.end_token.c_str()); s != EMBER_OK) {
      print_error(cmd, library_error(s));
      return false;
    }
  }
  return true;
}

// Prompt template: --prompt-template, else metadata, else prompt_template.txt beside it.
// false after printing the error.
bool load_prompt_template(std::string_view cmd, const CallSetupOptions& o, const std::string& beside,
                          CallSetup* out) {
  std::string err;
  if (!o.template_path.empty()) {
    if (!read_text_file(o.template_path, &out->prompt_template, &err)) {
      print_error(cmd, err);
      return false;
    }
    out->template_source = o.template_path;
  } else if (const char* t = ember_model_meta_string(out->model.get(), "ember.prompt_template")) {
    out->prompt_template = t;
    out->template_source = "model metadata ember.prompt_template";
  } else if (file_exists(beside + "/prompt_template.txt")) {
    out->template_source = beside + "/prompt_template.txt";
    if (!read_text_file(out->template_source, &out->prompt_template, &err)) {
      print_error(cmd, err);
      return false;
    }
  } else {
    print_error(cmd, o.model_path + ": the model has no prompt template (key ember.prompt_template) and there "
                                    "is no prompt_template.txt beside it; give --prompt-template FILE");
    return false;
  }
  if (out->prompt_template.find("{query}") == std::string::npos) {
    print_error(cmd, "the prompt template (" + out->template_source + ") has no '{query}' placeholder");
    return false;
  }
  return true;
}

struct CallCommandOptions {
  CallSetupOptions so;
  std::string query, prompt_cache;
  bool no_constrain = false, no_early_stop = false, verbose = false;
  RouteFlags route;
  int32_t max_tokens = 128;
  float temp = 0;
  uint64_t seed = 0;
};

void declare_flags(ArgParser& p, CallCommandOptions& o) {
  p.option("model", 'm', "MODEL", &o.so.model_path, "model file (GGUF)").required();
  add_model_load_flags(p);
  p.option("functions", 0, "F.json", &o.so.functions_path,
           "function registry (default: the model's metadata ember.functions, else functions.json "
           "beside the model)")
      .default_text("");
  p.option("prompt-template", 0, "FILE", &o.so.template_path,
           "prompt template, '{query}' marks the query (default: the model's ember.prompt_template, "
           "else prompt_template.txt beside the model)")
      .default_text("");
  p.option("end-token", 0, "TOKEN", &o.so.end_token, "end token of a call (default: the registry's, <nexa_end>)")
      .default_text("");
  p.option("lora", 0, "FILE[:SCALE]", &o.so.lora_specs, kLoraFlagHelp);
  p.flag("no-constrain", 0, &o.no_constrain, "let the model write anything (output may not be a valid call)");
  p.flag("no-early-stop", 0, &o.no_early_stop,
         "do not stop at the end token: generate on to end of text or the limit (for comparison)");
  p.option("n-predict", 'n', "N", &o.max_tokens, "token limit of the call").range(1, 1 << 20);
  p.option("temp", 0, "T", &o.temp, "temperature; 0: greedy").range(0.0, 100.0);
  p.option("seed", 's', "S", &o.seed, "sampling seed (with --temp)");
  p.option("threads", 't', "N", &o.so.n_threads, "threads; 0: the performance cores").range(0, 4096);
  p.option("ctx-size", 'c', "N", &o.so.n_ctx, "context size in tokens; 0: the model's, at most 4096")
      .range(0, 1 << 24);
  p.option("prompt-cache", 0, "FILE", &o.prompt_cache,
           "keep the state of the call's tokens in FILE: saved by the first run, loaded by the next, which "
           "evaluate only what follows the prefix their prompt shares with it (the template's opening)")
      .default_text("");
  declare_cache_flags(p, o.so.cache);
  declare_route_flags(p, o.route);
  p.flag("reference", 0, &o.so.reference, "use the scalar reference kernels (slow; for checking)");
  p.flag("verbose", 'v', &o.verbose,
         "raw output, time to first token, latency, tokens generated and saved on stderr");
  p.positional("QUERY", &o.query, "the user's request");
  p.epilog(
      "examples:\n"
      "  ember call -m models/octopus-tiny.gguf \"Take a selfie with the front camera\"\n"
      "  {\"function\": \"take_photo\", \"arguments\": {\"camera\": \"front\"}, \"token\": \"<nexa_0>\"}\n"
      "  ember call -m octopus-tiny.gguf --no-constrain --verbose \"Call Bob on speaker\"\n"
      "  ember call -m octopus-tiny.gguf --lora lora-phone.gguf \"txt Dad brt\"\n"
      "  ember call -m octopus-tiny.gguf --lora lora-phone.gguf --server http://127.0.0.1:8080 \\\n"
      "      --router router.json \"lr heat 17!\"   (adds \"source\": \"local\"|\"server\" and \"score\")\n"
      "\n"
      "Exit status: 0 a valid call, 1 no valid call or a runtime error, 2 usage error.\n");
}

// --verbose: where the registry and template came from, the raw output, the timings.
void print_call_details(const CallSetup& s, const ember_call_params& cp, const ember_call_result& r) {
  std::fprintf(stderr, "ember call: functions: %s (%d), template: %s\n", s.functions_source.c_str(),
               ember_functions_count(s.fns.get()), s.template_source.c_str());
  std::fprintf(stderr, "ember call: decoding: %s, %s\n", cp.constrain ? "constrained" : "unconstrained",
               cp.early_stop ? "early stop at the end token" : "no early stop");
  std::fprintf(stderr, "ember call: output: %s\n", r.text);
  std::fprintf(stderr, "ember call: prompt %d tokens (%d from the cache), time to first token %.2f ms, total %.2f ms\n",
               r.n_prompt, r.n_prompt_reused, r.ttft_ms, r.total_ms);
  std::fprintf(stderr, "ember call: tokens generated %d (call %d), stop reason: %s\n", r.n_generated,
               r.n_call_tokens, stop_name(r.stop_reason));
  if (r.n_generated_no_stop >= 0)
    std::fprintf(stderr, "ember call: without early stopping %d tokens: %s %d\n", r.n_generated_no_stop,
                 cp.early_stop ? "saved" : "early stopping would save", r.n_saved);
  if (cp.constrain)
    std::fprintf(stderr, "ember call: the constraint changed the greedy choice %d time%s\n",
                 r.n_constraint_changed, r.n_constraint_changed == 1 ? "" : "s");
}

}  // namespace

bool prepare_call(std::string_view cmd, const CallSetupOptions& o, CallSetup* out) {
  out->model = load_model(cmd, o.model_path);
  if (!out->model) return false;
  const std::string beside = dir_of(o.model_path);
  if (!load_functions(cmd, o, beside, out) || !load_prompt_template(cmd, o, beside, out)) return false;
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = o.n_ctx;
  cp.n_threads = o.n_threads;
  if (o.reference) cp.reference_kernels = 1;  // else the default: EMBER_REFERENCE
  apply_cache_flags(o.cache, &cp);
  out->ctx = create_context(cmd, out->model.get(), cp);
  if (!out->ctx) return false;
  return apply_loras(cmd, out->model.get(), out->ctx.get(), o.lora_specs, &out->loras);
}

ember_call_params call_params(const CallSetup& s, bool no_constrain, bool no_early_stop, int32_t max_tokens) {
  ember_call_params cp = ember_call_default_params();
  cp.prompt_template = s.prompt_template.c_str();
  cp.constrain = no_constrain ? 0 : 1;
  cp.early_stop = no_early_stop ? 0 : 1;
  cp.max_tokens = max_tokens;
  return cp;
}

int cmd_call(const Args& args) {
  CallCommandOptions o;
  ArgParser p("call", "-m MODEL [--functions F.json] [--prompt-template FILE] [--lora A[:S]] [options] QUERY",
              "Ask a function-calling model for a call; print it as one JSON line:\n"
              "{\"function\": NAME, \"arguments\": {...}, \"token\": FUNCTIONAL_TOKEN}.");
  declare_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;

  setup_logging(o.verbose);
  CallSetup s;
  if (!prepare_call("call", o.so, &s)) return kExitRuntime;
  Router router;
  if (!make_router("call", p, o.route, s.fns.get(), &router)) return kExitUsage;

  ember_call_params cp = call_params(s, o.no_constrain, o.no_early_stop, o.max_tokens);
  cp.count_no_stop = o.verbose ? 1 : 0;  // the saving is reported only with --verbose
  cp.sampling.temperature = o.temp;
  cp.sampling.seed = o.seed;
  int32_t n_loaded = 0;
  if (!o.prompt_cache.empty() && !load_prompt_cache("call", s.ctx.get(), o.prompt_cache, &n_loaded))
    return kExitRuntime;
  ember_call_result r;
  if (ember_status st = ember_call(s.ctx.get(), s.fns.get(), o.query.c_str(), &cp, &r); st != EMBER_OK) {
    print_error("call", library_error(st));
    return kExitRuntime;
  }
  if (!o.prompt_cache.empty()) {
    report_prompt_cache("call", o.prompt_cache, r.n_prompt_reused, r.n_prompt);
    // Saved unless the file already held this whole prompt.
    if (r.n_prompt_reused < r.n_prompt - 1 && !save_prompt_cache("call", s.ctx.get(), o.prompt_cache)) {
      ember_call_result_free(&r);
      return kExitRuntime;
    }
  }
  // Without --server the line is the library's, byte for byte.
  RouteDecision route;
  if (router.has_server()) route = route_query(router, s.fns.get(), o.query, r);
  const std::string line = (router.has_server() ? routed_call_json(router, r, route) : std::string(r.json)) + "\n";
  const bool wrote = std::fwrite(line.data(), 1, line.size(), stdout) == line.size() && std::fflush(stdout) == 0;
  if (o.verbose) print_call_details(s, cp, r);
  const bool valid = r.valid != 0 || route.server_answered;
  const std::string error = r.error ? r.error : "";
  ember_call_result_free(&r);
  if (!wrote) {
    print_error("call", "cannot write to stdout");
    return kExitRuntime;
  }
  if (!valid) {
    print_error("call", "the model's output is not a valid call: " + error);
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
