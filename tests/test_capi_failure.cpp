// The C ABI under allocation failure (DESIGN.md "Errors are values": no exception
// crosses the C API). For each family of entry points, runtime (ember.h) and offline
// (ember_tools.h), the call is repeated with its Nth allocation failed, for N = 1, 2, 3,
// ... until a run makes fewer than N allocations (the call then completes untouched).
// Every run must return (a crash or std::terminate ends this executable: that is the
// failure this test exists to catch); a run whose failed allocation reached the C API
// returns an error status with a message, and the same call then succeeds with no
// failure injected. A run may also return EMBER_OK when the failed allocation was one
// that code legitimately survives (a thread the pool could not start runs with fewer
// threads); its result is then checked like any other.
//
// Allocations are failed through tests/support/alloc_hook.h (the whole process's
// allocator; hence its own executable). Families that allocate thousands of times (model
// load builds the vocabulary) are sampled (Schedule below), so the run stays at a few
// seconds; the count each family made is printed.
// Not failed: allocations inside sentencepiece (kSpared below says why).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

#include "ember/ember.h"
#include "ember/ember_tools.h"
#include "support/alloc_hook.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using testing::fixture;
namespace alloc = testing::alloc;

// Which N are tried: every N up to `dense`, then N *= growth. Allocation sites are all
// reached early in a call; later allocations repeat the same sites in loops (per token,
// per tensor, per vocabulary entry).
struct Schedule {
  uint64_t dense;
  double growth;
  bool retry_each = true;  // false: the same call is retried after the first failure only
};
#ifndef EMBER_TEST_EMULATOR
constexpr Schedule kRuntime{48, 1.35};
// The offline families write a whole file per run (tens of ms each): sampled sparser.
constexpr Schedule kOffline{16, 1.7};
#else  // under qemu (20-50x slower, and the suite runs three times): a few seconds each
constexpr Schedule kRuntime{6, 4.0, false};
constexpr Schedule kOffline{3, 6.0, false};
#endif

// Allocations inside sentencepiece are not failed: its protobuf-lite messages are not
// exception-safe (a std::bad_alloc while it encodes segfaults in ~SentencePieceText as the
// stack unwinds: Debian's libsentencepiece0 0.1.97), which no code of Ember's can catch.
// Every other allocation of an encode (Ember's own) is failed.
constexpr const char* kSpared = "libsentencepiece";

const std::string kStories = "models/stories260K.gguf";
std::string octopus() { return std::string(EMBER_SOURCE_DIR) + "/models/octopus-tiny.gguf"; }
std::string octopus_functions() { return std::string(EMBER_SOURCE_DIR) + "/models/functions.json"; }
std::string adapter(const char* name) { return fixture(std::string("models/octopus-tiny/") + name); }

// A scratch file path of this process (removed by the caller). In /dev/shm when there is
// one: the writers fsync every file, which costs ~50 ms on a disk and nothing in memory,
// and the offline families write a few hundred files.
std::string temp_path(const std::string& name) {
  const char* env = std::getenv("TMPDIR");
  const std::string dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : env && *env ? env : "/tmp";
  return dir + "/ember-capi-failure-" + std::to_string(::getpid()) + "-" + name;
}

// One attempt of a family: the API call(s), run with an allocation failed. It must not
// allocate itself (buffers are made outside); `Check` then runs with nothing failed:
// it verifies a successful result and releases what the call created.
using Attempt = std::function<ember_status()>;
using Check = std::function<void(ember_status)>;

struct Outcome {
  uint64_t allocations = 0;  // of one successful run
  int runs = 0, errors = 0;
};

ember_status run_once(const Attempt& attempt, const Check& check) {
  const ember_status st = attempt();
  if (check) check(st);
  return st;
}

// Runs `attempt` with its Nth allocation failed for the N of the schedule (see the top).
Outcome fail_each_allocation(const char* family, const Attempt& attempt, const Check& check = {},
                             Schedule schedule = kRuntime) {
  Outcome o;
  alloc::Arm();
  const ember_status clean = attempt();
  o.allocations = alloc::Disarm();
  if (check) check(clean);
  EXPECT_EQ(clean, EMBER_OK) << family << ": fails without injected failures: " << ember_last_error();
  if (clean != EMBER_OK) return o;
  for (uint64_t n = 1;; n = n < schedule.dense ? n + 1 : static_cast<uint64_t>(std::ceil(n * schedule.growth))) {
    alloc::FailNth(n, kSpared);
    const ember_status st = attempt();
    const bool injected = alloc::FailedAllocations() > 0;
    alloc::FailNth(0);
    if (check) check(st);
    ++o.runs;
    if (!injected) {  // the call made fewer than n allocations: it ran untouched
      EXPECT_EQ(st, EMBER_OK) << family << ", N = " << n << ": " << ember_last_error();
      break;
    }
    if (st == EMBER_OK) continue;  // survived the failure (its result was checked)
    ++o.errors;
    const bool has_message = *ember_last_error() != '\0';
    EXPECT_TRUE(has_message) << family << ", N = " << n << ": status " << ember_status_name(st)
                             << " without a message";
    if (!schedule.retry_each && o.errors > 1) continue;
    const ember_status again = run_once(attempt, check);
    EXPECT_EQ(again, EMBER_OK) << family << ": after failing allocation " << n << " (" << ember_status_name(st)
                               << "), the same call fails: " << ember_last_error();
    if (!has_message || again != EMBER_OK) break;  // one report per family is enough
  }
  std::printf("[ family ] %-22s %6llu allocations, %4d runs, %4d error statuses\n", family,
              static_cast<unsigned long long>(o.allocations), o.runs, o.errors);
  if (o.allocations > 0) {
    EXPECT_GT(o.errors, 0) << family << ": no injected failure reached the API (is the hook linked?)";
  }
  return o;
}

struct Fixture {
  ember_model* model = nullptr;
  ember_context* ctx = nullptr;
  ~Fixture() {
    ember_context_free(ctx);
    ember_model_free(model);
  }
};

// A model and a 1-thread context (no failures injected while they are made).
bool open(const std::string& path, int32_t n_ctx, Fixture* f) {
  if (ember_model_load(path.c_str(), nullptr, &f->model) != EMBER_OK) {
    ADD_FAILURE() << ember_last_error();
    return false;
  }
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = n_ctx;
  cp.n_threads = 1;
  if (ember_context_create(f->model, &cp, &f->ctx) != EMBER_OK) {
    ADD_FAILURE() << ember_last_error();
    return false;
  }
  return true;
}

// ---- runtime (ember.h) --------------------------------------------------------------------

TEST(CapiFailure, ModelLoad) {
  const std::string path = fixture(kStories);
  ember_model* m = nullptr;
  fail_each_allocation(
      "model load", [&] { return ember_model_load(path.c_str(), nullptr, &m); },
      [&](ember_status st) {
        EXPECT_EQ(st == EMBER_OK, m != nullptr);
        ember_model_free(m);
        m = nullptr;
      });
}

// A byte-level BPE vocabulary (Llama 3's 128256 tokens and 280147 merges, PCRE2's
// compiled pattern): hundreds of thousands of allocations, so sampled as the offline families.
TEST(CapiFailure, BpeVocabularyLoad) {
  const std::string path = fixture("tokenizer/llama3-vocab.gguf");
  ember_model_params mp = ember_model_default_params();
  mp.vocab_only = 1;
  ember_model* m = nullptr;
  fail_each_allocation(
      "model load (BPE vocab)", [&] { return ember_model_load(path.c_str(), &mp, &m); },
      [&](ember_status st) {
        EXPECT_EQ(st == EMBER_OK, m != nullptr);
        if (m) { EXPECT_EQ(ember_piece_to_token(m, "<|eot_id|>"), 128009); }
        ember_model_free(m);
        m = nullptr;
      },
      kOffline);
}

TEST(CapiFailure, TokenizeDetokenize) {
  Fixture f;
  ASSERT_TRUE(open(fixture(kStories), 64, &f));
  const std::string text = "Once upon a time, there was a little girl.";
  std::vector<int32_t> ref(64), ids(64);
  size_t n_ref = 0, n = 0;
  ASSERT_EQ(ember_tokenize(f.model, text.data(), text.size(), -1, 1, ref.data(), ref.size(), &n_ref), EMBER_OK);
  ref.resize(n_ref);
  fail_each_allocation(
      "tokenize", [&] { return ember_tokenize(f.model, text.data(), text.size(), -1, 1, ids.data(), ids.size(), &n); },
      [&](ember_status st) {
        if (st == EMBER_OK) { EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + n), ref); }
      });
  char buf[256];
  fail_each_allocation(
      "detokenize", [&] { return ember_detokenize(f.model, ref.data(), ref.size(), 0, buf, sizeof buf, &n); },
      [&](ember_status st) {
        if (st == EMBER_OK) { EXPECT_EQ(std::string(buf, n), text); }
      });
}

TEST(CapiFailure, ContextCreate) {
  Fixture f;
  ASSERT_TRUE(open(fixture(kStories), 64, &f));
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 64;
  cp.n_threads = 2;  // the thread pool starts a worker (on the first eval)
  ember_context* c = nullptr;
  const int32_t bos = 1;
  fail_each_allocation(
      "context create + eval",
      [&] {
        ember_status st = ember_context_create(f.model, &cp, &c);
        if (st == EMBER_OK) st = ember_eval(c, &bos, 1);
        return st;
      },
      [&](ember_status) {
        ember_context_free(c);
        c = nullptr;
      });
}

TEST(CapiFailure, EvalAndGenerate) {
  Fixture f;
  ASSERT_TRUE(open(fixture(kStories), 64, &f));
  const std::vector<int32_t> prompt = {1, 403, 407, 261};
  // Evaluating allocates nothing (test_memory proves it per token): nothing to fail.
  const Outcome eval = fail_each_allocation("eval", [&] {
    ember_context_reset(f.ctx);
    return ember_eval(f.ctx, prompt.data(), prompt.size());
  });
  EXPECT_EQ(eval.allocations, 0u);
  ember_generate_params gp = ember_generate_default_params();
  gp.max_tokens = 4;
  gp.sampling.temperature = 0;
  ember_generate_result r;
  fail_each_allocation(
      "generate", [&] { return ember_generate(f.ctx, "Once upon a time", &gp, &r); },
      [&](ember_status st) {
        if (st == EMBER_OK) { EXPECT_EQ(r.n_generated, 4); }
      });
}

// Continuing from the cache: each attempt starts from the same cached prompt.
TEST(CapiFailure, GenerateContinueAndTruncate) {
  Fixture f;
  ASSERT_TRUE(open(fixture(kStories), 64, &f));
  const std::vector<int32_t> prompt = {1, 403, 407, 261}, more = {378, 261};
  ember_generate_params gp = ember_generate_default_params();
  gp.max_tokens = 4;
  gp.sampling.temperature = 0;
  ember_generate_result r;
  fail_each_allocation(
      "generate continue",
      [&] {
        ember_status st = ember_context_truncate(f.ctx, 0);
        if (st == EMBER_OK) st = ember_eval(f.ctx, prompt.data(), prompt.size());
        if (st == EMBER_OK) st = ember_generate_continue(f.ctx, more.data(), more.size(), &gp, &r);
        return st;
      },
      [&](ember_status st) {
        if (st == EMBER_OK) { EXPECT_EQ(r.n_generated, 4); }
      });
}

// Saved state: a failed save leaves no file behind it, a failed load a reset context; prompt
// reuse (ember_eval_prompt) allocates nothing.
TEST(CapiFailure, SaveLoadStateAndEvalPrompt) {
  Fixture f, g;
  ASSERT_TRUE(open(fixture(kStories), 64, &f));
  ASSERT_TRUE(open(fixture(kStories), 64, &g));
  const std::vector<int32_t> prompt = {1, 403, 407, 261};
  ASSERT_EQ(ember_eval(f.ctx, prompt.data(), prompt.size()), EMBER_OK);
  const Outcome reuse = fail_each_allocation("eval prompt", [&] {
    int32_t reused = 0;
    return ember_eval_prompt(f.ctx, prompt.data(), prompt.size(), &reused);
  });
  EXPECT_EQ(reuse.allocations, 0u);
  const std::string path = temp_path("state");
  fail_each_allocation(
      "save and load state",
      [&] {
        std::remove(path.c_str());
        ember_context_reset(g.ctx);
        ember_status st = ember_context_save(f.ctx, path.c_str());
        if (st == EMBER_OK) st = ember_context_load(g.ctx, path.c_str());
        return st;
      },
      [&](ember_status st) {
        if (st == EMBER_OK) EXPECT_EQ(ember_n_past(g.ctx), 4);
        else EXPECT_EQ(ember_n_past(g.ctx), 0);
      });
  std::remove(path.c_str());
}

// Chat templates and a byte-level BPE vocabulary (Llama 3's, vocabulary only).
TEST(CapiFailure, ChatTemplateAndBpeTokenize) {
  ember_model_params mp = ember_model_default_params();
  mp.vocab_only = 1;
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(fixture("tokenizer/llama3-vocab.gguf").c_str(), &mp, &m), EMBER_OK) << ember_last_error();
  const ember_chat_message msgs[2] = {{"system", "Be brief."}, {"user", "Hello, world!"}};
  std::vector<char> ref(4096), buf(4096);
  size_t n_ref = 0, n = 0;
  ASSERT_EQ(ember_chat_apply_template(m, nullptr, msgs, 2, 1, ref.data(), ref.size(), &n_ref), EMBER_OK);
  fail_each_allocation(
      "chat template", [&] { return ember_chat_apply_template(m, nullptr, msgs, 2, 1, buf.data(), buf.size(), &n); },
      [&](ember_status st) {
        if (st == EMBER_OK) { EXPECT_EQ(std::string(buf.data(), n), std::string(ref.data(), n_ref)); }
      });
  int32_t eot[8];
  fail_each_allocation(
      "end-of-turn tokens", [&] { return ember_chat_end_of_turn_tokens(m, nullptr, eot, 8, &n); },
      [&](ember_status st) {
        if (st == EMBER_OK) { EXPECT_EQ(std::vector<int32_t>(eot, eot + n), std::vector<int32_t>{128009}); }
      });
  const std::string text(ref.data(), n_ref);
  std::vector<int32_t> ids_ref(256), ids(256);
  size_t n_ids_ref = 0;
  ASSERT_EQ(ember_tokenize(m, text.data(), text.size(), 0, 1, ids_ref.data(), ids_ref.size(), &n_ids_ref), EMBER_OK);
  ids_ref.resize(n_ids_ref);
  fail_each_allocation(
      "tokenize (BPE)", [&] { return ember_tokenize(m, text.data(), text.size(), 0, 1, ids.data(), ids.size(), &n); },
      [&](ember_status st) {
        if (st == EMBER_OK) { EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + n), ids_ref); }
      });
  ember_model_free(m);
}

TEST(CapiFailure, FunctionsAndCall) {
  Fixture f;
  ASSERT_TRUE(open(octopus(), 256, &f));
  const std::vector<uint8_t> json = testing::read_file(octopus_functions());
  ASSERT_FALSE(json.empty());
  ember_functions* fns = nullptr;
  auto check_and_free = [&](ember_status st) {
    if (st == EMBER_OK) { EXPECT_EQ(ember_functions_count(fns), 24); }
    ember_functions_free(fns);
    fns = nullptr;
  };
  fail_each_allocation(
      "functions parse",
      [&] { return ember_functions_parse(f.model, reinterpret_cast<const char*>(json.data()), json.size(), &fns); },
      check_and_free);
  fail_each_allocation(
      "functions load", [&] { return ember_functions_load(f.model, nullptr, &fns); }, check_and_free);

  ASSERT_EQ(ember_functions_load(f.model, nullptr, &fns), EMBER_OK) << ember_last_error();
  ember_call_params cp = ember_call_default_params();
  cp.max_tokens = 24;
  ember_call_result r;
  fail_each_allocation(
      "call", [&] { return ember_call(f.ctx, fns, "What's the weather in Paris?", &cp, &r); },
      [&](ember_status st) {
        if (st != EMBER_OK) return;
        EXPECT_STREQ(r.function, "get_weather");
        ember_call_result_free(&r);
      });
  ember_functions_free(fns);
}

TEST(CapiFailure, LoraLoadSetRemove) {
  Fixture f;
  ASSERT_TRUE(open(octopus(), 64, &f));
  const std::string home = adapter("lora-home.gguf");
  ember_lora* l = nullptr;
  fail_each_allocation(
      "lora load", [&] { return ember_lora_load(f.model, home.c_str(), &l); },
      [&](ember_status st) {
        EXPECT_EQ(st == EMBER_OK, l != nullptr);
        ember_lora_free(l);
        l = nullptr;
      });
  ASSERT_EQ(ember_lora_load(f.model, home.c_str(), &l), EMBER_OK) << ember_last_error();
  int32_t n_set = -1;
  fail_each_allocation(
      "lora set/remove",
      [&] {
        ember_status st = ember_context_set_lora(f.ctx, l, 0.5f);
        n_set = ember_context_n_loras(f.ctx);
        if (st == EMBER_OK) st = ember_context_remove_lora(f.ctx, l);
        return st;
      },
      [&](ember_status st) {
        // Whatever failed, the context is whole: the set took or did not, and clearing works.
        EXPECT_TRUE(n_set == 0 || n_set == 1);
        EXPECT_EQ(ember_context_clear_loras(f.ctx), EMBER_OK) << ember_last_error();
        EXPECT_EQ(ember_context_n_loras(f.ctx), 0);
      });
  ember_lora_free(l);
}

// ---- offline (ember_tools.h) ----------------------------------------------------------------

TEST(CapiFailure, SynthAndQuantize) {
  const std::string model = temp_path("tiny-f32.gguf"), out = temp_path("out.gguf");
  ember_synth_params sp = ember_synth_default_params();  // "tiny": 2 layers, n_embd 256
  sp.n_threads = 1;
  auto remove_out = [&](ember_status) { std::remove(out.c_str()); };
  fail_each_allocation("synth", [&] { return ember_synth_file(out.c_str(), &sp); }, remove_out, kOffline);
  ASSERT_EQ(ember_synth_file(model.c_str(), &sp), EMBER_OK) << ember_last_error();
  ember_quantize_params qp = ember_quantize_default_params();
  qp.n_threads = 1;
  fail_each_allocation(
      "quantize", [&] { return ember_quantize_file(model.c_str(), out.c_str(), "q8_0", &qp); }, remove_out,
      kOffline);
  std::remove(model.c_str());
}

TEST(CapiFailure, LoraBlendMergeSave) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(octopus().c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
  ember_lora *home = nullptr, *phone = nullptr;
  ASSERT_EQ(ember_lora_load(m, adapter("lora-home.gguf").c_str(), &home), EMBER_OK) << ember_last_error();
  ASSERT_EQ(ember_lora_load(m, adapter("lora-phone.gguf").c_str(), &phone), EMBER_OK) << ember_last_error();
  const ember_lora* both[] = {home, phone};
  const float weights[] = {0.5f, 0.5f};
  const std::string out = temp_path("lora.gguf");
  auto remove_out = [&](ember_status) { std::remove(out.c_str()); };
  fail_each_allocation("lora save", [&] { return ember_lora_save(home, out.c_str()); }, remove_out, kOffline);
  fail_each_allocation(
      "lora blend (svd)", [&] { return ember_lora_blend(m, both, weights, 2, EMBER_LORA_BLEND_SVD, 4, out.c_str()); },
      remove_out, kOffline);
  fail_each_allocation(
      "lora merge", [&] { return ember_lora_merge(m, both, weights, 2, "q8_0", out.c_str()); }, remove_out,
      kOffline);
  ember_lora_free(phone);
  ember_lora_free(home);
  ember_model_free(m);
}

// The guard's other half: NULL handles and out-pointers are INVALID_ARGUMENT, named.
TEST(CapiFailure, NullArgumentsAreInvalidArgument) {
  EXPECT_EQ(ember_model_load(nullptr, nullptr, nullptr), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("ember_model_load: path is NULL"), std::string::npos)
      << ember_last_error();
  EXPECT_EQ(ember_eval(nullptr, nullptr, 0), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("ember_eval: ctx is NULL"), std::string::npos);
  EXPECT_EQ(ember_context_set_lora(nullptr, nullptr, 1), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_lora_blend(nullptr, nullptr, nullptr, 0, 0, 0, nullptr), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_quantize_file(nullptr, nullptr, nullptr, nullptr), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_piece_to_token(nullptr, "a"), -1);
  EXPECT_EQ(ember_token_piece(nullptr, 0), nullptr);
  EXPECT_EQ(ember_context_n_loras(nullptr), 0);
  ember_model_free(nullptr);  // no-ops
  ember_context_free(nullptr);
  ember_lora_free(nullptr);
}

}  // namespace
}  // namespace ember
