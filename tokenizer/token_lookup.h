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
  // Find for n texts at once: the probes of the batch are prefetched in two rounds
  // (slots, then the strings they point at), so their cache misses overlap. Loading a
  // merge list is hundreds of thousands of lookups; this is what keeps it fast.
  void FindBatch(const std::string_view* texts, size_t n, int32_t* ids) const;
  // The hash the table uses (also good for other short-string tables).
  static uint64_t Hash(std::string_view s);

 private:
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
