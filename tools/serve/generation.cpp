#include "generation.h"

#include <chrono>
#include <random>

namespace ember::cli::serve {

namespace {

ApiError invalid(std::string message, std::string code = "invalid_value") {
  return invalid_request(std::move(message), std::move(code));
}

ApiError server_error(std::string message) { return api_error(500, std::move(message), "server_error", ""); }

bool render_chat(const ServerState& s, const std::vector<ChatMessage>& msgs, std::string* out, ApiError* err) {
  std::vector<ember_chat_message> m;
  for (const ChatMessage& x : msgs) m.push_back({x.role.c_str(), x.content.c_str()});
  const char* tmpl = s.chat_template.empty() ? nullptr : s.chat_template.c_str();
  size_t need = 0;
  ember_status st = ember_chat_apply_template(s.model.get(), tmpl, m.data(), m.size(), 1, nullptr, 0, &need);
  if (st == EMBER_OK || st == EMBER_ERR_OUT_OF_RANGE) {
    out->resize(need);
    st = ember_chat_apply_template(s.model.get(), tmpl, m.data(), m.size(), 1, out->data(), out->size(), &need);
  }
  if (st != EMBER_OK) return (*err = invalid("messages: " + library_error(st), "chat_template"), false);
  return true;
}

// Registry indices of the request's tools (and tool_choice's function); empty: all.
bool allowed_functions(const ServerState& s, const GenerationRequest& r, std::vector<int32_t>* out, ApiError* err) {
  std::vector<std::string> names;
  if (r.tools) names = *r.tools;
  if (r.tool_choice.rfind("function:", 0) == 0) names = {r.tool_choice.substr(9)};
  const int32_t n = ember_functions_count(s.fns.get());
  for (const std::string& name : names) {
    int32_t found = -1;
    for (int32_t i = 0; i < n && found < 0; ++i) {
      ember_function_info info{};
      if (ember_functions_get(s.fns.get(), i, &info) == EMBER_OK && name == info.name) found = i;
    }
    if (found < 0)
      return (*err = invalid("tools: unknown function '" + name + "' (not in the model's function registry)"), false);
    out->push_back(found);
  }
  return true;
}

bool prepare_tool_call(const ServerState& s, Job* job, std::string* prompt, ApiError* err) {
  for (auto it = job->req.messages.rbegin(); it != job->req.messages.rend() && job->query.empty(); ++it)
    if (it->role == "user") job->query = it->content;
  if (job->query.empty()) return (*err = invalid("messages: no user message with content to answer"), false);
  if (!allowed_functions(s, job->req, &job->allowed, err)) return false;
  *prompt = s.call_template;
  prompt->replace(prompt->find("{query}"), 7, job->query);
  return true;
}

}  // namespace

bool prepare_job(ServerState& s, const std::string& body, bool chat, Job* job, ApiError* err) {
  if (!parse_generation_request(body, chat, &job->req, err)) return false;
  const GenerationRequest& r = job->req;
  job->id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(s.next_id++);
  job->tool_call = chat && s.fns && r.tool_choice != "none";
  if (!s.fns && (r.tool_choice == "required" || r.tool_choice.rfind("function:", 0) == 0))
    return (*err = invalid("tool_choice: the model has no function registry"), false);
  std::string prompt;
  if (job->tool_call) {
    if (!prepare_tool_call(s, job, &prompt, err)) return false;
  } else if (chat) {
    if (!render_chat(s, r.messages, &prompt, err)) return false;
  } else {
    prompt = r.prompt;
  }
  if (ember_status st = tokenize(s.model.get(), prompt, -1, 1, &job->ids); st != EMBER_OK)
    return (*err = invalid("prompt: " + library_error(st)), false);
  if (job->ids.empty()) return (*err = invalid("the prompt is empty"), false);
  if (static_cast<int32_t>(job->ids.size()) >= s.n_ctx)
    return (*err = invalid("the prompt is " + std::to_string(job->ids.size()) + " tokens; the context holds " +
                               std::to_string(s.n_ctx) + " (-c) and needs room for a reply",
                           "context_length_exceeded"),
            false);
  return s.adapters.Scales(s.model.get(), r, s.opt.n_threads, &job->scales, &job->blend, err);
}

bool acquire_slot(ServerState& s, Job* job, ApiError* err) {
  switch (s.slots->Acquire(job->ids, std::chrono::seconds(s.opt.timeout_s), &job->lease)) {
    case SlotPool::Outcome::kLeased: {
      std::string why;
      if (!s.adapters.Apply(job->lease->ctx.get(), job->scales, &job->lease->lora_scales, &why))
        return (*err = server_error("lora: " + why), false);
      return true;
    }
    case SlotPool::Outcome::kQueueFull:
      *err = api_error(503, "the server is busy: all " + std::to_string(s.slots->size()) +
                                " slots are generating and " + std::to_string(s.opt.queue) +
                                " requests wait (--queue); retry later",
                       "server_busy", "queue_full");
      break;
    case SlotPool::Outcome::kTimedOut:
      *err = api_error(503, "the server is busy: no slot became free within " + std::to_string(s.opt.timeout_s) +
                                " s (--timeout); retry later",
                       "server_busy", "slot_wait_timeout");
      break;
  }
  s.metrics.CountRejected();
  return false;
}

namespace {

ember_sampling_params sampling_of(const GenerationRequest& r) {
  ember_sampling_params p = ember_sampling_default_params();
  if (r.temperature) p.temperature = *r.temperature;
  if (r.top_p) p.top_p = *r.top_p;
  p.seed = r.seed ? *r.seed : std::random_device{}();
  return p;
}

struct SinkState {
  const PieceSink* sink;
  const std::atomic<bool>* stopping;
  std::string* text;
};

int on_token(int32_t, const char* text, size_t len, void* user) {
  auto* st = static_cast<SinkState*>(user);
  if (st->stopping->load()) return 1;
  st->text->append(text, len);
  if (len && !(*st->sink)(std::string_view(text, len))) return 1;
  return 0;
}

}  // namespace

bool run_text(ServerState& s, Job& job, const PieceSink& sink, TextResult* out, ApiError* err) {
  const GenerationRequest& r = job.req;
  ember_generate_params gp = ember_generate_default_params();
  gp.sampling = sampling_of(r);
  const int32_t room = s.n_ctx - static_cast<int32_t>(job.ids.size());
  gp.max_tokens = r.max_tokens > 0 ? std::min(r.max_tokens, room) : room;
  if (r.chat) {
    gp.stop_ids = s.end_of_turn.data();
    gp.n_stop_ids = s.end_of_turn.size();
  }
  std::vector<const char*> stops;
  for (const std::string& x : r.stop) stops.push_back(x.c_str());
  gp.stop_strings = stops.data();
  gp.n_stop_strings = stops.size();
  gp.cache_prompt = 1;
  gp.stop_at_eos = r.ignore_eos ? 0 : 1;
  SinkState st{&sink, &s.stopping, &out->text};
  gp.on_token = on_token;
  gp.user = &st;
  ember_generate_result res{};
  if (r.max_tokens == 0) {
    out->usage.prompt_tokens = static_cast<int32_t>(job.ids.size());
    out->stop = EMBER_STOP_MAX_TOKENS;
    return true;
  }
  if (ember_status e = ember_generate_tokens(job.lease->ctx.get(), job.ids.data(), job.ids.size(), &gp, &res);
      e != EMBER_OK)
    return (*err = server_error("generation failed: " + library_error(e)), false);
  out->usage = {res.n_prompt, res.n_generated};
  out->stop = res.stop_reason;
  s.metrics.CountGeneration(res.n_prompt - res.n_prompt_reused, res.n_generated, res.prefill_ms, res.decode_ms);
  return true;
}

bool run_tool_call(ServerState& s, Job& job, CallAnswer* out, ApiError* err) {
  ember_call_params cp = ember_call_default_params();
  cp.prompt_template = s.call_template.c_str();
  if (job.req.max_tokens > 0) cp.max_tokens = job.req.max_tokens;
  cp.sampling.temperature = job.req.temperature.value_or(0.0f);
  if (job.req.top_p) cp.sampling.top_p = *job.req.top_p;
  cp.sampling.seed = job.req.seed.value_or(0);
  cp.allowed_functions = job.allowed.empty() ? nullptr : job.allowed.data();
  cp.n_allowed_functions = job.allowed.size();
  ember_call_result r;
  if (ember_status e = ember_call(job.lease->ctx.get(), s.fns.get(), job.query.c_str(), &cp, &r); e != EMBER_OK)
    return (*err = server_error("function call failed: " + library_error(e)), false);
  out->has_call = r.valid && r.function_index >= 0;
  out->name = r.function;
  out->arguments = r.arguments;
  out->text = r.text;
  out->usage = {r.n_prompt, r.n_generated};
  if (s.router) out->route = decide_route(*s.router, r);  // forward.h asks the upstream, after the slot
  s.metrics.CountGeneration(r.n_prompt - r.n_prompt_reused, r.n_generated, r.prefill_ms, r.decode_ms);
  ember_call_result_free(&r);
  return true;
}

}  // namespace ember::cli::serve
