#include "quant/convert.h"

#include <cstdint>
#include <cstring>

#include "quant/fp16.h"
#include "quant/quantize.h"

namespace ember {

bool has_to_float(DType type) {
  switch (type) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

bool to_float_row(DType type, const void* src, float* dst, size_t n) {
  // Block types: n must be a whole number of blocks (the loader checked row lengths).
  const DTypeInfo info = dtype_info(type);
  if (info.name && info.block_size > 1 && n % info.block_size != 0) return false;
  const int64_t k = static_cast<int64_t>(n);
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
    case DType::Q8_0: dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, k); return true;
    case DType::Q4_0: dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, k); return true;
    case DType::Q4_K: dequantize_row_q4_K(static_cast<const BlockQ4_K*>(src), dst, k); return true;
    case DType::Q6_K: dequantize_row_q6_K(static_cast<const BlockQ6_K*>(src), dst, k); return true;
    default:
      return false;
  }
}

}  // namespace ember
