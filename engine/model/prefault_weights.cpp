#include "engine/model/prefault_weights.h"

#include <cstdint>

#include "core/log.h"
#include "engine/model/model.h"

namespace ember {
namespace {

// The bytes m reads from the mapping, or 0 when it lives elsewhere (repacked, converted).
size_t mapped_bytes(const GgufFile& file, const kernels::MatView& m) {
  const auto* p = static_cast<const uint8_t*>(m.data);
  const uint8_t* begin = file.file_data();
  if (!p || !m.packing.plain() || p < begin || p >= begin + file.file_size()) return 0;
  return m.rows * (m.row_stride ? m.row_stride : row_bytes(m.type, m.cols));
}

}  // namespace

size_t PrefaultMatrices(const GgufFile& file, const ModelWeights& w) {
  size_t bytes = 0;
  const auto prefault = [&](const kernels::MatView& m) {
    if (const size_t n = mapped_bytes(file, m)) bytes += file.PrefaultPages(static_cast<const uint8_t*>(m.data), n);
  };
  for (const LayerWeights& l : w.layers)
    for (const kernels::MatView* m : l.matrices()) prefault(*m);
  prefault(w.output);  // the token embedding itself when tied: the output reads it whole
  if (bytes) EMBER_LOG_INFO("%s: mapped in %.1f MiB of matrices read in place (no page faults in the first prompt)",
                   file.path().c_str(), static_cast<double>(bytes) / (1 << 20));
  return bytes;
}

}  // namespace ember
