#include "metrics.h"

#include <cstdio>

namespace ember::cli::serve {

void Metrics::CountGeneration(int64_t prompt_evaluated, int64_t generated, double prefill_ms, double decode_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt_evaluated;
  generated_tokens_ += generated;
  prefill_ms_ += prefill_ms;
  decode_ms_ += decode_ms;
}

namespace {

void add(std::string* out, const char* name, const char* type, const char* help, double value) {
  char line[256];
  std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.6g\n", name, help, name, type, name, value);
  *out += line;
}

double per_second(int64_t tokens, double ms) { return ms > 0 ? tokens * 1000.0 / ms : 0.0; }

}  // namespace

std::string Metrics::Render(int32_t slots_total, int32_t slots_busy, int32_t waiting) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s;
  add(&s, "ember_requests_total", "counter", "HTTP requests to the API endpoints", static_cast<double>(requests_));
  add(&s, "ember_requests_rejected_total", "counter", "requests answered 503 (queue full or wait timed out)",
      static_cast<double>(rejected_));
  add(&s, "ember_prompt_tokens_total", "counter", "prompt tokens evaluated (cache hits excluded)",
      static_cast<double>(prompt_tokens_));
  add(&s, "ember_tokens_generated_total", "counter", "tokens generated", static_cast<double>(generated_tokens_));
  add(&s, "ember_prompt_tokens_seconds", "gauge", "mean prefill speed, tokens per second",
      per_second(prompt_tokens_, prefill_ms_));
  add(&s, "ember_predicted_tokens_seconds", "gauge", "mean decode speed, tokens per second",
      per_second(generated_tokens_, decode_ms_));
  if (routing_) {
    add(&s, "ember_route_decisions_total", "counter", "tool calls the router decided on (--server)",
        static_cast<double>(route_decisions_));
    add(&s, "ember_requests_routed_total", "counter", "tool calls sent to the upstream server",
        static_cast<double>(routed_));
    add(&s, "ember_route_fallbacks_total", "counter",
        "tool calls sent upstream whose local answer stood (upstream unreachable, erring or too slow)",
        static_cast<double>(fallbacks_));
  }
  add(&s, "ember_requests_waiting", "gauge", "requests waiting for a slot", waiting);
  add(&s, "ember_slots_busy", "gauge", "slots generating", slots_busy);
  add(&s, "ember_slots_total", "gauge", "slots (--parallel)", slots_total);
  return s;
}

}  // namespace ember::cli::serve
