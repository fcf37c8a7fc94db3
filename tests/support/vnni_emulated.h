// The AVX-VNNI table's kernels with VPDPBUSD / VPDPWSSD emulated exactly in AVX2
// (kernels/x86/vnni_emulated_x86.h), built into test_kernels only (vnni_emulated.cpp,
// compiled with the AVX2 flags and EMBER_EMULATE_VNNI): the VNNI code paths run
// against the reference on machines without VNNI. Never in dispatch (libember has no
// such table); its isa is kAvxVnni, its name "avxvnni-emulated".
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace ember::kernels {

// The emulated table; nullptr when the build is not x86-64 or the CPU lacks AVX2.
const Table* avxvnni_emulated();

// Every table this CPU can run (table_for, the reference first), then the emulated one.
// Inline here, not in vnni_emulated.cpp: no std:: code compiled with the AVX2 flags.
inline std::vector<const Table*> tables_with_emulated() {
  std::vector<const Table*> v;
  for (int i = 0; i < static_cast<int>(Isa::kCount); ++i)
    if (const Table* t = table_for(static_cast<Isa>(i))) v.push_back(t);
  if (const Table* t = avxvnni_emulated()) v.push_back(t);
  return v;
}

// The emulated primitives on one ymm's worth of lanes (only when avxvnni_emulated()):
// acc[i] += sum_{j < 4} u[4i + j] * s[4i + j], and acc[i] += a[2i] b[2i] + a[2i + 1] b[2i + 1].
void emulated_dpbusd(int32_t acc[8], const uint8_t u[32], const int8_t s[32]);
void emulated_dpwssd(int32_t acc[8], const int16_t a[16], const int16_t b[16]);

}  // namespace ember::kernels
