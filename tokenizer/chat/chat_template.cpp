// Chat templates (chat_template.h) on the Jinja interpreter.
#include "tokenizer/chat/chat_template.h"

#include "tokenizer/chat/jinja_eval.h"
#include "tokenizer/chat/jinja_parser.h"

namespace ember {

ChatTemplate::ChatTemplate() = default;
ChatTemplate::~ChatTemplate() = default;

Status ChatTemplate::Parse(std::string_view source, std::unique_ptr<ChatTemplate>* out) {
  std::unique_ptr<ChatTemplate> t(new ChatTemplate());
  EMBER_RETURN_IF_ERROR(jinja::Parse(source, &t->body_));
  EMBER_RETURN_IF_ERROR(jinja::CheckSupported(t->body_));
  *out = std::move(t);
  return Status::Ok();
}

Status ChatTemplate::Builtin(std::string_view name, std::unique_ptr<ChatTemplate>* out) {
  std::string_view source = BuiltinSource(name);
  if (source.empty()) {
    std::string names;
    for (std::string_view n : BuiltinNames()) names += (names.empty() ? "" : ", ") + std::string(n);
    return NotFound("chat template: no built-in template '" + std::string(name) + "' (built-ins: " + names + ")");
  }
  return Parse(source, out);
}

Status ChatTemplate::Render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                            const ChatTemplateVars& vars, std::string* out) const {
  jinja::ValueList list;
  for (const ChatMessage& m : messages) {
    jinja::ValueDict d;
    d.Set("role", jinja::Value::String(m.role));
    d.Set("content", jinja::Value::String(m.content));
    list.push_back(jinja::Value::Dict(std::move(d)));
  }
  jinja::ValueDict v;
  v.Set("messages", jinja::Value::List(std::move(list)));
  v.Set("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
  v.Set("tools", jinja::Value::None());
  v.Set("documents", jinja::Value::None());
  const std::pair<const char*, const std::string*> tokens[] = {
      {"bos_token", &vars.bos_token}, {"eos_token", &vars.eos_token},
      {"unk_token", &vars.unk_token}, {"pad_token", &vars.pad_token}};
  for (const auto& [name, value] : tokens)
    if (!value->empty()) v.Set(name, jinja::Value::String(*value));
  return jinja::Render(body_, v, out);
}

}  // namespace ember
