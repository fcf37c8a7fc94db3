// The subcommands of `ember`. Each takes the arguments after its name and returns
// the process exit code (kExitOk, kExitRuntime, kExitUsage, ...; see args.h).
// A new subcommand: a tools/cmd_NAME.cpp defining cmd_NAME, declared here and
// added to the table in main.cpp.
#pragma once
#include <string>
#include <vector>

namespace ember::cli {

using Args = std::vector<std::string>;

int cmd_run(const Args& args);
int cmd_chat(const Args& args);
int cmd_logits(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_template(const Args& args);
int cmd_call(const Args& args);
int cmd_eval_calls(const Args& args);
int cmd_route(const Args& args);
int cmd_quantize(const Args& args);
int cmd_synth(const Args& args);
int cmd_lora(const Args& args);
int cmd_bench(const Args& args);
int cmd_serve(const Args& args);

}  // namespace ember::cli
