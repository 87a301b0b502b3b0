#include "libs/testing/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/testing/ports.h"

namespace sb::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(10);
constexpr absl::Duration kStopTimeout = absl::Seconds(10);

// True when a Redis on 127.0.0.1:port answers PING with +PONG (not -LOADING, not silence). Speaks
// RESP by hand so that test support does not depend on the client it is used to test.
bool AnswersPing(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval timeout{.tv_sec = 1, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool pong = false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    static constexpr char kPing[] = "PING\r\n";
    if (::send(fd, kPing, sizeof kPing - 1, MSG_NOSIGNAL) == sizeof kPing - 1) {
      std::string answer;
      char buf[64];
      while (answer.find("\r\n") == std::string::npos && answer.size() < 256) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        answer.append(buf, static_cast<size_t>(n));
      }
      pong = answer.rfind("+PONG\r\n", 0) == 0;
    }
  }
  ::close(fd);
  return pong;
}

std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() <= max_bytes ? all : all.substr(all.size() - max_bytes);
}

}  // namespace

TestRedis::TestRedis() : port_(FreeTcpPort()) {}

TestRedis::~TestRedis() { Kill(); }

std::string TestRedis::url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

bool TestRedis::running() { return process_.has_value() && process_->running(); }

absl::Status TestRedis::Start() {
  if (running()) return absl::FailedPreconditionError("redis-server is already running");
  process_.reset();
  const std::string log_path = dir_.path() + "/redis.log";
  auto child = ChildProcess::Start({
      .argv = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", dir_.path(), "--daemonize", "no", "--logfile", "",
               "--loglevel", "warning"},
      .stdout_path = log_path,
      .stderr_path = log_path,
  });
  if (!child.ok()) return child.status();
  process_.emplace(*std::move(child));

  const absl::Time deadline = absl::Now() + kStartTimeout;
  while (!AnswersPing(port_)) {
    if (!process_->running() || absl::Now() >= deadline) {
      Kill();
      return absl::UnavailableError(absl::StrCat("redis-server on port ", port_,
                                                 " did not come up; its log ends with:\n",
                                                 Tail(log_path, 2000)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return absl::OkStatus();
}

absl::Status TestRedis::Stop() {
  if (!process_) return absl::OkStatus();
  Resume();  // a frozen server cannot act on SIGTERM
  process_->Signal(SIGTERM);
  if (!process_->Wait(kStopTimeout).ok()) {
    Kill();
    return absl::InternalError(
        absl::StrCat("redis-server on port ", port_, " ignored SIGTERM for 10 s; killed it"));
  }
  process_.reset();
  return absl::OkStatus();
}

void TestRedis::Kill() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  (void)process_->Wait(kStopTimeout);
  process_.reset();
}

void TestRedis::Pause() {
  if (process_) process_->Signal(SIGSTOP);
}

void TestRedis::Resume() {
  if (process_) process_->Signal(SIGCONT);
}

absl::StatusOr<std::string> SharedTestRedisUrl() {
  if (const char* url = std::getenv("SB_TEST_REDIS_URL"); url != nullptr && *url != '\0') {
    return std::string(url);
  }
  // Started once, on first use; the destructor kills it when the test process exits.
  static TestRedis redis;
  static const absl::Status started = redis.Start();
  if (!started.ok()) return started;
  return redis.url();
}

std::string UniqueKeyPrefix(std::string_view name) {
  static std::atomic<int64_t> counter{0};
  return absl::StrCat("test:", std::string(name), ":", ::getpid(), ":",
                      absl::ToUnixMicros(absl::Now()), ":", counter.fetch_add(1), ":");
}

}  // namespace sb::testing
