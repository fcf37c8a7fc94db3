#include "support/run_ember.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

extern char** environ;

namespace ember::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

int spawn_ember(const std::vector<std::string>& args, const std::string& stdin_path, const std::string& out_path,
                const std::string& err_path) {
  const std::string bin = EMBER_BINARY_DIR "/bin/ember";
  std::vector<std::string> argv_s;
#ifdef EMBER_TEST_EMULATOR
  // Cross build: the emulator command ('|'-separated) comes first.
  for (std::string e = EMBER_TEST_EMULATOR;;) {
    size_t p = e.find('|');
    argv_s.push_back(e.substr(0, p));
    if (p == std::string::npos) break;
    e.erase(0, p + 1);
  }
#endif
  argv_s.push_back(bin);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "EMBER_LOG=", 10) != 0) envp.push_back(*e);
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv_s[0].c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "cannot run " << argv_s[0] << ": " << std::strerror(rc);
    return -1;
  }
  return pid;
}

int timeout_scale() {
  const char* s = std::getenv("EMBER_TEST_TIMEOUT_SCALE");
  const int scale = s != nullptr ? std::atoi(s) : 1;
  return scale >= 1 && scale <= 100 ? scale : 1;
}

int wait_ember(int pid, int timeout_s, const std::vector<std::string>& args) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s * timeout_scale());
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "timeout: ember " << ::testing::PrintToString(args);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

CliResult run_ember(const std::vector<std::string>& args, const std::string& scratch_prefix, int timeout_s,
                    const std::string& stdin_path) {
  CliResult r;
  const std::string out = scratch_prefix + ".out", err = scratch_prefix + ".err";
  const int pid = spawn_ember(args, stdin_path, out, err);
  if (pid < 0) return r;
  r.code = wait_ember(pid, timeout_s, args);
  r.out = slurp(out);
  r.err = slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

}  // namespace ember::testing
