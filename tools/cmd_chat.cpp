// ember chat: a conversation with an instruct model through its chat template. With -p,
// one turn and exit; otherwise one user message per line of stdin (a terminal or a pipe),
// each reply streamed to stdout as it is generated and ended by a newline. The KV cache
// keeps the conversation, so a turn evaluates only its new tokens (tools/chat_session.h).
// Ctrl-C stops the current reply (and, at the prompt, exits); Ctrl-D or /exit ends.
// Notices (dropped turns, --verbose counts) go to stderr; stdout holds only the replies,
// and on a terminal the "> " prompt.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>

#include "args.h"
#include "cache_flags.h"
#include "chat_session.h"
#include "commands.h"
#include "common.h"
#include "prompt_cache.h"
#include "sampling_flags.h"

namespace ember::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

struct ChatOptions {
  std::string model_path, system, prompt, chat_template, prompt_cache;
  SamplingFlags sampling;
  int32_t n_predict = -1, n_threads = 0, n_ctx = 0;
  CacheFlags cache;
  bool reference = false, verbose = false;
};

void declare_flags(ArgParser& p, ChatOptions& o) {
  p.option("model", 'm', "MODEL", &o.model_path, "model file (GGUF)").required();
  add_model_load_flags(p);
  p.option("system", 0, "TEXT", &o.system, "the system message");
  p.option("prompt", 'p', "PROMPT", &o.prompt, "one user message: answer it and exit");
  p.option("chat-template", 0, "NAME|FILE", &o.chat_template,
           "a built-in template (chatml, llama2, llama3, gemma, phi3, zephyr) or a Jinja file")
      .default_text("the model's tokenizer.chat_template");
  p.option("n-predict", 'n', "N", &o.n_predict, "most tokens per reply; -1: until the end of the turn")
      .range(-1, 1 << 30);
  declare_sampling_flags(p, o.sampling);
  p.option("threads", 't', "N", &o.n_threads, "threads; 0: the performance cores").range(0, 4096);
  p.option("ctx-size", 'c', "N", &o.n_ctx, "context size in tokens; 0: the model's, at most 4096")
      .range(0, 1 << 24);
  p.option("prompt-cache", 0, "FILE", &o.prompt_cache,
           "keep the state after the first reply in FILE: saved by the first run, loaded by the next, whose "
           "first turn evaluates only what follows the prefix it shares with it (the system message)")
      .default_text("");
  declare_cache_flags(p, o.cache);
  p.flag("reference", 0, &o.reference, "use the scalar reference kernels (slow; for checking)");
  p.flag("verbose", 'v', &o.verbose,
         "per turn on stderr: [turn N: prompt tokens evaluated K, cached C] and the reply's length "
         "and ending; the end-of-turn tokens");
  p.epilog(
      "commands (a line of their own): /reset forgets the conversation, /system TEXT sets the system\n"
      "message (/system alone removes it), /exit ends. Ctrl-C stops a reply, Ctrl-D ends.\n"
      "When the context fills, the oldest turns are dropped (the system message stays).\n"
      "\n"
      "examples:\n"
      "  ember chat -m gemma-3-1b-it-Q4_K_M.gguf\n"
      "  ember chat -m Qwen3-0.6B-Q4_K_M.gguf --system \"Answer in one sentence.\" -p \"Why is the sky blue?\"\n"
      "  printf 'Hi\\nWhat is 2+2?\\n' | ember chat -m model.gguf --temp 0 --verbose\n");
}

// --chat-template NAME|FILE -> ChatSession's template ("" = the model's own). A value that
// renders a message is a built-in name (plain text without Jinja syntax would render as
// itself); else it must be a readable file. false after printing the error.
bool resolve_template(const ember_model* model, const std::string& arg, std::string* tmpl) {
  tmpl->clear();
  if (arg.empty()) return true;
  const ember_chat_message probe = {"user", "\x01probe"};
  char buf[4096];
  size_t n = 0;
  if (arg.find('{') == std::string::npos &&
      ember_chat_apply_template(model, arg.c_str(), &probe, 1, 1, buf, sizeof buf, &n) == EMBER_OK &&
      std::string(buf, n).find(probe.content) != std::string::npos) {
    *tmpl = arg;
    return true;
  }
  std::string err;
  if (read_text_file(arg, tmpl, &err)) return true;
  print_error("chat", "--chat-template '" + arg +
                          "' is neither a built-in template (chatml, llama2, llama3, gemma, phi3, zephyr) "
                          "nor a readable file (" + err + ")");
  return false;
}

// One line of stdin without its newline; false at end of input or on Ctrl-C.
bool read_line(std::string* line) {
  line->clear();
  for (;;) {
    const int c = std::fgetc(stdin);
    if (c == EOF) {
      if (std::ferror(stdin) && errno == EINTR && !g_interrupted) {
        std::clearerr(stdin);
        continue;
      }
      return !line->empty() && !g_interrupted;
    }
    if (c == '\n') break;
    line->push_back(static_cast<char>(c));
  }
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return true;
}

struct Output {
  bool write_failed = false;
  bool write(std::string_view text) {
    if (!text.empty() && std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) write_failed = true;
    if (std::fflush(stdout) != 0) write_failed = true;
    return !write_failed && !g_interrupted;
  }
};

// The loop over turns; the exit code.
class ChatLoop {
 public:
  ChatLoop(ChatSession& session, const ChatOptions& o) : s_(session), o_(o), interactive_(::isatty(STDIN_FILENO)) {}

  int RunOne(const std::string& message) {
    const bool ok = Exchange(message);
    if (g_interrupted) return kExitInterrupted;
    return ok && !out_.write_failed ? kExitOk : kExitRuntime;
  }

  int RunAll() {
    bool any_failed = false;
    std::string line;
    for (;;) {
      if (interactive_) out_.write("> ");
      if (!read_line(&line)) break;
      if (line.empty()) continue;
      if (line[0] == '/' && line.size() > 1 && line[1] != '/') {
        if (line == "/exit") return any_failed ? kExitRuntime : kExitOk;
        Command(line);
        continue;
      }
      if (line.rfind("//", 0) == 0) line.erase(0, 1);  // "//x" sends "/x"
      any_failed |= !Exchange(line);
      if (out_.write_failed) return kExitRuntime;
      g_interrupted = 0;  // Ctrl-C stopped this reply only
    }
    if (interactive_) out_.write("\n");
    if (g_interrupted) return kExitInterrupted;  // Ctrl-C at the prompt
    return any_failed ? kExitRuntime : kExitOk;
  }

 private:
  // A user message, its reply on stdout and a newline; false after printing an error.
  bool Exchange(const std::string& message) {
    TurnReport r;
    std::string err;
    const bool ok = s_.Turn(message, [this](std::string_view t) { return out_.write(t); }, &r, &err);
    if (r.dropped > 0)
      std::fprintf(stderr, "ember chat: the context is full: dropped the oldest %d turn%s\n", r.dropped,
                   r.dropped == 1 ? "" : "s");
    if (!ok) {
      print_error("chat", err);
      return false;
    }
    out_.write("\n");
    if (r.turn == 1 && !o_.prompt_cache.empty()) {
      report_prompt_cache("chat", o_.prompt_cache, r.cached, r.cached + r.evaluated);
      if (!save_prompt_cache("chat", s_.context(), o_.prompt_cache)) return false;
    }
    if (o_.verbose) {
      std::fprintf(stderr, "[turn %d: prompt tokens evaluated %d, cached %d]\n", r.turn, r.evaluated, r.cached);
      std::fprintf(stderr, "[turn %d: reply %d tokens, %s]\n", r.turn, r.generated, ending(r));
    }
    return true;
  }

  static const char* ending(const TurnReport& r) {
    if (r.end_of_turn) return "end of turn";
    switch (r.stop_reason) {
      case EMBER_STOP_MAX_TOKENS: return "-n reached";
      case EMBER_STOP_CONTEXT_FULL: return "context full";
      case EMBER_STOP_CALLBACK: return "interrupted";
      default: return "stopped";
    }
  }

  void Command(const std::string& line) {
    if (line == "/reset") {
      s_.Reset();
      Notice("the conversation is reset");
    } else if (line == "/system" || line.rfind("/system ", 0) == 0) {
      s_.SetSystem(line.size() > 8 ? line.substr(8) : "");
      Notice(line.size() > 8 ? "the system message is set" : "the system message is removed");
    } else {
      print_error("chat", "unknown command '" + line.substr(0, line.find(' ')) +
                              "' (commands: /reset, /system TEXT, /exit; start a message with // to send a '/')");
    }
  }

  void Notice(const char* what) const {
    if (interactive_ || o_.verbose) std::fprintf(stderr, "ember chat: %s\n", what);
  }

  ChatSession& s_;
  const ChatOptions& o_;
  const bool interactive_;
  Output out_;
};

// --verbose: the end-of-turn tokens, as the session stops at them.
void print_end_of_turn(const ember_model* model, const std::vector<int32_t>& ids) {
  std::string list;
  for (int32_t id : ids) {
    const char* piece = ember_token_piece(model, id);
    list += (list.empty() ? "" : ", ") + std::string(piece ? piece : "?") + " (" + std::to_string(id) + ")";
  }
  std::fprintf(stderr, "ember chat: a reply ends at %s\n", list.c_str());
}

}  // namespace

int cmd_chat(const Args& args) {
  ChatOptions o;
  ArgParser p("chat", "-m MODEL [--system TEXT] [-p PROMPT] [--chat-template NAME|FILE] [options]",
              "Chat with an instruct model through its chat template: one message per line of\n"
              "stdin (or -p for one), replies streamed to stdout.");
  declare_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;
  if (p.seen("prompt") && o.prompt.empty()) return p.usage_error("-p needs a non-empty message");
  if (o.n_predict == 0) return p.usage_error("-n must be positive, or -1 for no limit");
  if (!p.seen("seed")) o.sampling.seed = random_seed();

  setup_logging(o.verbose);
  ModelPtr model = load_model("chat", o.model_path);
  if (!model) return kExitRuntime;
  ChatSession::Config config;
  if (!resolve_template(model.get(), o.chat_template, &config.tmpl)) return kExitUsage;
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = o.n_ctx;
  cp.n_threads = o.n_threads;
  if (o.reference) cp.reference_kernels = 1;
  apply_cache_flags(o.cache, &cp);
  ContextPtr ctx = create_context("chat", model.get(), cp);
  if (!ctx) return kExitRuntime;
  const int32_t n_ctx = ember_context_n_ctx(ctx.get());
  config.generate = ember_generate_default_params();
  config.generate.sampling = sampling_params(o.sampling, n_ctx);
  config.generate.max_tokens = o.n_predict < 0 ? 0 : o.n_predict;
  config.reply_room = o.n_predict > 0 ? std::min(o.n_predict, n_ctx / 2) : n_ctx / 4;

  ChatSession session(model.get(), ctx.get(), config);
  std::string err;
  if (!session.Init(&err)) {
    print_error("chat", err);
    return kExitRuntime;
  }
  session.SetSystem(o.system);
  int32_t n_loaded = 0;
  if (!o.prompt_cache.empty() && !load_prompt_cache("chat", ctx.get(), o.prompt_cache, &n_loaded))
    return kExitRuntime;
  if (n_loaded > 0 && !session.AdoptCache(&err)) {
    print_error("chat", err);
    return kExitRuntime;
  }
  if (o.verbose) {
    std::fprintf(stderr, "ember chat: context %d tokens, seed %llu\n", n_ctx,
                 static_cast<unsigned long long>(o.sampling.seed));
    print_end_of_turn(model.get(), session.end_of_turn_tokens());
  }

  // Ctrl-C interrupts the reply (the callback sees the flag) or the read (EINTR: no SA_RESTART).
  struct sigaction sa {}, old_sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  ChatLoop loop(session, o);
  const int rc = p.seen("prompt") ? loop.RunOne(o.prompt) : loop.RunAll();
  sigaction(SIGINT, &old_sa, nullptr);
  return rc;
}

}  // namespace ember::cli
