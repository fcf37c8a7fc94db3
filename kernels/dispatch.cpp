// Run-time dispatch: CPU features detected once, the best compiled table chosen
// once (thread-safe static) and logged; EMBER_REFERENCE=1 forces the reference.
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.h"
#include "kernels/tables.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace ember::kernels {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc also checks that the OS saves the ymm state (XGETBV) for avx2.
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
#elif defined(__aarch64__) && defined(__linux__)
  // Bit values from the kernel ABI (asm/hwcap.h), in case the libc headers are old.
  constexpr unsigned long kAsimd = 1ul << 1, kFphp = 1ul << 9, kAsimdhp = 1ul << 10,
                          kAsimddp = 1ul << 20;
  constexpr unsigned long kI8mm2 = 1ul << 13;  // AT_HWCAP2
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.neon = hw & kAsimd;
  f.dotprod = hw & kAsimddp;
  f.fp16 = (hw & kFphp) && (hw & kAsimdhp);
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
  add(f.neon, "neon");
  add(f.dotprod, "dotprod");
  add(f.i8mm, "i8mm");
  add(f.fp16, "fp16");
  return s.empty() ? "baseline" : s;
}

bool reference_forced() {
  const char* env = std::getenv("EMBER_REFERENCE");
  return env && std::strcmp(env, "1") == 0;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kNeon: return "neon";
    case Isa::kNeonDotprod: return "neon-dotprod";
    case Isa::kNeonI8mm: return "neon-i8mm";
    case Isa::kCount: break;
  }
  return "?";
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

// A full table: the float kernels of `float_table` plus the quantized kernels of the
// ISA level. Built once per ISA (thread-safe statics), only after the CPU check.
static Table assemble(Isa isa, const Table& float_table, void (*add_quant)(Table&)) {
  Table t = float_table;
  t.isa = isa;
  t.name = isa_name(isa);
  add_quant(t);
  return t;
}

const Table& reference() {
  static const Table t = assemble(Isa::kScalar, table_scalar(), add_quant_scalar);
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

const Table& choose_best() {
  if (reference_forced()) return reference();
  // Best first.
  for (Isa isa : {Isa::kNeonI8mm, Isa::kNeonDotprod, Isa::kNeon, Isa::kAvx2}) {
    if (const Table* t = table_for(isa)) return *t;
  }
  return reference();
}

const Table& best() {
  static const Table& t = []() -> const Table& {
    const Table& c = choose_best();
    const std::string cpu = describe(cpu_features());
    const char* why = "";
    if (&c == &reference())
      why = reference_forced() ? "EMBER_REFERENCE=1; " : "no SIMD table for this cpu; ";
    EMBER_LOG_INFO("kernels: %s (%scpu: %s)", c.name, why, cpu.c_str());
    return c;
  }();
  return t;
}

}  // namespace ember::kernels
