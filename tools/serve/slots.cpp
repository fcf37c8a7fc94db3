#include "slots.h"

#include <algorithm>

namespace ember::cli::serve {

void SlotLease::reset() {
  if (pool_ && slot_) pool_->Release(slot_);
  slot_ = nullptr;
}

SlotLease& SlotLease::operator=(SlotLease&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    slot_ = o.slot_;
    o.slot_ = nullptr;
  }
  return *this;
}

SlotPool::SlotPool(std::vector<std::unique_ptr<Slot>> slots, int32_t max_waiting)
    : slots_(std::move(slots)), max_waiting_(max_waiting) {}

namespace {

size_t common_prefix(const ember_context* ctx, const std::vector<int32_t>& prompt) {
  const int32_t n = ember_n_past(ctx);
  if (n <= 0 || prompt.empty()) return 0;
  std::vector<int32_t> cached(static_cast<size_t>(n));
  size_t got = 0;
  if (ember_context_tokens(ctx, cached.data(), cached.size(), &got) != EMBER_OK) return 0;
  const size_t m = std::min(got, prompt.size());
  size_t i = 0;
  while (i < m && cached[i] == prompt[i]) ++i;
  return i;
}

}  // namespace

Slot* SlotPool::PickFree(const std::vector<int32_t>& prompt) const {
  Slot* best = nullptr;
  size_t best_len = 0;
  for (const auto& s : slots_) {
    if (s->busy) continue;
    const size_t len = common_prefix(s->ctx.get(), prompt);
    if (!best || len > best_len) {
      best = s.get();
      best_len = len;
    }
  }
  return best;
}

SlotPool::Outcome SlotPool::Acquire(const std::vector<int32_t>& prompt, std::chrono::milliseconds wait,
                                    SlotLease* out) {
  std::unique_lock<std::mutex> lock(mu_);
  Slot* slot = PickFree(prompt);
  if (!slot) {
    if (waiting_ >= max_waiting_) return Outcome::kQueueFull;
    ++waiting_;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (!(slot = PickFree(prompt)))
      if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && !(slot = PickFree(prompt))) break;
    --waiting_;
    if (!slot) return Outcome::kTimedOut;
  }
  slot->busy = true;
  *out = SlotLease(this, slot);
  return Outcome::kLeased;
}

void SlotPool::Release(Slot* slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    slot->busy = false;
  }
  freed_.notify_one();
}

int32_t SlotPool::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int32_t>(std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return s->busy; }));
}

int32_t SlotPool::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

}  // namespace ember::cli::serve
