#pragma once

// The server interceptors every Switchboard gRPC server runs:
// - metrics: grpc_server_started_total, grpc_server_handled_total{grpc_code} and the
//   grpc_server_handling_seconds histogram per service and method (the names of
//   go-grpc-prometheus, so existing dashboards work);
// - call context and logging: reads x-request-id (made up when absent), x-sb-tenant-id and
//   x-sb-call-id from the request metadata, notes whether the caller presented a bearer token,
//   echoes the request id back in the trailing metadata, and logs each finished RPC (debug level;
//   warn for Internal, Unknown and DataLoss) with those fields. Token verification itself belongs to
//   the services (libs/auth): every service enforces access from the verified token.

#include <memory>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

namespace sb::metrics {
class Registry;
}

namespace sb::app {

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
DefaultInterceptors(metrics::Registry& registry);

}  // namespace sb::app
