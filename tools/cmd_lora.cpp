// ember lora: offline LoRA tools.
//   ember lora blend --mode exact|average|svd --adapter FILE:WEIGHT... [--rank R] -m MODEL -o OUT.gguf
//   ember lora merge -m MODEL --lora FILE[:SCALE]... -o OUT.gguf [--type TYPE]
// and the --lora flag helpers of the other subcommands (cmd_lora.h).
#include "cmd_lora.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"

namespace ember::cli {

std::string parse_lora_spec(const std::string& spec, std::string* file, float* scale) {
  *file = spec;
  *scale = 1.0f;
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size()) {
    const std::string tail = spec.substr(colon + 1);
    char* end = nullptr;
    const float v = std::strtof(tail.c_str(), &end);
    if (end && *end == '\0') {
      if (!std::isfinite(v)) return "scale '" + tail + "' of '" + spec + "' is not finite";
      *file = spec.substr(0, colon);
      *scale = v;
    }
  }
  if (file->empty()) return "empty adapter path in '" + spec + "'";
  return "";
}

namespace {

// Loads FILE[:NUMBER] specs; false after printing the error.
bool load_loras(std::string_view cmd, const ember_model* model, const std::vector<std::string>& specs,
                std::vector<LoraPtr>* loras, std::vector<float>* numbers) {
  for (const std::string& spec : specs) {
    std::string file;
    float v = 1;
    if (std::string err = parse_lora_spec(spec, &file, &v); !err.empty()) {
      print_error(cmd, err);
      return false;
    }
    ember_lora* l = nullptr;
    if (ember_status st = ember_lora_load(model, file.c_str(), &l); st != EMBER_OK) {
      print_error(cmd, library_error(st));
      return false;
    }
    loras->emplace_back(l);
    numbers->push_back(v);
  }
  return true;
}

int lora_blend(const Args& args) {
  std::string model_path, out_path, mode = "exact";
  std::vector<std::string> adapters;
  int32_t rank = 0;
  ArgParser p("lora blend", "-m MODEL --mode MODE --adapter FILE:WEIGHT... -o OUT.gguf [--rank R]",
              "Blend LoRA adapters into one GGUF adapter.");
  p.option("model", 'm', "MODEL", &model_path, "base model the adapters belong to (GGUF)").required();
  p.option("mode", 0, "MODE", &mode,
           "exact (concatenate ranks: the sum of the deltas exactly), average (Crayon: A and B "
           "averaged, equal ranks), svd (best rank-R approximation of the exact sum)");
  p.option("adapter", 'a', "FILE:WEIGHT", &adapters, "adapter (GGUF or PEFT dir) and its blend weight")
      .required();
  p.option("rank", 'r', "R", &rank, "rank of the svd blend").range(0, 1 << 20);
  p.option("out", 'o', "OUT", &out_path, "output GGUF adapter").required();
  p.epilog(
      "example:\n"
      "  ember lora blend -m octopus-tiny.gguf --mode svd --rank 8 \\\n"
      "      --adapter lora-phone.gguf:0.5 --adapter lora-home.gguf:0.5 -o phone-home.gguf\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;
  int m = mode == "exact" ? EMBER_LORA_BLEND_EXACT
          : mode == "average" ? EMBER_LORA_BLEND_AVERAGE
          : mode == "svd" ? EMBER_LORA_BLEND_SVD : -1;
  if (m < 0) return p.usage_error("unknown --mode '" + mode + "' (exact, average, svd)");
  if (m == EMBER_LORA_BLEND_SVD && rank <= 0) return p.usage_error("--mode svd needs --rank R > 0");
  setup_logging(false);
  ModelPtr model = load_model("lora blend", model_path, false);
  if (!model) return kExitRuntime;
  std::vector<LoraPtr> loras;
  std::vector<float> weights;
  if (!load_loras("lora blend", model.get(), adapters, &loras, &weights)) return kExitRuntime;
  std::vector<const ember_lora*> raw;
  for (const LoraPtr& l : loras) raw.push_back(l.get());
  if (ember_status st = ember_lora_blend(model.get(), raw.data(), weights.data(), raw.size(), m, rank,
                                         out_path.c_str());
      st != EMBER_OK) {
    print_error("lora blend", library_error(st));
    return kExitRuntime;
  }
  std::fprintf(stderr, "ember lora blend: %s blend of %zu adapters written to '%s'\n", mode.c_str(), raw.size(),
               out_path.c_str());
  return kExitOk;
}

int lora_merge(const Args& args) {
  std::string model_path, out_path, type;
  std::vector<std::string> specs;
  ArgParser p("lora merge", "-m MODEL --lora FILE[:SCALE]... -o OUT.gguf [--type TYPE]",
              "Bake LoRA adapters into the base weights and write a new model.");
  p.option("model", 'm', "MODEL", &model_path, "base model (GGUF)").required();
  p.option("lora", 0, "FILE[:SCALE]", &specs, kLoraFlagHelp).required();
  p.option("out", 'o', "OUT", &out_path, "output model (GGUF)").required();
  p.option("type", 0, "TYPE", &type,
           "type of every matrix: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k; default: each tensor's own "
           "(adapted quantized tensors are re-quantized)");
  if (int rc = p.parse(args); rc != kContinue) return rc;
  setup_logging(false);
  ModelPtr model = load_model("lora merge", model_path, false);
  if (!model) return kExitRuntime;
  std::vector<LoraPtr> loras;
  std::vector<float> scales;
  if (!load_loras("lora merge", model.get(), specs, &loras, &scales)) return kExitRuntime;
  std::vector<const ember_lora*> raw;
  for (const LoraPtr& l : loras) raw.push_back(l.get());
  if (ember_status st = ember_lora_merge(model.get(), raw.data(), scales.data(), raw.size(),
                                         type.empty() ? nullptr : type.c_str(), out_path.c_str());
      st != EMBER_OK) {
    print_error("lora merge", library_error(st));
    return kExitRuntime;
  }
  std::fprintf(stderr, "ember lora merge: %zu adapters merged into '%s'\n", raw.size(), out_path.c_str());
  return kExitOk;
}

}  // namespace

bool apply_loras(std::string_view cmd, ember_model* model, ember_context* ctx,
                 const std::vector<std::string>& specs, std::vector<LoraPtr>* keep) {
  std::vector<float> scales;
  const size_t first = keep->size();
  if (!load_loras(cmd, model, specs, keep, &scales)) return false;
  for (size_t i = 0; i < scales.size(); ++i) {
    if (ember_status st = ember_context_set_lora(ctx, (*keep)[first + i].get(), scales[i]); st != EMBER_OK) {
      print_error(cmd, library_error(st));
      return false;
    }
  }
  return true;
}

int cmd_lora(const Args& args) {
  const char* usage =
      "usage: ember lora blend -m MODEL --mode exact|average|svd --adapter FILE:WEIGHT... [--rank R] -o OUT.gguf\n"
      "       ember lora merge -m MODEL --lora FILE[:SCALE]... [--type TYPE] -o OUT.gguf\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("%s", usage);
    return args.empty() ? kExitUsage : kExitOk;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "blend") return lora_blend(rest);
  if (args[0] == "merge") return lora_merge(rest);
  print_error("lora", "unknown subcommand '" + args[0] + "' (blend, merge)");
  return kExitUsage;
}

}  // namespace ember::cli
