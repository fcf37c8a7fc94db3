// The conversation of `ember chat` (design in chat_session.h).
#include "chat_session.h"

#include <algorithm>
#include <utility>

#include "common.h"

namespace ember::cli {
namespace {

// A C API call that fills a buffer: once with a guess, again with the size it asks for.
template <typename T, typename Call>
ember_status fill(std::vector<T>* out, size_t guess, Call call) {
  out->resize(guess);
  size_t n = 0;
  ember_status st = call(out->data(), out->size(), &n);
  if (st == EMBER_ERR_OUT_OF_RANGE && n > out->size()) {
    out->resize(n);
    st = call(out->data(), out->size(), &n);
  }
  out->resize(st == EMBER_OK ? n : 0);
  return st;
}

// A token's text with control tokens written out: what the template would write for it.
std::string special_text(const ember_model* model, int32_t id) {
  std::vector<char> buf;
  fill(&buf, 64, [&](char* b, size_t cap, size_t* n) { return ember_token_to_text(model, id, 1, b, cap, n); });
  return std::string(buf.begin(), buf.end());
}

}  // namespace

ChatSession::ChatSession(ember_model* model, ember_context* ctx, Config config)
    : model_(model), ctx_(ctx), config_(std::move(config)) {}

bool ChatSession::Init(std::string* error) {
  const char* tmpl = config_.tmpl.empty() ? nullptr : config_.tmpl.c_str();
  ember_status st = fill(&end_of_turn_, 8, [&](int32_t* ids, size_t cap, size_t* n) {
    return ember_chat_end_of_turn_tokens(model_, tmpl, ids, cap, n);
  });
  if (st != EMBER_OK) {
    *error = library_error(st);
    return false;
  }
  if (end_of_turn_.empty()) {
    *error = "the model has no end-of-turn token (no eos/eot id, and the template writes none after a reply)";
    return false;
  }
  // The vocabulary's BOS rule: tokenizing "" with the model's default gives [BOS] or nothing.
  std::vector<int32_t> bos;
  if ((st = tokenize(model_, "", -1, 0, &bos)) != EMBER_OK) {
    *error = library_error(st);
    return false;
  }
  bos_ = bos.empty() ? -1 : bos[0];
  std::string probe;
  return Render("Hello", &probe, error);
}

void ChatSession::SetSystem(std::string text) { system_ = std::move(text); }

void ChatSession::Reset() {
  turns_.clear();
  turn_count_ = 0;
  ForgetCache();
}

void ChatSession::ForgetCache() {
  ember_context_reset(ctx_);
  cache_ids_.clear();
  cache_text_.reset();
}

bool ChatSession::AdoptCache(std::string* error) {
  cache_text_.reset();  // unknown: the next turn compares tokens
  ember_status st = fill(&cache_ids_, static_cast<size_t>(ember_n_past(ctx_)),
                         [&](int32_t* ids, size_t cap, size_t* n) { return ember_context_tokens(ctx_, ids, cap, n); });
  if (st != EMBER_OK) {
    *error = library_error(st);
    ForgetCache();
    return false;
  }
  return true;
}

// The conversation so far plus `user`'s message, with the generation prompt.
bool ChatSession::Render(const std::string& user, std::string* out, std::string* error) const {
  std::vector<ember_chat_message> msgs;
  if (!system_.empty()) msgs.push_back({"system", system_.c_str()});
  for (const auto& [u, a] : turns_) {
    msgs.push_back({"user", u.c_str()});
    msgs.push_back({"assistant", a.c_str()});
  }
  msgs.push_back({"user", user.c_str()});
  const char* tmpl = config_.tmpl.empty() ? nullptr : config_.tmpl.c_str();
  std::vector<char> buf;
  ember_status st = fill(&buf, 256 + user.size(), [&](char* b, size_t cap, size_t* n) {
    return ember_chat_apply_template(model_, tmpl, msgs.data(), msgs.size(), 1, b, cap, n);
  });
  if (st != EMBER_OK) {
    *error = library_error(st);
    return false;
  }
  out->assign(buf.begin(), buf.end());
  return true;
}

bool ChatSession::Tokenize(std::string_view text, std::vector<int32_t>* ids, std::string* error) const {
  ember_status st = tokenize(model_, text, 0, 1, ids);
  if (st != EMBER_OK) *error = library_error(st);
  return st == EMBER_OK;
}

bool ChatSession::PlanTurn(const std::string& rendered, Plan* plan, std::string* error) const {
  // The rendering continues what the cache holds: only the rest is new.
  if (!cache_ids_.empty() && cache_text_ && rendered.size() > cache_text_->size() &&
      rendered.compare(0, cache_text_->size(), *cache_text_) == 0) {
    plan->keep = static_cast<int32_t>(cache_ids_.size());
    return Tokenize(std::string_view(rendered).substr(cache_text_->size()), &plan->ids, error);
  }
  // Otherwise: the whole rendering, re-evaluated from where its tokens leave the cache's.
  std::vector<int32_t> all;
  if (!Tokenize(rendered, &all, error)) return false;
  if (bos_ >= 0 && (all.empty() || all[0] != bos_)) all.insert(all.begin(), bos_);
  if (all.empty()) {
    *error = "the chat template rendered an empty prompt";
    return false;
  }
  const auto diff = std::mismatch(all.begin(), all.end(), cache_ids_.begin(), cache_ids_.end());
  // At least one token is evaluated: the reply is sampled from its logits.
  const size_t keep = std::min<size_t>(diff.first - all.begin(), all.size() - 1);
  plan->keep = static_cast<int32_t>(keep);
  plan->ids.assign(all.begin() + static_cast<std::ptrdiff_t>(keep), all.end());
  return true;
}

bool ChatSession::FitTurn(const std::string& user, std::string* rendered, Plan* plan, int32_t* dropped,
                          std::string* error) {
  const int64_t n_ctx = ember_context_n_ctx(ctx_);
  for (;;) {
    if (!Render(user, rendered, error) || !PlanTurn(*rendered, plan, error)) return false;
    const int64_t prompt = plan->keep + static_cast<int64_t>(plan->ids.size());
    if (prompt + config_.reply_room <= n_ctx) return true;
    if (turns_.empty()) {
      if (prompt < n_ctx) return true;  // no room for a full reply, but for some
      *error = "the conversation needs " + std::to_string(prompt) + " tokens but the context holds " +
               std::to_string(n_ctx) + " (see -c)";
      return false;
    }
    turns_.erase(turns_.begin());
    ++*dropped;
  }
}

bool ChatSession::Generate(const Plan& plan, const Sink& sink, Reply* reply, std::string* error) {
  if (plan.keep < ember_n_past(ctx_)) {
    ember_status st = ember_context_truncate(ctx_, plan.keep);
    if (st == EMBER_ERR_OUT_OF_RANGE) {
      // A sliding-window layer's ring has overwritten what the kept tokens need (more than a
      // batch came after them, e.g. when old turns are dropped): evaluate them again.
      ember_context_reset(ctx_);
      st = plan.keep > 0 ? ember_eval(ctx_, cache_ids_.data(), static_cast<size_t>(plan.keep)) : EMBER_OK;
    }
    if (st != EMBER_OK) {
      *error = library_error(st);
      ForgetCache();
      return false;
    }
  }
  cache_ids_.resize(static_cast<size_t>(plan.keep));
  cache_text_.reset();
  // The end-of-turn tokens are recognised in the callback rather than as stop ids, so that
  // every sampled token, the last included, passes through it with its id.
  struct Stream {
    ChatSession* self;
    const Sink* sink;
    Reply* reply;
    bool stopped = false;
  } stream{this, &sink, reply};
  ember_generate_params gp = config_.generate;
  gp.stop_ids = nullptr;
  gp.n_stop_ids = 0;
  gp.stop_at_eos = 0;
  gp.render_special = 0;
  gp.user = &stream;
  gp.on_token = [](int32_t id, const char* text, size_t len, void* user) -> int {
    auto* s = static_cast<Stream*>(user);
    // After a stop, a last call may bring held-back bytes: text only, not a new token.
    if (!s->stopped) s->reply->ids.push_back(id);
    const auto& eot = s->self->end_of_turn_;
    if (!s->stopped && std::binary_search(eot.begin(), eot.end(), id)) {
      s->reply->end_of_turn = s->stopped = true;
      return 1;
    }
    s->reply->text.append(text, len);
    if (!(*s->sink)(std::string_view(text, len))) s->stopped = true;
    return s->stopped ? 1 : 0;
  };
  ember_generate_result res{};
  ember_status st = ember_generate_continue(ctx_, plan.ids.data(), plan.ids.size(), &gp, &res);
  if (st != EMBER_OK) {
    *error = library_error(st);
    ForgetCache();  // what the cache holds is no longer known
    return false;
  }
  // Calls past n_generated were the final flush, not tokens.
  reply->ids.resize(std::min(reply->ids.size(), static_cast<size_t>(res.n_generated)));
  reply->stop_reason = res.stop_reason;
  return true;
}

void ChatSession::Remember(const std::string& rendered, const Plan& plan, const Reply& reply) {
  cache_ids_.insert(cache_ids_.end(), plan.ids.begin(), plan.ids.end());
  std::string text = rendered;
  for (size_t i = 0; i < reply.ids.size(); ++i) {
    const int32_t id = reply.ids[i];
    // Generation evaluated every reply token but the last; evaluate it too when it fits.
    if (i + 1 == reply.ids.size() && (ember_n_past(ctx_) >= ember_context_n_ctx(ctx_) ||
                                      ember_eval(ctx_, &id, 1) != EMBER_OK))
      break;
    cache_ids_.push_back(id);
    text += special_text(model_, id);
  }
  if (static_cast<int32_t>(cache_ids_.size()) != ember_n_past(ctx_)) {
    ForgetCache();  // cannot happen; if it did, starting over is always right
    return;
  }
  cache_text_ = std::move(text);
}

bool ChatSession::Turn(const std::string& user, const Sink& sink, TurnReport* report, std::string* error) {
  std::string rendered;
  Plan plan;
  TurnReport r;
  if (!FitTurn(user, &rendered, &plan, &r.dropped, error)) return false;
  r.turn = ++turn_count_;
  r.cached = plan.keep;
  r.evaluated = static_cast<int32_t>(plan.ids.size());
  Reply reply;
  if (!Generate(plan, sink, &reply, error)) return false;
  Remember(rendered, plan, reply);
  turns_.emplace_back(user, reply.text);
  r.generated = static_cast<int32_t>(reply.ids.size());
  r.end_of_turn = reply.end_of_turn;
  r.stop_reason = reply.stop_reason;
  *report = r;
  return true;
}

}  // namespace ember::cli
