#include "libs/app/validation.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "libs/app/rpc_errors.h"

namespace sb::app {
namespace {

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool HasControl(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) return true;
  }
  return false;
}

std::string Trim(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(absl::string_view(s.data(), s.size())));
}

}  // namespace

absl::StatusOr<std::string> NormalizeName(std::string_view value, std::string_view field,
                                          bool required) {
  std::string v = Trim(value);
  if (v.empty()) {
    if (required) return FieldError(field, "REQUIRED", "is required");
    return v;
  }
  if (CodePoints(v) > 100) return FieldError(field, "TOO_LONG", "must be at most 100 characters");
  if (HasControl(v))
    return FieldError(field, "INVALID_CHARACTERS", "must not contain control characters");
  return v;
}

absl::StatusOr<std::string> NormalizeLoginName(std::string_view value, std::string_view field) {
  std::string v = absl::AsciiStrToLower(Trim(value));
  if (v.empty()) return FieldError(field, "REQUIRED", "is required");
  if (v.size() < 3) return FieldError(field, "TOO_SHORT", "must be at least 3 characters");
  if (v.size() > 64) return FieldError(field, "TOO_LONG", "must be at most 64 characters");
  for (char c : v) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return FieldError(field, "INVALID_CHARACTERS",
                        "may contain only letters a-z, digits, '.', '_' and '-'");
    }
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(v[0]))) {
    return FieldError(field, "INVALID_CHARACTERS", "must start with a letter or digit");
  }
  return v;
}

absl::StatusOr<std::string> NormalizeEmail(std::string_view value, std::string_view field) {
  std::string v = Trim(value);
  if (v.empty()) return FieldError(field, "REQUIRED", "is required");
  if (v.size() > 254) return FieldError(field, "TOO_LONG", "must be at most 254 characters");
  const size_t at = v.find('@');
  const bool ok = at != std::string::npos && at > 0 && at <= 64 &&
                  v.find('@', at + 1) == std::string::npos &&
                  v.find('.', at) != std::string::npos && v.back() != '.' && v[at + 1] != '.' &&
                  v.find(' ') == std::string::npos && !HasControl(v);
  if (!ok) return FieldError(field, "NOT_EMAIL", "must be an email address like name@example.com");
  return v;
}

absl::Status ValidateTimeZone(std::string_view value, std::string_view field) {
  absl::TimeZone tz;
  if (value.empty()) return FieldError(field, "REQUIRED", "is required");
  if (value.size() > 64 || !absl::LoadTimeZone(std::string(value), &tz)) {
    return FieldError(field, "UNKNOWN_TIME_ZONE",
                      absl::StrCat("unknown IANA time zone '", std::string(value.substr(0, 64)),
                                   "' (e.g. Europe/Budapest)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLanguage(std::string_view value, std::string_view field) {
  if (value == "en" || value == "de" || value == "hu") return absl::OkStatus();
  return FieldError(field, "UNSUPPORTED_LANGUAGE", "must be one of en, de, hu");
}

absl::Status ValidateSlug(std::string_view value, std::string_view field) {
  if (value.size() < 2 || value.size() > 40) {
    return FieldError(field, value.empty() ? "REQUIRED" : "BAD_LENGTH",
                      "must be 2 to 40 characters");
  }
  for (char c : value) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return FieldError(field, "INVALID_CHARACTERS", "may contain only a-z, 0-9 and '-'");
    }
  }
  if (value.front() == '-' || value.back() == '-') {
    return FieldError(field, "INVALID_CHARACTERS", "must not start or end with '-'");
  }
  return absl::OkStatus();
}

absl::Status ValidateRoleName(std::string_view value, std::string_view field) {
  if (value.size() < 2 || value.size() > 64) {
    return FieldError(field, value.empty() ? "REQUIRED" : "BAD_LENGTH",
                      "must be 2 to 64 characters");
  }
  for (char c : value) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return FieldError(field, "INVALID_CHARACTERS", "may contain only a-z, 0-9 and '_'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateText(std::string_view value, std::string_view field, size_t max) {
  if (CodePoints(value) > max) {
    return FieldError(field, "TOO_LONG", absl::StrCat("must be at most ", max, " characters"));
  }
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7F) {
      return FieldError(field, "INVALID_CHARACTERS", "must not contain control characters");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_set<std::string>> MaskPaths(
    const google::protobuf::FieldMask& mask, std::initializer_list<std::string_view> allowed) {
  if (mask.paths_size() == 0)
    return FieldError("update_mask", "REQUIRED", "name the fields to change");
  absl::flat_hash_set<std::string> paths;
  for (const std::string& path : mask.paths()) {
    if (std::find(allowed.begin(), allowed.end(), path) == allowed.end()) {
      std::string names;
      for (std::string_view a : allowed)
        absl::StrAppend(&names, names.empty() ? "" : ", ", std::string(a));
      return FieldError(
          "update_mask", "UNKNOWN_FIELD",
          absl::StrCat("'", path.substr(0, 64), "' cannot be updated (updatable: ", names, ")"));
    }
    paths.insert(path);
  }
  return paths;
}

}  // namespace sb::app
