#pragma once

// ChildProcess: starts a program for a test (a database server, the switchboard binary), lets the
// test signal it and wait for it, and kills it (SIGKILL) if it is still running when destroyed.
// Not thread-safe; owned by one test.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sb::testing {

struct ChildOptions {
  std::vector<std::string> argv;           // argv[0] is looked up on PATH
  std::vector<std::string> env;            // KEY=value entries replacing inherited ones
  std::optional<std::string> run_as_user;  // setuid/setgid to this user (e.g. "postgres")
  std::optional<std::string> stdout_path;  // where stdout goes (default: inherited)
  std::optional<std::string> stderr_path;  // where stderr goes (default: inherited)
};

class ChildProcess {
 public:
  static absl::StatusOr<ChildProcess> Start(const ChildOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int signo);
  // Waits up to `timeout` for the process to exit; returns its exit code (128 + signal number when
  // it was killed by a signal) or DeadlineExceeded.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs a command to completion and returns its exit code and combined output.
struct CommandResult {
  int exit_code;
  std::string output;
};
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& stdin_text = "");

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sb::testing
