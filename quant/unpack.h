// Bit-level unpackers the SIMD kernels share with each other, next to the per-element
// reference ones in quant/quantize.h (tests/test_quant.cpp holds them equal).
//
// `static inline` on purpose: every ISA file compiles these with its own target flags,
// and a function with external linkage could be merged by the linker into one copy
// built for the wrong CPU.
#pragma once
#include <cstdint>
#include <cstring>

namespace ember {

// Q4_K's eight 6-bit sub-block scales and mins (quant/blocks.h) from scales[12], one per
// byte, sub-block s in byte s: four per 32-bit word, no per-element branches.
static inline void q4_K_scales_mins_bytes(const uint8_t* scales, uint64_t* sc, uint64_t* m) {
  uint32_t a, b, c;
  std::memcpy(&a, scales, 4);
  std::memcpy(&b, scales + 4, 4);
  std::memcpy(&c, scales + 8, 4);
  *sc = uint64_t{a & 0x3f3f3f3fu} | uint64_t{(c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u)} << 32;
  *m = uint64_t{b & 0x3f3f3f3fu} | uint64_t{((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u)} << 32;
}

// Q3_K's sixteen 6-bit sub-block scales (quant/blocks.h, before the -32) from
// scales[12], one per byte: sub-blocks 0..7 in *lo, 8..15 in *hi (byte s % 8). The low
// nibbles are bytes 0..7 (low halves, then high halves), the top two bits of sub-block s
// bits 2 (s / 4) of byte 8 + s % 4.
static inline void q3_K_scale_bytes(const uint8_t* scales, uint64_t* lo, uint64_t* hi) {
  uint64_t a;
  uint32_t c;
  std::memcpy(&a, scales, 8);
  std::memcpy(&c, scales + 8, 4);
  const uint64_t m4 = 0x0F0F0F0F0F0F0F0Full;
  const uint32_t m2 = 0x03030303u;
  *lo = (a & m4) | (uint64_t{c & m2} | uint64_t{(c >> 2) & m2} << 32) << 4;
  *hi = ((a >> 4) & m4) | (uint64_t{(c >> 4) & m2} | uint64_t{(c >> 6) & m2} << 32) << 4;
}

}  // namespace ember
