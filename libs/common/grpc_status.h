#pragma once

// Conversions between absl::Status (used everywhere inside Switchboard) and grpc::Status (used only
// at the RPC edge). The canonical codes have the same numbers in both; messages pass through.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace sb {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace sb
