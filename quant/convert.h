// Row conversion of stored weights to float: the type table's reference dequantizers.
// (quant/types.h: every row with a to_float).
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
