// Progress display and Ctrl-C cancellation for the file-writing subcommands
// (`ember quantize`, `ember synth`), over the C API's ember_progress_callback.
//
// On a terminal: one line redrawn in place, "[ 12/201]  6% blk.1.attn_v.weight -> q6_k".
// Elsewhere (a pipe, a log file): nothing per tensor unless `lines` (--verbose), then
// one such line per tensor. Fallback notes ("blk.0.attn_q.weight: row length 896 is
// not a multiple of 256: q4_0 instead of q4_k"): with --verbose every one as it comes,
// otherwise one line after success (print_notes), the first note and how many more.
// Ctrl-C asks the library to stop at the next tensor (it then removes its temporary
// file); a second Ctrl-C kills.
#pragma once
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "ember/ember_tools.h"

namespace ember::cli {

class FileProgress {
 public:
  // cmd: "quantize" (for the note lines); quiet: show nothing but notes.
  FileProgress(const char* cmd, bool quiet, bool lines)
      : cmd_(cmd), tty_(!quiet && ::isatty(STDERR_FILENO)), lines_(!quiet && lines && !tty_), verbose_(lines) {
    interrupted() = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~FileProgress() {
    sigaction(SIGINT, &old_, nullptr);
    end_line();
  }

  static int callback(int32_t i, int32_t n, const char* name, const char* type, const char* note, void* user) {
    auto* self = static_cast<FileProgress*>(user);
    if (note && *note) {
      if (self->verbose_) {
        self->end_line();
        std::fprintf(stderr, "ember %s: %s: %s\n", self->cmd_, name, note);
      } else if (self->n_notes_++ == 0) {
        self->first_note_ = std::string(name) + ": " + note;
      }
    }
    char line[512];
    const int pct = n > 0 ? static_cast<int>(100.0 * (i - 1) / n) : 0;
    std::snprintf(line, sizeof line, "[%*d/%d] %3d%% %s -> %s", digits(n), i, n, pct, name, type);
    if (self->tty_) {
      const int len = static_cast<int>(std::string(line).size());
      std::fprintf(stderr, "\r%s%*s", line, self->shown_ > len ? self->shown_ - len : 0, "");
      std::fflush(stderr);
      self->shown_ = len;
    } else if (self->lines_) {
      std::fprintf(stderr, "%s\n", line);
    }
    return interrupted() ? 1 : 0;
  }
  // After success: the fallback notes not shown yet, as one line.
  void print_notes() {
    if (n_notes_ == 0) return;
    end_line();
    if (n_notes_ == 1)
      std::fprintf(stderr, "ember %s: %s\n", cmd_, first_note_.c_str());
    else
      std::fprintf(stderr, "ember %s: %s (and %d more tensors; --verbose lists them)\n", cmd_, first_note_.c_str(),
                   n_notes_ - 1);
  }
  // Ends a redrawn terminal line (before an error or summary).
  void end_line() {
    if (tty_ && shown_ > 0) std::fputc('\n', stderr);
    shown_ = 0;
  }
  static bool was_interrupted() { return interrupted() != 0; }

 private:
  static volatile std::sig_atomic_t& interrupted() {
    static volatile std::sig_atomic_t flag = 0;
    return flag;
  }
  static void on_sigint(int) {
    if (interrupted()) {
      std::signal(SIGINT, SIG_DFL);
      std::raise(SIGINT);
      return;
    }
    interrupted() = 1;
  }
  static int digits(int n) {
    int d = 1;
    while (n >= 10) n /= 10, ++d;
    return d;
  }
  const char* cmd_;
  bool tty_, lines_, verbose_;
  int shown_ = 0;
  int n_notes_ = 0;
  std::string first_note_;
  struct sigaction old_ {};
};

// "1.23 GiB", "456.7 MiB", "12.0 KiB", "512 B".
inline std::string human_bytes(unsigned long long b) {
  char s[32];
  if (b >= (1ull << 30)) std::snprintf(s, sizeof s, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(s, sizeof s, "%.1f MiB", b / double(1ull << 20));
  else if (b >= (1ull << 10)) std::snprintf(s, sizeof s, "%.1f KiB", b / double(1ull << 10));
  else std::snprintf(s, sizeof s, "%llu B", b);
  return s;
}

}  // namespace ember::cli
