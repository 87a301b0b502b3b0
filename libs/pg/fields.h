#pragma once

// Small conversions between libpqxx fields and the types services' handlers use. Timestamps are
// selected as `extract(epoch FROM col)::float8` (microsecond precision) and written with
// `to_timestamp($n)`; arrays travel as PostgreSQL array literals cast with `$n::text[]`.

#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>
#include <pqxx/pqxx>

#include "absl/time/time.h"

namespace sb::pg {

double ToEpoch(absl::Time t);
absl::Time TimeFromEpoch(const pqxx::field& f);
// `f` holds epoch seconds (float8); NULL leaves the timestamp unset.
void SetTimestamp(google::protobuf::Timestamp* ts, const pqxx::field& f);
void SetTimestamp(google::protobuf::Timestamp* ts, absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);
// Durations to and from protobuf, to the millisecond (what the APIs carry).
void SetDuration(google::protobuf::Duration* d, absl::Duration v);
absl::Duration FromProto(const google::protobuf::Duration& d);

// NULL for an empty string (optional text columns), the string otherwise.
inline std::optional<std::string> NullIfEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

// A text[] field as strings (NULL: empty).
std::vector<std::string> TextArray(const pqxx::field& f);
// A PostgreSQL array literal of `values` for a `$n::text[]` parameter.
std::string PgArray(const std::vector<std::string>& values);

// proto3 JSON (lowerCamelCase) of a message, and back (unknown fields ignored; false on bad JSON).
std::string ToJson(const google::protobuf::Message& message);
bool ParseJsonInto(const std::string& json, google::protobuf::Message* message);

}  // namespace sb::pg
