#include "openai_client.h"

#include <httplib.h>

#include <chrono>
#include <cmath>

namespace ember::cli {

namespace {

const char* json_type_of(const char* ember_type) {
  const std::string t = ember_type ? ember_type : "";
  if (t == "int") return "integer";
  if (t == "float") return "number";
  return "string";
}

// "http://host:port/prefix" -> ("http://host:port", "/prefix"); the path of the endpoint
// is appended to the prefix.
void split_url(const std::string& url, std::string* origin, std::string* prefix) {
  const size_t scheme = url.find("://");
  const size_t host_at = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t slash = url.find('/', host_at);
  *origin = slash == std::string::npos ? url : url.substr(0, slash);
  *prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (!prefix->empty() && prefix->back() == '/') prefix->pop_back();
}

std::chrono::microseconds as_micros(double seconds) {
  return std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

// The request body (dumped with invalid UTF-8 replaced: the query is the user's bytes).
std::string request_body(const ServerEndpoint& ep, const Json& tools, const std::string& query) {
  Json body = Json::object();
  if (!ep.model.empty()) body["model"] = ep.model;
  body["messages"] = Json::array({Json{{"role", "user"}, {"content", query}}});
  body["tools"] = tools;
  body["tool_choice"] = "auto";
  body["temperature"] = 0;
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The first tool call of the reply: choices[0].message.tool_calls[0].function.{name, arguments}.
bool first_tool_call(const std::string& reply, std::string* name, std::string* arguments, std::string* error) {
  Json v;
  std::string err;
  if (!parse_json(reply, &v, &err)) {
    *error = "the server's reply is not JSON (" + err + ")";
    return false;
  }
  const Json* choices = json_member(v, "choices");
  if (!choices || !choices->is_array() || choices->empty()) {
    *error = "the server's reply has no choices";
    return false;
  }
  const Json* message = json_member((*choices)[0], "message");
  const Json* calls = message ? json_member(*message, "tool_calls") : nullptr;
  if (!calls || !calls->is_array() || calls->empty()) {
    *error = "the server answered without a tool call";
    return false;
  }
  const Json* fn = json_member((*calls)[0], "function");
  const Json* args = fn ? json_member(*fn, "arguments") : nullptr;
  if (!fn || !json_member(*fn, "name") || !json_member(*fn, "name")->is_string()) {
    *error = "the server's tool call has no function name";
    return false;
  }
  *name = json_string_member(*fn, "name");
  // OpenAI sends arguments as a JSON string; an object is taken as well.
  *arguments = !args ? "{}" : args->is_string() ? args->get<std::string>() : args->dump();
  return true;
}

// value as the registry's type, or false.
bool typed_value(const Json& value, const std::string& type, Json* out) {
  if (type == "str") {
    if (!value.is_string()) return false;
    *out = value;
  } else if (type == "int") {
    if (value.is_number_integer()) {
      *out = value;
    } else if (value.is_number_float()) {
      const double d = value.get<double>();
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) return false;
      *out = static_cast<int64_t>(d);
    } else {
      return false;
    }
  } else {
    if (!value.is_number()) return false;
    *out = value.get<double>();
  }
  return true;
}

}  // namespace

Json openai_tools(const ember_functions* fns) {
  Json tools = Json::array();
  for (int32_t i = 0; i < ember_functions_count(fns); ++i) {
    ember_function_info info{};
    if (ember_functions_get(fns, i, &info) != EMBER_OK) continue;
    Json props = Json::object(), required = Json::array();
    for (int32_t j = 0; j < info.n_params; ++j) {
      const char* name = nullptr;
      const char* type = nullptr;
      if (ember_functions_param(fns, i, j, &name, &type) != EMBER_OK) continue;
      props[name] = Json{{"type", json_type_of(type)}};
      required.push_back(name);
    }
    Json params = {{"type", "object"}, {"properties", props}, {"required", required}};
    tools.push_back({{"type", "function"},
                     {"function", {{"name", info.name}, {"description", info.description ? info.description : ""},
                                   {"parameters", params}}}});
  }
  return tools;
}

bool map_tool_call(const ember_functions* fns, const std::string& name, const std::string& arguments,
                   ServerCall* out, std::string* error) {
  Json args;
  std::string err;
  if (!parse_json(arguments, &args, &err) || !args.is_object()) {
    *error = "the tool call's arguments are not a JSON object: " + arguments;
    return false;
  }
  for (int32_t i = 0; i < ember_functions_count(fns); ++i) {
    ember_function_info info{};
    if (ember_functions_get(fns, i, &info) != EMBER_OK || name != info.name) continue;
    if (static_cast<int32_t>(args.size()) != info.n_params) {
      *error = "'" + name + "' takes " + std::to_string(info.n_params) + " arguments, the server sent " +
               std::to_string(args.size());
      return false;
    }
    Json mapped = Json::object();
    for (int32_t j = 0; j < info.n_params; ++j) {
      const char* pname = nullptr;
      const char* ptype = nullptr;
      if (ember_functions_param(fns, i, j, &pname, &ptype) != EMBER_OK) return false;
      const Json* v = json_member(args, pname);
      Json typed;
      if (!v || !typed_value(*v, ptype, &typed)) {
        *error = "argument '" + std::string(pname) + "' of '" + name + "' is missing or not a " + ptype;
        return false;
      }
      mapped[pname] = typed;
    }
    out->function = name;
    out->arguments = std::move(mapped);
    return true;
  }
  *error = "the server called '" + name + "', which is not in the registry";
  return false;
}

ServerCall ask_server(const ServerEndpoint& ep, const ember_functions* fns, const Json& tools,
                      const std::string& query) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  ServerCall sc;
  const auto finish = [&](std::string error) {
    sc.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    // httplib's timeouts bound each connect, read and write; the whole reply is bounded here.
    if (error.empty() && sc.ms > ep.timeout_s * 1000) error = "the server took longer than --server-timeout";
    sc.ok = error.empty();
    sc.error = std::move(error);
    return sc;
  };
  std::string origin, prefix;
  split_url(ep.url, &origin, &prefix);
  httplib::Client client(origin);
  if (!client.is_valid()) return finish("cannot use the server URL '" + ep.url + "'");
  client.set_connection_timeout(as_micros(ep.timeout_s));
  client.set_read_timeout(as_micros(ep.timeout_s));
  client.set_write_timeout(as_micros(ep.timeout_s));
  if (!ep.api_key.empty()) client.set_bearer_token_auth(ep.api_key.c_str());
  const httplib::Result res =
      client.Post((prefix + "/v1/chat/completions").c_str(), request_body(ep, tools, query), "application/json");
  if (!res) return finish("server " + ep.url + " unreachable or too slow: " + httplib::to_string(res.error()));
  if (res->status != 200)
    return finish("server " + ep.url + " answered HTTP " + std::to_string(res->status) + ": " +
                  res->body.substr(0, 200));
  std::string name, arguments, error;
  if (!first_tool_call(res->body, &name, &arguments, &error) || !map_tool_call(fns, name, arguments, &sc, &error))
    return finish(error);
  return finish("");
}

}  // namespace ember::cli
