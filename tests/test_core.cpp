#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
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
