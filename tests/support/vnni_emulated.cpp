// tests/support/vnni_emulated.h. Compiled with the AVX2 flags and EMBER_EMULATE_VNNI
// (tests/CMakeLists.txt), so qmatmul_x86.h's Dot is DotVnni on the emulated primitives:
// the same templates qmatmul_avxvnni.cpp instantiates with the real instructions.
#include "support/vnni_emulated.h"

#if defined(EMBER_HAVE_AVX2) && defined(EMBER_EMULATE_VNNI)
#include "kernels/isa_tables.h"
#include "kernels/x86/qmatmul_x86.h"
#include "kernels/x86/qmatmul_packed_x86.h"
#include "kernels/x86/qmatmul_packed_k_x86.h"
#endif

namespace ember::kernels {

#if defined(EMBER_HAVE_AVX2) && defined(EMBER_EMULATE_VNNI)
static_assert(Dot::kVnni, "vnni_emulated.cpp must be compiled with EMBER_EMULATE_VNNI");

namespace {
// add_quant_avxvnni's body (qmatmul_avxvnni.cpp): keep the two in step.
void add_quant_avxvnni_emulated(Table& t) {
  add_quant_x86(t);
  add_packed_x86(t);
}
}  // namespace

// Assembled as dispatch.cpp assembles the AVX-VNNI table, under its own name.
const Table* avxvnni_emulated() {
  if (!table_for(Isa::kAvx2)) return nullptr;
  static const Table table = [] {
    Table t = assemble(Isa::kAvxVnni, *table_avx2(), add_quant_avxvnni_emulated);
    t.name = "avxvnni-emulated";
    return t;
  }();
  return &table;
}

void emulated_dpbusd(int32_t acc[8], const uint8_t u[32], const int8_t s[32]) {
  const __m256i r = dpbusd(load256(reinterpret_cast<const uint8_t*>(acc)), load256(u),
                           load256(reinterpret_cast<const uint8_t*>(s)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), r);
}
void emulated_dpwssd(int32_t acc[8], const int16_t a[16], const int16_t b[16]) {
  const __m256i r = dpwssd(load256(reinterpret_cast<const uint8_t*>(acc)), load256(reinterpret_cast<const uint8_t*>(a)),
                           load256(reinterpret_cast<const uint8_t*>(b)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), r);
}
#else
const Table* avxvnni_emulated() { return nullptr; }
void emulated_dpbusd(int32_t*, const uint8_t*, const int8_t*) {}
void emulated_dpwssd(int32_t*, const int16_t*, const int16_t*) {}
#endif

}  // namespace ember::kernels
