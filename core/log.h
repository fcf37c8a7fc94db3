// Library logging. Messages go to a sink (default: stderr for warnings and up,
// or everything when EMBER_LOG=debug|info). An embedding app replaces the sink.
#pragma once
#include <cstdarg>

namespace ember {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kNone = 4 };

using LogSink = void (*)(LogLevel level, const char* message, void* user);

// Sets the sink (nullptr restores the default stderr sink) and the minimum level.
void set_log_sink(LogSink sink, void* user);
void set_log_level(LogLevel level);
LogLevel log_level();

void log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace ember

#define EMBER_LOG_DEBUG(...) ::ember::log(::ember::LogLevel::kDebug, __VA_ARGS__)
#define EMBER_LOG_INFO(...) ::ember::log(::ember::LogLevel::kInfo, __VA_ARGS__)
#define EMBER_LOG_WARN(...) ::ember::log(::ember::LogLevel::kWarn, __VA_ARGS__)
#define EMBER_LOG_ERROR(...) ::ember::log(::ember::LogLevel::kError, __VA_ARGS__)
