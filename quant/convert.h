// Row conversion of stored weights to float: the reference dequantizers.
// F32, F16, BF16 and the block types Q8_0, Q4_0, Q4_K, Q6_K (quant/quantize.h).
#pragma once
#include <cstddef>

#include "quant/types.h"

namespace ember {

// Converts n elements of `type` at src to float. False when the type has no
// conversion yet, or n is not a whole number of the type's blocks (the caller
// reports which tensor). Block data needs 2-byte alignment (fp16 scales).
bool to_float_row(DType type, const void* src, float* dst, size_t n);
// True when to_float_row handles `type`.
bool has_to_float(DType type);

}  // namespace ember
