// All of libs/metrics' Boost.Beast code is in this file: Beast is slow to compile, so nothing else
// includes it.

#include "libs/metrics/admin_http_server.h"

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "libs/common/check.h"
#include "libs/metrics/registry.h"
#include "libs/metrics/text_format.h"

namespace sb::metrics {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

std::string ToString(beast::string_view text) { return std::string(text.data(), text.size()); }

Response TextResponse(http::status status, unsigned version, std::string body) {
  Response response(status, version);
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

bool IsTooLarge(const beast::error_code& ec) {
  return ec == http::error::header_limit || ec == http::error::body_limit ||
         ec == http::error::buffer_overflow;
}

// A malformed request, as opposed to the peer going away or the read timing out.
bool IsBadRequest(const beast::error_code& ec) {
  return ec.category() == beast::error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

}  // namespace

// Owns the io_context and everything that lives on the serving thread. Every member below the
// constructor is touched only on that thread, except Shutdown(), which posts to it.
class AdminHttpServer::Listener {
 public:
  Listener(const AdminHttpServerOptions& options, std::map<std::string, HttpHandler> handlers)
      : options_(options), handlers_(std::move(handlers)) {}

  absl::Status Bind(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError("admin HTTP server cannot listen on " +
                                    endpoint.address().to_string() + ":" +
                                    std::to_string(endpoint.port()) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return absl::OkStatus();
  }

  int port() const { return port_; }

  // The serving thread's body: returns once Shutdown() has closed everything.
  void Run() {
    Accept();
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        // Asio lets a handler's exception out of run(); the server's state is still sound, so log
        // it and keep serving.
        spdlog::error("admin HTTP server: {}", e.what());
      }
    }
  }

  // From any thread: closes the acceptor and all connections; Run() then returns.
  void Shutdown();

 private:
  class Session;

  void Accept();

  Response Dispatch(const Request& request) {
    const unsigned version = request.version();
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      Response response =
          TextResponse(http::status::method_not_allowed, version, "method not allowed\n");
      response.set(http::field::allow, "GET, HEAD");
      return response;
    }
    HttpRequest in;
    in.method = ToString(request.method_string());
    in.target = ToString(request.target());
    const size_t question = in.target.find('?');
    in.path = in.target.substr(0, question);
    if (question != std::string::npos) in.query = in.target.substr(question + 1);

    const auto handler = handlers_.find(in.path);
    if (handler == handlers_.end()) {
      return TextResponse(http::status::not_found, version, "not found\n");
    }
    HttpResponse out;
    try {
      out = handler->second(in);
    } catch (const std::exception& e) {
      spdlog::error("admin HTTP handler for {} threw: {}", in.path, e.what());
      return TextResponse(http::status::internal_server_error, version, "internal error\n");
    }
    if (out.status < 100 || out.status > 599) {
      spdlog::error("admin HTTP handler for {} returned status {}", in.path, out.status);
      return TextResponse(http::status::internal_server_error, version, "internal error\n");
    }
    Response response(static_cast<http::status>(out.status), version);
    if (!out.content_type.empty()) response.set(http::field::content_type, out.content_type);
    if (request.method() == http::verb::head) {
      // HEAD: the headers GET would send, Content-Length included, and no body.
      response.content_length(out.body.size());
    } else {
      response.body() = std::move(out.body);
      response.prepare_payload();
    }
    return response;
  }

  const AdminHttpServerOptions options_;
  const std::map<std::string, HttpHandler> handlers_;
  // Declared before ioc_ so that sessions still owned by ioc_'s handlers can unregister while
  // ioc_ is destroyed.
  std::unordered_set<Session*> sessions_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_{ioc_};
  asio::steady_timer retry_timer_{ioc_};
  int port_ = 0;
  bool stopping_ = false;
};

// One connection: read a request, answer it, repeat while the client keeps the connection alive.
// Owned by the shared_ptr its pending operation holds.
class AdminHttpServer::Listener::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Listener& listener)
      : stream_(std::move(socket)), listener_(listener) {
    listener_.sessions_.insert(this);
  }
  ~Session() { listener_.sessions_.erase(this); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start() { ReadRequest(); }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(listener_.options_.max_request_bytes));
    parser_->body_limit(listener_.options_.max_request_bytes);
    stream_.expires_after(absl::ToChronoNanoseconds(listener_.options_.read_timeout));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (listener_.stopping_) return Close();
    if (IsTooLarge(ec)) {
      return WriteThenClose(
          TextResponse(http::status::payload_too_large, 11, "request too large\n"));
    }
    if (IsBadRequest(ec)) {
      return WriteThenClose(TextResponse(http::status::bad_request, 11, "bad request\n"));
    }
    // The client closed the connection, went quiet past the timeout, or reset it.
    if (ec) return Close();

    const Request& request = parser_->get();
    Response response = listener_.Dispatch(request);
    response.keep_alive(request.keep_alive());
    Write(std::move(response));
  }

  void Write(Response response) {
    response_ = std::move(response);
    stream_.expires_after(absl::ToChronoNanoseconds(listener_.options_.write_timeout));
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec || self->listener_.stopping_ || !self->response_.keep_alive()) {
                          return self->Close();
                        }
                        self->ReadRequest();
                      });
  }

  // For a request we stopped reading part-way: answer, stop sending, and read (discarding) until
  // the client closes or the read timeout passes. Closing at once with unread input would make
  // the kernel send a reset, which can destroy the response before the client reads it.
  void WriteThenClose(Response response) {
    response_ = std::move(response);
    response_.keep_alive(false);
    stream_.expires_after(absl::ToChronoNanoseconds(listener_.options_.write_timeout));
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec || self->listener_.stopping_) return self->Close();
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->stream_.expires_after(
                            absl::ToChronoNanoseconds(self->listener_.options_.read_timeout));
                        self->Drain();
                      });
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec || self->listener_.stopping_) return self->Close();
                              self->Drain();
                            });
  }

  beast::tcp_stream stream_;
  Listener& listener_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
  char drain_buffer_[4096];
};

void AdminHttpServer::Listener::Shutdown() {
  asio::post(ioc_, [this] {
    stopping_ = true;
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
    // Close() does not destroy the session (its pending operation holds it), so iterating is
    // safe; the set empties as the aborted operations complete.
    for (Session* session : sessions_) session->Close();
  });
}

void AdminHttpServer::Listener::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors and the like: wait a little instead of failing in a busy loop.
      spdlog::warn("admin HTTP server: accept failed: {}", ec.message());
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !stopping_) Accept();
      });
      return;
    }
    if (static_cast<int>(sessions_.size()) >= options_.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Session>(std::move(socket), *this)->Start();
    }
    Accept();
  });
}

AdminHttpServer::AdminHttpServer(AdminHttpServerOptions options) : options_(std::move(options)) {}

AdminHttpServer::~AdminHttpServer() { Stop(); }

void AdminHttpServer::Handle(std::string path, HttpHandler handler) {
  SB_CHECK(!started_) << "AdminHttpServer::Handle(" << path << ") after Start()";
  SB_CHECK(!path.empty() && path[0] == '/') << "handler path must start with '/': " << path;
  handlers_[std::move(path)] = std::move(handler);
}

absl::Status AdminHttpServer::Start() {
  SB_CHECK(!started_) << "AdminHttpServer::Start() called twice";
  started_ = true;
  if (options_.port < 0 || options_.port > 65535) {
    return absl::InvalidArgumentError("admin HTTP port " + std::to_string(options_.port) +
                                      " is outside 0..65535");
  }
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(options_.address, ec);
  if (ec) {
    return absl::InvalidArgumentError("admin HTTP address \"" + options_.address +
                                      "\" is not a numeric IP address");
  }
  auto listener = std::make_unique<Listener>(options_, handlers_);
  if (absl::Status status =
          listener->Bind(tcp::endpoint(address, static_cast<unsigned short>(options_.port)));
      !status.ok()) {
    return status;
  }
  listener_ = std::move(listener);
  bound_port_ = listener_->port();
  thread_ = std::thread([this] { listener_->Run(); });
  return absl::OkStatus();
}

void AdminHttpServer::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!thread_.joinable()) return;
  SB_CHECK(std::this_thread::get_id() != thread_.get_id())
      << "AdminHttpServer::Stop() called from one of its handlers";
  listener_->Shutdown();
  thread_.join();
}

HttpHandler MetricsHandler(const Registry& registry) {
  return [&registry](const HttpRequest&) {
    return HttpResponse{
        .status = 200, .content_type = kTextFormatContentType, .body = registry.Render()};
  };
}

}  // namespace sb::metrics
