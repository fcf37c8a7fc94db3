#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ember {
namespace {

LogLevel level_from_env() {
  const char* e = std::getenv("EMBER_LOG");
  if (!e) return LogLevel::kWarn;
  if (!std::strcmp(e, "debug")) return LogLevel::kDebug;
  if (!std::strcmp(e, "info")) return LogLevel::kInfo;
  if (!std::strcmp(e, "warn")) return LogLevel::kWarn;
  if (!std::strcmp(e, "error")) return LogLevel::kError;
  if (!std::strcmp(e, "none")) return LogLevel::kNone;
  return LogLevel::kWarn;
}

void stderr_sink(LogLevel level, const char* message, void*) {
  static const char* names[] = {"debug", "info", "warn", "error", ""};
  std::fprintf(stderr, "ember: %s: %s\n", names[static_cast<int>(level)], message);
}

std::atomic<LogSink> g_sink{stderr_sink};
std::atomic<void*> g_user{nullptr};
std::atomic<int> g_level{static_cast<int>(level_from_env())};

}  // namespace

void set_log_sink(LogSink sink, void* user) {
  g_user.store(user);
  g_sink.store(sink ? sink : stderr_sink);
}
void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) < g_level.load()) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_sink.load()(level, buf, g_user.load());
}

}  // namespace ember
