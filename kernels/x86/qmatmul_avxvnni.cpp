// x86-64 AVX-VNNI quantized matmul (compiled with -mavx2 -mfma -mf16c -mavxvnni; Intel
// Alder Lake and later, AMD Zen 5; reached only through dispatch.cpp after the CPU
// check): qmatmul_x86.h's kernels and the kernels on repacked weights
// (qmatmul_packed_x86.h, qmatmul_packed_k_x86.h) with the VEX VPDPBUSD / VPDPWSSD dot
// primitive. Never run on the development machine (no VNNI): the same code, built on
// an exact AVX2 emulation of the two instructions, is test_kernels' "avxvnni-emulated"
// table (tests/support/vnni_emulated.cpp, whose add_quant_avxvnni_emulated mirrors this).
#include "kernels/x86/qmatmul_x86.h"
#include "kernels/x86/qmatmul_packed_x86.h"
#include "kernels/x86/qmatmul_packed_k_x86.h"

namespace ember::kernels {

static_assert(Dot::kVnni, "qmatmul_avxvnni.cpp must be compiled with -mavxvnni");
void add_quant_avxvnni(Table& t) {
  add_quant_x86(t);
  add_packed_x86(t);
}

}  // namespace ember::kernels
