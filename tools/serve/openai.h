// The OpenAI API shapes `ember serve` speaks: request bodies of /v1/chat/completions
// and /v1/completions parsed and checked (every problem an HTTP 400 naming the field),
// and the JSON of responses, stream chunks and errors.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../json_io.h"
#include "ember/ember.h"

namespace ember::cli::serve {

// An error answer: HTTP status and OpenAI's {"error": {"message", "type", "code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";  // server_error, authentication_error, ...
  std::string code;                            // "invalid_json", "invalid_type", ...
};
std::string error_body(const ApiError& e);
// An error of any status, and the 400 invalid_request_error most problems are.
ApiError api_error(int status, std::string message, std::string type, std::string code);
ApiError invalid_request(std::string message, std::string code = "invalid_value");
// j as compact JSON text; bytes that are not UTF-8 (a model's output may hold some) become U+FFFD.
std::string dump(const Json& j);

struct ChatMessage {
  std::string role, content;
};

struct AdapterScale {
  int32_t id = 0;
  float scale = 1.0f;
};

// One generation request, chat or completion.
struct GenerationRequest {
  bool chat = true;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completion
  int32_t max_tokens = -1;            // -1: until a stop or the context is full
  std::optional<float> temperature, top_p;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool ignore_eos = false;            // llama.cpp's: generate on past the end-of-sequence token
  bool stream_usage = false;          // stream_options.include_usage
  std::optional<std::vector<std::string>> tools;  // function names of `tools`
  std::string tool_choice = "auto";   // auto, none, required, or a function's name
  std::optional<std::vector<AdapterScale>> lora;
  std::optional<std::vector<std::string>> blend_examples;  // lora_blend.examples
};

// Parses and checks a request body; false with *err (status 400) naming the problem.
bool parse_generation_request(const std::string& body, bool chat, GenerationRequest* out, ApiError* err);

// "stop" (end of turn, EOS, a stop string), "length" (max_tokens, full context), "tool_calls".
const char* finish_reason(ember_stop_reason r);

struct Usage {
  int32_t prompt_tokens = 0, completion_tokens = 0;
};
Json usage_json(const Usage& u);

// The fields every response and chunk starts with: id, object, created, model.
Json response_head(const std::string& id, const char* object, const std::string& model);

}  // namespace ember::cli::serve
