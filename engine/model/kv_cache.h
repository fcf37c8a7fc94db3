// KvCache: the keys and values of every layer, stored in the cache type the context
// chose (F32, F16 or Q8_0, for K and V separately) and planned once at creation.
//
// Layout: per layer, per KV head, `cells(layer)` rows of head_dim elements, one row per
// position, so attention streams through one head's positions. A full layer has n_ctx
// cells (position p in cell p). A sliding-window layer (Gemma 2/3) only ever looks back
// `window` positions, so it keeps a ring of window + n_batch cells (position p in cell
// p % cells): its memory does not grow with n_ctx. The extra n_batch cells let a whole
// batch be written before any of its queries reads the window behind it.
//
// Rows are written once per position (Store) in the cache type, rounded as the type's
// reference quantizer rounds (quant/quantize.h); readers take them as stored.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "engine/model/config.h"
#include "kernels/kernels.h"
#include "quant/types.h"

namespace ember {

struct KvCacheShape {
  int32_t n_ctx = 0, n_batch = 0;
  DType type_k = DType::F16, type_v = DType::F16;
  bool swa_full = false;  // sliding-window layers get n_ctx cells too (no ring)
};

class KvCache {
 public:
  // Whether a type can hold keys or values of rows of `dim` elements (F32, F16; Q8_0 when
  // dim is a multiple of 32). The error names the type and the dimension.
  static Status CheckType(DType t, int32_t dim, const char* what);
  // Bytes Init would allocate, for planning before anything is allocated.
  static uint64_t PlannedBytes(const ModelConfig& c, const KvCacheShape& s);

  // Allocates (std::bad_alloc escapes: the caller turns it into a status) and zeroes.
  Status Init(const ModelConfig& c, const KvCacheShape& s);

  DType type_k() const { return shape_.type_k; }
  DType type_v() const { return shape_.type_v; }
  int32_t n_layer() const { return static_cast<int32_t>(layers_.size()); }
  int32_t n_head_kv() const { return n_head_kv_; }
  // Cells of a layer: n_ctx, or window + n_batch (at most n_ctx) for a sliding-window layer.
  int32_t cells(int32_t layer) const { return layers_[layer].cells; }
  bool is_ring(int32_t layer) const { return layers_[layer].cells < shape_.n_ctx; }
  // The first position a layer still holds when n_past positions were written.
  int32_t first_held(int32_t layer, int32_t n_past) const {
    const int32_t c = cells(layer);
    return n_past > c ? n_past - c : 0;
  }
  size_t k_row_bytes() const { return k_row_bytes_; }
  size_t v_row_bytes() const { return v_row_bytes_; }
  // The row of position pos (its cell) for a KV head.
  uint8_t* k_row(int32_t layer, int32_t head, int32_t pos) { return row(layer, head, pos, false); }
  uint8_t* v_row(int32_t layer, int32_t head, int32_t pos) { return row(layer, head, pos, true); }
  const uint8_t* k_row(int32_t layer, int32_t head, int32_t pos) const {
    return const_cast<KvCache*>(this)->row(layer, head, pos, false);
  }
  const uint8_t* v_row(int32_t layer, int32_t head, int32_t pos) const {
    return const_cast<KvCache*>(this)->row(layer, head, pos, true);
  }
  // Rows of one head from position pos on that are contiguous in memory (up to the ring's
  // end or n): at least 1 when n >= 1.
  int32_t contiguous(int32_t layer, int32_t pos, int32_t n) const;

  // Writes the keys [n_head_kv][head_dim] and values [n_head_kv][head_dim_v] of position pos.
  void Store(const kernels::Table& kt, int32_t layer, int32_t pos, const float* k, const float* v);
  // Reads one stored row back as floats (n = head_dim or head_dim_v elements).
  static void ToFloat(const kernels::Table& kt, DType t, const uint8_t* row, float* out, size_t n);
  // Writes floats as a stored row.
  static void FromFloat(const kernels::Table& kt, DType t, const float* in, uint8_t* row, size_t n);

  // Context shift: positions [from, from + n) of a full layer move to [to, to + n), to < from.
  void MoveRows(int32_t layer, int32_t from, int32_t to, int32_t n);
  // Context shift on a ring layer: every position p it holds becomes p - d (cells rotate).
  void RotateRing(int32_t layer, int32_t d);

  uint64_t bytes() const { return k_.size() + v_.size(); }
  // Bytes one more position of context adds (the full layers' K and V rows).
  uint64_t bytes_per_position() const;

 private:
  struct Layer {
    int32_t cells = 0;
    size_t k_offset = 0, v_offset = 0;  // into k_, v_
  };
  uint8_t* row(int32_t layer, int32_t head, int32_t pos, bool value);

  KvCacheShape shape_;
  int32_t n_head_kv_ = 0, head_dim_ = 0, head_dim_v_ = 0;
  size_t k_row_bytes_ = 0, v_row_bytes_ = 0;
  std::vector<Layer> layers_;
  std::vector<uint8_t> k_, v_;
};

}  // namespace ember
