// Row-interleaved layouts (repack.h): the byte moves, written once for every packing.
// The K-quants' blocks go through repack_k.cpp; Q4_0 and Q8_0 are an fp16 scale
// followed by qs bytes, so a block is (d, qs) and their layouts differ only in R, G and
// Q8_0's bias.
#include "quant/repack.h"

#include <cstdio>
#include <cstring>

namespace ember {
// The K-quant layouts (repack_k.cpp): their scales are re-encoded, so their blocks move
// through these instead of move_block.
namespace repack_k {
bool handles(DType type);
size_t qs_bytes(DType type);
size_t group_bytes(DType type, Packing p, size_t cols);
void pack_block(DType type, Packing p, size_t cols, size_t i, size_t b, const uint8_t* plain, uint8_t* group);
void unpack_block(DType type, Packing p, size_t cols, size_t i, size_t b, const uint8_t* group, uint8_t* plain);
}  // namespace repack_k

namespace {

constexpr size_t kScaleBytes = 2;  // fp16 d at the start of a Q4_0 / Q8_0 block
constexpr size_t kMaxBlock = 256;  // bytes of the largest packable block (Q6_K: 210)

// Bytes of qs in a block of `type`, or 0 when the type has no packed layout.
size_t qs_bytes(DType type) {
  switch (type) {
    case DType::Q4_0: return 16;
    case DType::Q8_0: return 32;
    default: return repack_k::qs_bytes(type);
  }
}

// Where row i's piece p of block b and its scale sit inside a row group.
struct GroupGeometry {
  size_t R, G, qs, pieces, nb;
  size_t piece(size_t b, size_t p, size_t i) const { return (b * pieces + p) * R * G + i * G; }
  size_t scale(size_t b, size_t i) const { return nb * R * qs + (b * R + i) * kScaleBytes; }
};

GroupGeometry geometry(DType type, Packing p, size_t cols) {
  const size_t qs = qs_bytes(type);
  return {p.rows, p.group, qs, qs / p.group, cols / dtype_info(type).block_size};
}

// The byte stored for a qs byte (and back: the bias is its own inverse).
uint8_t stored(DType type, Packing p, uint8_t v) {
  return type == DType::Q8_0 && p.biased ? static_cast<uint8_t>(v ^ 0x80) : v;
}

// Block b of row i of the group at `group`, back to its plain bytes at `plain` (pack_rows
// does the forward move inline: it is the load-time hot loop).
void unpack_block(DType type, Packing p, const GroupGeometry& g, size_t i, size_t b, const uint8_t* group,
                  uint8_t* plain) {
  std::memcpy(plain, group + g.scale(b, i), kScaleBytes);
  for (size_t piece = 0; piece < g.pieces; ++piece) {
    const uint8_t* q = group + g.piece(b, piece, i);
    uint8_t* v = plain + kScaleBytes + piece * g.G;
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
      std::memcpy(group + g.scale(b, i), blk, kScaleBytes);
      uint8_t* q = group + g.piece(b, 0, i);
      if (g.G == 4 && !flip) {  // the common case, as fixed-size copies
        for (size_t piece = 0; piece < g.pieces; ++piece, q += g.R * 4) std::memcpy(q, blk + kScaleBytes + piece * 4, 4);
        continue;
      }
      for (size_t piece = 0; piece < g.pieces; ++piece, q += g.R * g.G) {
        std::memcpy(q, blk + kScaleBytes + piece * g.G, g.G);
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
