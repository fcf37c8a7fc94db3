#include "quant/convert.h"

namespace ember {

bool has_to_float(DType type) { return dtype_info(type).to_float != nullptr; }

bool to_float_row(DType type, const void* src, float* dst, size_t n) {
  // Block types: n must be a whole number of blocks (the loader checked row lengths).
  const TypeTraits& row = dtype_info(type);
  if (!row.to_float || n % row.block_size != 0) return false;
  row.to_float(src, dst, static_cast<int64_t>(n));
  return true;
}

}  // namespace ember
