// Memory accounting (DESIGN.md "Memory is planned up front"): decoding a token
// allocates nothing, and the context's plan (ember_context_memory: mapped model +
// KV cache + scratch) predicts the peak resident memory of a full context.
//
// How allocations are counted: tests/support/alloc_hook.h replaces the process's
// allocator (operator new/delete and malloc & co.), so an allocation anywhere, on any
// thread, is seen; that is why this test is its own executable. While armed, each
// allocation increments an atomic counter, and the call stacks of the first few are
// kept to name the culprit when a test fails.
//
// RSS: VmHWM (peak resident set) is reset to the current RSS through
// /proc/self/clear_refs, the model is loaded and a context filled to n_ctx, and the
// growth of the peak is compared with the plan. Tolerance 10 % (the spec's figure).
// What legitimately lies outside the plan: the model's heap (mostly the tokenizer's
// tables: 160 KiB for the 512-token vocabularies, 600 KiB for octopus-tiny's 2048;
// measured through the allocator hook and printed), page rounding and malloc
// overhead (~200 KiB), and, the first time in a process, code pages of the
// libraries and the thread pool's stack (~1.5 MiB, printed as "first in process";
// the asserted figure is a second load after everything was freed). These fixed
// costs are why the comparison is asserted only for plans of at least
// kMinPlanForRss bytes; smaller ones are printed. Under qemu-user /proc/self
// describes the emulator, so only the RSS comparison is skipped there.
#include <execinfo.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "ember/ember.h"
#include "ember/ember_tools.h"
#include "engine/model/context.h"
#include "engine/generate/generator.h"
#include "engine/model/model.h"
#include "engine/generate/sampler.h"
#include "support/alloc_hook.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using testing::fixture;

// Keeps the compiler from eliding an allocation/free pair it can see (it may).
template <class T>
T* escape(T* p) {
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

// Counts the allocations of every thread between construction and Stop().
class AllocationCounter {
 public:
  AllocationCounter() { testing::alloc::Arm(); }
  ~AllocationCounter() { Stop(); }
  uint64_t Stop() { return testing::alloc::Disarm(); }
  // The call stacks of the first allocations, one frame a line ("" if none).
  static std::string Stacks() { return testing::alloc::Stacks(); }
};

// Smaller samples under emulation (cross builds run under qemu, ~20x slower).
#ifdef EMBER_TEST_EMULATOR
constexpr int kDecodeTokens = 8;
#else
constexpr int kDecodeTokens = 32;
#endif

struct ModelDeleter { void operator()(ember_model* m) const { ember_model_free(m); } };
struct ContextDeleter { void operator()(ember_context* c) const { ember_context_free(c); } };
struct LoraDeleter { void operator()(ember_lora* l) const { ember_lora_free(l); } };
using ModelPtr = std::unique_ptr<ember_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<ember_context, ContextDeleter>;
using LoraPtr = std::unique_ptr<ember_lora, LoraDeleter>;

ModelPtr load(const std::string& rel) {
  ember_model* m = nullptr;
  EXPECT_EQ(ember_model_load(fixture(rel).c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
  return ModelPtr(m);
}

// type: the KV cache's, for keys and values; n_batch 0: the default.
ContextPtr create(ember_model* m, int32_t n_ctx, int32_t n_threads, ember_cache_type type = EMBER_CACHE_F16,
                  int32_t n_batch = 0) {
  ember_context_params p = ember_context_default_params();
  p.n_ctx = n_ctx;
  p.n_threads = n_threads;
  p.n_batch = n_batch;
  p.cache_type_k = p.cache_type_v = type;
  ember_context* c = nullptr;
  EXPECT_EQ(ember_context_create(m, &p, &c), EMBER_OK) << ember_last_error();
  return ContextPtr(c);
}

std::vector<int32_t> tokenize(const ember_model* m, const std::string& text) {
  std::vector<int32_t> ids(text.size() + 2);
  size_t n = 0;
  EXPECT_EQ(ember_tokenize(m, text.data(), text.size(), -1, 1, ids.data(), ids.size(), &n), EMBER_OK)
      << ember_last_error();
  ids.resize(n);
  return ids;
}

int32_t n_vocab(const ember_model* m) {
  ember_model_info info;
  EXPECT_EQ(ember_model_get_info(m, &info), EMBER_OK);
  return info.n_vocab;
}

// The generator's sampling (penalties, top-k, top-p, min-p, temperature, a draw).
SamplerParams full_sampling() {
  SamplerParams p;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.repeat_penalty = 1.1f;
  p.frequency_penalty = 0.1f;
  p.presence_penalty = 0.1f;
  p.seed = 7;
  return p;
}

// Prefills a prompt and decodes one token (first-use costs: thread pool, lazily
// initialised tables), then decodes kDecodeTokens more exactly as the generator
// does -- logits, sample, eval of one token -- with the counter armed. Returns the
// allocations seen; *stacks receives where the first ones happened.
uint64_t decode_allocations(ember_context* c, const ember_model* m, std::string* stacks) {
  const std::vector<int32_t> prompt = tokenize(m, "Once upon a time, there was a little robot who wanted to sail.");
  EXPECT_GT(prompt.size(), 4u);
  std::vector<int32_t> history(static_cast<size_t>(ember_context_n_ctx(c)));  // sized once, like the generator's
  std::copy(prompt.begin(), prompt.end(), history.begin());
  size_t n_history = prompt.size();
  EXPECT_LT(n_history + kDecodeTokens + 1, history.size());
  Sampler sampler(full_sampling(), n_vocab(m));

  EXPECT_EQ(ember_eval(c, prompt.data(), prompt.size()), EMBER_OK) << ember_last_error();
  auto step = [&]() {
    const int32_t id = sampler.Sample(ember_get_logits(c, -1), history.data(), n_history);
    history[n_history++] = id;
    return ember_eval(c, &id, 1) == EMBER_OK;
  };
  EXPECT_TRUE(step()) << ember_last_error();  // warm-up

  AllocationCounter counter;
  bool ok = true;
  for (int i = 0; i < kDecodeTokens; ++i) ok = step() && ok;
  const uint64_t n = counter.Stop();
  EXPECT_TRUE(ok) << ember_last_error();
  EXPECT_EQ(ember_n_past(c), static_cast<int32_t>(n_history));
  if (n) *stacks = AllocationCounter::Stacks();
  return n;
}

// ---- the hook itself -------------------------------------------------------------------

// The counter must see every way a library can allocate, or "zero" proves nothing.
TEST(MemoryHook, CountsEveryAllocatorAndEveryThread) {
  auto count = [](auto&& f) {
    AllocationCounter counter;
    f();
    return counter.Stop();
  };
  EXPECT_EQ(count([] { std::free(escape(std::malloc(24))); }), 1u);
  EXPECT_EQ(count([] { std::free(escape(std::calloc(3, 8))); }), 1u);
  EXPECT_EQ(count([] { std::free(escape(std::realloc(nullptr, 40))); }), 1u);
  EXPECT_EQ(count([] {
              void* p = nullptr;
              EXPECT_EQ(posix_memalign(&p, 64, 100), 0);
              std::free(escape(p));
            }), 1u);
  EXPECT_EQ(count([] { std::free(escape(aligned_alloc(64, 128))); }), 1u);
  EXPECT_EQ(count([] { std::free(escape(memalign(64, 128))); }), 1u);
  EXPECT_EQ(count([] { delete escape(new int(1)); }), 1u);
  EXPECT_EQ(count([] { delete[] escape(new int[9]); }), 1u);
  struct alignas(128) Wide { char c[128]; };
  EXPECT_EQ(count([] { delete escape(new Wide); }), 1u);
  EXPECT_EQ(count([] { delete[] escape(new (std::nothrow) Wide[2]); }), 1u);
  // Allocations made inside shared libraries (libc's strdup, libstdc++'s string) and
  // on other threads.
  EXPECT_EQ(count([] { std::free(escape(strdup("a string for libc to copy"))); }), 1u);
  EXPECT_GE(count([] {
              std::string s(100, 'x');
              escape(s.data());
            }), 1u);
  EXPECT_GE(count([] {
              std::vector<std::unique_ptr<int>> v;
              std::thread t([&] { v.push_back(std::make_unique<int>(1)); });
              t.join();
            }), 2u);
  EXPECT_EQ(count([] {}), 0u);
  // The live-bytes gauge follows allocations and frees.
  const int64_t before = testing::alloc::LiveBytes();
  void* p = escape(std::malloc(1 << 20));
  EXPECT_GE(testing::alloc::LiveBytes() - before, 1 << 20);
  std::free(p);
  EXPECT_EQ(testing::alloc::LiveBytes(), before);
}

// ---- decoding allocates nothing ---------------------------------------------------------

struct DecodeCase {
  const char* name;
  const char* file;
  int32_t threads;
};
// ctest's listing shows the case, not the struct's bytes.
void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.file << ", " << c.threads << " threads"; }

class MemoryDecode : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(MemoryDecode, NoAllocationPerToken) {
  const DecodeCase& k = GetParam();
  ModelPtr m = load(k.file);
  ASSERT_TRUE(m);
  ContextPtr c = create(m.get(), 0, k.threads);
  ASSERT_TRUE(c);
  std::string stacks;
  EXPECT_EQ(decode_allocations(c.get(), m.get(), &stacks), 0u)
      << k.file << ", " << k.threads << " threads: allocations while decoding " << kDecodeTokens << " tokens\n"
      << stacks;
}

// F32 llama (untied output), Q4_0 llama, Q8_0 Gemma, Gemma 2 (sliding window,
// soft-caps), F16 (stories260K), and the trained Gemma (octopus-tiny) in Q8_0/Q4_0:
// every matmul path (float, F16, quantized activations) and attention variant. One
// thread matters as much as two: with OpenMP (before commit 3677528) a serialized
// `parallel if (false)` region made libgomp allocate a team each time, one allocation
// per layer per token, which this test reported.
const DecodeCase kDecodeCases[] = {
    {"llama_f32_1t", "models/tiny-llama-gqa-f32.gguf", 1},
    {"llama_f32_2t", "models/tiny-llama-gqa-f32.gguf", 2},
    {"llama_q4_0_1t", "models/tiny-llama-gqa-q4_0.gguf", 1},
    {"llama_q4_0_2t", "models/tiny-llama-gqa-q4_0.gguf", 2},
    {"gemma_q8_0_1t", "models/tiny-gemma-q8_0.gguf", 1},
    {"gemma_q8_0_2t", "models/tiny-gemma-q8_0.gguf", 2},
    {"gemma2_f32_1t", "models/tiny-gemma2-f32.gguf", 1},
    {"gemma2_f32_2t", "models/tiny-gemma2-f32.gguf", 2},
    {"stories_f16_1t", "models/stories260K-f16.gguf", 1},
    {"stories_f16_2t", "models/stories260K-f16.gguf", 2},
    {"octopus_q8_0_1t", "models/octopus-tiny/octopus-tiny-q8_0.gguf", 1},
    {"octopus_q8_0_2t", "models/octopus-tiny/octopus-tiny-q8_0.gguf", 2},
    {"octopus_q4_0_2t", "models/octopus-tiny/octopus-tiny-q4_0.gguf", 2},
};
INSTANTIATE_TEST_SUITE_P(Fixtures, MemoryDecode, ::testing::ValuesIn(kDecodeCases),
                         [](const ::testing::TestParamInfo<DecodeCase>& i) { return std::string(i.param.name); });

// Every cache type: storing a row (f16 conversion, q8_0 quantization) and attention over
// stored rows use no scratch but the context's. Gemma 2 with n_batch 16: its sliding-window
// layers keep a ring of 8 + 16 cells, which the prompt and the decoded tokens wrap.
struct CacheTypeCase {
  const char* name;
  const char* file;
  ember_cache_type type;
  int32_t threads, n_batch;
};
void PrintTo(const CacheTypeCase& c, std::ostream* os) {
  *os << c.file << ", cache " << ember_cache_type_name(c.type) << ", " << c.threads << " threads";
}

class MemoryDecodeCacheType : public ::testing::TestWithParam<CacheTypeCase> {};

TEST_P(MemoryDecodeCacheType, NoAllocationPerToken) {
  const CacheTypeCase& k = GetParam();
  ModelPtr m = load(k.file);
  ASSERT_TRUE(m);
  ContextPtr c = create(m.get(), 0, k.threads, k.type, k.n_batch);
  ASSERT_TRUE(c);
  std::string stacks;
  EXPECT_EQ(decode_allocations(c.get(), m.get(), &stacks), 0u)
      << k.file << ", cache " << ember_cache_type_name(k.type) << ", " << k.threads << " threads: allocations while "
      << "decoding " << kDecodeTokens << " tokens\n" << stacks;
}

const CacheTypeCase kCacheTypeCases[] = {
    {"gemma2_ring_f32_1t", "models/tiny-gemma2-f32.gguf", EMBER_CACHE_F32, 1, 16},
    {"gemma2_ring_f16_1t", "models/tiny-gemma2-f32.gguf", EMBER_CACHE_F16, 1, 16},
    {"gemma2_ring_q8_0_1t", "models/tiny-gemma2-f32.gguf", EMBER_CACHE_Q8_0, 1, 16},
    {"gemma2_ring_f32_2t", "models/tiny-gemma2-f32.gguf", EMBER_CACHE_F32, 2, 16},
    {"gemma2_ring_f16_2t", "models/tiny-gemma2-f32.gguf", EMBER_CACHE_F16, 2, 16},
    {"gemma2_ring_q8_0_2t", "models/tiny-gemma2-f32.gguf", EMBER_CACHE_Q8_0, 2, 16},
    {"llama_q4_0_f32_2t", "models/tiny-llama-gqa-q4_0.gguf", EMBER_CACHE_F32, 2, 0},
    {"llama_q4_0_f16_2t", "models/tiny-llama-gqa-q4_0.gguf", EMBER_CACHE_F16, 2, 0},
    {"octopus_q8_0_f32_2t", "models/octopus-tiny/octopus-tiny-q8_0.gguf", EMBER_CACHE_F32, 2, 0},
    {"octopus_q8_0_q8_0_1t", "models/octopus-tiny/octopus-tiny-q8_0.gguf", EMBER_CACHE_Q8_0, 1, 0},
    {"octopus_q8_0_q8_0_2t", "models/octopus-tiny/octopus-tiny-q8_0.gguf", EMBER_CACHE_Q8_0, 2, 0},
};
INSTANTIATE_TEST_SUITE_P(Fixtures, MemoryDecodeCacheType, ::testing::ValuesIn(kCacheTypeCases),
                         [](const ::testing::TestParamInfo<CacheTypeCase>& i) { return std::string(i.param.name); });

// Two contexts with different thread counts used in turn from one thread: each owns its
// pool, so switching costs no thread start and no allocation (a pool per calling thread,
// sized by the last request, was re-created at every switch before commit 8a53e23).
TEST(MemoryThreads, AlternatingContextsAllocateNothing) {
  ModelPtr m = load("models/tiny-llama-gqa-q4_0.gguf");
  ASSERT_TRUE(m);
  ContextPtr a = create(m.get(), 0, 2), b = create(m.get(), 0, 3);
  ASSERT_TRUE(a && b);
  const std::vector<int32_t> prompt = tokenize(m.get(), "Once upon a time");
  const int32_t nv = n_vocab(m.get());
  auto greedy_step = [nv](ember_context* c) {
    const float* l = ember_get_logits(c, -1);
    const int32_t id = static_cast<int32_t>(std::max_element(l, l + nv) - l);
    return ember_eval(c, &id, 1) == EMBER_OK;
  };
  for (ember_context* c : {a.get(), b.get()}) {  // prefill and warm-up
    ASSERT_EQ(ember_eval(c, prompt.data(), prompt.size()), EMBER_OK) << ember_last_error();
    ASSERT_TRUE(greedy_step(c));
  }
  AllocationCounter counter;
  bool ok = true;
  for (int i = 0; i < kDecodeTokens; ++i) ok = greedy_step(i % 2 ? a.get() : b.get()) && ok;
  const uint64_t n = counter.Stop();
  EXPECT_TRUE(ok) << ember_last_error();
  EXPECT_EQ(n, 0u) << "allocations while alternating contexts of 2 and 3 threads\n" << AllocationCounter::Stacks();
}

// With a LoRA adapter set (the C API's adapter set becomes the context's projection
// delta): its scratch is sized when the adapter is set, never per token.
TEST(MemoryLora, NoAllocationPerToken) {
  ModelPtr m = load("models/octopus-tiny/octopus-tiny.gguf");
  ASSERT_TRUE(m);
  ember_lora* l = nullptr;
  ASSERT_EQ(ember_lora_load(m.get(), fixture("models/octopus-tiny/lora-phone.gguf").c_str(), &l), EMBER_OK)
      << ember_last_error();
  LoraPtr lora(l);
  for (int32_t threads : {1, 2}) {
    ContextPtr c = create(m.get(), 0, threads);
    ASSERT_TRUE(c);
    ASSERT_EQ(ember_context_set_lora(c.get(), lora.get(), 1.0f), EMBER_OK) << ember_last_error();
    ASSERT_EQ(ember_context_n_loras(c.get()), 1);
    std::string stacks;
    EXPECT_EQ(decode_allocations(c.get(), m.get(), &stacks), 0u)
        << "octopus-tiny + lora-phone, " << threads << " threads\n" << stacks;
  }
}

// The sampler alone, in every mode the generator uses: greedy, the full chain with
// penalties, and temperature without top-k (a sort of the whole vocabulary).
TEST(MemorySampler, AllocatesNothing) {
  const int32_t n_vocab = 2048;
  std::vector<float> logits(n_vocab);
  for (int32_t i = 0; i < n_vocab; ++i) logits[i] = std::sin(0.37f * i) * 8.0f;
  std::vector<int32_t> history(256);
  for (size_t i = 0; i < history.size(); ++i) history[i] = static_cast<int32_t>(i * 13 % n_vocab);
  SamplerParams greedy;
  greedy.temperature = 0;
  SamplerParams no_top_k = full_sampling();
  no_top_k.top_k = 0;
  no_top_k.top_p = 1.0f;
  no_top_k.min_p = 0;
  for (const SamplerParams& p : {greedy, full_sampling(), no_top_k}) {
    Sampler s(p, n_vocab);
    s.Sample(logits.data(), history.data(), history.size());
    AllocationCounter counter;
    bool in_range = true;
    for (int i = 0; i < 64; ++i) {
      const int32_t id = s.Sample(logits.data(), history.data(), 1 + i * 3);
      in_range = in_range && id >= 0 && id < n_vocab;
    }
    EXPECT_EQ(counter.Stop(), 0u) << "temperature " << p.temperature << ", top_k " << p.top_k << "\n"
                                  << AllocationCounter::Stacks();
    EXPECT_TRUE(in_range);
  }
}

// The generator's loop (engine/generate/generator.h) from the second token's callback to the
// end: sampling, stop checks, text release and the one-token eval. One known
// exception: GenerateResult::text collects the whole output and grows geometrically
// (engine/generate/generator.cpp, r.text.append), so the loop may allocate once per doubling
// of the text -- a bound of 1 + log2(length / 15) (15: libstdc++'s in-place string
// capacity) -- and nothing else. The C API discards that text.
// The generator's loop (sampling with every filter, a stop string held back, the
// callback): nothing when the text goes only to the callback (collect_text = false, as
// the C API runs it); collecting GenerateResult::text costs only its doublings.
TEST(MemoryGenerate, DecodeLoopAllocatesNothingUnlessItCollectsTheText) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(fixture("models/octopus-tiny/octopus-tiny-q8_0.gguf"), {}, &m);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ContextParams cp;
  cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
  cp.n_threads = 2;
  std::unique_ptr<Context> c;
  ASSERT_TRUE(Context::Create(*m, cp, &c).ok());
  std::vector<int32_t> prompt;
  ASSERT_TRUE(m->tokenizer().Encode("Once upon a time, there was a little robot", true, true, &prompt).ok());
  for (bool collect : {false, true}) {
    SCOPED_TRACE(collect ? "collect_text" : "callback only");
    GenerateParams gp;
    gp.sampling = full_sampling();
    gp.max_tokens = kDecodeTokens + 2;
    gp.stop_at_eos = false;
    gp.stop_strings = {"never appears in the output"};
    gp.collect_text = collect;
    std::optional<AllocationCounter> counter;
    int calls = 0;
    size_t text_bytes = 0;
    TokenCallback on_token = [&](int32_t, std::string_view text) {
      text_bytes += text.size();
      if (++calls == 2) counter.emplace();
      return true;
    };
    GenerateResult r;
    s = Generate(*c, prompt.data(), prompt.size(), gp, on_token, &r);
    const uint64_t n = counter ? counter->Stop() : 0;
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(calls, gp.max_tokens);
    ASSERT_GT(text_bytes, 0u);
    if (!collect) {
      EXPECT_EQ(r.text, "");
      EXPECT_EQ(n, 0u) << AllocationCounter::Stacks();
    } else {
      EXPECT_EQ(r.text.size(), text_bytes);
      // std::string doubles from its 15-byte inline buffer.
      const uint64_t text_growths =
          r.text.size() > 15 ? 1 + static_cast<uint64_t>(std::log2(static_cast<double>(r.text.size()) / 15.0)) : 0;
      EXPECT_LE(n, text_growths) << r.text.size() << " bytes of text\n" << AllocationCounter::Stacks();
    }
    std::printf("[ memory ] generator loop (%s): %llu allocations for %zu bytes of text over %d tokens\n",
                collect ? "collect_text" : "callback only", static_cast<unsigned long long>(n), text_bytes,
                gp.max_tokens - 1);
  }
}

// ---- the plan ---------------------------------------------------------------------------

TEST(MemoryPlan, PartsAddUpAndMatchTheShapes) {
  ModelPtr m = load("models/tiny-gemma2-f32.gguf");
  ASSERT_TRUE(m);
  ember_model_info info;
  ASSERT_EQ(ember_model_get_info(m.get(), &info), EMBER_OK);
  for (int32_t n_ctx : {32, 256}) {
    ContextPtr c = create(m.get(), n_ctx, 1);
    ASSERT_TRUE(c);
    ember_memory_plan plan;
    ASSERT_EQ(ember_context_memory(c.get(), &plan), EMBER_OK);
    // The fixture's K and V heads have the same width (head_dim); the default cache is f16;
    // n_batch is n_ctx (the default), so the sliding-window layers' rings (window + n_batch
    // cells, at most n_ctx) are full. Every type and ring: test_kv_cache.cpp.
    const uint64_t kv = 2ull * info.n_layer * info.n_head_kv * n_ctx * info.head_dim * sizeof(uint16_t);
    EXPECT_EQ(plan.kv_bytes, kv);
    EXPECT_EQ(plan.kv_bytes_per_token, kv / n_ctx);
    EXPECT_EQ(plan.kv_bytes + plan.scratch_bytes, ember_context_bytes(c.get()));
    EXPECT_GT(plan.scratch_bytes, 0u);
    EXPECT_EQ(plan.weights_bytes, testing::read_file(fixture("models/tiny-gemma2-f32.gguf")).size());
    EXPECT_GE(plan.weights_bytes, info.weight_bytes);  // the tensors and their metadata
    EXPECT_EQ(plan.total_bytes, plan.weights_bytes + plan.kv_bytes + plan.scratch_bytes);
  }
  ember_memory_plan plan;
  EXPECT_EQ(ember_context_memory(nullptr, &plan), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("ember_context_memory"), std::string::npos);
  ContextPtr c = create(m.get(), 32, 1);
  EXPECT_EQ(ember_context_memory(c.get(), nullptr), EMBER_ERR_INVALID_ARGUMENT);
}

// ---- peak RSS vs the plan ------------------------------------------------------------------

// VmRSS / VmHWM of this process in bytes (0: unavailable).
uint64_t proc_status_bytes(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  const size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, n) == 0 && std::sscanf(line + n, " %llu", &kb) == 1) break;
  std::fclose(f);
  return kb * 1024ull;
}

// VmHWM := VmRSS (Linux >= 4.0).
bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// Plans below this are dominated by fixed costs (a few hundred KiB of code pages,
// heap and page rounding, measured in the table): printed, not asserted.
constexpr uint64_t kMinPlanForRss = 8ull << 20;

struct RssCase {
  const char* name;
  const char* file;
  int32_t n_ctx;  // 0: the model's
  ember_cache_type type = EMBER_CACHE_F16;  // of keys and values
};
void PrintTo(const RssCase& c, std::ostream* os) {
  *os << c.file << ", n_ctx " << c.n_ctx << ", cache " << ember_cache_type_name(c.type);
}

class MemoryRss : public ::testing::TestWithParam<RssCase> {};

struct RssRun {
  ember_memory_plan plan{};
  int32_t n_ctx = 0;
  double growth = 0;      // peak RSS - RSS before loading, bytes
  int64_t model_heap = 0; // bytes the model load left allocated
  uint64_t repacked = 0;  // ember_model_info.repacked_bytes
};

// Loads the model at `path`, fills a context of k.n_ctx tokens (2 threads) and measures
// the peak RSS growth from before the load. Everything is freed again on return.
void measure(const std::string& path, const RssCase& k, RssRun* r) {
  // Freed heap of earlier runs would absorb the new allocations without growing
  // the RSS: give it back first.
  malloc_trim(0);
  const uint64_t rss0 = proc_status_bytes("VmRSS:");
  ASSERT_GT(rss0, 0u) << "no VmRSS in /proc/self/status";
  ASSERT_TRUE(reset_peak_rss()) << "cannot write /proc/self/clear_refs: " << std::strerror(errno);
  const int64_t heap0 = testing::alloc::LiveBytes();

  ember_model* mp = nullptr;
  ASSERT_EQ(ember_model_load(path.c_str(), nullptr, &mp), EMBER_OK) << ember_last_error();
  ModelPtr m(mp);
  r->model_heap = testing::alloc::LiveBytes() - heap0;
  ember_model_info info;
  ASSERT_EQ(ember_model_get_info(m.get(), &info), EMBER_OK);
  r->repacked = info.repacked_bytes;
  ContextPtr c = create(m.get(), k.n_ctx, 2, k.type);
  ASSERT_TRUE(c);
  r->n_ctx = ember_context_n_ctx(c.get());
  const int32_t nv = n_vocab(m.get());
  std::vector<int32_t> ids(static_cast<size_t>(r->n_ctx));
  for (int32_t i = 0; i < r->n_ctx; ++i) ids[i] = i % nv;  // every embedding row, when n_ctx >= n_vocab
  ASSERT_EQ(ember_eval(c.get(), ids.data(), ids.size()), EMBER_OK) << ember_last_error();
  ASSERT_EQ(ember_n_past(c.get()), r->n_ctx);
  r->growth = static_cast<double>(proc_status_bytes("VmHWM:")) - static_cast<double>(rss0);
  ASSERT_EQ(ember_context_memory(c.get(), &r->plan), EMBER_OK);
}

void report_and_check(const RssCase& k, const RssRun& cold, const RssRun& warm);

// Two runs: the first in the process also pays one-time costs that are not the
// model's (code pages of the library, sentencepiece and libstdc++ touched for the
// first time, the thread pool's stack): printed. The second, after everything was
// freed, is what the plan predicts: asserted.
TEST_P(MemoryRss, PeakWithinTenPercentOfPlan) {
#ifdef EMBER_TEST_EMULATOR
  GTEST_SKIP() << "under qemu-user, /proc/self reports the emulator's resident memory, not the program's";
#endif
  const RssCase& k = GetParam();
  RssRun cold, warm;
  ASSERT_NO_FATAL_FAILURE(measure(fixture(k.file), k, &cold));
  ASSERT_NO_FATAL_FAILURE(measure(fixture(k.file), k, &warm));
  report_and_check(k, cold, warm);
}

void report_and_check(const RssCase& k, const RssRun& cold, const RssRun& warm) {
  const ember_memory_plan& plan = warm.plan;
  EXPECT_EQ(plan.total_bytes, cold.plan.total_bytes);
  const double total = static_cast<double>(plan.total_bytes);
  auto kib = [](double b) { return b / 1024.0; };
  std::printf("[ memory ] %-28s n_ctx %5d | plan %6.0f KiB = weights %6.0f + kv %5.0f + scratch %5.0f | peak RSS "
              "growth %6.0f KiB (%+5.1f %%), first in process %6.0f KiB (%+5.1f %%) | model heap %4.0f KiB%s\n",
              k.name, warm.n_ctx, kib(total), kib(plan.weights_bytes), kib(plan.kv_bytes), kib(plan.scratch_bytes),
              kib(warm.growth), 100.0 * (warm.growth / total - 1), kib(cold.growth), 100.0 * (cold.growth / total - 1),
              kib(warm.model_heap), plan.total_bytes >= kMinPlanForRss ? "" : " (small plan: not asserted)");
  if (plan.total_bytes >= kMinPlanForRss) {
    EXPECT_LE(std::fabs(warm.growth / total - 1), 0.10)
        << k.name << ": peak RSS grew " << warm.growth << " bytes, plan " << plan.total_bytes;
  }
}

const RssCase kRssCases[] = {
    {"octopus_f32", "models/octopus-tiny/octopus-tiny.gguf", 0},
    {"octopus_f32_ctx2048", "models/octopus-tiny/octopus-tiny.gguf", 2048},
    {"octopus_f32_ctx2048_kv_f32", "models/octopus-tiny/octopus-tiny.gguf", 2048, EMBER_CACHE_F32},
    {"octopus_f32_ctx2048_kv_q8_0", "models/octopus-tiny/octopus-tiny.gguf", 2048, EMBER_CACHE_Q8_0},
    {"octopus_q8_0", "models/octopus-tiny/octopus-tiny-q8_0.gguf", 0},
    {"octopus_q8_0_ctx2048", "models/octopus-tiny/octopus-tiny-q8_0.gguf", 2048},
    {"octopus_q4_0", "models/octopus-tiny/octopus-tiny-q4_0.gguf", 0},
    {"octopus_q4_0_ctx2048", "models/octopus-tiny/octopus-tiny-q4_0.gguf", 2048},
    {"gemma_f32", "models/tiny-gemma-f32.gguf", 0},
    {"gemma_f32_ctx2048", "models/tiny-gemma-f32.gguf", 2048},
    {"gemma_f32_ctx2048_kv_f32", "models/tiny-gemma-f32.gguf", 2048, EMBER_CACHE_F32},
    {"gemma_f32_ctx2048_kv_q8_0", "models/tiny-gemma-f32.gguf", 2048, EMBER_CACHE_Q8_0},
    {"llama_gqa_f32", "models/tiny-llama-gqa-f32.gguf", 0},
    {"stories_f32", "models/stories260K.gguf", 0},
};
INSTANTIATE_TEST_SUITE_P(Fixtures, MemoryRss, ::testing::ValuesIn(kRssCases),
                         [](const ::testing::TestParamInfo<RssCase>& i) { return std::string(i.param.name); });

// The same check at a real model's size with every layer matrix repacked at load
// (quant/repack.h): SmolLM2-360M's shapes at Q4_0 (218 MiB, synthesized here in a few
// seconds). The plan counts the file, minus the pages the repacking released, plus the
// copies; so a forward pass must read nothing from the released pages (the norms between
// the matrices move with them: engine/model/repack_weights.cpp). Before they moved, each
// norm read mapped a 2 MiB page-cache folio of released matrix bytes back in: +30 %.
TEST(MemoryRssRepacked, ModelOfRealSizeWithinTenPercentOfPlan) {
#ifdef EMBER_TEST_EMULATOR
  GTEST_SKIP() << "under qemu-user, /proc/self reports the emulator's resident memory, not the program's";
#endif
  const std::string path = ::testing::TempDir() + "ember-memory-smollm2-360m-q4_0.gguf";
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } cleanup{path};
  ember_synth_params sp = ember_synth_default_params();
  sp.preset = "smollm2-360m";
  sp.type = "q4_0";
  ASSERT_EQ(ember_synth_file(path.c_str(), &sp), EMBER_OK) << ember_last_error();
  const RssCase k{"smollm2_360m_q4_0", "", 128};
  RssRun cold, warm;
  ASSERT_NO_FATAL_FAILURE(measure(path, k, &cold));
  ASSERT_NO_FATAL_FAILURE(measure(path, k, &warm));
  ASSERT_GT(warm.repacked, 150ull << 20) << "the layer matrices were not repacked (EMBER_KERNELS=reference?)";
  ASSERT_GE(warm.plan.total_bytes, kMinPlanForRss);
  report_and_check(k, cold, warm);
}

}  // namespace
}  // namespace ember
