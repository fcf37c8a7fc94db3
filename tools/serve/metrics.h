// Counters of `ember serve` for GET /metrics (Prometheus text exposition format).
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace ember::cli::serve {

class Metrics {
 public:
  void CountRequest() { ++requests_; }
  void CountRejected() { ++rejected_; }
  // `ember serve --server`: the routing counters appear in /metrics (absent without it).
  void EnableRouting() { routing_ = true; }
  // One tool call under --server: sent upstream or not, and, when sent, whether the local call stood.
  void CountRoute(bool routed, bool fell_back) {
    ++route_decisions_;
    routed_ += routed;
    fallbacks_ += fell_back;
  }
  // One finished generation: tokens evaluated for the prompt and generated, and the time of each.
  void CountGeneration(int64_t prompt_evaluated, int64_t generated, double prefill_ms, double decode_ms);
  // The text of /metrics; slots busy and waiting requests are read at the time of the scrape.
  std::string Render(int32_t slots_total, int32_t slots_busy, int32_t waiting) const;

 private:
  std::atomic<int64_t> requests_{0}, rejected_{0};
  std::atomic<int64_t> route_decisions_{0}, routed_{0}, fallbacks_{0};
  bool routing_ = false;  // set before the server starts
  mutable std::mutex mu_;
  int64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  double prefill_ms_ = 0, decode_ms_ = 0;
};

}  // namespace ember::cli::serve
