// The exact AVX2 emulation of VPDPBUSD / VPDPWSSD (kernels/x86/vnni_emulated_x86.h)
// against scalar loops, and the emulated AVX-VNNI table (support/vnni_emulated.h) kept
// out of dispatch. The table's kernels themselves are checked by the other
// test_kernels*.cpp files, which iterate over it with the real tables.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "kernels/kernels.h"
#include "support/vnni_emulated.h"

namespace ember::kernels {
namespace {

// The instructions' definitions: sums in 64 bits, then modulo 2^32 (no saturation).
int32_t wrap32(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v))); }

void expect_dpbusd(const int32_t acc[8], const uint8_t u[32], const int8_t s[32]) {
  int32_t got[8];
  for (int i = 0; i < 8; ++i) got[i] = acc[i];
  emulated_dpbusd(got, u, s);
  for (int i = 0; i < 8; ++i) {
    int64_t want = acc[i];
    for (int j = 0; j < 4; ++j) want += int64_t{u[4 * i + j]} * s[4 * i + j];
    ASSERT_EQ(got[i], wrap32(want)) << "lane " << i;
  }
}

void expect_dpwssd(const int32_t acc[8], const int16_t a[16], const int16_t b[16]) {
  int32_t got[8];
  for (int i = 0; i < 8; ++i) got[i] = acc[i];
  emulated_dpwssd(got, a, b);
  for (int i = 0; i < 8; ++i) {
    const int64_t want = int64_t{acc[i]} + int64_t{a[2 * i]} * b[2 * i] + int64_t{a[2 * i + 1]} * b[2 * i + 1];
    ASSERT_EQ(got[i], wrap32(want)) << "lane " << i;
  }
}

TEST(EmulatedVnni, DpbusdEqualsTheScalarDefinition) {
  if (!avxvnni_emulated()) GTEST_SKIP() << "no AVX2 (or not x86-64): no emulated table";
  std::mt19937 g(21);
  const int32_t acc_edges[] = {0, 1, -1, INT32_MAX, INT32_MIN, INT32_MAX - 100000, INT32_MIN + 100000};
  int32_t acc[8];
  uint8_t u[32];
  int8_t s[32];
  // Extreme bytes: every lane's four u in {0, 255} and s in {-128, 127}, all 256
  // combinations over the 8 lanes x 32 rounds, accumulators at the s32 edges (wrapping).
  for (int round = 0; round < 32; ++round) {
    for (int i = 0; i < 32; ++i) {
      const int k = round * 8 + i / 4, j = i % 4;  // lane i / 4's combination k, byte j
      u[i] = (k >> j) & 1 ? 255 : 0;
      s[i] = (k >> (4 + j)) & 1 ? 127 : -128;
    }
    for (int i = 0; i < 8; ++i) acc[i] = acc_edges[(round + i) % 7];
    expect_dpbusd(acc, u, s);
  }
  for (int i = 0; i < 32; ++i) u[i] = 255, s[i] = -128;  // the most negative lane sum
  for (int i = 0; i < 8; ++i) acc[i] = INT32_MIN + i;
  expect_dpbusd(acc, u, s);
  for (int i = 0; i < 32; ++i) s[i] = 127;  // the most positive
  for (int i = 0; i < 8; ++i) acc[i] = INT32_MAX - i;
  expect_dpbusd(acc, u, s);
  for (int round = 0; round < 20000; ++round) {
    for (int i = 0; i < 32; ++i) u[i] = static_cast<uint8_t>(g()), s[i] = static_cast<int8_t>(g());
    for (int i = 0; i < 8; ++i)  // any, or small (no wrapping)
      acc[i] = round % 2 ? static_cast<int32_t>(g()) : static_cast<int32_t>(g() % 200001) - 100000;
    expect_dpbusd(acc, u, s);
  }
}

TEST(EmulatedVnni, DpwssdEqualsTheScalarDefinition) {
  if (!avxvnni_emulated()) GTEST_SKIP() << "no AVX2 (or not x86-64): no emulated table";
  std::mt19937 g(22);
  const int16_t edges[] = {0, 1, -1, INT16_MAX, INT16_MIN};
  int32_t acc[8];
  int16_t a[16], b[16];
  // Every combination of edge values in a lane's two pairs (5^4 = 625), 8 lanes a round.
  for (int c = 0; c < 625; c += 8) {
    for (int i = 0; i < 8; ++i) {
      const int k = (c + i) % 625;
      a[2 * i] = edges[k % 5], b[2 * i] = edges[k / 5 % 5];
      a[2 * i + 1] = edges[k / 25 % 5], b[2 * i + 1] = edges[k / 125];
      acc[i] = i % 3 == 0 ? 0 : i % 3 == 1 ? INT32_MAX : INT32_MIN;
    }
    expect_dpwssd(acc, a, b);
  }
  for (int i = 0; i < 16; ++i) a[i] = b[i] = INT16_MIN;  // 2^31 per lane: wraps
  for (int i = 0; i < 8; ++i) acc[i] = i - 4;
  expect_dpwssd(acc, a, b);
  for (int round = 0; round < 20000; ++round) {
    for (int i = 0; i < 16; ++i) a[i] = static_cast<int16_t>(g()), b[i] = static_cast<int16_t>(g());
    for (int i = 0; i < 8; ++i) acc[i] = static_cast<int32_t>(g());
    expect_dpwssd(acc, a, b);
  }
}

// The emulated table is a test's, never dispatch's: no ISA resolves to it; it has the
// AVX-VNNI table's kernels for every type (declining none, as the real one).
TEST(EmulatedVnni, TableIsOutsideDispatch) {
  const Table* e = avxvnni_emulated();
  if (!e) GTEST_SKIP() << "no AVX2 (or not x86-64): no emulated table";
  EXPECT_STREQ(e->name, "avxvnni-emulated");
  for (int i = 0; i < static_cast<int>(Isa::kCount); ++i) EXPECT_NE(table_for(static_cast<Isa>(i)), e);
  EXPECT_NE(&best(), e);
  for (const TypeKernels& k : e->types) EXPECT_FALSE(k.declined);
  // Its integer kernels are its own (the VNNI instantiations), not AVX2's.
  const Table* avx2 = table_for(Isa::kAvx2);
  ASSERT_NE(avx2, nullptr);
  for (DType w : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q5_K})
    EXPECT_NE(e->of(w).qmatmul, avx2->of(w).qmatmul) << dtype_name(w);
  // Packed weights: its own VNNI kernels on AVX2's layouts (the loader's bytes are the same).
  for (DType w : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q2_K, DType::Q3_K}) {
    EXPECT_EQ(e->of(w).packing, (Packing{8, 4, false})) << dtype_name(w);
    EXPECT_EQ(e->of(w).packing, avx2->of(w).packing) << dtype_name(w);
    EXPECT_NE(e->of(w).qmatmul_packed, avx2->of(w).qmatmul_packed) << dtype_name(w);
  }
}

}  // namespace
}  // namespace ember::kernels
