// Private to kernels/: the per-ISA tables. Each ISA family file defines its
// table_<isa>() and is compiled only on its architecture (CMake defines
// EMBER_HAVE_<ISA> when a kernels/*_<isa>.cpp exists). The returned table is a
// static built on first use; dispatch.cpp checks the CPU before handing it out.
#pragma once
#include "kernels/kernels.h"

namespace ember::kernels {

const Table& table_scalar();  // scalar.cpp; reference() returns it

#if defined(EMBER_HAVE_AVX2)
const Table* table_avx2();  // float_avx2.cpp: AVX2 + FMA + F16C
#endif
#if defined(EMBER_HAVE_NEON)
const Table* table_neon();  // float_neon.cpp: AArch64 Advanced SIMD
#endif
#if defined(EMBER_HAVE_DOTPROD)
const Table* table_neon_dotprod();  // *_dotprod.cpp (integer dot kernels, armv8.2+dotprod)
#endif
#if defined(EMBER_HAVE_I8MM)
const Table* table_neon_i8mm();  // *_i8mm.cpp (integer matrix kernels, armv8.6+i8mm)
#endif

}  // namespace ember::kernels
