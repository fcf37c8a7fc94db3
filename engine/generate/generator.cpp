#include "engine/generate/generator.h"

#include <algorithm>
#include <chrono>

namespace ember {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kNone: return "none";
    case StopReason::kEos: return "eos";
    case StopReason::kStopToken: return "stop token";
    case StopReason::kStopString: return "stop string";
    case StopReason::kMaxTokens: return "max tokens";
    case StopReason::kContextFull: return "context full";
    case StopReason::kCallback: return "callback";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Length of the longest suffix of `s` that is a proper prefix of some stop string:
// that much text must be held back until the next token decides it.
size_t held_back(std::string_view s, const std::vector<std::string>& stops) {
  size_t keep = 0;
  for (const std::string& stop : stops)
    for (size_t k = std::min(s.size(), stop.size() - 1); k > keep; --k)
      if (s.substr(s.size() - k) == std::string_view(stop).substr(0, k)) {
        keep = k;
        break;
      }
  return keep;
}

}  // namespace

Status Generate(Context& ctx, const int32_t* prompt, size_t n_prompt, const GenerateParams& p,
                const TokenCallback& on_token, GenerateResult* out) {
  GenerateResult r;
  if (n_prompt == 0) return InvalidArgument("generate: the prompt is empty");
  if (n_prompt >= static_cast<size_t>(ctx.n_ctx()))
    return OutOfRange("generate: the prompt has " + std::to_string(n_prompt) + " tokens but the context holds " +
                      std::to_string(ctx.n_ctx()) + " (at least one more is needed to generate)");
  for (const std::string& s : p.stop_strings)
    if (s.empty()) return InvalidArgument("generate: empty stop string");
  const Tokenizer& tok = ctx.model().tokenizer();
  const int32_t eos = tok.eos_id();

  // All token history (prompt + generated) in one preallocated buffer for the penalties.
  const size_t room = static_cast<size_t>(ctx.n_ctx());
  std::vector<int32_t> history(prompt, prompt + n_prompt);
  history.reserve(room);
  r.tokens.reserve(room - n_prompt);

  const auto t0 = Clock::now();
  ctx.Reset();
  EMBER_RETURN_IF_ERROR(ctx.Eval(prompt, n_prompt));
  r.n_prompt = static_cast<int32_t>(n_prompt);
  r.prefill_ms = ms_since(t0);

  Sampler sampler(p.sampling, ctx.n_vocab());
  std::vector<float> filtered(p.logits_filter ? ctx.n_vocab() : 0);  // [n_vocab], once per call
  // Generated text not yet emitted (a possible stop-string prefix) plus one token's
  // text: sized once so appending never reallocates.
  std::string pending;
  size_t longest_stop = 0;
  for (const std::string& s : p.stop_strings) longest_stop = std::max(longest_stop, s.size());
  pending.reserve(longest_stop + tok.max_token_text_bytes());
  const auto td = Clock::now();
  for (;;) {
    const float* logits = ctx.logits(-1);
    if (p.logits_filter) {
      std::copy_n(logits, filtered.size(), filtered.begin());
      p.logits_filter(filtered.data(), ctx.n_vocab(), r.tokens.data(), r.tokens.size());
      logits = filtered.data();
    }
    const int32_t id = sampler.Sample(logits, history.data(), history.size());
    if (r.tokens.empty()) r.ttft_ms = ms_since(t0);
    r.tokens.push_back(id);
    history.push_back(id);

    const bool is_stop_id = std::find(p.stop_ids.begin(), p.stop_ids.end(), id) != p.stop_ids.end();
    if ((p.stop_at_eos && id == eos) || is_stop_id) {
      r.stop_reason = is_stop_id ? StopReason::kStopToken : StopReason::kEos;
      break;
    }
    tok.AppendTokenText(id, p.render_special, &pending);
    // Emit all but a possible stop-string prefix; stop at a complete stop string.
    size_t emit = pending.size();
    bool stop_string = false;
    for (const std::string& s : p.stop_strings) {
      size_t at = pending.find(s);
      if (at != std::string::npos && at < emit) {
        emit = at;
        stop_string = true;
      }
    }
    if (!stop_string) emit -= held_back(pending, p.stop_strings);
    std::string_view text(pending.data(), emit);
    if (p.collect_text) r.text.append(text);
    const bool go_on = !on_token || on_token(id, text);
    pending.erase(0, emit);
    if (stop_string) { r.stop_reason = StopReason::kStopString; pending.clear(); break; }
    if (!go_on) { r.stop_reason = StopReason::kCallback; break; }
    if (p.max_tokens > 0 && static_cast<int32_t>(r.tokens.size()) >= p.max_tokens) { r.stop_reason = StopReason::kMaxTokens; break; }
    if (ctx.n_past() >= ctx.n_ctx()) { r.stop_reason = StopReason::kContextFull; break; }
    EMBER_RETURN_IF_ERROR(ctx.Eval(&id, 1));
  }
  if (!pending.empty()) {  // held-back text that never became a stop string
    if (p.collect_text) r.text += pending;
    if (on_token) on_token(r.tokens.back(), pending);
  }
  r.decode_ms = ms_since(td);
  if (out) *out = std::move(r);
  return Status::Ok();
}

}  // namespace ember
