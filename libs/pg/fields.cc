#include "libs/pg/fields.h"

#include <google/protobuf/util/json_util.h>

namespace sb::pg {

double ToEpoch(absl::Time t) { return static_cast<double>(absl::ToUnixMicros(t)) / 1e6; }

absl::Time TimeFromEpoch(const pqxx::field& f) {
  if (f.is_null()) return absl::InfinitePast();
  return absl::FromUnixMicros(
      static_cast<int64_t>(f.as<double>() * 1e6 + (f.as<double>() >= 0 ? 0.5 : -0.5)));
}

void SetTimestamp(google::protobuf::Timestamp* ts, absl::Time t) {
  const int64_t us = absl::ToUnixMicros(t);
  int64_t s = us / 1000000;
  int64_t rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --s;
  }
  ts->set_seconds(s);
  ts->set_nanos(static_cast<int32_t>(rem * 1000));
}

void SetTimestamp(google::protobuf::Timestamp* ts, const pqxx::field& f) {
  if (f.is_null()) return;
  SetTimestamp(ts, TimeFromEpoch(f));
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

void SetDuration(google::protobuf::Duration* d, absl::Duration v) {
  const int64_t ms = absl::ToInt64Milliseconds(v);
  d->set_seconds(ms / 1000);
  d->set_nanos(static_cast<int32_t>((ms % 1000) * 1'000'000));
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

std::vector<std::string> TextArray(const pqxx::field& f) {
  std::vector<std::string> out;
  if (f.is_null()) return out;
  pqxx::array_parser parser = f.as_array();
  for (auto [kind, value] = parser.get_next(); kind != pqxx::array_parser::juncture::done;
       std::tie(kind, value) = parser.get_next()) {
    if (kind == pqxx::array_parser::juncture::string_value) out.push_back(value);
  }
  return out;
}

std::string PgArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

bool ParseJsonInto(const std::string& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(json, message, options).ok();
}

}  // namespace sb::pg
