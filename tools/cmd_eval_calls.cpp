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
// constraint changed the greedy choice. --json prints the same as one JSON object.
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
#include "json_reader.h"

namespace ember::cli {
namespace {

std::string quote(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o.push_back('\\');
      o.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o.push_back(static_cast<char>(c));
    }
  }
  return o + "\"";
}

std::string num(double v, int prec = 2) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::vector<int32_t> ids_of(const JVal* v) {
  std::vector<int32_t> out;
  if (!v || v->kind != JVal::kArr) return out;
  for (const JVal& e : v->arr) out.push_back(static_cast<int32_t>(e.num));
  return out;
}

// ---- evaluation -----------------------------------------------------------------------

struct Query {
  std::string query, function, token, kind, domain, expected;
  JVal args;
  std::vector<int32_t> expected_ids, reference_ids;
  bool has_args = false;
};

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

bool read_queries(const std::string& path, int32_t limit, std::vector<Query>* out, std::string* err) {
  std::string text;
  if (!read_text_file(path, &text, err)) return false;
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + at, nl - at);
    at = nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    JVal v;
    std::string e;
    if (!JReader(line).parse(&v, &e)) {
      *err = path + ":" + std::to_string(line_no) + ": " + e;
      return false;
    }
    Query q;
    q.query = str_of(v.get("query"));
    q.function = str_of(v.get("function"));
    if (v.kind != JVal::kObj || !v.get("query") || v.get("query")->kind != JVal::kStr || !v.get("function")) {
      *err = path + ":" + std::to_string(line_no) + ": expected an object with \"query\" and \"function\"";
      return false;
    }
    if (const JVal* a = v.get("args")) {
      q.args = *a;
      q.has_args = true;
    }
    q.token = str_of(v.get("functional_token"));
    q.expected = str_of(v.get("expected"));
    q.kind = str_of(v.get("kind"));
    q.domain = str_of(v.get("domain"));
    q.expected_ids = ids_of(v.get("expected_ids"));
    q.reference_ids = ids_of(v.get("reference_output_ids"));
    out->push_back(std::move(q));
    if (limit > 0 && static_cast<int32_t>(out->size()) >= limit) break;
  }
  if (out->empty()) {
    *err = path + ": no queries";
    return false;
  }
  return true;
}

}  // namespace

int cmd_eval_calls(const Args& args) {
  CallSetupOptions so;
  std::string queries_path;
  bool no_constrain = false, no_early_stop = false, no_compare = false, json = false, verbose = false;
  int32_t limit = 0, max_tokens = 128, show_failures = 0;

  ArgParser p("eval-calls", "-m MODEL --queries Q.jsonl [--functions F.json] [--lora A[:S]] [options]",
              "Accuracy, latency and tokens per call of function calling over a query set.");
  p.option("model", 'm', "MODEL", &so.model_path, "model file (GGUF)").required();
  p.option("queries", 'q', "Q.jsonl", &queries_path,
           "queries, one JSON object per line with \"query\", \"function\", \"args\"")
      .required();
  p.option("functions", 0, "F.json", &so.functions_path,
           "function registry (default: the model's metadata, else functions.json beside the model)")
      .default_text("");
  p.option("prompt-template", 0, "FILE", &so.template_path,
           "prompt template (default: the model's, else prompt_template.txt beside it)")
      .default_text("");
  p.option("end-token", 0, "TOKEN", &so.end_token, "end token of a call (default: the registry's)").default_text("");
  p.option("lora", 0, "FILE[:SCALE]", &so.lora_specs, kLoraFlagHelp);
  p.flag("no-constrain", 0, &no_constrain, "unconstrained decoding (malformed calls count as wrong)");
  p.flag("no-early-stop", 0, &no_early_stop, "generate past the end token to end of text (slower)");
  p.flag("no-compare", 0, &no_compare, "skip counting the tokens without early stopping");
  p.option("limit", 'l', "N", &limit, "evaluate only the first N queries; 0: all").range(0, 1 << 30);
  p.option("n-predict", 'n', "N", &max_tokens, "token limit of a call").range(1, 1 << 20);
  p.option("threads", 't', "N", &so.n_threads, "threads; 0: all cores").range(0, 4096);
  p.option("ctx-size", 'c', "N", &so.n_ctx, "context size in tokens; 0: the model's").range(0, 1 << 24);
  p.option("failures", 0, "N", &show_failures, "list the first N wrong calls").range(0, 1 << 30);
  p.flag("reference", 0, &so.reference, "use the scalar reference kernels (slow)");
  p.flag("json", 0, &json, "print the report as one JSON object");
  p.flag("verbose", 'v', &verbose, "progress and library messages on stderr");
  p.epilog(
      "example:\n"
      "  ember eval-calls -m octopus-tiny.gguf --queries test_queries.jsonl\n"
      "  ember eval-calls -m octopus-tiny.gguf --queries test_queries.jsonl --no-constrain --json\n"
      "  ember eval-calls -m octopus-tiny.gguf --lora lora-phone.gguf --queries adapters/phone/test_queries.jsonl\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;

  std::vector<Query> qs;
  std::string err;
  if (!read_queries(queries_path, limit, &qs, &err)) {
    print_error("eval-calls", err);
    return kExitRuntime;
  }
  setup_logging(verbose);
  CallSetup s;
  if (!prepare_call("eval-calls", so, &s)) return kExitRuntime;

  ember_call_params cp = ember_call_default_params();
  cp.prompt_template = s.prompt_template.c_str();
  cp.constrain = no_constrain ? 0 : 1;
  cp.early_stop = no_early_stop ? 0 : 1;
  cp.count_no_stop = no_compare ? 0 : 1;
  cp.max_tokens = max_tokens;

  Tally exact, token_exact, function_ok, valid, ref_agree;
  std::map<std::string, Tally> by_kind, by_domain;
  std::map<std::string, FnStats> by_fn;
  std::vector<double> total_ms, ttft_ms, call_tokens, no_stop_tokens, generated;
  int64_t changed = 0, changed_queries = 0;
  struct Failure {
    std::string query, expected, got;
  };
  std::vector<Failure> failures;

  for (size_t i = 0; i < qs.size(); ++i) {
    const Query& q = qs[i];
    ember_call_result r;
    if (ember_status st = ember_call(s.ctx.get(), s.fns.get(), q.query.c_str(), &cp, &r); st != EMBER_OK) {
      print_error("eval-calls", "query " + std::to_string(i + 1) + ": " + library_error(st));
      return kExitRuntime;
    }
    JVal got_args;
    std::string e2;
    const bool args_ok = JReader(r.arguments).parse(&got_args, &e2);
    const std::string got_fn = r.valid ? (r.function_index >= 0 ? r.function : "(none)") : "(invalid)";
    const bool fn_ok = r.function_index >= 0 && q.function == r.function;
    const bool ok = r.valid && fn_ok && args_ok && q.has_args && got_args == q.args;
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
    changed += r.n_constraint_changed;
    changed_queries += r.n_constraint_changed > 0;
    if (!ok && static_cast<int32_t>(failures.size()) < show_failures)
      failures.push_back({q.query, q.expected.empty() ? q.function : q.expected, r.json});
    ember_call_result_free(&r);
    if (verbose && (i + 1) % 100 == 0)
      std::fprintf(stderr, "ember eval-calls: %zu/%zu, exact %.1f%%\n", i + 1, qs.size(), exact.pct());
  }

  const double mean_call = mean(call_tokens), mean_gen = mean(generated);
  const bool have_no_stop = no_stop_tokens.size() == qs.size();
  const double mean_no_stop = have_no_stop ? mean(no_stop_tokens) : NAN;
  const double saved = mean_no_stop - mean_call;
  std::string out;
  if (json) {
    auto tally = [](const Tally& t) {
      return "{\"n\": " + std::to_string(t.n) + ", \"correct\": " + std::to_string(t.exact) +
             ", \"percent\": " + num(t.pct(), 2) + "}";
    };
    out += "{\"queries\": " + std::to_string(qs.size());
    out += ", \"model\": " + quote(so.model_path) + ", \"queries_file\": " + quote(queries_path);
    out += ", \"loras\": [";
    for (size_t i = 0; i < so.lora_specs.size(); ++i) out += (i ? ", " : "") + quote(so.lora_specs[i]);
    out += "]";
    out += ", \"constrained\": " + std::string(cp.constrain ? "true" : "false");
    out += ", \"early_stop\": " + std::string(cp.early_stop ? "true" : "false");
    out += ", \"exact_match\": " + tally(exact);
    out += ", \"token_exact_match\": " + (token_exact.n ? tally(token_exact) : std::string("null"));
    out += ", \"function_correct\": " + tally(function_ok);
    out += ", \"valid_calls\": " + tally(valid);
    out += ", \"reference_agreement\": " + (ref_agree.n ? tally(ref_agree) : std::string("null"));
    out += ", \"per_kind\": {";
    bool first = true;
    for (const auto& [k, t] : by_kind) out += (first ? "" : ", ") + quote(k) + ": " + tally(t), first = false;
    out += "}, \"per_domain\": {";
    first = true;
    for (const auto& [k, t] : by_domain) out += (first ? "" : ", ") + quote(k) + ": " + tally(t), first = false;
    out += "}, \"per_function\": {";
    first = true;
    for (const auto& [name, f] : by_fn) {
      out += (first ? "" : ", ") + quote(name) + ": {\"exact\": " + tally(f.exact) +
             ", \"function\": " + tally(f.function) + ", \"predicted\": {";
      bool pf = true;
      for (const auto& [g, c] : f.predicted) out += (pf ? "" : ", ") + quote(g) + ": " + std::to_string(c), pf = false;
      out += "}}";
      first = false;
    }
    out += "}, \"latency_ms\": {\"mean\": " + num(mean(total_ms), 3) + ", \"median\": " + num(median(total_ms), 3) +
           ", \"ttft_mean\": " + num(mean(ttft_ms), 3) + ", \"ttft_median\": " + num(median(ttft_ms), 3) + "}";
    out += ", \"tokens_per_call\": {\"early_stop\": " + num(mean_call, 3) + ", \"generated\": " + num(mean_gen, 3) +
           ", \"no_early_stop\": " + num(mean_no_stop, 3) + ", \"saved\": " + num(saved, 3) + "}";
    out += ", \"constraint_changed\": {\"steps\": " + std::to_string(changed) +
           ", \"queries\": " + std::to_string(changed_queries) + "}";
    out += ", \"failures\": [";
    for (size_t i = 0; i < failures.size(); ++i)
      out += (i ? ", " : "") + std::string("{\"query\": ") + quote(failures[i].query) +
             ", \"expected\": " + quote(failures[i].expected) + ", \"got\": " + failures[i].got + "}";
    out += "]}\n";
  } else {
    char buf[512];
    auto line = [&](const char* fmt, auto... a) {
      std::snprintf(buf, sizeof buf, fmt, a...);
      out += buf;
    };
    line("queries: %zu (%s), decoding %s, %s\n", qs.size(), queries_path.c_str(),
         cp.constrain ? "constrained" : "unconstrained", cp.early_stop ? "early stop at the end token" : "no early stop");
    for (const std::string& l : so.lora_specs) line("lora: %s\n", l.c_str());
    line("exact match (function + arguments): %.1f%% (%d/%d)\n", exact.pct(), exact.exact, exact.n);
    if (token_exact.n)
      line("exact match (token ids of the expected call): %.1f%% (%d/%d)\n", token_exact.pct(), token_exact.exact,
           token_exact.n);
    line("correct function: %.1f%%, valid calls: %.1f%%\n", function_ok.pct(), valid.pct());
    if (ref_agree.n)
      line("same token ids as the reference output: %d/%d\n", ref_agree.exact, ref_agree.n);
    if (!by_kind.empty()) {
      out += "per kind:";
      for (const auto& [k, t] : by_kind) line(" %s %.1f%% (%d)", k.c_str(), t.pct(), t.n);
      out += "\n";
    }
    if (!by_domain.empty()) {
      out += "per domain:";
      for (const auto& [k, t] : by_domain) line(" %s %.1f%% (%d)", k.c_str(), t.pct(), t.n);
      out += "\n";
    }
    if (have_no_stop)
      line("tokens per call: %.2f with early stopping, %.2f without (saved %.2f, %.1f%%)\n", mean_call, mean_no_stop,
           saved, mean_no_stop > 0 ? 100.0 * saved / mean_no_stop : 0.0);
    else
      line("tokens per call: %.2f (call), %.2f generated\n", mean_call, mean_gen);
    if (cp.constrain)
      line("constraint changed the greedy choice: %lld times, in %lld of %zu queries\n",
           static_cast<long long>(changed), static_cast<long long>(changed_queries), qs.size());
    line("latency per call: mean %.2f ms, median %.2f ms; time to first token: mean %.2f ms, median %.2f ms\n",
         mean(total_ms), median(total_ms), mean(ttft_ms), median(ttft_ms));
    out += "per function (exact, correct function, predicted when wrong):\n";
    for (const auto& [name, f] : by_fn) {
      line("  %-24s %4d  %5.1f%%  %5.1f%% ", name.c_str(), f.exact.n, f.exact.pct(), f.function.pct());
      for (const auto& [g, c] : f.predicted)
        if (g != name) line(" %s x%d", g.c_str(), c);
      out += "\n";
    }
    for (const Failure& fl : failures) out += "wrong: " + fl.query + " -> " + fl.got + " (expected " + fl.expected + ")\n";
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    print_error("eval-calls", "cannot write to stdout");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
