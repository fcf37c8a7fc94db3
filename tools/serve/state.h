// What every request handler of `ember serve` shares: the options, the model and its
// function registry, the chat template, the adapters, the slot pool and the counters.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../cmd_call.h"
#include "../router/route.h"
#include "lora_requests.h"
#include "metrics.h"
#include "slots.h"

namespace ember::cli::serve {

struct ServeOptions {
  std::string model_path, host = "127.0.0.1", api_key, functions_path, chat_template;
  int32_t port = 8080, parallel = 1, n_ctx = 0, n_threads = 0, queue = -1, timeout_s = 600;
  uint64_t max_body = 1 << 20;
  std::vector<std::string> lora_specs;
  RouteFlags route;  // --server URL and the router's flags (forward.h)
};

struct ServerState {
  ServeOptions opt;
  ModelPtr model;
  std::string model_name;         // GET /v1/models, "model" of responses
  FunctionsPtr fns;               // null: no registry (plain chat)
  std::string call_template;      // "{query}" template of ember_call
  std::string chat_template;      // "" : the model's tokenizer.chat_template; else a built-in name or Jinja
  std::vector<int32_t> end_of_turn;  // chat replies stop at these
  int32_t n_ctx = 0;
  Adapters adapters;
  std::unique_ptr<SlotPool> slots;
  std::unique_ptr<Router> router;  // --server: tool calls the local model is unsure of go upstream; else null
  Metrics metrics;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> stopping{false};  // set at SIGINT/SIGTERM: generations end at the next token
};

}  // namespace ember::cli::serve
