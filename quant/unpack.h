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

}  // namespace ember
