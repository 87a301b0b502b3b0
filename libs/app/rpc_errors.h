#pragma once

// Structured errors at the RPC edge (proto/README.md, "Errors"). Domain code builds statuses
// with these helpers; the details ride in the absl::Status payload and ToGrpc() moves them into
// the `sb-error-details-bin` trailer that the gateway turns into the HTTP error body.
//
//   return app::FieldError("user.email", "NOT_EMAIL", "must be an email address");
//   ...
//   return app::ToGrpc(*context, status);   // in the handler
//
// Thread-compatible value helpers.

#include <string>
#include <string_view>

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace sb::app {

inline constexpr char kErrorDetailsTrailer[] = "sb-error-details-bin";
inline constexpr char kErrorDetailsPayloadUrl[] =
    "type.googleapis.com/switchboard.common.v1.ErrorDetails";

// InvalidArgument "<field>: <description>" with a FieldViolation detail.
absl::Status FieldError(std::string_view field, std::string_view reason,
                        std::string_view description);
// Same shape with another code (AlreadyExists for a duplicate login, FailedPrecondition, ...).
absl::Status FieldError(absl::StatusCode code, std::string_view field, std::string_view reason,
                        std::string_view description);
// Adds a RetryInfo detail (ResourceExhausted from throttling).
absl::Status WithRetryDelay(absl::Status status, absl::Duration delay);
// Adds an ErrorInfo reason ("SEAT_LIMIT_REACHED", "PASSWORD_CHANGE_REQUIRED").
absl::Status WithReason(absl::Status status, std::string_view reason);

// The gRPC status for `status`; puts its details (if any) into the trailer of `context`.
grpc::Status ToGrpc(grpc::ServerContext& context, const absl::Status& status);

}  // namespace sb::app
