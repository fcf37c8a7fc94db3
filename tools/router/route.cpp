#include "route.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../common.h"

namespace ember::cli {

const char* route_mode_name(RouteMode m) {
  return m == RouteMode::kAuto ? "auto" : m == RouteMode::kLocal ? "local" : "server";
}

const char* score_name(ScoreKind k) {
  switch (k) {
    case ScoreKind::kFunctionProb: return "function_prob";
    case ScoreKind::kMinProb: return "min_prob";
    case ScoreKind::kMinMargin: return "min_margin";
    case ScoreKind::kCallProb: return "call_prob";
    case ScoreKind::kNegEntropy: return "neg_entropy";
    case ScoreKind::kProbe: return "probe";
    case ScoreKind::kProbeMinProb: return "probe_min_prob";
  }
  return "?";
}

bool parse_score(std::string_view name, ScoreKind* out) {
  for (ScoreKind k : kScoreKinds)
    if (name == score_name(k)) {
      *out = k;
      return true;
    }
  return false;
}

float call_score(ScoreKind k, const ember_call_result& r, const Probe* probe) {
  switch (k) {
    case ScoreKind::kFunctionProb: return r.function_prob;
    case ScoreKind::kMinProb: return r.min_prob;
    case ScoreKind::kMinMargin: return r.min_margin;
    case ScoreKind::kCallProb: return r.call_prob;
    case ScoreKind::kNegEntropy: return -r.mean_entropy;
    case ScoreKind::kProbe: {
      if (!probe) return 0;
      const std::vector<float> x = probe_features(r);
      return probe->Predict(x.data(), x.size());
    }
    case ScoreKind::kProbeMinProb: return call_score(ScoreKind::kProbe, r, probe) * r.min_prob;
  }
  return 0;
}

void declare_route_flags(ArgParser& p, RouteFlags& f, const char* api_key_flag) {
  p.option("server", 0, "URL", &f.server_url,
           "OpenAI-compatible server (POST URL/v1/chat/completions) for the queries the local model is unsure of")
      .default_text("");
  p.option(api_key_flag, 0, "KEY", &f.api_key, "sent as 'Authorization: Bearer KEY' to --server").default_text("");
  p.option("server-model", 0, "NAME", &f.server_model, "the request's \"model\" (default: left out)")
      .default_text("");
  p.option("route", 0, "auto|local|server", &f.mode,
           "with --server: auto (the score decides), local (never ask), server (always ask)");
  p.option("router", 0, "FILE", &f.router_file, "score, threshold and probe written by 'ember route train'")
      .default_text("");
  p.option("route-score", 0, "NAME", &f.score,
           "function_prob, min_prob, min_margin, call_prob, neg_entropy, probe or probe_min_prob (default: the --router "
           "file's, else function_prob)")
      .default_text("");
  p.option("route-threshold", 0, "T", &f.threshold,
           "the local answer stands when its score >= T (default: the --router file's, else 0.5)");
  p.option("server-timeout", 0, "S", &f.timeout_s, "seconds; a slower server leaves the local answer standing")
      .range(0.001, 3600.0);
}

bool load_router_file(const std::string& path, ScoreKind* score, float* threshold, Probe* probe, std::string* error) {
  std::string text, err;
  Json j;
  if (!read_text_file(path, &text, &err) || !parse_json(text, &j, &err)) {
    *error = path + ": " + err;
    return false;
  }
  const Json* t = json_member(j, "threshold");
  if (!parse_score(json_string_member(j, "score"), score) || !t || !t->is_number()) {
    *error = path + ": expected a router file with \"score\" (a score name) and a number \"threshold\"";
    return false;
  }
  *threshold = t->get<float>();
  if (!uses_probe(*score)) return true;
  const Json* pj = json_member(j, "probe");
  if (!pj || !probe_from_json(*pj, probe, &err)) {
    *error = path + ": " + (pj ? err : "the probe score needs a \"probe\" object");
    return false;
  }
  return true;
}

bool make_router(std::string_view cmd, const ArgParser& p, const RouteFlags& f, const ember_functions* fns,
                 Router* out) {
  Router r;
  if (f.mode == "auto") r.mode = RouteMode::kAuto;
  else if (f.mode == "local") r.mode = RouteMode::kLocal;
  else if (f.mode == "server") r.mode = RouteMode::kServer;
  else return print_error(cmd, "--route must be auto, local or server, not '" + f.mode + "'"), false;
  std::string err;
  if (!f.router_file.empty() && !load_router_file(f.router_file, &r.score, &r.threshold, &r.probe, &err))
    return print_error(cmd, err), false;
  if (!f.score.empty() && !parse_score(f.score, &r.score))
    return print_error(cmd, "unknown --route-score '" + f.score + "'"), false;
  if (uses_probe(r.score) && r.probe.empty())
    return print_error(cmd, "the probe score needs a probe: give --router FILE (from 'ember route train')"), false;
  if (p.seen("route-threshold") || f.router_file.empty()) r.threshold = f.threshold;
  if (r.mode == RouteMode::kServer && f.server_url.empty())
    return print_error(cmd, "--route server needs --server URL"), false;
  r.server = {f.server_url, f.api_key, f.server_model, f.timeout_s};
  if (r.has_server()) r.tools = openai_tools(fns);
  *out = std::move(r);
  return true;
}

bool wants_server(const Router& r, float score) {
  if (!r.has_server()) return false;
  switch (r.mode) {
    case RouteMode::kLocal: return false;
    case RouteMode::kServer: return true;
    case RouteMode::kAuto: return !(score >= r.threshold);  // a NaN score is not sure
  }
  return false;
}

RouteDecision decide_route(const Router& r, const ember_call_result& local) {
  RouteDecision d;
  d.score = call_score(r.score, local, &r.probe);
  d.routed = wants_server(r, d.score);
  return d;
}

void ask_if_routed(const Router& r, const ember_functions* fns, const Json& tools, const std::string& query,
                   RouteDecision* d) {
  if (!d->routed) return;
  d->server = ask_server(r.server, fns, tools, query);
  d->server_answered = d->server.ok;
}

RouteDecision route_query(const Router& r, const ember_functions* fns, const std::string& query,
                          const ember_call_result& local) {
  RouteDecision d = decide_route(r, local);
  ask_if_routed(r, fns, r.tools, query, &d);
  return d;
}

}  // namespace ember::cli

namespace ember::cli {

ThresholdChoice pick_threshold(const std::vector<float>& scores, const std::vector<int>& correct,
                               double max_kept_errors) {
  const size_t n = scores.size();
  ThresholdChoice c;
  if (n == 0) return c;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Routing the `cut` lowest scores keeps the wrong calls among the others.
  size_t wrong_kept = 0;
  for (size_t i = 0; i < n; ++i) wrong_kept += !correct[i];
  const size_t budget = static_cast<size_t>(std::floor(max_kept_errors * n + 1e-9));
  size_t cut = 0;
  while (cut < n) {
    // A threshold can only fall between distinct scores: take the ties together.
    if (wrong_kept <= budget && (cut == 0 || scores[order[cut - 1]] < scores[order[cut]])) break;
    wrong_kept -= !correct[order[cut]];
    ++cut;
  }
  if (cut == 0) c.threshold = scores[order[0]];
  else if (cut == n) c.threshold = std::nextafter(scores[order[n - 1]], std::numeric_limits<float>::infinity());
  else c.threshold = 0.5f * (scores[order[cut - 1]] + scores[order[cut]]);
  c.routed_fraction = static_cast<double>(cut) / n;
  c.kept_error_fraction = static_cast<double>(wrong_kept) / n;
  return c;
}

}  // namespace ember::cli

namespace ember::cli {

std::string routed_call_json(const Router& r, const ember_call_result& local, const RouteDecision& d) {
  using Ordered = nlohmann::ordered_json;  // members in the order written, as the library's line
  Ordered local_json = Ordered::parse(local.json ? local.json : "{}", nullptr, /*allow_exceptions=*/false);
  if (!local_json.is_object()) local_json = Ordered::object();
  Ordered out = Ordered::object();
  if (d.server_answered) {
    out["function"] = d.server.function;
    out["arguments"] = Ordered::parse(d.server.arguments.dump(), nullptr, /*allow_exceptions=*/false);
    out["source"] = "server";
  } else {
    out = local_json;
    out["source"] = "local";
  }
  out["score"] = d.score;
  out["score_name"] = score_name(r.score);
  out["threshold"] = r.threshold;
  out["route"] = route_mode_name(r.mode);
  if (d.routed) out["server_ms"] = d.server.ms;
  if (d.routed && !d.server.ok) out["server_error"] = d.server.error + " (the local answer stands)";
  if (d.server_answered) out["local"] = local_json;
  return out.dump(-1, ' ', false, Ordered::error_handler_t::replace);
}

}  // namespace ember::cli
