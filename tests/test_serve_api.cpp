// test_serve: chat and text completions, streaming, errors, the API key.
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include "tests/test_serve_support.h"

namespace ember::testing {
namespace {

// Non-streamed and streamed answers of the same greedy request agree: the deltas
// concatenate to the text, the finish reason and the usage are the same.
void expect_stream_matches(httplib::Client& cli, const std::string& path, json body) {
  body["temperature"] = 0;
  const json plain = chat(cli, body, path);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto r = post(cli, path, body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  bool done = false;
  const std::vector<json> events = sse_events(r->body, &done);
  EXPECT_TRUE(done) << r->body;
  ASSERT_GE(events.size(), 2u);
  const bool is_chat = path == "/v1/chat/completions";
  std::string text, finish;
  json usage;
  for (const json& e : events) {
    EXPECT_EQ(e.at("object"), is_chat ? "chat.completion.chunk" : "text_completion");
    if (e.contains("usage")) usage = e.at("usage");
    if (e.at("choices").empty()) continue;
    const json& c = e.at("choices").at(0);
    if (is_chat && c.at("delta").contains("content")) text += c.at("delta").at("content").get<std::string>();
    if (!is_chat) text += c.at("text").get<std::string>();
    if (!c.at("finish_reason").is_null()) finish = c.at("finish_reason");
  }
  const json& pc = plain.at("choices").at(0);
  EXPECT_EQ(text, (is_chat ? pc.at("message").at("content") : pc.at("text")).get<std::string>());
  EXPECT_EQ(finish, pc.at("finish_reason").get<std::string>());
  EXPECT_EQ(usage, plain.at("usage"));
}

TEST(Serve, CompletionsChatAndStreaming) {
  ServeProcess srv({"-m", fixture(kOctopus)}, "serve_stream");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  // Completions: max_tokens, stop strings, and the stream.
  const json c = chat(cli, {{"prompt", "Take a selfie"}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}}, "/v1/completions");
  EXPECT_EQ(c.at("object"), "text_completion");
  EXPECT_EQ(c.at("usage").at("completion_tokens"), 12);
  EXPECT_EQ(c.at("choices").at(0).at("finish_reason"), "length");
  const std::string text = c.at("choices").at(0).at("text");
  ASSERT_GT(text.size(), 4u);
  const std::string stop = text.substr(text.size() / 2, 3);
  const json s = chat(cli, {{"prompt", "Take a selfie"}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}, {"stop", stop}},
                      "/v1/completions");
  EXPECT_EQ(s.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(s.at("choices").at(0).at("text"), text.substr(0, text.find(stop)));
  expect_stream_matches(cli, "/v1/completions", {{"prompt", "Call Bob on speaker"}, {"max_tokens", 24}});
  // Plain chat (tool_choice none: the chat template, no function call) and its stream.
  const json body = {{"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}}},
                     {"tool_choice", "none"}, {"max_tokens", 16}};
  const json plain = chat(cli, body);
  EXPECT_EQ(plain.at("object"), "chat.completion");
  EXPECT_EQ(plain.at("choices").at(0).at("message").at("role"), "assistant");
  EXPECT_TRUE(plain.at("choices").at(0).at("message").at("content").is_string());
  expect_stream_matches(cli, "/v1/chat/completions", body);
  // A streamed tool call: one delta with the call, finish_reason tool_calls.
  const json q = {{"messages", {{{"role", "user"}, {"content", "Call Bob on speaker"}}}}};
  const json call = chat(cli, q).at("choices").at(0).at("message").at("tool_calls").at(0);
  json sq = q;
  sq["stream"] = true;
  auto r = post(cli, "/v1/chat/completions", sq);
  ASSERT_TRUE(r);
  bool done = false;
  const std::vector<json> ev = sse_events(r->body, &done);
  EXPECT_TRUE(done);
  ASSERT_EQ(ev.size(), 3u) << r->body;
  EXPECT_EQ(ev[1].at("choices").at(0).at("delta").at("tool_calls").at(0).at("function"), call.at("function"));
  EXPECT_EQ(ev[2].at("choices").at(0).at("finish_reason"), "tool_calls");
}

// Expects status and an OpenAI error object whose message contains `needle`.
void expect_error(const httplib::Result& r, int status, const std::string& needle) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  const json j = parse(r->body);
  ASSERT_TRUE(j.contains("error")) << r->body;
  EXPECT_NE(j.at("error").at("message").get<std::string>().find(needle), std::string::npos) << r->body;
  EXPECT_TRUE(j.at("error").contains("type"));
  EXPECT_TRUE(j.at("error").contains("code"));
}

TEST(Serve, BadRequestsAre400And413) {
  ServeProcess srv({"-m", fixture(kOctopus), "-c", "64", "--max-body", "4096"}, "serve_bad");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  const std::string chat_path = "/v1/chat/completions";
  auto raw = [&](const std::string& body) { return cli.Post(chat_path.c_str(), body, "application/json"); };
  expect_error(raw("{\"messages\": ["), 400, "malformed JSON");
  // A number beyond double: nlohmann throws out_of_range, not parse_error (fuzz_server_request).
  expect_error(raw(R"({"messages": [{"role": "user", "content": "x"}], "temperature": 1e400})"), 400,
               "malformed JSON body: number overflow parsing '1e400'");
  expect_error(raw("[1, 2]"), 400, "JSON object");
  expect_error(raw(R"({"messages": "hi"})"), 400, "'messages' must be an array");
  expect_error(raw(R"({"messages": []})"), 400, "'messages' is empty");
  expect_error(raw(R"({})"), 400, "'messages' is required");
  expect_error(raw(R"({"messages": [{"role": "wizard", "content": "x"}]})"), 400, "unknown role 'wizard'");
  expect_error(raw(R"({"messages": [{"role": "user"}]})"), 400, "messages[0].content is required");
  expect_error(raw(R"({"messages": [{"role": "user", "content": 5}]})"), 400, "messages[0].content");
  expect_error(raw(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"})"), 400, "max_tokens");
  expect_error(raw(R"({"messages": [{"role": "user", "content": "x"}], "temperature": -1})"), 400, "temperature");
  expect_error(raw(R"({"messages": [{"role": "user", "content": "x"}],
                       "tools": [{"type": "function", "function": {"name": "launch_rocket"}}]})"),
               400, "unknown function 'launch_rocket'");
  expect_error(raw(R"({"messages": [{"role": "user", "content": "x"}], "lora": [{"id": 3}]})"), 400,
               "unknown adapter id 3");
  expect_error(raw(R"({"messages": [{"role": "user", "content": "x"}], "lora_blend": {"examples": []}})"), 400,
               "lora_blend");
  expect_error(cli.Post("/v1/completions", R"({"prompt": 7})", "application/json"), 400, "'prompt' must be a string");
  std::string words;
  for (int i = 0; i < 100; ++i) words += "alarm ";
  expect_error(post(cli, "/v1/completions", {{"prompt", words}}), 400, "the context holds 64");
  EXPECT_EQ(parse(post(cli, "/v1/completions", {{"prompt", words}})->body).at("error").at("code"),
            "context_length_exceeded");
  expect_error(post(cli, "/v1/completions", {{"prompt", std::string(5000, 'a')}}), 413, "--max-body");
  expect_error(cli.Get("/v1/nothing"), 404, "no endpoint");
  // The server is still well.
  EXPECT_EQ(cli.Get("/health")->status, 200);
}

TEST(Serve, ApiKeyOnEveryEndpointButHealth) {
  ServeProcess srv({"-m", fixture(kOctopus), "--api-key", "sesame"}, "serve_key");
  ASSERT_TRUE(srv.ok());
  srv.stop_with(SIGINT);
  httplib::Client cli = srv.client();
  EXPECT_EQ(cli.Get("/health")->status, 200);
  expect_error(cli.Get("/v1/models"), 401, "API key");
  expect_error(cli.Get("/metrics", {{"Authorization", "Bearer wrong"}}), 401, "API key");
  const json q = {{"messages", {{{"role", "user"}, {"content", "Call Bob"}}}}};
  expect_error(post(cli, "/v1/chat/completions", q), 401, "API key");
  const httplib::Headers auth = {{"Authorization", "Bearer sesame"}};
  EXPECT_EQ(cli.Get("/v1/models", auth)->status, 200);
  auto r = post(cli, "/v1/chat/completions", q, auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

// A raw connection that sends a streaming request and reads its first event; closing
// it is a client that goes away mid-generation.
int open_stream(int port, const json& body, const std::string& wait_for = "data: ") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string b = body.dump();
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  std::string got;
  char buf[512];
  pollfd p{fd, POLLIN, 0};
  while (got.find(wait_for) == std::string::npos && ::poll(&p, 1, kStepTimeoutS * 1000) == 1) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(got.find(wait_for), std::string::npos) << got;
  return fd;
}

TEST(Serve, QueueOverflowIs503AndADisconnectCancels) {
  ServeProcess srv({"-m", fixture(kOctopus), "--parallel", "1", "--queue", "1", "-c", "4096"}, "serve_queue");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  // A: a long generation (no EOS stop) holding the only slot.
  const int32_t long_run = 4000;
  int fd = open_stream(srv.port(), {{"prompt", "Call Bob"}, {"max_tokens", long_run}, {"ignore_eos", true},
                                    {"temperature", 0}, {"stream", true}});
  ASSERT_GE(fd, 0);
  EXPECT_EQ(metric(cli, "ember_slots_busy"), 1);
  // B waits in the queue; C finds it full.
  const json q = {{"messages", {{{"role", "user"}, {"content", "Call Bob on speaker"}}}}};
  int b_status = -1;
  std::string b_body;
  std::thread waiter([&] {
    httplib::Client c2 = srv.client();
    if (auto b = post(c2, "/v1/chat/completions", q)) b_status = b->status, b_body = b->body;
  });
  // However the test ends (a failed ASSERT returns early): A's stream closed, so B gets
  // the slot and returns, and the waiter joined (a joinable std::thread would terminate).
  struct Cleanup {
    int& fd;
    std::thread& waiter;
    ~Cleanup() {
      if (fd >= 0) ::close(fd);
      if (waiter.joinable()) waiter.join();
    }
  } cleanup{fd, waiter};
  ASSERT_TRUE(wait_metric(cli, "ember_requests_waiting", 1));
  auto c = post(cli, "/v1/chat/completions", q);
  expect_error(c, 503, "busy");
  EXPECT_FALSE(c->get_header_value("Retry-After").empty());
  // A goes away: its generation stops, B gets the slot and its answer.
  ::close(fd);
  fd = -1;
  waiter.join();
  EXPECT_EQ(b_status, 200) << b_body;
  EXPECT_TRUE(wait_metric(cli, "ember_slots_busy", 0));
  EXPECT_LT(metric(cli, "ember_tokens_generated_total"), long_run);
  EXPECT_EQ(metric(cli, "ember_requests_rejected_total"), 1);
  EXPECT_EQ(chat(cli, q).at("choices").at(0).at("finish_reason"), "tool_calls");
}

// A client of a non-streamed request that goes away: the generation stops too.
TEST(Serve, ANonStreamedDisconnectCancels) {
  ServeProcess srv({"-m", fixture(kOctopus), "-c", "4096"}, "serve_cancel");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  const int32_t long_run = 4000;
  const int fd = open_stream(srv.port(), {{"prompt", "Call Bob"}, {"max_tokens", long_run}, {"ignore_eos", true}},
                             /*wait_for=*/"");
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(wait_metric(cli, "ember_slots_busy", 1));
  ::close(fd);
  EXPECT_TRUE(wait_metric(cli, "ember_slots_busy", 0));
  EXPECT_LT(metric(cli, "ember_tokens_generated_total"), long_run);
  EXPECT_EQ(chat(cli, {{"prompt", "Call Bob"}, {"max_tokens", 4}}, "/v1/completions").at("usage").at("completion_tokens"), 4);
}

}  // namespace
}  // namespace ember::testing
