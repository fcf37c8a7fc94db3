// ember lora: offline LoRA tools.
//   ember lora blend --mode exact|average|svd --adapter FILE:WEIGHT... [--rank R] -m MODEL -o OUT.gguf
//   ember lora blend --weights auto --examples EX --adapter FILE[@TASK_EX]... -m MODEL [-o OUT.gguf]
//   ember lora describe -m MODEL --adapter FILE --examples EX -o OUT.gguf
//   ember lora merge -m MODEL --lora FILE[:SCALE]... -o OUT.gguf [--type TYPE]
// and the --lora flag helpers of the other subcommands (cmd_lora.h).
#include "cmd_lora.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "json_io.h"
#include "ember/ember_tools.h"

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

// ---- example files -----------------------------------------------------------------------

// Examples, one per line: JSON Lines with a "query" string (as octopus-tiny's
// adapters/<domain>/test_queries.jsonl) when the first non-blank line starts with '{',
// else plain text. Blank lines are skipped. false with *err naming the file and line.
bool read_examples(const std::string& path, std::vector<std::string>* out, std::string* err) {
  std::string text;
  if (!read_text_file(path, &text, err)) return false;
  bool json = false, first = true, bad_line = false;
  for_each_line(text, [&](size_t line_no, std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos) return true;
    if (first) json = line[b] == '{', first = false;
    if (!json) {
      out->emplace_back(line);
      return true;
    }
    Json v;
    std::string parse_err;
    const Json* q = parse_json(line.substr(b), &v, &parse_err) ? json_member(v, "query") : nullptr;
    if (!q || !q->is_string()) {
      *err = path + ":" + std::to_string(line_no) + ": expected a JSON object with a \"query\" string" +
             (parse_err.empty() ? "" : " (" + parse_err + ")");
      bad_line = true;
      return false;
    }
    out->push_back(q->get<std::string>());
    return true;
  });
  if (bad_line) return false;
  if (out->empty()) {
    *err = path + ": no examples";
    return false;
  }
  return true;
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

bool is_path(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// "FILE[@EXAMPLES]" of --weights auto -> file, examples ("" when none). A spec naming an
// existing path is a file even when it contains '@'.
void split_auto_spec(const std::string& spec, std::string* file, std::string* examples) {
  *file = spec;
  examples->clear();
  const size_t at = spec.rfind('@');
  if (at == std::string::npos || is_path(spec)) return;
  *file = spec.substr(0, at);
  *examples = spec.substr(at + 1);
}

// Loads the adapters of --weights auto, with the task examples given beside them
// (FILE@EXAMPLES). false after printing the error.
bool load_auto_adapters(const ember_model* model, const std::vector<std::string>& specs,
                        std::vector<LoraPtr>* loras, std::vector<std::string>* names) {
  const char* cmd = "lora blend";
  for (const std::string& spec : specs) {
    std::string file, ex_path, err;
    split_auto_spec(spec, &file, &ex_path);
    ember_lora* l = nullptr;
    if (ember_status st = ember_lora_load(model, file.c_str(), &l); st != EMBER_OK) {
      print_error(cmd, library_error(st));
      return false;
    }
    loras->emplace_back(l);
    names->push_back(file);
    if (ex_path.empty()) continue;
    std::vector<std::string> ex;
    if (!read_examples(ex_path, &ex, &err)) {
      print_error(cmd, err);
      return false;
    }
    std::vector<const char*> c;
    for (const std::string& e : ex) c.push_back(e.c_str());
    if (ember_status st = ember_lora_set_task_examples(l, c.data(), c.size()); st != EMBER_OK) {
      print_error(cmd, library_error(st));
      return false;
    }
  }
  return true;
}

// Loads the adapters of --weights auto, chooses their weights from the user's examples
// and prints them. false after printing the error.
bool auto_weights(const ember_model* model, const std::vector<std::string>& specs, const std::string& examples_path,
                  bool centered, float temperature, int32_t n_threads, std::vector<LoraPtr>* loras,
                  std::vector<float>* weights) {
  const char* cmd = "lora blend";
  std::vector<std::string> names;
  if (!load_auto_adapters(model, specs, loras, &names)) return false;
  std::vector<std::string> ex;
  std::string err;
  if (!read_examples(examples_path, &ex, &err)) {
    print_error(cmd, err);
    return false;
  }
  std::vector<const char*> c;
  for (const std::string& e : ex) c.push_back(e.c_str());
  std::vector<const ember_lora*> raw;
  for (const LoraPtr& l : *loras) raw.push_back(l.get());
  std::vector<float> sims(raw.size());
  weights->assign(raw.size(), 0.0f);
  if (ember_status st = ember_lora_auto_weights(model, raw.data(), raw.size(), c.data(), c.size(), centered ? 1 : 0,
                                                temperature, n_threads, sims.data(), weights->data());
      st != EMBER_OK) {
    print_error(cmd, library_error(st));
    return false;
  }
  // Weights with 9 significant digits: the float itself, so `--adapter FILE:WEIGHT` with
  // the printed values writes the same blend.
  std::printf("%-14s %12s  %s\n", "weight", centered ? "centered cos" : "cosine", "adapter");
  for (size_t i = 0; i < raw.size(); ++i)
    std::printf("%-14.9g %12.4f  %s\n", (*weights)[i], sims[i], names[i].c_str());
  // ember_lora_auto_weights' documented defaults.
  std::printf("(%zu examples, temperature %g)\n", ex.size(), temperature > 0 ? temperature : centered ? 0.1 : 0.01);
  return true;
}

struct BlendOptions {
  std::string model_path, out_path, mode = "exact", weights_mode, examples_path, similarity = "centered";
  std::vector<std::string> adapters;
  int32_t rank = 0, n_threads = 0;
  float temperature = 0;
};

void declare_blend_flags(ArgParser& p, BlendOptions& o) {
  p.option("model", 'm', "MODEL", &o.model_path, "base model the adapters belong to (GGUF)").required();
  p.option("mode", 0, "MODE", &o.mode,
           "exact (concatenate ranks: the sum of the deltas exactly), average (Crayon: A and B "
           "averaged, equal ranks), svd (best rank-R approximation of the exact sum)");
  p.option("adapter", 'a', "FILE:WEIGHT", &o.adapters,
           "adapter (GGUF or PEFT dir) and its blend weight; with --weights auto: FILE or FILE@TASK_EX "
           "(the adapter's task examples, else those in its metadata)")
      .required();
  p.option("rank", 'r', "R", &o.rank, "rank of the svd blend").range(0, 1 << 20);
  p.option("out", 'o', "OUT", &o.out_path, "output GGUF adapter (--weights auto without -o: only print the weights)");
  p.option("weights", 0, "auto", &o.weights_mode,
           "auto: weights = softmax(similarity / T) of the examples to each adapter's task examples "
           "(base model's mean hidden state); default: the WEIGHT of each --adapter")
      .default_text("");
  p.option("examples", 0, "EX", &o.examples_path,
           "--weights auto: the user's examples, JSON Lines with a \"query\" or one per line")
      .default_text("");
  p.option("similarity", 0, "S", &o.similarity,
           "--weights auto: centered (cosine after removing the adapters' mean state) or cosine");
  p.option("temperature", 0, "T", &o.temperature, "--weights auto: softmax temperature; 0: 0.1 centered, 0.01 cosine")
      .range(0.0, 1e6);
  p.option("threads", 't', "N", &o.n_threads, "threads for --weights auto; 0: the performance cores").range(0, 4096);
  p.epilog(
      "examples:\n"
      "  ember lora blend -m octopus-tiny.gguf --mode svd --rank 8 \\\n"
      "      --adapter lora-phone.gguf:0.5 --adapter lora-home.gguf:0.5 -o phone-home.gguf\n"
      "  ember lora blend -m octopus-tiny.gguf --weights auto --examples mine.jsonl \\\n"
      "      --adapter lora-phone.gguf@phone-tasks.txt --adapter lora-home.gguf@home-tasks.txt -o mine.gguf\n"
      "Task examples can be stored in an adapter with `ember lora describe`.\n");
}

// The usage errors the parser cannot see; *mode_id: the EMBER_LORA_BLEND_* of --mode.
// kContinue when the options are fine.
int check_blend_options(const ArgParser& p, const BlendOptions& o, int* mode_id) {
  const std::string& mode = o.mode;
  int m = mode == "exact" ? EMBER_LORA_BLEND_EXACT
          : mode == "average" ? EMBER_LORA_BLEND_AVERAGE
          : mode == "svd" ? EMBER_LORA_BLEND_SVD : -1;
  if (m < 0) return p.usage_error("unknown --mode '" + mode + "' (exact, average, svd)");
  if (m == EMBER_LORA_BLEND_SVD && o.rank <= 0) return p.usage_error("--mode svd needs --rank R > 0");
  const bool automatic = o.weights_mode == "auto";
  if (!o.weights_mode.empty() && !automatic) return p.usage_error("unknown --weights '" + o.weights_mode + "' (auto)");
  if (automatic && o.examples_path.empty()) return p.usage_error("--weights auto needs --examples EX");
  if (!automatic && !o.examples_path.empty()) return p.usage_error("--examples needs --weights auto");
  if (o.similarity != "centered" && o.similarity != "cosine")
    return p.usage_error("unknown --similarity '" + o.similarity + "' (centered, cosine)");
  if (!automatic && o.out_path.empty()) return p.usage_error("missing -o OUT.gguf");
  if (automatic) {
    for (const std::string& a : o.adapters) {
      std::string file, ex, scale_file;
      split_auto_spec(a, &file, &ex);
      float w = 1;
      if (parse_lora_spec(file, &scale_file, &w).empty() && scale_file != file)
        return p.usage_error("--adapter '" + a + "': no :WEIGHT with --weights auto");
    }
  }
  *mode_id = m;
  return kContinue;
}

int lora_blend(const Args& args) {
  BlendOptions o;
  ArgParser p("lora blend",
              "-m MODEL --mode MODE --adapter FILE:WEIGHT... -o OUT.gguf [--rank R]\n"
              "       ember lora blend -m MODEL --weights auto --examples EX --adapter FILE[@TASK_EX]... [-o OUT.gguf]",
              "Blend LoRA adapters into one GGUF adapter, with given weights or weights chosen from examples.");
  declare_blend_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;
  int m = -1;
  if (int rc = check_blend_options(p, o, &m); rc != kContinue) return rc;
  setup_logging(false);
  ModelPtr model = load_model("lora blend", o.model_path);
  if (!model) return kExitRuntime;
  std::vector<LoraPtr> loras;
  std::vector<float> weights;
  if (o.weights_mode == "auto") {
    if (!auto_weights(model.get(), o.adapters, o.examples_path, o.similarity == "centered", o.temperature,
                      o.n_threads, &loras, &weights))
      return kExitRuntime;
    if (o.out_path.empty()) return kExitOk;
  } else if (!load_loras("lora blend", model.get(), o.adapters, &loras, &weights)) {
    return kExitRuntime;
  }
  std::vector<const ember_lora*> raw;
  for (const LoraPtr& l : loras) raw.push_back(l.get());
  if (ember_status st = ember_lora_blend(model.get(), raw.data(), weights.data(), raw.size(), m, o.rank,
                                         o.out_path.c_str());
      st != EMBER_OK) {
    print_error("lora blend", library_error(st));
    return kExitRuntime;
  }
  std::fprintf(stderr, "ember lora blend: %s blend of %zu adapters written to '%s'\n", o.mode.c_str(), raw.size(),
               o.out_path.c_str());
  return kExitOk;
}

int lora_describe(const Args& args) {
  std::string model_path, adapter, examples_path, out_path;
  ArgParser p("lora describe", "-m MODEL --adapter FILE --examples EX -o OUT.gguf",
              "Write an adapter as a GGUF adapter carrying task examples (for `lora blend --weights auto`).");
  p.option("model", 'm', "MODEL", &model_path, "base model the adapter belongs to (GGUF)").required();
  p.option("adapter", 'a', "FILE", &adapter, "adapter (GGUF or PEFT dir)").required();
  p.option("examples", 0, "EX", &examples_path,
           "texts of the adapter's task: JSON Lines with a \"query\" or one per line; stored as "
           "ember.lora.task_examples")
      .required();
  p.option("out", 'o', "OUT", &out_path, "output GGUF adapter").required();
  if (int rc = p.parse(args); rc != kContinue) return rc;
  std::vector<std::string> ex;
  std::string err;
  if (!read_examples(examples_path, &ex, &err)) {
    print_error("lora describe", err);
    return kExitRuntime;
  }
  setup_logging(false);
  ModelPtr model = load_model("lora describe", model_path);
  if (!model) return kExitRuntime;
  ember_lora* l = nullptr;
  if (ember_status st = ember_lora_load(model.get(), adapter.c_str(), &l); st != EMBER_OK) {
    print_error("lora describe", library_error(st));
    return kExitRuntime;
  }
  LoraPtr keep(l);
  std::vector<const char*> c;
  for (const std::string& e : ex) c.push_back(e.c_str());
  ember_status st = ember_lora_set_task_examples(l, c.data(), c.size());
  if (st == EMBER_OK) st = ember_lora_save(l, out_path.c_str());
  if (st != EMBER_OK) {
    print_error("lora describe", library_error(st));
    return kExitRuntime;
  }
  std::fprintf(stderr, "ember lora describe: '%s' with %zu task examples written to '%s'\n", adapter.c_str(),
               ex.size(), out_path.c_str());
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
  ModelPtr model = load_model("lora merge", model_path);
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
      "       ember lora blend -m MODEL --weights auto --examples EX --adapter FILE[@TASK_EX]... [--mode M] "
      "[--similarity centered|cosine] [--temperature T] [-o OUT.gguf]\n"
      "       ember lora describe -m MODEL --adapter FILE --examples EX -o OUT.gguf\n"
      "       ember lora merge -m MODEL --lora FILE[:SCALE]... [--type TYPE] -o OUT.gguf\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("%s", usage);
    return args.empty() ? kExitUsage : kExitOk;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "blend") return lora_blend(rest);
  if (args[0] == "merge") return lora_merge(rest);
  if (args[0] == "describe") return lora_describe(rest);
  print_error("lora", "unknown subcommand '" + args[0] + "' (blend, describe, merge)");
  return kExitUsage;
}

}  // namespace ember::cli
