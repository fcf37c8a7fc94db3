// Helpers of test_serve*.cpp: an `ember serve` process on an ephemeral loopback port,
// JSON requests with timeouts, and the CLI answers the server is compared with.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ember/ember.h"
#include "support/fixtures.h"
#include "support/run_ember.h"

namespace ember::testing {

using json = nlohmann::json;

inline const char* kOctopus = "models/octopus-tiny/octopus-tiny.gguf";

inline std::string slurp_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Seconds the tests allow for one step: generous, the suite also runs under qemu.
inline constexpr int kStepTimeoutS = 60;

// `ember serve ARGS --port 0 -t 1` running until destroyed (then stopped by a signal; it must exit 0).
class ServeProcess {
 public:
  ServeProcess(std::vector<std::string> args, const std::string& name) : args_(std::move(args)) {
    args_.insert(args_.begin(), "serve");
    args_.insert(args_.end(), {"--port", "0", "-t", "1"});
    out_ = ::testing::TempDir() + name + ".out";
    err_ = ::testing::TempDir() + name + ".err";
    pid_ = spawn_ember(args_, "/dev/null", out_, err_);
    if (pid_ < 0) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStepTimeoutS);
    const std::string prefix = "ember serve: listening on http://127.0.0.1:";
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string out = slurp_text(out_);
      if (size_t at = out.find(prefix); at != std::string::npos && out.find('\n', at) != std::string::npos) {
        port_ = std::stoi(out.substr(at + prefix.size()));
        return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        ADD_FAILURE() << "ember serve exited: " << slurp_text(err_);
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "ember serve did not print its port: " << slurp_text(err_);
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, stop_signal_);
      EXPECT_EQ(wait_ember(pid_, kStepTimeoutS, args_), 0) << slurp_text(err_);
    }
    std::remove(out_.c_str());
    std::remove(err_.c_str());
  }
  bool ok() const { return port_ > 0; }
  // The signal that stops it at the end (SIGTERM; SIGINT as Ctrl-C): either must exit 0.
  void stop_with(int sig) { stop_signal_ = sig; }
  int port() const { return port_; }
  std::string stderr_text() const { return slurp_text(err_); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(kStepTimeoutS, 0);
    c.set_read_timeout(kStepTimeoutS, 0);
    c.set_write_timeout(kStepTimeoutS, 0);
    return c;
  }

 private:
  std::vector<std::string> args_;
  std::string out_, err_;
  int pid_ = -1, port_ = -1, stop_signal_ = SIGTERM;
};

inline json parse(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << body;
  return j;
}

// POST path with a JSON body; the response (status, body) or a test failure.
inline httplib::Result post(httplib::Client& cli, const std::string& path, const json& body,
                            const httplib::Headers& headers = {}) {
  return cli.Post(path.c_str(), headers, body.dump(), "application/json");
}

// A chat completion that must succeed; its JSON.
inline json chat(httplib::Client& cli, const json& body, const std::string& path = "/v1/chat/completions") {
  auto r = post(cli, path, body);
  if (!r) {
    ADD_FAILURE() << "no answer from " << path << ": " << httplib::to_string(r.error());
    return json::object();
  }
  EXPECT_EQ(r->status, 200) << r->body;
  return parse(r->body);
}

// The first n queries of octopus-tiny's held-out set, one per function where possible.
inline std::vector<std::string> sample_queries(size_t n) {
  std::ifstream f(fixture("models/octopus-tiny/test_queries.jsonl"));
  std::vector<std::string> out, seen;
  for (std::string line; out.size() < n && std::getline(f, line);) {
    const json q = json::parse(line);
    const std::string fn = q.at("function");
    if (std::find(seen.begin(), seen.end(), fn) != seen.end()) continue;
    seen.push_back(fn);
    out.push_back(q.at("query"));
  }
  return out;
}

// `ember call -m octopus-tiny [extra] QUERY`'s JSON answer.
inline json ember_call_answer(const std::string& query, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"call", "-m", fixture(kOctopus), "-t", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(query);
  const CliResult r = run_ember(args, ::testing::TempDir() + "serve_call", kStepTimeoutS);
  EXPECT_EQ(r.code, 0) << r.err;
  return parse(r.out);
}

// ember_call in this process, as `ember call -m octopus-tiny [--lora FILE:SCALE]` runs it (the
// model's registry and prompt template, default call parameters): the CLI's answers without
// starting a process per query (slow under qemu). One test compares it with the CLI itself.
class LocalCaller {
 public:
  LocalCaller() {
    ember_set_log_level(4);
    ember_context_params cp = ember_context_default_params();
    cp.n_threads = 1;
    ok_ = ember_model_load(fixture(kOctopus).c_str(), nullptr, &model_) == EMBER_OK &&
          ember_functions_load(model_, nullptr, &fns_) == EMBER_OK &&
          ember_context_create(model_, &cp, &ctx_) == EMBER_OK;
    EXPECT_TRUE(ok_) << ember_last_error();
  }
  ~LocalCaller() {
    ember_context_free(ctx_);
    for (ember_lora* l : loras_) ember_lora_free(l);
    ember_functions_free(fns_);
    ember_model_free(model_);
  }
  // {"function", "arguments"} of the call, with the adapter at `path` at `scale` ("" : none).
  json call(const std::string& query, const std::string& path = "", float scale = 1.0f) {
    if (!ok_) return json();
    ember_context_clear_loras(ctx_);
    if (!path.empty()) {
      ember_lora* l = nullptr;
      EXPECT_EQ(ember_lora_load(model_, path.c_str(), &l), EMBER_OK) << ember_last_error();
      loras_.push_back(l);
      EXPECT_EQ(ember_context_set_lora(ctx_, l, scale), EMBER_OK);
    }
    const ember_call_params p = ember_call_default_params();
    ember_call_result r;
    if (ember_call(ctx_, fns_, query.c_str(), &p, &r) != EMBER_OK) {
      ADD_FAILURE() << ember_last_error();
      return json();
    }
    const json j = json::parse(r.json);
    ember_call_result_free(&r);
    return {{"function", j.at("function")}, {"arguments", j.at("arguments")}};
  }

 private:
  bool ok_ = false;
  ember_model* model_ = nullptr;
  ember_functions* fns_ = nullptr;
  ember_context* ctx_ = nullptr;
  std::vector<ember_lora*> loras_;
};

}  // namespace ember::testing

namespace ember::testing {

// The JSON events of a server-sent-event body, and whether it ended with "data: [DONE]".
inline std::vector<json> sse_events(const std::string& body, bool* done) {
  std::vector<json> out;
  *done = false;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("data: ", 0) != 0) continue;
    const std::string data = line.substr(6);
    if (data == "[DONE]") {
      *done = true;
      continue;
    }
    EXPECT_FALSE(*done) << "an event after [DONE]";
    out.push_back(parse(data));
  }
  return out;
}

// The value of a metric of GET /metrics (-1 when absent).
inline double metric(httplib::Client& cli, const std::string& name) {
  auto r = cli.Get("/metrics");
  if (!r) return -1;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

// Polls a metric until it equals `want` (true) or kStepTimeoutS pass (false).
inline bool wait_metric(httplib::Client& cli, const std::string& name, double want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStepTimeoutS);
  while (std::chrono::steady_clock::now() < deadline) {
    if (metric(cli, name) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Queries of an adapter's twisted held-out set (octopus-tiny/adapters/DOMAIN).
inline std::vector<std::string> adapter_queries(const std::string& domain, size_t n) {
  std::ifstream f(fixture("models/octopus-tiny/adapters/" + domain + "/test_queries.jsonl"));
  std::vector<std::string> out;
  for (std::string line; out.size() < n && std::getline(f, line);) out.push_back(json::parse(line).at("query"));
  return out;
}

}  // namespace ember::testing
