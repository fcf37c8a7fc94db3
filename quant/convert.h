// Row conversion of stored weights to float: the reference dequantizers.
// Float types for now; quantized block types extend this table.
#pragma once
#include <cstddef>

#include "quant/types.h"

namespace ember {

// Converts n elements of `type` at src to float. False when the type has no
// conversion yet (the caller reports which tensor).
bool to_float_row(DType type, const void* src, float* dst, size_t n);
// True when to_float_row handles `type`.
bool has_to_float(DType type);

}  // namespace ember
