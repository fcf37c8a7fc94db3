// AArch64 NEON + dot product quantized matmul (-march=armv8.2-a+dotprod: Cortex-A55,
// A76 (Pi 5) and later): SDOT, four int8 products per s32 lane per instruction. The
// kernels are qmatmul_neon.h's, instantiated with the DotSdot policy.
#include "kernels/arm/qmatmul_neon.h"

namespace ember::kernels {

void add_quant_neon_dotprod(Table& t) { add_quant_common<DotSdot>(t); }

}  // namespace ember::kernels
