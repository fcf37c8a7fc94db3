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

// Where the incomplete UTF-8 character that ends `s` starts, if the next bytes could
// still complete it; s.size() when s ends on a character boundary or in bytes that can
// never become a valid character (those are released as they are; generator.h).
size_t incomplete_utf8_start(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto lead = static_cast<unsigned char>(s[n - back]);
    if ((lead & 0xC0) == 0x80) continue;  // a continuation byte: its lead is further back
    const size_t need = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                      : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
    if (need <= back) return n;  // ASCII, not a lead byte, complete, or followed by strays
    if (back >= 2) {
      // The second byte's range is narrower after E0 (overlong), ED (surrogates), F0
      // (overlong) and F4 (beyond U+10FFFF).
      const auto second = static_cast<unsigned char>(s[n - back + 1]);
      const unsigned char lo = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
      if (second < lo || second > hi) return n;
    }
    return n - back;
  }
  return n;
}

// The text of the generated tokens on its way to the callback and GenerateResult::text.
// `pending` is sized once so that appending never reallocates (test_memory).
class TextRelease {
 public:
  TextRelease(const GenerateParams& p, const Tokenizer& tok, const TokenCallback& on_token, GenerateResult* r)
      : p_(p), tok_(tok), on_token_(on_token), r_(*r) {
    size_t longest_stop = 0;
    for (const std::string& s : p.stop_strings) longest_stop = std::max(longest_stop, s.size());
    // Held back: a stop-string prefix or up to 3 bytes of a character, plus one token's text.
    pending_.reserve(std::max<size_t>(longest_stop, 4) + tok.max_token_text_bytes());
  }

  // Appends token id's text and releases all but what must wait: a possible stop-string
  // prefix or an incomplete character. kStopString at a complete stop string (not
  // released), kCallback when the callback asks to stop, else kNone.
  StopReason Push(int32_t id) {
    tok_.AppendTokenText(id, p_.render_special, &pending_);
    size_t emit = pending_.size();
    bool stop_string = false;
    for (const std::string& s : p_.stop_strings) {
      size_t at = pending_.find(s);
      if (at != std::string::npos && at < emit) {
        emit = at;
        stop_string = true;
      }
    }
    if (!stop_string)
      emit = std::min(emit - held_back(pending_, p_.stop_strings), incomplete_utf8_start(pending_));
    const bool go_on = Release(id, emit);
    if (stop_string) {
      pending_.clear();
      return StopReason::kStopString;
    }
    return go_on ? StopReason::kNone : StopReason::kCallback;
  }

  // End of generation: held-back text that never became a stop string or a character.
  void Flush() {
    if (!pending_.empty()) Release(r_.tokens.back(), pending_.size());
  }

 private:
  bool Release(int32_t id, size_t n) {
    std::string_view text(pending_.data(), n);
    if (p_.collect_text) r_.text.append(text);
    const bool go_on = !on_token_ || on_token_(id, text);
    pending_.erase(0, n);
    return go_on;
  }

  const GenerateParams& p_;
  const Tokenizer& tok_;
  const TokenCallback& on_token_;
  GenerateResult& r_;
  std::string pending_;
};

// Generate and GenerateContinue: the prompt must fit after the n_kept tokens the cache
// keeps, with room for one more.
Status CheckPrompt(const Context& ctx, size_t n_prompt, int32_t n_kept, const GenerateParams& p) {
  if (n_prompt == 0) return InvalidArgument("generate: the prompt is empty");
  const size_t room = static_cast<size_t>(ctx.n_ctx() - n_kept);
  if (n_prompt >= room) {
    const std::string after = n_kept ? " after the " + std::to_string(n_kept) + " in the cache" : "";
    return OutOfRange("generate: the prompt has " + std::to_string(n_prompt) + " tokens" + after +
                      " but the context holds " + std::to_string(ctx.n_ctx()) +
                      " (at least one more is needed to generate)");
  }
  for (const std::string& s : p.stop_strings)
    if (s.empty()) return InvalidArgument("generate: empty stop string");
  return Status::Ok();
}

// A full context: the first n_keep tokens stay, half of the rest goes (llama.cpp's rule).
Status ShiftContext(Context& ctx, int32_t n_keep) {
  const int32_t keep = std::min(n_keep, ctx.n_past() - 2);
  const int32_t discard = (ctx.n_past() - keep) / 2;
  Status s = ctx.Shift(keep, discard);
  if (!s.ok()) return Status(s.code(), "generate: context full, and " + s.message());
  return s;
}

// The generation loop after CheckPrompt: evaluates the prompt after what the cache holds,
// then samples until a stop rule fires.
Status Run(Context& ctx, const int32_t* prompt, size_t n_prompt, const GenerateParams& p,
           const TokenCallback& on_token, GenerateResult* out, Clock::time_point t0) {
  GenerateResult r;
  const int32_t eos = ctx.model().tokenizer().eos_id();
  // All token history (prompt + generated) in one preallocated buffer for the penalties.
  const size_t room = static_cast<size_t>(ctx.n_ctx());
  std::vector<int32_t> history(prompt, prompt + n_prompt);
  history.reserve(room);
  r.tokens.reserve(room - n_prompt);

  EMBER_RETURN_IF_ERROR(ctx.Eval(prompt, n_prompt));
  r.n_prompt = static_cast<int32_t>(n_prompt);
  r.prefill_ms = ms_since(t0);

  Sampler sampler(p.sampling, ctx.n_vocab());
  std::vector<float> filtered(p.logits_filter ? ctx.n_vocab() : 0);  // [n_vocab], once per call
  TextRelease release(p, ctx.model().tokenizer(), on_token, &r);
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
    if (StopReason why = release.Push(id); why != StopReason::kNone) {
      r.stop_reason = why;
      break;
    }
    if (p.max_tokens > 0 && static_cast<int32_t>(r.tokens.size()) >= p.max_tokens) { r.stop_reason = StopReason::kMaxTokens; break; }
    if (ctx.n_past() >= ctx.n_ctx()) {
      if (!p.context_shift) { r.stop_reason = StopReason::kContextFull; break; }
      EMBER_RETURN_IF_ERROR(ShiftContext(ctx, p.n_keep < 0 ? static_cast<int32_t>(n_prompt) : p.n_keep));
      ++r.n_shifts;
    }
    EMBER_RETURN_IF_ERROR(ctx.Eval(&id, 1));
  }
  release.Flush();
  r.decode_ms = ms_since(td);
  if (out) *out = std::move(r);
  return Status::Ok();
}

}  // namespace

Status Generate(Context& ctx, const int32_t* prompt, size_t n_prompt, const GenerateParams& p,
                const TokenCallback& on_token, GenerateResult* out) {
  EMBER_RETURN_IF_ERROR(CheckPrompt(ctx, n_prompt, 0, p));
  const auto t0 = Clock::now();
  ctx.Reset();
  return Run(ctx, prompt, n_prompt, p, on_token, out, t0);
}

Status GenerateContinue(Context& ctx, const int32_t* prompt, size_t n_prompt, const GenerateParams& p,
                        const TokenCallback& on_token, GenerateResult* out) {
  EMBER_RETURN_IF_ERROR(CheckPrompt(ctx, n_prompt, ctx.n_past(), p));
  return Run(ctx, prompt, n_prompt, p, on_token, out, Clock::now());
}

}  // namespace ember
