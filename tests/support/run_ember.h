// Runs the `ember` command of this build from a test, as a user would.
#pragma once
#include <string>
#include <vector>

namespace ember::testing {

struct CliResult {
  int code = -1;  // exit status; 128 + signal when killed
  std::string out, err;
};

// Runs EMBER_BINARY_DIR/bin/ember with `args` (through the emulator in cross builds:
// qemu-user cannot exec a foreign binary itself), stdin from `stdin_path`, stdout and stderr
// captured in `scratch_prefix`.out / .err (removed afterwards), EMBER_LOG removed
// from the environment so stderr is exactly what the command prints. Kills the
// child and fails the test after `timeout_s` seconds times timeout_scale().
CliResult run_ember(const std::vector<std::string>& args, const std::string& scratch_prefix, int timeout_s = 60,
                    const std::string& stdin_path = "/dev/null");

// run_ember in two steps, for a test that acts on the running command (e.g. sends it a
// signal): spawn_ember starts it with stdout and stderr going to out_path and err_path
// (-1 and a test failure when it cannot); wait_ember waits for it, kills it after
// `timeout_s` seconds (a test failure), and returns the exit code as CliResult::code.
int spawn_ember(const std::vector<std::string>& args, const std::string& stdin_path, const std::string& out_path,
                const std::string& err_path);
int wait_ember(int pid, int timeout_s, const std::vector<std::string>& args);

// EMBER_TEST_TIMEOUT_SCALE (1..100, default 1): multiplies every wait on a started
// command. The sanitizer run sets it: a command under ASan runs 2-5x slower, and a
// limit sized for the normal build would fail a test that is only slow.
int timeout_scale();

// True when s is exactly one non-empty line ending in '\n' (how every error is printed).
inline bool one_line(const std::string& s) {
  return s.size() > 1 && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

}  // namespace ember::testing

// A usage error: exit 2, one line on stderr naming `needle`, nothing on stdout.
#define EXPECT_USAGE_ERROR(r, needle)                                          \
  do {                                                                         \
    EXPECT_EQ((r).code, 2) << (r).err;                                         \
    EXPECT_TRUE(::ember::testing::one_line((r).err)) << "stderr: " << (r).err; \
    EXPECT_NE((r).err.find(needle), std::string::npos) << (r).err;             \
    EXPECT_EQ((r).out, "");                                                    \
  } while (0)

// A runtime error: exit 1, one line on stderr naming `needle`.
#define EXPECT_RUNTIME_ERROR(r, needle)                                        \
  do {                                                                         \
    EXPECT_EQ((r).code, 1) << (r).err;                                         \
    EXPECT_TRUE(::ember::testing::one_line((r).err)) << "stderr: " << (r).err; \
    EXPECT_NE((r).err.find(needle), std::string::npos) << (r).err;             \
  } while (0)
