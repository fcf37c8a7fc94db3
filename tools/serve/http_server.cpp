#include "http_server.h"

#include <arpa/inet.h>
#include <poll.h>
#include <dirent.h>
#include <sys/socket.h>

#include <cstdlib>
#include <memory>

#include "forward.h"
#include "generation.h"

namespace ember::cli::serve {

namespace {

constexpr const char* kJson = "application/json; charset=utf-8";

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.status == 503) res.set_header("Retry-After", "1");
  res.set_content(error_body(e), kJson);
}

Json tool_calls_json(const Job& job, const CallAnswer& a) {
  return Json::array({{{"id", "call_" + job.id.substr(job.id.find('-') + 1)},
                       {"type", "function"},
                       {"function", {{"name", a.name}, {"arguments", a.arguments}}}}});
}

// The fields of a response beyond OpenAI's: the blend weights of a lora_blend request, and
// where a forwarding server's tool call came from.
void add_extras(const Job& job, Json* j) {
  if (!job.blend.is_null()) (*j)["lora_blend"] = job.blend;
  if (!job.route.is_null()) (*j)["ember_route"] = job.route;
}

// ---- non-streamed ------------------------------------------------------------------

// cpp-httplib 0.11 does not tell a handler that its client went away (later versions have
// Request::is_connection_closed). The connection's socket is found by its two ports, and
// a peer that closed it reads as end of file; while the handler runs, httplib keeps the
// socket open, so the descriptor stays this connection's.
int connection_socket(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;  // no way to tell: the generation runs to its end
  const auto port_of = [](const sockaddr_storage& a) -> int {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return -1;
  };
  int found = -1;
  while (dirent* e = readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(dir)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) == 0 &&
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) == 0 && port_of(local) == req.local_port &&
        port_of(peer) == req.remote_port) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

bool peer_still_there(int fd) {
  if (fd < 0) return true;  // unknown: generate on (bounded by max_tokens)
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return true;
  char c;
  return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
}

Json chat_response(const ServerState& s, const Job& job, Json message, const char* finish, const Usage& u) {
  Json j = response_head(job.id, "chat.completion", s.model_name);
  j["choices"] = Json::array({{{"index", 0}, {"message", std::move(message)}, {"finish_reason", finish}}});
  j["usage"] = usage_json(u);
  add_extras(job, &j);
  return j;
}

bool answer_tool_call(ServerState& s, Job& job, Json* out, ApiError* err) {
  CallAnswer a;
  if (!run_tool_call(s, job, &a, err)) return false;
  forward_tool_call(s, &job, &a);
  Json msg = {{"role", "assistant"}, {"content", nullptr}};
  if (a.has_call) {
    msg["tool_calls"] = tool_calls_json(job, a);
    *out = chat_response(s, job, msg, "tool_calls", a.usage);
  } else {
    msg["content"] = "";  // the registry's "no function" answer
    *out = chat_response(s, job, msg, "stop", a.usage);
  }
  return true;
}

bool answer_text(ServerState& s, const httplib::Request& req, Job& job, Json* out, ApiError* err) {
  TextResult t;
  const int fd = connection_socket(req);
  if (!run_text(s, job, [fd](std::string_view) { return peer_still_there(fd); }, &t, err)) return false;
  if (job.req.chat) {
    *out = chat_response(s, job, {{"role", "assistant"}, {"content", t.text}}, finish_reason(t.stop), t.usage);
    return true;
  }
  Json j = response_head(job.id, "text_completion", s.model_name);
  j["choices"] = Json::array(
      {{{"index", 0}, {"text", t.text}, {"logprobs", nullptr}, {"finish_reason", finish_reason(t.stop)}}});
  j["usage"] = usage_json(t.usage);
  add_extras(job, &j);
  *out = std::move(j);
  return true;
}

// ---- streamed (server-sent events) ----------------------------------------------------

bool send_event(httplib::DataSink& sink, const Json& j) {
  const std::string line = "data: " + dump(j) + "\n\n";
  return sink.is_writable() && sink.write(line.data(), line.size());
}

Json chunk(const ServerState& s, const Job& job, Json delta_or_text, Json finish) {
  Json j = response_head(job.id, job.req.chat ? "chat.completion.chunk" : "text_completion", s.model_name);
  Json choice = {{"index", 0}, {"finish_reason", std::move(finish)}};
  if (job.req.chat)
    choice["delta"] = std::move(delta_or_text);
  else
    choice["text"] = std::move(delta_or_text);
  j["choices"] = Json::array({std::move(choice)});
  return j;
}

// The last chunk (finish_reason), the usage chunk when asked, then [DONE]; true when all were sent.
bool stream_tail(ServerState& s, const Job& job, httplib::DataSink& sink, const char* finish, const Usage& u) {
  Json last = chunk(s, job, job.req.chat ? Json::object() : Json(""), finish);
  add_extras(job, &last);
  if (!send_event(sink, last)) return false;
  if (job.req.stream_usage) {
    Json j = response_head(job.id, job.req.chat ? "chat.completion.chunk" : "text_completion", s.model_name);
    j["choices"] = Json::array();
    j["usage"] = usage_json(u);
    if (!send_event(sink, j)) return false;
  }
  static const std::string done = "data: [DONE]\n\n";
  if (!sink.write(done.data(), done.size())) return false;
  sink.done();
  return true;
}

// An error after the stream started: one event holding OpenAI's error object, then the end.
bool stream_error(httplib::DataSink& sink, const ApiError& err) {
  const std::string line = "data: " + error_body(err) + "\n\n";
  if (!sink.write(line.data(), line.size())) return false;
  sink.done();
  return true;
}

// Runs the job as server-sent events; true when the stream was completed (sink.done()).
bool stream_job(ServerState& s, Job& job, httplib::DataSink& sink) {
  ApiError err;
  if (job.req.chat && !send_event(sink, chunk(s, job, {{"role", "assistant"}, {"content", ""}}, nullptr)))
    return false;
  if (job.tool_call) {
    CallAnswer a;
    if (!run_tool_call(s, job, &a, &err)) return stream_error(sink, err);
    forward_tool_call(s, &job, &a);
    if (a.has_call) {
      Json calls = tool_calls_json(job, a);
      calls[0]["index"] = 0;
      if (!send_event(sink, chunk(s, job, {{"tool_calls", calls}}, nullptr))) return false;
    }
    return stream_tail(s, job, sink, a.has_call ? "tool_calls" : "stop", a.usage);
  }
  TextResult t;
  const auto piece = [&](std::string_view text) {
    return send_event(sink, chunk(s, job, job.req.chat ? Json{{"content", text}} : Json(text), nullptr));
  };
  if (!run_text(s, job, piece, &t, &err)) return stream_error(sink, err);
  if (t.stop == EMBER_STOP_CALLBACK) return false;  // the client went away (or the server stops)
  return stream_tail(s, job, sink, finish_reason(t.stop), t.usage);
}

void handle_generation(ServerState& s, const httplib::Request& req, httplib::Response& res, bool chat) {
  auto job = std::make_shared<Job>();
  ApiError err;
  if (!prepare_job(s, req.body, chat, job.get(), &err) || !acquire_slot(s, job.get(), &err))
    return send_error(res, err);
  if (job->req.stream) {
    // The lease travels with the provider: released when httplib drops it, however the stream ends.
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [&s, job](size_t, httplib::DataSink& sink) {
      const bool completed = stream_job(s, *job, sink);
      job->lease.reset();
      return completed;  // false: abandoned (httplib closes the connection)
    });
    return;
  }
  Json out;
  const bool ok = job->tool_call ? answer_tool_call(s, *job, &out, &err) : answer_text(s, req, *job, &out, &err);
  job->lease.reset();
  if (!ok) return send_error(res, err);
  res.set_content(dump(out), kJson);
}

void add_routes(httplib::Server& svr, ServerState& s) {
  svr.Post("/v1/chat/completions", [&s](const httplib::Request& q, httplib::Response& r) {
    handle_generation(s, q, r, true);
  });
  svr.Post("/v1/completions", [&s](const httplib::Request& q, httplib::Response& r) {
    handle_generation(s, q, r, false);
  });
  svr.Get("/health", [](const httplib::Request&, httplib::Response& r) {
    r.set_content(R"({"status":"ok"})", kJson);
  });
  svr.Get("/v1/models", [&s](const httplib::Request&, httplib::Response& r) {
    Json m = {{"id", s.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "ember"}};
    r.set_content(dump({{"object", "list"}, {"data", Json::array({m})}}), kJson);
  });
  svr.Get("/lora-adapters", [&s](const httplib::Request&, httplib::Response& r) {
    r.set_content(dump(s.adapters.List()), kJson);
  });
  svr.Get("/metrics", [&s](const httplib::Request&, httplib::Response& r) {
    r.set_content(s.metrics.Render(s.slots->size(), s.slots->busy(), s.slots->waiting()),
                  "text/plain; version=0.0.4");
  });
}

// Every endpoint but /health needs "Authorization: Bearer KEY" when --api-key is set.
httplib::Server::HandlerResponse check_auth(ServerState& s, const httplib::Request& req, httplib::Response& res) {
  if (req.path != "/health" && req.path != "/metrics") s.metrics.CountRequest();
  if (s.opt.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
  if (req.get_header_value("Authorization") == "Bearer " + s.opt.api_key)
    return httplib::Server::HandlerResponse::Unhandled;
  send_error(res, api_error(401, "invalid or missing API key (Authorization: Bearer KEY)", "authentication_error",
                           "invalid_api_key"));
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

void configure_server(httplib::Server& svr, ServerState& s) {
  // Threads: every slot and every queued request hold one while they run or wait, plus a
  // few for /health, /metrics, idle keep-alive connections and requests answered at once (503, 400).
  const size_t threads = static_cast<size_t>(s.opt.parallel + s.opt.queue + 8);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(s.opt.max_body);
  svr.set_read_timeout(s.opt.timeout_s, 0);
  svr.set_write_timeout(s.opt.timeout_s, 0);
  svr.set_keep_alive_timeout(5);
  svr.set_pre_routing_handler([&s](const httplib::Request& q, httplib::Response& r) { return check_auth(s, q, r); });
  add_routes(svr, s);
  svr.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
    if (!r.body.empty()) return;
    if (r.status == 413)
      send_error(r, api_error(413, "the request body is larger than --max-body", "invalid_request_error",
                             "payload_too_large"));
    else if (r.status == 404)
      send_error(r, api_error(404, "no endpoint " + q.method + " " + q.path, "invalid_request_error", "not_found"));
    else
      send_error(r, api_error(r.status, "HTTP " + std::to_string(r.status), "invalid_request_error", ""));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr) {
    send_error(r, api_error(500, "internal error", "server_error", ""));
  });
}

}  // namespace ember::cli::serve
