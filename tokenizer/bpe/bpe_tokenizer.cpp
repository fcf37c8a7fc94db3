#include "tokenizer/bpe/bpe_tokenizer.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <cstdio>

#include "tokenizer/bpe/byte_unicode.h"

namespace ember::bpe {

// (left id, right id) -> (rank, merged id): open addressing, linear probing. A flat
// table because the merge loop looks a pair up for every adjacent pair it meets.
struct BpeTokenizer::MergeTable {
  struct Slot {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no pair of two valid ids has it
  std::vector<Slot> slots;
  size_t mask = 0;

  static uint64_t Key(int32_t a, int32_t b) {
    return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b);
  }
  static size_t Hash(uint64_t k) {  // murmur3's finalizer: ids are dense, mix them
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void Reserve(size_t n) {
    size_t cap = 16;
    while (cap < n + n / 2) cap *= 2;  // load factor <= 2/3
    slots.assign(cap, Slot{kEmpty, 0, 0});
    mask = cap - 1;
  }
  // The first insertion of a pair wins (its lowest rank), as in llama.cpp.
  void Insert(uint64_t key, int32_t rank, int32_t merged) {
    for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == key) return;
      if (slots[i].key == kEmpty) {
        slots[i] = {key, rank, merged};
        return;
      }
    }
  }
  void Prefetch(uint64_t key) const { __builtin_prefetch(&slots[Hash(key) & mask]); }
  const Slot* Find(uint64_t key) const {
    for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == key) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

namespace {

// Words already encoded in one Encode call -> where their ids are in a side buffer.
// Open addressing over string_views into the text being encoded (it outlives the call).
class WordCache {
 public:
  struct Entry {
    uint64_t hash;
    std::string_view word;  // empty: a free slot (one-byte words are never cached)
    uint32_t off, len;
  };
  const Entry* Find(std::string_view w, uint64_t h) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.word.empty()) return nullptr;
      if (e.hash == h && e.word == w) return &e;
    }
  }
  void Insert(std::string_view w, uint64_t h, uint32_t off, uint32_t len) {
    if (2 * (used_ + 1) > slots_.size()) Grow();
    Place({h, w, off, len});
    ++used_;
  }

 private:
  void Place(const Entry& e) {
    size_t i = e.hash & mask_;
    while (!slots_[i].word.empty()) i = (i + 1) & mask_;
    slots_[i] = e;
  }
  void Grow() {
    std::vector<Entry> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : 2 * old.size(), Entry{0, {}, 0, 0});
    mask_ = slots_.size() - 1;
    for (const Entry& e : old)
      if (!e.word.empty()) Place(e);
  }
  std::vector<Entry> slots_;
  size_t mask_ = 0, used_ = 0;
};

}  // namespace

// Per-Encode-call working memory (Encode is const and may run on several threads).
struct BpeTokenizer::Scratch {
  std::vector<std::string_view> words;
  std::string encoded;
  // The word's symbols as a linked list over byte positions; rank/merged: the merge of
  // the pair that starts at a symbol.
  std::vector<int32_t> id, prev, next, rank, merged;
  std::vector<std::pair<int32_t, int32_t>> queue;  // long words: (rank, left) candidates
  WordCache cache;  // words already encoded in this call -> their ids in cache_ids
  std::vector<int32_t> cache_ids;
};

BpeTokenizer::~BpeTokenizer() = default;

namespace {

// 's' for messages, cut at 64 bytes. (Appended step by step: GCC 12 warns falsely on
// "'" + std::string.)
std::string Quoted(std::string_view s) {
  std::string q = "'";
  q.append(s.substr(0, 64));
  q.append(s.size() > 64 ? "...'" : "'");
  return q;
}

}  // namespace

Status BpeTokenizer::Create(const TokenLookup* lookup, const std::vector<std::string>& merges, std::string_view pre,
                            std::unique_ptr<BpeTokenizer>* out) {
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->lookup_ = lookup;
  EMBER_RETURN_IF_ERROR(PreTokenizer::Create(pre, &t->pre_));
  for (int b = 0; b < 256; ++b) {
    const int32_t id = lookup->Find(ByteToUnicode(static_cast<uint8_t>(b)));
    if (id < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      return BadFormat(std::string("tokenizer: byte-level BPE vocabulary has no token for byte ") + hex);
    }
    t->byte_token_[b] = id;
  }
  if (merges.empty()) return BadFormat("tokenizer: byte-level BPE vocabulary has no merges (tokenizer.ggml.merges)");
  t->merges_ = std::make_unique<MergeTable>();
  t->merges_->Reserve(merges.size());
  EMBER_RETURN_IF_ERROR(t->ReadMerges(merges));
  t->n_merges_ = merges.size();
  *out = std::move(t);
  return Status::Ok();
}

// Merges are read in batches so that the three lookups of each (left, right, and the
// merged text) overlap their cache misses (TokenLookup::FindBatch).
Status BpeTokenizer::ReadMerges(const std::vector<std::string>& merges) {
  constexpr size_t kBatch = 64;
  TokenLookup::Query queries[3 * kBatch];  // left, right, left + right
  int32_t ids[3 * kBatch];
  for (size_t base = 0; base < merges.size(); base += kBatch) {
    const size_t n = std::min(kBatch, merges.size() - base);
    for (size_t k = 0; k < n; ++k) {
      const std::string& m = merges[base + k];
      const size_t space = m.find(' ', 1);  // from 1: a left part may itself be a space
      if (space == std::string::npos)
        return BadFormat("tokenizer: merge " + std::to_string(base + k) + " " + Quoted(m) +
                         " is not two tokens separated by a space");
      const std::string_view left(m.data(), space), right(m.data() + space + 1, m.size() - space - 1);
      queries[3 * k] = {left, {}};
      queries[3 * k + 1] = {right, {}};
      queries[3 * k + 2] = {left, right};
    }
    lookup_->FindBatch(queries, 3 * n, ids);
    for (size_t k = 0; k < n; ++k)
      if (ids[3 * k] >= 0 && ids[3 * k + 1] >= 0) merges_->Prefetch(MergeTable::Key(ids[3 * k], ids[3 * k + 1]));
    for (size_t k = 0; k < n; ++k) {
      const size_t rank = base + k;
      const int32_t l = ids[3 * k], r = ids[3 * k + 1], merged = ids[3 * k + 2];
      if (l < 0 || r < 0)
        return BadFormat("tokenizer: merge " + std::to_string(rank) + " " + Quoted(merges[rank]) + " names " +
                         Quoted(queries[3 * k + (l < 0 ? 0 : 1)].head) + ", which is not in the vocabulary");
      if (merged < 0)
        return BadFormat("tokenizer: merge " + std::to_string(rank) + " " + Quoted(merges[rank]) + " makes " +
                         Quoted(std::string(queries[3 * k + 2].head) + std::string(queries[3 * k + 2].tail)) +
                         ", which is not in the vocabulary");
      merges_->Insert(MergeTable::Key(l, r), static_cast<int32_t>(rank), merged);
    }
  }
  return Status::Ok();
}

void BpeTokenizer::Encode(std::string_view text, std::vector<int32_t>* ids) const {
  Scratch s;
  pre_->Split(text, &s.words);
  for (std::string_view w : s.words) EncodeWord(w, &s, ids, MergeMethod::kAuto);
}

void BpeTokenizer::EncodeWord(std::string_view word, Scratch* s, std::vector<int32_t>* ids,
                              MergeMethod method) const {
  if (word.size() == 1) {
    ids->push_back(byte_token_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const uint64_t hash = TokenLookup::Hash(word);
  if (const WordCache::Entry* hit = s->cache.Find(word, hash)) {
    ids->insert(ids->end(), s->cache_ids.begin() + hit->off, s->cache_ids.begin() + hit->off + hit->len);
    return;
  }
  const size_t first = ids->size();
  bool whole = false;
  if (pre_->flags().ignore_merges) {
    s->encoded.clear();
    AppendByteEncoded(word, &s->encoded);
    if (const int32_t id = lookup_->Find(s->encoded); id >= 0) {
      ids->push_back(id);
      whole = true;
    }
  }
  if (!whole) {
    const int32_t n = static_cast<int32_t>(word.size());
    s->id.resize(n);
    s->prev.resize(n);
    s->next.resize(n);
    for (int32_t i = 0; i < n; ++i) {
      s->id[i] = byte_token_[static_cast<uint8_t>(word[i])];
      s->prev[i] = i - 1;
      s->next[i] = i + 1 < n ? i + 1 : -1;
    }
    MergeSymbols(s, method);
    for (int32_t i = 0; i != -1; i = s->next[i]) ids->push_back(s->id[i]);
  }
  const auto off = static_cast<uint32_t>(s->cache_ids.size());
  s->cache_ids.insert(s->cache_ids.end(), ids->begin() + first, ids->end());
  s->cache.Insert(word, hash, off, static_cast<uint32_t>(ids->size() - first));
}

// Repeatedly merges the adjacent pair of lowest rank (leftmost on ties). rank[i] is
// the rank of the pair that starts at symbol i (kNone when it has no merge, or when i
// was merged away), and only the two pairs a merge changes are looked up again.
// Picking the next pair: a scan of the list for short words (the pre-tokenizer cuts
// text at spaces, punctuation and script changes, so nearly all words; no allocation,
// no stale entries), a heap beyond kScanLimit symbols, where the scan's n^2 would show
// (a long run of letters is one word).
void BpeTokenizer::MergeSymbols(Scratch* s, MergeMethod method) const {
  constexpr int32_t kNone = INT32_MAX, kScanLimit = 64;
  const int32_t n = static_cast<int32_t>(s->id.size());
  s->rank.resize(n);
  s->merged.resize(n);
  for (int32_t i = 0; i + 1 < n; ++i) merges_->Prefetch(MergeTable::Key(s->id[i], s->id[i + 1]));
  for (int32_t i = 0; i < n; ++i) LookUpPair(s, i);
  const bool heap = method == MergeMethod::kHeap || (method == MergeMethod::kAuto && n > kScanLimit);
  auto& queue = s->queue;  // (rank, left): std::greater makes it a min-heap, leftmost on ties
  if (heap) {
    queue.clear();
    for (int32_t i = 0; i < n; ++i)
      if (s->rank[i] != kNone) queue.emplace_back(s->rank[i], i);
    std::make_heap(queue.begin(), queue.end(), std::greater<>());
  }
  for (;;) {
    int32_t best = -1;
    if (heap) {
      while (!queue.empty() && best < 0) {
        std::pop_heap(queue.begin(), queue.end(), std::greater<>());
        const auto [rank, left] = queue.back();
        queue.pop_back();
        if (s->rank[left] == rank) best = left;  // else stale: that pair changed since
      }
    } else {
      int32_t best_rank = kNone;
      for (int32_t i = 0; i != -1; i = s->next[i])
        if (s->rank[i] < best_rank) {
          best_rank = s->rank[i];
          best = i;
        }
    }
    if (best < 0) return;
    const int32_t right = s->next[best];
    s->id[best] = s->merged[best];
    s->rank[right] = kNone;
    s->next[best] = s->next[right];
    if (s->next[right] >= 0) s->prev[s->next[right]] = best;
    for (int32_t changed : {s->prev[best], best}) {
      if (changed < 0) continue;
      LookUpPair(s, changed);
      if (heap && s->rank[changed] != kNone) {
        queue.emplace_back(s->rank[changed], changed);
        std::push_heap(queue.begin(), queue.end(), std::greater<>());
      }
    }
  }
}

// rank/merged of the pair that starts at symbol `left`.
void BpeTokenizer::LookUpPair(Scratch* s, int32_t left) const {
  const int32_t right = s->next[left];
  const MergeTable::Slot* m = right < 0 ? nullptr : merges_->Find(MergeTable::Key(s->id[left], s->id[right]));
  s->rank[left] = m ? m->rank : INT32_MAX;
  s->merged[left] = m ? m->merged : -1;
}

void BpeTokenizer::EncodeWord(std::string_view word, MergeMethod method, std::vector<int32_t>* ids) const {
  Scratch s;
  EncodeWord(word, &s, ids, method);
}

}  // namespace ember::bpe
