#pragma once

// Input checks for requests. Each returns InvalidArgument naming the field (with a
// FieldViolation detail) or OK; the Normalize* ones also return the canonical form.

#include <string>
#include <string_view>

#include <google/protobuf/field_mask.pb.h>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sb::app {

// A person's name part: trimmed, 1..100 characters when required, no control characters.
absl::StatusOr<std::string> NormalizeName(std::string_view value, std::string_view field,
                                          bool required);
// Login name: lowercased, [a-z0-9._-], 3..64 characters, starting with a letter or digit.
absl::StatusOr<std::string> NormalizeLoginName(std::string_view value, std::string_view field);
// Email: trimmed; local@domain with a dot in the domain, at most 254 characters.
absl::StatusOr<std::string> NormalizeEmail(std::string_view value, std::string_view field);
// An IANA time zone name that this machine's zoneinfo knows ("Europe/Budapest", "UTC").
absl::Status ValidateTimeZone(std::string_view value, std::string_view field);
// "en", "de" or "hu".
absl::Status ValidateLanguage(std::string_view value, std::string_view field);
// Tenant slug: [a-z0-9-], 2..40, not starting or ending with '-'.
absl::Status ValidateSlug(std::string_view value, std::string_view field);
// Role key: [a-z0-9_], 2..64.
absl::Status ValidateRoleName(std::string_view value, std::string_view field);
// Free text up to `max` characters (descriptions, labels, reasons).
absl::Status ValidateText(std::string_view value, std::string_view field, size_t max);

// The paths of an update mask, each one of `allowed`. InvalidArgument naming update_mask when the
// mask is empty ("name the fields to change") or names a field that cannot be updated.
absl::StatusOr<absl::flat_hash_set<std::string>> MaskPaths(
    const google::protobuf::FieldMask& mask, std::initializer_list<std::string_view> allowed);

}  // namespace sb::app
