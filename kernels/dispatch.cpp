// Run-time dispatch: CPU features detected once, the best compiled table chosen
// once (thread-safe static) and logged. Types an ISA declines get the reference's
// kernels in its table (logged with the choice).
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.h"
#include "kernels/isa_tables.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace ember::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// The VNNI features from cpuid leaf 7 (Intel SDM vol. 2A, CPUID), each only where XCR0
// says the OS saves the registers it uses: ymm for AVX-VNNI; ymm, the opmask registers
// and the upper zmm halves for AVX-512. (libgcc's __builtin_cpu_supports does the same
// for avx2, but GCC 12 knows no "avxvnni".)
bool cpuid1_ecx_bit(int bit) {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << bit));
}

void detect_vnni(CpuFeatures& f) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return;  // OSXSAVE: xgetbv usable
  unsigned xcr0_lo, xcr0_hi;
  asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));  // no -mxsave needed
  constexpr unsigned kYmm = 0x6, kZmm = 0xE6;  // SSE|AVX; + opmask, ZMM_Hi256, Hi16_ZMM
  const bool ymm_saved = (xcr0_lo & kYmm) == kYmm, zmm_saved = (xcr0_lo & kZmm) == kZmm;
  unsigned max_sub, ebx7, ecx7;
  if (!__get_cpuid_count(7, 0, &max_sub, &ebx7, &ecx7, &d)) return;
  f.avx512f = zmm_saved && (ebx7 & (1u << 16));
  f.avx512bw = zmm_saved && (ebx7 & (1u << 30));
  f.avx512vl = zmm_saved && (ebx7 & (1u << 31));
  f.avx512_vnni = zmm_saved && (ecx7 & (1u << 11));
  if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = ymm_saved && (a & (1u << 4));
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc also checks that the OS saves the ymm state (XGETBV) for avx2.
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = cpuid1_ecx_bit(29);  // F16C (clang's __builtin_cpu_supports has no "f16c")
  detect_vnni(f);
#elif defined(__aarch64__) && defined(__linux__)
  // Bit values from the kernel ABI (asm/hwcap.h), in case the libc headers are old.
  constexpr unsigned long kAsimd = 1ul << 1, kAsimddp = 1ul << 20;
  constexpr unsigned long kI8mm2 = 1ul << 13;  // AT_HWCAP2
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.neon = hw & kAsimd;
  f.dotprod = hw & kAsimddp;
  f.i8mm = hw2 & kI8mm2;
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory in AArch64
#endif
  return f;
}

std::string describe(const CpuFeatures& f) {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx_vnni, "avxvnni");
  add(f.avx512f && f.avx512bw && f.avx512vl, "avx512bw/vl");
  add(f.avx512_vnni, "avx512vnni");
  add(f.neon, "neon");
  add(f.dotprod, "dotprod");
  add(f.i8mm, "i8mm");
  return s.empty() ? "baseline" : s;
}

// The types `t` declines, by name ("q4_1 q5_0"), or "" when none.
std::string declined_names(const Table& t) {
  std::string s;
  for (uint32_t id = 0; id < kDTypeSlots; ++id) {
    if (!t.types[id].declined) continue;
    if (!s.empty()) s += ' ';
    s += dtype_info(id).name;
  }
  return s;
}

}  // namespace

bool reference_requested_by_env() {
  static const bool requested = [] {
    const char* env = std::getenv("EMBER_REFERENCE");
    return env && std::strcmp(env, "1") == 0;
  }();
  return requested;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kNeon: return "neon";
    case Isa::kNeonDotprod: return "neon-dotprod";
    case Isa::kNeonI8mm: return "neon-i8mm";
    case Isa::kAvxVnni: return "avxvnni";
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kCount: break;
  }
  return "?";
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

// The reference table: scalar float and quantized kernels.
const Table& reference() {
  static const Table t = [] {
    Table r = table_scalar();
    add_quant_scalar(r);
    return r;
  }();
  return t;
}

// A full table: the float kernels of `float_table` plus the quantized kernels of the
// ISA level; the types it declines run the reference's kernels. Built once per ISA
// (thread-safe statics), only after the CPU check.
Table assemble(Isa isa, const Table& float_table, void (*add_quant)(Table&)) {
  Table t = float_table;
  t.isa = isa;
  t.name = isa_name(isa);
  add_quant(t);
  for (size_t i = 0; i < kDTypeSlots; ++i) {
    if (!t.types[i].declined) continue;
    t.types[i] = reference().types[i];
    t.types[i].declined = true;
  }
  return t;
}

const Table* table_for(Isa isa) {
  [[maybe_unused]] const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar: return &reference();
#if defined(EMBER_HAVE_AVX2)
    case Isa::kAvx2: {
      if (!(f.avx2 && f.fma && f.f16c)) return nullptr;
      static const Table t = assemble(isa, *table_avx2(), add_quant_avx2);
      return &t;
    }
#endif
#if defined(EMBER_HAVE_AVXVNNI)
    case Isa::kAvxVnni: {
      if (!(f.avx2 && f.fma && f.f16c && f.avx_vnni)) return nullptr;
      static const Table t = assemble(isa, *table_avx2(), add_quant_avxvnni);
      return &t;
    }
#endif
#if defined(EMBER_HAVE_AVX512VNNI)
    case Isa::kAvx512Vnni: {
      if (!(f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni)) return nullptr;
      static const Table t = assemble(isa, *table_avx2(), add_quant_avx512vnni);
      return &t;
    }
#endif
#if defined(EMBER_HAVE_NEON)
    case Isa::kNeon: {
      if (!f.neon) return nullptr;
      static const Table t = assemble(isa, *table_neon(), add_quant_neon);
      return &t;
    }
#endif
#if defined(EMBER_HAVE_DOTPROD)
    case Isa::kNeonDotprod: {
      if (!(f.neon && f.dotprod)) return nullptr;
      static const Table t = assemble(isa, *table_neon(), add_quant_neon_dotprod);
      return &t;
    }
#endif
#if defined(EMBER_HAVE_I8MM)
    case Isa::kNeonI8mm: {
      if (!(f.neon && f.dotprod && f.i8mm)) return nullptr;
      static const Table t = assemble(isa, *table_neon(), add_quant_neon_i8mm);
      return &t;
    }
#endif
    default: return nullptr;
  }
}

bool table_by_name(const char* name, const Table** table) {
  *table = nullptr;
  for (int i = 0; i < static_cast<int>(Isa::kCount); ++i) {
    if (std::strcmp(name, isa_name(static_cast<Isa>(i))) != 0) continue;
    *table = table_for(static_cast<Isa>(i));
    return true;
  }
  return false;
}

// The table EMBER_ISA names, or nullptr when it is unset; a name unknown or not
// runnable on this CPU is logged and ignored.
static const Table* table_from_env() {
  const char* env = std::getenv("EMBER_ISA");
  if (!env || !*env) return nullptr;
  const Table* t = nullptr;
  if (!table_by_name(env, &t))
    EMBER_LOG_WARN("kernels: EMBER_ISA=%s: unknown table name; ignored", env);
  else if (!t)
    EMBER_LOG_WARN("kernels: EMBER_ISA=%s: not compiled in or not supported by this cpu; ignored", env);
  return t;
}

const Table& best() {
  static const Table& t = []() -> const Table& {
    const Table* c = table_from_env();
    const bool forced = c != nullptr;
    // Best first.
    for (Isa isa : {Isa::kNeonI8mm, Isa::kNeonDotprod, Isa::kNeon, Isa::kAvx512Vnni, Isa::kAvxVnni, Isa::kAvx2}) {
      if (c) break;
      c = table_for(isa);
    }
    if (!c) c = &reference();
    const std::string cpu = describe(cpu_features()), declined = declined_names(*c);
    const char* why = forced ? "forced by EMBER_ISA; " : c == &reference() ? "no SIMD table for this cpu; " : "";
    EMBER_LOG_INFO("kernels: %s (%scpu: %s%s%s)", c->name, why, cpu.c_str(),
                   declined.empty() ? "" : "; reference kernels for: ", declined.c_str());
    return *c;
  }();
  return t;
}

}  // namespace ember::kernels
