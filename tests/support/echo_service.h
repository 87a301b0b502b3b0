#pragma once

// EchoService for runtime tests and benchmarks: answers with the request's message, after
// `delay_ms` when asked, and counts calls in flight so tests can wait for one.

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "libs/app/call_context.h"

#include "switchboard/testing/v1/echo.grpc.pb.h"

namespace sb::testing {

class EchoService final : public ::switchboard::testing::v1::EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* context,
                    const ::switchboard::testing::v1::EchoRequest* request,
                    ::switchboard::testing::v1::EchoResponse* response) override {
    if (record_contexts_) {
      std::lock_guard lock(mu_);
      last_context_ = app::CallContext::From(*context);
      last_peer_ = context->peer();
    }
    in_flight_.fetch_add(1);
    started_.fetch_add(1);
    if (request->delay_ms() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(request->delay_ms()));
    }
    response->set_message(request->message());
    in_flight_.fetch_sub(1);
    return grpc::Status::OK;
  }
  int in_flight() const { return in_flight_.load(); }
  int started() const { return started_.load(); }
  // When on, each call's CallContext is kept for last_context().
  void set_record_contexts(bool on) { record_contexts_ = on; }
  app::CallContext last_context() {
    std::lock_guard lock(mu_);
    return last_context_;
  }
  // ServerContext::peer() of the last call (recorded with the context).
  std::string last_peer() {
    std::lock_guard lock(mu_);
    return last_peer_;
  }

 private:
  std::atomic<bool> record_contexts_{false};
  std::mutex mu_;
  app::CallContext last_context_;
  std::string last_peer_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> started_{0};
};

}  // namespace sb::testing
