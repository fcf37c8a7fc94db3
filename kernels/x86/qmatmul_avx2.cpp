// x86-64 AVX2 quantized matmul (compiled with -mavx2 -mfma -mf16c; reached only
// through dispatch.cpp after the CPU check): qmatmul_x86.h's kernels and the kernels on
// repacked weights (qmatmul_packed_x86.h, qmatmul_packed_k_x86.h) with the VPMADDUBSW +
// VPMADDWD dot primitive.
#include "kernels/x86/qmatmul_x86.h"
#include "kernels/x86/qmatmul_packed_x86.h"
#include "kernels/x86/qmatmul_packed_k_x86.h"

namespace ember::kernels {

static_assert(!Dot::kVnni, "qmatmul_avx2.cpp must be compiled without VNNI");
void add_quant_avx2(Table& t) {
  add_quant_x86(t);
  add_packed_x86(t);
}

}  // namespace ember::kernels
