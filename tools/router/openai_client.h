// The router's side of the server: one query to an OpenAI-compatible endpoint
// (POST {URL}/v1/chat/completions: the query as the user's message, the registry's functions
// as OpenAI function tools, temperature 0), its first tool call read back and mapped onto the
// registry. Any such server will do (ember serve, llama.cpp's server, Ollama, vLLM).
#pragma once
#include <string>

#include "../json_io.h"
#include "ember/ember.h"

namespace ember::cli {

struct ServerEndpoint {
  std::string url;          // "http://127.0.0.1:8080" (a path after the port prefixes /v1/...)
  std::string api_key;      // "" : no Authorization header
  std::string model;        // the request's "model"; "" : left out
  double timeout_s = 10;    // connect, each read and write, and the whole reply
};

// The registry's functions as OpenAI tools: [{"type": "function", "function": {"name",
// "description", "parameters": {"type": "object", "properties": {...}, "required": [...]}}}],
// str -> "string", int -> "integer", float -> "number".
Json openai_tools(const ember_functions* fns);

struct ServerCall {
  bool ok = false;          // the server answered with a call of a registered function
  std::string error;        // why not: unreachable, timeout, HTTP status, no tool call, bad arguments
  std::string function;     // registry name
  Json arguments;           // {"param": value} in the registry's order and types
  double ms = 0;            // request to reply (or to the failure)
};

// Sends the query; never throws, every failure is a ServerCall with ok false.
ServerCall ask_server(const ServerEndpoint& ep, const ember_functions* fns, const Json& tools,
                      const std::string& query);

// The call {name, arguments (a JSON string, as OpenAI sends it)} in the registry's terms:
// a registered function, every parameter present with its type (an int may come as 27.0),
// no others. false with *error saying what does not fit.
bool map_tool_call(const ember_functions* fns, const std::string& name, const std::string& arguments,
                   ServerCall* out, std::string* error);

}  // namespace ember::cli
