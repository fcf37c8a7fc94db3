// The hybrid columns of `ember eval-calls --server`: every query answered by the local model,
// by the server, and by the router's choice between them, all three judged by the same exact
// match (same_call), with the fraction routed and the mean latency of each.
#pragma once
#include <map>
#include <string>

#include "queries.h"
#include "route.h"

namespace ember::cli {

class HybridEvaluation {
 public:
  // One query: the local call (right or not, its latency), the router's choice,
  // and the server's answer to the same query. A routed query whose server answer failed
  // keeps the local answer (as `ember call --server` does) and its latency includes the attempt.
  void Add(const Query& q, bool local_ok, double local_ms, bool routed, const ServerCall& server);

  // "\"local\": {...}, \"server\": {...}, \"hybrid\": {...}, \"router\": {...}" (members of
  // the report's object).
  std::string Json(const Router& r) const;
  std::string Text(const Router& r) const;

 private:
  struct Column {
    int n = 0, correct = 0;
    double ms = 0;  // sum
    void Add(bool ok, double latency_ms) {
      ++n;
      correct += ok;
      ms += latency_ms;
    }
    double percent() const { return n ? 100.0 * correct / n : 0.0; }
    double mean_ms() const { return n ? ms / n : 0.0; }
  };
  std::string ColumnJson(const Column& c) const;

  Column local_, server_, hybrid_;
  std::map<std::string, Column> hybrid_by_domain_;
  int routed_ = 0, server_failed_ = 0, routed_failed_ = 0;
  std::string first_server_error_;
};

}  // namespace ember::cli
