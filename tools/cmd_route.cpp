// ember route train: fits the device-side router (docs/HYBRID.md) on labelled queries. The
// local model answers each query; a call is labelled right when it matches the expected one
// (eval-calls' exact match). For every score the threshold is the lowest that leaves at most
// --max-kept-errors of the queries answered wrongly on the device; the probe's threshold is
// chosen on 5-fold cross-validated probe outputs (a probe scored on its own training rows
// looks surer than it is), the probe itself then trained on every row. Writes the chosen
// score's router file (-o) and prints every score's threshold and routed fraction.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "cmd_call.h"
#include "commands.h"
#include "json_io.h"
#include "router/probe.h"
#include "router/queries.h"
#include "router/route.h"

namespace ember::cli {
namespace {

struct TrainOptions {
  CallSetupOptions so;
  std::vector<std::string> queries;
  std::string half = "calibration", score = "probe", out, dump;
  float max_kept_errors = 0.01f;
  bool json = false, verbose = false;
};

// The labelled local calls: whether each was right, its scores, its probe features.
struct LabelledCalls {
  std::vector<int> correct;
  std::vector<std::vector<float>> features;  // the probe's, per query
  std::vector<std::vector<float>> scores;  // [score kind][query]; the probe's filled later
};

constexpr int kFolds = 5;

void declare_flags(ArgParser& p, TrainOptions& o) {
  p.option("model", 'm', "MODEL", &o.so.model_path, "the device model (GGUF)").required();
  p.option("lora", 0, "FILE[:SCALE]", &o.so.lora_specs, kLoraFlagHelp);
  p.option("queries", 'q', "Q.jsonl", &o.queries, "labelled queries (repeat for several files, concatenated)")
      .required();
  p.option("half", 0, "calibration|test|all", &o.half,
           "rows of the concatenated queries: calibration (0, 2, 4, ...), test (1, 3, ...) or all");
  p.option("score", 0, "NAME", &o.score,
           "the score written to -o: probe_min_prob, probe, function_prob, min_prob, min_margin, call_prob or "
           "neg_entropy");
  p.option("max-kept-errors", 0, "F", &o.max_kept_errors,
           "the threshold leaves at most this fraction of the queries answered wrongly on the device")
      .range(0.0, 1.0);
  p.option("out", 'o', "FILE", &o.out, "the router file (score, threshold, probe) for --router").required();
  p.option("dump", 0, "FILE", &o.dump, "also write every query's label and scores (JSONL)").default_text("");
  p.option("threads", 't', "N", &o.so.n_threads, "threads; 0: the performance cores").range(0, 4096);
  p.flag("json", 0, &o.json, "print the comparison of the scores as JSON");
  p.flag("verbose", 'v', &o.verbose, "library messages on stderr");
  p.epilog(
      "example:\n"
      "  ember route train -m octopus-tiny-q4_0.gguf --lora lora-phone.gguf \\\n"
      "      -q adapters/phone/test_queries.jsonl -q adapters/home/test_queries.jsonl \\\n"
      "      -q adapters/travel/test_queries.jsonl --half calibration -o router.json\n");
}

// Runs the local model on every query; false after printing the error.
bool label_calls(const CallSetup& s, const std::vector<Query>& qs, LabelledCalls* out) {
  ember_call_params cp = call_params(s, false, false, 128);
  out->scores.assign(std::size(kScoreKinds), {});
  for (size_t i = 0; i < qs.size(); ++i) {
    ember_call_result r;
    if (ember_status st = ember_call(s.ctx.get(), s.fns.get(), qs[i].query.c_str(), &cp, &r); st != EMBER_OK) {
      print_error("route train", "query " + std::to_string(i + 1) + ": " + library_error(st));
      return false;
    }
    out->correct.push_back(same_call(qs[i], r));
    out->features.push_back(probe_features(r));
    for (size_t k = 0; k < std::size(kScoreKinds); ++k) out->scores[k].push_back(call_score(kScoreKinds[k], r, nullptr));
    ember_call_result_free(&r);
  }
  return true;
}

// The probe's output for every row from a probe trained on the other folds (row i in fold i % 5).
std::vector<float> cross_validated_probe(const LabelledCalls& lc) {
  const size_t n = lc.correct.size();
  std::vector<float> out(n, 0);
  for (int f = 0; f < kFolds; ++f) {
    std::vector<std::vector<float>> x;
    std::vector<int> y;
    for (size_t i = 0; i < n; ++i)
      if (static_cast<int>(i % kFolds) != f) x.push_back(lc.features[i]), y.push_back(lc.correct[i]);
    const Probe p = train_probe(x, y, ProbeTraining{});
    for (size_t i = f; i < n; i += kFolds) out[i] = p.Predict(lc.features[i].data(), lc.features[i].size());
  }
  return out;
}

bool write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

std::string dump_jsonl(const std::vector<Query>& qs, const LabelledCalls& lc) {
  std::string out;
  for (size_t i = 0; i < qs.size(); ++i) {
    Json row = {{"query", qs[i].query}, {"domain", qs[i].domain}, {"correct", lc.correct[i] != 0}};
    for (size_t k = 0; k < std::size(kScoreKinds); ++k) row[score_name(kScoreKinds[k])] = lc.scores[k][i];
    row["features"] = lc.features[i];
    out += row.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  return out;
}

int route_train(const Args& args) {
  TrainOptions o;
  ArgParser p("route train", "-m MODEL [--lora A[:S]] -q Q.jsonl... [--half H] [--score NAME] -o ROUTER.json",
              "Fit the router's score threshold (and probe) on labelled queries.");
  declare_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;
  Half half;
  ScoreKind chosen;
  if (!parse_half(o.half, &half)) return p.usage_error("--half must be calibration, test or all");
  if (!parse_score(o.score, &chosen)) return p.usage_error("unknown --score '" + o.score + "'");
  std::vector<Query> qs;
  std::string err;
  for (const std::string& path : o.queries)
    if (!read_queries(path, 0, &qs, &err)) return print_error("route train", err), kExitRuntime;
  qs = select_half(std::move(qs), half);
  setup_logging(o.verbose);
  CallSetup s;
  LabelledCalls lc;
  if (!prepare_call("route train", o.so, &s) || !label_calls(s, qs, &lc)) return kExitRuntime;
  if (lc.features.empty() || lc.features[0].size() <= kProbeScores)
    return print_error("route train", "the library gave no hidden state for the probe"), kExitRuntime;

  // The probe's scores from 5-fold cross-validated outputs, and the product with min_prob.
  const auto index = [](ScoreKind k) {
    return static_cast<size_t>(std::find(std::begin(kScoreKinds), std::end(kScoreKinds), k) - std::begin(kScoreKinds));
  };
  lc.scores[index(ScoreKind::kProbe)] = cross_validated_probe(lc);
  for (size_t i = 0; i < qs.size(); ++i)
    lc.scores[index(ScoreKind::kProbeMinProb)][i] =
        lc.scores[index(ScoreKind::kProbe)][i] * lc.scores[index(ScoreKind::kMinProb)][i];
  Json table = Json::object();
  ThresholdChoice chosen_t;
  for (size_t k = 0; k < std::size(kScoreKinds); ++k) {
    const ThresholdChoice t = pick_threshold(lc.scores[k], lc.correct, o.max_kept_errors);
    table[score_name(kScoreKinds[k])] = {{"threshold", t.threshold}, {"routed_fraction", t.routed_fraction},
                                         {"kept_error_fraction", t.kept_error_fraction}};
    if (kScoreKinds[k] == chosen) chosen_t = t;
  }
  int n_correct = 0;
  for (int c : lc.correct) n_correct += c;
  Json router = {{"score", score_name(chosen)}, {"threshold", chosen_t.threshold},
                 {"max_kept_errors", o.max_kept_errors}, {"queries", qs.size()}, {"local_correct", n_correct},
                 {"half", o.half}, {"model", o.so.model_path}, {"loras", o.so.lora_specs}};
  if (uses_probe(chosen)) router["probe"] = probe_to_json(train_probe(lc.features, lc.correct, ProbeTraining{}));
  if (!write_text(o.out, router.dump(1) + "\n"))
    return print_error("route train", "cannot write " + o.out), kExitRuntime;
  if (!o.dump.empty() && !write_text(o.dump, dump_jsonl(qs, lc)))
    return print_error("route train", "cannot write " + o.dump), kExitRuntime;
  Json report = {{"queries", qs.size()}, {"local_correct", n_correct}, {"scores", table}, {"written", o.out}};
  std::string text = o.json ? report.dump() + "\n" : "";
  if (!o.json) {
    text = "queries: " + std::to_string(qs.size()) + ", local right: " + std::to_string(n_correct) + "\n";
    for (auto& [name, t] : table.items()) {
      char line[160];
      std::snprintf(line, sizeof line, "  %-14s threshold %.6g  routed %.1f%%  wrong kept %.1f%%\n", name.c_str(),
                    t["threshold"].get<double>(), 100 * t["routed_fraction"].get<double>(),
                    100 * t["kept_error_fraction"].get<double>());
      text += line;
    }
    text += "wrote " + o.out + " (" + o.score + ")\n";
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace

int cmd_route(const Args& args) {
  const char* usage = "usage: ember route train -m MODEL [--lora A[:S]] -q Q.jsonl... [--half H] -o ROUTER.json\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("%s", usage);
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "train") return route_train(Args(args.begin() + 1, args.end()));
  print_error("route", "unknown subcommand '" + args[0] + "' (train)");
  return kExitUsage;
}

}  // namespace ember::cli
