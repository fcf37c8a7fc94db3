// A fake OpenAI-compatible server for the router's tests (test_router, test_serve_forward):
// httplib in the test's process on 127.0.0.1, an ephemeral port.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace ember::testing {

// A fake OpenAI-compatible server: POST /v1/chat/completions answers every query with the
// call `answers` maps it to (else `fallback`), after `delay`; it records the requests.
class FakeServer {
 public:
  using Json = nlohmann::json;
  struct Call {
    std::string name;
    Json arguments;
  };
  explicit FakeServer(Call fallback, std::chrono::milliseconds delay = std::chrono::milliseconds(0), int status = 200)
      : fallback_(std::move(fallback)), delay_(delay), status_(status) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      // Sleeps in small steps so that the destructor need not wait for a long delay.
      for (auto slept = std::chrono::milliseconds(0); slept < delay_ && !stopping_; slept += std::chrono::milliseconds(10))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      const Json body = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      std::string query;
      if (body.is_object() && body.contains("messages") && !body["messages"].empty())
        query = body["messages"][0].value("content", "");
      Call c = fallback_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(body);
        if (auto it = answers_.find(query); it != answers_.end()) c = it->second;
      }
      Json reply = {{"id", "chatcmpl-fake"},
                    {"object", "chat.completion"},
                    {"choices",
                     {{{"index", 0},
                       {"finish_reason", "tool_calls"},
                       {"message",
                        {{"role", "assistant"},
                         {"content", nullptr},
                         {"tool_calls",
                          {{{"id", "call_0"},
                            {"type", "function"},
                            {"function", {{"name", c.name}, {"arguments", c.arguments.dump()}}}}}}}}}}}};
      res.status = status_;
      res.set_content(status_ == 200 ? reply.dump() : "{\"error\": {\"message\": \"boom\"}}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    // bind_to_any_port also listens: clients queue until the accept loop runs.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would be lost (and the join would hang): wait for it.
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(server_.is_running()) << "the fake server did not start within 5 s";
  }
  ~FakeServer() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }
  void answer(const std::string& query, Call c) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_[query] = std::move(c);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Json> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  Call fallback_;
  std::chrono::milliseconds delay_;
  std::atomic<bool> stopping_{false};
  int status_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Call> answers_;
  std::vector<Json> requests_;
};

}  // namespace ember::testing
