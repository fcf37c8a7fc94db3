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
  // Context shift (llama.cpp's --context-shift): when the cache is full, forget half of the
  // tokens after the first n_keep (-1: the prompt) and go on (Context::Shift) instead of
  // stopping with kContextFull. The token lists of the result then grow past n_ctx (by
  // doubling: a few allocations over a long generation).
  bool context_shift = false;
  int32_t n_keep = 0;
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

// Called per generated token with the text it releases: possibly empty while a partial
// stop string or an incomplete UTF-8 character is held back. Return false to stop.
//
// UTF-8: a token may end in the middle of a character (byte-level BPE tokens, and
// SentencePiece's <0xF0>-style byte-fallback tokens spell one character over several
// tokens), so the text released stops after the last complete character and the rest
// waits for the next token. Bytes that can no longer become a valid character (a stray
// continuation byte, a lead byte followed by a non-continuation byte, 0xC0/0xC1/0xF5..0xFF,
// an overlong or surrogate prefix) are released as they are, as soon as that is known;
// whatever is still held when generation ends is released as it is, by one last call
// with the last token's id.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (stop token included when one stopped it)
  std::string text;             // emitted text
  StopReason stop_reason = StopReason::kNone;
  int32_t n_prompt = 0;
  int32_t n_shifts = 0;  // context shifts made
  double prefill_ms = 0, decode_ms = 0, ttft_ms = 0;
};

// Resets ctx, evaluates the prompt (an error if it does not fit) and generates.
Status Generate(Context& ctx, const int32_t* prompt, size_t n_prompt, const GenerateParams& params,
                const TokenCallback& on_token, GenerateResult* out);

// The same without the reset: evaluates the prompt after the ctx.n_past() tokens already
// in the cache (a conversation's earlier turns) and generates from there. The prompt must
// not be empty (the first token is sampled from its last logits) and must leave room for
// one more token; on such an error nothing is evaluated. The repetition penalties see this
// call's prompt and output only (the context keeps no token ids). The last generated token
// is sampled but not evaluated: the cache then holds n_past() + n_prompt + tokens - 1.
Status GenerateContinue(Context& ctx, const int32_t* prompt, size_t n_prompt, const GenerateParams& params,
                        const TokenCallback& on_token, GenerateResult* out);

}  // namespace ember
