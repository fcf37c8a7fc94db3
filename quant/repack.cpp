// Row-interleaved layouts (repack.h): the byte moves, written once for every packing.
// The K-quants' blocks go through repack_k.cpp; the 32-weight types (Q4_0, Q4_1, Q5_0,
// Q5_1, IQ4_NL, Q8_0) are fp16 fields (d; Q4_1 and Q5_1: d, m), the Q5 types' 32 fifth
// bits, then qs bytes, so a block is (halves, [qh,] qs) and their layouts differ only in
// R, G, Q8_0's bias, the number of fp16 fields and the Q5 types' fifth-bit word.
#include "quant/repack.h"

#include <array>
#include <cstdio>
#include <cstring>

namespace ember {
// The K-quant (and IQ4_XS) layouts (repack_k.cpp): their scales are re-encoded, so their
// blocks move through these instead of move_block.
namespace repack_k {
bool handles(DType type);
size_t qs_bytes(DType type);
size_t group_bytes(DType type, Packing p, size_t cols);
void pack_block(DType type, Packing p, size_t cols, size_t i, size_t b, const uint8_t* plain, uint8_t* group);
void unpack_block(DType type, Packing p, size_t cols, size_t i, size_t b, const uint8_t* group, uint8_t* plain);
}  // namespace repack_k

namespace {

constexpr size_t kScaleBytes = 2;  // one fp16 field (d or m) at the start of a block
constexpr size_t kHighBytes = 4;   // the Q5 types' fifth bits (qh), after the fp16 fields
constexpr size_t kMaxBlock = 256;  // bytes of the largest packable block (Q6_K: 210)

// Bytes of qs in a block of `type`, or 0 when the type has no packed layout.
size_t qs_bytes(DType type) {
  switch (type) {
    case DType::Q4_0:
    case DType::IQ4_NL:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1: return 16;
    case DType::Q8_0: return 32;
    default: return repack_k::qs_bytes(type);
  }
}

// fp16 fields at the start of a block (d; d and m), and whether a fifth-bit word follows.
size_t halves(DType type) { return type == DType::Q4_1 || type == DType::Q5_1 ? 2 : 1; }
bool has_high(DType type) { return type == DType::Q5_0 || type == DType::Q5_1; }

// Where row i's piece p of block b, its fp16 field f and (Q5) its fifth-bit word sit
// inside a row group: the quants of all nb blocks, then per block the R values of each
// field in turn, then the R words. `head`: bytes before a block's qs, and a row's record
// per block.
struct GroupGeometry {
  size_t R, G, qs, pieces, nb, halves, head;
  size_t piece(size_t b, size_t p, size_t i) const { return (b * pieces + p) * R * G + i * G; }
  size_t field(size_t b, size_t f, size_t i) const { return nb * R * qs + b * R * head + (f * R + i) * kScaleBytes; }
  size_t high(size_t b, size_t i) const { return nb * R * qs + b * R * head + R * halves * kScaleBytes + i * kHighBytes; }
};

GroupGeometry geometry(DType type, Packing p, size_t cols) {
  const size_t qs = qs_bytes(type), h = halves(type);
  const size_t head = h * kScaleBytes + (has_high(type) ? kHighBytes : 0);
  return {p.rows, p.group, qs, qs / p.group, cols / dtype_info(type).block_size, h, head};
}

// The Q5 types' fifth bits, transposed: the file's bit 4j + m (weight 4j + m) becomes bit j of
// byte m. Weight 4j + m is byte m of code piece j (the low nibbles of qs bytes 4j .. 4j
// + 3 for j < 4, the high ones of bytes 4(j - 4) ..), so a kernel gets piece j's fifth
// bits into bit 4 of each byte with one shift of the word and one AND (repack.h).
// spread4[v]: v's 4 bits to bits 0, 8, 16, 24; spread8[v]: v's 8 bits to bits 0, 4, .. 28.
constexpr auto kSpread4 = [] {
  std::array<uint32_t, 16> t{};
  for (uint32_t v = 0; v < 16; ++v)
    for (uint32_t m = 0; m < 4; ++m) t[v] |= ((v >> m) & 1u) << (8 * m);
  return t;
}();
constexpr auto kSpread8 = [] {
  std::array<uint32_t, 256> t{};
  for (uint32_t v = 0; v < 256; ++v)
    for (uint32_t j = 0; j < 8; ++j) t[v] |= ((v >> j) & 1u) << (4 * j);
  return t;
}();

uint32_t transpose_high_bits(uint32_t qh) {
  uint32_t w = 0;
  for (uint32_t j = 0; j < 8; ++j) w |= kSpread4[(qh >> (4 * j)) & 15u] << j;
  return w;
}

uint32_t untranspose_high_bits(uint32_t w) {
  uint32_t qh = 0;
  for (uint32_t m = 0; m < 4; ++m) qh |= kSpread8[(w >> (8 * m)) & 255u] << m;
  return qh;
}

void pack_high(const uint8_t* qh_bytes, uint8_t* dst) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, kHighBytes);
  const uint32_t w = transpose_high_bits(qh);
  std::memcpy(dst, &w, kHighBytes);
}

void unpack_high(const uint8_t* src, uint8_t* qh_bytes) {
  uint32_t w;
  std::memcpy(&w, src, kHighBytes);
  const uint32_t qh = untranspose_high_bits(w);
  std::memcpy(qh_bytes, &qh, kHighBytes);
}

// The byte stored for a qs byte (and back: the bias is its own inverse).
uint8_t stored(DType type, Packing p, uint8_t v) {
  return type == DType::Q8_0 && p.biased ? static_cast<uint8_t>(v ^ 0x80) : v;
}

// Block b of row i of the group at `group`, back to its plain bytes at `plain` (pack_rows
// does the forward move inline: it is the load-time hot loop).
void unpack_block(DType type, Packing p, const GroupGeometry& g, size_t i, size_t b, const uint8_t* group,
                  uint8_t* plain) {
  for (size_t f = 0; f < g.halves; ++f) std::memcpy(plain + f * kScaleBytes, group + g.field(b, f, i), kScaleBytes);
  if (has_high(type)) unpack_high(group + g.high(b, i), plain + g.halves * kScaleBytes);
  for (size_t piece = 0; piece < g.pieces; ++piece) {
    const uint8_t* q = group + g.piece(b, piece, i);
    uint8_t* v = plain + g.head + piece * g.G;
    for (size_t k = 0; k < g.G; ++k) v[k] = stored(type, p, q[k]);
  }
}

}  // namespace

bool can_pack(DType type, Packing p, size_t rows, size_t cols) {
  const size_t qs = qs_bytes(type);
  if (qs == 0 || p.plain() || p.group == 0 || qs % p.group != 0) return false;
  if (p.biased && type != DType::Q8_0) return false;
  return rows % p.rows == 0 && cols % dtype_info(type).block_size == 0 && cols > 0;
}

size_t packed_group_bytes(DType type, Packing p, size_t cols) {
  return repack_k::handles(type) ? repack_k::group_bytes(type, p, cols) : p.rows * row_bytes(type, cols);
}

size_t packed_bytes(DType type, Packing p, size_t rows, size_t cols) {
  return p.plain() ? rows * row_bytes(type, cols) : rows / p.rows * packed_group_bytes(type, p, cols);
}

const char* packing_name(Packing p, char* buf, size_t cap) {
  if (p.plain()) {
    std::snprintf(buf, cap, "plain");
  } else {
    std::snprintf(buf, cap, "%ux%u%s", unsigned{p.rows}, unsigned{p.group}, p.biased ? "+128" : "");
  }
  return buf;
}

void pack_rows(DType type, Packing p, const uint8_t* src, size_t src_stride, size_t rows, size_t cols,
               uint8_t* dst) {
  // The load-time hot loop (a TinyLlama's 600 MB): straight copies of G-byte pieces,
  // the geometry's offsets inlined.
  const GroupGeometry g = geometry(type, p, cols);
  const size_t block = dtype_info(type).type_size, group_bytes = packed_group_bytes(type, p, cols);
  const bool flip = type == DType::Q8_0 && p.biased;
  uint8_t tmp[kMaxBlock];
  for (size_t r = 0; r < rows; ++r) {
    uint8_t* group = dst + (r / g.R) * group_bytes;
    const size_t i = r % g.R;
    const uint8_t* row = src + r * src_stride;
    for (size_t b = 0; b < g.nb; ++b) {
      const uint8_t* blk = row + b * block;
      if (repack_k::handles(type)) {  // scales re-encoded: through a copy of the block
        std::memcpy(tmp, blk, block);
        repack_k::pack_block(type, p, cols, i, b, tmp, group);
        continue;
      }
      for (size_t f = 0; f < g.halves; ++f) std::memcpy(group + g.field(b, f, i), blk + f * kScaleBytes, kScaleBytes);
      if (has_high(type)) pack_high(blk + g.halves * kScaleBytes, group + g.high(b, i));
      uint8_t* q = group + g.piece(b, 0, i);
      const uint8_t* qs = blk + g.head;
      if (g.G == 4 && !flip) {  // the common case, as fixed-size copies
        for (size_t piece = 0; piece < g.pieces; ++piece, q += g.R * 4) std::memcpy(q, qs + piece * 4, 4);
        continue;
      }
      for (size_t piece = 0; piece < g.pieces; ++piece, q += g.R * g.G) {
        std::memcpy(q, qs + piece * g.G, g.G);
        if (flip)
          for (size_t k = 0; k < g.G; ++k) q[k] ^= 0x80;
      }
    }
  }
}

void unpack_rows(DType type, Packing p, const uint8_t* src, size_t rows, size_t cols, uint8_t* dst,
                 size_t dst_stride) {
  const size_t block = dtype_info(type).type_size;
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < cols / dtype_info(type).block_size; ++b)
      packed_block(type, p, src, cols, r, b, dst + r * dst_stride + b * block);
}

void packed_block(DType type, Packing p, const uint8_t* packed, size_t cols, size_t r, size_t b, uint8_t* out) {
  if (repack_k::handles(type)) {
    const uint8_t* group = packed + (r / p.rows) * packed_group_bytes(type, p, cols);
    return repack_k::unpack_block(type, p, cols, r % p.rows, b, group, out);
  }
  const GroupGeometry g = geometry(type, p, cols);
  const uint8_t* group = packed + (r / g.R) * packed_group_bytes(type, p, cols);
  unpack_block(type, p, g, r % g.R, b, group, out);
}

}  // namespace ember
