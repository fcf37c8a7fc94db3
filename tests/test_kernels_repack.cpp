// Row-interleaved ("repacked") weights (quant/repack.h, kernels.h PackedQMatmulFn):
//  * the layouts: packing then unpacking gives the original bytes for every packing and
//    shape, packed_block gathers each block as it was, and what cannot be packed is
//    refused;
//  * the kernels: every table's matmul on packed weights (its own packing, and another
//    one, which runs the reference's packed kernel) equals the reference on the plain
//    weights BIT FOR BIT (kernels.h: the integer sums are exact and the float steps
//    are the same per output), for batch sizes 1..17 and 64, several K, misaligned
//    weights and activations, one and two threads;
//  * matmul_shared (one quantization of X for several matrices) equals the reference's
//    matmul of each, bit for bit, for packed, plain and mixed-type matrices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize.h"
#include "quant/repack.h"
#include "support/matmul.h"
#include "support/vnni_emulated.h"

namespace ember {
namespace {

const Packing kPackings[] = {{4, 4, false}, {8, 4, false}, {16, 4, false}, {4, 8, false},
                             {8, 4, true},  {16, 4, true}, {4, 16, false}};

constexpr DType kTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q8_0,
                            DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q2_K, DType::Q3_K, DType::IQ4_XS};
// The 256-weight super-block types.
bool is_k(DType type) {
  return type == DType::Q4_K || type == DType::Q5_K || type == DType::Q6_K || type == DType::Q2_K ||
         type == DType::Q3_K || type == DType::IQ4_XS;
}

// Offsets of a block's fp16 scales: Q4_0 / Q5_0 / Q8_0 d; Q4_1 / Q5_1 d and m; Q4_K d and
// dmin; Q6_K d (last); Q2_K d and dmin (last); Q3_K d (last); IQ4_XS d.
std::vector<size_t> fp16_offsets(DType type) {
  if (type == DType::Q2_K) return {80, 82};
  if (type == DType::Q3_K) return {108};
  if (type == DType::Q4_K || type == DType::Q5_K || type == DType::Q4_1 || type == DType::Q5_1) return {0, 2};
  if (type == DType::Q6_K) return {208};
  return {0};
}

// Random blocks of `type`: random code and sub-block scale bytes, small random fp16
// scales.
std::vector<uint8_t> random_rows(std::mt19937& g, DType type, size_t rows, size_t cols, size_t stride) {
  std::vector<uint8_t> w(rows * stride);
  for (auto& b : w) b = static_cast<uint8_t>(g());
  const size_t bb = dtype_info(type).type_size, nb = cols / dtype_info(type).block_size;
  std::uniform_real_distribution<float> mag(-10.0f, -4.0f);
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < nb; ++b)
      for (size_t off : fp16_offsets(type)) {
        const uint16_t d = fp32_to_fp16((g() & 1 ? -1.0f : 1.0f) * std::exp2(mag(g)));
        std::memcpy(&w[r * stride + b * bb + off], &d, 2);
      }
  return w;
}

// Row lengths to test each type with.
std::vector<size_t> cols_for(DType type, std::initializer_list<size_t> small) {
  if (is_k(type)) return {256, 512, 2048, 2816};
  return small;
}

TEST(Repack, UnpackGivesTheOriginalBytes) {
  std::mt19937 g(7);
  for (DType type : kTypes)
    for (const Packing& p : kPackings) {
      const size_t block = dtype_info(type).block_size;
      if (!can_pack(type, p, p.rows, block)) continue;
      for (size_t groups : {1, 3})
        for (size_t cols : {block, 3 * block, 9 * block}) {
          const size_t rows = groups * p.rows, rb = row_bytes(type, cols), stride = rb + 5;
          const auto src = random_rows(g, type, rows, cols, stride);
          const size_t bytes = packed_bytes(type, p, rows, cols);
          // Q4_K's, Q5_K's and Q3_K's scale records are 4 bytes per row and super-block
          // larger than the file's, IQ4_XS's 2.
          const bool larger = type == DType::Q4_K || type == DType::Q5_K || type == DType::Q3_K;
          const size_t extra = rows * (cols / 256) * (larger ? 4 : type == DType::IQ4_XS ? 2 : 0);
          EXPECT_EQ(bytes, rows * rb + extra);
          std::vector<uint8_t> packed(bytes + 1, 0xA5);
          pack_rows(type, p, src.data(), stride, rows, cols, packed.data());
          EXPECT_EQ(packed.back(), 0xA5) << "wrote past packed_bytes";
          std::vector<uint8_t> back(rows * stride, 0);
          unpack_rows(type, p, packed.data(), rows, cols, back.data(), stride);
          const size_t bb = dtype_info(type).type_size;
          for (size_t r = 0; r < rows; ++r) {
            ASSERT_EQ(std::memcmp(&back[r * stride], &src[r * stride], rb), 0)
                << dtype_name(type) << " " << int(p.rows) << "x" << int(p.group) << " row " << r;
            uint8_t blk[256];
            packed_block(type, p, packed.data(), cols, r, cols / block - 1, blk);
            EXPECT_EQ(std::memcmp(blk, &src[r * stride + rb - bb], bb), 0);
          }
        }
    }
}

// Q5_0's fifth bits: the file's bit 4j + m (weight 4j + m) is bit j of byte m of the
// row's word, which sits after the block's R scales (repack.h), for each single bit.
TEST(Repack, Q5_0FifthBitsAreTransposed) {
  const Packing p{8, 4, false};
  const size_t rows = 8, cols = 64, rb = row_bytes(DType::Q5_0, cols), R = p.rows;
  for (uint32_t bit = 0; bit < 32; ++bit) {
    std::vector<uint8_t> src(rows * rb, 0);
    const uint32_t qh = 1u << bit;
    std::memcpy(&src[3 * rb + 22 + 2], &qh, 4);  // row 3, block 1
    std::vector<uint8_t> packed(packed_bytes(DType::Q5_0, p, rows, cols));
    pack_rows(DType::Q5_0, p, src.data(), rb, rows, cols, packed.data());
    uint32_t word;
    std::memcpy(&word, &packed[2 * R * 16 + 1 * R * 6 + 2 * R + 3 * 4], 4);
    EXPECT_EQ(word, 1u << (8 * (bit % 4) + bit / 4)) << "file bit " << bit;
    size_t nonzero = 0;
    for (uint8_t v : packed) nonzero += v != 0;
    EXPECT_EQ(nonzero, 1u) << "file bit " << bit;
  }
}

// Q4_K's scales are stored unpacked and re-encoded on the way back: random bytes give
// every 6-bit scale and min (>= 32 included, their top bits in the shared bytes), and
// each comes back as the file had it. The record sits where repack.h says.
TEST(Repack, Q4_KScalesRoundTrip) {
  std::mt19937 g(5);
  const Packing p{8, 4, false};
  const size_t rows = 8, cols = 512, rb = row_bytes(DType::Q4_K, cols);
  int high_scales = 0, high_mins = 0;
  for (int rep = 0; rep < 20; ++rep) {
    const auto src = random_rows(g, DType::Q4_K, rows, cols, rb);
    std::vector<uint8_t> packed(packed_bytes(DType::Q4_K, p, rows, cols));
    pack_rows(DType::Q4_K, p, src.data(), rb, rows, cols, packed.data());
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < 2; ++b) {
        const uint8_t* blk = &src[r * rb + b * 144];
        const uint8_t* rec = &packed[2 * rows * 128 + b * rows * 20];
        EXPECT_EQ(std::memcmp(rec + 2 * r, blk, 2), 0) << "d";
        EXPECT_EQ(std::memcmp(rec + 2 * rows + 2 * r, blk + 2, 2), 0) << "dmin";
        for (int s = 0; s < 8; ++s) {
          uint8_t sc, m;
          unpack_scale_min_q4_K(s, blk + 4, &sc, &m);
          EXPECT_EQ(rec[4 * rows + s * rows + r], sc);
          EXPECT_EQ(rec[12 * rows + s * rows + r], m);
          high_scales += sc >= 32;
          high_mins += m >= 32;
        }
        uint8_t back[144];
        packed_block(DType::Q4_K, p, packed.data(), cols, r, b, back);
        ASSERT_EQ(std::memcmp(back, blk, 144), 0) << "row " << r << " block " << b;
      }
  }
  EXPECT_GT(high_scales, 0);
  EXPECT_GT(high_mins, 0);
}

// Q2_K's record and pieces sit where repack.h says: row r's d, dmin and scale byte s of
// super-block b in the record after all codes, qs bytes 4p .. 4p + 3 as piece p.
TEST(Repack, Q2_KLayoutIsAsDocumented) {
  std::mt19937 g(6);
  const Packing p{8, 4, false};
  const size_t rows = 8, cols = 512, rb = row_bytes(DType::Q2_K, cols), R = p.rows;
  const auto src = random_rows(g, DType::Q2_K, rows, cols, rb);
  std::vector<uint8_t> packed(packed_bytes(DType::Q2_K, p, rows, cols));
  pack_rows(DType::Q2_K, p, src.data(), rb, rows, cols, packed.data());
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < 2; ++b) {
      const uint8_t* blk = &src[r * rb + b * 84];
      const uint8_t* rec = &packed[2 * R * 64 + b * R * 20];
      EXPECT_EQ(std::memcmp(rec + 2 * r, blk + 80, 2), 0) << "d";
      EXPECT_EQ(std::memcmp(rec + 2 * R + 2 * r, blk + 82, 2), 0) << "dmin";
      for (size_t s = 0; s < 16; ++s) EXPECT_EQ(rec[4 * R + s * R + r], blk[s]) << "scale " << s;
      for (size_t piece = 0; piece < 16; ++piece)
        EXPECT_EQ(std::memcmp(&packed[(b * 16 + piece) * R * 4 + r * 4], blk + 16 + 4 * piece, 4), 0);
    }
}

// Q3_K's scales are stored unpacked (s8, sc - 32) and re-encoded on the way back: random
// bytes give every value in [-32, 31]; the record and the pieces (hmask, then qs) sit
// where repack.h says.
TEST(Repack, Q3_KLayoutIsAsDocumented) {
  std::mt19937 g(8);
  const Packing p{8, 4, false};
  const size_t rows = 8, cols = 512, rb = row_bytes(DType::Q3_K, cols), R = p.rows;
  bool seen[64] = {};
  for (int rep = 0; rep < 10; ++rep) {
    const auto src = random_rows(g, DType::Q3_K, rows, cols, rb);
    std::vector<uint8_t> packed(packed_bytes(DType::Q3_K, p, rows, cols));
    pack_rows(DType::Q3_K, p, src.data(), rb, rows, cols, packed.data());
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < 2; ++b) {
        const uint8_t* blk = &src[r * rb + b * 110];
        const uint8_t* rec = &packed[2 * R * 96 + b * R * 18];
        EXPECT_EQ(std::memcmp(rec + 2 * r, blk + 108, 2), 0) << "d";
        int8_t sc[16];
        unpack_scales_q3_K(blk + 96, sc);
        for (size_t s = 0; s < 16; ++s) {
          EXPECT_EQ(static_cast<int8_t>(rec[2 * R + s * R + r]), sc[s]) << "scale " << s;
          seen[sc[s] + 32] = true;
        }
        for (size_t piece = 0; piece < 24; ++piece)
          EXPECT_EQ(std::memcmp(&packed[(b * 24 + piece) * R * 4 + r * 4], blk + 4 * piece, 4), 0);
        uint8_t back[110];
        packed_block(DType::Q3_K, p, packed.data(), cols, r, b, back);
        ASSERT_EQ(std::memcmp(back, blk, 110), 0) << "row " << r << " block " << b;
      }
  }
  EXPECT_EQ(std::count(std::begin(seen), std::end(seen), true), 64);
}

// IQ4_XS's scales are stored as ls - 32 (s8) and re-encoded on the way back: every
// value of every sub-block's 6-bit ls, at the record's place (repack.h), and the block
// comes back as the file had it.
TEST(Repack, IQ4_XSScalesRoundTrip) {
  std::mt19937 g(9);
  const Packing p{8, 4, false};
  const size_t rows = 8, cols = 512, rb = row_bytes(DType::IQ4_XS, cols), R = p.rows;
  bool seen[64] = {};
  for (int rep = 0; rep < 20; ++rep) {
    const auto src = random_rows(g, DType::IQ4_XS, rows, cols, rb);
    std::vector<uint8_t> packed(packed_bytes(DType::IQ4_XS, p, rows, cols));
    pack_rows(DType::IQ4_XS, p, src.data(), rb, rows, cols, packed.data());
    for (size_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < 2; ++b) {
        BlockIQ4_XS blk;
        std::memcpy(&blk, &src[r * rb + b * 136], 136);
        const uint8_t* rec = &packed[2 * R * 128 + b * R * 10];
        EXPECT_EQ(std::memcmp(rec + 2 * r, &blk.d, 2), 0) << "d";
        for (int s = 0; s < 8; ++s) {
          const int sc = iq4_xs_scale(blk, s);
          EXPECT_EQ(static_cast<int8_t>(rec[2 * R + s * R + r]), sc) << "row " << r << " sub-block " << s;
          seen[sc + 32] = true;
        }
        // Piece 4s + k of row r: bytes 16s + 4k .. + 3 of the block's qs.
        EXPECT_EQ(std::memcmp(&packed[b * R * 128 + (4 * 5 + 2) * R * 4 + r * 4], blk.qs + 16 * 5 + 8, 4), 0);
        uint8_t back[136];
        packed_block(DType::IQ4_XS, p, packed.data(), cols, r, b, back);
        ASSERT_EQ(std::memcmp(back, &blk, 136), 0) << "row " << r << " block " << b;
      }
  }
  for (int v = 0; v < 64; ++v) EXPECT_TRUE(seen[v]) << "ls " << v << " never drawn";
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
  EXPECT_FALSE(can_pack(DType::Q4_K, {8, 4, false}, 16, 128)) << "whole super-blocks";
  EXPECT_FALSE(can_pack(DType::Q4_K, {8, 4, true}, 16, 256)) << "bias is Q8_0's";
  EXPECT_TRUE(can_pack(DType::Q5_K, {8, 4, false}, 16, 256));
  EXPECT_TRUE(can_pack(DType::Q5_0, {8, 4, false}, 16, 64));
  EXPECT_FALSE(can_pack(DType::Q5_0, {8, 4, true}, 16, 64)) << "bias is Q8_0's";
  EXPECT_TRUE(can_pack(DType::Q5_1, {8, 4, false}, 16, 64));
  EXPECT_TRUE(can_pack(DType::IQ4_NL, {8, 4, false}, 16, 64));
  EXPECT_TRUE(can_pack(DType::Q2_K, {8, 4, false}, 16, 256));
  EXPECT_FALSE(can_pack(DType::Q2_K, {8, 4, false}, 16, 128)) << "whole super-blocks";
  EXPECT_FALSE(can_pack(DType::Q2_K, {8, 4, true}, 16, 256)) << "bias is Q8_0's";
  EXPECT_TRUE(can_pack(DType::Q3_K, {4, 4, false}, 8, 512));
  EXPECT_FALSE(can_pack(DType::Q3_K, {8, 4, false}, 12, 256)) << "rows not a multiple of R";
  EXPECT_TRUE(can_pack(DType::IQ4_XS, {8, 4, false}, 16, 256));
  EXPECT_FALSE(can_pack(DType::IQ4_XS, {8, 4, false}, 16, 128)) << "whole super-blocks";
  EXPECT_FALSE(can_pack(DType::IQ4_XS, {8, 4, true}, 16, 256)) << "bias is Q8_0's";
  EXPECT_TRUE(can_pack(DType::Q4_K, {16, 4, false}, 32, 512));
  EXPECT_FALSE(can_pack(DType::Q8_0, {}, 16, 64)) << "plain is not a packing";
  EXPECT_TRUE(can_pack(DType::Q8_0, {16, 4, true}, 32, 64));
}

// Every table this CPU can run, then the AVX-VNNI code on emulated VNNI (AVX2 hosts).
std::vector<const kernels::Table*> tables() { return kernels::tables_with_emulated(); }

// Y of the reference on the plain weights `plain` (rows x K) and activations x (n x K,
// from x + 1: one float past an aligned address), and of table t on the same weights
// packed with p, stored one byte past an aligned address.
void expect_packed_equals_plain(const kernels::Table& t, DType type, Packing p, const std::vector<uint8_t>& plain,
                                size_t rows, size_t K, const std::vector<float>& x, size_t n) {
  const size_t rb = row_bytes(type, K);
  std::vector<uint8_t> packed(packed_bytes(type, p, rows, K) + 1);
  pack_rows(type, p, plain.data(), rb, rows, K, packed.data() + 1);
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

// The same on random weights and normal activations.
void expect_packed_equals_plain(const kernels::Table& t, DType type, Packing p, size_t rows, size_t K, size_t n,
                                std::mt19937& g) {
  const auto plain = random_rows(g, type, rows, K, row_bytes(type, K));
  std::vector<float> x(n * K + 1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(g);
  expect_packed_equals_plain(t, type, p, plain, rows, K, x, n);
}

TEST(Repack, EveryTablesPackedMatmulEqualsThePlainReference) {
  std::mt19937 g(11);
  int own = 0;
  for (const kernels::Table* t : tables())
    for (DType type : kTypes) {
      std::vector<Packing> ps = {Packing{4, 4, false}};  // foreign for every table: the fallback
      if (!t->of(type).packing.plain()) {
        ps.push_back(t->of(type).packing);
        ++own;
      }
      for (const Packing& p : ps)
        for (size_t K : cols_for(type, {32, 160, 1312, 2048}))
          for (size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 64}) {
            if (K == 2048 && n % 4 != 1) continue;  // the long rows once per tail length
            // 41 blocks, 11 super-blocks: kernels that work in slabs of blocks (NEON i8mm:
            // 32 blocks, 8 super-blocks) carry over one and end on a partial one, with the
            // 8-token tile (8, 16), its tails (5, 13) and n = 1.
            const bool slabs = K == 1312 || K == 2816;
            if (slabs && n != 1 && n != 5 && n != 8 && n != 13 && n != 16) continue;
            // 4-row packings: an odd number of row groups too (13), for kernels that
            // take two groups at a time (NEON dotprod's GEMV).
            const size_t rows = p.rows == 4 && n % 2 == 1 ? 52 : 48;
            expect_packed_equals_plain(*t, type, p, rows, K, n, g);
          }
    }
  // On x86-64 with AVX2 (the CI host) every SIMD table packs every type of kTypes.
  if (const kernels::Table* t = kernels::table_for(kernels::Isa::kAvx2)) {
    EXPECT_GE(own, static_cast<int>(std::size(kTypes)));
    for (DType type : kTypes) {
      EXPECT_EQ(t->of(type).packing, (Packing{8, 4, false})) << dtype_name(type);
    }
  }
  // On AArch64 the dotprod and i8mm tables pack Q4_K, Q5_K, Q6_K, Q2_K, Q3_K, IQ4_XS, Q5_0,
  // Q4_1, Q5_1 and IQ4_NL 4 x 4 (SDOT by element), so the loop above ran those kernels.
  for (kernels::Isa isa : {kernels::Isa::kNeonDotprod, kernels::Isa::kNeonI8mm}) {
    const kernels::Table* t = kernels::table_for(isa);
    if (!t) continue;
    for (DType type : {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q2_K, DType::Q3_K, DType::IQ4_XS, DType::Q5_0,
                       DType::Q4_1, DType::Q5_1, DType::IQ4_NL}) {
      EXPECT_EQ(t->of(type).packing, (Packing{4, 4, false})) << t->name << " " << dtype_name(type);
    }
  }
}


// Extreme codes against extreme activations, in each table's own packing: the integer
// sums at their bounds (Q4_K's sub-block of 32 codes 15 against 127: 60960, past s16,
// so a kernel must widen before it; Q8_0's -128 codes; Q6_K's scales -128 and 127;
// IQ4_XS's levels -127 and 113 with scales -32 and 31), as
// QMatmul.ExtremeBlocksBitwiseEqualToReference does for the plain kernels. Weights: row
// r all 0x00, 0xFF, 0x80 or 0x7F code bytes (fp16 scales random); activations all +1,
// all -1 or alternating per token (quantized to +-127).
TEST(Repack, ExtremeBlocksEqualThePlainReference) {
  std::mt19937 g(13);
  for (const kernels::Table* t : tables())
    for (DType type : kTypes) {
      const Packing p = t->of(type).packing;
      if (p.plain()) continue;
      const size_t K = is_k(type) ? 512 : 64, rows = 2 * p.rows, rb = row_bytes(type, K);
      const size_t bb = dtype_info(type).type_size;
      for (int pattern = 0; pattern < 4; ++pattern) {
        auto plain = random_rows(g, type, rows, K, rb);
        for (size_t r = 0; r < rows; ++r)
          for (size_t b = 0; b < K / dtype_info(type).block_size; ++b) {
            uint8_t* blk = plain.data() + r * rb + b * bb;
            const uint8_t fills[4] = {0x00, 0xFF, 0x80, 0x7F}, fill = fills[(r + pattern) % 4];
            if (type == DType::Q4_K || type == DType::Q5_K) {
              std::memset(blk + 4, 0xFF, 12);  // scales and mins 63
              std::memset(blk + 16, fill, bb - 16);
            } else if (type == DType::Q2_K) {  // scales and mins 15, then codes
              std::memset(blk, 0xFF, 16);
              std::memset(blk + 16, fill, 64);
            } else if (type == DType::Q3_K) {  // codes, then scales -32 or 31
              std::memset(blk, fill, 96);
              std::memset(blk + 96, pattern % 2 ? 0x00 : 0xFF, 12);
            } else if (type == DType::Q6_K) {  // codes, then scales -128 or 127
              std::memset(blk, fill, 192);
              std::memset(blk + 192, pattern % 2 ? 0x80 : 0x7F, 16);
            } else if (type == DType::IQ4_XS) {  // scales ls 0 or 63 (-32 or 31), then codes
              std::memset(blk + 2, pattern % 2 ? 0x00 : 0xFF, 6);
              std::memset(blk + 8, fill, 128);
            } else {
              const size_t fields = 2 * fp16_offsets(type).size();  // d (and m) stay random
              std::memset(blk + fields, fill, bb - fields);
            }
          }
        for (size_t n : {1, 5, 8}) {
          std::vector<float> x(n * K + 1);
          for (size_t tk = 0; tk < n; ++tk)
            for (size_t i = 0; i < K; ++i)
              x[1 + tk * K + i] = (tk + pattern) % 3 == 0   ? 1.0f
                                  : (tk + pattern) % 3 == 1 ? -1.0f
                                                            : (i % 2 ? 1.0f : -1.0f);
          SCOPED_TRACE("pattern " + std::to_string(pattern));
          expect_packed_equals_plain(*t, type, p, plain, rows, K, x, n);
        }
      }
    }
}

// Three matrices of different heights, in the table's own packing, plain, and a
// foreign packing (types that share Q8_0 activations, and a mix that does not, which
// runs one matmul after another), against the reference on each plain matrix.
TEST(Repack, SharedMatmulEqualsSeparateMatmuls) {
  std::mt19937 g(12);
  const DType sets[][3] = {{DType::Q4_0, DType::Q4_0, DType::Q4_0},
                           {DType::Q8_0, DType::Q8_0, DType::Q8_0},
                           {DType::Q4_0, DType::Q8_0, DType::Q4_0},
                           {DType::Q4_K, DType::Q4_K, DType::Q4_K},
                           {DType::Q4_K, DType::Q8_0, DType::Q4_0}};
  const size_t heights[3] = {64, 16, 48};
  for (const kernels::Table* t : tables())
    for (const auto& set : sets)
      for (size_t n : {1, 5, 38}) {
        const size_t K = 512;
        std::vector<std::vector<uint8_t>> plain(3), packed(3);
        std::vector<kernels::MatView> ws(3);
        std::vector<std::vector<float>> want(3), got(3);
        std::vector<float> x(n * K);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (auto& v : x) v = nd(g);
        size_t scratch = 0;
        for (size_t i = 0; i < 3; ++i) {
          const DType type = set[i];
          const size_t rows = heights[i], rb = row_bytes(type, K);
          plain[i] = random_rows(g, type, rows, K, rb);
          const Packing own = t->of(type).packing;
          const Packing p = i == 1 ? Packing{} : i == 0 && !own.plain() ? own : Packing{4, 4, false};
          ws[i] = kernels::MatView{type, plain[i].data(), rows, K, 0, {}};
          want[i].resize(n * rows);
          test::run_matmul(kernels::reference(), ws[i], x.data(), n, want[i].data(), 1);
          if (!p.plain()) {
            packed[i].resize(packed_bytes(type, p, rows, K));
            pack_rows(type, p, plain[i].data(), rb, rows, K, packed[i].data());
            ws[i] = kernels::MatView{type, packed[i].data(), rows, K, 0, p};
          }
          scratch = std::max(scratch, kernels::matmul_scratch_bytes(type, n, K, 3));
        }
        for (int threads : {1, 3}) {
          ThreadPool pool(threads);
          std::vector<uint8_t> ws_bytes(scratch);
          std::vector<float*> ys;
          for (size_t i = 0; i < 3; ++i) {
            got[i].assign(n * heights[i], -1.0f);
            ys.push_back(got[i].data());
          }
          kernels::matmul_shared(*t, ws, x.data(), n, ys, threads > 1 ? &pool : nullptr, ws_bytes.data());
          for (size_t i = 0; i < 3; ++i)
            ASSERT_EQ(std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(float)), 0)
                << t->name << " set " << dtype_name(set[0]) << "/" << dtype_name(set[1]) << " matrix " << i
                << " n " << n << " threads " << threads;
        }
      }
}

}  // namespace
}  // namespace ember
