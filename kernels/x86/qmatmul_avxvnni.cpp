// x86-64 AVX-VNNI quantized matmul (compiled with -mavx2 -mfma -mf16c -mavxvnni; Intel
// Alder Lake and later, AMD Zen 5; reached only through dispatch.cpp after the CPU
// check): qmatmul_x86.h's kernels with the VEX VPDPBUSD / VPDPWSSD dot primitive.
#include "kernels/x86/qmatmul_x86.h"

namespace ember::kernels {

static_assert(Dot::kVnni, "qmatmul_avxvnni.cpp must be compiled with -mavxvnni");
void add_quant_avxvnni(Table& t) {
  add_quant_x86(t);
  add_packed_avx2(t);
}

}  // namespace ember::kernels
