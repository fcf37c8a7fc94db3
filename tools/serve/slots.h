// The slot pool of `ember serve`: N contexts of one loaded model (its weights mapped
// once), each with its own KV cache. A request leases a free slot, preferring the one
// whose cached tokens share the longest prefix with its prompt (so a repeated system
// prompt or template opening is evaluated once); requests beyond the slots wait in a
// bounded queue. The lease is RAII: a slot is returned however the request ends.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../common.h"

namespace ember::cli::serve {

struct Slot {
  ContextPtr ctx;
  std::vector<float> lora_scales;  // the adapter scales set on ctx (one per loaded adapter; 0: not set)
  bool busy = false;
};

class SlotPool;

// A slot held by one request; returns it to the pool when destroyed.
class SlotLease {
 public:
  SlotLease() = default;
  SlotLease(SlotPool* pool, Slot* slot) : pool_(pool), slot_(slot) {}
  SlotLease(SlotLease&& o) noexcept : pool_(o.pool_), slot_(o.slot_) { o.slot_ = nullptr; }
  SlotLease& operator=(SlotLease&& o) noexcept;
  SlotLease(const SlotLease&) = delete;
  ~SlotLease() { reset(); }
  void reset();
  Slot* get() const { return slot_; }
  Slot* operator->() const { return slot_; }
  explicit operator bool() const { return slot_ != nullptr; }

 private:
  SlotPool* pool_ = nullptr;
  Slot* slot_ = nullptr;
};

class SlotPool {
 public:
  enum class Outcome { kLeased, kQueueFull, kTimedOut };

  // slots: the contexts (each with its adapter state); max_waiting: the queue's bound.
  SlotPool(std::vector<std::unique_ptr<Slot>> slots, int32_t max_waiting);
  // A free slot for a request whose prompt is `prompt` (the longest cached prefix wins;
  // among equals the first); waits at most `wait` when none is free. kQueueFull at once
  // when max_waiting requests already wait.
  Outcome Acquire(const std::vector<int32_t>& prompt, std::chrono::milliseconds wait, SlotLease* out);

  int32_t size() const { return static_cast<int32_t>(slots_.size()); }
  int32_t busy() const;
  int32_t waiting() const;

 private:
  friend class SlotLease;
  void Release(Slot* slot);
  Slot* PickFree(const std::vector<int32_t>& prompt) const;  // under mu_

  std::vector<std::unique_ptr<Slot>> slots_;
  int32_t max_waiting_;
  int32_t waiting_ = 0;
  mutable std::mutex mu_;
  std::condition_variable freed_;
};

}  // namespace ember::cli::serve
