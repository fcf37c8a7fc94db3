// Tensor element types, numbered as ggml/GGUF number them (the ids are part of
// the file format). The size table covers every type a GGUF file may name so the
// loader can validate any file; which types the engine can compute with is a
// separate question answered by quant/type_traits.h.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ember {

enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3,
  // 4 and 5 (Q4_2, Q4_3) were removed from ggml.
  Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30,
  // 31..33 (Q4_0_4_4 etc.) were removed; 34, 35 TQ1_0, TQ2_0; 39 MXFP4.
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

// Storage geometry of a type: `block_size` elements occupy `type_size` bytes.
struct DTypeInfo {
  const char* name;   // "f32", "q4_0", ... (nullptr: unknown id)
  uint32_t block_size;
  uint32_t type_size;
};

// Geometry for a raw type id from a file; name == nullptr when the id is unknown.
DTypeInfo dtype_info(uint32_t id);
inline DTypeInfo dtype_info(DType t) { return dtype_info(static_cast<uint32_t>(t)); }
inline const char* dtype_name(DType t) {
  const char* n = dtype_info(t).name;
  return n ? n : "?";
}

// Bytes of one row of `n` elements, or 0 when n is not a multiple of the block size.
size_t row_bytes(DType t, uint64_t n);

}  // namespace ember
