// Generator: prompt -> streamed continuation, with the stop rules (EOS, stop
// ids, stop strings, max tokens, full context) and a per-token callback.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/model/context.h"
#include "engine/generate/sampler.h"

namespace ember {

enum class StopReason : int { kNone = 0, kEos, kStopToken, kStopString, kMaxTokens, kContextFull, kCallback };
const char* stop_reason_name(StopReason r);

struct GenerateParams {
  SamplerParams sampling;
  int32_t max_tokens = 128;             // <= 0: until a stop or a full context
  std::vector<int32_t> stop_ids;        // stop after sampling one of these (it is reported, its text is not emitted)
  std::vector<std::string> stop_strings;// stop when the output contains one (not emitted)
  bool stop_at_eos = true;
  bool render_special = false;          // control tokens' text in the output
  // Collect the emitted text in GenerateResult::text (grows by doubling: a few
  // allocations per generation). Off: the callback is the only way to see the text,
  // and the decode loop allocates nothing.
  bool collect_text = true;
  // Optional: called before each token is sampled with that step's logits (a
  // mutable copy, [n_vocab]) and the tokens generated so far; it may mask tokens
  // (set them to -INFINITY) or reweight them. Constrained decoding uses it.
  std::function<void(float* logits, int32_t n_vocab, const int32_t* generated, size_t n_generated)>
      logits_filter;
};

// Called per generated token with the text it releases (possibly empty while a
// partial stop string is held back). Return false to stop.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (stop token included when one stopped it)
  std::string text;             // emitted text
  StopReason stop_reason = StopReason::kNone;
  int32_t n_prompt = 0;
  double prefill_ms = 0, decode_ms = 0, ttft_ms = 0;
};

// Resets ctx, evaluates the prompt (an error if it does not fit) and generates.
Status Generate(Context& ctx, const int32_t* prompt, size_t n_prompt, const GenerateParams& params,
                const TokenCallback& on_token, GenerateResult* out);

}  // namespace ember
