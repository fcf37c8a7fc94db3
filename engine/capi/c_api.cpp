// The C API (include/ember/ember.h) over the C++ engine. Every entry point runs inside
// the C ABI guard (engine/capi/guard.h): nothing thrown inside the library escapes.
#include "ember/ember.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/log.h"
#include "engine/capi/c_api_internal.h"
#include "engine/model/context.h"
#include "engine/generate/generator.h"
#include "engine/model/model.h"

struct ember_model {
  std::unique_ptr<ember::Model> m;
  std::string arch, name;
  std::mutex meta_mu;
  std::map<std::string, std::string> meta_cache;  // NUL-terminated copies handed out
};

namespace {

using ember::capi::guard;
using ember::capi::guard_value;
using ember::capi::guard_void;
using ember::capi::set_error;
using ember::capi::to_c;
using ember::capi::copy_out;

void log_trampoline(ember::LogLevel level, const char* msg, void* user) {
  auto* pair = static_cast<std::pair<ember_log_callback, void*>*>(user);
  pair->first(static_cast<int>(level), msg, pair->second);
}

ember::GenerateParams to_cpp(const ember_generate_params& g) {
  ember::GenerateParams p;
  const ember_sampling_params& s = g.sampling;
  p.sampling = {s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.repeat_last_n,
                s.frequency_penalty, s.presence_penalty, s.seed};
  p.max_tokens = g.max_tokens;
  if (g.stop_ids) p.stop_ids.assign(g.stop_ids, g.stop_ids + g.n_stop_ids);
  for (size_t i = 0; g.stop_strings && i < g.n_stop_strings; ++i)
    if (g.stop_strings[i]) p.stop_strings.emplace_back(g.stop_strings[i]);
  p.stop_at_eos = g.stop_at_eos != 0;
  p.render_special = g.render_special != 0;
  p.reuse_prefix = g.cache_prompt != 0;
  p.context_shift = g.context_shift != 0;
  p.n_keep = g.n_keep;
  p.collect_text = false;  // the C API hands text out through the callback only
  return p;
}

// A stop list with n > 0 and no array, or a NULL stop string, is a caller's bug: refused
// rather than generating without the stops the caller meant.
ember_status check_stop_lists(const ember_generate_params& g) {
  if (!g.stop_ids && g.n_stop_ids)
    return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_generate_params: stop_ids is NULL with n_stop_ids > 0");
  if (!g.stop_strings && g.n_stop_strings)
    return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_generate_params: stop_strings is NULL with n_stop_strings > 0");
  for (size_t i = 0; i < g.n_stop_strings; ++i)
    if (!g.stop_strings[i])
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_generate_params: stop_strings[" + std::to_string(i) + "] is NULL");
  return EMBER_OK;
}

// generate: ember::Generate (resets the context) or ember::GenerateContinue.
using GenerateFn = ember::Status (*)(ember::Context&, const int32_t*, size_t, const ember::GenerateParams&,
                                     const ember::TokenCallback&, ember::GenerateResult*);

ember_status run_generate(GenerateFn generate, ember_context* ctx, const int32_t* ids, size_t n,
                          const ember_generate_params* params, ember_generate_result* result) {
  ember_generate_params g = params ? *params : ember_generate_default_params();
  if (ember_status st = check_stop_lists(g); st != EMBER_OK) return st;
  ember::TokenCallback cb;
  if (g.on_token)
    cb = [&g](int32_t id, std::string_view text) { return g.on_token(id, text.data(), text.size(), g.user) == 0; };
  ember::GenerateResult r;
  ember::Status s = generate(*ctx->c, ids, n, to_cpp(g), cb, &r);
  if (!s.ok()) return to_c(s);
  if (result) {
    result->n_prompt = r.n_prompt;
    result->n_prompt_reused = r.n_prompt_reused;
    result->n_generated = static_cast<int32_t>(r.tokens.size());
    result->stop_reason = static_cast<ember_stop_reason>(static_cast<int>(r.stop_reason));
    result->prefill_ms = r.prefill_ms;
    result->decode_ms = r.decode_ms;
    result->ttft_ms = r.ttft_ms;
    result->n_shifts = r.n_shifts;
  }
  return EMBER_OK;
}

}  // namespace

extern "C" {

const char* ember_version(void) { return "0.1.0"; }

const char* ember_status_name(ember_status s) {
  return guard_value("ember_status_name", "", {}, [&] { return ember::code_name(static_cast<ember::Code>(s)); });
}

const char* ember_last_error(void) { return ember::capi::last_error(); }

void ember_set_log_callback(ember_log_callback cb, void* user) {
  guard_void("ember_set_log_callback", [&] {
    static std::pair<ember_log_callback, void*> holder;
    if (!cb) {
      ember::set_log_sink(nullptr, nullptr);
      return;
    }
    holder = {cb, user};
    ember::set_log_sink(log_trampoline, &holder);
  });
}

void ember_set_log_level(int level) {
  guard_void("ember_set_log_level", [&] {
    if (level < 0) level = 0;
    if (level > 4) level = 4;
    ember::set_log_level(static_cast<ember::LogLevel>(level));
  });
}

ember_model_params ember_model_default_params(void) { return ember_model_params{}; }

ember_status ember_model_load(const char* path, const ember_model_params* params, ember_model** out) {
  return guard("ember_model_load", {{"path", path}, {"out", out}}, [&]() -> ember_status {
    *out = nullptr;
    ember::ModelParams mp;
    mp.vocab_only = params && params->vocab_only;
    mp.repack = !(params && params->no_repack);
    auto h = std::make_unique<ember_model>();
    ember::Status s = ember::Model::Load(path, mp, &h->m);
    if (!s.ok()) return to_c(s);
    h->arch = h->m->config().arch;
    h->name = h->m->config().name;
    *out = h.release();
    return EMBER_OK;
  });
}

void ember_model_free(ember_model* model) {
  guard_void("ember_model_free", [&] { delete model; });
}

ember_status ember_model_get_info(const ember_model* model, ember_model_info* out) {
  return guard("ember_model_get_info", {{"model", model}, {"out", out}}, [&] {
    const ember::ModelConfig& c = model->m->config();
    out->architecture = model->arch.c_str();
    out->name = model->name.c_str();
    out->n_vocab = c.n_vocab;
    out->n_ctx_train = c.n_ctx_train;
    out->n_embd = c.n_embd;
    out->n_layer = c.n_layer;
    out->n_head = c.n_head;
    out->n_head_kv = c.n_head_kv;
    out->head_dim = c.head_dim;
    out->n_ff = c.n_ff;
    out->bos_id = model->m->tokenizer().bos_id();
    out->eos_id = model->m->tokenizer().eos_id();
    out->n_params = model->m->n_params();
    out->weight_bytes = model->m->weight_bytes();
    out->kernels = ember::kernels::reference_requested_by_env() ? ember::kernels::reference().name
                                                                 : ember::kernels::best().name;
    out->repacked_bytes = model->m->repacked().bytes;
    out->weight_layout = out->repacked_bytes ? "repacked" : "in place";
    return EMBER_OK;
  });
}

const char* ember_model_meta_string(const ember_model* model, const char* key) {
  return guard_value("ember_model_meta_string", static_cast<const char*>(nullptr), {{"model", model}, {"key", key}},
                     [&]() -> const char* {
                       const ember::GgufValue* v = model->m->gguf().Find(key);
                       if (!v || v->type != ember::GgufType::kString) return nullptr;
                       auto* m = const_cast<ember_model*>(model);
                       std::lock_guard<std::mutex> lock(m->meta_mu);
                       auto it = m->meta_cache.find(key);
                       if (it == m->meta_cache.end()) it = m->meta_cache.emplace(key, std::string(v->str)).first;
                       return it->second.c_str();
                     });
}

ember_status ember_tokenize(const ember_model* model, const char* text, size_t len, int add_bos, int parse_special,
                            int32_t* ids, size_t cap, size_t* n_out) {
  return guard("ember_tokenize", {{"model", model}, {"n_out", n_out}}, [&]() -> ember_status {
    if ((!text && len) || (!ids && cap))
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_tokenize: text or ids is NULL with a non-zero length");
    const ember::Tokenizer& t = model->m->tokenizer();
    std::vector<int32_t> v;
    ember::Status s = t.Encode(std::string_view(text ? text : "", len), add_bos < 0 ? t.add_bos() : add_bos != 0,
                               parse_special != 0, &v);
    if (!s.ok()) return to_c(s);
    return copy_out(v.data(), v.size(), sizeof(int32_t), ids, cap, n_out, "ember_tokenize");
  });
}

ember_status ember_token_to_text(const ember_model* model, int32_t id, int render_special, char* buf, size_t cap,
                                 size_t* n_out) {
  return guard("ember_token_to_text", {{"model", model}, {"n_out", n_out}}, [&]() -> ember_status {
    if (!buf && cap) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_token_to_text: buf is NULL with cap > 0");
    if (id < 0 || id >= model->m->tokenizer().n_vocab())
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_token_to_text: id " + std::to_string(id) + " out of range");
    std::string s = model->m->tokenizer().TokenText(id, render_special != 0);
    return copy_out(s.data(), s.size(), 1, buf, cap, n_out, "ember_token_to_text");
  });
}

ember_status ember_detokenize(const ember_model* model, const int32_t* ids, size_t n, int render_special, char* buf,
                              size_t cap, size_t* n_out) {
  return guard("ember_detokenize", {{"model", model}, {"n_out", n_out}}, [&]() -> ember_status {
    if ((!ids && n) || (!buf && cap))
      return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_detokenize: ids or buf is NULL with a non-zero length");
    const ember::Tokenizer& t = model->m->tokenizer();
    for (size_t i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= t.n_vocab())
        return set_error(EMBER_ERR_INVALID_ARGUMENT,
                         "ember_detokenize: id " + std::to_string(ids[i]) + " out of range");
    std::string s = t.Decode(ids, n, render_special != 0);
    return copy_out(s.data(), s.size(), 1, buf, cap, n_out, "ember_detokenize");
  });
}

const char* ember_token_piece(const ember_model* model, int32_t id) {
  return guard_value("ember_token_piece", static_cast<const char*>(nullptr), {{"model", model}},
                     [&]() -> const char* {
                       if (id < 0 || id >= model->m->tokenizer().n_vocab()) return nullptr;
                       return model->m->tokenizer().piece(id).c_str();
                     });
}

int32_t ember_piece_to_token(const ember_model* model, const char* piece) {
  return guard_value("ember_piece_to_token", int32_t{-1}, {{"model", model}, {"piece", piece}},
                     [&] { return model->m->tokenizer().PieceToId(piece); });
}

namespace {

// The C API's cache types, in their enum's order, and the engine's.
struct CacheTypeName {
  ember_cache_type type;
  const char* name;
  ember::DType dtype;
};
constexpr CacheTypeName kCacheTypes[] = {{EMBER_CACHE_F16, "f16", ember::DType::F16},
                                         {EMBER_CACHE_F32, "f32", ember::DType::F32},
                                         {EMBER_CACHE_Q8_0, "q8_0", ember::DType::Q8_0}};
constexpr const char* kCacheTypeList = "f32, f16 or q8_0";

// The engine's type of a cache type; false for a value outside the enum (a C caller can
// pass any int).
// A C caller may store any int in an enum field; in C++ loading one outside the
// enumerators' range is undefined, so the field is read as the int it is.
int32_t enum_value(const ember_cache_type& t) {
  static_assert(sizeof t == sizeof(int32_t));
  int32_t v;
  std::memcpy(&v, &t, sizeof v);
  return v;
}

bool cache_dtype(int32_t t, ember::DType* out) {
  for (const CacheTypeName& c : kCacheTypes)
    if (c.type == t) {
      *out = c.dtype;
      return true;
    }
  return false;
}

}  // namespace

const char* ember_cache_type_name(ember_cache_type type) {
  for (const CacheTypeName& c : kCacheTypes)
    if (c.type == enum_value(type)) return c.name;
  return nullptr;
}

ember_status ember_cache_type_from_name(const char* name, ember_cache_type* out) {
  return guard("ember_cache_type_from_name", {{"name", name}, {"out", out}}, [&] {
    for (const CacheTypeName& c : kCacheTypes)
      if (std::strcmp(c.name, name) == 0) {
        *out = c.type;
        return EMBER_OK;
      }
    return set_error(EMBER_ERR_INVALID_ARGUMENT,
                     std::string("cache type '") + name + "' is not supported (Ember supports " + kCacheTypeList + ")");
  });
}

ember_context_params ember_context_default_params(void) {
  ember_context_params p{};
  p.reference_kernels = ember::kernels::reference_requested_by_env() ? 1 : 0;
  p.cache_type_k = p.cache_type_v = EMBER_CACHE_F16;
  return p;
}

ember_status ember_context_create(ember_model* model, const ember_context_params* params, ember_context** out) {
  return guard("ember_context_create", {{"model", model}, {"out", out}}, [&]() -> ember_status {
    *out = nullptr;
    ember_context_params p = params ? *params : ember_context_default_params();
    ember::ContextParams cp;
    cp.n_ctx = p.n_ctx;
    cp.n_batch = p.n_batch;
    cp.n_threads = p.n_threads;
    cp.logits_all = p.logits_all != 0;
    cp.reference_kernels = p.reference_kernels != 0;
    cp.swa_full = p.swa_full != 0;
    for (const auto& [t, dtype, what] : {std::tuple{enum_value(p.cache_type_k), &cp.type_k, "cache_type_k"},
                                         std::tuple{enum_value(p.cache_type_v), &cp.type_v, "cache_type_v"}})
      if (!cache_dtype(t, dtype))
        return set_error(EMBER_ERR_INVALID_ARGUMENT, std::string("ember_context_create: ") + what + " " +
                                                         std::to_string(t) +
                                                         " is not a cache type (" + kCacheTypeList + ")");
    auto h = std::make_unique<ember_context>();
    h->model = model;
    ember::Status s = ember::Context::Create(*model->m, cp, &h->c);
    if (!s.ok()) return to_c(s);
    *out = h.release();
    return EMBER_OK;
  });
}

void ember_context_free(ember_context* ctx) {
  guard_void("ember_context_free", [&] { delete ctx; });
}

uint64_t ember_context_bytes(const ember_context* ctx) {
  return guard_value("ember_context_bytes", uint64_t{0}, {{"ctx", ctx}}, [&] { return ctx->c->allocated_bytes(); });
}

ember_status ember_context_memory(const ember_context* ctx, ember_memory_plan* out) {
  return guard("ember_context_memory", {{"ctx", ctx}, {"out", out}}, [&] {
    const ember::Context& c = *ctx->c;
    // The whole mapping, not only the tensors: parsing the metadata makes its pages
    // resident too, and for a real vocabulary they are not negligible.
    out->weights_bytes = c.model().resident_weight_bytes();
    out->kv_bytes = c.kv_bytes();
    out->scratch_bytes = c.scratch_bytes();
    out->total_bytes = out->weights_bytes + out->kv_bytes + out->scratch_bytes;
    out->kv_bytes_per_token = c.kv_cache().bytes_per_position();
    return EMBER_OK;
  });
}

int32_t ember_context_n_ctx(const ember_context* ctx) {
  return guard_value("ember_context_n_ctx", int32_t{0}, {{"ctx", ctx}}, [&] { return ctx->c->n_ctx(); });
}

int32_t ember_n_past(const ember_context* ctx) {
  return guard_value("ember_n_past", int32_t{0}, {{"ctx", ctx}}, [&] { return ctx->c->n_past(); });
}

ember_status ember_context_tokens(const ember_context* ctx, int32_t* ids, size_t cap, size_t* n_out) {
  return guard("ember_context_tokens", {{"ctx", ctx}, {"n_out", n_out}}, [&]() -> ember_status {
    if (!ids && cap) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_context_tokens: ids is NULL with cap > 0");
    const std::vector<int32_t>& t = ctx->c->tokens();
    return copy_out(t.data(), t.size(), sizeof(int32_t), ids, cap, n_out, "ember_context_tokens");
  });
}

void ember_context_reset(ember_context* ctx) {
  guard_void("ember_context_reset", [&] {
    if (ctx) ctx->c->Reset();
  });
}

ember_status ember_context_truncate(ember_context* ctx, int32_t n_past) {
  return guard("ember_context_truncate", {{"ctx", ctx}}, [&] { return to_c(ctx->c->Truncate(n_past)); });
}

ember_status ember_eval(ember_context* ctx, const int32_t* ids, size_t n) {
  return guard("ember_eval", {{"ctx", ctx}}, [&] { return to_c(ctx->c->Eval(ids, n)); });
}

ember_status ember_eval_prompt(ember_context* ctx, const int32_t* ids, size_t n, int32_t* n_reused) {
  return guard("ember_eval_prompt", {{"ctx", ctx}}, [&] { return to_c(ctx->c->EvalPrompt(ids, n, n_reused)); });
}

const float* ember_get_logits(const ember_context* ctx, int32_t i) {
  return guard_value("ember_get_logits", static_cast<const float*>(nullptr), {{"ctx", ctx}},
                     [&]() -> const float* {
                       // -1 is the last token; any other negative index is a caller's bug, not "last".
                       if (i >= -1) return ctx->c->logits(i);
                       set_error(EMBER_ERR_OUT_OF_RANGE, "ember_get_logits: token " + std::to_string(i) + " out of range");
                       return nullptr;
                     });
}

ember_sampling_params ember_sampling_default_params(void) {
  ember::SamplerParams d;
  return ember_sampling_params{d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.repeat_last_n,
                               d.frequency_penalty, d.presence_penalty, d.seed};
}

ember_generate_params ember_generate_default_params(void) {
  ember_generate_params g{};
  g.sampling = ember_sampling_default_params();
  g.max_tokens = 128;
  g.stop_at_eos = 1;
  g.cache_prompt = 1;
  return g;
}

ember_status ember_generate(ember_context* ctx, const char* prompt, const ember_generate_params* params,
                            ember_generate_result* result) {
  return guard("ember_generate", {{"ctx", ctx}, {"prompt", prompt}}, [&]() -> ember_status {
    const ember::Tokenizer& t = ctx->model->m->tokenizer();
    std::vector<int32_t> ids;
    ember::Status s = t.Encode(prompt, t.add_bos(), /*parse_special=*/true, &ids);
    if (!s.ok()) return to_c(s);
    return run_generate(ember::Generate, ctx, ids.data(), ids.size(), params, result);
  });
}

ember_status ember_generate_tokens(ember_context* ctx, const int32_t* prompt, size_t n,
                                   const ember_generate_params* params, ember_generate_result* result) {
  return guard("ember_generate_tokens", {{"ctx", ctx}}, [&]() -> ember_status {
    if (!prompt && n) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_generate_tokens: prompt is NULL with n > 0");
    return run_generate(ember::Generate, ctx, prompt, n, params, result);
  });
}

ember_status ember_generate_continue(ember_context* ctx, const int32_t* ids, size_t n,
                                     const ember_generate_params* params, ember_generate_result* result) {
  return guard("ember_generate_continue", {{"ctx", ctx}}, [&]() -> ember_status {
    if (!ids && n) return set_error(EMBER_ERR_INVALID_ARGUMENT, "ember_generate_continue: ids is NULL with n > 0");
    return run_generate(ember::GenerateContinue, ctx, ids, n, params, result);
  });
}

}  // extern "C"

// Bridge for C API sections in other files (engine/capi/c_api_internal.h).
namespace ember::capi {
const Model* model_of(const ember_model* m) { return m ? m->m.get() : nullptr; }

ember_status copy_out(const void* src, size_t n, size_t elem, void* dst, size_t cap, size_t* n_out, const char* fn) {
  *n_out = n;  // required by every caller's guard
  if (n > cap)
    return set_error(EMBER_ERR_OUT_OF_RANGE,
                     std::string(fn) + ": buffer holds " + std::to_string(cap) + " but " + std::to_string(n) + " are needed");
  if (n) std::memcpy(dst, src, n * elem);
  return EMBER_OK;
}

Context* context_of(ember_context* c) { return c ? c->c.get() : nullptr; }
}  // namespace ember::capi
