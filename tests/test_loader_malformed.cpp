// GGUF loader against malformed files: every one must come back as a Status whose
// message names the file, the key or tensor, and the problem -- never a crash, an
// out-of-bounds read (run under ASan/UBSan) or a huge allocation.
// Files are crafted byte by byte here, independently of GgufWriter.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "loader/gguf_writer.h"
#include "support/fixtures.h"

namespace ember {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint64_t kHuge = 1ull << 62;
const std::string kName = "crafted.gguf";

// Little-endian byte builder for crafted files.
class Raw {
 public:
  template <class T>
  Raw& Put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);
    bytes.insert(bytes.end(), b, b + sizeof b);
    return *this;
  }
  Raw& U8(uint8_t v) { return Put(v); }
  Raw& U32(uint32_t v) { return Put(v); }
  Raw& U64(uint64_t v) { return Put(v); }
  Raw& Str(std::string_view s) {
    U64(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  Raw& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return U32(kMagic).U32(version).U64(n_tensors).U64(n_kv);
  }
  Raw& KvU32(std::string_view key, uint32_t v) { return Str(key).U32(4).U32(v); }
  Raw& KvStr(std::string_view key, std::string_view v) { return Str(key).U32(8).Str(v); }
  Raw& Tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne) U64(n);
    return U32(type).U64(offset);
  }
  Raw& PadTo(size_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
    return *this;
  }
  Raw& Zeros(size_t n) {
    bytes.resize(bytes.size() + n, 0);
    return *this;
  }
  std::vector<uint8_t> bytes;
};

// Parses `bytes` from an exactly-sized heap copy, so ASan flags any read past the end.
Status ParseCopy(const std::vector<uint8_t>& bytes, size_t n, std::unique_ptr<GgufFile>* out) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[n ? n : 1]);
  if (n) std::memcpy(copy.get(), bytes.data(), n);
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::FromMemory(n ? copy.get() : nullptr, n, kName, &f);
  if (s.ok()) {
    // Touch every view while the buffer is alive: strings, arrays and tensor bytes.
    volatile uint8_t sink = 0;
    for (const auto& [k, v] : f->metadata()) {
      for (char c : v.str) sink = sink + static_cast<uint8_t>(c);
      for (std::string_view s2 : v.strings) for (char c : s2) sink = sink + static_cast<uint8_t>(c);
    }
    for (const GgufTensor& t : f->tensors()) {
      for (size_t k = 0; k < t.nbytes; ++k) sink = sink + t.data[k];
    }
    (void)sink;
  }
  if (out) *out = std::move(f);
  return s;
}

// Expects an error of `code` whose message names the file and contains each of `parts`.
void ExpectError(const std::vector<uint8_t>& bytes, Code code, std::vector<std::string> parts) {
  std::unique_ptr<GgufFile> f;
  Status s = ParseCopy(bytes, bytes.size(), &f);
  ASSERT_FALSE(s.ok()) << "parsed a malformed file";
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_EQ(f, nullptr);
  parts.push_back(kName);
  for (const std::string& p : parts) {
    EXPECT_NE(s.message().find(p), std::string::npos) << "message lacks \"" << p << "\": " << s.message();
  }
}

// A small valid file exercising every value type, a string array, a bool array,
// and three tensors of different types (F32 [3], Q8_0 [32,2], F16 [2,2]).
std::vector<uint8_t> SmallValidFile() {
  Raw r;
  r.Header(3, 16);
  r.Str("u8").U32(0).U8(200);
  r.Str("i8").U32(1).U8(0xfe);
  r.Str("u16").U32(2).Put<uint16_t>(65000);
  r.Str("i16").U32(3).Put<int16_t>(-2);
  r.Str("u32").U32(4).U32(7);
  r.Str("i32").U32(5).Put<int32_t>(-7);
  r.Str("f32").U32(6).Put<float>(0.5f);
  r.Str("bool").U32(7).U8(1);
  r.Str("str").U32(8).Str("hello");
  r.Str("u64").U32(10).U64(1ull << 40);
  r.Str("i64").U32(11).Put<int64_t>(-5);
  r.Str("f64").U32(12).Put<double>(0.25);
  r.Str("strs").U32(9).U32(8).U64(3).Str("a").Str("").Str("ccc");
  r.Str("i32s").U32(9).U32(5).U64(2).Put<int32_t>(1).Put<int32_t>(-1);
  r.Str("bools").U32(9).U32(7).U64(2).U8(0).U8(1);
  r.Str("general.alignment").U32(4).U32(16);
  r.Tensor("a", {3}, 0, 0);          // 12 bytes at 0
  r.Tensor("b", {32, 2}, 8, 16);     // 68 bytes at 16
  r.Tensor("c", {2, 2}, 1, 96);      // 8 bytes at 96
  r.PadTo(16);
  size_t data = r.bytes.size();
  r.Zeros(104);
  for (size_t k = data; k < r.bytes.size(); ++k) r.bytes[k] = static_cast<uint8_t>(k);
  return r.bytes;
}

TEST(GgufMalformed, SmallCraftedFileIsValid) {
  std::vector<uint8_t> bytes = SmallValidFile();
  std::unique_ptr<GgufFile> f;
  Status s = ParseCopy(bytes, bytes.size(), &f);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(f->metadata().size(), 16u);
  EXPECT_EQ(f->alignment(), 16u);
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->tensors()[1].type, DType::Q8_0);
  EXPECT_EQ(f->tensors()[1].nbytes, 68u);
  EXPECT_EQ(f->Find("i8")->i, -2);
  EXPECT_EQ(f->Find("i16")->i, -2);
  EXPECT_EQ(f->Find("strs")->strings.size(), 3u);
}

// Every strict prefix of a valid file is an error, never a crash.
TEST(GgufMalformed, TruncationAtEveryLengthFails) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetStringArray("tokens", {"<unk>", "a", "bc"});
  w.SetF32Array("scores", {0.f, -1.f, -2.f});
  std::vector<uint8_t> q(34 * 2, 1);
  ASSERT_TRUE(w.AddTensor("q", DType::Q8_0, {64}, q.data(), q.size()).ok());
  ASSERT_TRUE(w.AddTensor("n", DType::F32, {5}, q.data(), 20).ok());
  for (const std::vector<uint8_t>& bytes : {SmallValidFile(), w.Serialize()}) {
    ASSERT_TRUE(ParseCopy(bytes, bytes.size(), nullptr).ok());
    for (size_t n = 0; n < bytes.size(); ++n) {
      Status s = ParseCopy(bytes, n, nullptr);
      EXPECT_FALSE(s.ok()) << "prefix of " << n << " bytes parsed";
      EXPECT_NE(s.message().find(kName), std::string::npos) << s.message();
    }
  }
}

// Single-byte corruption at every position, then random multi-byte corruption:
// the parser may accept or reject, but must stay inside the buffer (ASan) and
// never hit undefined behaviour (UBSan).
TEST(GgufMalformed, CorruptedBytesNeverCrash) {
  const std::vector<uint8_t> good = SmallValidFile();
  size_t accepted = 0, rejected = 0;
  for (size_t pos = 0; pos < good.size(); ++pos) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x80}, uint8_t{0x7f},
                      static_cast<uint8_t>(good[pos] ^ 1)}) {
      std::vector<uint8_t> bad = good;
      bad[pos] = v;
      (ParseCopy(bad, bad.size(), nullptr).ok() ? accepted : rejected)++;
    }
  }
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> bad = good;
    int n = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    (ParseCopy(bad, bad.size(), nullptr).ok() ? accepted : rejected)++;
  }
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(accepted, 0u);  // e.g. changed tensor bytes or value bytes stay valid
}

// ---- header ---------------------------------------------------------------------------

TEST(GgufMalformed, TooSmallAndBadMagic) {
  ExpectError({}, Code::kBadFormat, {"4"});
  ExpectError({'G', 'G', 'U'}, Code::kBadFormat, {"3 bytes"});
  Raw r;
  r.U32(0x4c4d4747).U32(3).U64(0).U64(0);  // "GGML"
  ExpectError(r.bytes, Code::kBadFormat, {"bad magic", "GGML", "expected 'GGUF'"});
  ExpectError({'G', 'G', 'U', 'F'}, Code::kBadFormat, {"version", "truncated"});
}

TEST(GgufMalformed, Versions) {
  Raw v1;
  v1.U32(kMagic).U32(1).U32(0).U32(0);  // v1: 32-bit counts
  ExpectError(v1.bytes, Code::kUnsupported, {"version 1"});
  ExpectError(Raw().Header(0, 0, 4).bytes, Code::kUnsupported, {"version 4"});
  ExpectError(Raw().Header(0, 0, 0).bytes, Code::kUnsupported, {"version 0"});
  ExpectError(Raw().Header(0, 0, 0x03000000).bytes, Code::kUnsupported, {"big-endian"});
  // v2 has the v3 layout.
  std::vector<uint8_t> v2 = Raw().Header(0, 1, 2).KvU32("k", 1).bytes;
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(ParseCopy(v2, v2.size(), &f).ok());
  EXPECT_EQ(f->version(), 2u);
}

TEST(GgufMalformed, AbsurdCountsFailBeforeAllocating) {
  ExpectError(Raw().Header(0, kHuge).bytes, Code::kBadFormat, {"n_kv", std::to_string(kHuge)});
  ExpectError(Raw().Header(0, UINT64_MAX).bytes, Code::kBadFormat, {"n_kv"});
  ExpectError(Raw().Header(kHuge, 0).bytes, Code::kBadFormat, {"n_tensors", std::to_string(kHuge)});
  ExpectError(Raw().Header(UINT64_MAX, UINT64_MAX).bytes, Code::kBadFormat, {"n_"});
  // Plausible alone, but too many for the bytes left.
  ExpectError(Raw().Header(0, 2).KvU32("k", 1).bytes, Code::kBadFormat, {"n_kv = 2"});
}

// ---- metadata ------------------------------------------------------------------------

TEST(GgufMalformed, HugeStringLengths) {
  ExpectError(Raw().Header(0, 1).U64(kHuge).U32(4).U32(1).bytes, Code::kBadFormat,
              {"metadata key #0", "string length " + std::to_string(kHuge)});
  ExpectError(Raw().Header(0, 1).Str("name").U32(8).U64(UINT64_MAX).Zeros(8).bytes, Code::kBadFormat,
              {"key 'name'", "string length"});
  ExpectError(Raw().Header(0, 1).Str("toks").U32(9).U32(8).U64(2).Str("a").U64(kHuge).bytes,
              Code::kBadFormat, {"key 'toks'[1]", "string length"});
}

TEST(GgufMalformed, HugeArrayCounts) {
  // count * 4 would overflow 64 bits.
  ExpectError(Raw().Header(0, 1).Str("arr").U32(9).U32(4).U64(kHuge).Zeros(16).bytes, Code::kBadFormat,
              {"key 'arr'", "array of " + std::to_string(kHuge) + " u32"});
  ExpectError(Raw().Header(0, 1).Str("arr").U32(9).U32(12).U64(3).Zeros(16).bytes, Code::kBadFormat,
              {"key 'arr'", "f64"});
  ExpectError(Raw().Header(0, 1).Str("toks").U32(9).U32(8).U64(UINT64_MAX).Zeros(16).bytes,
              Code::kBadFormat, {"key 'toks'", "array count"});
}

TEST(GgufMalformed, UnknownValueTypes) {
  ExpectError(Raw().Header(0, 1).Str("k").U32(13).U32(0).bytes, Code::kBadFormat,
              {"key 'k'", "unknown value type id 13"});
  ExpectError(Raw().Header(0, 1).Str("k").U32(0xffffffff).U32(0).bytes, Code::kBadFormat,
              {"key 'k'", "unknown value type id 4294967295"});
  ExpectError(Raw().Header(0, 1).Str("arr").U32(9).U32(99).U64(0).bytes, Code::kBadFormat,
              {"key 'arr'", "unknown array element type id 99"});
  ExpectError(Raw().Header(0, 1).Str("arr").U32(9).U32(9).U64(1).U32(4).U64(0).bytes, Code::kUnsupported,
              {"key 'arr'", "nested"});
}

TEST(GgufMalformed, BadBoolsKeysAndDuplicates) {
  ExpectError(Raw().Header(0, 1).Str("flag").U32(7).U8(2).bytes, Code::kBadFormat, {"key 'flag'", "bool"});
  ExpectError(Raw().Header(0, 1).Str("flags").U32(9).U32(7).U64(3).U8(1).U8(0).U8(9).bytes,
              Code::kBadFormat, {"key 'flags'", "[2]"});
  ExpectError(Raw().Header(0, 2).KvU32("dup", 1).KvStr("dup", "x").bytes, Code::kBadFormat,
              {"key 'dup'", "duplicate key"});
  ExpectError(Raw().Header(0, 1).KvU32("", 1).bytes, Code::kBadFormat, {"key #0", "empty key"});
  // Control bytes in a name are escaped in the message.
  ExpectError(Raw().Header(0, 1).Str("a\nb").U32(13).bytes, Code::kBadFormat, {"key 'a\\x0ab'"});
}

TEST(GgufMalformed, BadAlignment) {
  ExpectError(Raw().Header(0, 1).KvU32("general.alignment", 48).bytes, Code::kBadFormat,
              {"general.alignment", "48", "power of two"});
  ExpectError(Raw().Header(0, 1).KvU32("general.alignment", 0).bytes, Code::kBadFormat,
              {"general.alignment", "power of two"});
  ExpectError(Raw().Header(0, 1).Str("general.alignment").U32(5).U32(32).bytes, Code::kBadFormat,
              {"general.alignment", "expected u32", "i32"});
}

// ---- tensors ----------------------------------------------------------------------

// One tensor info (name 'w') followed by `data_bytes` of data at alignment 32.
std::vector<uint8_t> OneTensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes) {
  Raw r;
  r.Header(1, 1).KvStr("general.architecture", "test").Tensor("w", std::move(ne), type, offset);
  r.PadTo(32).Zeros(data_bytes);
  return r.bytes;
}

TEST(GgufMalformed, TensorDims) {
  ExpectError(OneTensor({}, 0, 0, 0), Code::kBadFormat, {"tensor 'w'", "n_dims 0"});
  ExpectError(OneTensor({1, 1, 1, 1, 1}, 0, 0, 4), Code::kBadFormat, {"tensor 'w'", "n_dims 5"});
  ExpectError(OneTensor({4, static_cast<uint64_t>(-3)}, 0, 0, 64), Code::kBadFormat,
              {"tensor 'w'", "ne[1] = -3", "negative"});
  ExpectError(OneTensor({1ull << 32, 1ull << 32, 1ull << 32}, 0, 0, 64), Code::kBadFormat,
              {"tensor 'w'", "element count overflows", "ne[1]"});
  ExpectError(OneTensor({1ull << 31, 1ull << 31, 2}, 0, 0, 64), Code::kBadFormat,
              {"tensor 'w'", "overflows"});  // 2^63 elements: past int64
  // 2^62 f32 elements fit in int64, their 2^64 bytes do not.
  ExpectError(OneTensor({1ull << 62}, 0, 0, 64), Code::kBadFormat, {"tensor 'w'", "byte size overflows"});
  // Huge but computable: the data is simply not in the file.
  ExpectError(OneTensor({1ull << 20, 1ull << 20}, 0, 0, 64), Code::kBadFormat,
              {"tensor 'w'", "past end of file"});
}

TEST(GgufMalformed, TensorTypes) {
  ExpectError(OneTensor({32}, 4, 0, 64), Code::kUnsupported, {"tensor 'w'", "type id 4"});
  ExpectError(OneTensor({32}, 1000, 0, 64), Code::kUnsupported, {"tensor 'w'", "type id 1000"});
  ExpectError(OneTensor({33}, 8, 0, 68), Code::kBadFormat,
              {"tensor 'w'", "ne[0] = 33", "q8_0 block size 32"});
  ExpectError(OneTensor({128, 2}, 12, 0, 512), Code::kBadFormat, {"tensor 'w'", "q4_k block size 256"});
}

TEST(GgufMalformed, TensorOffsets) {
  ExpectError(OneTensor({4}, 0, 4, 64), Code::kBadFormat,
              {"tensor 'w'", "offset 4", "alignment 32"});
  // In range but misaligned for a non-default alignment.
  Raw r;
  r.Header(1, 1).KvU32("general.alignment", 64).Tensor("w", {4}, 0, 32).PadTo(64).Zeros(128);
  ExpectError(r.bytes, Code::kBadFormat, {"tensor 'w'", "offset 32", "alignment 64"});
  ExpectError(OneTensor({4}, 0, UINT64_MAX & ~31ull, 64), Code::kBadFormat, {"tensor 'w'", "past end of file"});
}

TEST(GgufMalformed, TensorPastEndNamesTheRange) {
  // 16 f32 = 64 bytes at offset 32, but only 80 data bytes.
  std::vector<uint8_t> bytes = OneTensor({16}, 0, 32, 80);
  const size_t data_start = bytes.size() - 80;
  std::unique_ptr<GgufFile> f;
  Status s = ParseCopy(bytes, bytes.size(), &f);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kBadFormat);
  EXPECT_EQ(s.message(), kName + ": tensor 'w': data [" + std::to_string(data_start + 32) + ", " +
                             std::to_string(data_start + 96) + ") past end of file (" +
                             std::to_string(bytes.size()) + " bytes)");
}

TEST(GgufMalformed, DataSectionMissing) {
  // Tensor infos end off-alignment and the file stops there.
  Raw r;
  r.Header(1, 0).Tensor("w", {0}, 0, 0);
  ASSERT_NE(r.bytes.size() % 32, 0u);
  ExpectError(r.bytes, Code::kBadFormat, {"data section", "past end of file"});
}

TEST(GgufMalformed, DuplicateAndOverlappingTensors) {
  Raw dup;
  dup.Header(2, 0).Tensor("w", {4}, 0, 0).Tensor("w", {4}, 0, 32).PadTo(32).Zeros(64);
  ExpectError(dup.bytes, Code::kBadFormat, {"tensor 'w'", "duplicate tensor name"});
  Raw same;
  same.Header(2, 0).Tensor("a", {4}, 0, 0).Tensor("b", {4}, 0, 0).PadTo(32).Zeros(64);
  ExpectError(same.bytes, Code::kBadFormat, {"'a'", "'b'", "overlap"});
  Raw partial;  // a: [0, 64), b: [32, 48)
  partial.Header(2, 0).Tensor("b", {4}, 0, 32).Tensor("a", {16}, 0, 0).PadTo(32).Zeros(64);
  ExpectError(partial.bytes, Code::kBadFormat, {"'a' [0, 64)", "'b' [32, 48)", "overlap"});
  // Touching is fine, and so is an empty tensor at another's offset.
  Raw ok;
  ok.Header(3, 0).Tensor("a", {8}, 0, 0).Tensor("b", {8}, 0, 32).Tensor("e", {0}, 0, 32).PadTo(32).Zeros(64);
  EXPECT_TRUE(ParseCopy(ok.bytes, ok.bytes.size(), nullptr).ok());
  ExpectError(Raw().Header(1, 0).Tensor("", {4}, 0, 0).PadTo(32).Zeros(16).bytes, Code::kBadFormat,
              {"tensor #0", "empty tensor name"});
}

// Open() on a bad file on disk names the path.
TEST(GgufMalformed, OpenNamesThePath) {
  const std::string path = "/tmp/ember_test_loader_bad_" + std::to_string(::getpid()) + ".gguf";
  {
    std::vector<uint8_t> bytes = OneTensor({33}, 8, 0, 68);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::Open(path, &f);
  EXPECT_EQ(s.code(), Code::kBadFormat);
  EXPECT_EQ(s.message().rfind(path + ": tensor 'w': ", 0), 0u) << s.message();
  EXPECT_EQ(f, nullptr);
  std::remove(path.c_str());
  // An empty file on disk (no mapping at all).
  { std::ofstream out(path, std::ios::binary); }
  s = GgufFile::Open(path, &f);
  EXPECT_EQ(s.code(), Code::kBadFormat);
  EXPECT_NE(s.message().find(path), std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ember
