// The memory the system can give a new allocation without swapping: /proc/meminfo's
// MemAvailable (free memory plus the reclaimable page cache, the kernel's own estimate).
#pragma once
#include <cstdint>
#include <optional>

namespace ember {

// MemAvailable in bytes; nullopt where the file or the line is missing (not Linux, a
// sandbox without /proc). EMBER_MEMINFO names another file in the same format (tests).
std::optional<uint64_t> AvailableMemoryBytes();

}  // namespace ember
