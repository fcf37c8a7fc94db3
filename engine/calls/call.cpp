#include "engine/calls/call.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <memory>

#include "engine/model/context.h"
#include "tokenizer/tokenizer.h"

namespace ember {

namespace {

using Local = CallAutomaton::Local;

const char* local_name(Local l) {
  switch (l) {
    case Local::kStart0: return "start";
    case Local::kStart1: return "start+ws";
    case Local::kOpen: return "open";
    case Local::kExpectClose: return "expect-close";
    case Local::kAfterComma: return "after-comma";
    case Local::kValueStart: return "value-start";
    case Local::kInString: return "in-string";
    case Local::kInEscape: return "in-escape";
    case Local::kNumSign: return "num-sign";
    case Local::kNumInt: return "num-int";
    case Local::kNumDot: return "num-dot";
    case Local::kNumFrac: return "num-frac";
    case Local::kAfterValue: return "after-value";
    case Local::kClosed: return "closed";
    case Local::kDone: return "done";
  }
  return "?";
}

bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

// A character state: the types of the current and following parameters (interned
// as a suffix id) and the local state.
struct CharKey {
  int32_t suffix;
  Local local;
  bool operator<(const CharKey& o) const {
    return suffix != o.suffix ? suffix < o.suffix : static_cast<int>(local) < static_cast<int>(o.local);
  }
};

// Interned parameter-type suffixes; id 0 is the empty suffix.
struct Suffixes {
  std::vector<std::vector<ParamType>> types{{}};
  std::map<std::vector<ParamType>, int32_t> ids{{{}, 0}};
  int32_t Intern(const std::vector<ParamType>& t) {
    auto it = ids.find(t);
    if (it != ids.end()) return it->second;
    const int32_t id = static_cast<int32_t>(types.size());
    types.push_back(t);
    ids.emplace(t, id);
    return id;
  }
  int32_t Tail(int32_t id) { return Intern(std::vector<ParamType>(types[id].begin() + 1, types[id].end())); }
};

// One byte through the character automaton; false when the byte is not allowed.
bool char_step(Suffixes& sx, const CharKey& k, uint8_t c, CharKey* out) {
  const std::vector<ParamType> rem = sx.types[k.suffix];  // copy: Intern may grow the table
  const ParamType head = rem.empty() ? ParamType::kString : rem[0];
  switch (k.local) {
    case Local::kOpen:
      if (c != '(') return false;
      *out = rem.empty() ? CharKey{0, Local::kExpectClose} : CharKey{k.suffix, Local::kValueStart};
      return true;
    case Local::kExpectClose:
      if (c != ')') return false;
      *out = {0, Local::kClosed};
      return true;
    case Local::kAfterComma:
      if (c == ' ') {
        *out = {k.suffix, Local::kValueStart};
        return true;
      }
      return char_step(sx, {k.suffix, Local::kValueStart}, c, out);
    case Local::kValueStart:
      if (head == ParamType::kString) {
        if (c != '\'') return false;
        *out = {k.suffix, Local::kInString};
        return true;
      }
      if (c == '-') {
        *out = {k.suffix, Local::kNumSign};
        return true;
      }
      if (!is_digit(c)) return false;
      *out = {k.suffix, Local::kNumInt};
      return true;
    case Local::kInString:
      if (c == '\'') *out = {k.suffix, Local::kAfterValue};
      else if (c == '\\') *out = {k.suffix, Local::kInEscape};
      else if (c >= 0x20) *out = {k.suffix, Local::kInString};
      else return false;
      return true;
    case Local::kInEscape:
      if (c < 0x20) return false;
      *out = {k.suffix, Local::kInString};
      return true;
    case Local::kNumSign:
      if (!is_digit(c)) return false;
      *out = {k.suffix, Local::kNumInt};
      return true;
    case Local::kNumInt:
      if (is_digit(c)) {
        *out = {k.suffix, Local::kNumInt};
        return true;
      }
      if (c == '.' && head == ParamType::kFloat) {
        *out = {k.suffix, Local::kNumDot};
        return true;
      }
      return char_step(sx, {k.suffix, Local::kAfterValue}, c, out);
    case Local::kNumDot:
      if (!is_digit(c)) return false;
      *out = {k.suffix, Local::kNumFrac};
      return true;
    case Local::kNumFrac:
      if (is_digit(c)) {
        *out = {k.suffix, Local::kNumFrac};
        return true;
      }
      return char_step(sx, {k.suffix, Local::kAfterValue}, c, out);
    case Local::kAfterValue:
      if (c == ',' && rem.size() > 1) {
        *out = {sx.Tail(k.suffix), Local::kAfterComma};
        return true;
      }
      if (c == ')' && rem.size() == 1) {
        *out = {0, Local::kClosed};
        return true;
      }
      return false;
    default:
      return false;  // start, closed, done: no text
  }
}

std::string types_name(const std::vector<ParamType>& t) {
  std::string s;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i) s += ",";
    s += param_type_name(t[i]);
  }
  return s.empty() ? "-" : s;
}

}  // namespace

// ---- automaton ------------------------------------------------------------------------

namespace {

// Token classes: special (control, unknown, user-defined: functional and end
// tokens among them) never appear as text; every other token is its text bytes.
struct TokenClasses {
  std::vector<std::string> text;
  std::vector<char> is_text, is_ws;
};

TokenClasses classify_tokens(const Tokenizer& tok) {
  const int32_t n_vocab = tok.n_vocab();
  TokenClasses tc;
  std::vector<std::string>& text = tc.text;
  text.resize(n_vocab);
  tc.is_text.assign(n_vocab, 0);
  tc.is_ws.assign(n_vocab, 0);
  for (int32_t id = 0; id < n_vocab; ++id) {
    const TokenType t = tok.type(id);
    if (t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined) continue;
    text[id] = tok.TokenText(id, /*render_special=*/false);
    if (text[id].empty()) continue;
    tc.is_text[id] = 1;
    tc.is_ws[id] = text[id].find_first_not_of(" \t\r\n") == std::string::npos;
  }
  return tc;
}

// The character automaton: every character state reachable from the start states and
// each signature's '(' state, with its byte transitions.
struct CharStates {
  Suffixes sx;
  std::vector<CharKey> keys;
  std::vector<std::array<int32_t, 256>> byte_next;  // [char state][byte] -> state or -1
  int32_t start0 = -1, start1 = -1, closed = -1, done = -1;
  std::vector<int32_t> open_of;  // the '(' state of each function
};

// Found breadth-first from each signature's '(' state.
CharStates build_char_states(const FunctionRegistry& reg) {
  CharStates cs;
  std::map<CharKey, int32_t> index;
  std::deque<int32_t> queue;
  auto intern = [&](const CharKey& k) {
    auto it = index.find(k);
    if (it != index.end()) return it->second;
    const int32_t id = static_cast<int32_t>(cs.keys.size());
    cs.keys.push_back(k);
    index.emplace(k, id);
    queue.push_back(id);
    return id;
  };
  cs.start0 = intern({0, Local::kStart0});
  cs.start1 = intern({0, Local::kStart1});
  cs.closed = intern({0, Local::kClosed});
  cs.done = intern({0, Local::kDone});
  cs.open_of.resize(reg.size());
  for (size_t f = 0; f < reg.size(); ++f) {
    std::vector<ParamType> sig;
    for (const FunctionParam& p : reg.functions()[f].params) sig.push_back(p.type);
    cs.open_of[f] = intern({cs.sx.Intern(sig), Local::kOpen});
  }
  while (!queue.empty()) {
    const int32_t s = queue.front();
    queue.pop_front();
    std::array<int32_t, 256> row;
    for (int c = 0; c < 256; ++c) {
      CharKey nk;
      row[c] = char_step(cs.sx, cs.keys[s], static_cast<uint8_t>(c), &nk) ? intern(nk) : -1;
    }
    cs.byte_next.resize(cs.keys.size());
    cs.byte_next[s] = row;
  }
  return cs;
}

// [state] -> sorted (token id, next state) pairs.
using Transitions = std::vector<std::vector<std::pair<int32_t, int32_t>>>;

// Candidate token transitions of every state, before liveness pruning.
Transitions candidate_transitions(const FunctionRegistry& reg, const CharStates& cs, const TokenClasses& tc) {
  const int32_t n_char = static_cast<int32_t>(cs.keys.size());
  const int32_t n_vocab = static_cast<int32_t>(tc.text.size());
  Transitions cand(n_char);
  for (int32_t s = 0; s < n_char; ++s) {
    const Local l = cs.keys[s].local;
    if (l == Local::kStart0 || l == Local::kStart1) {
      if (l == Local::kStart0)
        for (int32_t id = 0; id < n_vocab; ++id)
          if (tc.is_ws[id]) cand[s].push_back({id, cs.start1});
      for (size_t f = 0; f < reg.size(); ++f) cand[s].push_back({reg.functions()[f].token_id, cs.open_of[f]});
      if (reg.no_function_token_id() >= 0) cand[s].push_back({reg.no_function_token_id(), cs.closed});
    } else if (l == Local::kClosed) {
      cand[s].push_back({reg.end_token_id(), cs.done});
    } else if (l != Local::kDone) {
      for (int32_t id = 0; id < n_vocab; ++id) {
        if (!tc.is_text[id]) continue;
        int32_t cur = s;
        for (unsigned char c : tc.text[id]) {
          cur = cs.byte_next[cur][c];
          if (cur < 0) break;
        }
        if (cur >= 0) cand[s].push_back({id, cur});
      }
    }
    std::sort(cand[s].begin(), cand[s].end());
  }
  return cand;
}

// The distinct successors of every state, and which states are live: the end token
// (state done) reachable. Fixpoint over distinct edges.
void liveness(const Transitions& cand, int32_t s_done, std::vector<std::vector<int32_t>>* succ_out,
              std::vector<char>* live_out) {
  const int32_t n_char = static_cast<int32_t>(cand.size());
  std::vector<std::vector<int32_t>>& succ = *succ_out;
  succ.assign(n_char, {});
  for (int32_t s = 0; s < n_char; ++s) {
    for (auto [id, n] : cand[s]) succ[s].push_back(n);
    std::sort(succ[s].begin(), succ[s].end());
    succ[s].erase(std::unique(succ[s].begin(), succ[s].end()), succ[s].end());
  }
  std::vector<char>& live = *live_out;
  live.assign(n_char, 0);
  live[s_done] = 1;
  for (bool changed = true; changed;) {
    changed = false;
    for (int32_t s = 0; s < n_char; ++s)
      if (!live[s])
        for (int32_t n : succ[s])
          if (live[n]) {
            live[s] = 1;
            changed = true;
            break;
          }
  }
}

// The live states reachable from start through allowed tokens, in breadth-first
// order (start first); *renum: old state -> new number, -1 when dropped.
std::vector<int32_t> reachable_live_states(const std::vector<std::vector<int32_t>>& succ,
                                           const std::vector<char>& live, int32_t s_start0, int32_t s_done,
                                           std::vector<int32_t>* renum_out) {
  std::vector<int32_t>& renum = *renum_out;
  renum.assign(succ.size(), -1);
  std::vector<int32_t> order;
  std::deque<int32_t> q{s_start0};
  renum[s_start0] = 0;
  order.push_back(s_start0);
  auto reach = [&](int32_t n) {
    if (renum[n] < 0) {
      renum[n] = static_cast<int32_t>(order.size());
      order.push_back(n);
      q.push_back(n);
    }
  };
  while (!q.empty()) {
    const int32_t s = q.front();
    q.pop_front();
    for (int32_t n : succ[s])
      if (live[n]) reach(n);
  }
  reach(s_done);  // always present, even if nothing reaches it (cannot happen: start is live)
  return order;
}

}  // namespace

Status CallAutomaton::Build(const FunctionRegistry& reg, const Tokenizer& tok, CallAutomaton* out) {
  if (!out) return InvalidArgument("CallAutomaton::Build: out is null");
  if (reg.size() == 0) return InvalidArgument("CallAutomaton::Build: empty function registry");
  const int32_t n_vocab = tok.n_vocab();
  const size_t n_words = (static_cast<size_t>(n_vocab) + 63) / 64;

  const TokenClasses tc = classify_tokens(tok);
  const CharStates cs = build_char_states(reg);
  const Transitions cand = candidate_transitions(reg, cs, tc);
  std::vector<std::vector<int32_t>> succ;
  std::vector<char> live;
  liveness(cand, cs.done, &succ, &live);
  for (size_t f = 0; f < reg.size(); ++f)
    if (!live[cs.open_of[f]])
      return Unsupported("function '" + reg.functions()[f].name + "' (" + reg.functions()[f].token +
                         "): the vocabulary cannot spell a complete call of it");
  std::vector<int32_t> renum;
  const std::vector<int32_t> order = reachable_live_states(succ, live, cs.start0, cs.done, &renum);

  CallAutomaton a;
  a.n_vocab_ = n_vocab;
  a.states_.resize(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const int32_t s = order[i];
    StateData& d = a.states_[i];
    d.info.local = cs.keys[s].local;
    d.info.remaining = cs.sx.types[cs.keys[s].suffix];
    d.mask.assign(n_words, 0);
    for (auto [id, n] : cand[s]) {
      if (!live[n]) continue;
      d.tokens.push_back(id);
      d.next.push_back(renum[n]);
      d.mask[id / 64] |= uint64_t{1} << (id % 64);
    }
  }
  a.start_ = 0;
  a.done_ = renum[cs.done];
  // Distances to done: Bellman-Ford style relaxation over the few states.
  for (StateData& d : a.states_) d.dist = std::numeric_limits<int32_t>::max() / 2;
  a.states_[a.done_].dist = 0;
  for (bool changed = true; changed;) {
    changed = false;
    for (StateData& d : a.states_)
      for (State n : d.next)
        if (a.states_[n].dist + 1 < d.dist) {
          d.dist = a.states_[n].dist + 1;
          changed = true;
        }
  }
  for (const StateData& d : a.states_) a.max_dist_ = std::max(a.max_dist_, d.dist);
  a.whitespace_.assign(n_words, 0);
  for (int32_t id = 0; id < n_vocab; ++id)
    if (tc.is_ws[id]) a.whitespace_[id / 64] |= uint64_t{1} << (id % 64);
  *out = std::move(a);
  return Status::Ok();
}

std::string CallAutomaton::StateName(State s) const {
  if (s < 0 || s >= n_states()) return "dead";
  return types_name(states_[s].info.remaining) + ":" + local_name(states_[s].info.local);
}

CallAutomaton::State CallAutomaton::Next(State s, int32_t id) const {
  if (s < 0 || s >= n_states() || id < 0 || id >= n_vocab_) return kDead;
  if (s == done_) return done_;
  const StateData& d = states_[s];
  auto it = std::lower_bound(d.tokens.begin(), d.tokens.end(), id);
  if (it == d.tokens.end() || *it != id) return kDead;
  return d.next[it - d.tokens.begin()];
}

bool CallAutomaton::Allowed(State s, int32_t id) const {
  if (s < 0 || s >= n_states() || id < 0 || id >= n_vocab_) return false;
  if (s == done_) return true;
  return (states_[s].mask[id / 64] >> (id % 64)) & 1;
}

void CallAutomaton::Mask(State s, float* logits) const {
  if (s == done_ || s < 0 || s >= n_states()) return;
  const std::vector<uint64_t>& m = states_[s].mask;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (size_t w = 0; w < m.size(); ++w) {
    const uint64_t bits = m[w];
    if (bits == ~uint64_t{0}) continue;
    const int32_t base = static_cast<int32_t>(w * 64);
    const int32_t end = std::min(n_vocab_, base + 64);
    for (int32_t id = base; id < end; ++id)
      if (!((bits >> (id - base)) & 1)) logits[id] = kNegInf;
  }
}

bool CallAutomaton::IsWhitespaceToken(int32_t id) const {
  if (id < 0 || id >= n_vocab_) return false;
  return (whitespace_[id / 64] >> (id % 64)) & 1;
}

void CallConstraint::operator()(float* logits, int32_t n_vocab, const int32_t* generated, size_t n_generated) {
  for (; consumed_ < n_generated; ++consumed_) {
    state_ = a_.Next(state_, generated[consumed_]);
    // Only possible when a sampler ignores -inf; stop constraining rather than
    // mask everything.
    if (state_ == CallAutomaton::kDead) state_ = a_.done();
  }
  if (state_ == a_.done()) return;
  const int32_t before = static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
  a_.Mask(state_, logits);
  for (int32_t id : banned_)
    if (id >= 0 && id < n_vocab) logits[id] = -std::numeric_limits<float>::infinity();
  // Tokens left after this one; with too few, keep only tokens that can still
  // finish in time (none would: leave the plain mask, the call cannot be complete).
  const int64_t left = budget_ > 0 ? int64_t{budget_} - static_cast<int64_t>(n_generated) - 1 : -1;
  if (left >= 0 && left < a_.max_distance() && a_.Distance(state_) <= left + 1) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    const auto& allowed = a_.AllowedTokens(state_);
    for (size_t i = 0; i < allowed.size(); ++i)
      if (a_.Distance(a_.NextOfAllowed(state_, i)) > left) logits[allowed[i]] = kNegInf;
  }
  const int32_t after = static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
  ++n_steps_;
  if (before != after) ++n_changed_;
}

// ---- parsing -------------------------------------------------------------------------

namespace {

std::string show(std::string_view text, size_t at) {
  std::string s = "at offset " + std::to_string(at) + " of '" + std::string(text) + "'";
  return s;
}

// One argument as written in the call, before its type is checked.
struct RawArg {
  bool is_string;
  std::string value;  // unescaped string, or the number's literal
  bool has_dot;
};

// A quoted string argument starting at text[i] (the opening quote); i moves past the
// closing quote. "" on success, else the error.
std::string scan_string(std::string_view text, size_t& i, RawArg& r) {
  const size_t n = text.size();
  r.is_string = true;
  ++i;
  bool closed = false;
  while (i < n) {
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch == '\'') {
      closed = true;
      ++i;
      break;
    }
    if (ch < 0x20) return "control character in a string " + show(text, i);
    if (ch == '\\') {
      if (i + 1 >= n) break;
      const unsigned char e = static_cast<unsigned char>(text[i + 1]);
      if (e < 0x20) return "control character in a string " + show(text, i + 1);
      if (e == '\'' || e == '\\') {
        r.value.push_back(static_cast<char>(e));
      } else {
        r.value.push_back('\\');
        r.value.push_back(static_cast<char>(e));
      }
      i += 2;
      continue;
    }
    r.value.push_back(static_cast<char>(ch));
    ++i;
  }
  if (!closed) return "unterminated string " + show(text, i);
  return "";
}

// A number argument (-?digits(.digits)?) starting at text[i]; i moves past it.
std::string scan_number(std::string_view text, size_t& i, RawArg& r) {
  const size_t n = text.size();
  const char c = text[i];
  const size_t start = i;
  if (c == '-') ++i;
  if (i >= n || !is_digit(static_cast<uint8_t>(text[i]))) return "expected a digit " + show(text, i);
  while (i < n && is_digit(static_cast<uint8_t>(text[i]))) ++i;
  if (i < n && text[i] == '.') {
    r.has_dot = true;
    ++i;
    if (i >= n || !is_digit(static_cast<uint8_t>(text[i]))) return "expected a digit after '.' " + show(text, i);
    while (i < n && is_digit(static_cast<uint8_t>(text[i]))) ++i;
  }
  r.value = std::string(text.substr(start, i - start));
  return "";
}

// Splits `text` = "(" args ")" into raw arguments; "" on success, else the error.
std::string scan_args(std::string_view text, std::vector<RawArg>* raw) {
  size_t i = 0;
  const size_t n = text.size();
  if (n == 0) return "missing '(' after the functional token";
  if (text[0] != '(') return "expected '(' after the functional token, got '" + std::string(text) + "'";
  ++i;
  if (i < n && text[i] == ')') {
    ++i;
  } else {
    for (;;) {
      if (i >= n) return "unterminated argument list " + show(text, i);
      RawArg r{};
      const char c = text[i];
      std::string err;
      if (c == '\'') {
        err = scan_string(text, i, r);
      } else if (c == '-' || is_digit(static_cast<uint8_t>(c))) {
        err = scan_number(text, i, r);
      } else {
        return "expected an argument (a quoted string or a number) " + show(text, i);
      }
      if (!err.empty()) return err;
      raw->push_back(std::move(r));
      if (i >= n) return "missing ')' " + show(text, i);
      if (text[i] == ')') {
        ++i;
        break;
      }
      if (text[i] != ',') return "expected ',' or ')' after an argument " + show(text, i);
      ++i;
      if (i < n && text[i] == ' ') ++i;
    }
  }
  if (i != n) return "unexpected text after ')' " + show(text, i);
  return "";
}

// Checks the raw arguments against spec's parameters and converts them to values.
std::string convert_args(const std::vector<RawArg>& raw, const FunctionSpec& spec, std::vector<Json>* args) {
  const size_t want = spec.params.size();
  if (raw.size() != want) {
    std::string names;
    for (size_t k = 0; k < want; ++k) names += (k ? ", " : "") + spec.params[k].name;
    return "function '" + spec.name + "' takes " + std::to_string(want) + " argument" + (want == 1 ? "" : "s") +
           " (" + names + "), got " + std::to_string(raw.size());
  }
  args->clear();
  for (size_t k = 0; k < want; ++k) {
    const FunctionParam& p = spec.params[k];
    const RawArg& r = raw[k];
    const std::string where = "argument " + std::to_string(k + 1) + " (" + p.name + ")";
    switch (p.type) {
      case ParamType::kString:
        if (!r.is_string) return where + " must be a quoted string, got " + r.value;
        args->emplace_back(r.value);
        break;
      case ParamType::kInt: {
        if (r.is_string) return where + " must be an int, got a string";
        if (r.has_dot) return where + " must be an int, got " + r.value;
        int64_t v = 0;
        auto res = std::from_chars(r.value.data(), r.value.data() + r.value.size(), v);
        if (res.ec != std::errc() || res.ptr != r.value.data() + r.value.size())
          return where + " is out of range: " + r.value;
        args->emplace_back(v);  // int64: written as an integer
        break;
      }
      case ParamType::kFloat: {
        if (r.is_string) return where + " must be a number, got a string";
        double d = 0;
        auto res = std::from_chars(r.value.data(), r.value.data() + r.value.size(), d);
        if (res.ec != std::errc() || !std::isfinite(d)) return where + " is out of range: " + r.value;
        args->emplace_back(d);  // double: written shortest round-trip
        break;
      }
    }
  }
  return "";
}

// Parses `text` = "(" args ")" for spec into args; "" on success, else the error.
std::string parse_args(std::string_view text, const FunctionSpec& spec, std::vector<Json>* args) {
  std::vector<RawArg> raw;
  std::string err = scan_args(text, &raw);
  if (!err.empty()) return err;
  return convert_args(raw, spec, args);
}

bool is_special(const Tokenizer& tok, int32_t id) {
  const TokenType t = tok.type(id);
  return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
}

}  // namespace

ParsedCall ParseCall(const FunctionRegistry& reg, const Tokenizer& tok, const int32_t* ids, size_t n) {
  ParsedCall pc;
  const auto fail = [&](std::string why) {
    pc.valid = false;
    pc.error = std::move(why);
    pc.args.clear();
    return pc;
  };
  const auto piece = [&](int32_t id) {
    return (id >= 0 && id < tok.n_vocab()) ? "'" + tok.piece(id) + "' (id " + std::to_string(id) + ")"
                                           : "id " + std::to_string(id) + " (out of range)";
  };
  size_t i = 0;
  // At most one leading whitespace-only token, as the grammar says.
  if (i < n && ids[i] >= 0 && ids[i] < tok.n_vocab() && !is_special(tok, ids[i])) {
    const std::string t = tok.TokenText(ids[i], false);
    if (!t.empty() && t.find_first_not_of(" \t\r\n") == std::string::npos) ++i;
  }
  if (i >= n) return fail("no functional token in the output");
  const int32_t ft = ids[i];
  if (ft == reg.end_token_id()) return fail("the end token came before any functional token");
  if (ft >= 0 && ft == reg.no_function_token_id()) {
    pc.no_function = true;
    if (i + 1 >= n) return fail("missing end token " + reg.end_token() + " after the no-function token");
    if (ids[i + 1] != reg.end_token_id())
      return fail("expected the end token after the no-function token, got " + piece(ids[i + 1]));
    pc.valid = true;
    return pc;
  }
  pc.function = reg.IndexOfToken(ft);
  if (pc.function < 0) {
    if (ft >= 0 && ft < tok.n_vocab() && is_special(tok, ft))
      return fail("token " + piece(ft) + " is not a registered function");
    return fail("expected a functional token, got " + piece(ft));
  }
  std::string text;
  bool ended = false;
  for (++i; i < n; ++i) {
    const int32_t id = ids[i];
    if (id == reg.end_token_id()) {
      ended = true;
      break;
    }
    if (id < 0 || id >= tok.n_vocab()) return fail("token id " + std::to_string(id) + " out of range");
    if (is_special(tok, id)) return fail("unexpected special token " + piece(id) + " in the arguments");
    text += tok.TokenText(id, false);
  }
  std::vector<Json> args;
  std::string err = parse_args(text, reg.functions()[pc.function], &args);
  if (!err.empty()) return fail(err);
  if (!ended) return fail("missing end token " + reg.end_token() + " after the call");
  pc.args = std::move(args);
  pc.valid = true;
  return pc;
}

Json ParsedCall::ArgumentsJson(const FunctionRegistry& reg) const {
  Json o = Json::object();
  if (!valid || function < 0) return o;
  const FunctionSpec& f = reg.functions()[function];
  for (size_t k = 0; k < f.params.size() && k < args.size(); ++k) o[f.params[k].name] = args[k];
  return o;
}

Json ParsedCall::ToJson(const FunctionRegistry& reg, std::string_view output_text) const {
  Json o = Json::object();  // members in insertion order (Json is ordered)
  const bool have_fn = function >= 0 && function < static_cast<int32_t>(reg.size());
  o["function"] = have_fn ? Json(reg.functions()[function].name) : Json();
  if (valid) {
    o["arguments"] = ArgumentsJson(reg);
    o["token"] = no_function ? reg.no_function_token() : reg.functions()[function].token;
  } else {
    o["error"] = error;
    o["output"] = std::string(output_text);
  }
  return o;
}

// ---- generation ----------------------------------------------------------------------

Status FillPromptTemplate(std::string_view tmpl, std::string_view query, std::string* out) {
  const size_t at = tmpl.find("{query}");
  if (at == std::string_view::npos) return InvalidArgument("the prompt template has no '{query}' placeholder");
  std::string s;
  s.reserve(tmpl.size() + query.size());
  s.append(tmpl.substr(0, at));
  s.append(query);
  s.append(tmpl.substr(at + 7));
  *out = std::move(s);
  return Status::Ok();
}

namespace {

// r->n_no_stop: the tokens the call would have generated without early stopping.
Status count_without_early_stop(Context& ctx, const std::vector<int32_t>& prompt, const CallOptions& o,
                                CallResult* out) {
  CallResult& r = *out;
  r.n_no_stop = r.n_generated;
  // Only a call that stopped at the end token would have gone on; continue it
  // from the same tokens, as a run without early stopping would have.
  const size_t have = prompt.size() + r.tokens.size();
  const bool room = have < static_cast<size_t>(ctx.n_ctx());
  const bool limit_left = o.max_tokens_no_stop <= 0 || r.n_generated < o.max_tokens_no_stop;
  if (r.stop_reason == StopReason::kStopToken && room && limit_left) {
    std::vector<int32_t> ids(prompt);
    ids.insert(ids.end(), r.tokens.begin(), r.tokens.end());
    GenerateParams cp;
    cp.sampling = o.sampling;
    cp.max_tokens = o.max_tokens_no_stop > 0 ? o.max_tokens_no_stop - r.n_generated : 0;
    cp.stop_at_eos = true;
    cp.reuse_prefix = o.reuse_prefix;
    GenerateResult rest;
    EMBER_RETURN_IF_ERROR(Generate(ctx, ids.data(), ids.size(), cp, nullptr, &rest));
    r.n_no_stop += static_cast<int32_t>(rest.tokens.size());
  }
  return Status::Ok();
}

// Statistics of each decoding step's distribution (after the constraint) and the hidden
// state the functional token is predicted from: what CallConfidence summarizes.
class ConfidenceObserver {
 public:
  ConfidenceObserver(const Context& ctx, const CallAutomaton* automaton, int32_t max_steps)
      : ctx_(ctx), automaton_(automaton) {
    steps_.reserve(static_cast<size_t>(std::max(max_steps, 1)));
  }

  void Observe(const float* logits, int32_t n_vocab, const int32_t* generated, size_t n_generated) {
    float top1 = -std::numeric_limits<float>::infinity(), top2 = top1;
    for (int32_t i = 0; i < n_vocab; ++i) {
      if (logits[i] > top1) {
        top2 = top1;
        top1 = logits[i];
      } else if (logits[i] > top2) {
        top2 = logits[i];
      }
    }
    double sum = 0, weighted = 0;  // sum of exp(l - top1), and of exp(l - top1) * (l - top1)
    for (int32_t i = 0; i < n_vocab; ++i) {
      if (!std::isfinite(logits[i])) continue;  // masked out
      const double d = static_cast<double>(logits[i]) - top1;
      const double e = std::exp(d);
      sum += e;
      weighted += e * d;
    }
    const double log_sum = std::log(sum);
    Step st;
    st.top1 = static_cast<float>(1.0 / sum);
    st.margin = st.top1 - (std::isfinite(top2) ? static_cast<float>(std::exp(top2 - top1) / sum) : 0.0f);
    st.entropy = static_cast<float>(log_sum - weighted / sum);
    steps_.push_back(st);
    if (BeforeFunctionalToken(generated, n_generated))
      if (const float* h = ctx_.hidden(-1)) hidden_.assign(h, h + ctx_.model().config().n_embd);
  }

  CallConfidence Summary(const std::vector<int32_t>& tokens, int32_t n_call_tokens) const {
    CallConfidence c;
    const size_t n = std::min(steps_.size(), static_cast<size_t>(std::max(n_call_tokens, 0)));
    if (n == 0) return c;
    size_t fn_step = 0;  // the first token that is not the leading whitespace
    while (fn_step + 1 < n && BeforeFunctionalToken(tokens.data(), fn_step + 1)) ++fn_step;
    c.function_prob = steps_[fn_step].top1;
    c.min_prob = c.min_margin = 1;
    double log_prob = 0, entropy = 0;
    for (size_t i = 0; i < n; ++i) {
      c.min_prob = std::min(c.min_prob, steps_[i].top1);
      c.min_margin = std::min(c.min_margin, steps_[i].margin);
      log_prob += std::log(static_cast<double>(steps_[i].top1));
      entropy += steps_[i].entropy;
    }
    c.call_prob = static_cast<float>(std::exp(log_prob));
    c.mean_entropy = static_cast<float>(entropy / n);
    c.hidden = hidden_;
    return c;
  }

 private:
  struct Step {
    float top1, margin, entropy;
  };
  // Whether the next token is the functional one: nothing generated yet, or only the one
  // leading whitespace token the grammar allows.
  bool BeforeFunctionalToken(const int32_t* generated, size_t n_generated) const {
    return n_generated == 0 || (n_generated == 1 && automaton_ && automaton_->IsWhitespaceToken(generated[0]));
  }

  const Context& ctx_;
  const CallAutomaton* automaton_;
  std::vector<Step> steps_;
  std::vector<float> hidden_;
};

}  // namespace

Status RunCall(Context& ctx, const FunctionRegistry& reg, const CallAutomaton* automaton,
               const std::vector<int32_t>& prompt, const CallOptions& o, CallResult* out) {
  using Clock = std::chrono::steady_clock;
  if (!out) return InvalidArgument("RunCall: out is null");
  if (o.constrain && !automaton) return InvalidArgument("RunCall: constrained decoding needs the call automaton");
  if (automaton && automaton->n_vocab() != ctx.n_vocab())
    return InvalidArgument("RunCall: the automaton was built for a vocabulary of " +
                           std::to_string(automaton->n_vocab()) + " tokens, the model has " +
                           std::to_string(ctx.n_vocab()));
  if (reg.end_token_id() < 0 || reg.end_token_id() >= ctx.n_vocab())
    return InvalidArgument("RunCall: the registry's end token is not in this model's vocabulary");
  const Tokenizer& tok = ctx.model().tokenizer();
  const auto t0 = Clock::now();

  CallResult r;
  GenerateParams gp;
  gp.sampling = o.sampling;
  gp.max_tokens = o.early_stop ? o.max_tokens : o.max_tokens_no_stop;
  if (o.early_stop) gp.stop_ids = {reg.end_token_id()};
  gp.stop_at_eos = true;
  gp.render_special = true;
  gp.reuse_prefix = o.reuse_prefix;
  std::unique_ptr<CallConstraint> cons;
  if (o.constrain) {
    // The call must end within its token limit (the generation limit without early stop).
    int32_t budget = o.max_tokens;
    if (!o.early_stop && o.max_tokens_no_stop > 0 && (budget <= 0 || o.max_tokens_no_stop < budget))
      budget = o.max_tokens_no_stop;
    cons = std::make_unique<CallConstraint>(*automaton, budget);
    cons->Ban(o.banned_tokens);
  }
  // The observer only reads the (constrained) logits: the call is the same with it.
  ConfidenceObserver observer(ctx, automaton, gp.max_tokens);
  gp.logits_filter = [c = cons.get(), &observer, &o](float* l, int32_t nv, const int32_t* g, size_t ng) {
    if (c) {
      (*c)(l, nv, g, ng);
    } else {
      for (int32_t id : o.banned_tokens)
        if (id >= 0 && id < nv) l[id] = -std::numeric_limits<float>::infinity();
    }
    observer.Observe(l, nv, g, ng);
  };
  GenerateResult g;
  EMBER_RETURN_IF_ERROR(Generate(ctx, prompt.data(), prompt.size(), gp, nullptr, &g));
  r.tokens = std::move(g.tokens);
  r.stop_reason = g.stop_reason;
  r.n_prompt = g.n_prompt;
  r.n_prompt_reused = g.n_prompt_reused;
  r.prefill_ms = g.prefill_ms;
  r.decode_ms = g.decode_ms;
  r.ttft_ms = g.ttft_ms;
  r.n_generated = static_cast<int32_t>(r.tokens.size());
  auto end_it = std::find(r.tokens.begin(), r.tokens.end(), reg.end_token_id());
  r.n_call_tokens = static_cast<int32_t>(end_it == r.tokens.end() ? r.tokens.size() : end_it - r.tokens.begin() + 1);
  r.n_constraint_changed = cons ? cons->n_changed() : 0;
  r.call = ParseCall(reg, tok, r.tokens.data(), r.tokens.size());
  r.confidence = observer.Summary(r.tokens, r.n_call_tokens);
  r.text = tok.Decode(r.tokens.data(), r.tokens.size(), /*render_special=*/true, /*strip_leading_space=*/false);
  r.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

  if (!o.early_stop) {
    r.n_no_stop = r.n_generated;
  } else if (o.count_no_stop) {
    EMBER_RETURN_IF_ERROR(count_without_early_stop(ctx, prompt, o, &r));
  }
  if (r.n_no_stop >= 0) r.n_saved = r.n_no_stop - r.n_call_tokens;
  *out = std::move(r);
  return Status::Ok();
}

}  // namespace ember
