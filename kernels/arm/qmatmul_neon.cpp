// AArch64 base NEON quantized matmul (-march=armv8-a: every AArch64 core, the Pi 4's
// Cortex-A72 included): SMULL/SMLAL2 products to s16, SADALP into s32. The kernels are
// qmatmul_neon.h's, instantiated with the DotNeon policy.
#include "kernels/arm/qmatmul_neon.h"

namespace ember::kernels {

void add_quant_neon(Table& t) { add_quant_common<DotNeon>(t); }

}  // namespace ember::kernels
