#include "forward.h"

#include <algorithm>

namespace ember::cli::serve {

namespace {

// The registry's tools the request allows (job.allowed: registry indices; empty: all).
Json allowed_tools(const ServerState& s, const Job& job) {
  if (job.allowed.empty()) return s.router->tools;
  Json out = Json::array();
  for (int32_t i : job.allowed)
    if (i >= 0 && static_cast<size_t>(i) < s.router->tools.size()) out.push_back(s.router->tools[i]);
  return out;
}

bool is_allowed(const ServerState& s, const Job& job, const std::string& name) {
  if (job.allowed.empty()) return true;
  return std::any_of(job.allowed.begin(), job.allowed.end(), [&](int32_t i) {
    ember_function_info info{};
    return ember_functions_get(s.fns.get(), i, &info) == EMBER_OK && name == info.name;
  });
}

Json route_json(const Router& r, const RouteDecision& d, const CallAnswer& local) {
  Json j = {{"source", d.server_answered ? "server" : "local"},
            {"score", d.score},
            {"score_name", score_name(r.score)},
            {"threshold", r.threshold},
            {"route", route_mode_name(r.mode)}};
  if (d.routed) j["server_ms"] = d.server.ms;
  if (d.routed && !d.server.ok) j["server_error"] = d.server.error + " (the local answer stands)";
  if (d.server_answered)
    j["local"] = local.has_call ? Json{{"name", local.name}, {"arguments", local.arguments}} : Json(nullptr);
  return j;
}

}  // namespace

void forward_tool_call(ServerState& s, Job* job, CallAnswer* a) {
  if (!s.router || !a->route) return;
  RouteDecision& d = *a->route;
  if (d.routed) {
    job->lease.reset();  // the local model is done: the slot serves others while the upstream answers
    ask_if_routed(*s.router, s.fns.get(), allowed_tools(s, *job), job->query, &d);
    if (d.server_answered && !is_allowed(s, *job, d.server.function)) {
      d.server.ok = d.server_answered = false;
      d.server.error = "the server called '" + d.server.function + "', which is not among the request's tools";
    }
  }
  const CallAnswer local = *a;
  if (d.server_answered) {
    a->has_call = true;
    a->name = d.server.function;
    a->arguments = d.server.arguments.dump();
  }
  s.metrics.CountRoute(d.routed, d.routed && !d.server_answered);
  job->route = route_json(*s.router, d, local);
}

}  // namespace ember::cli::serve
