#pragma once

// HealthService implements grpc.health.v1.Health (Check and Watch) for the process's server.
//
// It is our own rather than gRPC's built-in DefaultHealthCheckService because the built-in one is
// a callback-API service in gRPC 1.51, and registering any callback service next to our sync
// services cost every RPC about 40% more server CPU in tests/bench/grpc_hop_bench.
//
// A service name that was never set answers NOT_FOUND on Check and SERVICE_UNKNOWN on Watch; ""
// is the server as a whole. Watch streams get the current status at once and every change after
// it; Shutdown() sets everything NOT_SERVING, tells the watchers, and ends their streams. Each
// Watch holds one server thread while it lasts, so their number is capped.
//
// Thread-safe.

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace sb::app {

class HealthService final : public ::grpc::health::v1::Health::Service {
 public:
  // At most `max_watchers` Watch streams at once (each holds a server thread); more are refused
  // with RESOURCE_EXHAUSTED.
  explicit HealthService(int max_watchers) : max_watchers_(max_watchers) {}

  void SetServingStatus(const std::string& service, bool serving);
  // Everything NOT_SERVING from now on; further SetServingStatus calls are ignored. Watch streams
  // are sent NOT_SERVING and end.
  void Shutdown();
  // Waits (at most `timeout`) until every Watch stream has ended, so that the server's shutdown
  // does not cut one before it has told its client NOT_SERVING.
  void WaitForWatchersToEnd(absl::Duration timeout);

  grpc::Status Check(grpc::ServerContext* context,
                     const ::grpc::health::v1::HealthCheckRequest* request,
                     ::grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const ::grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<::grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  using Status = ::grpc::health::v1::HealthCheckResponse::ServingStatus;

  absl::Mutex mu_;
  std::map<std::string, Status> statuses_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on every change, for watchers
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  const int max_watchers_;
  int watchers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sb::app
