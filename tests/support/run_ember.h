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
// qemu-user cannot exec a foreign binary itself), stdin /dev/null, stdout and stderr
// captured in `scratch_prefix`.out / .err (removed afterwards), EMBER_LOG removed
// from the environment so stderr is exactly what the command prints. Kills the
// child and fails the test after `timeout_s` seconds.
CliResult run_ember(const std::vector<std::string>& args, const std::string& scratch_prefix, int timeout_s = 60);

}  // namespace ember::testing
