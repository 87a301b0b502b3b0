#include "libs/app/rpc_errors.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "switchboard/common/v1/errors.pb.h"

namespace sb::app {
namespace {

namespace cv1 = ::switchboard::common::v1;

cv1::ErrorDetails DetailsOf(const absl::Status& status) {
  cv1::ErrorDetails details;
  auto payload = status.GetPayload(kErrorDetailsPayloadUrl);
  if (payload) details.ParseFromString(std::string(*payload));
  return details;
}

absl::Status WithDetail(absl::Status status, const cv1::ErrorDetail& detail) {
  cv1::ErrorDetails details = DetailsOf(status);
  *details.add_details() = detail;
  status.SetPayload(kErrorDetailsPayloadUrl, absl::Cord(details.SerializeAsString()));
  return status;
}

}  // namespace

absl::Status FieldError(absl::StatusCode code, std::string_view field, std::string_view reason,
                        std::string_view description) {
  cv1::ErrorDetail detail;
  auto* v = detail.mutable_field_violation();
  v->set_field(std::string(field));
  v->set_reason(std::string(reason));
  v->set_description(std::string(description));
  return WithDetail(
      absl::Status(code, absl::StrCat(std::string(field), ": ", std::string(description))), detail);
}

absl::Status FieldError(std::string_view field, std::string_view reason,
                        std::string_view description) {
  return FieldError(absl::StatusCode::kInvalidArgument, field, reason, description);
}

absl::Status WithRetryDelay(absl::Status status, absl::Duration delay) {
  cv1::ErrorDetail detail;
  const int64_t ms = std::max<int64_t>(absl::ToInt64Milliseconds(delay), 0);
  detail.mutable_retry_info()->mutable_retry_delay()->set_seconds(ms / 1000);
  detail.mutable_retry_info()->mutable_retry_delay()->set_nanos(
      static_cast<int32_t>((ms % 1000) * 1000000));
  return WithDetail(std::move(status), detail);
}

absl::Status WithReason(absl::Status status, std::string_view reason) {
  cv1::ErrorDetail detail;
  detail.mutable_error_info()->set_reason(std::string(reason));
  return WithDetail(std::move(status), detail);
}

grpc::Status ToGrpc(grpc::ServerContext& context, const absl::Status& status) {
  if (!status.ok()) {
    auto payload = status.GetPayload(kErrorDetailsPayloadUrl);
    if (payload) context.AddTrailingMetadata(kErrorDetailsTrailer, std::string(*payload));
  }
  return ToGrpcStatus(status);
}

}  // namespace sb::app
