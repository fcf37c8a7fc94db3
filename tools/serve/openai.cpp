#include "openai.h"

#include <cmath>
#include <ctime>

namespace ember::cli::serve {

std::string error_body(const ApiError& e) {
  Json j = {{"error", {{"message", e.message}, {"type", e.type}}}};
  j["error"]["code"] = e.code.empty() ? Json(nullptr) : Json(e.code);
  return dump(j);
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

ApiError api_error(int status, std::string message, std::string type, std::string code) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

ApiError invalid_request(std::string message, std::string code) {
  return api_error(400, std::move(message), "invalid_request_error", std::move(code));
}

namespace {

ApiError bad(std::string message, std::string code = "invalid_value") {
  return invalid_request(std::move(message), std::move(code));
}

ApiError wrong_type(const std::string& field, const char* want) {
  return bad("'" + field + "' must be " + want, "invalid_type");
}

// The text of a message's content: a string, or an array of {"type": "text", "text"} parts.
bool content_text(const Json& c, const std::string& field, std::string* out, ApiError* err) {
  if (c.is_string()) {
    *out = c.get<std::string>();
    return true;
  }
  if (c.is_null()) return true;  // an assistant message with only tool_calls
  if (!c.is_array()) return (*err = wrong_type(field, "a string or an array of text parts"), false);
  for (size_t i = 0; i < c.size(); ++i) {
    const Json* t = json_member(c[i], "text");
    if (json_string_member(c[i], "type") != "text" || !t || !t->is_string())
      return (*err = bad(field + "[" + std::to_string(i) + "] must be {\"type\": \"text\", \"text\": STRING}",
                         "invalid_type"),
              false);
    *out += t->get<std::string>();
  }
  return true;
}

bool parse_messages(const Json& body, GenerationRequest* out, ApiError* err) {
  const Json* m = json_member(body, "messages");
  if (!m) return (*err = bad("'messages' is required", "missing_field"), false);
  if (!m->is_array()) return (*err = wrong_type("messages", "an array"), false);
  if (m->empty()) return (*err = bad("'messages' is empty"), false);
  for (size_t i = 0; i < m->size(); ++i) {
    const std::string field = "messages[" + std::to_string(i) + "]";
    const Json& msg = (*m)[i];
    if (!msg.is_object()) return (*err = wrong_type(field, "an object"), false);
    const Json* role = json_member(msg, "role");
    if (!role || !role->is_string()) return (*err = wrong_type(field + ".role", "a string"), false);
    ChatMessage cm{role->get<std::string>(), ""};
    if (cm.role != "system" && cm.role != "user" && cm.role != "assistant" && cm.role != "tool" &&
        cm.role != "developer")
      return (*err = bad(field + ".role: unknown role '" + cm.role + "' (system, user, assistant, tool)",
                         "invalid_role"),
              false);
    const Json* content = json_member(msg, "content");
    if (!content) return (*err = bad(field + ".content is required", "missing_field"), false);
    if (!content_text(*content, field + ".content", &cm.content, err)) return false;
    out->messages.push_back(std::move(cm));
  }
  return true;
}

bool parse_stop(const Json& body, GenerationRequest* out, ApiError* err) {
  const Json* s = json_member(body, "stop");
  if (!s || s->is_null()) return true;
  if (s->is_string()) {
    if (!s->get<std::string>().empty()) out->stop.push_back(s->get<std::string>());
    return true;
  }
  if (!s->is_array()) return (*err = wrong_type("stop", "a string or an array of strings"), false);
  for (const Json& x : *s) {
    if (!x.is_string()) return (*err = wrong_type("stop", "a string or an array of strings"), false);
    if (!x.get<std::string>().empty()) out->stop.push_back(x.get<std::string>());
  }
  return true;
}

bool parse_number(const Json& body, const char* key, double lo, double hi, std::optional<float>* out,
                  ApiError* err) {
  const Json* v = json_member(body, key);
  if (!v || v->is_null()) return true;
  if (!v->is_number()) return (*err = wrong_type(key, "a number"), false);
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    return (*err = bad(std::string(key).append(" must be between ").append(std::to_string(static_cast<int>(lo)))
                           .append(" and ").append(std::to_string(static_cast<int>(hi)))),
            false);
  *out = static_cast<float>(d);
  return true;
}

bool parse_sampling(const Json& body, GenerationRequest* out, ApiError* err) {
  if (!parse_number(body, "temperature", 0, 100, &out->temperature, err)) return false;
  if (!parse_number(body, "top_p", 0, 1, &out->top_p, err)) return false;
  for (const char* key : {"max_tokens", "max_completion_tokens", "n_predict"}) {
    const Json* v = json_member(body, key);
    if (!v || v->is_null()) continue;
    if (!v->is_number_integer()) return (*err = wrong_type(key, "an integer"), false);
    const int64_t n = v->get<int64_t>();
    if (n < -1 || n > (1 << 24)) return (*err = bad("'" + std::string(key) + "' out of range"), false);
    out->max_tokens = static_cast<int32_t>(n);
  }
  if (const Json* v = json_member(body, "seed"); v && !v->is_null()) {
    if (!v->is_number_integer()) return (*err = wrong_type("seed", "an integer"), false);
    out->seed = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  }
  if (const Json* v = json_member(body, "stream"); v && !v->is_null()) {
    if (!v->is_boolean()) return (*err = wrong_type("stream", "a boolean"), false);
    out->stream = v->get<bool>();
  }
  if (const Json* v = json_member(body, "ignore_eos"); v && !v->is_null()) {
    if (!v->is_boolean()) return (*err = wrong_type("ignore_eos", "a boolean"), false);
    out->ignore_eos = v->get<bool>();
  }
  if (const Json* so = json_member(body, "stream_options"); so && so->is_object())
    if (const Json* u = json_member(*so, "include_usage"); u && u->is_boolean()) out->stream_usage = u->get<bool>();
  if (const Json* n = json_member(body, "n"); n && !n->is_null() && !(n->is_number_integer() && n->get<int64_t>() == 1))
    return (*err = bad("'n' must be 1 (one choice per request)"), false);
  return parse_stop(body, out, err);
}

bool parse_tools(const Json& body, GenerationRequest* out, ApiError* err) {
  if (const Json* t = json_member(body, "tools"); t && !t->is_null()) {
    if (!t->is_array()) return (*err = wrong_type("tools", "an array"), false);
    std::vector<std::string> names;
    for (size_t i = 0; i < t->size(); ++i) {
      const std::string field = "tools[" + std::to_string(i) + "]";
      const Json* fn = json_member((*t)[i], "function");
      const Json* name = fn ? json_member(*fn, "name") : nullptr;
      if (json_string_member((*t)[i], "type") != "function" || !name || !name->is_string())
        return (*err = bad(field + " must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "invalid_type"),
                false);
      names.push_back(name->get<std::string>());
    }
    out->tools = std::move(names);
  }
  if (const Json* c = json_member(body, "tool_choice"); c && !c->is_null()) {
    if (c->is_string()) {
      out->tool_choice = c->get<std::string>();
      if (out->tool_choice != "auto" && out->tool_choice != "none" && out->tool_choice != "required")
        return (*err = bad("'tool_choice' must be \"auto\", \"none\", \"required\" or a function"), false);
    } else {
      const Json* fn = json_member(*c, "function");
      const Json* name = fn ? json_member(*fn, "name") : nullptr;
      if (!name || !name->is_string())
        return (*err = bad("'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\"}}",
                           "invalid_type"),
                false);
      out->tool_choice = "function:" + name->get<std::string>();
    }
  }
  return true;
}

bool parse_adapters(const Json& body, GenerationRequest* out, ApiError* err) {
  if (const Json* l = json_member(body, "lora"); l && !l->is_null()) {
    if (!l->is_array()) return (*err = wrong_type("lora", "an array of {\"id\", \"scale\"}"), false);
    std::vector<AdapterScale> v;
    for (size_t i = 0; i < l->size(); ++i) {
      const std::string field = "lora[" + std::to_string(i) + "]";
      const Json* id = json_member((*l)[i], "id");
      const Json* scale = json_member((*l)[i], "scale");
      if (!id || !id->is_number_integer()) return (*err = wrong_type(field + ".id", "an integer"), false);
      if (scale && !scale->is_number()) return (*err = wrong_type(field + ".scale", "a number"), false);
      const double s = scale ? scale->get<double>() : 1.0;
      if (!std::isfinite(s) || std::fabs(s) > 1e6) return (*err = bad(field + ".scale out of range"), false);
      v.push_back({static_cast<int32_t>(id->get<int64_t>()), static_cast<float>(s)});
    }
    out->lora = std::move(v);
  }
  if (const Json* b = json_member(body, "lora_blend"); b && !b->is_null()) {
    const Json* ex = json_member(*b, "examples");
    if (!ex || !ex->is_array() || ex->empty())
      return (*err = bad("'lora_blend' must be {\"examples\": [STRING, ...]} with at least one example",
                         "invalid_type"),
              false);
    std::vector<std::string> v;
    for (const Json& e : *ex) {
      if (!e.is_string() || e.get<std::string>().empty())
        return (*err = bad("'lora_blend.examples' must hold non-empty strings", "invalid_type"), false);
      v.push_back(e.get<std::string>());
    }
    if (out->lora) return (*err = bad("give 'lora' or 'lora_blend', not both"), false);
    out->blend_examples = std::move(v);
  }
  return true;
}

}  // namespace

bool parse_generation_request(const std::string& body, bool chat, GenerationRequest* out, ApiError* err) {
  Json j;
  std::string perr;
  if (!parse_json(body, &j, &perr)) return (*err = bad("malformed JSON body: " + perr, "invalid_json"), false);
  if (!j.is_object()) return (*err = bad("the body must be a JSON object", "invalid_json"), false);
  out->chat = chat;
  if (chat) {
    if (!parse_messages(j, out, err)) return false;
  } else {
    const Json* p = json_member(j, "prompt");
    if (!p) return (*err = bad("'prompt' is required", "missing_field"), false);
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
    if (!p->is_string()) return (*err = wrong_type("prompt", "a string"), false);
    out->prompt = p->get<std::string>();
    if (out->prompt.empty()) return (*err = bad("'prompt' is empty"), false);
  }
  return parse_sampling(j, out, err) && parse_tools(j, out, err) && parse_adapters(j, out, err);
}

const char* finish_reason(ember_stop_reason r) {
  return r == EMBER_STOP_MAX_TOKENS || r == EMBER_STOP_CONTEXT_FULL ? "length" : "stop";
}

Json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

Json response_head(const std::string& id, const char* object, const std::string& model) {
  return {{"id", id}, {"object", object}, {"created", static_cast<int64_t>(std::time(nullptr))}, {"model", model}};
}

}  // namespace ember::cli::serve
