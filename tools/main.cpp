// `ember`: the command-line tool of the Ember inference engine.
//
//   ember <command> [flags]     run a subcommand (see the table below)
//   ember --help | help [CMD]   list the commands, or show one command's help
//   ember --version             library version
//
// It uses only the public C API (include/ember/ember.h). Exit codes: 0 ok,
// 1 runtime error (file, model, engine), 2 usage error, 130 interrupted.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "ember/ember.h"

namespace ember::cli {
namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*main)(const Args& args);
};

constexpr Command kCommands[] = {
    {"run", "generate text from a prompt, streamed to stdout", cmd_run},
    {"chat", "chat with an instruct model through its chat template", cmd_chat},
    {"logits", "write the logits of a token sequence to a float32 file", cmd_logits},
    {"tokenize", "print the token ids and pieces of a text", cmd_tokenize},
    {"template", "print the prompt a chat template makes of a conversation", cmd_template},
    {"call", "ask a function-calling model for a call, printed as JSON", cmd_call},
    {"eval-calls", "accuracy, latency and tokens per call over a query set", cmd_eval_calls},
    {"route", "train the device/server router (score threshold, probe)", cmd_route},
    {"quantize", "convert a GGUF model to q8_0, q4_0, q4_k_m, f16, bf16 or f32", cmd_quantize},
    {"synth", "write a random-weight model with the shapes of a real one", cmd_synth},
    {"lora", "blend LoRA adapters, or merge them into a model", cmd_lora},
    {"bench", "prefill/decode speed, TTFT, memory and bandwidth of a model", cmd_bench},
    {"serve", "an OpenAI-compatible HTTP server (chat, completions, tool calls, LoRA)", cmd_serve},
};

const Command* find_command(std::string_view name) {
  for (const Command& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

void print_top_help() {
  std::printf("usage: ember <command> [flags]\n\n");
  std::printf("Ember %s: inference of small transformer language models.\n\n", ember_version());
  std::printf("commands:\n");
  for (const Command& c : kCommands) std::printf("  %-10s %s\n", c.name, c.summary);
  std::printf(
      "\n"
      "  ember <command> --help   flags of a command\n"
      "  ember --version          library version\n"
      "\n"
      "Exit status: 0 success, 1 runtime error, 2 usage error, 130 interrupted.\n");
}

int dispatch(const Args& args) {
  if (args.empty()) {
    print_error("", "missing command (see 'ember --help')");
    return kExitUsage;
  }
  const std::string& first = args[0];
  if (first == "--help" || first == "-h") {
    print_top_help();
    return kExitOk;
  }
  if (first == "help") {
    if (args.size() == 1) {
      print_top_help();
      return kExitOk;
    }
    const Command* c = find_command(args[1]);
    if (!c) {
      print_error("", "unknown command '" + args[1] + "' (see 'ember --help')");
      return kExitUsage;
    }
    return c->main({"--help"});
  }
  if (first == "--version" || first == "-V" || first == "version") {
    std::printf("ember %s\n", ember_version());
    return kExitOk;
  }
  const Command* c = find_command(first);
  if (!c) {
    std::string what = !first.empty() && first[0] == '-' ? "unknown flag '" : "unknown command '";
    print_error("", what + first + "' (see 'ember --help')");
    return kExitUsage;
  }
  return c->main(Args(args.begin() + 1, args.end()));
}

}  // namespace
}  // namespace ember::cli

int main(int argc, char** argv) {
  using namespace ember::cli;
  // Nothing may escape as a crash: allocation failures and any other exception
  // become a one-line error.
  try {
    return dispatch(Args(argv + (argc > 0 ? 1 : 0), argv + argc));
  } catch (const std::bad_alloc&) {
    print_error("", "out of memory");
  } catch (const std::exception& e) {
    print_error("", std::string("internal error: ") + e.what());
  } catch (...) {
    print_error("", "internal error");
  }
  return kExitRuntime;
}
