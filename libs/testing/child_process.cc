#include "libs/testing/child_process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/check.h"

namespace sb::testing {
namespace {

int ExitCodeOf(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

}  // namespace

absl::StatusOr<ChildProcess> ChildProcess::Start(const ChildOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("argv is empty");
  uid_t uid = 0;
  gid_t gid = 0;
  if (options.run_as_user) {
    const passwd* pw = ::getpwnam(options.run_as_user->c_str());
    if (pw == nullptr) {
      return absl::NotFoundError(absl::StrCat("no such user: ", *options.run_as_user));
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Our entries replace inherited ones of the same name (getenv returns the first match).
  std::vector<std::string> env_storage = options.env;
  auto overridden = [&options](const char* entry) {
    const std::string_view e(entry);
    for (const auto& mine : options.env) {
      const size_t eq = mine.find('=');
      if (eq != std::string::npos &&
          e.substr(0, eq + 1) == std::string_view(mine).substr(0, eq + 1)) {
        return true;
      }
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) env_storage.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    if (options.stdout_path) {
      int fd = ::open(options.stdout_path->c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) ::dup2(fd, 1);
    }
    if (options.stderr_path) {
      int fd = ::open(options.stderr_path->c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) ::dup2(fd, 2);
    }
    if (options.run_as_user) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(126);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return ChildProcess(pid);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), exit_code_(other.exit_code_) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool ChildProcess::running() {
  if (pid_ <= 0 || exit_code_) return false;
  int wstatus = 0;
  const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r == pid_) {
    exit_code_ = ExitCodeOf(wstatus);
    return false;
  }
  return true;
}

void ChildProcess::Signal(int signo) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, signo);
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("pid ", pid_, " still running"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!exit_code_) return absl::FailedPreconditionError("process was never started");
  return *exit_code_;
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& stdin_text) {
  TempDir dir;
  const std::string in_path = dir.path() + "/stdin";
  const std::string out_path = dir.path() + "/out";
  {
    FILE* f = std::fopen(in_path.c_str(), "w");
    if (f == nullptr) return absl::InternalError("cannot write stdin file");
    std::fwrite(stdin_text.data(), 1, stdin_text.size(), f);
    std::fclose(f);
  }
  // sh -c SCRIPT IN OUT CMD...: inside SCRIPT, $0 is IN and $1 is OUT; `shift` leaves CMD as "$@".
  std::vector<std::string> shell = {
      "/bin/sh", "-c", "f=$0; o=$1; shift; \"$@\" <\"$f\" >\"$o\" 2>&1", in_path, out_path};
  for (const auto& a : argv) shell.push_back(a);
  auto child = ChildProcess::Start({.argv = shell});
  if (!child.ok()) return child.status();
  auto code = child->Wait(absl::Minutes(5));
  if (!code.ok()) return code.status();
  CommandResult result{*code, ""};
  if (FILE* f = std::fopen(out_path.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) result.output.append(buf, n);
    std::fclose(f);
  }
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(base && *base ? base : "/tmp", "/sbtest.XXXXXX");
  char* made = ::mkdtemp(pattern.data());

  SB_CHECK(made != nullptr) << "mkdtemp " << pattern;
  path_ = made;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace sb::testing
