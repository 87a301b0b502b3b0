#pragma once

// Strong id types: a TenantId cannot be passed where a UserId is expected, though both are UUID
// text on the wire and in PostgreSQL.
//
//   absl::StatusOr<UserId> id = UserId::Parse(request.user_id(), "user_id");
//   UserId fresh = UserId::New();

#include <compare>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"

namespace sb {

// True when `text` is a canonical UUID: 36 characters, lowercase or uppercase hex, dashes at 8, 13,
// 18 and 23.
bool IsUuid(std::string_view text);
// A random (version 4) UUID in canonical lowercase form.
std::string NewUuid();
// A time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix milliseconds, then random bits.
// Ids minted later sort after earlier ones (to the millisecond).
std::string NewUuidV7(absl::Time now);
// The host's name (in Kubernetes the pod's: the default id of an edge node), or `fallback` when it
// has none.
std::string HostNameOr(std::string fallback);

template <typename Tag>
class StrongId {
 public:
  StrongId() = default;
  // Wraps `value` without checking it: for values read back from our own storage.
  static StrongId FromTrusted(std::string value) { return StrongId(std::move(value)); }
  // Validates outside input and lowercases it. `field` names the request field in the
  // InvalidArgument message.
  static absl::StatusOr<StrongId> Parse(std::string_view text, std::string_view field) {
    if (text.empty()) {
      return absl::InvalidArgumentError(std::string(field) + " is required");
    }
    if (!IsUuid(text)) {
      return absl::InvalidArgumentError(std::string(field) + " must be a UUID, got '" +
                                        std::string(text.substr(0, 64)) + "'");
    }
    // One spelling per id: UUIDs are compared and used as keys in lowercase.
    return StrongId(absl::AsciiStrToLower(std::string(text)));
  }
  static StrongId New() { return StrongId(NewUuid()); }

  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }

  friend auto operator<=>(const StrongId&, const StrongId&) = default;
  friend bool operator==(const StrongId&, const StrongId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const StrongId& id) {
    return H::combine(std::move(h), id.value_);
  }
  friend std::ostream& operator<<(std::ostream& os, const StrongId& id) { return os << id.value_; }

 private:
  explicit StrongId(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

using TenantId = StrongId<struct TenantIdTag>;
using UserId = StrongId<struct UserIdTag>;
using RoleId = StrongId<struct RoleIdTag>;
using OrgUnitId = StrongId<struct OrgUnitIdTag>;
using TeamId = StrongId<struct TeamIdTag>;
using ProjectId = StrongId<struct ProjectIdTag>;
using QueueId = StrongId<struct QueueIdTag>;
using FlowId = StrongId<struct FlowIdTag>;
using NumberId = StrongId<struct NumberIdTag>;
using TrunkId = StrongId<struct TrunkIdTag>;
using ContactId = StrongId<struct ContactIdTag>;
using CallId = StrongId<struct CallIdTag>;
using RecordingId = StrongId<struct RecordingIdTag>;

}  // namespace sb
