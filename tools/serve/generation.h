// One chat or completion request of `ember serve`, from the parsed body to the
// result: checked and turned into prompt tokens before a slot is taken (so that a bad
// request never holds one), then run on a leased slot as a text generation
// (ember_generate_tokens, the slot's cached prefix reused) or, for a functional-token
// model, as a function call (ember_call, constrained, stopped at the end token,
// restricted to the request's tools).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "openai.h"
#include "state.h"

namespace ember::cli::serve {

struct Job {
  GenerationRequest req;
  bool tool_call = false;            // answered by ember_call
  std::string query;                 // tool_call: the last user message
  std::vector<int32_t> ids;          // prompt tokens (slot choice; the prompt of a text generation)
  std::vector<int32_t> allowed;      // tool_call: registry indices of the request's tools (empty: all)
  std::vector<float> scales;         // adapter scales of this request
  Json blend;                        // {"weights", "cached"} of a lora_blend request, else null
  SlotLease lease;
  std::string id;                    // "chatcmpl-N" / "cmpl-N"
  Json route;                        // "ember_route" of a forwarding server's tool call, else null
};

// Checks the body and prepares the job (no slot yet); false with *err (400).
bool prepare_job(ServerState& s, const std::string& body, bool chat, Job* job, ApiError* err);
// Takes a slot for the job (waiting in the queue); false with *err (503, queue full or
// waited --timeout seconds).
bool acquire_slot(ServerState& s, Job* job, ApiError* err);

struct TextResult {
  std::string text;
  Usage usage;
  ember_stop_reason stop = EMBER_STOP_NONE;
};
// Receives the text of each token as it is generated; false cancels the generation.
using PieceSink = std::function<bool(std::string_view)>;
// A text generation on the job's slot; false with *err (500).
bool run_text(ServerState& s, Job& job, const PieceSink& sink, TextResult* out, ApiError* err);

struct CallAnswer {
  bool has_call = false;             // false: the registry's "no function" answer
  std::string name, arguments;       // arguments: JSON object text
  std::string text;                  // the raw call text
  Usage usage;
  std::optional<RouteDecision> route;  // --server: the local call's score and whether to route it
};
bool run_tool_call(ServerState& s, Job& job, CallAnswer* out, ApiError* err);

}  // namespace ember::cli::serve
