#include "engine/model/repack_weights.h"

#include <sys/mman.h>

#include <chrono>
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

// The matrices a forward pass multiplies by (views into fused tensors included).
std::vector<kernels::MatView*> candidates(ModelWeights* w) {
  std::vector<kernels::MatView*> v;
  for (LayerWeights& l : w->layers)
    for (kernels::MatView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) v.push_back(m);
  if (!w->tied_output) v.push_back(&w->output);
  return v;
}

Packing packing_for(const kernels::Table& t, const kernels::MatView& m) {
  const Packing p = t.of(m.type).packing;
  return m.data && m.packing.plain() && !p.plain() && can_pack(m.type, p, m.rows, m.cols) ? p : Packing{};
}

}  // namespace

Status RepackWeights(const kernels::Table& t, const GgufFile& file, ModelWeights* w, RepackedWeights* out) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<kernels::MatView*> todo;
  size_t total = 0;
  for (kernels::MatView* m : candidates(w)) {
    if (packing_for(t, *m).plain()) continue;
    todo.push_back(m);
    total += round_up(packed_bytes(m->type, packing_for(t, *m), m->rows, m->cols));
  }
  if (todo.empty()) return Status::Ok();
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
  for (kernels::MatView* m : todo) {
    const Packing p = packing_for(t, *m);
    const size_t stride = m->row_stride ? m->row_stride : row_bytes(m->type, m->cols);
    const size_t bytes = packed_bytes(m->type, p, m->rows, m->cols);
    const auto* src = static_cast<const uint8_t*>(m->data);
    pack_rows(m->type, p, src, stride, m->rows, m->cols, dst);
    out->released += file.ReleasePages(src, m->rows * stride);
    m->data = dst;
    m->row_stride = 0;
    m->packing = p;
    dst += round_up(bytes);
  }
  out->bytes = size;
  out->matrices = todo.size();
  out->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  char name[32];
  EMBER_LOG_INFO("%s: repacked %zu matrices for %s (%s rows x bytes, %.1f MiB) in %.0f ms; %.1f MiB of the mapping released",
                 file.path().c_str(), out->matrices, t.name, packing_name(todo.front()->packing, name, sizeof name),
                 static_cast<double>(total) / (1 << 20), out->ms, static_cast<double>(out->released) / (1 << 20));
  return Status::Ok();
}

}  // namespace ember
