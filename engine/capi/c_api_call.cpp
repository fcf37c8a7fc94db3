// The function-calling section of the C API (include/ember/ember.h): registries,
// ember_call and its result. Every entry point runs inside the C ABI guard
// (engine/capi/guard.h).
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/json.h"
#include "ember/ember.h"
#include "engine/capi/c_api_internal.h"
#include "engine/calls/call.h"
#include "engine/model/context.h"
#include "engine/calls/functions.h"
#include "engine/model/model.h"

struct ember_functions {
  const ember::Model* model = nullptr;
  ember::FunctionRegistry reg;
  ember::CallAutomaton automaton;
};

namespace {

using ember::capi::guard;
using ember::capi::guard_value;
using ember::capi::guard_void;
using ember::capi::set_error;
using ember::capi::to_c;

// What ember_call_result points into.
struct ResultStorage {
  std::string function, token, arguments, json, error, text;
  std::vector<int32_t> tokens;
  std::vector<float> hidden;
};

ember_status finish_load(const ember_model* model, ember::FunctionRegistry reg, ember_functions** out) {
  auto h = std::make_unique<ember_functions>();
  h->model = ember::capi::model_of(model);
  h->reg = std::move(reg);
  ember::Status s = ember::CallAutomaton::Build(h->reg, h->model->tokenizer(), &h->automaton);
  if (!s.ok()) return to_c(s);
  *out = h.release();
  return EMBER_OK;
}

ember_status functions_get(const ember_functions* fns, int32_t i, ember_function_info* out) {
  if (i < 0 || i >= static_cast<int32_t>(fns->reg.size()))
    return set_error(EMBER_ERR_OUT_OF_RANGE, "ember_functions_get: index " + std::to_string(i) + " out of range");
  const ember::FunctionSpec& f = fns->reg.functions()[i];
  out->name = f.name.c_str();
  out->token = f.token.c_str();
  out->token_id = f.token_id;
  out->n_params = static_cast<int32_t>(f.params.size());
  out->description = f.description.c_str();
  return EMBER_OK;
}

ember_status functions_param(const ember_functions* fns, int32_t i, int32_t j, const char** name,
                             const char** type) {
  if (i < 0 || i >= static_cast<int32_t>(fns->reg.size()))
    return set_error(EMBER_ERR_OUT_OF_RANGE, "ember_functions_param: function " + std::to_string(i) + " out of range");
  const ember::FunctionSpec& f = fns->reg.functions()[i];
  if (j < 0 || j >= static_cast<int32_t>(f.params.size()))
    return set_error(EMBER_ERR_OUT_OF_RANGE, "ember_functions_param: parameter " + std::to_string(j) + " of '" +
                                                 f.name + "' out of range");
  *name = f.params[j].name.c_str();
  *type = ember::param_type_name(f.params[j].type);
  return EMBER_OK;
}

// The functional tokens of the functions p.allowed_functions leaves out (none when NULL/0).
ember_status banned_functional_tokens(const ember::FunctionRegistry& reg, const ember_call_params& p,
                                      std::vector<int32_t>* out) {
  if (!p.allowed_functions || p.n_allowed_functions == 0) return EMBER_OK;
  std::vector<bool> allowed(reg.size(), false);
  for (size_t i = 0; i < p.n_allowed_functions; ++i) {
    const int32_t f = p.allowed_functions[i];
    if (f < 0 || f >= static_cast<int32_t>(reg.size()))
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_call: allowed_functions[" + std::to_string(i) + "] = " +
                                                       std::to_string(f) + " is not a registry index");
    allowed[f] = true;
  }
  for (size_t f = 0; f < reg.size(); ++f)
    if (!allowed[f]) out->push_back(reg.functions()[f].token_id);
  return EMBER_OK;
}

}  // namespace

extern "C" {

ember_status ember_functions_load(const ember_model* model, const char* path, ember_functions** out) {
  return guard("ember_functions_load", {{"model", model}, {"out", out}}, [&]() -> ember_status {
    *out = nullptr;
    const ember::Model* m = ember::capi::model_of(model);
    ember::FunctionRegistry reg;
    ember::Status s = path ? ember::FunctionRegistry::FromFile(path, m->tokenizer(), &reg)
                           : ember::FunctionRegistry::FromModel(*m, &reg);
    if (!s.ok()) return to_c(s);
    return finish_load(model, std::move(reg), out);
  });
}

ember_status ember_functions_parse(const ember_model* model, const char* json, size_t len, ember_functions** out) {
  return guard("ember_functions_parse", {{"model", model}, {"out", out}}, [&]() -> ember_status {
    *out = nullptr;
    if (!json && len) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_functions_parse: json is NULL with len > 0");
    ember::FunctionRegistry reg;
    ember::Status s = ember::FunctionRegistry::Parse(std::string_view(json ? json : "", len), "functions JSON",
                                                     ember::capi::model_of(model)->tokenizer(), &reg);
    if (!s.ok()) return to_c(s);
    return finish_load(model, std::move(reg), out);
  });
}

ember_status ember_functions_set_end_token(ember_functions* fns, const char* token) {
  return guard("ember_functions_set_end_token", {{"fns", fns}, {"token", token}}, [&]() -> ember_status {
    ember::FunctionRegistry reg = fns->reg;
    ember::Status s = reg.SetEndToken(token, fns->model->tokenizer());
    if (!s.ok()) return to_c(s);
    ember::CallAutomaton a;
    s = ember::CallAutomaton::Build(reg, fns->model->tokenizer(), &a);
    if (!s.ok()) return to_c(s);
    fns->reg = std::move(reg);
    fns->automaton = std::move(a);
    return EMBER_OK;
  });
}

void ember_functions_free(ember_functions* fns) {
  guard_void("ember_functions_free", [&] { delete fns; });
}

int32_t ember_functions_count(const ember_functions* fns) {
  return guard_value("ember_functions_count", int32_t{0}, {{"fns", fns}},
                     [&] { return static_cast<int32_t>(fns->reg.size()); });
}

ember_status ember_functions_get(const ember_functions* fns, int32_t i, ember_function_info* out) {
  return guard("ember_functions_get", {{"fns", fns}, {"out", out}}, [&] { return functions_get(fns, i, out); });
}

ember_status ember_functions_param(const ember_functions* fns, int32_t i, int32_t j, const char** name,
                                   const char** type) {
  return guard("ember_functions_param", {{"fns", fns}, {"name", name}, {"type", type}}, [&] { return functions_param(fns, i, j, name, type); });
}

int32_t ember_functions_end_token(const ember_functions* fns) {
  return guard_value("ember_functions_end_token", int32_t{-1}, {{"fns", fns}}, [&] { return fns->reg.end_token_id(); });
}

ember_call_params ember_call_default_params(void) {
  ember_call_params p{};
  p.prompt_template = nullptr;
  p.constrain = 1;
  p.early_stop = 1;
  p.count_no_stop = 0;
  p.max_tokens = 128;
  p.max_tokens_no_stop = 0;
  p.sampling = ember_sampling_default_params();
  p.sampling.temperature = 0;
  p.cache_prompt = 1;
  return p;
}

ember_status ember_call(ember_context* ctx, const ember_functions* fns, const char* query,
                        const ember_call_params* params, ember_call_result* result) {
  if (result) std::memset(result, 0, sizeof *result);
  return guard("ember_call", {{"ctx", ctx}, {"fns", fns}, {"query", query}, {"result", result}},
               [&]() -> ember_status {
    ember::Context* c = ember::capi::context_of(ctx);
    if (&c->model() != fns->model)
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_call: the registry was loaded for another model");
    const ember_call_params p = params ? *params : ember_call_default_params();
    const ember::Model& model = c->model();

    const auto t0 = std::chrono::steady_clock::now();
    std::string tmpl;
    if (p.prompt_template) {
      tmpl = p.prompt_template;
    } else {
      const ember::GgufValue* v = model.gguf().Find("ember.prompt_template");
      if (!v || v->type != ember::GgufType::kString)
        return set_error(EMBER_ERR_NOT_FOUND,
                         "ember_call: no prompt template given and the model has none (key ember.prompt_template)");
      tmpl = std::string(v->str);
    }
    std::string prompt;
    ember::Status s = ember::FillPromptTemplate(tmpl, query, &prompt);
    if (!s.ok()) return to_c(s);
    const ember::Tokenizer& tok = model.tokenizer();
    std::vector<int32_t> ids;
    s = tok.Encode(prompt, tok.add_bos(), /*parse_special=*/true, &ids);
    if (!s.ok()) return to_c(s);

    // Template and tokenization count toward the latency of the call.
    const double prep_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ember::CallOptions o;
    const ember_sampling_params& sp = p.sampling;
    o.sampling = {sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty, sp.repeat_last_n,
                  sp.frequency_penalty, sp.presence_penalty, sp.seed};
    o.constrain = p.constrain != 0;
    o.early_stop = p.early_stop != 0;
    o.count_no_stop = p.count_no_stop != 0;
    o.max_tokens = p.max_tokens;
    o.max_tokens_no_stop = p.max_tokens_no_stop;
    o.reuse_prefix = p.cache_prompt != 0;
    if (ember_status bs = banned_functional_tokens(fns->reg, p, &o.banned_tokens); bs != EMBER_OK) return bs;
    ember::CallResult r;
    s = ember::RunCall(*c, fns->reg, &fns->automaton, ids, o, &r);
    if (!s.ok()) return to_c(s);

    auto st = std::make_unique<ResultStorage>();
    const bool have_fn = r.call.function >= 0;
    st->function = have_fn ? fns->reg.functions()[r.call.function].name : "";
    st->token = have_fn ? fns->reg.functions()[r.call.function].token
                        : (r.call.no_function && r.call.valid ? fns->reg.no_function_token() : "");
    st->arguments = ember::WriteJson(r.call.ArgumentsJson(fns->reg));
    st->json = ember::WriteJson(r.call.ToJson(fns->reg, r.text));
    st->error = r.call.error;
    st->text = r.text;
    st->tokens = r.tokens;

    result->valid = r.call.valid ? 1 : 0;
    result->function_index = r.call.function;
    result->function = st->function.c_str();
    result->token = st->token.c_str();
    result->arguments = st->arguments.c_str();
    result->json = st->json.c_str();
    result->error = st->error.c_str();
    result->text = st->text.c_str();
    result->tokens = st->tokens.data();
    result->n_tokens = static_cast<int32_t>(st->tokens.size());
    result->n_prompt = r.n_prompt;
    result->n_prompt_reused = r.n_prompt_reused;
    result->n_generated = r.n_generated;
    result->n_call_tokens = r.n_call_tokens;
    result->n_generated_no_stop = r.n_no_stop;
    result->n_saved = r.n_saved;
    result->n_constraint_changed = r.n_constraint_changed;
    result->stop_reason = static_cast<ember_stop_reason>(static_cast<int>(r.stop_reason));
    result->ttft_ms = prep_ms + r.ttft_ms;
    result->total_ms = prep_ms + r.total_ms;
    result->prefill_ms = r.prefill_ms;
    result->decode_ms = r.decode_ms;
    const ember::CallConfidence& conf = r.confidence;
    result->function_prob = conf.function_prob;
    result->min_prob = conf.min_prob;
    result->min_margin = conf.min_margin;
    result->mean_entropy = conf.mean_entropy;
    result->call_prob = conf.call_prob;
    st->hidden = conf.hidden;
    result->hidden = st->hidden.empty() ? nullptr : st->hidden.data();
    result->n_hidden = static_cast<int32_t>(st->hidden.size());
    result->internal_ = st.release();
    return EMBER_OK;
  });
}

void ember_call_result_free(ember_call_result* result) {
  guard_void("ember_call_result_free", [&] {
    if (!result) return;
    delete static_cast<ResultStorage*>(result->internal_);
    std::memset(result, 0, sizeof *result);
  });
}

}  // extern "C"
