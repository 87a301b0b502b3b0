#pragma once

// AdminHttpServer: the small HTTP/1.1 server every target runs beside its gRPC port for operators
// and Kubernetes: GET /metrics (see MetricsHandler), and whatever the owner adds with Handle()
// (/healthz, /readyz). Not an API server: no TLS, no routing beyond exact paths, bodies are small.
//
//   AdminHttpServer server({.address = "0.0.0.0", .port = 9464});
//   server.Handle("/metrics", MetricsHandler(registry));
//   server.Handle("/healthz", [](const HttpRequest&) { return HttpResponse{.body = "ok\n"}; });
//   SB_RETURN_IF_ERROR(server.Start());
//   ...
//   server.Stop();
//
// Behaviour: GET and HEAD are served from the handler registered for the request's path (the
// target without its query); an unknown path is 404; any other method is 405 with
// `Allow: GET, HEAD`. Connections are kept alive as HTTP/1.1 asks. A request must arrive whole
// within `read_timeout` of the server starting to wait for it (so an idle or slow client is
// disconnected) and fit in `max_request_bytes` (else 413); a response must be taken within
// `write_timeout`. Connections beyond `max_connections` are closed at once.
//
// Threads: the server runs its own io_context on one thread, started by Start() and joined by
// Stop(). Handlers run on that thread, one at a time: they must be quick and must not block.
//
// Thread-safety: Handle() and Start() are called by the owner before serving; Stop() and port()
// may be called from any thread. Stop() is idempotent and also run by the destructor.

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace sb::metrics {

class Registry;

struct HttpRequest {
  std::string method;  // "GET" or "HEAD"
  std::string target;  // as sent, e.g. "/readyz?verbose=1"
  std::string path;    // the target up to '?', e.g. "/readyz"
  std::string query;   // after '?', e.g. "verbose=1"; empty when absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct AdminHttpServerOptions {
  // A numeric IPv4 or IPv6 address ("0.0.0.0", "127.0.0.1", "::").
  std::string address = "0.0.0.0";
  // 0 lets the kernel pick a free port; port() tells which.
  int port = 0;
  absl::Duration read_timeout = absl::Seconds(10);
  absl::Duration write_timeout = absl::Seconds(10);
  // Bound on a request's header and on its body, each.
  size_t max_request_bytes = 8 * 1024;
  int max_connections = 64;
};

class AdminHttpServer {
 public:
  explicit AdminHttpServer(AdminHttpServerOptions options = {});
  ~AdminHttpServer();
  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  // Serves GET `path` (exact match, starting with '/') with `handler`, replacing an earlier one.
  // Only before Start() (SB_CHECK). A handler that throws is answered with 500.
  void Handle(std::string path, HttpHandler handler);

  // Binds, listens and starts the serving thread. Returns InvalidArgument for an address that is
  // not numeric or a port outside 0..65535, Unavailable when the socket cannot be bound (port in
  // use, address not local). Call at most once (SB_CHECK); a server that failed to start can
  // only be destroyed.
  absl::Status Start();

  // The port bound by Start() (useful with port 0); 0 before Start() has succeeded.
  int port() const { return bound_port_.load(); }

  // Closes the listening socket and every connection, idle keep-alive ones included, and joins
  // the serving thread. Returns once no handler is running. A response being written is cut off.
  // Not from a handler (it would wait for itself; SB_CHECK).
  void Stop();

 private:
  class Listener;  // The Boost.Asio side, kept out of this header.

  const AdminHttpServerOptions options_;
  std::map<std::string, HttpHandler> handlers_;
  std::unique_ptr<Listener> listener_;
  std::mutex stop_mu_;  // serialises Stop() calls
  std::thread thread_;
  std::atomic<int> bound_port_{0};
  bool started_ = false;
};

// A handler answering with `registry.Render()` as kTextFormatContentType. `registry` must outlive
// the server (or the server must be stopped first).
HttpHandler MetricsHandler(const Registry& registry);

}  // namespace sb::metrics
