// Function calling with functional tokens (Octopus v2): constrained decoding of a
// call, early stopping at the end token, and parsing into a structured call.
//
// The call grammar (the language the constraint admits and the parser accepts):
//
//   call     := WS? FUNC '(' args? ')' END          (WS: one whitespace-only token)
//             | WS? NOFUNC END                       (the registry's "no function" answer)
//   args     := value (',' ' '? value)*              exactly the function's parameter count
//   value    := str | int | float                    as the parameter's declared type
//   str      := "'" (byte >= 0x20 except ' and \  |  '\' byte >= 0x20)* "'"
//   int      := '-'? digit+
//   float    := '-'? digit+ ('.' digit+)?
//
// FUNC, NOFUNC and END are single tokens (see engine/calls/functions.h); everything
// between is text. In a string, "\'" stands for ' and "\\" for \; any other
// backslash pair is kept as written.
//
// The constraint is a token-level automaton built once per (registry, vocabulary):
//  - Character states are (remaining parameter types, local state) pairs, found by
//    a breadth-first walk over bytes from each signature's '(' state; two functions
//    with the same remaining types share states, so there are few (octopus-tiny: 25).
//  - Each text token's effect in each state is precomputed by running the bytes of
//    its text through the character automaton (a token like `',` closes a string
//    and opens the next argument; `')` closes the last one).
//  - A state is live when the end token is reachable from it; a token is allowed
//    in a state when it leads to a live state. Per state the allowed tokens are a
//    bitset (the mask) and a sorted (token, next state) list; decoding a step is a
//    lookup and an O(n_vocab) mask, with no string work.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "engine/calls/functions.h"
#include "engine/generate/generator.h"
#include "engine/generate/sampler.h"

namespace ember {

class Context;
class Tokenizer;

// ---- the automaton -----------------------------------------------------------------

class CallAutomaton {
 public:
  using State = int32_t;
  static constexpr State kDead = -1;

  // Local part of a character state (within one argument list).
  enum class Local : int {
    kStart0,      // nothing generated: whitespace, a functional token or NOFUNC
    kStart1,      // after the leading whitespace token: a functional token or NOFUNC
    kOpen,        // after the functional token: '('
    kExpectClose, // '(' of a function without parameters: ')'
    kAfterComma,  // after ',': an optional ' ', then the next value
    kValueStart,  // the first byte of a value: ' for str, '-' or a digit for numbers
    kInString,    // inside '...'
    kInEscape,    // after '\' inside a string
    kNumSign,     // after '-'
    kNumInt,      // integer digits
    kNumDot,      // after '.' (float)
    kNumFrac,     // fraction digits
    kAfterValue,  // a complete value: ',' or ')'
    kClosed,      // after ')': only the end token
    kDone,        // after the end token: unconstrained
  };

  struct StateInfo {
    Local local;
    std::vector<ParamType> remaining;  // types of this and the following parameters
  };

  // Errors: a function whose call the vocabulary cannot spell (e.g. no token
  // containing '('), naming it.
  static Status Build(const FunctionRegistry& reg, const Tokenizer& tok, CallAutomaton* out);

  State start() const { return start_; }
  State done() const { return done_; }
  int32_t n_states() const { return static_cast<int32_t>(states_.size()); }
  int32_t n_vocab() const { return n_vocab_; }
  const StateInfo& info(State s) const { return states_[s].info; }
  std::string StateName(State s) const;  // "str,int:kValueStart" (tests, logs)

  // Next state after token id; kDead when id is not allowed in s. done() -> done().
  State Next(State s, int32_t id) const;
  bool Allowed(State s, int32_t id) const;
  // Allowed tokens of s in increasing id order (empty for done(): everything is).
  const std::vector<int32_t>& AllowedTokens(State s) const { return states_[s].tokens; }
  // Sets the logits of tokens not allowed in s to -inf (no-op in done()).
  void Mask(State s, float* logits) const;
  // Whether id is a whitespace-only token (allowed once before the functional token).
  bool IsWhitespaceToken(int32_t id) const;
  // Fewest tokens from s to done (done: 0, closed: 1); the largest over all states.
  int32_t Distance(State s) const { return states_[s].dist; }
  int32_t max_distance() const { return max_dist_; }
  // Next state of the i-th allowed token of s (parallel to AllowedTokens(s)).
  State NextOfAllowed(State s, size_t i) const { return states_[s].next[i]; }

 private:
  struct StateData {
    StateInfo info;
    std::vector<uint64_t> mask;    // [ceil(n_vocab / 64)] bit t: token t allowed
    std::vector<int32_t> tokens;   // allowed tokens, sorted
    std::vector<State> next;       // next state of tokens[i]
    int32_t dist = 0;              // fewest tokens to done
  };
  std::vector<StateData> states_;
  State start_ = kDead, done_ = kDead;
  int32_t max_dist_ = 0;
  int32_t n_vocab_ = 0;
  std::vector<uint64_t> whitespace_;  // bitset of whitespace-only tokens
};

// Masks each generation step by the automaton and counts how often the mask
// changed the argmax (the greedy choice). Plug into GenerateParams::logits_filter.
//
// budget > 0: the call must end within that many generated tokens. When the
// tokens left get few, only tokens from which the end token is still reachable in
// time are allowed (by each state's distance to the end), so a constrained call is
// always complete and valid: a string the model would run on with gets closed.
class CallConstraint {
 public:
  explicit CallConstraint(const CallAutomaton& a, int32_t budget = 0)
      : a_(a), state_(a.start()), budget_(budget) {}
  void operator()(float* logits, int32_t n_vocab, const int32_t* generated, size_t n_generated);
  // Tokens never allowed (functional tokens of functions a request excludes).
  void Ban(std::vector<int32_t> ids) { banned_ = std::move(ids); }
  CallAutomaton::State state() const { return state_; }
  int32_t n_changed() const { return n_changed_; }
  int32_t n_steps() const { return n_steps_; }  // masked steps

 private:
  const CallAutomaton& a_;
  CallAutomaton::State state_;
  int32_t budget_;
  std::vector<int32_t> banned_;
  size_t consumed_ = 0;
  int32_t n_changed_ = 0, n_steps_ = 0;
};

// ---- parsing -------------------------------------------------------------------------

struct ParsedCall {
  bool valid = false;
  std::string error;        // why it is not a valid call ("" when valid)
  int32_t function = -1;    // registry index; -1 when no function token was found
  bool no_function = false; // the registry's "no function" answer (valid, function -1)
  std::vector<Json> args;   // one per parameter, in order (valid calls only)

  // {"function": "set_alarm", "arguments": {"time": "7 am"}, "token": "<nexa_3>"};
  // no function: {"function": null, "arguments": {}, "token": "<nexa_31>"};
  // invalid: {"function": NAME-or-null, "error": "...", "output": TEXT}.
  Json ToJson(const FunctionRegistry& reg, std::string_view output_text = {}) const;
  Json ArgumentsJson(const FunctionRegistry& reg) const;  // {} unless valid
};

// Parses generated tokens (from the first one; the end token and anything after it
// ends the call) against the registry. Never fails: malformed output is a ParsedCall
// with valid == false and an error saying what is wrong and where.
ParsedCall ParseCall(const FunctionRegistry& reg, const Tokenizer& tok, const int32_t* ids, size_t n);

// ---- generation ----------------------------------------------------------------------

struct CallOptions {
  SamplerParams sampling = GreedySampling();
  bool constrain = true;     // needs an automaton
  bool early_stop = true;    // stop at the end token
  // Also measure the tokens a run without early stopping produces (to EOS, the
  // limit or a full context): generation is continued from the call (same
  // context) after the timed part. Implied when early_stop is false.
  bool count_no_stop = false;
  int32_t max_tokens = 128;          // limit of the call's generation
  int32_t max_tokens_no_stop = 0;    // limit without early stopping; 0: EOS or full context
  // Keep the cached tokens the prompt starts with (GenerateParams::reuse_prefix): calls
  // sharing a prompt template evaluate only what follows the common part.
  bool reuse_prefix = true;
  // Functional tokens the call must not generate (functions outside a request's tools).
  std::vector<int32_t> banned_tokens;

  static SamplerParams GreedySampling() {
    SamplerParams p;
    p.temperature = 0;
    return p;
  }
};

// How sure the model was of its call: the router's scores (docs/HYBRID.md). Each decoding
// step's distribution is the softmax of its logits after the constraint (temperature 1),
// taken at the greedy choice (the top-1 token), over the call's steps up to the end token.
struct CallConfidence {
  float function_prob = 0;  // top-1 probability at the functional token's step
  float min_prob = 0;       // smallest top-1 probability along the call
  float min_margin = 0;     // smallest top-1 minus top-2 probability along the call
  float mean_entropy = 0;   // mean entropy (nats) of the call's steps
  float call_prob = 0;      // product of the call's top-1 probabilities
  // Final-normed hidden state [n_embd] the functional token was predicted from (the
  // input of the output matrix at that step): the feature of a trained probe.
  std::vector<float> hidden;
};

struct CallResult {
  ParsedCall call;
  CallConfidence confidence;
  std::vector<int32_t> tokens;   // generated ids (the end token included when sampled)
  std::string text;              // their text, special tokens rendered
  StopReason stop_reason = StopReason::kNone;
  int32_t n_prompt = 0;
  int32_t n_prompt_reused = 0;   // prompt tokens taken from the cache (the rest were evaluated)
  int32_t n_generated = 0;       // tokens sampled by the call's generation
  int32_t n_call_tokens = 0;     // up to and including the first end token (all when none)
  int32_t n_no_stop = -1;        // tokens without early stopping; -1: not measured
  int32_t n_saved = -1;          // n_no_stop - n_call_tokens; -1: not measured
  int32_t n_constraint_changed = 0;  // steps where the mask changed the argmax
  double prefill_ms = 0, decode_ms = 0, ttft_ms = 0;
  double total_ms = 0;           // the call: generation and parsing (not the no-stop count)
};

// template with its first "{query}" replaced by query; InvalidArgument without one.
Status FillPromptTemplate(std::string_view tmpl, std::string_view query, std::string* out);

// Generates a call for the prompt ids (BOS included as the model wants) and parses
// it. `automaton` is required when options.constrain (built from the same registry).
Status RunCall(Context& ctx, const FunctionRegistry& reg, const CallAutomaton* automaton,
               const std::vector<int32_t>& prompt, const CallOptions& options, CallResult* out);

}  // namespace ember
