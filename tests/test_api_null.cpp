// The C ABI under bad arguments (issue 16, "The C ABI under failure"): every entry point of
// include/ember/ember.h and include/ember/ember_tools.h, given NULL handles, NULL outputs,
// NULL/undersized buffers (the buffer convention of ember_tokenize) and out-of-range values
// (negative ids and indices, n > cap, enum values outside the enum), returns an error status
// with a message in ember_last_error() (or the sentinel ember.h documents for functions
// returning a pointer, an int or nothing), never crashes, and leaves a real context usable:
// afterwards its logits equal a fresh context's bit for bit.
// ApiNull.TableCoversEveryEntryPoint reads the two headers, so a new entry point without a
// row in kEntryPoints fails the suite.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "ember/ember_tools.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using testing::fixture;

// Everything the bad calls need: a loaded octopus-tiny model with a context, its function
// registry and a LoRA adapter.
struct Env {
  ember_model* model = nullptr;
  ember_context* ctx = nullptr;
  ember_functions* fns = nullptr;
  ember_lora* lora = nullptr;
  std::vector<int32_t> prompt;  // a short prompt of the model
  int32_t n_vocab = 0;
  std::string tmp;              // a scratch directory for the offline writers
};

std::string octopus() { return std::string(EMBER_SOURCE_DIR) + "/models/octopus-tiny.gguf"; }
std::string octopus_functions() { return std::string(EMBER_SOURCE_DIR) + "/models/functions.json"; }

constexpr int32_t kNCtx = 64;

ember_context* new_context(ember_model* m) {
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = kNCtx;
  cp.n_threads = 1;
  ember_context* c = nullptr;
  EXPECT_EQ(ember_context_create(m, &cp, &c), EMBER_OK) << ember_last_error();
  return c;
}

// Enum values a C caller may pass. In C++ an enum without a fixed type holds only the values
// of its bit range (UBSan's -fsanitize=enum flags any other when loaded): a by-value argument
// gets an in-range value that is no enumerator; a struct field gets any int through memcpy
// (as tests/test_kv_cache.cpp does), the library reading it the same way.
constexpr ember_cache_type kNoCacheType = static_cast<ember_cache_type>(3);  // range 0..3
constexpr ember_status kNoStatus = static_cast<ember_status>(15);            // range 0..15
void store_int(ember_cache_type* field, int32_t v) {
  static_assert(sizeof *field == sizeof v);
  std::memcpy(field, &v, sizeof v);
}

// A failing status with a message of its own.
#define EXPECT_FAILS(call)                                                       \
  do {                                                                           \
    const ember_status st_ = (call);                                             \
    EXPECT_NE(st_, EMBER_OK) << #call;                                           \
    EXPECT_STRNE(ember_last_error(), "") << #call;                               \
  } while (0)
#define EXPECT_FAILS_WITH(code, call)                                            \
  do {                                                                           \
    const ember_status st_ = (call);                                             \
    EXPECT_EQ(st_, code) << #call << ": " << ember_last_error();                 \
    EXPECT_STRNE(ember_last_error(), "") << #call;                               \
  } while (0)

constexpr ember_status kInvalid = EMBER_ERR_INVALID_ARGUMENT;
constexpr ember_status kRange = EMBER_ERR_OUT_OF_RANGE;
constexpr unsigned char kCanary = 0x5a;  // every byte of a buffer a call must not write

// ---- the buffer convention: "Writes at most cap ...; *n_out receives the number needed;
// EMBER_ERR_OUT_OF_RANGE when cap is smaller" -------------------------------------------

// fill(buf, cap, n_out) calls an entry point with that buffer. Checks NULL buf with cap > 0,
// NULL n_out, cap 0 and cap one short of what is needed (no write past cap).
template <class T>
void expect_buffer_convention(const char* what, const std::function<ember_status(T*, size_t, size_t*)>& fill) {
  SCOPED_TRACE(what);
  size_t need = 0;
  const ember_status sized = fill(nullptr, 0, &need);
  ASSERT_EQ(sized == EMBER_OK, need == 0) << ember_last_error();
  EXPECT_FAILS(fill(nullptr, 4, &need));
  std::vector<T> buf(need + 4);
  EXPECT_FAILS(fill(buf.data(), buf.size(), nullptr));
  if (need == 0) return;
  size_t n = 0;
  EXPECT_FAILS_WITH(kRange, fill(nullptr, 0, &n));
  EXPECT_EQ(n, need);
  std::memset(buf.data(), kCanary, buf.size() * sizeof(T));
  EXPECT_FAILS_WITH(kRange, fill(buf.data(), need - 1, &n));
  EXPECT_EQ(n, need);
  const std::vector<unsigned char> untouched((buf.size() - (need - 1)) * sizeof(T), kCanary);
  EXPECT_EQ(std::memcmp(&buf[need - 1], untouched.data(), untouched.size()), 0) << "written past cap";
  EXPECT_EQ(fill(buf.data(), need, &n), EMBER_OK) << ember_last_error();
}

// ---- one function per family -------------------------------------------------------

void library_calls(const Env&) {
  EXPECT_STRNE(ember_version(), "");
  EXPECT_NE(ember_status_name(kNoStatus), nullptr);
  EXPECT_NE(ember_last_error(), nullptr);
}

void log_calls(const Env&) {
  ember_set_log_callback(nullptr, nullptr);  // NULL: back to stderr
  ember_set_log_level(-7);
  ember_set_log_level(1000);
  ember_set_log_level(2);  // the default: warnings and errors
}

void model_calls(const Env& e) {
  EXPECT_EQ(ember_model_default_params().vocab_only, 0);
  ember_model* m = nullptr;
  EXPECT_FAILS_WITH(kInvalid, ember_model_load(nullptr, nullptr, &m));
  EXPECT_EQ(m, nullptr);
  EXPECT_FAILS_WITH(kInvalid, ember_model_load(octopus().c_str(), nullptr, nullptr));
  EXPECT_FAILS(ember_model_load((::testing::TempDir() + "/capinull-absent.gguf").c_str(), nullptr, &m));
  EXPECT_EQ(m, nullptr);
  ember_model_free(nullptr);
  ember_model_info info{};
  EXPECT_FAILS_WITH(kInvalid, ember_model_get_info(nullptr, &info));
  EXPECT_FAILS_WITH(kInvalid, ember_model_get_info(e.model, nullptr));
  EXPECT_EQ(ember_model_meta_string(nullptr, "ember.prompt_template"), nullptr);
  EXPECT_EQ(ember_model_meta_string(e.model, nullptr), nullptr);
}

void tokenize_calls(const Env& e) {
  const char text[] = "Wake me up at 7 am";
  size_t n = 0;
  int32_t id = 0;
  EXPECT_FAILS_WITH(kInvalid, ember_tokenize(nullptr, text, sizeof text - 1, -1, 0, &id, 1, &n));
  EXPECT_FAILS_WITH(kInvalid, ember_tokenize(e.model, nullptr, 4, -1, 0, &id, 1, &n));
  expect_buffer_convention<int32_t>("ember_tokenize", [&](int32_t* ids, size_t cap, size_t* n_out) {
    return ember_tokenize(e.model, text, sizeof text - 1, -1, 0, ids, cap, n_out);
  });
}

void token_to_text_calls(const Env& e) {
  char c = 0;
  size_t n = 0;
  EXPECT_FAILS_WITH(kInvalid, ember_token_to_text(nullptr, e.prompt.back(), 0, &c, 1, &n));
  for (int32_t bad : {-1, e.n_vocab, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()})
    EXPECT_FAILS(ember_token_to_text(e.model, bad, 0, &c, 1, &n)) ;
  expect_buffer_convention<char>("ember_token_to_text", [&](char* buf, size_t cap, size_t* n_out) {
    return ember_token_to_text(e.model, e.prompt.back(), 0, buf, cap, n_out);
  });
}

void detokenize_calls(const Env& e) {
  char c = 0;
  size_t n = 0;
  EXPECT_FAILS_WITH(kInvalid, ember_detokenize(nullptr, e.prompt.data(), e.prompt.size(), 0, &c, 1, &n));
  EXPECT_FAILS_WITH(kInvalid, ember_detokenize(e.model, nullptr, 3, 0, &c, 1, &n));
  for (int32_t bad : {-1, e.n_vocab}) {
    const int32_t ids[] = {e.prompt.back(), bad};
    EXPECT_FAILS(ember_detokenize(e.model, ids, 2, 0, &c, 1, &n));
  }
  expect_buffer_convention<char>("ember_detokenize", [&](char* buf, size_t cap, size_t* n_out) {
    return ember_detokenize(e.model, e.prompt.data(), e.prompt.size(), 0, buf, cap, n_out);
  });
}

void piece_calls(const Env& e) {
  EXPECT_EQ(ember_token_piece(nullptr, 0), nullptr);
  EXPECT_EQ(ember_token_piece(e.model, -1), nullptr);
  EXPECT_EQ(ember_token_piece(e.model, e.n_vocab), nullptr);
  EXPECT_EQ(ember_piece_to_token(nullptr, "a"), -1);
  EXPECT_EQ(ember_piece_to_token(e.model, nullptr), -1);
  EXPECT_EQ(ember_piece_to_token(e.model, "no such piece, surely"), -1);
}

void chat_template_calls(const Env& e) {
  const ember_chat_message msgs[] = {{"user", "Hi"}, {"assistant", "Hello"}};
  char c = 0;
  size_t n = 0;
  EXPECT_FAILS_WITH(kInvalid, ember_chat_apply_template(nullptr, "chatml", msgs, 2, 1, &c, 1, &n));
  EXPECT_FAILS(ember_chat_apply_template(e.model, "chatml", nullptr, 2, 1, &c, 1, &n));
  const ember_chat_message null_role[] = {{nullptr, "Hi"}};
  const ember_chat_message null_content[] = {{"user", nullptr}};
  EXPECT_FAILS(ember_chat_apply_template(e.model, "chatml", null_role, 1, 1, &c, 1, &n));
  EXPECT_FAILS(ember_chat_apply_template(e.model, "chatml", null_content, 1, 1, &c, 1, &n));
  expect_buffer_convention<char>("ember_chat_apply_template", [&](char* buf, size_t cap, size_t* n_out) {
    return ember_chat_apply_template(e.model, "chatml", msgs, 2, 1, buf, cap, n_out);
  });
}

void end_of_turn_calls(const Env& e) {
  int32_t id = 0;
  size_t n = 0;
  EXPECT_FAILS_WITH(kInvalid, ember_chat_end_of_turn_tokens(nullptr, "chatml", &id, 1, &n));
  expect_buffer_convention<int32_t>("ember_chat_end_of_turn_tokens", [&](int32_t* ids, size_t cap, size_t* n_out) {
    return ember_chat_end_of_turn_tokens(e.model, "chatml", ids, cap, n_out);
  });
}

void cache_type_calls(const Env&) {
  EXPECT_EQ(ember_cache_type_name(kNoCacheType), nullptr);
  ember_cache_type t = EMBER_CACHE_F16;
  EXPECT_FAILS_WITH(kInvalid, ember_cache_type_from_name(nullptr, &t));
  EXPECT_FAILS_WITH(kInvalid, ember_cache_type_from_name("f32", nullptr));
  EXPECT_FAILS_WITH(kInvalid, ember_cache_type_from_name("q4_0", &t));
}

void context_create_calls(const Env& e) {
  EXPECT_EQ(ember_context_default_params().n_ctx, 0);
  ember_context* c = nullptr;
  EXPECT_FAILS_WITH(kInvalid, ember_context_create(nullptr, nullptr, &c));
  EXPECT_FAILS_WITH(kInvalid, ember_context_create(e.model, nullptr, nullptr));
  auto with = [&](auto edit) {
    ember_context_params p = ember_context_default_params();
    p.n_ctx = kNCtx;
    edit(p);
    ember_context* made = nullptr;
    const ember_status st = ember_context_create(e.model, &p, &made);
    EXPECT_EQ(made, nullptr);
    ember_context_free(made);
    return st;
  };
  EXPECT_FAILS_WITH(kInvalid, with([](ember_context_params& p) { store_int(&p.cache_type_k, -1); }));
  EXPECT_FAILS_WITH(kInvalid, with([](ember_context_params& p) { store_int(&p.cache_type_v, 1000); }));
  EXPECT_FAILS(with([](ember_context_params& p) { p.n_ctx = -1; }));
  EXPECT_FAILS(with([](ember_context_params& p) { p.n_batch = -1; }));
  EXPECT_FAILS(with([](ember_context_params& p) { p.n_threads = -1; }));
  ember_context_free(nullptr);
}

void context_query_calls(const Env& e) {
  EXPECT_EQ(ember_context_bytes(nullptr), 0u);
  ember_memory_plan plan{};
  EXPECT_FAILS_WITH(kInvalid, ember_context_memory(nullptr, &plan));
  EXPECT_FAILS_WITH(kInvalid, ember_context_memory(e.ctx, nullptr));
  EXPECT_EQ(ember_context_n_ctx(nullptr), 0);
  EXPECT_EQ(ember_n_past(nullptr), 0);
  int32_t id = 0;
  size_t n = 0;
  EXPECT_FAILS_WITH(kInvalid, ember_context_tokens(nullptr, &id, 1, &n));
  ASSERT_EQ(ember_eval(e.ctx, e.prompt.data(), e.prompt.size()), EMBER_OK) << ember_last_error();
  expect_buffer_convention<int32_t>("ember_context_tokens", [&](int32_t* ids, size_t cap, size_t* n_out) {
    return ember_context_tokens(e.ctx, ids, cap, n_out);
  });
}

void context_state_calls(const Env& e) {
  ember_context_reset(nullptr);
  ASSERT_EQ(ember_context_truncate(e.ctx, 0), EMBER_OK) << ember_last_error();
  ASSERT_EQ(ember_eval(e.ctx, e.prompt.data(), 2), EMBER_OK) << ember_last_error();
  EXPECT_FAILS_WITH(kInvalid, ember_context_truncate(nullptr, 0));
  EXPECT_FAILS_WITH(kInvalid, ember_context_truncate(e.ctx, -1));
  EXPECT_FAILS_WITH(kInvalid, ember_context_truncate(e.ctx, 3));
  EXPECT_EQ(ember_n_past(e.ctx), 2);  // a refused truncate changes nothing
  const std::string nowhere = ::testing::TempDir() + "/capinull-no-such-dir/state.bin";
  EXPECT_FAILS_WITH(kInvalid, ember_context_save(nullptr, nowhere.c_str()));
  EXPECT_FAILS_WITH(kInvalid, ember_context_save(e.ctx, nullptr));
  EXPECT_FAILS(ember_context_save(e.ctx, nowhere.c_str()));
  EXPECT_FAILS_WITH(kInvalid, ember_context_load(nullptr, nowhere.c_str()));
  EXPECT_FAILS_WITH(kInvalid, ember_context_load(e.ctx, nullptr));
  EXPECT_FAILS_WITH(EMBER_ERR_NOT_FOUND, ember_context_load(e.ctx, nowhere.c_str()));
}

// Bad token lists for the calls that evaluate: NULL with n > 0, ids out of the vocabulary.
// fn(ids, n) is an evaluating entry point on the real context.
void expect_bad_ids_fail(const Env& e, const std::function<ember_status(const int32_t*, size_t)>& fn) {
  EXPECT_FAILS(fn(nullptr, 3));
  for (int32_t bad : {-1, e.n_vocab, std::numeric_limits<int32_t>::min()}) {
    const int32_t ids[] = {e.prompt[0], bad};
    EXPECT_FAILS(fn(ids, 2));
  }
  const std::vector<int32_t> too_long(kNCtx + 1, e.prompt.back());
  EXPECT_FAILS_WITH(kRange, fn(too_long.data(), too_long.size()));
}

void eval_calls(const Env& e) {
  EXPECT_FAILS_WITH(kInvalid, ember_eval(nullptr, e.prompt.data(), e.prompt.size()));
  expect_bad_ids_fail(e, [&](const int32_t* ids, size_t n) { return ember_eval(e.ctx, ids, n); });
  int32_t reused = 0;
  EXPECT_FAILS_WITH(kInvalid, ember_eval_prompt(nullptr, e.prompt.data(), e.prompt.size(), &reused));
  expect_bad_ids_fail(e, [&](const int32_t* ids, size_t n) { return ember_eval_prompt(e.ctx, ids, n, &reused); });
  EXPECT_EQ(ember_get_logits(nullptr, -1), nullptr);
  ASSERT_EQ(ember_eval_prompt(e.ctx, e.prompt.data(), e.prompt.size(), nullptr), EMBER_OK) << ember_last_error();
  // Without logits_all one row is kept (index 0 or -1); -1 alone means "the last".
  for (int32_t bad : {-2, 1, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()})
    EXPECT_EQ(ember_get_logits(e.ctx, bad), nullptr) << bad;
}

ember_generate_params short_generation() {
  ember_generate_params gp = ember_generate_default_params();
  gp.sampling = ember_sampling_default_params();
  gp.sampling.temperature = 0;
  gp.max_tokens = 2;
  return gp;
}

void generate_calls(const Env& e) {
  ember_generate_params gp = short_generation();
  ember_generate_result r{};
  EXPECT_FAILS_WITH(kInvalid, ember_generate(nullptr, "Hi", &gp, &r));
  EXPECT_FAILS_WITH(kInvalid, ember_generate(e.ctx, nullptr, &gp, &r));
  ember_generate_params no_stop_ids = gp;
  no_stop_ids.n_stop_ids = 2;
  EXPECT_FAILS(ember_generate(e.ctx, "Hi", &no_stop_ids, &r));
  ember_generate_params no_stop_strings = gp;
  no_stop_strings.n_stop_strings = 2;
  EXPECT_FAILS(ember_generate(e.ctx, "Hi", &no_stop_strings, &r));
  const char* const null_string[] = {nullptr};
  ember_generate_params null_stop_string = gp;
  null_stop_string.stop_strings = null_string;
  null_stop_string.n_stop_strings = 1;
  EXPECT_FAILS(ember_generate(e.ctx, "Hi", &null_stop_string, &r));
  EXPECT_FAILS_WITH(kInvalid, ember_generate_tokens(nullptr, e.prompt.data(), e.prompt.size(), &gp, &r));
  expect_bad_ids_fail(e, [&](const int32_t* ids, size_t n) { return ember_generate_tokens(e.ctx, ids, n, &gp, &r); });
  EXPECT_FAILS_WITH(kInvalid, ember_generate_continue(nullptr, e.prompt.data(), e.prompt.size(), &gp, &r));
  EXPECT_FAILS(ember_generate_continue(e.ctx, e.prompt.data(), 0, &gp, &r));  // n >= 1
  expect_bad_ids_fail(e, [&](const int32_t* ids, size_t n) { return ember_generate_continue(e.ctx, ids, n, &gp, &r); });
}

void functions_load_calls(const Env& e) {
  ember_functions* f = nullptr;
  EXPECT_FAILS_WITH(kInvalid, ember_functions_load(nullptr, octopus_functions().c_str(), &f));
  EXPECT_FAILS_WITH(kInvalid, ember_functions_load(e.model, octopus_functions().c_str(), nullptr));
  EXPECT_FAILS(ember_functions_load(e.model, (::testing::TempDir() + "/capinull-absent.json").c_str(), &f));
  EXPECT_EQ(f, nullptr);
  const char json[] = "[{\"name\": 1}]";
  EXPECT_FAILS_WITH(kInvalid, ember_functions_parse(nullptr, json, sizeof json - 1, &f));
  EXPECT_FAILS_WITH(kInvalid, ember_functions_parse(e.model, nullptr, 10, &f));
  EXPECT_FAILS_WITH(kInvalid, ember_functions_parse(e.model, json, sizeof json - 1, nullptr));
  EXPECT_FAILS(ember_functions_parse(e.model, json, sizeof json - 1, &f));
  EXPECT_FAILS(ember_functions_parse(e.model, json, 0, &f));
  EXPECT_EQ(f, nullptr);
  ember_functions_free(nullptr);
}

void functions_query_calls(const Env& e) {
  const int32_t end = ember_functions_end_token(e.fns);
  EXPECT_FAILS_WITH(kInvalid, ember_functions_set_end_token(nullptr, "<nexa_end>"));
  EXPECT_FAILS_WITH(kInvalid, ember_functions_set_end_token(e.fns, nullptr));
  EXPECT_FAILS(ember_functions_set_end_token(e.fns, "<no such token>"));
  EXPECT_EQ(ember_functions_end_token(e.fns), end);  // refused: unchanged
  EXPECT_EQ(ember_functions_end_token(nullptr), -1);
  EXPECT_EQ(ember_functions_count(nullptr), 0);
  const int32_t count = ember_functions_count(e.fns);
  ember_function_info info{};
  EXPECT_FAILS_WITH(kInvalid, ember_functions_get(nullptr, 0, &info));
  EXPECT_FAILS_WITH(kInvalid, ember_functions_get(e.fns, 0, nullptr));
  for (int32_t bad : {-1, count, std::numeric_limits<int32_t>::min()}) EXPECT_FAILS(ember_functions_get(e.fns, bad, &info));
  const char* name = nullptr;
  const char* type = nullptr;
  ASSERT_EQ(ember_functions_get(e.fns, 0, &info), EMBER_OK) << ember_last_error();
  EXPECT_FAILS_WITH(kInvalid, ember_functions_param(nullptr, 0, 0, &name, &type));
  EXPECT_FAILS(ember_functions_param(e.fns, -1, 0, &name, &type));
  EXPECT_FAILS(ember_functions_param(e.fns, count, 0, &name, &type));
  EXPECT_FAILS(ember_functions_param(e.fns, 0, -1, &name, &type));
  EXPECT_FAILS(ember_functions_param(e.fns, 0, info.n_params, &name, &type));
  if (info.n_params > 0) {
    EXPECT_FAILS(ember_functions_param(e.fns, 0, 0, nullptr, &type));
    EXPECT_FAILS(ember_functions_param(e.fns, 0, 0, &name, nullptr));
  }
}

void call_calls(const Env& e) {
  ember_call_params cp = ember_call_default_params();
  cp.max_tokens = 4;
  ember_call_result r{};
  EXPECT_FAILS_WITH(kInvalid, ember_call(nullptr, e.fns, "Hi", &cp, &r));
  EXPECT_FAILS_WITH(kInvalid, ember_call(e.ctx, nullptr, "Hi", &cp, &r));
  EXPECT_FAILS_WITH(kInvalid, ember_call(e.ctx, e.fns, nullptr, &cp, &r));
  EXPECT_FAILS_WITH(kInvalid, ember_call(e.ctx, e.fns, "Hi", &cp, nullptr));
  for (int32_t bad : {-1, ember_functions_count(e.fns)}) {
    ember_call_params restricted = cp;
    restricted.allowed_functions = &bad;
    restricted.n_allowed_functions = 1;
    EXPECT_FAILS_WITH(kInvalid, ember_call(e.ctx, e.fns, "Hi", &restricted, &r));
  }
  ember_call_params no_list = cp;  // documented: a NULL list allows every function
  no_list.n_allowed_functions = 3;
  EXPECT_EQ(ember_call(e.ctx, e.fns, "Hi", &no_list, &r), EMBER_OK) << ember_last_error();
  ember_call_result_free(&r);
  ember_call_result_free(nullptr);
  ember_call_result zeroed{};
  ember_call_result_free(&zeroed);
}

void lora_calls(const Env& e) {
  ember_lora* l = nullptr;
  const std::string home = fixture("models/octopus-tiny/lora-home.gguf");
  EXPECT_FAILS_WITH(kInvalid, ember_lora_load(nullptr, home.c_str(), &l));
  EXPECT_FAILS_WITH(kInvalid, ember_lora_load(e.model, nullptr, &l));
  EXPECT_FAILS_WITH(kInvalid, ember_lora_load(e.model, home.c_str(), nullptr));
  EXPECT_FAILS(ember_lora_load(e.model, (::testing::TempDir() + "/capinull-absent.gguf").c_str(), &l));
  EXPECT_EQ(l, nullptr);
  ember_lora_free(nullptr);
  ember_lora_info info{};
  EXPECT_FAILS_WITH(kInvalid, ember_lora_get_info(nullptr, &info));
  EXPECT_FAILS_WITH(kInvalid, ember_lora_get_info(e.lora, nullptr));
}

void context_lora_calls(const Env& e) {
  EXPECT_FAILS_WITH(kInvalid, ember_context_set_lora(nullptr, e.lora, 1.0f));
  EXPECT_FAILS_WITH(kInvalid, ember_context_set_lora(e.ctx, nullptr, 1.0f));
  EXPECT_FAILS(ember_context_set_lora(e.ctx, e.lora, std::numeric_limits<float>::quiet_NaN()));
  EXPECT_FAILS(ember_context_set_lora(e.ctx, e.lora, std::numeric_limits<float>::infinity()));
  EXPECT_EQ(ember_context_n_loras(e.ctx), 0);
  EXPECT_FAILS_WITH(kInvalid, ember_context_remove_lora(nullptr, e.lora));
  EXPECT_FAILS_WITH(kInvalid, ember_context_remove_lora(e.ctx, nullptr));
  EXPECT_FAILS_WITH(EMBER_ERR_NOT_FOUND, ember_context_remove_lora(e.ctx, e.lora));
  EXPECT_FAILS_WITH(kInvalid, ember_context_clear_loras(nullptr));
  EXPECT_EQ(ember_context_n_loras(nullptr), 0);
}

void lora_auto_calls(const Env& e) {
  EXPECT_FAILS_WITH(kInvalid, ember_lora_set_task_examples(nullptr, nullptr, 0));
  EXPECT_FAILS_WITH(kInvalid, ember_lora_set_task_examples(e.lora, nullptr, 2));
  const char* const with_null[] = {"set an alarm", nullptr};
  EXPECT_FAILS(ember_lora_set_task_examples(e.lora, with_null, 2));
  const ember_lora* const loras[] = {e.lora};
  const ember_lora* const null_lora[] = {nullptr};
  const char* const examples[] = {"turn on the lights"};
  float w[2] = {}, sim[2] = {};
  EXPECT_FAILS_WITH(kInvalid, ember_lora_auto_weights(nullptr, loras, 1, examples, 1, 1, 0, 1, sim, w));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, nullptr, 1, examples, 1, 1, 0, 1, sim, w));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, null_lora, 1, examples, 1, 1, 0, 1, sim, w));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, loras, 1, nullptr, 1, 1, 0, 1, sim, w));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, loras, 1, with_null, 2, 1, 0, 1, sim, w));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, loras, 1, examples, 1, 1, 0, 1, sim, nullptr));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, loras, 0, examples, 1, 1, 0, 1, sim, w));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, loras, 1, examples, 1, 1, 0, 1, sim, w));  // no task examples
  ASSERT_EQ(ember_lora_set_task_examples(e.lora, examples, 1), EMBER_OK) << ember_last_error();
  EXPECT_FAILS(ember_lora_auto_weights(e.model, loras, 1, examples, 1, 1, 0, -1, sim, w));
  EXPECT_FAILS(ember_lora_auto_weights(e.model, loras, 1, examples, 1, 1, std::nanf(""), 0, sim, w));
}

// ---- ember_tools.h: the writers never get to write (NULL or absent inputs) ------------

void quantize_calls(const Env& e) {
  EXPECT_EQ(ember_quantize_default_params().progress, nullptr);
  EXPECT_EQ(ember_quantize_type_name(-1), nullptr);
  EXPECT_EQ(ember_quantize_type_name(1 << 20), nullptr);
  const std::string out = e.tmp + "/quantized.gguf";
  const std::string absent = e.tmp + "/absent.gguf";
  EXPECT_FAILS_WITH(kInvalid, ember_quantize_file(nullptr, out.c_str(), "q8_0", nullptr));
  EXPECT_FAILS_WITH(kInvalid, ember_quantize_file(octopus().c_str(), nullptr, "q8_0", nullptr));
  EXPECT_FAILS_WITH(kInvalid, ember_quantize_file(octopus().c_str(), out.c_str(), nullptr, nullptr));
  EXPECT_FAILS(ember_quantize_file(octopus().c_str(), out.c_str(), "q9_9", nullptr));
  EXPECT_FAILS(ember_quantize_file(absent.c_str(), out.c_str(), "q8_0", nullptr));
  ember_quantize_params qp = ember_quantize_default_params();
  qp.n_threads = -1;
  EXPECT_FAILS(ember_quantize_file(octopus().c_str(), out.c_str(), "q8_0", &qp));
  EXPECT_FALSE(testing::file_exists(out));
}

void synth_calls(const Env& e) {
  EXPECT_NE(ember_synth_default_params().preset, nullptr);
  EXPECT_EQ(ember_synth_preset_name(-1), nullptr);
  EXPECT_EQ(ember_synth_preset_name(1 << 20), nullptr);
  EXPECT_EQ(ember_synth_preset_description(-1), nullptr);
  EXPECT_EQ(ember_synth_preset_description(1 << 20), nullptr);
  const std::string out = e.tmp + "/synth.gguf";
  EXPECT_FAILS_WITH(kInvalid, ember_synth_file(nullptr, nullptr));
  auto with = [&](auto edit) {
    ember_synth_params p = ember_synth_default_params();
    edit(p);
    return ember_synth_file(out.c_str(), &p);
  };
  EXPECT_FAILS(with([](ember_synth_params& p) { p.preset = "no-such-preset"; }));
  EXPECT_FAILS(with([](ember_synth_params& p) { p.type = "q9_9"; }));
  const std::string absent_vocab = e.tmp + "/absent.gguf";
  EXPECT_FAILS(with([&](ember_synth_params& p) { p.vocab = absent_vocab.c_str(); }));
  EXPECT_FAILS(with([](ember_synth_params& p) { p.n_threads = -1; }));
  EXPECT_FALSE(testing::file_exists(out));
}

void lora_writer_calls(const Env& e) {
  const std::string out = e.tmp + "/adapter.gguf";
  EXPECT_FAILS_WITH(kInvalid, ember_lora_save(nullptr, out.c_str()));
  EXPECT_FAILS_WITH(kInvalid, ember_lora_save(e.lora, nullptr));
  const ember_lora* const loras[] = {e.lora, e.lora};
  const ember_lora* const null_lora[] = {e.lora, nullptr};
  const float w[] = {0.5f, 0.5f};
  const char* path = out.c_str();
  EXPECT_FAILS_WITH(kInvalid, ember_lora_blend(nullptr, loras, w, 2, EMBER_LORA_BLEND_EXACT, 0, path));
  EXPECT_FAILS(ember_lora_blend(e.model, nullptr, w, 2, EMBER_LORA_BLEND_EXACT, 0, path));
  EXPECT_FAILS(ember_lora_blend(e.model, null_lora, w, 2, EMBER_LORA_BLEND_EXACT, 0, path));
  EXPECT_FAILS(ember_lora_blend(e.model, loras, nullptr, 2, EMBER_LORA_BLEND_EXACT, 0, path));
  EXPECT_FAILS(ember_lora_blend(e.model, loras, w, 0, EMBER_LORA_BLEND_EXACT, 0, path));
  EXPECT_FAILS(ember_lora_blend(e.model, loras, w, 2, 99, 0, path));
  EXPECT_FAILS(ember_lora_blend(e.model, loras, w, 2, -1, 0, path));
  EXPECT_FAILS(ember_lora_blend(e.model, loras, w, 2, EMBER_LORA_BLEND_SVD, -1, path));
  EXPECT_FAILS(ember_lora_blend(e.model, loras, w, 2, EMBER_LORA_BLEND_EXACT, 0, nullptr));
  EXPECT_FAILS_WITH(kInvalid, ember_lora_merge(nullptr, loras, w, 2, "f32", path));
  EXPECT_FAILS(ember_lora_merge(e.model, nullptr, w, 2, "f32", path));
  EXPECT_FAILS(ember_lora_merge(e.model, null_lora, w, 2, "f32", path));
  EXPECT_FAILS(ember_lora_merge(e.model, loras, nullptr, 2, "f32", path));
  EXPECT_FAILS(ember_lora_merge(e.model, loras, w, 2, "q9_9", path));
  EXPECT_FAILS(ember_lora_merge(e.model, loras, w, 2, "f32", nullptr));
  EXPECT_FALSE(testing::file_exists(out));
}

// ---- the table: every entry point, the family that makes its bad calls ----------------

struct EntryPoint {
  const char* name;
  void (*bad_calls)(const Env&);
};

const EntryPoint kEntryPoints[] = {
    {"ember_version", library_calls},
    {"ember_status_name", library_calls},
    {"ember_last_error", library_calls},
    {"ember_set_log_callback", log_calls},
    {"ember_set_log_level", log_calls},
    {"ember_model_default_params", model_calls},
    {"ember_model_load", model_calls},
    {"ember_model_free", model_calls},
    {"ember_model_get_info", model_calls},
    {"ember_model_meta_string", model_calls},
    {"ember_tokenize", tokenize_calls},
    {"ember_token_to_text", token_to_text_calls},
    {"ember_detokenize", detokenize_calls},
    {"ember_token_piece", piece_calls},
    {"ember_piece_to_token", piece_calls},
    {"ember_chat_apply_template", chat_template_calls},
    {"ember_chat_end_of_turn_tokens", end_of_turn_calls},
    {"ember_cache_type_name", cache_type_calls},
    {"ember_cache_type_from_name", cache_type_calls},
    {"ember_context_default_params", context_create_calls},
    {"ember_context_create", context_create_calls},
    {"ember_context_free", context_create_calls},
    {"ember_context_bytes", context_query_calls},
    {"ember_context_memory", context_query_calls},
    {"ember_context_n_ctx", context_query_calls},
    {"ember_n_past", context_query_calls},
    {"ember_context_tokens", context_query_calls},
    {"ember_context_reset", context_state_calls},
    {"ember_context_truncate", context_state_calls},
    {"ember_context_save", context_state_calls},
    {"ember_context_load", context_state_calls},
    {"ember_eval", eval_calls},
    {"ember_eval_prompt", eval_calls},
    {"ember_get_logits", eval_calls},
    {"ember_sampling_default_params", generate_calls},
    {"ember_generate_default_params", generate_calls},
    {"ember_generate", generate_calls},
    {"ember_generate_tokens", generate_calls},
    {"ember_generate_continue", generate_calls},
    {"ember_functions_load", functions_load_calls},
    {"ember_functions_parse", functions_load_calls},
    {"ember_functions_free", functions_load_calls},
    {"ember_functions_set_end_token", functions_query_calls},
    {"ember_functions_count", functions_query_calls},
    {"ember_functions_get", functions_query_calls},
    {"ember_functions_param", functions_query_calls},
    {"ember_functions_end_token", functions_query_calls},
    {"ember_call_default_params", call_calls},
    {"ember_call", call_calls},
    {"ember_call_result_free", call_calls},
    {"ember_lora_load", lora_calls},
    {"ember_lora_free", lora_calls},
    {"ember_lora_get_info", lora_calls},
    {"ember_context_set_lora", context_lora_calls},
    {"ember_context_remove_lora", context_lora_calls},
    {"ember_context_clear_loras", context_lora_calls},
    {"ember_context_n_loras", context_lora_calls},
    {"ember_lora_set_task_examples", lora_auto_calls},
    {"ember_lora_auto_weights", lora_auto_calls},
    {"ember_quantize_default_params", quantize_calls},
    {"ember_quantize_type_name", quantize_calls},
    {"ember_quantize_file", quantize_calls},
    {"ember_synth_default_params", synth_calls},
    {"ember_synth_preset_name", synth_calls},
    {"ember_synth_preset_description", synth_calls},
    {"ember_synth_file", synth_calls},
    {"ember_lora_save", lora_writer_calls},
    {"ember_lora_blend", lora_writer_calls},
    {"ember_lora_merge", lora_writer_calls},
};

// The names of every `EMBER_API ... name(` declaration of a header.
std::set<std::string> declared_entry_points(const std::string& header) {
  std::ifstream in(header);
  EXPECT_TRUE(in) << header;
  const std::regex decl(R"(^EMBER_API\s.*?\b(ember_\w+)\s*\()");
  std::set<std::string> names;
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, decl)) names.insert(m[1]);
  return names;
}

TEST(ApiNull, TableCoversEveryEntryPoint) {
  std::set<std::string> declared;
  for (const char* h : {"/include/ember/ember.h", "/include/ember/ember_tools.h"})
    declared.merge(declared_entry_points(std::string(EMBER_SOURCE_DIR) + h));
  std::set<std::string> tested;
  for (const EntryPoint& ep : kEntryPoints) EXPECT_TRUE(tested.insert(ep.name).second) << "twice: " << ep.name;
  EXPECT_GE(declared.size(), 60u);  // the extraction found the API
  for (const std::string& n : declared) EXPECT_TRUE(tested.count(n)) << n << " has no bad-argument test";
  for (const std::string& n : tested) EXPECT_TRUE(declared.count(n)) << n << " is not in the headers";
}

// Logits of the prompt evaluated on ctx from an empty cache.
std::vector<float> logits_of(ember_context* ctx, const std::vector<int32_t>& prompt, int32_t n_vocab) {
  ember_context_reset(ctx);
  EXPECT_EQ(ember_eval(ctx, prompt.data(), prompt.size()), EMBER_OK) << ember_last_error();
  const float* l = ember_get_logits(ctx, -1);
  EXPECT_NE(l, nullptr);
  return l ? std::vector<float>(l, l + n_vocab) : std::vector<float>{};
}

class ApiNullCalls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(ember_model_load(octopus().c_str(), nullptr, &e_.model), EMBER_OK) << ember_last_error();
    e_.ctx = new_context(e_.model);
    ASSERT_NE(e_.ctx, nullptr);
    ASSERT_EQ(ember_functions_load(e_.model, octopus_functions().c_str(), &e_.fns), EMBER_OK) << ember_last_error();
    const std::string home = fixture("models/octopus-tiny/lora-home.gguf");
    ASSERT_EQ(ember_lora_load(e_.model, home.c_str(), &e_.lora), EMBER_OK) << ember_last_error();
    ember_model_info info{};
    ASSERT_EQ(ember_model_get_info(e_.model, &info), EMBER_OK);
    e_.n_vocab = info.n_vocab;
    e_.prompt.resize(32);
    size_t n = 0;
    const char text[] = "Wake me up at 7 am";
    ASSERT_EQ(ember_tokenize(e_.model, text, sizeof text - 1, -1, 0, e_.prompt.data(), e_.prompt.size(), &n), EMBER_OK);
    e_.prompt.resize(n);
    ASSERT_GE(n, 3u);
    // The offline writers' outputs would go here: each bad call must fail without writing.
    e_.tmp = ::testing::TempDir() + "/capinull-" + std::to_string(::getpid());
    std::filesystem::create_directories(e_.tmp);
  }
  void TearDown() override {
    ember_functions_free(e_.fns);
    ember_context_free(e_.ctx);
    ember_lora_free(e_.lora);
    ember_model_free(e_.model);
    std::filesystem::remove_all(e_.tmp);
  }
  Env e_;
};

TEST_F(ApiNullCalls, EveryEntryPointRefusesBadArgumentsAndTheContextStaysUsable) {
  void (*last)(const Env&) = nullptr;
  for (const EntryPoint& ep : kEntryPoints) {
    if (ep.bad_calls == last) continue;  // a family runs once for all its entry points
    last = ep.bad_calls;
    SCOPED_TRACE(ep.name);
    ep.bad_calls(e_);
  }
  EXPECT_EQ(ember_context_n_loras(e_.ctx), 0);
  ember_context* fresh = new_context(e_.model);
  ASSERT_NE(fresh, nullptr);
  const std::vector<float> expected = logits_of(fresh, e_.prompt, e_.n_vocab);
  ember_context_free(fresh);
  const std::vector<float> after = logits_of(e_.ctx, e_.prompt, e_.n_vocab);
  ASSERT_EQ(after.size(), expected.size());
  EXPECT_EQ(std::memcmp(after.data(), expected.data(), after.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace ember
