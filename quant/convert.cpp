#include "quant/convert.h"

#include <cstdint>
#include <cstring>

#include "quant/fp16.h"

namespace ember {

bool has_to_float(DType type) {
  return type == DType::F32 || type == DType::F16 || type == DType::BF16;
}

bool to_float_row(DType type, const void* src, float* dst, size_t n) {
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return true;
    case DType::F16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return true;
    }
    case DType::BF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace ember
