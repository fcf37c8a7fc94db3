// x86-64 AVX2 quantized matmul (compiled with -mavx2 -mfma -mf16c; reached only
// through dispatch.cpp after the CPU check): qmatmul_x86.h's kernels with the
// VPMADDUBSW + VPMADDWD dot primitive, and the kernels on repacked weights
// (qmatmul_packed_x86.h, qmatmul_packed_k_x86.h), which every x86 table takes.
#include "kernels/x86/qmatmul_x86.h"
#include "kernels/x86/qmatmul_packed_x86.h"
#include "kernels/x86/qmatmul_packed_k_x86.h"

namespace ember::kernels {

static_assert(!Dot::kVnni, "qmatmul_avx2.cpp must be compiled without VNNI");
void add_quant_avx2(Table& t) {
  add_quant_x86(t);
  add_packed_avx2(t);
}

// Row-interleaved 8 x 4 layouts, one ymm lane per row (the loader repacks into them).
void add_packed_avx2(Table& t) {
  t.of(DType::Q4_0).packing = Packing{8, 4, false};
  t.of(DType::Q4_0).qmatmul_packed = qmatmul_packed<VecYmm, PackedQ4_0, 4>;
  t.of(DType::Q8_0).packing = Packing{8, 4, false};
  t.of(DType::Q8_0).qmatmul_packed = qmatmul_packed<VecYmm, PackedQ8_0Signed, 4>;
  t.of(DType::Q4_K).packing = Packing{8, 4, false};
  t.of(DType::Q4_K).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::Q4_K, 4>;
  t.of(DType::Q6_K).packing = Packing{8, 4, false};
  t.of(DType::Q6_K).qmatmul_packed = qmatmul_packed_k<VecYmm, DType::Q6_K, 4>;
}

}  // namespace ember::kernels
