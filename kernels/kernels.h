// Kernels: vector and matrix primitives of the forward pass, one table of
// function pointers per ISA. The table is chosen once at start-up from the CPU's
// features (cpuid / HWCAP) and logged; `reference()` is the table of scalar
// versions, the specification every SIMD version is tested against.
//
// Folders: ref/ (the scalar reference), x86/ (AVX2+FMA+F16C, AVX-VNNI, AVX512-VNNI),
// arm/ (NEON, dotprod, i8mm); each ISA file is compiled with its own target flags (CMakeLists.txt) and
// holds only its inner loops: the row/token drivers (qmatmul_driver.h) and the float
// kernels (float_simd.h, xsimd) are written once and instantiated per ISA.
// dispatch.cpp assembles the tables; matmul.cpp splits a matmul over threads.
// Matmul kernels are per weight type: Table::types[slot(type)] (quant/types.h).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "quant/repack.h"
#include "quant/types.h"

namespace ember {
class ThreadPool;
}

namespace ember::kernels {

enum class Isa : int { kScalar = 0, kAvx2, kNeon, kNeonDotprod, kNeonI8mm, kAvxVnni, kAvx512Vnni, kCount };
const char* isa_name(Isa isa);

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;  // x86-64
  bool avx_vnni = false;                          // VEX vpdpbusd (cpuid 7.1 EAX bit 4)
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_vnni = false;  // with zmm state
  bool neon = false, dotprod = false, i8mm = false;  // AArch64
};
// Detected once (cpuid / getauxval), cached.
const CpuFeatures& cpu_features();

// Y[t*ldy + r] = sum_k W(r, k) * X[t*ldx + k]   for r in [r0, r1), t in [0, n)
// W: rows of K elements of the table's weight type, row r starting at
// (const uint8_t*)W + r*w_stride. Contract: every output element is computed by the
// same sequence of operations whatever r0, r1 and n are, so results never depend on
// how rows are split between threads or how many tokens are batched.
// `rows_scratch`: kFloatGemmRows * K floats the kernel may use to convert half weight
// rows once per row block (nullptr: converted on the fly, the same values).
using MatmulFn = void (*)(const void* W, size_t w_stride, const float* X, size_t ldx, size_t n,
                          size_t K, float* Y, size_t ldy, size_t r0, size_t r1, float* rows_scratch);
constexpr size_t kFloatGemmRows = 4;  // the float GEMMs' row blocking (at most)

// ---- quantized matmul ---------------------------------------------------------------
// Activations are quantized once per row to int8 blocks (quant/blocks.h), each weight
// block is dotted with its activation block in exact integer arithmetic, and the
// block scales are applied in float. The numerics, which every table follows exactly:
//
// Activation quantizers (x: K finite floats; K a multiple of the block size):
//   Q8_0 (blocks of 32): amax = max|x_i|, d = amax / 127, id = d != 0 ? 1 / d : 0,
//        q_i = round(x_i * id) (ties away from zero, as roundf), stored d = fp16(d).
//   Q8_K (blocks of 256), as ggml: max = the first x_i of largest |x_i|; all zero:
//        a zero block; else iscale = -127 / max, q_i = min(127, round_half_even(
//        x_i * iscale)), d = 1 / iscale (float), bsums[j] = sum of q[16j .. 16j+15].
//   Both give |q_i| <= 127, which the dot kernels rely on.
//   (NaN or Inf inputs give unspecified blocks.)
// Dot of one weight row with one activation row, per output:
//   acc = 0.0f; for each block b in order:
//     Q8_0, Q4_0, Q5_0, IQ4_NL (Q8_0 act.): isum = sum_i w_i * q_i
//                             (w_i = q, nibble - 8, code - 16, grid[nibble])
//                             acc = acc + (dw * dx) * float(isum)
//     Q4_1, Q5_1 (Q8_0 act.): isum = sum_i code_i * q_i,  xsum = sum_i q_i
//                             acc = acc + (dw * dx) * float(isum)
//                             acc = acc + (mw * dx) * float(xsum)
//     Q4_K (Q8_K act.):       isum = sum_s sc[s] * sum_{i in s} q_i * x_i
//                             msum = sum_s m[s] * (bsums[2s] + bsums[2s+1])
//                             acc = acc + (d * dx) * float(isum)
//                             acc = acc - (dmin * dx) * float(msum)
//     Q6_K (Q8_K act.):       isum = sum_s sc[s] * sum_{i in s} (q_i - 32) * x_i
//                             acc = acc + (d * dx) * float(isum)
//     Q5_K (Q8_K act.):       Q4_K's four lines, q_i the 5-bit codes (0..31)
//     IQ4_XS (Q8_K act.):     isum = sum_s (ls[s] - 32) * sum_{i in s} grid[q_i] * x_i
//                             acc = acc + (d * dx) * float(isum)
//                             (grid = IQ4_NL's levels, s the 8 sub-blocks of 32)
//     Q2_K (Q8_K act.):       isum = sum_s sc[s] * sum_{i in s} q_i * x_i  (s: 16 of 16)
//                             msum = sum_s m[s] * bsums[s]
//                             acc = acc + (d * dx) * float(isum)
//                             acc = acc - (dmin * dx) * float(msum)
//     Q3_K (Q8_K act.):       isum = sum_s (sc[s] - 32) * sum_{i in s} q_i * x_i
//                             (q_i in [-4, 3] with its high bit; s: 16 of 16)
//                             acc = acc + (d * dx) * float(isum)
//   y = acc
// with dw, d, dmin, dx the blocks' scales as floats (fp16 converted exactly), every
// float operation a single IEEE operation (nothing fused) and the integer sums exact
// (int32 cannot overflow with |x| <= 127). Every table therefore gives the reference's
// result bit for bit, whatever its vector width, blocking, r0/r1 or n. Q8_K bsums must
// be the sums of the block's qs (the quantizer's output always is).
using QuantizeRowFn = void (*)(const float* x, void* y, size_t K);
// Y[t*ldy + r] = dot(W row r, activation row t) for r in [r0, r1), t in [0, n).
// W row r starts at (const uint8_t*)W + r*w_stride, activation row t at
// (const uint8_t*)Xq + t*xq_stride. No alignment is required of any pointer or stride.
// Same contract as MatmulFn: results do not depend on r0, r1 or n.
using QMatmulFn = void (*)(const void* W, size_t w_stride, const void* Xq, size_t xq_stride,
                           size_t n, size_t K, float* Y, size_t ldy, size_t r0, size_t r1);

// Quantized activations as the packed kernels read them: n rows of Q8_0 blocks (row t
// at q + t * stride) and, per row and block, the block's scale as a float and the
// exact sum of its 32 codes ([t * nb + b]), made once per matmul (matmul.cpp). Q8_K
// activations (the K-quants'): only q, stride and nb (blocks of 256; d and bsums are
// in the blocks).
struct PackedActs {
  const uint8_t* q = nullptr;
  size_t stride = 0;
  const float* d = nullptr;
  const int32_t* sums = nullptr;
  size_t nb = 0;
};
// Y[t*ldy + r] = dot(W row r, activation row t) for r in [r0, r1), t in [0, n), with W
// in the row-interleaved layout `packing` (quant/repack.h; rows a multiple of
// packing.rows, r0 and r1 too). The same numerics and contract as QMatmulFn: bit for
// bit the plain layout's result, for any r0, r1 and n.
using PackedQMatmulFn = void (*)(const void* W, Packing packing, const PackedActs& X, size_t n, size_t K,
                                 float* Y, size_t ldy, size_t r0, size_t r1);

// The matmul kernels of one type in one table (quant/types.h's row says which apply).
struct TypeKernels {
  MatmulFn matmul = nullptr;             // weights of this type, float activations
  QMatmulFn qmatmul = nullptr;           // weights of this type, activations of its vec_dot_type
  QuantizeRowFn quantize_row = nullptr;  // this type as activations: float row -> blocks
  // The ISA has no kernel for this type on purpose: the assembled table carries the
  // reference's kernels for it (logged at start-up). A type neither provided nor
  // declined is a bug tests/test_kernels_table.cpp catches.
  bool declined = false;
  // The row-interleaved layout this ISA's GEMM and GEMV read fastest (plain: none; the
  // loader repacks weights of this type into it, kernels.h's matmul() then calls
  // qmatmul_packed), and the kernel for it. Every table also runs weights packed for
  // another (the reference's qmatmul_packed reads any packing).
  Packing packing{};
  PackedQMatmulFn qmatmul_packed = nullptr;
};

// How the SIMD tables relate to the reference (tests/test_kernels.cpp derives the
// bounds): dot, rmsnorm, softmax, the GLU activations, softcap and matmul agree
// within a few units of float rounding (exp/tanh from xsimd, <= 2 ulp); axpy and
// rope within two roundings; scale, add and the conversions bit for bit (NaNs too).
struct Table {
  Isa isa = Isa::kScalar;
  const char* name = "scalar";

  // --- vectors (n may be 0; pointers need only natural float alignment) ---
  float (*dot)(const float* a, const float* b, size_t n);       // sum a[i]*b[i]
  void (*axpy)(float a, const float* x, float* y, size_t n);    // y += a*x
  void (*scale)(float* x, float s, size_t n);                   // x *= s
  void (*add)(float* y, const float* x, size_t n);              // y += x
  // out = x / sqrt(mean(x^2) + eps) * w   (w == nullptr: no weight); out may alias x
  void (*rmsnorm)(float* out, const float* x, const float* w, size_t n, float eps);
  void (*softmax)(float* x, size_t n);                          // in place, max-subtracted
  float (*exp_sum)(float* x, float max, size_t n);              // x = exp(x - max); returns sum x
  void (*silu_mul)(float* g, const float* u, size_t n);         // g = silu(g) * u     (SwiGLU)
  void (*gelu_mul)(float* g, const float* u, size_t n);         // g = gelu_tanh(g) * u (GeGLU; SIMD: g / (1 + exp(-2z)))
  void (*softcap)(float* x, float cap, size_t n);               // x = cap * tanh(x / cap)
  // Rotary embedding of n_heads heads of head_dim floats (contiguous), first rot_dim
  // dims rotated, angle i (0 <= i < rot_dim/2) given by cos[i], sin[i].
  //  norm (llama/GPT-J): pairs (x[2i], x[2i+1]);  neox (gemma/GPT-NeoX): (x[i], x[i+rot_dim/2]).
  void (*rope_norm)(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos,
                    const float* sin);
  void (*rope_neox)(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos,
                    const float* sin);
  // --- conversions ---
  void (*f16_to_f32)(const uint16_t* x, float* y, size_t n);
  void (*bf16_to_f32)(const uint16_t* x, float* y, size_t n);
  void (*f32_to_f16)(const float* x, uint16_t* y, size_t n);
  // Q8_0 blocks (quant/blocks.h) to floats, y = float(q) * d: n a multiple of 32. A Q8_0 KV
  // cache's values are read through it.
  void (*q8_0_to_f32)(const void* x, float* y, size_t n);
  // --- matrices: the kernels of each weight type, indexed by slot(DType) ---
  std::array<TypeKernels, kDTypeSlots> types{};
  TypeKernels& of(DType t) { return types[slot(t)]; }
  const TypeKernels& of(DType t) const { return types[slot(t)]; }
};

// The scalar reference table.
const Table& reference();
// The table for an ISA, or nullptr if not compiled in or the CPU lacks it.
const Table* table_for(Isa isa);
// The best table for this CPU (chosen and logged once, at the first call). Whether
// to use it or reference() is the caller's switch (the engine's context parameter).
// EMBER_ISA=<isa_name> (e.g. avx2, avxvnni, avx512vnni, neon, scalar) forces a table, for
// benchmarks of older CPUs; a name unknown or not runnable here is logged and ignored.
const Table& best();
// The table whose isa_name() is `name` ("avx2", "neon-dotprod", ...): false when no ISA
// has that name; else *table = table_for(that ISA) (nullptr: not runnable here).
bool table_by_name(const char* name, const Table** table);
// Whether the environment asks for the reference kernels (EMBER_REFERENCE=1): read
// once, the default of that switch.
bool reference_requested_by_env();

// Lookups in the type table and a kernel table. activation_type: the type a weight
// type's activations are quantized to (its row's vec_dot_type; F32 for the float
// kernels). The kernels: nullptr when `t` lacks them.
DType activation_type(DType weight);
MatmulFn matmul_fn(const Table& t, DType weight);             // float activations
QMatmulFn qmatmul_fn(const Table& t, DType weight);           // quantized activations
QuantizeRowFn quantize_row_fn(const Table& t, DType activation);
// Whether matmul() can run weights of `type` with table `t`.
bool supports(const Table& t, DType type);

// A weight matrix as stored: `rows` rows of `cols` elements of `type`.
struct MatView {
  DType type = DType::F32;
  const void* data = nullptr;
  size_t rows = 0, cols = 0;
  size_t row_stride = 0;  // bytes; 0 = consecutive rows (row_bytes(type, cols))
  Packing packing{};      // not plain: rows interleaved as quant/repack.h says (row_stride unused)
};
// The kernel matmul() runs for packed weights W with table t: t's own when it reads W's
// packing, else the reference's (which reads any packing).
PackedQMatmulFn packed_fn(const Table& t, const MatView& W);

// Bytes of scratch matmul() needs for n tokens against weights of type w with K
// columns on n_threads threads: quantized weights, the n activation rows quantized
// to activation_type(w); half weights (n > 1), kFloatGemmRows converted rows per
// thread. Callers plan it once (the engine's Context sizes it for its widest matrix).
size_t matmul_scratch_bytes(DType w, size_t n, size_t K, int n_threads);

// Y[n][W.rows] = X[n][W.cols] . W^T, W's rows cut into chunks run on `pool`'s threads
// (nullptr, or too little work to pay for a parallel loop: the calling thread only);
// the result is identical for any pool. W.type must be supported. X and Y are packed
// (ldx = W.cols, ldy = W.rows). `scratch`: matmul_scratch_bytes(W.type, n, W.cols,
// pool's threads) bytes, any alignment. Quantized weights need it (X's rows are first
// quantized into it, in parallel for a batch); float weights may pass nullptr (half
// rows are then converted on the fly: the same result, a slower GEMM).
void matmul(const Table& t, const MatView& W, const float* X, size_t n, float* Y, ThreadPool* pool,
            void* scratch);

// Ys[i] = X . Ws[i]^T for each i (at most 8 matrices, e.g. a layer's q, k and v): bit
// for bit matmul() of each, but X quantized once and all the matrices' rows run in one
// parallel loop when they are all quantized with one activation type and K; else one
// matmul() after another. `scratch`: the largest matmul_scratch_bytes of the Ws.
void matmul_shared(const Table& t, std::span<const MatView> Ws, const float* X, size_t n, std::span<float* const> Ys,
                   ThreadPool* pool, void* scratch);

}  // namespace ember::kernels
