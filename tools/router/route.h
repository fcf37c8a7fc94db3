// The device-side router: the local model answers first; a confidence score computed from its
// own decode decides whether that answer stands (score >= threshold) or the query goes to the
// server. The score and its threshold come from a router file written by `ember route train`
// (docs/HYBRID.md), else from --route-score / --route-threshold. If the server is unreachable,
// errors or is slower than --server-timeout, the local answer stands.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "../args.h"
#include "openai_client.h"
#include "probe.h"

namespace ember::cli {

enum class RouteMode { kAuto, kLocal, kServer };
const char* route_mode_name(RouteMode m);  // "auto", "local", "server"

// The scores a router can use, each "higher: surer" (entropy is negated). kProbeMinProb is
// the probe's P(right) times min_prob (docs/HYBRID.md: it routes fewer at the same budget).
enum class ScoreKind { kFunctionProb, kMinProb, kMinMargin, kCallProb, kNegEntropy, kProbe, kProbeMinProb };
const char* score_name(ScoreKind k);
bool parse_score(std::string_view name, ScoreKind* out);
inline constexpr ScoreKind kScoreKinds[] = {ScoreKind::kFunctionProb, ScoreKind::kMinProb, ScoreKind::kMinMargin,
                                            ScoreKind::kCallProb, ScoreKind::kNegEntropy, ScoreKind::kProbe,
                                            ScoreKind::kProbeMinProb};
// Whether score k needs a trained probe (the router file's "probe").
inline bool uses_probe(ScoreKind k) { return k == ScoreKind::kProbe || k == ScoreKind::kProbeMinProb; }

// The value of score k for a local call (the probe's needs a probe and the hidden state).
float call_score(ScoreKind k, const ember_call_result& r, const Probe* probe);

struct RouteFlags {
  std::string server_url, api_key, server_model, mode = "auto", score, router_file;
  float threshold = 0.5f;
  float timeout_s = 10;
};
// --server, --api-key, --server-model, --route, --route-score, --route-threshold, --router,
// --server-timeout.
// api_key_flag: the name of the server's key flag (`ember serve` has its own --api-key).
void declare_route_flags(ArgParser& p, RouteFlags& f, const char* api_key_flag = "api-key");

struct Router {
  RouteMode mode = RouteMode::kLocal;
  ScoreKind score = ScoreKind::kFunctionProb;
  float threshold = 0.5f;
  Probe probe;
  ServerEndpoint server;
  Json tools;  // the registry as OpenAI tools
  bool has_server() const { return !server.url.empty(); }
};

// From the flags (after parsing): a router file's score, threshold and probe unless
// --route-score or --route-threshold override them. false after printing the error.
bool make_router(std::string_view cmd, const ArgParser& p, const RouteFlags& f, const ember_functions* fns,
                 Router* out);

// The router file: {"score": NAME, "threshold": T, "probe": {...} (the probe's score only), ...}.
bool load_router_file(const std::string& path, ScoreKind* score, float* threshold, Probe* probe, std::string* error);

// Whether the query goes to the server: always (server), never (local or no --server),
// or when the local call's score is below the threshold (auto).
bool wants_server(const Router& r, float score);

// The route of one query: the local call's score, and, when routed, the server's answer.
struct RouteDecision {
  float score = 0;
  bool routed = false;         // sent to the server
  bool server_answered = false;// the server's call replaced the local one
  ServerCall server;           // valid when routed
};
RouteDecision route_query(const Router& r, const ember_functions* fns, const std::string& query,
                          const ember_call_result& local);
// route_query's two halves, for a caller that frees the local model between them (`ember
// serve` returns its slot before waiting on the server): the score and whether to route it,
// then, when routed, the server's answer to the query with `tools`.
RouteDecision decide_route(const Router& r, const ember_call_result& local);
void ask_if_routed(const Router& r, const ember_functions* fns, const Json& tools, const std::string& query,
                   RouteDecision* d);

}  // namespace ember::cli

namespace ember::cli {

// The threshold of a score on labelled calls (correct[i]: the local call i was right): the
// lowest that leaves at most max_kept_errors (a fraction of all calls) wrong local answers
// standing, i.e. the fewest queries routed at that error budget.
struct ThresholdChoice {
  float threshold = 0;
  double routed_fraction = 0;      // of the calls, scored below the threshold
  double kept_error_fraction = 0;  // wrong and not routed
};
ThresholdChoice pick_threshold(const std::vector<float>& scores, const std::vector<int>& correct,
                               double max_kept_errors);

}  // namespace ember::cli

namespace ember::cli {

// `ember call --server`'s line: the answer that stands with where it came from —
//   {"function", "arguments", "token" (local only), "source": "local"|"server", "score",
//    "threshold", "route", "server_error" (when the server was asked and failed: the local
//    answer stands), "local" (the local call, when the server's answer replaced it)}.
std::string routed_call_json(const Router& r, const ember_call_result& local, const RouteDecision& d);

}  // namespace ember::cli
