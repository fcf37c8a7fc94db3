// One conversation of `ember chat`: the messages, rendered with a chat template, and the
// KV cache that holds them, so that a turn evaluates only its new tokens. Through the
// public C API only.
//
// The cache is mirrored by the ids it holds and, when known, the rendered text those ids
// spell (the last prompt as rendered + the reply's tokens with control tokens written out).
// A turn renders the whole conversation with the generation prompt, then:
//  - when the rendering starts with that text, only the rest is tokenized (special tokens
//    parsed, no BOS) and evaluated after the cache (ember_generate_continue);
//  - otherwise (a template that rewrites earlier turns, a reply it trims, /system, dropped
//    turns) the whole rendering is tokenized, the cache is truncated to the longest common
//    token prefix (ember_context_truncate) and the rest is evaluated.
// BOS: the rendering's tokens are used as they are, except that a model whose vocabulary
// adds a BOS gets one in front when the template did not write it.
// The reply stops at the end-of-turn tokens (ember_chat_end_of_turn_tokens); its last
// token, which generation samples but does not evaluate, is evaluated right after, so the
// cache holds the whole reply and the next turn's new tokens start after it.
// When prompt + room for the reply exceed the context, the oldest turns (a user message
// and its reply) are dropped, the system message kept, and the rest re-evaluated.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/ember.h"

namespace ember::cli {

// What one turn did (for --verbose and the notices).
struct TurnReport {
  int32_t turn = 0;       // 1-based, counted from the start or the last Reset
  int32_t evaluated = 0;  // prompt tokens evaluated this turn
  int32_t cached = 0;     // prompt tokens the cache already held
  int32_t dropped = 0;    // oldest turns dropped to make room
  int32_t generated = 0;  // reply tokens (the end-of-turn token included)
  bool end_of_turn = false;  // the reply ended with an end-of-turn token
  ember_stop_reason stop_reason = EMBER_STOP_NONE;  // else why it ended (max tokens, full context, stopped)
};

class ChatSession {
 public:
  // Receives the reply as it streams; false stops it (Ctrl-C, a failed write).
  using Sink = std::function<bool(std::string_view text)>;
  struct Config {
    std::string tmpl;        // "": the model's own template; else a built-in name or Jinja source
    ember_generate_params generate;  // sampling and max_tokens; the stop rules are the session's
    int32_t reply_room = 0;  // tokens kept free for a reply when deciding to drop turns
  };

  ChatSession(ember_model* model, ember_context* ctx, Config config);
  // Reads the end-of-turn tokens and the BOS rule, and renders a probe conversation so
  // that a template problem shows before the first turn. false with *error set.
  bool Init(std::string* error);
  const std::vector<int32_t>& end_of_turn_tokens() const { return end_of_turn_; }
  const ember_context* context() const { return ctx_; }

  void SetSystem(std::string text);  // "" removes the system message
  void Reset();                      // forgets the turns and the cache (the system message stays)
  // The context's cache was filled from outside (a loaded --prompt-cache): mirror its tokens,
  // so that the next turn keeps the prefix the conversation shares with them. false with
  // *error set.
  bool AdoptCache(std::string* error);
  // One exchange: `user`'s message, the reply streamed to `sink` and kept in the
  // conversation. false with *error set (nothing changed but the cache, which stays
  // consistent) when the turn cannot run.
  bool Turn(const std::string& user, const Sink& sink, TurnReport* report, std::string* error);

 private:
  // The tokens a turn evaluates: `ids` after the first `keep` of the cache.
  struct Plan {
    int32_t keep = 0;
    std::vector<int32_t> ids;
  };
  struct Reply {
    std::vector<int32_t> ids;
    std::string text;
    bool end_of_turn = false;
    ember_stop_reason stop_reason = EMBER_STOP_NONE;
  };

  bool Render(const std::string& user, std::string* out, std::string* error) const;
  bool Tokenize(std::string_view text, std::vector<int32_t>* ids, std::string* error) const;
  bool PlanTurn(const std::string& rendered, Plan* plan, std::string* error) const;
  // Renders and plans, dropping the oldest turns while the prompt and reply_room do not fit.
  bool FitTurn(const std::string& user, std::string* rendered, Plan* plan, int32_t* dropped, std::string* error);
  bool Generate(const Plan& plan, const Sink& sink, Reply* reply, std::string* error);
  // The cache after a reply: the prompt, the reply, its last token evaluated.
  void Remember(const std::string& rendered, const Plan& plan, const Reply& reply);
  void ForgetCache();

  ember_model* model_;
  ember_context* ctx_;
  Config config_;
  std::vector<int32_t> end_of_turn_;
  int32_t bos_ = -1;  // >= 0: the vocabulary adds this BOS
  std::string system_;
  std::vector<std::pair<std::string, std::string>> turns_;  // user, assistant
  int32_t turn_count_ = 0;
  std::vector<int32_t> cache_ids_;          // what the KV cache holds
  std::optional<std::string> cache_text_;   // the text they spell, when known
};

}  // namespace ember::cli
