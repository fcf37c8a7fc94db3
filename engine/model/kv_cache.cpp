#include "engine/model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "quant/blocks.h"
#include "quant/quantize.h"

namespace ember {

namespace {

// Cells of layer l: a sliding-window layer needs its window behind the first query of a
// batch plus the batch itself; never more than n_ctx.
int32_t LayerCells(const ModelConfig& c, const KvCacheShape& s, int32_t l) {
  const bool swa = !c.layer_swa.empty() && c.layer_swa[l] && c.sliding_window > 0;
  if (!swa || s.swa_full) return s.n_ctx;
  const int64_t ring = static_cast<int64_t>(c.sliding_window) + s.n_batch;
  return static_cast<int32_t>(std::min<int64_t>(ring, s.n_ctx));
}

}  // namespace

Status KvCache::CheckType(DType t, int32_t dim, const char* what) {
  if (t == DType::F32 || t == DType::F16) return Status::Ok();
  if (t == DType::Q8_0) {
    if (dim % 32 == 0) return Status::Ok();
    return InvalidArgument(std::string("cache type q8_0 for ") + what + " needs a head size that is a multiple of 32 (it is " +
                           std::to_string(dim) + ")");
  }
  return InvalidArgument(std::string("cache type ") + dtype_name(t) + " for " + what +
                         " is not supported (f32, f16 or q8_0)");
}

uint64_t KvCache::PlannedBytes(const ModelConfig& c, const KvCacheShape& s) {
  const uint64_t per_cell = c.n_head_kv * (row_bytes(s.type_k, c.head_dim) + row_bytes(s.type_v, c.head_dim_v));
  uint64_t total = 0;
  for (int32_t l = 0; l < c.n_layer; ++l) total += per_cell * LayerCells(c, s, l);
  return total;
}

Status KvCache::Init(const ModelConfig& c, const KvCacheShape& s) {
  EMBER_RETURN_IF_ERROR(CheckType(s.type_k, c.head_dim, "keys"));
  EMBER_RETURN_IF_ERROR(CheckType(s.type_v, c.head_dim_v, "values"));
  shape_ = s;
  n_head_kv_ = c.n_head_kv;
  head_dim_ = c.head_dim;
  head_dim_v_ = c.head_dim_v;
  k_row_bytes_ = row_bytes(s.type_k, c.head_dim);
  v_row_bytes_ = row_bytes(s.type_v, c.head_dim_v);
  layers_.assign(c.n_layer, Layer{});
  size_t k_total = 0, v_total = 0;
  for (int32_t l = 0; l < c.n_layer; ++l) {
    Layer& L = layers_[l];
    L.cells = LayerCells(c, s, l);
    L.k_offset = k_total;
    L.v_offset = v_total;
    k_total += static_cast<size_t>(n_head_kv_) * L.cells * k_row_bytes_;
    v_total += static_cast<size_t>(n_head_kv_) * L.cells * v_row_bytes_;
  }
  k_.assign(k_total, 0);
  v_.assign(v_total, 0);
  return Status::Ok();
}

uint8_t* KvCache::row(int32_t layer, int32_t head, int32_t pos, bool value) {
  const Layer& L = layers_[layer];
  const size_t cell = static_cast<size_t>(pos % L.cells);
  const size_t rb = value ? v_row_bytes_ : k_row_bytes_;
  uint8_t* base = value ? v_.data() + L.v_offset : k_.data() + L.k_offset;
  return base + (static_cast<size_t>(head) * L.cells + cell) * rb;
}

int32_t KvCache::contiguous(int32_t layer, int32_t pos, int32_t n) const {
  const int32_t c = cells(layer);
  return std::min(n, c - pos % c);
}

void KvCache::FromFloat(const kernels::Table& kt, DType t, const float* in, uint8_t* row, size_t n) {
  switch (t) {
    case DType::F16: kt.f32_to_f16(in, reinterpret_cast<uint16_t*>(row), n); return;
    case DType::Q8_0: kt.of(DType::Q8_0).quantize_row(in, row, n); return;
    default: std::memcpy(row, in, n * sizeof(float)); return;
  }
}

void KvCache::ToFloat(const kernels::Table& kt, DType t, const uint8_t* row, float* out, size_t n) {
  switch (t) {
    case DType::F16: kt.f16_to_f32(reinterpret_cast<const uint16_t*>(row), out, n); return;
    case DType::Q8_0: kt.q8_0_to_f32(row, out, n); return;
    default: std::memcpy(out, row, n * sizeof(float)); return;
  }
}

void KvCache::Store(const kernels::Table& kt, int32_t layer, int32_t pos, const float* k, const float* v) {
  for (int32_t h = 0; h < n_head_kv_; ++h) {
    FromFloat(kt, shape_.type_k, k + static_cast<size_t>(h) * head_dim_, k_row(layer, h, pos), head_dim_);
    FromFloat(kt, shape_.type_v, v + static_cast<size_t>(h) * head_dim_v_, v_row(layer, h, pos), head_dim_v_);
  }
}

void KvCache::MoveRows(int32_t layer, int32_t from, int32_t to, int32_t n) {
  for (int32_t h = 0; h < n_head_kv_; ++h) {
    std::memmove(k_row(layer, h, to), k_row(layer, h, from), static_cast<size_t>(n) * k_row_bytes_);
    std::memmove(v_row(layer, h, to), v_row(layer, h, from), static_cast<size_t>(n) * v_row_bytes_);
  }
}

// The content of cell x moves to cell (x - d) mod cells: position p's row lands where
// position p - d belongs.
void KvCache::RotateRing(int32_t layer, int32_t d) {
  const size_t c = static_cast<size_t>(cells(layer)), shift = static_cast<size_t>(d) % c;
  for (int32_t h = 0; h < n_head_kv_; ++h) {
    uint8_t* k = k_row(layer, h, 0);
    uint8_t* v = v_row(layer, h, 0);
    std::rotate(k, k + shift * k_row_bytes_, k + c * k_row_bytes_);
    std::rotate(v, v + shift * v_row_bytes_, v + c * v_row_bytes_);
  }
}

uint64_t KvCache::bytes_per_position() const {
  uint64_t b = 0;
  for (int32_t l = 0; l < n_layer(); ++l)
    if (!is_ring(l)) b += static_cast<uint64_t>(n_head_kv_) * (k_row_bytes_ + v_row_bytes_);
  return b;
}

}  // namespace ember
