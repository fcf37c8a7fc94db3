// Private to kernels/: the pieces dispatch.cpp assembles into the per-ISA tables.
// Float kernels come from ref/float_ref.cpp and <isa>/float_<isa>.cpp (table_<isa>()),
// the quantized matmul kernels from ref/qmatmul_ref.cpp and <isa>/qmatmul_<isa>.cpp
// (add_quant_<isa>(), which fills the quantized types' entries of a table and
// declines, explicitly, the types it has no kernel for). Each ISA file is compiled
// only on its architecture (CMake defines EMBER_HAVE_<ISA> when a kernels file for it
// exists). The dotprod and i8mm tables reuse the NEON table's float kernels, the
// AVX-VNNI and AVX512-VNNI tables the AVX2 table's (integer dot products are all they add).
#pragma once
#include "kernels/kernels.h"

namespace ember::kernels {

// dispatch.cpp: float_table's float kernels, add_quant's quantized ones, the reference's
// for the types add_quant declines; isa and name set (also test_kernels' emulated table).
Table assemble(Isa isa, const Table& float_table, void (*add_quant)(Table&));

const Table& table_scalar();      // ref/float_ref.cpp: float kernels
void add_quant_scalar(Table& t);  // ref/qmatmul_ref.cpp: the quantized reference

#if defined(EMBER_HAVE_AVX2)
const Table* table_avx2();      // x86/float_avx2.cpp: AVX2 + FMA + F16C
void add_quant_avx2(Table& t);  // x86/qmatmul_avx2.cpp: maddubs/madd
#endif
#if defined(EMBER_HAVE_AVXVNNI)
void add_quant_avxvnni(Table& t);  // x86/qmatmul_avxvnni.cpp: VEX vpdpbusd (AVX2 floats)
#endif
#if defined(EMBER_HAVE_AVX512VNNI)
void add_quant_avx512vnni(Table& t);  // x86/qmatmul_avx512vnni.cpp: EVEX vpdpbusd, zmm GEMM
#endif
#if defined(EMBER_HAVE_NEON)
const Table* table_neon();      // arm/float_neon.cpp: AArch64 Advanced SIMD
void add_quant_neon(Table& t);  // arm/qmatmul_neon.cpp: SMULL/SADALP (armv8-a)
#endif
#if defined(EMBER_HAVE_DOTPROD)
void add_quant_neon_dotprod(Table& t);  // arm/qmatmul_dotprod.cpp: SDOT (armv8.2-a+dotprod)
#endif
#if defined(EMBER_HAVE_I8MM)
void add_quant_neon_i8mm(Table& t);  // arm/qmatmul_i8mm.cpp: SMMLA + SDOT (armv8.6-a+i8mm)
#endif

}  // namespace ember::kernels
