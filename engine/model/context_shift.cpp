// Context shift: when the context is full, drop the oldest part after the first n_keep
// tokens and slide the rest down, so that generation goes on (llama.cpp's
// --context-shift). RoPE makes q.k depend only on the distance between positions, so a
// key stored at p and rotated by -d is, up to rounding, the key of position p - d.
#include <algorithm>
#include <cmath>
#include <string>

#include "engine/model/context.h"

namespace ember {

// The rotation by -d of each layer's rotary parameters, in double rounded once, without
// the tables' attn_factor (it scaled the key once already).
void Context::RerotateKeys(int32_t l, int32_t first, int32_t end, int32_t d) {
  const ModelConfig& c = model_.config();
  const RopeParams& p = rope_params_[layer_rope_[l]];
  const size_t half = c.rope_dim / 2;
  for (size_t i = 0; i < half; ++i) {
    const double divisor = p.factors ? static_cast<double>(p.factors[i]) : 1.0;
    const double theta = -static_cast<double>(d) * p.scale * std::pow(p.base, -2.0 * i / c.rope_dim) / divisor;
    shift_cos_[i] = static_cast<float>(std::cos(theta));
    shift_sin_[i] = static_cast<float>(std::sin(theta));
  }
  auto rope = c.rope_style == RopeStyle::kNorm ? kt_->rope_norm : kt_->rope_neox;
  for (int32_t pos = first; pos < end; ++pos)
    for (int32_t h = 0; h < c.n_head_kv; ++h) {
      uint8_t* row = kv_.k_row(l, h, pos);
      KvCache::ToFloat(*kt_, kv_.type_k(), row, shift_row_.data(), c.head_dim);
      rope(shift_row_.data(), 1, c.head_dim, c.rope_dim, shift_cos_.data(), shift_sin_.data());
      KvCache::FromFloat(*kt_, kv_.type_k(), shift_row_.data(), row, c.head_dim);
    }
}

Status Context::Shift(int32_t n_keep, int32_t n_discard) {
  if (n_keep < 0 || n_discard < 1 || static_cast<int64_t>(n_keep) + n_discard > n_past_)
    return InvalidArgument("context shift: keep " + std::to_string(n_keep) + " and discard " +
                           std::to_string(n_discard) + " of the " + std::to_string(n_past_) + " tokens in the cache");
  const ModelConfig& c = model_.config();
  const int32_t d = n_discard, n_after = n_past_ - d;
  // A ring layer keeps only its last cells; the next queries read back a window from
  // n_after, which must lie in the moved part (the kept tokens are long overwritten).
  for (int32_t l = 0; l < c.n_layer; ++l)
    if (kv_.is_ring(l) && n_after - c.sliding_window + 1 < n_keep)
      return OutOfRange("context shift: keeping " + std::to_string(n_keep) + " tokens and " +
                        std::to_string(n_after - n_keep) + " more is less than the sliding window (" +
                        std::to_string(c.sliding_window) + ") its ring layers need; discard fewer tokens");
  for (int32_t l = 0; l < c.n_layer; ++l) {
    if (kv_.is_ring(l)) {
      const int32_t first = std::max(n_keep, kv_.first_held(l, n_past_) - d);
      kv_.RotateRing(l, d);
      RerotateKeys(l, first, n_after, d);
    } else {
      kv_.MoveRows(l, n_keep + d, n_keep, n_after - n_keep);
      RerotateKeys(l, n_keep, n_after, d);
    }
  }
  n_past_ = n_after;
  ring_floor_ = n_keep;  // what rings held below n_keep is not there any more
  return Status::Ok();
}

}  // namespace ember
