// `ember serve` request parsing (tools/serve/openai.cpp, compiled into this target):
// arbitrary bytes as the body of POST /v1/chat/completions or /v1/completions through
// parse_generation_request (JSON, messages and content parts, sampling fields, stop,
// tools and tool_choice, the per-request "lora" scales and "lora_blend" examples), then
// what the server answers with: the 400 error body, or a response built from what
// parsed (the prompt or messages echoed through dump(), whose invalid UTF-8 becomes
// U+FFFD). Properties besides "no crash": every refusal is a 400 with a message, and
// every JSON text the server would send parses back.
// Input: first byte bit 0 set: a chat body, clear: a completion body; the rest is the body.
// (The HTTP layer itself, cpp-httplib, and the API-key check, one string comparison,
// are not parsed here.)
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_support.h"
#include "tools/serve/openai.h"

namespace {

using namespace ember::cli;
using namespace ember::cli::serve;

void must_parse_back(const std::string& text) {
  Json j;
  std::string err;
  if (!parse_json(text, &j, &err)) {
    std::fprintf(stderr, "fuzz_server_request: the server would send invalid JSON (%s): %s\n", err.c_str(),
                 text.substr(0, 200).c_str());
    std::abort();
  }
}

// What a response or stream chunk would carry of the request.
Json echo(const GenerationRequest& r) {
  Json j = response_head("chatcmpl-fuzz", r.chat ? "chat.completion" : "text_completion", "fuzz");
  Json messages = Json::array();
  for (const ChatMessage& m : r.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  j["messages"] = std::move(messages);
  j["prompt"] = r.prompt;
  j["stop"] = r.stop;
  if (r.tools) j["tools"] = *r.tools;
  j["tool_choice"] = r.tool_choice;
  if (r.blend_examples) j["examples"] = *r.blend_examples;
  if (r.lora)
    for (const AdapterScale& a : *r.lora) j["lora"].push_back({{"id", a.id}, {"scale", a.scale}});
  j["usage"] = usage_json({static_cast<int32_t>(r.prompt.size()), r.max_tokens});
  return j;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::Silence();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = data[0] & 1;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  GenerationRequest req;
  ApiError err;
  if (!parse_generation_request(body, chat, &req, &err)) {
    if (err.status != 400 || err.message.empty()) std::abort();
    must_parse_back(error_body(err));
    return 0;
  }
  must_parse_back(dump(echo(req)));
  (void)json_quote(req.prompt);
  return 0;
}
