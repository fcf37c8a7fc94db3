// Tensor element types and THE type table: one row per type with everything the rest
// of Ember asks about a type (storage geometry, the reference conversions, which
// activation type its matmul takes). The ids are ggml/GGUF's (part of the file format).
// The table names every id a GGUF file may carry, so the loader can validate any file;
// whether Ember can compute with a type is in the row too (`to_float`, `vec_dot_type`).
//
// Adding a weight type: a block struct in quant/blocks.h, its reference dequantizer
// (and quantizer, if Ember writes it) in quant/quantize.h, ONE row in
// quant/type_table.cpp, then one kernel per ISA (docs/ARCHITECTURE.md, numbered steps).
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
// Rows in the type table: every id below this (unknown ids have an empty row).
constexpr size_t kDTypeSlots = 40;
constexpr size_t slot(DType t) { return static_cast<size_t>(t); }

// Reference conversions of k elements (k a whole number of blocks). These are the
// specification: every SIMD kernel is tested against what they imply.
using ToFloatFn = void (*)(const void* src, float* dst, int64_t k);
using FromFloatFn = void (*)(const float* src, void* dst, int64_t k);

// One row of the type table.
struct TypeTraits {
  const char* name = nullptr;   // "f32", "q4_0", ... (nullptr: an id GGUF does not define)
  uint32_t block_size = 0;      // elements per block (1 for scalar types)
  uint32_t type_size = 0;       // bytes per block
  ToFloatFn to_float = nullptr;     // dequantize / convert (nullptr: Ember cannot read it)
  FromFloatFn from_float = nullptr; // reference quantizer (nullptr: Ember cannot write it)
  // Matmuls with weights of this type: whether Ember computes them, and the type the
  // activations are converted to first (F32: float activations, the float kernels;
  // Q8_0 / Q8_K: int8 blocks, integer dot products; see kernels/kernels.h).
  bool is_weight = false;
  DType vec_dot_type = DType::F32;

  constexpr double bits_per_weight() const { return 8.0 * type_size / block_size; }
};

// The row of a type id from a file (an empty row, name == nullptr, for unknown ids).
const TypeTraits& dtype_info(uint32_t id);
inline const TypeTraits& dtype_info(DType t) { return dtype_info(static_cast<uint32_t>(t)); }
inline const char* dtype_name(DType t) {
  const char* n = dtype_info(t).name;
  return n ? n : "?";
}

// Bytes of one row of `n` elements, or 0 when n is not a multiple of the block size.
size_t row_bytes(DType t, uint64_t n);

}  // namespace ember
