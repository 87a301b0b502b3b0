#include "libs/redis/reply.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/check.h"

namespace sb::redis {
namespace {

constexpr size_t kDebugStringMax = 64;

std::string Truncated(const std::string& text) {
  if (text.size() <= kDebugStringMax) return text;
  return absl::StrCat(text.substr(0, kDebugStringMax), "...(", text.size(), " bytes)");
}

}  // namespace

Reply Reply::Integer(int64_t value) {
  Reply reply;
  reply.type_ = Type::kInteger;
  reply.integer_ = value;
  return reply;
}

Reply Reply::String(std::string value) {
  Reply reply;
  reply.type_ = Type::kString;
  reply.str_ = std::move(value);
  return reply;
}

Reply Reply::Status(std::string value) {
  Reply reply;
  reply.type_ = Type::kStatus;
  reply.str_ = std::move(value);
  return reply;
}

Reply Reply::Array(std::vector<Reply> elements) {
  Reply reply;
  reply.type_ = Type::kArray;
  reply.elements_ = std::move(elements);
  return reply;
}

Reply Reply::Error(std::string message) {
  Reply reply;
  reply.type_ = Type::kError;
  reply.str_ = std::move(message);
  return reply;
}

int64_t Reply::integer() const {
  SB_CHECK(type_ == Type::kInteger) << "Reply::integer() on " << ReplyTypeName(type_);
  return integer_;
}

const std::string& Reply::str() const {
  SB_CHECK(type_ == Type::kString || type_ == Type::kStatus || type_ == Type::kError)
      << "Reply::str() on " << ReplyTypeName(type_);
  return str_;
}

const std::vector<Reply>& Reply::elements() const {
  SB_CHECK(type_ == Type::kArray) << "Reply::elements() on " << ReplyTypeName(type_);
  return elements_;
}

absl::StatusOr<int64_t> Reply::AsInteger() const {
  if (type_ != Type::kInteger) {
    return absl::InternalError(
        absl::StrCat("redis: expected an integer reply, got ", DebugString()));
  }
  return integer_;
}

absl::StatusOr<std::string> Reply::AsString() const {
  if (type_ != Type::kString && type_ != Type::kStatus) {
    return absl::InternalError(absl::StrCat("redis: expected a string reply, got ", DebugString()));
  }
  return str_;
}

absl::Status Reply::ToStatus() const {
  if (type_ != Type::kError) return absl::OkStatus();
  return ErrorReplyToStatus(str_);
}

std::string Reply::DebugString() const {
  switch (type_) {
    case Type::kNil:
      return "(nil)";
    case Type::kInteger:
      return absl::StrCat("(integer) ", integer_);
    case Type::kString:
      return absl::StrCat("\"", Truncated(str_), "\"");
    case Type::kStatus:
      return absl::StrCat("(status) ", Truncated(str_));
    case Type::kError:
      return absl::StrCat("(error) ", Truncated(str_));
    case Type::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < elements_.size(); ++i) {
        if (i > 0) out += ", ";
        if (i == 8) {
          absl::StrAppend(&out, "...(", elements_.size(), " elements)");
          break;
        }
        out += elements_[i].DebugString();
      }
      out += "]";
      return out;
    }
  }
  return "(unknown)";
}

absl::Status ErrorReplyToStatus(std::string_view message) {
  const std::string_view code = message.substr(0, message.find(' '));
  std::string text = absl::StrCat("redis: ", std::string(message));
  if (code == "WRONGTYPE") return absl::FailedPreconditionError(std::move(text));
  if (code == "NOSCRIPT" || code == "NOGROUP") return absl::NotFoundError(std::move(text));
  if (code == "BUSYGROUP") return absl::AlreadyExistsError(std::move(text));
  if (code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "TRYAGAIN" ||
      code == "CLUSTERDOWN" || code == "READONLY" || code == "MISCONF") {
    return absl::UnavailableError(std::move(text));
  }
  if (code == "OOM") return absl::ResourceExhaustedError(std::move(text));
  if (code == "NOAUTH" || code == "WRONGPASS") return absl::UnauthenticatedError(std::move(text));
  if (code == "NOPERM") return absl::PermissionDeniedError(std::move(text));
  return absl::InternalError(std::move(text));
}

std::string_view ReplyTypeName(Reply::Type type) {
  switch (type) {
    case Reply::Type::kNil:
      return "nil";
    case Reply::Type::kInteger:
      return "integer";
    case Reply::Type::kString:
      return "string";
    case Reply::Type::kStatus:
      return "status";
    case Reply::Type::kArray:
      return "array";
    case Reply::Type::kError:
      return "error";
  }
  return "unknown";
}

}  // namespace sb::redis
