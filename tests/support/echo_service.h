#pragma once

// EchoService for runtime tests and benchmarks: answers with the request's message, after
// `delay_ms` when asked, and counts calls in flight so tests can wait for one.

#include <atomic>
#include <chrono>
#include <thread>

#include "switchboard/testing/v1/echo.grpc.pb.h"

namespace sb::testing {

class EchoService final : public ::switchboard::testing::v1::EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const ::switchboard::testing::v1::EchoRequest* request,
                    ::switchboard::testing::v1::EchoResponse* response) override {
    in_flight_.fetch_add(1);
    if (request->delay_ms() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(request->delay_ms()));
    }
    response->set_message(request->message());
    in_flight_.fetch_sub(1);
    return grpc::Status::OK;
  }
  int in_flight() const { return in_flight_.load(); }

 private:
  std::atomic<int> in_flight_{0};
};

}  // namespace sb::testing
