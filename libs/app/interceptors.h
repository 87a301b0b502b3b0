#pragma once

// The server interceptor every Switchboard gRPC server runs (one, doing all of it, because each
// interceptor costs gRPC work on every batch of every call):
// - metrics: grpc_server_started_total, grpc_server_handled_total{grpc_code} and the
//   grpc_server_handling_seconds histogram per service and method (the names of
//   go-grpc-prometheus, so existing dashboards work);
// - drain: counts RPCs in flight for the DrainTracker;
// - call context and logging: reads x-request-id, x-sb-tenant-id and x-sb-call-id from the
//   request metadata, notes whether the caller presented a bearer token, and logs each finished RPC
//   with those fields (debug level; warn for Internal, Unknown and DataLoss; a request id is made
//   up when the caller sent none). Token verification belongs to the services (libs/auth): every
//   service enforces access from the verified token.

#include <atomic>
#include <memory>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

namespace sb::metrics {
class Registry;
}

namespace sb::app {

// Counts the RPCs being served, so that shutdown waits for exactly those (gRPC 1.51's
// Server::Shutdown would also wait out the whole deadline for idle client connections). Health
// Watch streams are not counted: they are notifications that shutdown has already answered with
// NOT_SERVING. Thread-safe.
class DrainTracker {
 public:
  int in_flight() const { return in_flight_.load(); }

  // Called by the interceptor.
  void Enter() { in_flight_.fetch_add(1); }
  void Leave() { in_flight_.fetch_sub(1); }

 private:
  std::atomic<int> in_flight_{0};
};

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
DefaultInterceptors(metrics::Registry& registry, DrainTracker& drain);

}  // namespace sb::app
