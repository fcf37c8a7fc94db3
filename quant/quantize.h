// Reference quantizers and dequantizers for the block formats of quant/blocks.h:
// the scalar specification every fast path is tested against.
//
//   type  block  bytes  bits/weight  value
//   Q8_0    32     34      8.5       d * q,                 q in [-127, 127]
//   Q4_0    32     18      4.5       d * (q - 8),           q in [0, 15]
//   Q4_1    32     20      5.0       d * q + m,             q in [0, 15]
//   Q5_0    32     22      5.5       d * (q - 16),          q in [0, 31]
//   Q5_1    32     24      6.0       d * q + m,             q in [0, 31]
//   IQ4_NL  32     18      4.5       d * grid[q],           q in [0, 15], grid of int8 levels
//   Q4_K   256    144      4.5       d*sc[s] * q - dmin*m[s], q in [0, 15], sc/m 6-bit
//   Q6_K   256    210      6.5625    d * sc[s] * (q - 32),  q in [0, 63], sc int8
//   Q2_K   256     84      2.625     d*sc[s] * q - dmin*m[s], q in [0, 3], sc/m 4-bit
//   Q3_K   256    110      3.4375    d*(sc[s]-32) * q,      q in [-4, 3], sc 6-bit
//   Q5_K   256    176      5.5       d*sc[s] * q - dmin*m[s], q in [0, 31], as Q4_K
//   IQ4_XS 256    136      4.25      d*(ls[s]-32) * grid[q], IQ4_NL's grid, ls 6-bit
//   Q8_K   256    292      9.125     d * q (activations of the K-quant dots; d is f32)
//
// Every quantizer reproduces the bytes of the ggml quantizer llama.cpp's llama-quantize
// runs without an importance matrix, with UNFUSED float rounding (the whole project
// builds with -ffp-contract=off; Q4_0..Q5_1 also keep the multiply and the add in
// separate statements behind a barrier):
//   - Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (quantize.cpp): ggml's quantize_row_*_ref, one
//     scale (and min) per 32 from the block's extremes;
//   - Q6_K (quantize.cpp): per sub-block of 16 an x^2-weighted search over 19 grids,
//     int8 sub-block scales against one fp16 scale;
//   - Q2_K, Q4_K, Q5_K (quantize_k.cpp): per sub-block a weighted least-squares search of
//     scale and min over grids of codes, 4-/6-bit sub-block scales and mins;
//   - Q3_K (quantize_k.cpp): per sub-block of 16 coordinate descent on the codes, 6-bit
//     signed sub-block scales;
//   - IQ4_NL, IQ4_XS (quantize_k.cpp): ggml's quantize_iq4_nl / quantize_iq4_xs (what
//     llama-quantize calls; ggml's quantize_row_iq4_nl_ref searches less), an
//     x^2-weighted search over 16 scales on the non-linear grid.
// tests/test_quant.cpp checks each against the tensors llama.cpp wrote into the fixtures.
//
// Every quantizer takes k elements, k a multiple of the block size (checked with
// assert only: callers validate shapes with can_quantize()), and writes k/QK blocks.
// Inputs must be finite; outputs are then finite (NaN-free) for every input,
// including all-zero blocks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace ember {

// ---- reference quantizers: float row -> blocks ----------------------------------
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t k);
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t k);
void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t k);
void quantize_row_q5_0_ref(const float* x, BlockQ5_0* y, int64_t k);
void quantize_row_q5_1_ref(const float* x, BlockQ5_1* y, int64_t k);
void quantize_row_q6_K_ref(const float* x, BlockQ6_K* y, int64_t k);
void quantize_row_q8_K_ref(const float* x, BlockQ8_K* y, int64_t k);
// quant/quantize_k.cpp:
void quantize_row_q2_K_ref(const float* x, BlockQ2_K* y, int64_t k);
void quantize_row_q3_K_ref(const float* x, BlockQ3_K* y, int64_t k);
void quantize_row_q4_K_ref(const float* x, BlockQ4_K* y, int64_t k);
void quantize_row_q5_K_ref(const float* x, BlockQ5_K* y, int64_t k);
void quantize_row_iq4_nl_ref(const float* x, BlockIQ4_NL* y, int64_t k);
void quantize_row_iq4_xs_ref(const float* x, BlockIQ4_XS* y, int64_t k);

// ---- dequantizers: blocks -> float row (k elements) -------------------------------
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t k);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t k);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t k);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t k);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t k);
void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t k);
void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t k);
void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t k);
void dequantize_row_q8_K(const BlockQ8_K* x, float* y, int64_t k);
// quant/dequantize_k.cpp:
void dequantize_row_q2_K(const BlockQ2_K* x, float* y, int64_t k);
void dequantize_row_q3_K(const BlockQ3_K* x, float* y, int64_t k);
void dequantize_row_q5_K(const BlockQ5_K* x, float* y, int64_t k);
void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t k);

// ---- K-quant packing (exposed for tests and kernels) ------------------------------
// Q4_K: the 8 six-bit sub-block scales sc[s] and mins m[s] (each < 64) into scales[12]
// (layout in blocks.h), and back for one sub-block s in [0, 8).
void pack_scales_q4_K(const uint8_t sc[8], const uint8_t m[8], uint8_t scales[12]);
void unpack_scale_min_q4_K(int s, const uint8_t scales[12], uint8_t* sc, uint8_t* m);
// Q5_0 / Q5_1: the 32 five-bit codes of a block (weight order) from its nibbles qs[16]
// and fifth bits qh[4] (bit j = weight j).
void unpack_q5_codes(const uint8_t qs[kQK / 2], const uint8_t qh[4], uint8_t q[kQK]);
// Q6_K: the 256 six-bit codes q (each < 64, weight order) into ql/qh, and back.
void pack_q6_K(const uint8_t q[kQKK], BlockQ6_K* b);
void unpack_q6_K(const BlockQ6_K& b, uint8_t q[kQKK]);
// Q2_K (and the low bits of Q3_K): the 256 two-bit codes in weight order.
void unpack_q2_K(const uint8_t qs[kQKK / 4], uint8_t q[kQKK]);
// Q3_K: the 16 sub-block scales minus 32 (in [-32, 31]) and the 256 codes minus 4
// unless their high bit is set (in [-4, 3]).
void unpack_scales_q3_K(const uint8_t scales[12], int8_t sc[16]);
// The inverse: the 16 scales as stored (sc[s] + 32, each < 64) into scales[12].
void pack_scales_q3_K(const int sc[16], uint8_t scales[12]);
void unpack_q3_K(const BlockQ3_K& b, int8_t q[kQKK]);
// Q5_K: the 256 five-bit codes (nibble | fifth bit << 4) in weight order.
void unpack_q5_K(const BlockQ5_K& b, uint8_t q[kQKK]);
// IQ4_XS: the scale of sub-block s in [0, 8) minus 32 (in [-32, 31]).
int iq4_xs_scale(const BlockIQ4_XS& b, int s);

// ---- whole tensors ------------------------------------------------------------------
// Types quantize_tensor() can produce: the weight rows of the type table with a
// reference quantizer (from_float).
bool is_quantize_target(DType type);
// Ok when `type` is a target and a row of n_cols elements is a whole number of its
// blocks; else InvalidArgument naming the tensor, its row length and the block size:
//   "tensor 'blk.0.ffn_down.weight': row length 4864 is not a multiple of 256, the q4_k block size"
Status can_quantize(DType type, int64_t n_cols, std::string_view name);
// Quantizes (or converts) n_rows x n_cols floats, row-major, into dst, which must hold
// n_rows * row_bytes(type, n_cols) bytes (2-byte aligned: the blocks hold fp16
// fields); returns that size. Rows are independent, so
// the result is the same however the rows are split between calls. Returns 0 when
// can_quantize() would fail.
size_t quantize_tensor(DType type, const float* src, void* dst, int64_t n_rows, int64_t n_cols);
// True when every value (float types) or every fp16/f32 block scale (block types) of
// one row of n_cols elements is finite: false flags inputs with NaN/Inf, or beyond the
// range a type's fp16 scales (and mins) can express (|x| > 65504 * 8 for Q4_0, * 127 for
// Q8_0). Types without such fields (Q8_K, storage-only types): true.
bool row_data_finite(DType type, const void* row, int64_t n_cols);

}  // namespace ember
