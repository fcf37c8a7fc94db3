// The type table (quant/types.h) walked row by row: its invariants, the reference
// round trip of every computable type, and every compiled kernel table either providing
// a type's kernels or declining them explicitly (never a silent gap, never a null call).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "quant/types.h"
#include "support/vnni_emulated.h"

namespace ember::kernels {
namespace {

// The SIMD tables this CPU can run, and the AVX-VNNI code on emulated VNNI (AVX2 hosts).
std::vector<const Table*> simd_tables() {
  std::vector<const Table*> v = tables_with_emulated();
  v.erase(v.begin());  // the reference
  return v;
}

std::vector<DType> named_types() {
  std::vector<DType> v;
  for (uint32_t id = 0; id < kDTypeSlots; ++id)
    if (dtype_info(id).name) v.push_back(static_cast<DType>(id));
  return v;
}

TEST(TypeTable, RowsAreConsistent) {
  EXPECT_EQ(dtype_info(4).name, nullptr);  // removed ids stay empty
  EXPECT_EQ(dtype_info(kDTypeSlots).name, nullptr);
  for (DType t : named_types()) {
    const TypeTraits& r = dtype_info(t);
    SCOPED_TRACE(r.name);
    EXPECT_GT(r.block_size, 0u);
    EXPECT_GT(r.type_size, 0u);
    EXPECT_EQ(row_bytes(t, 3 * r.block_size), 3u * r.type_size);
    if (r.block_size > 1) {
      EXPECT_EQ(row_bytes(t, r.block_size + 1), 0u);  // not whole blocks
    }
    EXPECT_GT(r.bits_per_weight(), 0.9);
    // A weight type can be read (to_float), and its activations are float or a type
    // that has a reference quantizer and is no weight type of its own kernels' making.
    if (r.is_weight) {
      EXPECT_NE(r.to_float, nullptr);
      const TypeTraits& a = dtype_info(r.vec_dot_type);
      if (r.vec_dot_type != DType::F32) {
        EXPECT_NE(a.from_float, nullptr) << "activation type " << a.name;
        EXPECT_EQ(a.block_size, r.block_size) << "one activation block per weight block";
      }
    }
    if (r.from_float) {
      EXPECT_NE(r.to_float, nullptr);
    }
  }
}

// Reference round trip: from_float then to_float stays within half the code precision
// the row's bits per weight imply: block types |x - x^| <= amax(block) * 2^(2 - floor(bpw))
// (a b-bit code of step ~2 amax / 2^b errs by at most amax / 2^b; the bound leaves 4x for
// scale quantization and K-quant sub-block scales); scalar types |x - x^| <= |x| * 2^(-bpw/2)
// (f16: 2^-11 relative, bf16: 2^-9, f32: exact).
TEST(TypeTable, ReferenceRoundTrip) {
  std::mt19937 g(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType t : named_types()) {
    const TypeTraits& r = dtype_info(t);
    if (!r.from_float) continue;
    SCOPED_TRACE(r.name);
    const size_t n = 4 * static_cast<size_t>(r.block_size < 256 ? 256 : r.block_size);
    std::vector<float> x(n), y(n);
    for (auto& v : x) v = nd(g);
    std::vector<uint8_t> q(row_bytes(t, n));
    r.from_float(x.data(), q.data(), static_cast<int64_t>(n));
    r.to_float(q.data(), y.data(), static_cast<int64_t>(n));
    const double bpw = r.bits_per_weight();
    for (size_t b = 0; b < n; b += r.block_size) {
      double amax = 0;
      for (size_t i = b; i < b + r.block_size; ++i) amax = std::max(amax, std::fabs(double(x[i])));
      for (size_t i = b; i < b + r.block_size; ++i) {
        const double tol = r.block_size > 1 ? amax * std::ldexp(1.0, 2 - int(std::floor(bpw)))
                                            : std::fabs(x[i]) * std::ldexp(1.0, -int(bpw / 2));
        ASSERT_LE(std::fabs(double(x[i]) - y[i]), tol) << "element " << i;
      }
    }
  }
}

// Every weight row: the reference computes it; every SIMD table this CPU runs either
// has its own kernels or declines the type explicitly (and then carries the reference's).
TEST(TypeTable, EveryTableProvidesOrDeclinesEachWeightType) {
  for (DType t : named_types()) {
    const TypeTraits& r = dtype_info(t);
    SCOPED_TRACE(r.name);
    EXPECT_EQ(supports(reference(), t), r.is_weight);
    for (const Table* k : simd_tables()) {
      SCOPED_TRACE(k->name);
      EXPECT_EQ(supports(*k, t), r.is_weight);
      const TypeKernels& e = k->of(t);
      const TypeKernels& ref = reference().of(t);
      if (e.declined) {
        EXPECT_TRUE(e.matmul == ref.matmul && e.qmatmul == ref.qmatmul) << "declined: the reference's";
      } else if (r.is_weight) {
        if (r.vec_dot_type == DType::F32) {
          EXPECT_NE(e.matmul, ref.matmul) << "own float kernel";
        } else {
          EXPECT_NE(e.qmatmul, ref.qmatmul) << "own quantized kernel";
        }
      } else {
        EXPECT_TRUE(!e.matmul && !e.qmatmul) << "a kernel for a type that is no weight type";
      }
      // Activation types: the table's quantizer, never the reference's (all are cheap).
      if (r.is_weight && r.vec_dot_type != DType::F32) {
        EXPECT_NE(k->of(r.vec_dot_type).quantize_row, nullptr);
      }
    }
  }
}

}  // namespace
}  // namespace ember::kernels
