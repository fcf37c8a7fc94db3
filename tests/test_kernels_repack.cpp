// Row-interleaved ("repacked") weights (quant/repack.h, kernels.h PackedQMatmulFn):
//  * the layouts: packing then unpacking gives the original bytes for every packing and
//    shape, packed_block gathers each block as it was, and what cannot be packed is
//    refused;
//  * the kernels: every table's matmul on packed weights (its own packing, and another
//    one, which runs the reference's packed kernel) equals the reference on the plain
//    weights BIT FOR BIT (kernels.h: the integer sums are exact and the float steps
//    are the same per output), for batch sizes 1..17 and 64, several K, misaligned
//    weights and activations, one and two threads.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "quant/fp16.h"
#include "quant/repack.h"
#include "support/matmul.h"

namespace ember {
namespace {

const Packing kPackings[] = {{4, 4, false}, {8, 4, false}, {16, 4, false}, {4, 8, false},
                             {8, 4, true},  {16, 4, true}, {4, 16, false}};

// Random blocks of `type` (Q4_0 / Q8_0): random code bytes, a small random fp16 scale.
std::vector<uint8_t> random_rows(std::mt19937& g, DType type, size_t rows, size_t cols, size_t stride) {
  std::vector<uint8_t> w(rows * stride);
  for (auto& b : w) b = static_cast<uint8_t>(g());
  const size_t bb = dtype_info(type).type_size, nb = cols / dtype_info(type).block_size;
  std::uniform_real_distribution<float> mag(-10.0f, -4.0f);
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < nb; ++b) {
      const uint16_t d = fp32_to_fp16((g() & 1 ? -1.0f : 1.0f) * std::exp2(mag(g)));
      std::memcpy(&w[r * stride + b * bb], &d, 2);
    }
  return w;
}

TEST(Repack, UnpackGivesTheOriginalBytes) {
  std::mt19937 g(7);
  for (DType type : {DType::Q4_0, DType::Q8_0})
    for (const Packing& p : kPackings) {
      if (!can_pack(type, p, p.rows, 32)) continue;
      for (size_t groups : {1, 3})
        for (size_t cols : {32, 96, 288}) {
          const size_t rows = groups * p.rows, rb = row_bytes(type, cols), stride = rb + 5;
          const auto src = random_rows(g, type, rows, cols, stride);
          std::vector<uint8_t> packed(rows * rb + 1, 0xA5);
          pack_rows(type, p, src.data(), stride, rows, cols, packed.data());
          EXPECT_EQ(packed.back(), 0xA5) << "wrote past rows * row_bytes";
          std::vector<uint8_t> back(rows * stride, 0);
          unpack_rows(type, p, packed.data(), rows, cols, back.data(), stride);
          const size_t bb = dtype_info(type).type_size;
          for (size_t r = 0; r < rows; ++r) {
            ASSERT_EQ(std::memcmp(&back[r * stride], &src[r * stride], rb), 0)
                << dtype_name(type) << " " << int(p.rows) << "x" << int(p.group) << " row " << r;
            uint8_t blk[64];
            packed_block(type, p, packed.data(), cols, r, cols / 32 - 1, blk);
            EXPECT_EQ(std::memcmp(blk, &src[r * stride + rb - bb], bb), 0);
          }
        }
    }
}

TEST(Repack, BiasedQ8_0StoresCodesPlus128) {
  std::mt19937 g(3);
  const Packing p{4, 4, true};
  const auto src = random_rows(g, DType::Q8_0, 4, 32, 34);
  std::vector<uint8_t> packed(4 * 34);
  pack_rows(DType::Q8_0, p, src.data(), 34, 4, 32, packed.data());
  // Row 1's piece 0 (codes 0..3) follows row 0's: bytes 4..7 of the group.
  for (int k = 0; k < 4; ++k) EXPECT_EQ(packed[4 + k], static_cast<uint8_t>(src[34 + 2 + k] + 128));
  // Scales after all quants: row 2's at 4 * 32 + 2 * 2.
  EXPECT_EQ(std::memcmp(&packed[4 * 32 + 4], &src[2 * 34], 2), 0);
}

TEST(Repack, RefusesWhatItCannotPack) {
  EXPECT_FALSE(can_pack(DType::Q4_0, {16, 4, false}, 24, 64)) << "rows not a multiple of R";
  EXPECT_FALSE(can_pack(DType::Q4_0, {8, 4, true}, 16, 64)) << "bias is Q8_0's";
  EXPECT_FALSE(can_pack(DType::Q4_0, {8, 3, false}, 16, 64)) << "G must divide the qs bytes";
  EXPECT_FALSE(can_pack(DType::Q4_0, {8, 4, false}, 16, 48)) << "whole blocks";
  EXPECT_FALSE(can_pack(DType::Q4_K, {8, 4, false}, 16, 256)) << "no packed Q4_K layout yet";
  EXPECT_FALSE(can_pack(DType::Q8_0, {}, 16, 64)) << "plain is not a packing";
  EXPECT_TRUE(can_pack(DType::Q8_0, {16, 4, true}, 32, 64));
}

std::vector<const kernels::Table*> tables() {
  std::vector<const kernels::Table*> v;
  for (int i = 0; i < static_cast<int>(kernels::Isa::kCount); ++i)
    if (const kernels::Table* t = kernels::table_for(static_cast<kernels::Isa>(i))) v.push_back(t);
  return v;
}

// Y of the reference on plain weights, and of table t on the same weights packed with
// p, stored one byte past an aligned address, activations one float past one.
void expect_packed_equals_plain(const kernels::Table& t, DType type, Packing p, size_t rows, size_t K, size_t n,
                                std::mt19937& g) {
  const size_t rb = row_bytes(type, K);
  const auto plain = random_rows(g, type, rows, K, rb);
  std::vector<uint8_t> packed(rows * rb + 1);
  pack_rows(type, p, plain.data(), rb, rows, K, packed.data() + 1);
  std::vector<float> x(n * K + 1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(g);
  kernels::MatView wp{type, plain.data(), rows, K, 0, {}};
  kernels::MatView wq{type, packed.data() + 1, rows, K, 0, p};
  std::vector<float> want(n * rows), got(n * rows);
  test::run_matmul(kernels::reference(), wp, x.data() + 1, n, want.data(), 1);
  for (int threads : {1, 2}) {
    std::fill(got.begin(), got.end(), -1.0f);
    test::run_matmul(t, wq, x.data() + 1, n, got.data(), threads);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
        << t.name << " " << dtype_name(type) << " packed " << int(p.rows) << "x" << int(p.group)
        << (p.biased ? "+128" : "") << " rows " << rows << " K " << K << " n " << n << " threads " << threads;
  }
}

TEST(Repack, EveryTablesPackedMatmulEqualsThePlainReference) {
  std::mt19937 g(11);
  int own = 0;
  for (const kernels::Table* t : tables())
    for (DType type : {DType::Q4_0, DType::Q8_0}) {
      std::vector<Packing> ps = {Packing{4, 4, false}};  // foreign for every table: the fallback
      if (!t->of(type).packing.plain()) {
        ps.push_back(t->of(type).packing);
        ++own;
      }
      for (const Packing& p : ps)
        for (size_t K : {32, 160, 1312, 2048})
          for (size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 64}) {
            if (K == 2048 && n % 4 != 1) continue;  // the long rows once per tail length
            // 41 blocks: kernels that work in slabs of blocks (NEON i8mm: 32) end on a
            // partial one, with the 8-token tile (8, 16), its tails (5, 13) and n = 1.
            if (K == 1312 && n != 1 && n != 5 && n != 8 && n != 13 && n != 16) continue;
            // 4-row packings: an odd number of row groups too (13), for kernels that
            // take two groups at a time (NEON dotprod's GEMV).
            const size_t rows = p.rows == 4 && n % 2 == 1 ? 52 : 48;
            expect_packed_equals_plain(*t, type, p, rows, K, n, g);
          }
    }
  // On x86-64 with AVX2 (the CI host) every SIMD table packs both types.
  if (kernels::table_for(kernels::Isa::kAvx2)) {
    EXPECT_GE(own, 2);
  }
}

}  // namespace
}  // namespace ember
