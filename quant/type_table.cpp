// THE type table (quant/types.h): one constexpr row per GGUF type id. Geometry from
// ggml's block definitions (K-quants: super-blocks of 256); the conversions are the
// reference functions of quant/quantize.h and quant/fp16.h.
#include <array>
#include <cstring>

#include "quant/fp16.h"
#include "quant/quantize.h"
#include "quant/types.h"

namespace ember {
namespace {

// The typed reference functions behind the table's untyped pointers.
template <class Block, void (*F)(const Block*, float*, int64_t)>
void to_float_as(const void* src, float* dst, int64_t k) {
  F(static_cast<const Block*>(src), dst, k);
}
template <class Block, void (*F)(const float*, Block*, int64_t)>
void from_float_as(const float* src, void* dst, int64_t k) {
  F(src, static_cast<Block*>(dst), k);
}

void f32_to_float(const void* src, float* dst, int64_t k) { std::memcpy(dst, src, k * sizeof(float)); }
void f32_from_float(const float* src, void* dst, int64_t k) { std::memcpy(dst, src, k * sizeof(float)); }
// Half types: element by element through memcpy (rows carry no alignment promise).
template <float (*Cvt)(uint16_t)>
void half_to_float(const void* src, float* dst, int64_t k) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < k; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = Cvt(h);
  }
}
template <uint16_t (*Cvt)(float)>
void half_from_float(const float* src, void* dst, int64_t k) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < k; ++i) {
    const uint16_t h = Cvt(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

// A row Ember can only size (validate in a file), not compute with.
constexpr TypeTraits storage(const char* name, uint32_t block_size, uint32_t type_size) {
  return {.name = name, .block_size = block_size, .type_size = type_size};
}

constexpr std::array<TypeTraits, kDTypeSlots> make_table() {
  std::array<TypeTraits, kDTypeSlots> t{};
  auto row = [&t](DType d) -> TypeTraits& { return t[slot(d)]; };
  // ---- types Ember computes with: weights (and the activation types of their dots) ----
  row(DType::F32) = {"f32", 1, 4, f32_to_float, f32_from_float, true, DType::F32};
  row(DType::F16) = {"f16", 1, 2, half_to_float<fp16_to_fp32>, half_from_float<fp32_to_fp16>, true,
                     DType::F32};
  row(DType::BF16) = {"bf16", 1, 2, half_to_float<bf16_to_fp32>, half_from_float<fp32_to_bf16>, true,
                      DType::F32};
  row(DType::Q8_0) = {"q8_0", 32, 34, to_float_as<BlockQ8_0, dequantize_row_q8_0>,
                      from_float_as<BlockQ8_0, quantize_row_q8_0_ref>, true, DType::Q8_0};
  row(DType::Q4_0) = {"q4_0", 32, 18, to_float_as<BlockQ4_0, dequantize_row_q4_0>,
                      from_float_as<BlockQ4_0, quantize_row_q4_0_ref>, true, DType::Q8_0};
  row(DType::Q4_1) = {"q4_1", 32, 20, to_float_as<BlockQ4_1, dequantize_row_q4_1>,
                      from_float_as<BlockQ4_1, quantize_row_q4_1_ref>, true, DType::Q8_0};
  row(DType::Q5_0) = {"q5_0", 32, 22, to_float_as<BlockQ5_0, dequantize_row_q5_0>,
                      from_float_as<BlockQ5_0, quantize_row_q5_0_ref>, true, DType::Q8_0};
  row(DType::Q5_1) = {"q5_1", 32, 24, to_float_as<BlockQ5_1, dequantize_row_q5_1>,
                      from_float_as<BlockQ5_1, quantize_row_q5_1_ref>, true, DType::Q8_0};
  row(DType::IQ4_NL) = {"iq4_nl", 32, 18, to_float_as<BlockIQ4_NL, dequantize_row_iq4_nl>,
                        from_float_as<BlockIQ4_NL, quantize_row_iq4_nl_ref>, true, DType::Q8_0};
  row(DType::Q4_K) = {"q4_k", 256, 144, to_float_as<BlockQ4_K, dequantize_row_q4_K>,
                      from_float_as<BlockQ4_K, quantize_row_q4_K_ref>, true, DType::Q8_K};
  row(DType::Q6_K) = {"q6_k", 256, 210, to_float_as<BlockQ6_K, dequantize_row_q6_K>,
                      from_float_as<BlockQ6_K, quantize_row_q6_K_ref>, true, DType::Q8_K};
  row(DType::Q2_K) = {"q2_k", 256, 84, to_float_as<BlockQ2_K, dequantize_row_q2_K>,
                      from_float_as<BlockQ2_K, quantize_row_q2_K_ref>, true, DType::Q8_K};
  row(DType::Q3_K) = {"q3_k", 256, 110, to_float_as<BlockQ3_K, dequantize_row_q3_K>,
                      from_float_as<BlockQ3_K, quantize_row_q3_K_ref>, true, DType::Q8_K};
  row(DType::Q5_K) = {"q5_k", 256, 176, to_float_as<BlockQ5_K, dequantize_row_q5_K>,
                      from_float_as<BlockQ5_K, quantize_row_q5_K_ref>, true, DType::Q8_K};
  row(DType::IQ4_XS) = {"iq4_xs", 256, 136, to_float_as<BlockIQ4_XS, dequantize_row_iq4_xs>,
                        from_float_as<BlockIQ4_XS, quantize_row_iq4_xs_ref>, true, DType::Q8_K};
  // Activations only: the int8 blocks the K-quant dots take.
  row(DType::Q8_K) = {"q8_k", 256, 292, to_float_as<BlockQ8_K, dequantize_row_q8_K>,
                      from_float_as<BlockQ8_K, quantize_row_q8_K_ref>, false, DType::F32};
  // ---- types a GGUF file may hold that Ember only sizes ----
  row(DType::Q8_1) = storage("q8_1", 32, 36);
  row(DType::IQ2_XXS) = storage("iq2_xxs", 256, 66);
  row(DType::IQ2_XS) = storage("iq2_xs", 256, 74);
  row(DType::IQ3_XXS) = storage("iq3_xxs", 256, 98);
  row(DType::IQ1_S) = storage("iq1_s", 256, 50);
  row(DType::IQ3_S) = storage("iq3_s", 256, 110);
  row(DType::IQ2_S) = storage("iq2_s", 256, 82);
  row(DType::I8) = storage("i8", 1, 1);
  row(DType::I16) = storage("i16", 1, 2);
  row(DType::I32) = storage("i32", 1, 4);
  row(DType::I64) = storage("i64", 1, 8);
  row(DType::F64) = storage("f64", 1, 8);
  row(DType::IQ1_M) = storage("iq1_m", 256, 56);
  row(DType::TQ1_0) = storage("tq1_0", 256, 54);
  row(DType::TQ2_0) = storage("tq2_0", 256, 66);
  row(DType::MXFP4) = storage("mxfp4", 32, 17);
  return t;
}

constexpr std::array<TypeTraits, kDTypeSlots> kTypeTable = make_table();
constexpr TypeTraits kUnknown{};

}  // namespace

const TypeTraits& dtype_info(uint32_t id) { return id < kDTypeSlots ? kTypeTable[id] : kUnknown; }

size_t row_bytes(DType t, uint64_t n) {
  const TypeTraits& i = dtype_info(t);
  if (!i.name || n % i.block_size) return 0;
  return static_cast<size_t>(n / i.block_size) * i.type_size;
}

}  // namespace ember
