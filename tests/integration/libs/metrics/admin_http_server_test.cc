// Drives AdminHttpServer over real loopback sockets with a deliberately plain HTTP client, so that
// what is checked is the bytes on the wire.

#include "libs/metrics/admin_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "libs/metrics/registry.h"
#include "libs/metrics/text_format.h"

namespace sb::metrics {
namespace {

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One TCP connection to 127.0.0.1:port. Blocking reads give up after 30 s (SO_RCVTIMEO) so that a
// server that never answers fails the test instead of hanging it; no assertion depends on time.
class Connection {
 public:
  explicit Connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    timeval timeout{.tv_sec = 30, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Reads one response; nullopt when the server closed the connection first. `head`: the
  // response to a HEAD request has no body whatever its Content-Length says.
  std::optional<Reply> Read(bool head = false) {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Reply reply;
    const std::string head_text = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    size_t line_end = head_text.find("\r\n");
    const std::string status_line = head_text.substr(0, line_end);
    REQUIRE(status_line.rfind("HTTP/1.1 ", 0) == 0);
    reply.status = std::atoi(status_line.c_str() + 9);
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head_text.find("\r\n", start);
      const std::string line = head_text.substr(start, line_end - start);
      const size_t colon = line.find(':');
      REQUIRE(colon != std::string::npos);
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    const size_t length = head ? 0 : std::stoul(reply.Header("content-length"));
    while (buffer_.size() < length) REQUIRE(Fill());
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return reply;
  }

  // Blocks until the server closes the connection; true if it did (rather than send more).
  bool ClosedByServer() {
    while (buffer_.empty()) {
      if (!Fill()) return true;
    }
    return false;
  }

 private:
  // Appends what the socket has; false on EOF or reset.
  bool Fill() {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      FAIL("no answer from the server within 30 s");
    }
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
};

std::string Get(std::string_view target, std::string_view method = "GET") {
  return std::string(method) + " " + std::string(target) +
         " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n";
}

AdminHttpServerOptions Loopback() {
  AdminHttpServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  return options;
}

TEST_CASE("AdminHttpServer serves /metrics and owner handlers on a kernel-chosen port",
          "[metrics]") {
  Registry registry;
  CounterFamily* scrapes =
      registry.AddCounter("sb_test_requests_total", "Requests.", {"path"}).value();
  scrapes->WithLabels({"/metrics"}).Inc(2);

  AdminHttpServer server(Loopback());
  server.Handle("/metrics", MetricsHandler(registry));
  std::string last_query;
  server.Handle("/readyz", [&](const HttpRequest& request) {
    last_query = request.query;
    return HttpResponse{.status = 503, .body = "not ready: database\n"};
  });
  server.Handle(
      "/boom", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("handler bug"); });
  CHECK(server.port() == 0);
  REQUIRE(server.Start().ok());
  REQUIRE(server.port() > 0);

  // All on one keep-alive connection.
  Connection connection(server.port());
  connection.Send(Get("/metrics"));
  std::optional<Reply> metrics = connection.Read();
  REQUIRE(metrics.has_value());
  CHECK(metrics->status == 200);
  CHECK(metrics->Header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics->Header("content-type") == kTextFormatContentType);
  CHECK(metrics->body ==
        "# HELP sb_test_requests_total Requests.\n"
        "# TYPE sb_test_requests_total counter\n"
        "sb_test_requests_total{path=\"/metrics\"} 2\n");

  connection.Send(Get("/metrics", "HEAD"));
  std::optional<Reply> head = connection.Read(/*head=*/true);
  REQUIRE(head.has_value());
  CHECK(head->status == 200);
  CHECK(head->Header("content-length") == std::to_string(metrics->body.size()));

  connection.Send(Get("/nope"));
  std::optional<Reply> missing = connection.Read();
  REQUIRE(missing.has_value());
  CHECK(missing->status == 404);

  connection.Send("POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi");
  std::optional<Reply> post = connection.Read();
  REQUIRE(post.has_value());
  CHECK(post->status == 405);
  CHECK(post->Header("allow") == "GET, HEAD");

  connection.Send(Get("/readyz?verbose=1"));
  std::optional<Reply> ready = connection.Read();
  REQUIRE(ready.has_value());
  CHECK(ready->status == 503);
  CHECK(ready->body == "not ready: database\n");
  CHECK(last_query == "verbose=1");

  connection.Send(Get("/boom"));
  std::optional<Reply> boom = connection.Read();
  REQUIRE(boom.has_value());
  CHECK(boom->status == 500);

  // Two pipelined requests are answered in order.
  connection.Send(Get("/nope") + Get("/metrics"));
  std::optional<Reply> first = connection.Read();
  std::optional<Reply> second = connection.Read();
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(first->status == 404);
  CHECK(second->status == 200);

  // Connection: close is honoured.
  connection.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  std::optional<Reply> last = connection.Read();
  REQUIRE(last.has_value());
  CHECK(last->status == 200);
  CHECK(connection.ClosedByServer());

  server.Stop();
}

TEST_CASE("AdminHttpServer::Stop returns with idle keep-alive connections open", "[metrics]") {
  Registry registry;
  AdminHttpServer server(Loopback());
  server.Handle("/metrics", MetricsHandler(registry));
  REQUIRE(server.Start().ok());

  Connection served(server.port());
  served.Send(Get("/metrics"));
  REQUIRE(served.Read().has_value());
  Connection silent(server.port());
  // Make sure the server has accepted `silent` too: a request on a third connection is answered
  // only after the accept loop passed it.
  Connection probe(server.port());
  probe.Send(Get("/metrics"));
  REQUIRE(probe.Read().has_value());

  server.Stop();  // would hang here if idle connections held the serving thread
  CHECK(served.ClosedByServer());
  CHECK(silent.ClosedByServer());
  server.Stop();  // idempotent
}

TEST_CASE("AdminHttpServer disconnects clients that are slow to send a request", "[metrics]") {
  AdminHttpServerOptions options = Loopback();
  options.read_timeout = absl::Milliseconds(200);
  AdminHttpServer server(options);
  server.Handle("/metrics", [](const HttpRequest&) { return HttpResponse{.body = "x"}; });
  REQUIRE(server.Start().ok());

  Connection idle(server.port());
  Connection partial(server.port());
  partial.Send("GET /metrics HTTP/1.1\r\nHost: local");
  // No sleeping: each read blocks until the server gives up on the client and closes.
  CHECK(idle.ClosedByServer());
  CHECK(partial.ClosedByServer());
}

TEST_CASE("AdminHttpServer answers 413 and 400 and then closes", "[metrics]") {
  AdminHttpServerOptions options = Loopback();
  options.max_request_bytes = 1024;
  AdminHttpServer server(options);
  server.Handle("/metrics", [](const HttpRequest&) { return HttpResponse{.body = "x"}; });
  REQUIRE(server.Start().ok());

  Connection big(server.port());
  big.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + std::string(4096, 'a') +
           "\r\n\r\n");
  std::optional<Reply> too_large = big.Read();
  REQUIRE(too_large.has_value());
  CHECK(too_large->status == 413);
  CHECK(too_large->Header("connection") == "close");
  CHECK(big.ClosedByServer());

  Connection body(server.port());
  body.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n" +
            std::string(5000, 'b'));
  std::optional<Reply> body_too_large = body.Read();
  REQUIRE(body_too_large.has_value());
  CHECK(body_too_large->status == 413);

  Connection garbage(server.port());
  garbage.Send("NOT HTTP AT ALL\r\n\r\n");
  std::optional<Reply> bad = garbage.Read();
  REQUIRE(bad.has_value());
  CHECK(bad->status == 400);
  CHECK(garbage.ClosedByServer());
}

TEST_CASE("AdminHttpServer closes connections beyond max_connections", "[metrics]") {
  AdminHttpServerOptions options = Loopback();
  options.max_connections = 1;
  AdminHttpServer server(options);
  server.Handle("/metrics", [](const HttpRequest&) { return HttpResponse{.body = "x"}; });
  REQUIRE(server.Start().ok());

  Connection first(server.port());
  first.Send(Get("/metrics"));
  REQUIRE(first.Read().has_value());  // `first` is now a session
  Connection second(server.port());
  CHECK(second.ClosedByServer());
  first.Send(Get("/metrics"));
  std::optional<Reply> again = first.Read();
  REQUIRE(again.has_value());
  CHECK(again->status == 200);
}

TEST_CASE("AdminHttpServer::Start reports bad addresses and ports in use", "[metrics]") {
  AdminHttpServer first(Loopback());
  REQUIRE(first.Start().ok());

  AdminHttpServerOptions same_port = Loopback();
  same_port.port = first.port();
  AdminHttpServer second(same_port);
  CHECK(second.Start().code() == absl::StatusCode::kUnavailable);

  AdminHttpServerOptions hostname = Loopback();
  hostname.address = "not-an-ip";
  AdminHttpServer third(hostname);
  CHECK(third.Start().code() == absl::StatusCode::kInvalidArgument);

  AdminHttpServerOptions bad_port = Loopback();
  bad_port.port = 70000;
  AdminHttpServer fourth(bad_port);
  CHECK(fourth.Start().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sb::metrics
