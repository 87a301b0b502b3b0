#include "libs/testing/pg_server.h"

#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "libs/testing/ports.h"

namespace sb::testing {
namespace {

constexpr char kUser[] = "postgres";
constexpr absl::Duration kReadyTimeout = absl::Seconds(30);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);

std::string PgBin(absl::string_view program) {
  const char* dir = std::getenv("SB_PG_BIN_DIR");
  return absl::StrCat(dir != nullptr && *dir != '\0' ? dir : "/usr/lib/postgresql/15/bin", "/",
                      program);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Tail(const std::string& text, size_t max_bytes) {
  return text.size() <= max_bytes ? text : text.substr(text.size() - max_bytes);
}

// postgres writes its status into line 8 of postmaster.pid ("ready" once it accepts
// connections); line 1 is the postmaster's pid, which tells this start's file from a stale one.
bool PidFileSaysReady(const std::string& data_dir, pid_t pid) {
  const std::vector<std::string> lines =
      absl::StrSplit(ReadFile(data_dir + "/postmaster.pid"), '\n');
  return lines.size() >= 8 && lines[0] == std::to_string(pid) &&
         absl::StartsWith(lines[7], "ready");
}

// Whether a live (not zombie) process is left in process group `pgid`.
bool GroupAlive(pid_t pgid) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return false;
  bool alive = false;
  while (const dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const std::string stat = ReadFile(absl::StrCat("/proc/", entry->d_name, "/stat"));
    // "pid (comm) state ppid pgrp ...": comm may hold spaces, so parse after the last ')'.
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    const std::vector<std::string> fields =
        absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
    if (fields.size() >= 3 && fields[0] != "Z" && fields[2] == std::to_string(pgid)) {
      alive = true;
      break;
    }
  }
  ::closedir(proc);
  return alive;
}

std::string UniqueDatabaseName() {
  static std::atomic<int> counter{0};
  thread_local std::mt19937 rng{std::random_device{}()};
  return absl::StrCat("sbtest_", ::getpid(), "_", counter.fetch_add(1), "_", rng() % 1000000);
}

}  // namespace

TestPostgres::TestPostgres(int port)
    : data_dir_(dir_.path() + "/data"), log_path_(dir_.path() + "/postgres.log"), port_(port) {}

absl::StatusOr<std::unique_ptr<TestPostgres>> TestPostgres::Create(bool start) {
  std::unique_ptr<TestPostgres> pg(new TestPostgres(FreeTcpPort()));
  const passwd* pw = ::getpwnam(kUser);
  if (pw == nullptr) return absl::FailedPreconditionError("no `postgres` system user");
  if (::chown(pg->dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return absl::InternalError(absl::StrCat("chown ", pg->dir_.path(), ": ", std::strerror(errno)));
  }
  const std::string initdb_log = pg->dir_.path() + "/initdb.log";
  absl::StatusOr<ChildProcess> initdb = ChildProcess::Start({
      .argv = {PgBin("initdb"), "-D", pg->data_dir_, "-U", kUser, "--auth=trust", "--no-sync",
               "--encoding=UTF8", "--locale=C"},
      .run_as_user = kUser,
      .stdout_path = initdb_log,
      .stderr_path = initdb_log,
  });
  if (!initdb.ok()) return initdb.status();
  absl::StatusOr<int> code = initdb->Wait(absl::Minutes(1));
  if (!code.ok() || *code != 0) {
    return absl::InternalError(absl::StrCat(
        "initdb failed (", code.ok() ? absl::StrCat("exit ", *code) : code.status().ToString(),
        "):\n", Tail(ReadFile(initdb_log), 4000)));
  }
  if (start) {
    if (absl::Status status = pg->Start(); !status.ok()) return status;
  }
  return pg;
}

TestPostgres::~TestPostgres() {
  if (!Stop().ok()) Kill();
}

std::string TestPostgres::dsn() const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " user=", kUser, " dbname=postgres");
}

std::string TestPostgres::LogTail(size_t max_bytes) const {
  return Tail(ReadFile(log_path_), max_bytes);
}

bool TestPostgres::running() { return server_.has_value() && server_->running(); }

absl::Status TestPostgres::Start() {
  if (running()) return absl::FailedPreconditionError("postgres is running already");
  absl::StatusOr<ChildProcess> server = ChildProcess::Start({
      .argv = {PgBin("postgres"), "-D", data_dir_, "-p", std::to_string(port_), "-c",
               "listen_addresses=127.0.0.1", "-c",
               absl::StrCat("unix_socket_directories=", data_dir_), "-c", "fsync=off", "-c",
               "full_page_writes=off"},
      .run_as_user = kUser,
      .stdout_path = log_path_,
      .stderr_path = log_path_,
  });
  if (!server.ok()) return server.status();
  server_.emplace(*std::move(server));
  const absl::Time deadline = absl::Now() + kReadyTimeout;
  while (!PidFileSaysReady(data_dir_, server_->pid())) {
    if (!server_->running()) {
      server_.reset();
      return absl::InternalError(absl::StrCat("postgres exited while starting:\n", LogTail()));
    }
    if (absl::Now() > deadline) {
      Kill();
      return absl::InternalError(absl::StrCat(
          "postgres not ready within ", absl::FormatDuration(kReadyTimeout), ":\n", LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::OkStatus();
}

absl::Status TestPostgres::Stop() {
  if (!running()) {
    server_.reset();
    return absl::OkStatus();
  }
  server_->Signal(SIGINT);
  absl::StatusOr<int> code = server_->Wait(kStopTimeout);
  if (!code.ok()) return code.status();
  server_.reset();
  return absl::OkStatus();
}

void TestPostgres::Kill() {
  if (!server_.has_value()) return;
  const pid_t pgid = server_->pid();  // ChildProcess puts the child in a group of its own
  if (server_->running()) ::kill(-pgid, SIGKILL);
  (void)server_->Wait(kStopTimeout);
  server_.reset();
  // The backends are not our children: wait for the kernel to finish them, or a new postmaster
  // may find their shared memory still attached and refuse to start.
  const absl::Time deadline = absl::Now() + kStopTimeout;
  while (GroupAlive(pgid) && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

absl::StatusOr<std::string> CreateTestDatabase(const std::string& server_dsn) {
  const std::string name = UniqueDatabaseName();
  // psql writes its errors to a file in a TempDir of our own, read back on failure.
  TempDir dir;
  const std::string out_path = dir.path() + "/psql.out";
  absl::StatusOr<ChildProcess> psql = ChildProcess::Start({
      .argv = {PgBin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server_dsn, "-c",
               absl::StrCat("CREATE DATABASE ", name)},
      .stdout_path = out_path,
      .stderr_path = out_path,
  });
  if (!psql.ok()) return psql.status();
  absl::StatusOr<int> code = psql->Wait(absl::Minutes(1));
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(
        absl::StrCat("CREATE DATABASE ", name, " failed (exit ", *code, "): ", ReadFile(out_path)));
  }
  if (absl::StartsWith(server_dsn, "postgresql://") ||
      absl::StartsWith(server_dsn, "postgres://")) {
    // Replace the URI's path (the database), keeping authority and parameters.
    const size_t authority = server_dsn.find("//") + 2;
    const size_t query = server_dsn.find('?', authority);
    const size_t path = server_dsn.find('/', authority);
    const std::string base =
        server_dsn.substr(0, std::min(path, std::min(query, server_dsn.size())));
    const std::string params = query == std::string::npos ? "" : server_dsn.substr(query);
    return absl::StrCat(base, "/", name, params);
  }
  // libpq keeps the last value of a repeated keyword.
  return absl::StrCat(server_dsn, " dbname=", name);
}

absl::StatusOr<std::string> SharedTestPgDsn() {
  if (const char* env = std::getenv("SB_TEST_PG_DSN"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  // A function-local static, not a leaked pointer: its destructor stops the server at exit.
  static const absl::StatusOr<std::unique_ptr<TestPostgres>> server = TestPostgres::Create();
  if (!server.ok()) return server.status();
  return (*server)->dsn();
}

}  // namespace sb::testing
