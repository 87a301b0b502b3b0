#pragma once

// Redis Streams with consumer groups, as typed calls over a Client: XADD, XGROUP CREATE,
// XREADGROUP, XACK, XAUTOCLAIM and the XPENDING summary (Redis 7 reply formats).
//
// At-least-once consumption, the way reporting reads call events:
//
//   SB_RETURN_IF_ERROR(XGroupCreate(client, "events", "reporting"));       // idempotent
//   // After a restart, first finish what this consumer read but never acked...
//   SB_ASSIGN_OR_RETURN(auto mine, XReadGroup(client, "events", "reporting", me, {.id = "0"}));
//   // ...take over what dead consumers left pending for more than a minute...
//   SB_ASSIGN_OR_RETURN(auto claimed, XAutoClaim(client, "events", "reporting", me,
//                                                absl::Minutes(1)));
//   // ...then read new entries, blocking up to 5 s when there are none.
//   SB_ASSIGN_OR_RETURN(auto fresh, XReadGroup(client, "events", "reporting", me,
//                                              {.count = 100, .block = absl::Seconds(5)}));
//   for (const StreamEntry& e : fresh) {
//     SB_RETURN_IF_ERROR(Handle(e));  // idempotent: an entry can come twice
//     SB_RETURN_IF_ERROR(XAck(client, "events", "reporting", {e.id}).status());
//   }
//
// Status codes: those of Client (Unavailable when Redis is unreachable, ...), plus NotFound when
// the group does not exist (NOGROUP), FailedPrecondition when the key is not a stream
// (WRONGTYPE), InvalidArgument for a negative count or duration, and Internal when a reply has
// an unexpected shape.
//
// Thread-safety: as Client; these functions keep no state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace sb::redis {

using StreamFields = std::vector<std::pair<std::string, std::string>>;

struct StreamEntry {
  std::string id;
  // Field-value pairs in the order they were added. Empty when the entry was deleted from the
  // stream (XDEL, trimming) while it was still pending: XADD never writes an entry without fields.
  StreamFields fields;

  // The value of `field`, or nullptr when the entry has no such field.
  const std::string* Find(std::string_view field) const;

  friend bool operator==(const StreamEntry&, const StreamEntry&) = default;
};

struct XAddOptions {
  std::string id = "*";  // "*": Redis assigns the id
  // When set, MAXLEN ~ n: Redis trims old entries once the stream is well over n, keeping at least
  // n (approximate trimming removes whole internal nodes only, which is cheap).
  std::optional<int64_t> max_len_approx;
};

// XADD; returns the new entry's id. InvalidArgument when `fields` is empty.
absl::StatusOr<std::string> XAdd(Client& client, std::string_view key, const StreamFields& fields,
                                 const XAddOptions& options = {});

// XGROUP CREATE key group start_id MKSTREAM: creates the group, and the stream when missing.
// `start_id` "$" means only entries added from now on, "0" means the whole stream. OK when the
// group already exists (BUSYGROUP).
absl::Status XGroupCreate(Client& client, std::string_view key, std::string_view group,
                          std::string_view start_id = "$");

struct XReadGroupOptions {
  // ">": entries never delivered to this group (marks them pending for this consumer).
  // "0" (or any id): this consumer's own pending entries after that id, i.e. what it read
  // earlier and never acked; these do not wait (BLOCK has no effect on them).
  std::string id = ">";
  int64_t count = 0;                            // 0: no COUNT limit
  absl::Duration block = absl::ZeroDuration();  // 0: return at once when nothing is there
};

// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] STREAMS key id, for one stream. Returns
// no entries when nothing arrived within `block`. A blocking read holds one pooled connection
// while it waits, with a reply timeout of block + command_timeout.
absl::StatusOr<std::vector<StreamEntry>> XReadGroup(Client& client, std::string_view key,
                                                    std::string_view group,
                                                    std::string_view consumer,
                                                    const XReadGroupOptions& options = {});

// XACK; returns how many of `ids` were pending and are now acknowledged.
absl::StatusOr<int64_t> XAck(Client& client, std::string_view key, std::string_view group,
                             const std::vector<std::string>& ids);

struct AutoClaimResult {
  // Where the next XAUTOCLAIM call should start; "0-0" when the whole pending list was scanned.
  std::string next_id;
  // Entries now owned by the claiming consumer (their delivery count was incremented).
  std::vector<StreamEntry> entries;
  // Pending ids whose entries no longer exist in the stream; Redis dropped them from the pending
  // list.
  std::vector<std::string> deleted_ids;
};

// XAUTOCLAIM key group consumer min_idle start COUNT count: transfers to `consumer` the pending
// entries that have been idle (delivered, not acked) for at least `min_idle`.
absl::StatusOr<AutoClaimResult> XAutoClaim(Client& client, std::string_view key,
                                           std::string_view group, std::string_view consumer,
                                           absl::Duration min_idle,
                                           std::string_view start_id = "0-0", int64_t count = 100);

struct PendingSummary {
  int64_t count = 0;   // entries delivered and not yet acked, over all consumers
  std::string min_id;  // smallest and largest pending id; empty when count is 0
  std::string max_id;
  std::vector<std::pair<std::string, int64_t>> consumers;  // consumer name, its pending count
};

// XPENDING key group (the summary form).
absl::StatusOr<PendingSummary> XPending(Client& client, std::string_view key,
                                        std::string_view group);

}  // namespace sb::redis
