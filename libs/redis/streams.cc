#include "libs/redis/streams.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace sb::redis {
namespace {

absl::Status Malformed(std::string_view command, const Reply& reply) {
  return absl::InternalError(
      absl::StrCat("redis ", std::string(command), ": unexpected reply ", reply.DebugString()));
}

// Milliseconds for BLOCK / min-idle-time, rounded up so that a positive duration never turns
// into 0 (which for BLOCK would mean "forever").
int64_t CeilMilliseconds(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return d > absl::Milliseconds(ms) ? ms + 1 : ms;
}

// [id, [field, value, ...]] or, for an entry deleted while pending, [id, nil].
absl::StatusOr<StreamEntry> ParseEntry(std::string_view command, const Reply& reply) {
  if (!reply.is_array() || reply.elements().size() != 2 || !reply.elements()[0].is_string()) {
    return Malformed(command, reply);
  }
  StreamEntry entry;
  entry.id = reply.elements()[0].str();
  const Reply& fields = reply.elements()[1];
  if (fields.is_nil()) return entry;
  if (!fields.is_array() || fields.elements().size() % 2 != 0) return Malformed(command, reply);
  const auto& items = fields.elements();
  entry.fields.reserve(items.size() / 2);
  for (size_t i = 0; i < items.size(); i += 2) {
    if (!items[i].is_string() || !items[i + 1].is_string()) return Malformed(command, reply);
    entry.fields.emplace_back(items[i].str(), items[i + 1].str());
  }
  return entry;
}

absl::StatusOr<std::vector<StreamEntry>> ParseEntries(std::string_view command,
                                                      const Reply& reply) {
  if (!reply.is_array()) return Malformed(command, reply);
  std::vector<StreamEntry> entries;
  entries.reserve(reply.elements().size());
  for (const Reply& element : reply.elements()) {
    SB_ASSIGN_OR_RETURN(StreamEntry entry, ParseEntry(command, element));
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

const std::string* StreamEntry::Find(std::string_view field) const {
  const auto it = std::find_if(fields.begin(), fields.end(),
                               [&](const auto& pair) { return pair.first == field; });
  return it == fields.end() ? nullptr : &it->second;
}

absl::StatusOr<std::string> XAdd(Client& client, std::string_view key, const StreamFields& fields,
                                 const XAddOptions& options) {
  if (fields.empty()) return absl::InvalidArgumentError("XADD needs at least one field");
  std::vector<std::string> command = {"XADD", std::string(key)};
  if (options.max_len_approx) {
    if (*options.max_len_approx < 0) {
      return absl::InvalidArgumentError("XADD max_len_approx must not be negative");
    }
    command.insert(command.end(), {"MAXLEN", "~", std::to_string(*options.max_len_approx)});
  }
  command.push_back(options.id);
  for (const auto& [field, value] : fields) {
    command.push_back(field);
    command.push_back(value);
  }
  SB_ASSIGN_OR_RETURN(Reply reply, client.Command(command));
  if (!reply.is_string()) return Malformed("XADD", reply);
  return reply.str();
}

absl::Status XGroupCreate(Client& client, std::string_view key, std::string_view group,
                          std::string_view start_id) {
  auto reply = client.Command({"XGROUP", "CREATE", std::string(key), std::string(group),
                               std::string(start_id), "MKSTREAM"});
  if (absl::IsAlreadyExists(reply.status())) return absl::OkStatus();  // BUSYGROUP
  return reply.status();
}

absl::StatusOr<std::vector<StreamEntry>> XReadGroup(Client& client, std::string_view key,
                                                    std::string_view group,
                                                    std::string_view consumer,
                                                    const XReadGroupOptions& options) {
  if (options.count < 0) return absl::InvalidArgumentError("XREADGROUP count must not be negative");
  if (options.block < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("XREADGROUP block must not be negative");
  }
  std::vector<std::string> command = {"XREADGROUP", "GROUP", std::string(group),
                                      std::string(consumer)};
  if (options.count > 0) command.insert(command.end(), {"COUNT", std::to_string(options.count)});
  const bool blocking = options.block > absl::ZeroDuration();
  if (blocking) {
    command.insert(command.end(), {"BLOCK", std::to_string(CeilMilliseconds(options.block))});
  }
  command.insert(command.end(), {"STREAMS", std::string(key), options.id});

  SB_ASSIGN_OR_RETURN(Reply reply, blocking ? client.BlockingCommand(command, options.block)
                                            : client.Command(command));
  // nil: nothing arrived (within the block time). Otherwise [[key, [entry, ...]]].
  if (reply.is_nil()) return std::vector<StreamEntry>();
  if (!reply.is_array() || reply.elements().size() != 1) return Malformed("XREADGROUP", reply);
  const Reply& stream = reply.elements()[0];
  if (!stream.is_array() || stream.elements().size() != 2) return Malformed("XREADGROUP", reply);
  return ParseEntries("XREADGROUP", stream.elements()[1]);
}

absl::StatusOr<int64_t> XAck(Client& client, std::string_view key, std::string_view group,
                             const std::vector<std::string>& ids) {
  if (ids.empty()) return 0;
  std::vector<std::string> command = {"XACK", std::string(key), std::string(group)};
  command.insert(command.end(), ids.begin(), ids.end());
  SB_ASSIGN_OR_RETURN(Reply reply, client.Command(command));
  return reply.AsInteger();
}

absl::StatusOr<AutoClaimResult> XAutoClaim(Client& client, std::string_view key,
                                           std::string_view group, std::string_view consumer,
                                           absl::Duration min_idle, std::string_view start_id,
                                           int64_t count) {
  if (min_idle < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("XAUTOCLAIM min_idle must not be negative");
  }
  if (count < 1) return absl::InvalidArgumentError("XAUTOCLAIM count must be at least 1");
  SB_ASSIGN_OR_RETURN(
      Reply reply,
      client.Command({"XAUTOCLAIM", std::string(key), std::string(group), std::string(consumer),
                      std::to_string(CeilMilliseconds(min_idle)), std::string(start_id), "COUNT",
                      std::to_string(count)}));
  // Redis 7: [next start id, [entry, ...], [deleted id, ...]].
  if (!reply.is_array() || reply.elements().size() != 3 || !reply.elements()[0].is_string() ||
      !reply.elements()[2].is_array()) {
    return Malformed("XAUTOCLAIM", reply);
  }
  AutoClaimResult result;
  result.next_id = reply.elements()[0].str();
  SB_ASSIGN_OR_RETURN(result.entries, ParseEntries("XAUTOCLAIM", reply.elements()[1]));
  for (const Reply& id : reply.elements()[2].elements()) {
    if (!id.is_string()) return Malformed("XAUTOCLAIM", reply);
    result.deleted_ids.push_back(id.str());
  }
  return result;
}

absl::StatusOr<PendingSummary> XPending(Client& client, std::string_view key,
                                        std::string_view group) {
  SB_ASSIGN_OR_RETURN(Reply reply,
                      client.Command({"XPENDING", std::string(key), std::string(group)}));
  // [count, min id | nil, max id | nil, [[consumer, "n"], ...] | nil]
  if (!reply.is_array() || reply.elements().size() != 4 || !reply.elements()[0].is_integer()) {
    return Malformed("XPENDING", reply);
  }
  const auto& parts = reply.elements();
  PendingSummary summary;
  summary.count = parts[0].integer();
  if (parts[1].is_string()) summary.min_id = parts[1].str();
  if (parts[2].is_string()) summary.max_id = parts[2].str();
  if (parts[3].is_array()) {
    for (const Reply& consumer : parts[3].elements()) {
      int64_t n = 0;
      if (!consumer.is_array() || consumer.elements().size() != 2 ||
          !consumer.elements()[0].is_string() || !consumer.elements()[1].is_string() ||
          !absl::SimpleAtoi(consumer.elements()[1].str(), &n)) {
        return Malformed("XPENDING", reply);
      }
      summary.consumers.emplace_back(consumer.elements()[0].str(), n);
    }
  }
  return summary;
}

}  // namespace sb::redis
