// ember template: a conversation (OpenAI-style JSON messages) -> the prompt text the model's
// chat template makes of it, printed exactly (no newline added). Works on vocab-only GGUFs.
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "json_io.h"

namespace ember::cli {
namespace {

// The library's built-in templates (ember_chat_apply_template takes these names; any other
// text is Jinja source, so the command tells names from files itself).
constexpr const char* kBuiltinTemplates[] = {"chatml", "llama2", "llama3", "gemma", "phi3", "zephyr"};

struct Message {
  std::string role, content;
};

// FILE.json: an array of {"role": "...", "content": "..."}. false with *err on bad input.
bool read_messages(const std::string& path, std::vector<Message>* out, std::string* err) {
  std::string text, parse_err;
  if (!read_text_file(path, &text, err)) return false;
  Json v;
  if (!parse_json(text, &v, &parse_err)) {
    *err = path + ": invalid JSON: " + parse_err;
    return false;
  }
  if (!v.is_array()) {
    *err = path + ": expected a JSON array of {\"role\", \"content\"} messages";
    return false;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const Json* role = json_member(v[i], "role");
    const Json* content = json_member(v[i], "content");
    if (!role || !role->is_string() || !content || !content->is_string()) {
      *err = path + ": message " + std::to_string(i) + " needs a string \"role\" and a string \"content\"";
      return false;
    }
    out->push_back({role->get<std::string>(), content->get<std::string>()});
  }
  return true;
}

// --chat-template NAME|FILE -> what ember_chat_apply_template takes ("" = the model's own).
// Returns kContinue, or the exit code after printing the error.
int resolve_template(const std::string& arg, std::string* tmpl) {
  if (arg.empty()) return kContinue;
  for (const char* name : kBuiltinTemplates)
    if (arg == name) {
      *tmpl = arg;
      return kContinue;
    }
  std::string err;
  if (read_text_file(arg, tmpl, &err)) return kContinue;
  std::string names;
  for (const char* name : kBuiltinTemplates) names += std::string(names.empty() ? "" : ", ") + name;
  print_error("template", "--chat-template '" + arg + "' is neither a built-in template (" + names +
                              ") nor a readable file (" + err + ")");
  return kExitUsage;
}

bool render(const ember_model* model, const std::string& tmpl, const std::vector<Message>& msgs, bool gen,
            std::string* out) {
  std::vector<ember_chat_message> c;
  for (const Message& m : msgs) c.push_back({m.role.c_str(), m.content.c_str()});
  const char* t = tmpl.empty() ? nullptr : tmpl.c_str();
  size_t n = 0;
  ember_status st = ember_chat_apply_template(model, t, c.data(), c.size(), gen ? 1 : 0, nullptr, 0, &n);
  if (st == EMBER_ERR_OUT_OF_RANGE && n > 0) {
    out->assign(n, '\0');
    st = ember_chat_apply_template(model, t, c.data(), c.size(), gen ? 1 : 0, out->data(), out->size(), &n);
  }
  if (st != EMBER_OK) {
    print_error("template", library_error(st));
    return false;
  }
  out->resize(n);
  return true;
}

}  // namespace

int cmd_template(const Args& args) {
  std::string model_path, messages_path, template_arg;
  bool no_generation_prompt = false, verbose = false;

  ArgParser p("template", "-m MODEL --messages FILE.json [--no-generation-prompt] [--chat-template NAME|FILE]",
              "Print the prompt a chat template makes of a conversation, exactly (no newline added).");
  p.option("model", 'm', "MODEL", &model_path, "model file (GGUF); a vocab-only GGUF (no tensors) will do").required();
  p.option("messages", 0, "FILE", &messages_path, "JSON array of {\"role\", \"content\"} messages").required();
  p.flag("no-generation-prompt", 0, &no_generation_prompt,
         "do not open the assistant's turn at the end (add_generation_prompt = false)");
  p.option("chat-template", 0, "NAME|FILE", &template_arg,
           "a built-in template (chatml, llama2, llama3, gemma, phi3, zephyr) or a Jinja file "
           "(default: the model's tokenizer.chat_template)");
  p.flag("verbose", 'v', &verbose, "library log messages on stderr");
  p.epilog(
      "example:\n"
      "  echo '[{\"role\": \"user\", \"content\": \"Hi\"}]' > chat.json\n"
      "  ember template -m qwen3-vocab.gguf --messages chat.json\n"
      "  <|im_start|>user\n"
      "  Hi<|im_end|>\n"
      "  <|im_start|>assistant\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;

  std::string tmpl, err;
  if (int rc = resolve_template(template_arg, &tmpl); rc != kContinue) return rc;
  std::vector<Message> messages;
  if (!read_messages(messages_path, &messages, &err)) {
    print_error("template", err);
    return kExitRuntime;
  }
  setup_logging(verbose);
  ModelPtr model = load_model("template", model_path, /*vocab_only=*/true);
  if (!model) return kExitRuntime;
  std::string out;
  if (!render(model.get(), tmpl, messages, !no_generation_prompt, &out)) return kExitRuntime;
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    print_error("template", "cannot write to stdout");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
