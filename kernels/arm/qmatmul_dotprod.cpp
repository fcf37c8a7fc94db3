// AArch64 NEON + dot product quantized matmul (-march=armv8.2-a+dotprod: Cortex-A55,
// A76 (Pi 5) and later): SDOT, four int8 products per s32 lane per instruction. The
// kernels are qmatmul_neon.h's, instantiated with the DotSdot policy; Q4_0, Q4_1, Q5_0,
// Q5_1, IQ4_NL and Q8_0 weights are repacked at load into 4 rows x 4 bytes (qmatmul_packed_neon.h:
// SDOT by element, row sums in lanes), and Q4_K, Q5_K, Q6_K, Q2_K, Q3_K and IQ4_XS likewise
// (qmatmul_packed_k_neon.h, qmatmul_packed_q2_q3_k_neon.h, qmatmul_packed_iq4_xs_neon.h).
#include "kernels/arm/qmatmul_neon.h"
#include "kernels/arm/qmatmul_packed_neon.h"
#include "kernels/arm/qmatmul_packed_iq4_xs_neon.h"
#include "kernels/arm/qmatmul_packed_k_neon.h"
#include "kernels/arm/qmatmul_packed_q2_q3_k_neon.h"

namespace ember::kernels {

void add_quant_neon_dotprod(Table& t) {
  add_quant_common<DotSdot>(t);
  t.of(DType::Q4_0).packing = Packing{4, 4, false};
  t.of(DType::Q4_0).qmatmul_packed = qmatmul_packed_sdot<PackedNeonQ4_0>;
  t.of(DType::Q8_0).packing = Packing{4, 4, false};
  t.of(DType::Q8_0).qmatmul_packed = qmatmul_packed_sdot<PackedNeonQ8_0>;
  add_packed_sdot_4x4(t);
}

}  // namespace ember::kernels
