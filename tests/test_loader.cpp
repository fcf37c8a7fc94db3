// GGUF loader: every real fixture opens with the values its README states; the
// writer round-trips every value type and tensor layout; typed getters convert
// only when the value fits. Malformed files: test_loader_malformed.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "loader/gguf_writer.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using ember::testing::fixture;
using ember::testing::fixtures_dir;
using ember::testing::read_file;

std::unique_ptr<GgufFile> OpenOrFail(const std::string& path) {
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::Open(path, &f);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return f;
}

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Every GGUF under the fixture folders the brief names.
std::vector<std::string> AllFixtureGgufs() {
  std::vector<std::string> out;
  for (const char* dir : {"models", "models/octopus-tiny", "tokenizer"}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(fixtures_dir() + "/" + dir, ec)) {
      if (e.path().extension() == ".gguf") out.push_back(e.path().string());
    }
    EXPECT_FALSE(ec) << dir << ": " << ec.message();
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---- real fixtures ------------------------------------------------------------------

TEST(GgufFixtures, EveryFixtureOpensAndIsConsistent) {
  std::vector<std::string> files = AllFixtureGgufs();
  // 10 models + 7 octopus-tiny files (base, q4_0, q8_0, 4 LoRA) + 2 vocabularies.
  EXPECT_GE(files.size(), 19u);
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    std::unique_ptr<GgufFile> f = OpenOrFail(path);
    ASSERT_NE(f, nullptr);
    EXPECT_TRUE(f->version() == 2 || f->version() == 3);
    std::string arch;
    EXPECT_TRUE(f->GetString("general.architecture", &arch).ok());
    EXPECT_FALSE(arch.empty());
    // Every tensor lies inside the file, aligned, with the bytes its shape needs.
    std::set<std::string> names;
    for (const GgufTensor& t : f->tensors()) {
      EXPECT_TRUE(names.insert(t.name).second) << t.name;
      ASSERT_NE(t.data, nullptr) << t.name;
      size_t at = static_cast<size_t>(t.data - f->file_data());
      EXPECT_EQ(at % f->alignment(), 0u) << t.name;
      EXPECT_LE(at + t.nbytes, f->file_size()) << t.name;
      EXPECT_EQ(t.nbytes, row_bytes(t.type, t.ne[0]) * static_cast<size_t>(t.rows())) << t.name;
      EXPECT_EQ(t.n_elements, static_cast<uint64_t>(t.ne[0] * t.rows())) << t.name;
      EXPECT_EQ(f->FindTensor(t.name), &t);
    }
  }
}

TEST(GgufFixtures, Stories260K) {
  auto f = OpenOrFail(fixture("models/stories260K.gguf"));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  std::string arch;
  ASSERT_TRUE(f->GetString("general.architecture", &arch).ok());
  EXPECT_EQ(arch, "llama");
  uint32_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, ctx = 0;
  ASSERT_TRUE(f->GetU32("llama.embedding_length", &n_embd).ok());
  ASSERT_TRUE(f->GetU32("llama.block_count", &n_layer).ok());
  ASSERT_TRUE(f->GetU32("llama.attention.head_count", &n_head).ok());
  ASSERT_TRUE(f->GetU32("llama.attention.head_count_kv", &n_head_kv).ok());
  ASSERT_TRUE(f->GetU32("llama.feed_forward_length", &n_ff).ok());
  ASSERT_TRUE(f->GetU32("llama.context_length", &ctx).ok());
  EXPECT_EQ(n_embd, 64u);
  EXPECT_EQ(n_layer, 5u);
  EXPECT_EQ(n_head, 8u);
  EXPECT_EQ(n_head_kv, 4u);
  EXPECT_EQ(n_ff, 172u);
  EXPECT_EQ(ctx, 512u);
  float eps = 0, base = 0;
  ASSERT_TRUE(f->GetF32("llama.attention.layer_norm_rms_epsilon", &eps).ok());
  ASSERT_TRUE(f->GetF32("llama.rope.freq_base", &base).ok());
  EXPECT_FLOAT_EQ(eps, 1e-5f);
  EXPECT_FLOAT_EQ(base, 10000.f);
  bool add_bos = false;
  ASSERT_TRUE(f->GetBool("tokenizer.ggml.add_bos_token", &add_bos).ok());
  EXPECT_TRUE(add_bos);

  // The vocabulary: 512 strings, <unk> <s> </s> then the 256 byte tokens.
  std::vector<std::string_view> tokens;
  ASSERT_TRUE(f->GetStringArray("tokenizer.ggml.tokens", &tokens).ok());
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(tokens[258], "<0xFF>");
  std::vector<int32_t> types;
  ASSERT_TRUE(f->GetI32Array("tokenizer.ggml.token_type", &types).ok());
  ASSERT_EQ(types.size(), 512u);
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(types[3], 6);
  EXPECT_EQ(types[300], 1);
  std::vector<float> scores;
  ASSERT_TRUE(f->GetF32Array("tokenizer.ggml.scores", &scores).ok());
  EXPECT_EQ(scores.size(), 512u);

  ASSERT_EQ(f->tensors().size(), 47u);
  const GgufTensor* emb = f->FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, DType::F32);
  EXPECT_EQ(emb->n_dims, 2u);
  EXPECT_EQ(emb->ne[0], 64);
  EXPECT_EQ(emb->ne[1], 512);
  EXPECT_EQ(emb->ne[2], 1);
  EXPECT_EQ(emb->ne[3], 1);
  EXPECT_EQ(emb->rows(), 512);
  EXPECT_EQ(emb->nbytes, 64u * 512u * 4u);
  EXPECT_EQ(f->FindTensor("output.weight"), nullptr);  // tied classifier
  const GgufTensor* norm = f->FindTensor("blk.4.ffn_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->n_dims, 1u);
  EXPECT_EQ(norm->ne[0], 64);
  EXPECT_EQ(norm->ne[1], 1);
  const GgufTensor* down = f->FindTensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->ne[0], 172);
  EXPECT_EQ(down->ne[1], 64);

  // Views point into the file: the bytes match an independent read of it.
  std::vector<uint8_t> raw = read_file(f->path());
  ASSERT_EQ(raw.size(), f->file_size());
  size_t at = static_cast<size_t>(emb->data - f->file_data());
  EXPECT_EQ(std::memcmp(raw.data() + at, emb->data, emb->nbytes), 0);
}

// Tensor type counts from shared/models/README.md.
TEST(GgufFixtures, TensorTypeCountsMatchReadme) {
  const std::map<std::string, std::map<DType, int>> expected = {
      {"memo260K.gguf", {{DType::F32, 47}}},
      {"stories260K-f16.gguf", {{DType::F16, 36}, {DType::F32, 11}}},
      {"stories260K.gguf", {{DType::F32, 47}}},
      {"tiny-gemma-f32.gguf", {{DType::F32, 29}}},
      {"tiny-gemma-q4_0.gguf", {{DType::F32, 7}, {DType::Q4_0, 21}, {DType::Q8_0, 1}}},
      {"tiny-gemma-q8_0.gguf", {{DType::F32, 7}, {DType::Q8_0, 22}}},
      {"tiny-gemma2-f32.gguf", {{DType::F32, 46}}},
      {"tiny-llama-gqa-f32.gguf", {{DType::F32, 39}}},
      {"tiny-llama-gqa-q4_0.gguf", {{DType::F32, 9}, {DType::Q4_0, 29}, {DType::Q8_0, 1}}},
      {"tiny-llama-gqa-q8_0.gguf", {{DType::F32, 9}, {DType::Q8_0, 30}}},
  };
  for (const auto& [file, counts] : expected) {
    SCOPED_TRACE(file);
    auto f = OpenOrFail(fixture("models/" + file));
    ASSERT_NE(f, nullptr);
    std::map<DType, int> got;
    for (const GgufTensor& t : f->tensors()) ++got[t.type];
    EXPECT_EQ(got, counts);
  }
  // The quantized output matrix of the untied llama.
  auto q4 = OpenOrFail(fixture("models/tiny-llama-gqa-q4_0.gguf"));
  ASSERT_NE(q4, nullptr);
  const GgufTensor* out = q4->FindTensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->type, DType::Q8_0);
  EXPECT_EQ(out->ne[0], 128);
  EXPECT_EQ(out->ne[1], 512);
  EXPECT_EQ(out->nbytes, 128u / 32 * 34 * 512);
  uint32_t qv = 0;
  ASSERT_TRUE(q4->GetU32("general.quantization_version", &qv).ok());
  EXPECT_EQ(qv, 2u);
}

TEST(GgufFixtures, OctopusTinyAndAdapters) {
  auto f = OpenOrFail(fixture("models/octopus-tiny/octopus-tiny.gguf"));
  ASSERT_NE(f, nullptr);
  std::string arch, functions;
  ASSERT_TRUE(f->GetString("general.architecture", &arch).ok());
  EXPECT_EQ(arch, "gemma");
  const GgufValue* v = f->Find("ember.functions");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, GgufType::kString);
  ASSERT_TRUE(f->GetString("ember.functions", &functions).ok());
  EXPECT_TRUE(Contains(functions, "nexa_end")) << functions.substr(0, 200);
  std::vector<std::string_view> tokens;
  ASSERT_TRUE(f->GetStringArray("tokenizer.ggml.tokens", &tokens).ok());
  EXPECT_EQ(tokens.size(), 2048u);

  for (const char* name : {"lora-home.gguf", "lora-phone.gguf", "lora-travel.gguf", "lora-blend_equal.gguf"}) {
    SCOPED_TRACE(name);
    auto a = OpenOrFail(fixture(std::string("models/octopus-tiny/") + name));
    ASSERT_NE(a, nullptr);
    std::string type;
    ASSERT_TRUE(a->GetString("adapter.type", &type).ok());
    EXPECT_EQ(type, "lora");
    float alpha = 0;
    EXPECT_TRUE(a->GetF32("adapter.lora.alpha", &alpha).ok());
    EXPECT_NE(a->FindTensor("blk.0.attn_q.weight.lora_a"), nullptr);
  }
}

TEST(GgufFixtures, Vocabularies) {
  auto llama2 = OpenOrFail(fixture("tokenizer/llama2-vocab.gguf"));
  ASSERT_NE(llama2, nullptr);
  std::vector<std::string_view> tokens;
  ASSERT_TRUE(llama2->GetStringArray("tokenizer.ggml.tokens", &tokens).ok());
  EXPECT_EQ(tokens.size(), 32000u);
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_TRUE(llama2->tensors().empty());
  auto memo = OpenOrFail(fixture("tokenizer/memo260K-vocab.gguf"));
  ASSERT_NE(memo, nullptr);
  ASSERT_TRUE(memo->GetStringArray("tokenizer.ggml.tokens", &tokens).ok());
  EXPECT_EQ(tokens.size(), 512u);
}

TEST(GgufFixtures, MissingFileIsNotFound) {
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::Open("/nonexistent/model.gguf", &f);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_TRUE(Contains(s.message(), "/nonexistent/model.gguf"));
  EXPECT_EQ(f, nullptr);
}

// ---- writer ---------------------------------------------------------------------------

std::unique_ptr<GgufFile> Parse(const std::vector<uint8_t>& bytes, const std::string& name = "mem.gguf") {
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::FromMemory(bytes.data(), bytes.size(), name, &f);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return f;
}

TEST(GgufWriter, RoundTripsEveryValueType) {
  GgufWriter w;
  w.SetU8("t.u8", 200);
  w.SetI8("t.i8", -100);
  w.SetU16("t.u16", 65000);
  w.SetI16("t.i16", -32000);
  w.SetU32("t.u32", 4000000000u);
  w.SetI32("t.i32", -2000000000);
  w.SetU64("t.u64", std::numeric_limits<uint64_t>::max());
  w.SetI64("t.i64", std::numeric_limits<int64_t>::min());
  w.SetF32("t.f32", 0.15625f);
  w.SetF64("t.f64", 1.0 / 3.0);
  w.SetBool("t.true", true);
  w.SetBool("t.false", false);
  w.SetString("t.str", "héllo \xe2\x96\x81world");
  w.SetString("t.empty", "");
  w.SetStringArray("t.strs", {"a", "", "<0x0A>", std::string(300, 'x')});
  w.SetStringArray("t.no_strs", {});
  w.SetF32Array("t.f32s", {1.5f, -2.25f, 0.f});
  w.SetI32Array("t.i32s", {-1, 0, 7});
  w.SetU32Array("t.u32s", {0, 4000000000u});

  std::vector<uint8_t> bytes = w.Serialize();
  auto f = Parse(bytes);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_TRUE(f->tensors().empty());

  // Insertion order is kept.
  std::vector<std::string> keys;
  for (const auto& kv : f->metadata()) keys.push_back(kv.first);
  EXPECT_EQ(keys, (std::vector<std::string>{"t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.u64",
                                            "t.i64", "t.f32", "t.f64", "t.true", "t.false", "t.str",
                                            "t.empty", "t.strs", "t.no_strs", "t.f32s", "t.i32s",
                                            "t.u32s"}));

  auto val = [&](const char* k) { return f->Find(k); };
  ASSERT_NE(val("t.u8"), nullptr);
  EXPECT_EQ(val("t.u8")->type, GgufType::kU8);
  EXPECT_EQ(val("t.u8")->u, 200u);
  EXPECT_EQ(val("t.i8")->type, GgufType::kI8);
  EXPECT_EQ(val("t.i8")->i, -100);
  EXPECT_EQ(val("t.u16")->type, GgufType::kU16);
  EXPECT_EQ(val("t.u16")->u, 65000u);
  EXPECT_EQ(val("t.i16")->type, GgufType::kI16);
  EXPECT_EQ(val("t.i16")->i, -32000);
  EXPECT_EQ(val("t.u32")->type, GgufType::kU32);
  EXPECT_EQ(val("t.u32")->u, 4000000000u);
  EXPECT_EQ(val("t.i32")->type, GgufType::kI32);
  EXPECT_EQ(val("t.i32")->i, -2000000000);
  EXPECT_EQ(val("t.u64")->type, GgufType::kU64);
  EXPECT_EQ(val("t.u64")->u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(val("t.i64")->type, GgufType::kI64);
  EXPECT_EQ(val("t.i64")->i, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(val("t.f32")->type, GgufType::kF32);
  EXPECT_EQ(val("t.f32")->f, 0.15625);
  EXPECT_EQ(val("t.f64")->type, GgufType::kF64);
  EXPECT_EQ(val("t.f64")->f, 1.0 / 3.0);
  EXPECT_EQ(val("t.true")->type, GgufType::kBool);
  EXPECT_EQ(val("t.true")->u, 1u);
  EXPECT_EQ(val("t.false")->u, 0u);
  EXPECT_EQ(val("t.str")->type, GgufType::kString);
  EXPECT_EQ(val("t.str")->str, "héllo \xe2\x96\x81world");
  EXPECT_EQ(val("t.empty")->str, "");

  const GgufValue* strs = val("t.strs");
  EXPECT_EQ(strs->type, GgufType::kArray);
  EXPECT_EQ(strs->elem_type, GgufType::kString);
  EXPECT_EQ(strs->count, 4u);
  ASSERT_EQ(strs->strings.size(), 4u);
  EXPECT_EQ(strs->strings[0], "a");
  EXPECT_EQ(strs->strings[1], "");
  EXPECT_EQ(strs->strings[2], "<0x0A>");
  EXPECT_EQ(strs->strings[3], std::string(300, 'x'));
  EXPECT_EQ(val("t.no_strs")->count, 0u);
  EXPECT_TRUE(val("t.no_strs")->strings.empty());

  const GgufValue* f32s = val("t.f32s");
  EXPECT_EQ(f32s->elem_type, GgufType::kF32);
  ASSERT_EQ(f32s->count, 3u);
  float fl[3];
  std::memcpy(fl, f32s->elems, sizeof fl);
  EXPECT_EQ(fl[0], 1.5f);
  EXPECT_EQ(fl[1], -2.25f);
  EXPECT_EQ(fl[2], 0.f);
  EXPECT_EQ(val("t.i32s")->elem_type, GgufType::kI32);
  EXPECT_EQ(val("t.u32s")->elem_type, GgufType::kU32);

  // Typed getters over the same values.
  std::vector<float> fv;
  ASSERT_TRUE(f->GetF32Array("t.f32s", &fv).ok());
  EXPECT_EQ(fv, (std::vector<float>{1.5f, -2.25f, 0.f}));
  std::vector<int32_t> iv;
  ASSERT_TRUE(f->GetI32Array("t.i32s", &iv).ok());
  EXPECT_EQ(iv, (std::vector<int32_t>{-1, 0, 7}));
  EXPECT_FALSE(f->GetI32Array("t.u32s", &iv).ok());  // 4e9 does not fit in i32
  std::vector<std::string_view> sv;
  ASSERT_TRUE(f->GetStringArray("t.strs", &sv).ok());
  EXPECT_EQ(sv.size(), 4u);

  // CopyMetadata reproduces every key, type and value byte for byte.
  GgufWriter copy;
  copy.CopyMetadata(*f);
  EXPECT_EQ(copy.Serialize(), bytes);
}

TEST(GgufWriter, SettingAKeyAgainReplacesItInPlace) {
  GgufWriter w;
  w.SetU32("a", 1);
  w.SetString("b", "x");
  w.SetF32("a", 2.5f);  // new type and value, first position kept
  auto f = Parse(w.Serialize());
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].first, "a");
  EXPECT_EQ(f->metadata()[0].second.type, GgufType::kF32);
  EXPECT_EQ(f->metadata()[0].second.f, 2.5);
}

// Deterministic test data of n bytes.
std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = static_cast<uint8_t>(k * 131 + seed);
  return v;
}

TEST(GgufWriter, TensorsRoundTripAlignedAtEveryAlignment) {
  for (uint32_t alignment : {0u, 1u, 8u, 32u, 64u, 4096u}) {  // 0: key not set, default 32
    SCOPED_TRACE(alignment);
    GgufWriter w;
    if (alignment) w.SetU32("general.alignment", alignment);
    w.SetString("general.architecture", "test");
    struct Spec { std::string name; DType type; std::vector<int64_t> ne; };
    std::vector<Spec> specs = {
        {"a.f32", DType::F32, {3}},              // 12 bytes: the next tensor needs padding
        {"b.q8_0", DType::Q8_0, {64, 3}},
        {"c.q4_0", DType::Q4_0, {32, 2, 2}},
        {"d.f16", DType::F16, {5, 1, 1, 2}},
        {"e.q4_k", DType::Q4_K, {256, 1}},
        {"f.empty", DType::F32, {0, 4}},         // zero elements
        {"g.i8", DType::I8, {7}},
    };
    std::vector<std::vector<uint8_t>> data;
    for (size_t k = 0; k < specs.size(); ++k) {
      const Spec& s = specs[k];
      uint64_t rows = 1;
      for (size_t d = 1; d < s.ne.size(); ++d) rows *= s.ne[d];
      data.push_back(Pattern(row_bytes(s.type, s.ne[0]) * rows, static_cast<uint8_t>(k)));
      ASSERT_TRUE(w.AddTensor(s.name, s.type, s.ne, data.back().data(), data.back().size()).ok());
    }
    std::vector<uint8_t> bytes = w.Serialize();
    auto f = Parse(bytes);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->alignment(), alignment ? alignment : 32u);
    ASSERT_EQ(f->tensors().size(), specs.size());
    for (size_t k = 0; k < specs.size(); ++k) {
      const GgufTensor& t = f->tensors()[k];
      EXPECT_EQ(t.name, specs[k].name);
      EXPECT_EQ(t.type, specs[k].type);
      EXPECT_EQ(t.n_dims, specs[k].ne.size());
      for (size_t d = 0; d < 4; ++d) EXPECT_EQ(t.ne[d], d < specs[k].ne.size() ? specs[k].ne[d] : 1);
      EXPECT_EQ(t.offset % f->alignment(), 0u);
      EXPECT_EQ(static_cast<size_t>(t.data - f->file_data()) % f->alignment(), 0u);
      ASSERT_EQ(t.nbytes, data[k].size());
      if (t.nbytes) {
        EXPECT_EQ(std::memcmp(t.data, data[k].data(), t.nbytes), 0) << t.name;
      }
    }
    // The file ends with the last tensor's bytes (no trailing padding).
    const GgufTensor& last = f->tensors().back();
    EXPECT_EQ(static_cast<size_t>(last.data - f->file_data()) + last.nbytes, bytes.size());
  }
}

TEST(GgufWriter, AddTensorRejectsBadShapes) {
  GgufWriter w;
  std::vector<uint8_t> buf(4096);
  Status s = w.AddTensor("q", DType::Q8_0, {33}, buf.data(), 34);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "'q'")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "block size")) << s.message();
  EXPECT_FALSE(w.AddTensor("x", DType::F32, {4}, buf.data(), 15).ok());        // wrong byte count
  EXPECT_FALSE(w.AddTensor("x", DType::F32, {}, buf.data(), 0).ok());          // no dims
  EXPECT_FALSE(w.AddTensor("x", DType::F32, {1, 1, 1, 1, 1}, buf.data(), 4).ok());
  EXPECT_FALSE(w.AddTensor("x", DType::F32, {-4}, buf.data(), 0).ok());
  EXPECT_FALSE(w.AddTensor("x", static_cast<DType>(4), {4}, buf.data(), 4).ok());
  EXPECT_FALSE(w.AddTensor("", DType::F32, {1}, buf.data(), 4).ok());
  EXPECT_FALSE(w.AddTensor("x", DType::F32, {1}, nullptr, 4).ok());
  EXPECT_FALSE(w.AddTensor("x", DType::F32, {1ll << 62, 1ll << 62}, buf.data(), 4).ok());
  ASSERT_TRUE(w.AddTensor("x", DType::F32, {4}, buf.data(), 16).ok());
  s = w.AddTensor("x", DType::F32, {4}, buf.data(), 16);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "'x'")) << s.message();
}

std::string TempPath(const std::string& leaf) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/ember_test_loader_" + std::to_string(::getpid()) + "_" + leaf;
}

TEST(GgufWriter, WriteGoesThroughATempFileAndRereads) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("general.alignment", 64);
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(w.AddTensor("w", DType::F32, {4, 2}, x.data(), x.size() * 4).ok());
  ASSERT_TRUE(w.AddTensor("v", DType::F32, {3}, x.data(), 12).ok());
  const std::string path = TempPath("write.gguf");
  ASSERT_TRUE(w.Write(path).ok());
  // Only the final file is left in the folder.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const std::string leaf = std::filesystem::path(path).filename().string();
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n != leaf) {
      EXPECT_NE(n.rfind(leaf, 0), 0u) << "leftover " << n;
    }
  }
  auto f = OpenOrFail(path);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(read_file(path), w.Serialize());
  const GgufTensor* t = f->FindTensor("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(std::memcmp(t->data, x.data(), 32), 0);
  // Overwriting an existing file replaces it.
  w.SetString("general.architecture", "gemma");
  ASSERT_TRUE(w.Write(path).ok());
  f = OpenOrFail(path);
  ASSERT_NE(f, nullptr);
  std::string arch;
  EXPECT_TRUE(f->GetString("general.architecture", &arch).ok());
  EXPECT_EQ(arch, "gemma");
  std::filesystem::remove(path);
}

TEST(GgufWriter, WriteErrorsAreStatuses) {
  GgufWriter w;
  w.SetU32("x", 1);
  Status s = w.Write("/nonexistent-dir/out.gguf");
  EXPECT_EQ(s.code(), Code::kIo);
  EXPECT_TRUE(Contains(s.message(), "/nonexistent-dir/out.gguf")) << s.message();
  GgufWriter bad;
  bad.SetU32("general.alignment", 48);
  s = bad.Write(TempPath("bad_alignment.gguf"));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "general.alignment")) << s.message();
  EXPECT_FALSE(testing::file_exists(TempPath("bad_alignment.gguf")));
}

// A real model through CopyMetadata + AddTensor: same metadata, same tensor bytes.
TEST(GgufWriter, RewritesAFixtureModel) {
  auto src = OpenOrFail(fixture("models/tiny-gemma-q4_0.gguf"));
  ASSERT_NE(src, nullptr);
  GgufWriter w;
  w.CopyMetadata(*src);
  for (const GgufTensor& t : src->tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    ASSERT_TRUE(w.AddTensor(t.name, t.type, ne, t.data, t.nbytes).ok()) << t.name;
  }
  std::vector<uint8_t> bytes = w.Serialize();
  auto f = Parse(bytes);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->metadata().size(), src->metadata().size());
  for (size_t k = 0; k < f->metadata().size(); ++k) {
    const auto& [ka, a] = f->metadata()[k];
    const auto& [kb, b] = src->metadata()[k];
    EXPECT_EQ(ka, kb);
    EXPECT_EQ(a.type, b.type) << ka;
    EXPECT_EQ(a.u, b.u) << ka;
    EXPECT_EQ(a.i, b.i) << ka;
    EXPECT_EQ(a.f, b.f) << ka;
    EXPECT_EQ(a.str, b.str) << ka;
    EXPECT_EQ(a.count, b.count) << ka;
    EXPECT_EQ(a.strings, b.strings) << ka;
  }
  ASSERT_EQ(f->tensors().size(), src->tensors().size());
  for (size_t k = 0; k < f->tensors().size(); ++k) {
    const GgufTensor& a = f->tensors()[k];
    const GgufTensor& b = src->tensors()[k];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
  }
}

// ---- typed getters --------------------------------------------------------------------

class GgufGetters : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufWriter w;
    w.SetU8("u8", 7);
    w.SetI8("neg", -3);
    w.SetU64("big", 1ull << 40);
    w.SetI64("i64", 12);
    w.SetU32("u32", 5);
    w.SetF64("f64", 0.5);
    w.SetString("s", "text");
    w.SetBool("b", true);
    w.SetU32Array("heads", {4, 4, 2});
    w.SetI32Array("neg_heads", {4, -1, 2});
    w.SetF32Array("floats", {1.f});
    bytes_ = w.Serialize();
    f_ = Parse(bytes_, "getters.gguf");
    ASSERT_NE(f_, nullptr);
  }
  std::vector<uint8_t> bytes_;
  std::unique_ptr<GgufFile> f_;
};

TEST_F(GgufGetters, IntegersConvertWhenTheyFit) {
  uint32_t u = 0;
  int32_t i = 0;
  uint64_t u64 = 0;
  EXPECT_TRUE(f_->GetU32("u8", &u).ok());
  EXPECT_EQ(u, 7u);
  EXPECT_TRUE(f_->GetU32("i64", &u).ok());
  EXPECT_EQ(u, 12u);
  EXPECT_TRUE(f_->GetI32("neg", &i).ok());
  EXPECT_EQ(i, -3);
  EXPECT_TRUE(f_->GetU64("big", &u64).ok());
  EXPECT_EQ(u64, 1ull << 40);

  Status s = f_->GetU32("neg", &u);
  EXPECT_EQ(s.code(), Code::kBadFormat);
  EXPECT_TRUE(Contains(s.message(), "getters.gguf")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "'neg'")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "-3")) << s.message();
  EXPECT_FALSE(f_->GetU64("neg", &u64).ok());
  EXPECT_FALSE(f_->GetI32("big", &i).ok());
  EXPECT_FALSE(f_->GetU32("big", &u).ok());
}

TEST_F(GgufGetters, WrongTypeAndMissingKeys) {
  uint32_t u = 0;
  std::string str;
  bool b = false;
  float x = 0;
  Status s = f_->GetU32("s", &u);
  EXPECT_EQ(s.code(), Code::kBadFormat);
  EXPECT_TRUE(Contains(s.message(), "'s'")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "string")) << s.message();
  EXPECT_FALSE(f_->GetU32("b", &u).ok());   // bool is not an integer
  EXPECT_FALSE(f_->GetU32("f64", &u).ok());
  EXPECT_FALSE(f_->GetString("u32", &str).ok());
  EXPECT_FALSE(f_->GetBool("u8", &b).ok());
  EXPECT_FALSE(f_->GetF32("s", &x).ok());
  std::vector<std::string_view> sv;
  EXPECT_FALSE(f_->GetStringArray("heads", &sv).ok());
  EXPECT_FALSE(f_->GetStringArray("s", &sv).ok());
  std::vector<int32_t> iv;
  EXPECT_FALSE(f_->GetI32Array("floats", &iv).ok());

  s = f_->GetString("absent.key", &str);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_TRUE(Contains(s.message(), "'absent.key'")) << s.message();
  EXPECT_FALSE(f_->Has("absent.key"));
  EXPECT_TRUE(f_->Has("s"));
}

TEST_F(GgufGetters, FloatsAndBools) {
  float x = 0;
  ASSERT_TRUE(f_->GetF32("f64", &x).ok());
  EXPECT_EQ(x, 0.5f);
  ASSERT_TRUE(f_->GetF32("neg", &x).ok());  // integers are numbers too
  EXPECT_EQ(x, -3.f);
  bool b = false;
  ASSERT_TRUE(f_->GetBool("b", &b).ok());
  EXPECT_TRUE(b);
}

TEST_F(GgufGetters, OptionalFormsKeepTheDefault) {
  std::string s = "default";
  uint32_t u = 99;
  float x = 1.25f;
  bool b = false;
  EXPECT_TRUE(f_->GetStringOr("nope", &s).ok());
  EXPECT_TRUE(f_->GetU32Or("nope", &u).ok());
  EXPECT_TRUE(f_->GetF32Or("nope", &x).ok());
  EXPECT_TRUE(f_->GetBoolOr("nope", &b).ok());
  EXPECT_EQ(s, "default");
  EXPECT_EQ(u, 99u);
  EXPECT_EQ(x, 1.25f);
  EXPECT_FALSE(b);
  EXPECT_TRUE(f_->GetStringOr("s", &s).ok());
  EXPECT_EQ(s, "text");
  EXPECT_TRUE(f_->GetU32Or("u32", &u).ok());
  EXPECT_EQ(u, 5u);
  EXPECT_FALSE(f_->GetU32Or("s", &u).ok());  // present with the wrong type: an error
  EXPECT_FALSE(f_->GetBoolOr("u8", &b).ok());
}

TEST_F(GgufGetters, PerLayerScalarsBroadcastAndArraysMustMatch) {
  std::vector<uint32_t> v;
  ASSERT_TRUE(f_->GetU32PerLayer("u32", 4, &v).ok());
  EXPECT_EQ(v, (std::vector<uint32_t>{5, 5, 5, 5}));
  ASSERT_TRUE(f_->GetU32PerLayer("heads", 3, &v).ok());
  EXPECT_EQ(v, (std::vector<uint32_t>{4, 4, 2}));
  Status s = f_->GetU32PerLayer("heads", 4, &v);
  EXPECT_EQ(s.code(), Code::kBadFormat);
  EXPECT_TRUE(Contains(s.message(), "'heads'")) << s.message();
  EXPECT_FALSE(f_->GetU32PerLayer("neg_heads", 3, &v).ok());
  EXPECT_FALSE(f_->GetU32PerLayer("neg", 3, &v).ok());
  EXPECT_FALSE(f_->GetU32PerLayer("floats", 1, &v).ok());
  EXPECT_EQ(f_->GetU32PerLayer("nope", 3, &v).code(), Code::kNotFound);
}

TEST(GgufTypeNames, AllNamed) {
  for (uint32_t t = 0; t <= 12; ++t) {
    EXPECT_STRNE(gguf_type_name(static_cast<GgufType>(t)), "?") << t;
  }
  EXPECT_STREQ(gguf_type_name(GgufType::kArray), "array");
  EXPECT_STREQ(gguf_type_name(static_cast<GgufType>(13)), "?");
}

}  // namespace
}  // namespace ember
