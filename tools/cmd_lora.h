// LoRA pieces shared by the subcommands: the `--lora FILE[:SCALE]` flag (run, logits,
// call, bench) and `ember lora blend|describe|merge` (cmd_lora.cpp). Public API only.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ember/ember.h"

namespace ember::cli {

struct LoraDeleter {
  void operator()(ember_lora* l) const { ember_lora_free(l); }
};
using LoraPtr = std::unique_ptr<ember_lora, LoraDeleter>;

inline constexpr const char* kLoraFlagHelp =
    "LoRA adapter (GGUF file or PEFT directory) at SCALE (default 1); repeatable";

// "FILE[:SCALE]" -> file, scale. The text after the last ':' is a scale only when it
// parses as a finite number (so paths with ':' still work). "" on success, else why.
std::string parse_lora_spec(const std::string& spec, std::string* file, float* scale);

// Examples (task or user examples of --weights auto), one per line: JSON Lines with a "query"
// string when the first non-blank line starts with '{', else plain text. false with *err.
bool read_examples(const std::string& path, std::vector<std::string>* out, std::string* err);

// Loads every spec for `model`, keeping the adapters in *keep (they must outlive ctx),
// and sets them on ctx. false after printing one line naming the adapter.
bool apply_loras(std::string_view cmd, ember_model* model, ember_context* ctx,
                 const std::vector<std::string>& specs, std::vector<LoraPtr>* keep);

}  // namespace ember::cli
