// ember eval-calls: accuracy and cost of function calling over a JSONL query set
// (one object per line: "query", "function", "args"; optional "functional_token",
// "expected_ids", "reference_output_ids", "kind", "domain", as in octopus-tiny's
// test_queries.jsonl).
//
// Per query it runs one call (constrained unless --no-constrain, stopped at the end
// token unless --no-early-stop) and, unless --no-compare, counts the tokens the same
// call would have generated without early stopping (generation continues from the
// call to EOS or a full context after the timed part; latency figures exclude it).
//
// Reports: exact match of function and arguments (structured comparison), exact
// match of the token ids against "expected_ids" when present, correct function,
// valid calls, agreement with "reference_output_ids", breakdowns by kind and
// domain, per-function exact match and confusion, mean/median latency and time to
// first token, tokens per call with and without early stopping, and how often the
// constraint changed the greedy choice, prompt tokens evaluated and taken from the cache
// (a call re-uses the prefix it shares with the last one unless --no-prefix-cache). --json
// prints the same as one JSON object.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "cmd_call.h"
#include "commands.h"
#include "json_io.h"
#include "router/hybrid_eval.h"
#include "router/queries.h"
#include "router/route.h"

namespace ember::cli {
namespace {

std::string num(double v, int prec = 2) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

// ---- evaluation -----------------------------------------------------------------------


struct Tally {
  int n = 0, exact = 0;
  void add(bool ok) {
    ++n;
    exact += ok;
  }
  double pct() const { return n ? 100.0 * exact / n : 0.0; }
};

struct FnStats {
  Tally exact, function;
  std::map<std::string, int> predicted;  // predicted function ("(invalid)") -> count
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

struct Failure {
  std::string query, expected, got;
};

// The figures of the report, query by query.
struct Evaluation {
  Tally exact, token_exact, function_ok, valid, ref_agree;
  std::map<std::string, Tally> by_kind, by_domain;
  std::map<std::string, FnStats> by_fn;
  std::vector<double> total_ms, ttft_ms, call_tokens, no_stop_tokens, generated;
  int64_t changed = 0, changed_queries = 0;
  int64_t prompt_tokens = 0, prompt_reused = 0;  // of the calls (not of the no-stop counting)
  std::vector<Failure> failures;

  // Counts one call; keeps it as a failure while fewer than max_failures are kept.
  void add(const Query& q, const ember_call_result& r, int32_t max_failures) {
    const std::string got_fn = r.valid ? (r.function_index >= 0 ? r.function : "(none)") : "(invalid)";
    const bool fn_ok = r.function_index >= 0 && q.function == r.function;
    const bool ok = same_call(q, r);
    // Token ids of the call up to and including the end token.
    std::vector<int32_t> call_ids(r.tokens, r.tokens + r.n_call_tokens);
    exact.add(ok);
    valid.add(r.valid != 0);
    function_ok.add(fn_ok);
    if (!q.expected_ids.empty()) token_exact.add(call_ids == q.expected_ids);
    if (!q.reference_ids.empty()) ref_agree.add(call_ids == q.reference_ids);
    if (!q.kind.empty()) by_kind[q.kind].add(ok);
    if (!q.domain.empty()) by_domain[q.domain].add(ok);
    FnStats& f = by_fn[q.function];
    f.exact.add(ok);
    f.function.add(fn_ok);
    f.predicted[got_fn]++;
    total_ms.push_back(r.total_ms);
    ttft_ms.push_back(r.ttft_ms);
    call_tokens.push_back(r.n_call_tokens);
    generated.push_back(r.n_generated);
    if (r.n_generated_no_stop >= 0) no_stop_tokens.push_back(r.n_generated_no_stop);
    prompt_tokens += r.n_prompt;
    prompt_reused += r.n_prompt_reused;
    changed += r.n_constraint_changed;
    changed_queries += r.n_constraint_changed > 0;
    if (!ok && static_cast<int32_t>(failures.size()) < max_failures)
      failures.push_back({q.query, q.expected.empty() ? q.function : q.expected, r.json});
  }
};

// ---- report -----------------------------------------------------------------------------

struct EvalOptions {
  CallSetupOptions so;
  std::vector<std::string> queries_paths;
  std::string half = "all";
  // The query files as the report names them ("a.jsonl + b.jsonl"; the half when not all).
  std::string queries_label() const {
    std::string s;
    for (size_t i = 0; i < queries_paths.size(); ++i) s += (i ? " + " : "") + queries_paths[i];
    return half == "all" ? s : s + " (" + half + " half)";
  }
  bool no_constrain = false, no_early_stop = false, no_compare = false, json = false, verbose = false;
  bool no_prefix_cache = false;
  RouteFlags route;
  int32_t limit = 0, max_tokens = 128, show_failures = 0;
};

// Tokens per call with and without early stopping (NAN when not counted for every query).
struct TokenMeans {
  double call, generated, no_stop, saved;
  bool have_no_stop;
};

TokenMeans token_means(const Evaluation& ev, size_t n_queries) {
  TokenMeans t;
  t.call = mean(ev.call_tokens);
  t.generated = mean(ev.generated);
  t.have_no_stop = ev.no_stop_tokens.size() == n_queries;
  t.no_stop = t.have_no_stop ? mean(ev.no_stop_tokens) : NAN;
  t.saved = t.no_stop - t.call;
  return t;
}

std::string tally_json(const Tally& t) {
  return "{\"n\": " + std::to_string(t.n) + ", \"correct\": " + std::to_string(t.exact) +
         ", \"percent\": " + num(t.pct(), 2) + "}";
}

// {"name": tally, ...}
std::string tallies_json(const std::map<std::string, Tally>& m) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, t] : m) out += (first ? "" : ", ") + json_quote(k) + ": " + tally_json(t), first = false;
  return out + "}";
}

std::string per_function_json(const std::map<std::string, FnStats>& by_fn) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, f] : by_fn) {
    out += (first ? "" : ", ") + json_quote(name) + ": {\"exact\": " + tally_json(f.exact) +
           ", \"function\": " + tally_json(f.function) + ", \"predicted\": {";
    bool pf = true;
    for (const auto& [g, c] : f.predicted) out += (pf ? "" : ", ") + json_quote(g) + ": " + std::to_string(c), pf = false;
    out += "}}";
    first = false;
  }
  return out + "}";
}

std::string json_report(const EvalOptions& o, const ember_call_params& cp, const Evaluation& ev, size_t n_queries) {
  const TokenMeans t = token_means(ev, n_queries);
  std::string out = "{\"queries\": " + std::to_string(n_queries);
  out += ", \"model\": " + json_quote(o.so.model_path) + ", \"queries_file\": " + json_quote(o.queries_label());
  out += ", \"loras\": [";
  for (size_t i = 0; i < o.so.lora_specs.size(); ++i) out += (i ? ", " : "") + json_quote(o.so.lora_specs[i]);
  out += "]";
  out += ", \"constrained\": " + std::string(cp.constrain ? "true" : "false");
  out += ", \"early_stop\": " + std::string(cp.early_stop ? "true" : "false");
  out += ", \"prefix_cache\": " + std::string(cp.cache_prompt ? "true" : "false");
  out += ", \"exact_match\": " + tally_json(ev.exact);
  out += ", \"token_exact_match\": " + (ev.token_exact.n ? tally_json(ev.token_exact) : std::string("null"));
  out += ", \"function_correct\": " + tally_json(ev.function_ok);
  out += ", \"valid_calls\": " + tally_json(ev.valid);
  out += ", \"reference_agreement\": " + (ev.ref_agree.n ? tally_json(ev.ref_agree) : std::string("null"));
  out += ", \"per_kind\": " + tallies_json(ev.by_kind);
  out += ", \"per_domain\": " + tallies_json(ev.by_domain);
  out += ", \"per_function\": " + per_function_json(ev.by_fn);
  out += ", \"latency_ms\": {\"mean\": " + num(mean(ev.total_ms), 3) + ", \"median\": " + num(median(ev.total_ms), 3) +
         ", \"ttft_mean\": " + num(mean(ev.ttft_ms), 3) + ", \"ttft_median\": " + num(median(ev.ttft_ms), 3) + "}";
  out += ", \"tokens_per_call\": {\"early_stop\": " + num(t.call, 3) + ", \"generated\": " + num(t.generated, 3) +
         ", \"no_early_stop\": " + num(t.no_stop, 3) + ", \"saved\": " + num(t.saved, 3) + "}";
  const int64_t evaluated = ev.prompt_tokens - ev.prompt_reused;
  out += ", \"prompt_tokens\": " + std::to_string(ev.prompt_tokens) +
         ", \"prompt_tokens_evaluated\": " + std::to_string(evaluated) +
         ", \"prompt_tokens_reused\": " + std::to_string(ev.prompt_reused) +
         ", \"prompt_tokens_evaluated_per_call\": " + num(n_queries ? double(evaluated) / n_queries : 0.0, 3);
  out += ", \"constraint_changed\": {\"steps\": " + std::to_string(ev.changed) +
         ", \"queries\": " + std::to_string(ev.changed_queries) + "}";
  out += ", \"failures\": [";
  for (size_t i = 0; i < ev.failures.size(); ++i)
    out += (i ? ", " : "") + std::string("{\"query\": ") + json_quote(ev.failures[i].query) +
           ", \"expected\": " + json_quote(ev.failures[i].expected) + ", \"got\": " + ev.failures[i].got + "}";
  out += "]}\n";
  return out;
}

// Appends printf-formatted text to a string.
class TextOut {
 public:
  template <class... A>
  void line(const char* fmt, A... a) {
    char buf[512];
    std::snprintf(buf, sizeof buf, fmt, a...);
    out += buf;
  }
  std::string out;
};

// "per kind: a 50.0% (2) b 100.0% (1)\n", nothing when m is empty.
void breakdown_text(TextOut& t, const char* title, const std::map<std::string, Tally>& m) {
  if (m.empty()) return;
  t.out += title;
  for (const auto& [k, tally] : m) t.line(" %s %.1f%% (%d)", k.c_str(), tally.pct(), tally.n);
  t.out += "\n";
}

std::string text_report(const EvalOptions& o, const ember_call_params& cp, const Evaluation& ev, size_t n_queries) {
  const TokenMeans tm = token_means(ev, n_queries);
  TextOut t;
  t.line("queries: %zu (%s), decoding %s, %s\n", n_queries, o.queries_label().c_str(),
         cp.constrain ? "constrained" : "unconstrained", cp.early_stop ? "early stop at the end token" : "no early stop");
  for (const std::string& l : o.so.lora_specs) t.line("lora: %s\n", l.c_str());
  t.line("exact match (function + arguments): %.1f%% (%d/%d)\n", ev.exact.pct(), ev.exact.exact, ev.exact.n);
  if (ev.token_exact.n)
    t.line("exact match (token ids of the expected call): %.1f%% (%d/%d)\n", ev.token_exact.pct(),
           ev.token_exact.exact, ev.token_exact.n);
  t.line("correct function: %.1f%%, valid calls: %.1f%%\n", ev.function_ok.pct(), ev.valid.pct());
  if (ev.ref_agree.n) t.line("same token ids as the reference output: %d/%d\n", ev.ref_agree.exact, ev.ref_agree.n);
  breakdown_text(t, "per kind:", ev.by_kind);
  breakdown_text(t, "per domain:", ev.by_domain);
  if (tm.have_no_stop)
    t.line("tokens per call: %.2f with early stopping, %.2f without (saved %.2f, %.1f%%)\n", tm.call, tm.no_stop,
           tm.saved, tm.no_stop > 0 ? 100.0 * tm.saved / tm.no_stop : 0.0);
  else
    t.line("tokens per call: %.2f (call), %.2f generated\n", tm.call, tm.generated);
  if (cp.constrain)
    t.line("constraint changed the greedy choice: %lld times, in %lld of %zu queries\n",
           static_cast<long long>(ev.changed), static_cast<long long>(ev.changed_queries), n_queries);
  t.line("prompt tokens: %lld, evaluated %lld (%lld from the cache%s)\n", static_cast<long long>(ev.prompt_tokens),
         static_cast<long long>(ev.prompt_tokens - ev.prompt_reused), static_cast<long long>(ev.prompt_reused),
         cp.cache_prompt ? "" : ": --no-prefix-cache");
  t.line("latency per call: mean %.2f ms, median %.2f ms; time to first token: mean %.2f ms, median %.2f ms\n",
         mean(ev.total_ms), median(ev.total_ms), mean(ev.ttft_ms), median(ev.ttft_ms));
  t.out += "per function (exact, correct function, predicted when wrong):\n";
  for (const auto& [name, f] : ev.by_fn) {
    t.line("  %-24s %4d  %5.1f%%  %5.1f%% ", name.c_str(), f.exact.n, f.exact.pct(), f.function.pct());
    for (const auto& [g, c] : f.predicted)
      if (g != name) t.line(" %s x%d", g.c_str(), c);
    t.out += "\n";
  }
  for (const Failure& fl : ev.failures) t.out += "wrong: " + fl.query + " -> " + fl.got + " (expected " + fl.expected + ")\n";
  return t.out;
}

void declare_flags(ArgParser& p, EvalOptions& o) {
  p.option("model", 'm', "MODEL", &o.so.model_path, "model file (GGUF)").required();
  p.option("queries", 'q', "Q.jsonl", &o.queries_paths,
           "queries, one JSON object per line with \"query\", \"function\", \"args\" (repeat: concatenated)")
      .required();
  p.option("half", 0, "all|calibration|test", &o.half,
           "rows of the concatenated queries: all, calibration (0, 2, 4, ...) or test (1, 3, 5, ...)");
  p.option("functions", 0, "F.json", &o.so.functions_path,
           "function registry (default: the model's metadata, else functions.json beside the model)")
      .default_text("");
  p.option("prompt-template", 0, "FILE", &o.so.template_path,
           "prompt template (default: the model's, else prompt_template.txt beside it)")
      .default_text("");
  p.option("end-token", 0, "TOKEN", &o.so.end_token, "end token of a call (default: the registry's)").default_text("");
  p.option("lora", 0, "FILE[:SCALE]", &o.so.lora_specs, kLoraFlagHelp);
  p.flag("no-constrain", 0, &o.no_constrain, "unconstrained decoding (malformed calls count as wrong)");
  p.flag("no-early-stop", 0, &o.no_early_stop, "generate past the end token to end of text (slower)");
  p.flag("no-compare", 0, &o.no_compare, "skip counting the tokens without early stopping");
  p.flag("no-prefix-cache", 0, &o.no_prefix_cache,
         "evaluate every prompt whole instead of re-using the prefix it shares with the last call");
  p.option("limit", 'l', "N", &o.limit, "evaluate only the first N queries; 0: all").range(0, 1 << 30);
  p.option("n-predict", 'n', "N", &o.max_tokens, "token limit of a call").range(1, 1 << 20);
  p.option("threads", 't', "N", &o.so.n_threads, "threads; 0: the performance cores").range(0, 4096);
  p.option("ctx-size", 'c', "N", &o.so.n_ctx, "context size in tokens; 0: the model's, at most 4096")
      .range(0, 1 << 24);
  declare_cache_flags(p, o.so.cache);
  p.option("failures", 0, "N", &o.show_failures, "list the first N wrong calls").range(0, 1 << 30);
  p.flag("reference", 0, &o.so.reference, "use the scalar reference kernels (slow)");
  declare_route_flags(p, o.route);
  p.flag("json", 0, &o.json, "print the report as one JSON object");
  p.flag("verbose", 'v', &o.verbose, "progress and library messages on stderr");
  p.epilog(
      "example:\n"
      "  ember eval-calls -m octopus-tiny.gguf --queries test_queries.jsonl\n"
      "  ember eval-calls -m octopus-tiny.gguf --queries test_queries.jsonl --no-constrain --json\n"
      "  ember eval-calls -m octopus-tiny.gguf --lora lora-phone.gguf --queries adapters/phone/test_queries.jsonl\n"
      "  ember eval-calls -m octopus-tiny.gguf --lora lora-phone.gguf -q phone.jsonl -q home.jsonl --half test \\\n"
      "      --server http://127.0.0.1:8080 --router router.json --json   (local, server and hybrid columns)\n");
}

// Runs every query; false after printing the error.
// The query's local call judged, then (with --server) the server's answer and the router's choice.
void add_hybrid(const Router& router, const CallSetup& s, const Query& q, const ember_call_result& r,
                HybridEvaluation* hy) {
  const bool routed = wants_server(router, call_score(router.score, r, &router.probe));
  hy->Add(q, same_call(q, r), r.total_ms, routed, ask_server(router.server, s.fns.get(), router.tools, q.query));
}

bool evaluate(const EvalOptions& o, const CallSetup& s, const ember_call_params& cp, const std::vector<Query>& qs,
              const Router& router, Evaluation* ev, HybridEvaluation* hy) {
  for (size_t i = 0; i < qs.size(); ++i) {
    ember_call_result r;
    if (ember_status st = ember_call(s.ctx.get(), s.fns.get(), qs[i].query.c_str(), &cp, &r); st != EMBER_OK) {
      print_error("eval-calls", "query " + std::to_string(i + 1) + ": " + library_error(st));
      return false;
    }
    ev->add(qs[i], r, o.show_failures);
    if (router.has_server()) add_hybrid(router, s, qs[i], r, hy);
    ember_call_result_free(&r);
    if (o.verbose && (i + 1) % 100 == 0)
      std::fprintf(stderr, "ember eval-calls: %zu/%zu, exact %.1f%%\n", i + 1, qs.size(), ev->exact.pct());
  }
  return true;
}

}  // namespace

int cmd_eval_calls(const Args& args) {
  EvalOptions o;
  ArgParser p("eval-calls", "-m MODEL --queries Q.jsonl [--functions F.json] [--lora A[:S]] [options]",
              "Accuracy, latency and tokens per call of function calling over a query set.");
  declare_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;

  Half half;
  if (!parse_half(o.half, &half)) return p.usage_error("--half must be all, calibration or test");
  std::vector<Query> qs;
  std::string err;
  for (const std::string& path : o.queries_paths)
    if (!read_queries(path, o.limit, &qs, &err)) {
      print_error("eval-calls", err);
      return kExitRuntime;
    }
  qs = select_half(std::move(qs), half);
  setup_logging(o.verbose);
  CallSetup s;
  if (!prepare_call("eval-calls", o.so, &s)) return kExitRuntime;

  ember_call_params cp = call_params(s, o.no_constrain, o.no_early_stop, o.max_tokens);
  cp.count_no_stop = o.no_compare ? 0 : 1;
  cp.cache_prompt = o.no_prefix_cache ? 0 : 1;
  Router router;
  if (!make_router("eval-calls", p, o.route, s.fns.get(), &router)) return kExitUsage;
  Evaluation ev;
  HybridEvaluation hy;
  if (!evaluate(o, s, cp, qs, router, &ev, &hy)) return kExitRuntime;

  std::string out = o.json ? json_report(o, cp, ev, qs.size()) : text_report(o, cp, ev, qs.size());
  if (router.has_server()) {
    if (o.json) out.insert(out.size() - 2, ", " + hy.Json(router));  // before the closing "}\n"
    else out += hy.Text(router);
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    print_error("eval-calls", "cannot write to stdout");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
