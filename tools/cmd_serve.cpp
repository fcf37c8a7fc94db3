// ember serve: an OpenAI-compatible HTTP server (docs/SERVER.md). One model, loaded
// once, and --parallel N slots (contexts with their own KV caches); chat and text
// completions, server-sent-event streaming, function calls as `tool_calls` for a
// functional-token model, per-request LoRA adapters and Crayon blends, /metrics.
// It prints one line, "ember serve: listening on http://HOST:PORT", once it accepts
// connections (--port 0: an ephemeral port), and stops cleanly at SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>

#include "args.h"
#include "commands.h"
#include "router/route.h"
#include "serve/http_server.h"

namespace ember::cli {

namespace {

using serve::ServeOptions;
using serve::ServerState;

void declare_flags(ArgParser& p, ServeOptions& o) {
  p.option("model", 'm', "MODEL", &o.model_path, "model file (GGUF)").required();
  add_model_load_flags(p);
  p.option("host", 0, "HOST", &o.host, "address to listen on (loopback unless told otherwise)");
  p.option("port", 0, "PORT", &o.port, "port; 0: an ephemeral port (printed)").range(0, 65535);
  p.option("parallel", 0, "N", &o.parallel, "slots: requests generated at the same time").range(1, 256);
  p.option("ctx-size", 'c', "N", &o.n_ctx, "context size of each slot in tokens; 0: the model's, at most 4096")
      .range(0, 1 << 24);
  p.option("threads", 't', "N", &o.n_threads, "threads of each generation; 0: the performance cores").range(0, 4096);
  p.option("lora", 0, "FILE[@TASK_EX][:SCALE]", &o.lora_specs,
           "LoRA adapter, applied to every request at SCALE (default 1) unless the request says otherwise "
           "(\"lora\", \"lora_blend\"); ids in order; TASK_EX: its task examples for lora_blend (else "
           "those in its metadata); repeatable");
  p.option("api-key", 0, "KEY", &o.api_key, "require 'Authorization: Bearer KEY' (all endpoints but /health)")
      .default_text("");
  p.option("max-body", 0, "BYTES", &o.max_body, "largest request body; larger: HTTP 413");
  p.option("queue", 0, "N", &o.queue, "requests that may wait for a slot; more: HTTP 503 (default 4 x --parallel)")
      .range(-1, 1 << 20)
      .default_text("");
  p.option("timeout", 0, "S", &o.timeout_s, "read/write timeout and longest wait for a slot, seconds")
      .range(1, 86400);
  p.option("functions", 0, "F.json", &o.functions_path,
           "function registry (default: the model's ember.functions, else functions.json beside the model; "
           "none: plain chat)")
      .default_text("");
  p.option("chat-template", 0, "NAME|FILE", &o.chat_template,
           "chat template: a built-in name (chatml, llama2, llama3, gemma, phi3, zephyr) or a Jinja file "
           "(default: the model's, else chatml)")
      .default_text("");
  declare_route_flags(p, o.route, "server-api-key");
  p.epilog(
      "endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,\n"
      "GET /metrics, GET /lora-adapters (docs/SERVER.md)\n"
      "\n"
      "example:\n"
      "  ember serve -m octopus-tiny.gguf --port 8080 --lora lora-phone.gguf\n"
      "  curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n"
      "       -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Take a selfie\"}]}'\n"
      "an edge server that forwards the tool calls its model is unsure of (docs/HYBRID.md):\n"
      "  ember serve -m octopus-tiny-q4_0.gguf --lora lora-phone.gguf --port 8081 \\\n"
      "      --server http://127.0.0.1:8080 --router router.json --server-timeout 2\n");
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

bool readable(const std::string& path) {
  std::string text, err;
  return read_text_file(path, &text, &err);
}

// The registry (optional) and, with one, the call's prompt template. false after printing the error.
bool load_functions(ServerState& s) {
  const std::string beside = dir_of(s.opt.model_path);
  std::string path = s.opt.functions_path;
  const bool in_meta = ember_model_meta_string(s.model.get(), "ember.functions") != nullptr;
  if (path.empty() && !in_meta && readable(beside + "/functions.json")) path = beside + "/functions.json";
  if (path.empty() && !in_meta) return true;  // a plain model: chat only
  ember_functions* fns = nullptr;
  if (ember_status st = ember_functions_load(s.model.get(), path.empty() ? nullptr : path.c_str(), &fns);
      st != EMBER_OK) {
    print_error("serve", library_error(st));
    return false;
  }
  s.fns.reset(fns);
  std::string err;
  if (const char* t = ember_model_meta_string(s.model.get(), "ember.prompt_template")) {
    s.call_template = t;
  } else if (!read_text_file(beside + "/prompt_template.txt", &s.call_template, &err)) {
    print_error("serve", s.opt.model_path + ": a function registry but no prompt template (key "
                                            "ember.prompt_template, or prompt_template.txt beside the model)");
    return false;
  }
  if (s.call_template.find("{query}") == std::string::npos) {
    print_error("serve", "the function-calling prompt template has no '{query}' placeholder");
    return false;
  }
  return true;
}

// The chat template and its end-of-turn tokens; false after printing the error.
bool load_chat_template(ServerState& s) {
  std::string err;
  const std::string& arg = s.opt.chat_template;
  if (!arg.empty() && arg.find('/') != std::string::npos && !read_text_file(arg, &s.chat_template, &err)) {
    print_error("serve", "--chat-template: " + err);
    return false;
  }
  if (!arg.empty() && s.chat_template.empty()) s.chat_template = arg;
  if (arg.empty() && !ember_model_meta_string(s.model.get(), "tokenizer.chat_template")) s.chat_template = "chatml";
  const ember_chat_message probe = {"user", "probe"};
  size_t n = 0;
  const char* tmpl = s.chat_template.empty() ? nullptr : s.chat_template.c_str();
  if (ember_status st = ember_chat_apply_template(s.model.get(), tmpl, &probe, 1, 1, nullptr, 0, &n);
      st != EMBER_OK && st != EMBER_ERR_OUT_OF_RANGE) {
    print_error("serve", "chat template: " + library_error(st));
    return false;
  }
  std::vector<int32_t> ids(64);
  if (ember_status st = ember_chat_end_of_turn_tokens(s.model.get(), tmpl, ids.data(), ids.size(), &n);
      st != EMBER_OK) {
    print_error("serve", "chat template: " + library_error(st));
    return false;
  }
  ids.resize(n);
  s.end_of_turn = ids;
  return true;
}

bool create_slots(ServerState& s) {
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = s.opt.n_ctx;
  cp.n_threads = s.opt.n_threads;
  std::vector<std::unique_ptr<serve::Slot>> slots;
  for (int32_t i = 0; i < s.opt.parallel; ++i) {
    auto slot = std::make_unique<serve::Slot>();
    slot->ctx = create_context("serve", s.model.get(), cp);
    if (!slot->ctx) return false;
    std::string err;
    if (!s.adapters.Apply(slot->ctx.get(), s.adapters.start_scales(), &slot->lora_scales, &err)) {
      print_error("serve", "--lora: " + err);
      return false;
    }
    slots.push_back(std::move(slot));
  }
  s.n_ctx = ember_context_n_ctx(slots[0]->ctx.get());
  s.slots = std::make_unique<serve::SlotPool>(std::move(slots), s.opt.queue);
  return true;
}

bool set_up(ServerState& s) {
  s.model = load_model("serve", s.opt.model_path);
  if (!s.model) return false;
  ember_model_info info{};
  if (!get_model_info("serve", s.model.get(), &info)) return false;
  const std::string& p = s.opt.model_path;
  const size_t slash = p.find_last_of('/');
  s.model_name = *info.name ? info.name : p.substr(slash == std::string::npos ? 0 : slash + 1);
  return load_functions(s) && load_chat_template(s) && s.adapters.Load(s.model.get(), s.opt.lora_specs) &&
         create_slots(s);
}

// --server: the router of tool calls (the flags as `ember call --server`'s). false after printing the error.
bool set_up_router(const ArgParser& p, ServerState& s) {
  if (s.opt.route.server_url.empty()) {
    if (s.opt.route.mode == "server") return print_error("serve", "--route server needs --server URL"), false;
    return true;  // no forwarding: every response as without the router's flags
  }
  if (!s.fns)
    return print_error("serve", "--server forwards function calls, but " + s.opt.model_path +
                                    " has no function registry (--functions)"),
           false;
  auto router = std::make_unique<Router>();
  if (!make_router("serve", p, s.opt.route, s.fns.get(), router.get())) return false;
  s.router = std::move(router);
  s.metrics.EnableRouting();
  return true;
}

// SIGINT/SIGTERM are taken by one thread (sigwait), blocked everywhere else: blocked
// here, before any other thread starts (the contexts' workers and httplib's inherit the
// mask). A shell starts background jobs with SIGINT ignored, and an ignored signal is
// discarded even while blocked: the default disposition comes back first.
sigset_t block_stop_signals() {
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is a failed write, not a dead server
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // the main thread's "the server stopped by itself"
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace

int cmd_serve(const Args& args) {
  ServerState s;
  ArgParser p("serve",
              "-m MODEL [--host H] [--port P] [--parallel N] [--lora A[:S]]... [--api-key KEY] [--server URL] "
              "[options]",
              "An OpenAI-compatible HTTP server: chat and text completions, streaming, function calls as\n"
              "tool_calls, per-request LoRA adapters and blends, Prometheus metrics. With --server, an edge\n"
              "server: tool calls its model is unsure of go to that server (as 'ember call --server').");
  declare_flags(p, s.opt);
  if (int rc = p.parse(args); rc != kContinue) return rc;
  if (s.opt.queue < 0) s.opt.queue = 4 * s.opt.parallel;
  setup_logging(false);
  const sigset_t stop_signals = block_stop_signals();
  if (!set_up(s)) return kExitRuntime;
  if (!set_up_router(p, s)) return kExitUsage;

  httplib::Server svr;
  serve::configure_server(svr, s);
  const int port = s.opt.port == 0 ? svr.bind_to_any_port(s.opt.host)
                                   : (svr.bind_to_port(s.opt.host, s.opt.port) ? s.opt.port : -1);
  if (port < 0) {
    print_error("serve", "cannot listen on " + s.opt.host + ":" + std::to_string(s.opt.port));
    return kExitRuntime;
  }
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    s.stopping = true;
    svr.stop();
  });
  std::printf("ember serve: listening on http://%s:%d\n", s.opt.host.c_str(), port);
  std::fflush(stdout);
  const bool ok = svr.listen_after_bind();
  pthread_kill(stopper.native_handle(), SIGUSR1);  // no-op when a signal already stopped it
  stopper.join();
  if (!ok && !s.stopping) {
    print_error("serve", "the server stopped: listening failed");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
