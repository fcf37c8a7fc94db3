// x86-64 AVX512-VNNI quantized matmul (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni; Ice Lake, Zen 4 and later; reached only through dispatch.cpp after the
// CPU check): qmatmul_x86.h's kernels with the EVEX VPDPBUSD / VPDPWSSD dot primitive
// (ymm, with 32 vector registers).
#include "kernels/x86/qmatmul_x86.h"

namespace ember::kernels {

static_assert(Dot::kVnni, "qmatmul_avx512vnni.cpp must be compiled with -mavx512vnni -mavx512vl");
void add_quant_avx512vnni(Table& t) { add_quant_x86(t); }

}  // namespace ember::kernels
