// Chat templates: a conversation -> the prompt text a model was trained on, rendered from
// the model's Jinja template (GGUF key tokenizer.chat_template) the way Hugging Face
// transformers' apply_chat_template renders it (Jinja2 with trim_blocks, lstrip_blocks,
// loop controls; variables messages, add_generation_prompt, tools = none, documents = none,
// and the tokenizer's special tokens), or from one of Ember's built-in templates.
// The interpreter and its limits: tokenizer/chat/jinja_eval.h, docs/CHAT-TEMPLATES.md.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ember {

namespace jinja {
struct Node;
}

struct ChatMessage {
  std::string role;
  std::string content;
};

// What Hugging Face passes a template besides messages: the tokenizer's special tokens
// as strings ("" = undefined in the template, not the empty string).
struct ChatTemplateVars {
  std::string bos_token, eos_token, unk_token, pad_token;
};

class ChatTemplate {
 public:
  ~ChatTemplate();
  // Parses Jinja source once. BadFormat "chat template: line L, column C: ..." for a syntax
  // error; Unsupported naming the construct for one the interpreter does not support.
  static Status Parse(std::string_view source, std::unique_ptr<ChatTemplate>* out);
  // Built-in templates by name: chatml, llama2, llama3, gemma, phi3, zephyr (NotFound otherwise,
  // listing the names). Written as Jinja source in this repository (our own text).
  static Status Builtin(std::string_view name, std::unique_ptr<ChatTemplate>* out);
  static const std::vector<std::string_view>& BuiltinNames();
  // The Jinja source of a built-in ("" for an unknown name).
  static std::string_view BuiltinSource(std::string_view name);
  // Renders; raise_exception(msg) in the template becomes InvalidArgument("chat template: msg").
  Status Render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                const ChatTemplateVars& vars, std::string* out) const;

 private:
  ChatTemplate();
  std::vector<std::unique_ptr<jinja::Node>> body_;
};

}  // namespace ember
