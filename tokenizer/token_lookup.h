// Token text -> id for a vocabulary: a flat open-addressing table over the strings the
// vocabulary already holds (no copies). Flat because building it and the hundreds of
// thousands of lookups a BPE merge list needs at load time are dominated by cache misses:
// one probe reads 8 bytes (hash tag + id), and the string is compared only when the tag
// matches. The first occurrence of a duplicated text wins.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

class TokenLookup {
 public:
  // `pieces` must outlive the table and not change.
  void Build(const std::vector<std::string>* pieces);
  bool built() const { return pieces_ != nullptr; }
  bool has_duplicates() const { return has_duplicates_; }  // some text appears twice
  // The id of `text`, or -1.
  int32_t Find(std::string_view text) const;
  // A text given as two parts (head + tail, tail possibly empty), so that a BPE merge's
  // result can be looked up without building the joined string.
  struct Query {
    std::string_view head, tail;
  };
  // Find for n queries at once: the probes of the batch are prefetched in two rounds
  // (slots, then the strings they point at), so their cache misses overlap. Loading a
  // merge list is hundreds of thousands of lookups; this is what keeps it fast.
  void FindBatch(const Query* queries, size_t n, int32_t* ids) const;
  // The hash the table uses (also good for other short-string tables): FNV-1a, which
  // can be continued over a second part, then a finalizer that spreads the bits.
  static uint64_t Hash(std::string_view s) { return Finalize(Continue(kHashSeed, s)); }
  static uint64_t Hash(const Query& q) { return Finalize(Continue(Continue(kHashSeed, q.head), q.tail)); }

 private:
  static constexpr uint64_t kHashSeed = 0xcbf29ce484222325ULL;
  static uint64_t Continue(uint64_t h, std::string_view s) {
    for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    return h;
  }
  static uint64_t Finalize(uint64_t h) {  // murmur3's
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
  }
  static bool Equals(const std::string& piece, const Query& q) {
    return piece.size() == q.head.size() + q.tail.size() && piece.compare(0, q.head.size(), q.head) == 0 &&
           piece.compare(q.head.size(), q.tail.size(), q.tail) == 0;
  }
  struct Slot {
    uint32_t tag;  // high bits of the hash
    int32_t id;    // -1: empty
  };
  const std::vector<std::string>* pieces_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  bool has_duplicates_ = false;
};

}  // namespace ember
