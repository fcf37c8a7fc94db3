// The chat section of the C API (include/ember/ember.h): chat templates and the tokens
// that end an assistant turn. Every entry point runs inside the C ABI guard
// (engine/capi/guard.h). The template and the special tokens are read from the model's
// GGUF metadata directly (tokenizer.chat_template, tokenizer.ggml.*_token_id and
// tokenizer.ggml.tokens), so this works for any vocabulary the model loads with.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "engine/capi/c_api_internal.h"
#include "engine/model/model.h"
#include "loader/gguf.h"
#include "tokenizer/chat/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace {

using ember::capi::guard;
using ember::capi::set_error;
using ember::capi::to_c;

// A special-token id key of the vocabulary, or -1 when absent or out of range.
int32_t TokenId(const ember::GgufFile& g, const char* key) {
  const ember::GgufValue* tokens = g.Find("tokenizer.ggml.tokens");
  int32_t id = -1;
  if (!tokens || !g.Has(key) || !g.GetI32(key, &id).ok()) return -1;
  return id >= 0 && static_cast<uint64_t>(id) < tokens->strings.size() ? id : -1;
}

std::string TokenString(const ember::GgufFile& g, const char* key) {
  int32_t id = TokenId(g, key);
  if (id < 0) return {};
  return std::string(g.Find("tokenizer.ggml.tokens")->strings[static_cast<size_t>(id)]);
}

ember::ChatTemplateVars VarsOf(const ember::GgufFile& g) {
  ember::ChatTemplateVars v;
  v.bos_token = TokenString(g, "tokenizer.ggml.bos_token_id");
  v.eos_token = TokenString(g, "tokenizer.ggml.eos_token_id");
  v.unk_token = TokenString(g, "tokenizer.ggml.unknown_token_id");
  v.pad_token = TokenString(g, "tokenizer.ggml.padding_token_id");
  return v;
}

// tmpl: NULL = the model's tokenizer.chat_template, a built-in name, else Jinja source.
ember::Status ResolveTemplate(const ember::Model& m, const char* tmpl, std::unique_ptr<ember::ChatTemplate>* out) {
  if (!tmpl) {
    const ember::GgufValue* v = m.gguf().Find("tokenizer.chat_template");
    if (!v || v->type != ember::GgufType::kString)
      return ember::NotFound("chat template: the model file has no tokenizer.chat_template (pass a built-in name: "
                             "chatml, llama2, llama3, gemma, phi3, zephyr)");
    return ember::ChatTemplate::Parse(v->str, out);
  }
  if (!ember::ChatTemplate::BuiltinSource(tmpl).empty()) return ember::ChatTemplate::Builtin(tmpl, out);
  return ember::ChatTemplate::Parse(tmpl, out);
}

// The text a template writes right after an assistant message's content: rendered with
// the content "B" and "C", it starts one byte after where the two renderings differ.
ember::Status TextAfterAssistant(const ember::ChatTemplate& t, const ember::ChatTemplateVars& vars,
                                 std::string* out) {
  std::string with_b, with_c;
  EMBER_RETURN_IF_ERROR(t.Render({{"user", "A"}, {"assistant", "B"}}, false, vars, &with_b));
  EMBER_RETURN_IF_ERROR(t.Render({{"user", "A"}, {"assistant", "C"}}, false, vars, &with_c));
  size_t p = 0;
  while (p < with_b.size() && p < with_c.size() && with_b[p] == with_c[p]) ++p;
  out->clear();
  if (p < with_b.size()) *out = with_b.substr(p + 1);
  return ember::Status::Ok();
}

// The first control or user-defined token of text, when only whitespace comes before it.
int32_t FirstSpecialToken(const ember::Tokenizer& tok, const std::string& text) {
  std::vector<int32_t> ids;
  if (!tok.Encode(text, /*add_bos=*/false, /*parse_special=*/true, &ids).ok()) return -1;
  for (int32_t id : ids) {
    ember::TokenType type = tok.type(id);
    if (type == ember::TokenType::kControl || type == ember::TokenType::kUserDefined) return id;
    std::string piece = tok.TokenText(id, true);
    if (piece.find_first_not_of(" \t\n\r") != std::string::npos) return -1;
  }
  return -1;
}

}  // namespace

ember_status ember_chat_apply_template(const ember_model* model, const char* tmpl, const ember_chat_message* messages,
                                       size_t n, int add_generation_prompt, char* buf, size_t cap, size_t* n_out) {
  return guard("ember_chat_apply_template", {{"model", model}, {"n_out", n_out}}, [&]() -> ember_status {
    if ((!messages && n) || (!buf && cap))
      return set_error(EMBER_ERR_INVALID_ARGUMENT,
                       "ember_chat_apply_template: messages or buf is NULL with a non-zero length");
    std::vector<ember::ChatMessage> msgs;
    for (size_t i = 0; i < n; ++i) {
      if (!messages[i].role || !messages[i].content)
        return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_chat_apply_template: message " + std::to_string(i) +
                                                         " has a NULL role or content");
      msgs.push_back({messages[i].role, messages[i].content});
    }
    const ember::Model& m = *ember::capi::model_of(model);
    std::unique_ptr<ember::ChatTemplate> t;
    ember::Status s = ResolveTemplate(m, tmpl, &t);
    std::string text;
    if (s.ok()) s = t->Render(msgs, add_generation_prompt != 0, VarsOf(m.gguf()), &text);
    if (!s.ok()) return to_c(s);
    return ember::capi::copy_out(text.data(), text.size(), 1, buf, cap, n_out, "ember_chat_apply_template");
  });
}

ember_status ember_chat_end_of_turn_tokens(const ember_model* model, const char* tmpl, int32_t* ids, size_t cap,
                                           size_t* n_out) {
  return guard("ember_chat_end_of_turn_tokens", {{"model", model}, {"n_out", n_out}}, [&]() -> ember_status {
    if (!ids && cap)
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_chat_end_of_turn_tokens: ids is NULL with cap > 0");
    const ember::Model& m = *ember::capi::model_of(model);
    std::vector<int32_t> found;
    for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"})
      if (int32_t id = TokenId(m.gguf(), key); id >= 0) found.push_back(id);
    std::unique_ptr<ember::ChatTemplate> t;
    ember::Status s = ResolveTemplate(m, tmpl, &t);
    if (!s.ok()) return to_c(s);
    // A template that cannot render [user, assistant] (e.g. one demanding a system
    // message) contributes nothing; the vocabulary's ids still stand.
    std::string after;
    if (TextAfterAssistant(*t, VarsOf(m.gguf()), &after).ok())
      if (int32_t id = FirstSpecialToken(m.tokenizer(), after); id >= 0) found.push_back(id);
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    return ember::capi::copy_out(found.data(), found.size(), sizeof(int32_t), ids, cap, n_out, "ember_chat_end_of_turn_tokens");
  });
}
