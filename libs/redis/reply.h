#pragma once

// Reply: one Redis reply (RESP2) as a value that owns its data. Nothing of hiredis escapes
// libs/redis; a Reply can be copied, moved and kept after its connection is gone.
//
//   SB_ASSIGN_OR_RETURN(Reply reply, client.Command({"LRANGE", key, "0", "-1"}));
//   if (!reply.is_array()) return absl::InternalError("LRANGE: " + reply.DebugString());
//   for (const Reply& element : reply.elements()) Use(element.str());
//
// The plain accessors (integer(), str(), elements()) require the matching type and abort
// otherwise: check type() first. AsInteger()/AsString() check for you and return Internal on a
// reply of an unexpected shape (a bug in the caller's expectation or in a script).
//
// ErrorReplyToStatus maps a Redis error reply ("-WRONGTYPE ...") to an absl::Status by its first
// word (the error code); the Status message keeps Redis' whole text:
//   WRONGTYPE                                   -> FailedPrecondition (key holds another type)
//   NOSCRIPT, NOGROUP                           -> NotFound
//   BUSYGROUP                                   -> AlreadyExists
//   LOADING, BUSY, MASTERDOWN, TRYAGAIN,
//   CLUSTERDOWN, READONLY, MISCONF              -> Unavailable (retry later, with backoff)
//   OOM                                         -> ResourceExhausted
//   NOAUTH, WRONGPASS                           -> Unauthenticated (wrong credentials in the URL)
//   NOPERM                                      -> PermissionDenied (ACL)
//   ERR, EXECABORT and any other code           -> Internal
// Generic ERR is Internal, not InvalidArgument: Switchboard builds every command and script
// itself, so a command Redis rejects (unknown command, wrong arity, syntax, "value is not an
// integer", a Lua runtime error or a script's own error_reply) is a bug, not a user's bad input.
// Callers that expect a particular error (a script's "-NOAGENT" code) test the message prefix.
//
// Thread-safety: a value type; const methods may be called concurrently.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sb::redis {

class Reply {
 public:
  enum class Type { kNil, kInteger, kString, kStatus, kArray, kError };

  // A nil reply (also what a default-constructed Reply is).
  Reply() = default;
  static Reply Nil() { return Reply(); }
  static Reply Integer(int64_t value);
  // A bulk string; binary-safe.
  static Reply String(std::string value);
  // A simple-string status such as "OK" or "PONG".
  static Reply Status(std::string value);
  static Reply Array(std::vector<Reply> elements);
  // An error reply; `message` is Redis' text without the leading '-', e.g. "WRONGTYPE ...".
  static Reply Error(std::string message);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }
  bool is_integer() const { return type_ == Type::kInteger; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_status() const { return type_ == Type::kStatus; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_error() const { return type_ == Type::kError; }

  // Requires is_integer().
  int64_t integer() const;
  // The text of a string, status or error reply. Requires one of those types.
  const std::string& str() const;
  // Requires is_array().
  const std::vector<Reply>& elements() const;

  // The integer of an integer reply, or Internal.
  absl::StatusOr<int64_t> AsInteger() const;
  // The text of a string or status reply, or Internal.
  absl::StatusOr<std::string> AsString() const;
  // For an error reply, its mapped Status (see above); OK for every other type.
  absl::Status ToStatus() const;

  // A short human-readable rendering for logs and test failures (strings truncated).
  std::string DebugString() const;

  friend bool operator==(const Reply&, const Reply&) = default;

 private:
  Type type_ = Type::kNil;
  int64_t integer_ = 0;
  std::string str_;
  std::vector<Reply> elements_;
};

// Maps the text of a Redis error reply (without the leading '-') to a Status; see the table above.
absl::Status ErrorReplyToStatus(std::string_view message);

// The name of a reply type, for messages: "nil", "integer", "string", "status", "array", "error".
std::string_view ReplyTypeName(Reply::Type type);

}  // namespace sb::redis
