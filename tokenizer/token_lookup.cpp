#include "tokenizer/token_lookup.h"

namespace ember {

void TokenLookup::Build(const std::vector<std::string>* pieces) {
  pieces_ = pieces;
  has_duplicates_ = false;
  size_t cap = 16;
  while (cap < pieces->size() + pieces->size() / 2) cap *= 2;  // load factor <= 2/3
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  for (size_t id = 0; id < pieces->size(); ++id) {
    const std::string& p = (*pieces)[id];
    const uint64_t h = Hash(p);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s = {tag, static_cast<int32_t>(id)};
        break;
      }
      if (s.tag == tag && (*pieces)[s.id] == p) {  // a duplicate: the first stays
        has_duplicates_ = true;
        break;
      }
    }
  }
}

int32_t TokenLookup::Find(std::string_view text) const {
  if (slots_.empty()) return -1;
  const uint64_t h = Hash(text);
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.tag == tag && (*pieces_)[s.id] == text) return s.id;
  }
}

void TokenLookup::FindBatch(const Query* queries, size_t n, int32_t* ids) const {
  constexpr size_t kMaxBatch = 256;
  if (slots_.empty()) {
    for (size_t k = 0; k < n; ++k) ids[k] = -1;
    return;
  }
  for (; n > kMaxBatch; n -= kMaxBatch, queries += kMaxBatch, ids += kMaxBatch) FindBatch(queries, kMaxBatch, ids);
  uint64_t hashes[kMaxBatch];
  for (size_t k = 0; k < n; ++k) {
    hashes[k] = Hash(queries[k]);
    __builtin_prefetch(&slots_[hashes[k] & mask_]);
  }
  for (size_t k = 0; k < n; ++k) {  // the first slot's candidate string
    const Slot& s = slots_[hashes[k] & mask_];
    if (s.id >= 0) __builtin_prefetch((*pieces_)[s.id].data());
  }
  for (size_t k = 0; k < n; ++k) {
    const auto tag = static_cast<uint32_t>(hashes[k] >> 32);
    ids[k] = -1;
    for (size_t i = hashes[k] & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) break;
      if (s.tag == tag && Equals((*pieces_)[s.id], queries[k])) {
        ids[k] = s.id;
        break;
      }
    }
  }
}

}  // namespace ember
