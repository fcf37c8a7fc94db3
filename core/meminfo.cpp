#include "core/meminfo.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ember {

std::optional<uint64_t> AvailableMemoryBytes() {
  const char* env = std::getenv("EMBER_MEMINFO");
  std::FILE* f = std::fopen(env && *env ? env : "/proc/meminfo", "r");
  if (!f) return std::nullopt;
  char line[256];
  std::optional<uint64_t> bytes;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kib = 0;
    char unit[8] = {};
    if (std::strncmp(line, "MemAvailable:", 13) == 0 && std::sscanf(line + 13, "%llu %7s", &kib, unit) == 2 &&
        std::strcmp(unit, "kB") == 0) {
      bytes = static_cast<uint64_t>(kib) * 1024;
      break;
    }
  }
  std::fclose(f);
  return bytes;
}

}  // namespace ember
