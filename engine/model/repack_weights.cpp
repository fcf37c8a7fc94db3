#include "engine/model/repack_weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.h"
#include "engine/model/model.h"
#include "quant/repack.h"

namespace ember {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugePageMin = size_t{64} << 20;
size_t round_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// A byte range of the mapping, [begin, end).
using Range = std::pair<const uint8_t*, const uint8_t*>;

// The matrices a forward pass multiplies by (views into fused tensors included).
std::vector<kernels::MatView*> candidates(ModelWeights* w) {
  std::vector<kernels::MatView*> v;
  for (LayerWeights& l : w->layers)
    for (kernels::MatView* m : l.matrices()) v.push_back(m);
  if (!w->tied_output) v.push_back(&w->output);
  return v;
}

// The float vectors the forward pass reads besides the matrices: norms, biases, RoPE
// factors. They sit between the matrices in the file; left there, every token would read
// them through the mapping, and the kernel maps a whole 2 MiB page-cache folio on such a
// read where it can, bringing back megabytes of released matrix bytes around each one
// (measured: peak RSS +30 % over the plan on SmolLM2-360M Q4_0, tests/test_memory.cpp).
std::vector<const float**> side_vectors(ModelWeights* w) {
  std::vector<const float**> v;
  for (LayerWeights& l : w->layers)
    for (const float** p : {&l.attn_norm, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm, &l.post_attn_norm, &l.ffn_norm,
                            &l.post_ffn_norm})
      v.push_back(p);
  for (const float** p :
       {&w->output_norm, &w->output_bias, &w->rope_freqs, &w->rope_factors_long, &w->rope_factors_short})
    v.push_back(p);
  return v;
}

Packing packing_for(const kernels::Table& t, const kernels::MatView& m) {
  const Packing p = t.of(m.type).packing;
  return m.data && m.packing.plain() && !p.plain() && can_pack(m.type, p, m.rows, m.cols) ? p : Packing{};
}

// The file's tensors by where their data starts.
std::unordered_map<const void*, const GgufTensor*> tensors_by_data(const GgufFile& file) {
  std::unordered_map<const void*, const GgufTensor*> m;
  for (const GgufTensor& t : file.tensors()) m.emplace(t.data, &t);
  return m;
}

// Moves each side vector that is a whole tensor of the file to dst (64-byte steps);
// returns the bytes used. A vector shared by two fields moves once.
size_t move_side_vectors(const std::vector<const float**>& sides,
                         const std::unordered_map<const void*, const GgufTensor*>& by_data, uint8_t* dst,
                         std::vector<Range>* moved) {
  std::unordered_map<const float*, const float*> done;
  size_t used = 0;
  for (const float** p : sides) {
    if (!*p) continue;
    if (auto d = done.find(*p); d != done.end()) {
      *p = d->second;
      continue;
    }
    const auto t = by_data.find(*p);
    if (t == by_data.end()) continue;  // not a tensor of the mapping (e.g. converted at load)
    const size_t n = t->second->nbytes;
    if (dst) {
      std::memcpy(dst + used, *p, n);
      moved->push_back({t->second->data, t->second->data + n});
      done[*p] = reinterpret_cast<const float*>(dst + used);
      *p = done[*p];
    }
    used += round_up(n);
  }
  return used;
}

// The tensors still read through the mapping: those not wholly inside the moved ranges.
std::vector<Range> kept_tensors(const GgufFile& file, std::vector<Range> moved) {
  std::sort(moved.begin(), moved.end());
  std::vector<Range> merged;  // touching ranges joined: a fused tensor's views make it whole
  for (const Range& r : moved) {
    if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
    else merged.push_back(r);
  }
  std::vector<Range> kept;
  for (const GgufTensor& t : file.tensors()) {
    const Range r{t.data, t.data + t.nbytes};
    auto it = std::upper_bound(merged.begin(), merged.end(), Range{r.first, nullptr});
    const bool inside_prev = it != merged.begin() && std::prev(it)->first <= r.first && r.second <= std::prev(it)->second;
    const bool inside_this = it != merged.end() && it->first == r.first && r.second <= it->second;
    if (!inside_prev && !inside_this) kept.push_back(r);
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

// Releases every page of the data section that no kept tensor touches (padding between
// moved tensors included, so the pages two moved tensors share go too). Bytes released.
size_t release_all_but(const GgufFile& file, const std::vector<Range>& kept) {
  if (file.tensors().empty()) return 0;
  const uint8_t* begin = file.file_data() + file.file_size();
  for (const GgufTensor& t : file.tensors()) begin = std::min(begin, t.data);
  const uint8_t* const end = file.file_data() + file.file_size();
  size_t released = 0;
  for (const Range& k : kept) {
    if (k.first > begin) released += file.ReleasePages(begin, static_cast<size_t>(k.first - begin));
    begin = std::max(begin, k.second);
  }
  if (end > begin) released += file.ReleasePages(begin, static_cast<size_t>(end - begin));
  return released;
}

}  // namespace

Status RepackWeights(const kernels::Table& t, const GgufFile& file, ModelWeights* w, RepackedWeights* out) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<kernels::MatView*> todo;
  size_t matrix_bytes = 0;
  for (kernels::MatView* m : candidates(w)) {
    if (packing_for(t, *m).plain()) continue;
    todo.push_back(m);
    matrix_bytes += round_up(packed_bytes(m->type, packing_for(t, *m), m->rows, m->cols));
  }
  if (todo.empty()) return Status::Ok();
  const std::vector<const float**> sides = side_vectors(w);
  const auto by_data = tensors_by_data(file);
  const size_t total = matrix_bytes + move_side_vectors(sides, by_data, nullptr, nullptr);
  // A large buffer on huge-page boundaries, asking for transparent huge pages: the copy
  // then takes 512x fewer page faults (most of the load-time cost when the kernel grants
  // them). Small models keep 64-byte alignment: a huge page would be mostly unused.
  const bool huge = total >= kHugePageMin;
  const size_t align = huge ? kHugePage : kAlign, size = (total + align - 1) / align * align;
  out->buffer.reset(static_cast<uint8_t*>(std::aligned_alloc(align, size)));
  if (!out->buffer)
    return Status(Code::kOutOfMemory, file.path() + ": cannot allocate " + std::to_string(total >> 20) +
                                          " MiB for repacked weights (--no-repack uses them in place)");
  if (huge) ::madvise(out->buffer.get(), size, MADV_HUGEPAGE);  // advice: no error if refused
  uint8_t* dst = out->buffer.get();
  std::vector<Range> moved;
  for (kernels::MatView* m : todo) {
    const Packing p = packing_for(t, *m);
    const size_t stride = m->row_stride ? m->row_stride : row_bytes(m->type, m->cols);
    const auto* src = static_cast<const uint8_t*>(m->data);
    pack_rows(m->type, p, src, stride, m->rows, m->cols, dst);
    // Its pages go now, not after the loop: the load's peak holds one matrix twice, not
    // the model (release_all_but below counts these bytes again, with the rest).
    file.ReleasePages(src, m->rows * stride);
    moved.push_back({src, src + m->rows * stride});
    m->data = dst;
    m->row_stride = 0;
    m->packing = p;
    dst += round_up(packed_bytes(m->type, p, m->rows, m->cols));
  }
  move_side_vectors(sides, by_data, dst, &moved);
  out->released = release_all_but(file, kept_tensors(file, std::move(moved)));
  out->bytes = size;
  out->matrices = todo.size();
  out->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  char name[32];
  EMBER_LOG_INFO("%s: repacked %zu matrices for %s (%s rows x bytes, %.1f MiB) in %.0f ms; %.1f MiB of the mapping released",
                 file.path().c_str(), out->matrices, t.name, packing_name(todo.front()->packing, name, sizeof name),
                 static_cast<double>(matrix_bytes) / (1 << 20), out->ms, static_cast<double>(out->released) / (1 << 20));
  return Status::Ok();
}

}  // namespace ember
