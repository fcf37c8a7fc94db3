#include "hybrid_eval.h"

#include <cstdio>

namespace ember::cli {

namespace {

std::string fixed(double v, int prec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

const char* mode_name(RouteMode m) {
  switch (m) {
    case RouteMode::kAuto: return "auto";
    case RouteMode::kLocal: return "local";
    case RouteMode::kServer: return "server";
  }
  return "?";
}

}  // namespace

void HybridEvaluation::Add(const Query& q, bool local_ok, double local_ms, bool routed,
                           const ServerCall& server) {
  const bool server_ok = server.ok && same_call(q, server.function, server.arguments);
  local_.Add(local_ok, local_ms);
  server_.Add(server_ok, server.ms);
  if (!server.ok) {
    ++server_failed_;
    if (first_server_error_.empty()) first_server_error_ = server.error;
  }
  const bool hybrid_ok = routed && server.ok ? server_ok : local_ok;
  const double hybrid_ms = local_ms + (routed ? server.ms : 0.0);
  hybrid_.Add(hybrid_ok, hybrid_ms);
  if (!q.domain.empty()) hybrid_by_domain_[q.domain].Add(hybrid_ok, hybrid_ms);
  routed_ += routed;
  routed_failed_ += routed && !server.ok;
}

std::string HybridEvaluation::ColumnJson(const Column& c) const {
  return "{\"exact_match\": {\"n\": " + std::to_string(c.n) + ", \"correct\": " + std::to_string(c.correct) +
         ", \"percent\": " + fixed(c.percent(), 2) + "}, \"latency_ms\": {\"mean\": " + fixed(c.mean_ms(), 3) + "}";
}

std::string HybridEvaluation::Json(const Router& r) const {
  const double routed_fraction = hybrid_.n ? static_cast<double>(routed_) / hybrid_.n : 0.0;
  std::string out = "\"local\": " + ColumnJson(local_) + "}";
  out += ", \"server\": " + ColumnJson(server_) + ", \"failed\": " + std::to_string(server_failed_) +
         ", \"first_error\": " + json_quote(first_server_error_) + "}";
  out += ", \"hybrid\": " + ColumnJson(hybrid_) + ", \"routed_fraction\": " + fixed(routed_fraction, 4) +
         ", \"routed\": " + std::to_string(routed_) + ", \"routed_but_failed\": " + std::to_string(routed_failed_) +
         ", \"per_domain\": {";
  bool first = true;
  for (const auto& [d, c] : hybrid_by_domain_)
    out += (first ? "" : ", ") + json_quote(d) + ": {\"n\": " + std::to_string(c.n) +
               ", \"correct\": " + std::to_string(c.correct) + ", \"percent\": " + fixed(c.percent(), 2) + "}",
        first = false;
  out += "}}";
  out += ", \"router\": {\"server\": " + json_quote(r.server.url) + ", \"route\": \"" + mode_name(r.mode) +
         "\", \"score\": \"" + score_name(r.score) + "\", \"threshold\": " + fixed(r.threshold, 6) +
         ", \"server_timeout_s\": " + fixed(r.server.timeout_s, 3) + "}";
  return out;
}

std::string HybridEvaluation::Text(const Router& r) const {
  char buf[512];
  std::string out;
  std::snprintf(buf, sizeof buf, "router: %s, route %s, score %s, threshold %.6g\n", r.server.url.c_str(),
                mode_name(r.mode), score_name(r.score), r.threshold);
  out += buf;
  const auto line = [&](const char* name, const Column& c, const std::string& extra) {
    char row[160];
    std::snprintf(row, sizeof row, "  %-7s exact match %.1f%% (%d/%d), mean latency %.2f ms", name, c.percent(),
                  c.correct, c.n, c.mean_ms());
    out += row + extra + "\n";
  };
  line("local", local_, "");
  line("server", server_,
       server_failed_ ? ", " + std::to_string(server_failed_) + " failed: " + first_server_error_ : "");
  std::snprintf(buf, sizeof buf, ", routed %.1f%% (%d)", hybrid_.n ? 100.0 * routed_ / hybrid_.n : 0.0, routed_);
  line("hybrid", hybrid_, buf);
  return out;
}

}  // namespace ember::cli
