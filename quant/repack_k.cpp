// The K-quant side of the row-interleaved layouts (repack.h). The codes move as Q4_0's
// do (pieces of G code bytes, R rows interleaved), but the scales are stored as the
// kernels use them rather than as the file packs them, one record per super-block and
// row group, so that one load and a zero (or sign) extension give a vector with one
// row per lane:
//   Q4_K: d [R], dmin [R] (fp16), the eight 6-bit sub-block scales [8][R] and mins
//         [8][R] as bytes. The 12-byte encoding of 16 values < 64 is a bijection (every
//         bit is one of theirs), so unpacking re-encodes the original bytes.
//   Q5_K: Q4_K's record; its codes are the block's qh (32 bytes) then qs (128), moved
//         as one run of pieces (qh pieces 0..7, qs pieces 8..39).
//   Q6_K: d [R] (fp16), the sixteen s8 sub-block scales [16][R].
//   Q2_K: d [R], dmin [R] (fp16), the sixteen scale bytes [16][R] as the file has them
//         (scale in the low nibble, min in the high one): the kernel splits them with
//         one AND or one shift, and the record stays the file's 20 bytes.
//   Q3_K: d [R] (fp16), the sixteen signed scales (sc - 32) [16][R] as s8, as Q6_K's;
//         its codes are the block's hmask (32 bytes) then qs (64), one run of pieces
//         (hmask pieces 0..7, qs pieces 8..23). The 12-byte encoding of 16 six-bit
//         values is a bijection, as Q4_K's.
//   IQ4_XS: d [R] (fp16), the eight signed sub-block scales ls - 32 [8][R] as s8. Each
//         6-bit ls is 4 bits of scales_l and 2 of scales_h, every bit one of theirs, so
//         unpacking re-encodes the original bytes.
#include <cstring>
#include <initializer_list>

#include "quant/blocks.h"
#include "quant/quantize.h"
#include "quant/repack.h"

namespace ember::repack_k {
namespace {

// A type's packed pieces: the `codes` bytes of a block at `offset` (Q4_K, Q2_K: qs; Q6_K:
// ql then qh), and `record` bytes of scales per row.
struct Format {
  size_t offset, codes, record;
};

Format format(DType type) {
  if (type == DType::Q4_K) return {offsetof(BlockQ4_K, qs), kQKK / 2, 4 + 2 * 8};
  if (type == DType::Q5_K) return {offsetof(BlockQ5_K, qh), kQKK / 8 + kQKK / 2, 4 + 2 * 8};
  if (type == DType::Q2_K) return {offsetof(BlockQ2_K, qs), kQKK / 4, 4 + 16};
  if (type == DType::Q3_K) return {offsetof(BlockQ3_K, hmask), kQKK / 8 + kQKK / 4, 2 + 16};
  if (type == DType::IQ4_XS) return {offsetof(BlockIQ4_XS, qs), kQKK / 2, 2 + 8};
  return {0, kQKK / 2 + kQKK / 4, 2 + 16};  // Q6_K
}

// Where row i's pieces and scale record of super-block b sit inside a row group.
struct Geometry {
  size_t R, G, nb;
  Format f;
  size_t piece(size_t b, size_t p, size_t i) const { return (b * (f.codes / G) + p) * R * G + i * G; }
  size_t record(size_t b) const { return nb * R * f.codes + b * R * f.record; }
};

Geometry geometry(DType type, Packing p, size_t cols) { return {p.rows, p.group, cols / kQKK, format(type)}; }

template <bool kPack>
void move_codes(const Geometry& g, size_t i, size_t b, uint8_t* plain, uint8_t* group) {
  for (size_t piece = 0; piece < g.f.codes / g.G; ++piece) {
    uint8_t* q = group + g.piece(b, piece, i);
    uint8_t* v = plain + g.f.offset + piece * g.G;
    if (kPack)
      std::memcpy(q, v, g.G);
    else
      std::memcpy(v, q, g.G);
  }
}

// Q4_K's record (Q5_K's too: the same header): d, dmin, then scales and mins unpacked
// (or packed back).
template <bool kPack>
void move_record_q4_k(const Geometry& g, size_t i, size_t b, uint8_t* plain, uint8_t* group) {
  BlockQ4_K blk;
  std::memcpy(&blk, plain, sizeof blk);
  uint8_t* rec = group + g.record(b);
  const size_t R = g.R;
  if (kPack) {
    std::memcpy(rec + 2 * i, &blk.d, 2);
    std::memcpy(rec + 2 * R + 2 * i, &blk.dmin, 2);
    for (int s = 0; s < 8; ++s) unpack_scale_min_q4_K(s, blk.scales, rec + (4 + s) * R + i, rec + (12 + s) * R + i);
    return;
  }
  std::memcpy(&blk.d, rec + 2 * i, 2);
  std::memcpy(&blk.dmin, rec + 2 * R + 2 * i, 2);
  uint8_t sc[8], m[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = rec[(4 + s) * R + i];
    m[s] = rec[(12 + s) * R + i];
  }
  pack_scales_q4_K(sc, m, blk.scales);
  std::memcpy(plain, &blk, offsetof(BlockQ4_K, qs));
}

// n bytes between a block field and its place in the record; kPack: into the record.
template <bool kPack>
void move_bytes(uint8_t* field, uint8_t* rec, size_t n) {
  if (kPack)
    std::memcpy(rec, field, n);
  else
    std::memcpy(field, rec, n);
}

// A record kept as the file has it (Q6_K: d; Q2_K: d, dmin): the fp16 fields at the
// block's offsets `halves`, each as [R] in the record, then the sixteen scale bytes at
// `scales` as [16][R].
template <bool kPack>
void move_record_as_is(const Geometry& g, size_t i, size_t b, uint8_t* plain, uint8_t* group,
                       std::initializer_list<size_t> halves, size_t scales) {
  uint8_t* rec = group + g.record(b);
  const size_t R = g.R;
  for (size_t offset : halves) {
    move_bytes<kPack>(plain + offset, rec + 2 * i, 2);
    rec += 2 * R;
  }
  for (size_t s = 0; s < 16; ++s) move_bytes<kPack>(plain + scales + s, rec + s * R + i, 1);
}

// Q3_K's record: d, then the sixteen scales unpacked to s8 (sc - 32), or packed back.
template <bool kPack>
void move_record_q3_k(const Geometry& g, size_t i, size_t b, uint8_t* plain, uint8_t* group) {
  uint8_t* rec = group + g.record(b);
  const size_t R = g.R;
  uint8_t* d = plain + offsetof(BlockQ3_K, d);
  uint8_t* scales = plain + offsetof(BlockQ3_K, scales);
  if (kPack) {
    std::memcpy(rec + 2 * i, d, 2);
    int8_t sc[16];
    unpack_scales_q3_K(scales, sc);
    for (size_t s = 0; s < 16; ++s) rec[2 * R + s * R + i] = static_cast<uint8_t>(sc[s]);
    return;
  }
  std::memcpy(d, rec + 2 * i, 2);
  int sc[16];
  for (size_t s = 0; s < 16; ++s) sc[s] = static_cast<int8_t>(rec[2 * R + s * R + i]) + 32;
  pack_scales_q3_K(sc, scales);
}

// IQ4_XS's record: d, then the eight scales ls - 32 as s8 (ls: iq4_xs_scale's bits).
template <bool kPack>
void move_record_iq4_xs(const Geometry& g, size_t i, size_t b, uint8_t* plain, uint8_t* group) {
  BlockIQ4_XS blk;
  std::memcpy(&blk, plain, sizeof blk);
  uint8_t* rec = group + g.record(b);
  const size_t R = g.R;
  if (kPack) {
    std::memcpy(rec + 2 * i, &blk.d, 2);
    for (int s = 0; s < 8; ++s) rec[2 * R + s * R + i] = static_cast<uint8_t>(iq4_xs_scale(blk, s));
    return;
  }
  std::memcpy(&blk.d, rec + 2 * i, 2);
  blk.scales_h = 0;
  std::memset(blk.scales_l, 0, sizeof blk.scales_l);
  for (int s = 0; s < 8; ++s) {
    const unsigned ls = static_cast<unsigned>(static_cast<int8_t>(rec[2 * R + s * R + i]) + 32);
    blk.scales_l[s / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (s % 2)));
    blk.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * s));
  }
  std::memcpy(plain, &blk, offsetof(BlockIQ4_XS, qs));
}

template <bool kPack>
void move_block(DType type, Packing p, size_t cols, size_t i, size_t b, uint8_t* plain, uint8_t* group) {
  const Geometry g = geometry(type, p, cols);
  if (type == DType::Q4_K || type == DType::Q5_K)
    move_record_q4_k<kPack>(g, i, b, plain, group);
  else if (type == DType::Q2_K)
    move_record_as_is<kPack>(g, i, b, plain, group, {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)},
                             offsetof(BlockQ2_K, scales));
  else if (type == DType::Q3_K)
    move_record_q3_k<kPack>(g, i, b, plain, group);
  else if (type == DType::IQ4_XS)
    move_record_iq4_xs<kPack>(g, i, b, plain, group);
  else  // Q6_K
    move_record_as_is<kPack>(g, i, b, plain, group, {offsetof(BlockQ6_K, d)}, offsetof(BlockQ6_K, scales));
  move_codes<kPack>(g, i, b, plain, group);
}

}  // namespace

bool handles(DType type) {
  return type == DType::Q4_K || type == DType::Q5_K || type == DType::Q6_K || type == DType::Q2_K ||
         type == DType::Q3_K || type == DType::IQ4_XS;
}

size_t qs_bytes(DType type) { return handles(type) ? format(type).codes : 0; }

size_t group_bytes(DType type, Packing p, size_t cols) {
  const Format f = format(type);
  return p.rows * (cols / kQKK) * (f.codes + f.record);
}

void pack_block(DType type, Packing p, size_t cols, size_t i, size_t b, const uint8_t* plain, uint8_t* group) {
  // move_block writes `plain` only when unpacking; the cast keeps one template.
  move_block<true>(type, p, cols, i, b, const_cast<uint8_t*>(plain), group);
}

void unpack_block(DType type, Packing p, size_t cols, size_t i, size_t b, const uint8_t* group, uint8_t* plain) {
  move_block<false>(type, p, cols, i, b, plain, const_cast<uint8_t*>(group));
}

}  // namespace ember::repack_k
