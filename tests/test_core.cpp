#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "core/status.h"
#include "quant/fp16.h"
#include "quant/types.h"

namespace ember {
namespace {

TEST(Status, OkAndErrorText) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  Status e = BadFormat("x.gguf: bad magic");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.code(), Code::kBadFormat);
  EXPECT_EQ(e.ToString(), "bad format: x.gguf: bad magic");
}

TEST(MappedFile, MissingFileIsNotFoundAndNamesPath) {
  std::unique_ptr<MappedFile> f;
  Status s = MappedFile::Open("/nonexistent/ember.gguf", &f);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/ember.gguf"), std::string::npos);
}

TEST(MappedFile, DirectoryIsRejected) {
  std::unique_ptr<MappedFile> f;
  EXPECT_FALSE(MappedFile::Open("/tmp", &f).ok());
}

// Whether the page at p is mapped in this process's page table (/proc/self/pagemap bit
// 63); -1 when that cannot be read.
int page_present(const void* p) {
  const auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  std::FILE* f = std::fopen("/proc/self/pagemap", "rb");
  if (!f) return -1;
  uint64_t entry = 0;
  const bool ok = std::fseek(f, static_cast<long>(reinterpret_cast<uintptr_t>(p) / page * 8), SEEK_SET) == 0 &&
                  std::fread(&entry, 8, 1, f) == 1;
  std::fclose(f);
  return ok ? static_cast<int>(entry >> 63) : -1;
}

TEST(MappedFile, PrefaultMapsTheRangeIn) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE)), n = 64 * page;
  const std::string path = testing::TempDir() + "ember_prefault_test.bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string bytes(n, 'e');
    ASSERT_EQ(std::fwrite(bytes.data(), 1, n, f), n);
    std::fclose(f);
  }
  std::unique_ptr<MappedFile> m;
  ASSERT_TRUE(MappedFile::Open(path, &m).ok());
  // A range is rounded out to whole pages: pages 8 .. 15 here.
  const uint8_t* p = m->data();
  const int before = page_present(p + 8 * page);
  EXPECT_EQ(m->Prefault(p + 8 * page + 1, 8 * page - 2), 8 * page);
  // Where /proc/self/pagemap showed the page absent before (it can be unreadable, e.g. in
  // some sandboxes), every page of the range is mapped in now.
  if (before == 0) {
    for (size_t i = 8; i < 16; ++i) EXPECT_EQ(page_present(p + i * page), 1) << "page " << i;
  }
  EXPECT_EQ(p[8 * page], 'e');
  // Nothing outside the mapping, nothing of wrapped memory.
  EXPECT_EQ(m->Prefault(p, n + 1), 0u);
  EXPECT_EQ(m->Prefault(p, 0), 0u);
  const uint8_t mem[64] = {};
  EXPECT_EQ(MappedFile::FromMemory(mem, sizeof mem, "mem")->Prefault(mem, sizeof mem), 0u);
  std::remove(path.c_str());
}

TEST(DType, SizesOfCommonTypes) {
  EXPECT_EQ(row_bytes(DType::F32, 64), 256u);
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(row_bytes(DType::Q4_0, 31), 0u);  // not a multiple of the block
  EXPECT_EQ(dtype_info(4).name, nullptr);     // removed type id
  EXPECT_EQ(dtype_info(1000).name, nullptr);
}

// fp16: every one of the 65536 halves converts to float and back unchanged
// (NaN payloads excepted: only NaN-ness is required).
TEST(Fp16, AllHalvesRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_fp32(static_cast<uint16_t>(h));
    uint16_t back = fp32_to_fp16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(back))) << h;
    } else {
      ASSERT_EQ(back, h) << "half 0x" << std::hex << h;
    }
  }
}

// Rounding to nearest even at the midpoint between two halves.
TEST(Fp16, RoundsToNearestEven) {
  for (uint32_t h = 0x0001; h < 0x7bff; h += 97) {
    float a = fp16_to_fp32(static_cast<uint16_t>(h));
    float b = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
    uint16_t want = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    EXPECT_EQ(fp32_to_fp16(mid), want) << h;
  }
  EXPECT_EQ(fp32_to_fp16(65520.f), 0x7c00);  // overflow to inf
  EXPECT_EQ(fp32_to_fp16(65519.f), 0x7bff);
}

TEST(Bf16, RoundTripAndRounding) {
  for (uint32_t h = 0; h < 65536; h += 7) {
    float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h);
    }
  }
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3f818000u)), 0x3f82);
}

}  // namespace
}  // namespace ember
