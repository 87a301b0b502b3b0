#pragma once

// NodeRegistry: the SIP nodes of the platform in Redis, so that any node (or the console) can
// list them, see their load and close out the calls of one that died.
//
// Keys (prefix "sb:"):
//   sip:node:{node_id}   string  the node's SipNode (binary proto), refreshed every heartbeat
//   sip:nodes            zset    node ids scored by their last heartbeat (Unix ms)
//
// A node whose heartbeat is older than `dead_after` is DEAD. CloseNodeCalls ends what such a node
// left behind: each of its calls (found by calls:node:{node_id}) gets the ENDED event with
// NODE_FAILURE and leaves the live state, as if the node had ended it.

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/redis/client.h"
#include "services/sip/call_state.h"
#include "switchboard/sip/v1/sip_service.pb.h"

namespace sb::sip {

class NodeRegistry {
 public:
  struct Options {
    std::string node_id;
    std::string prefix = "sb:";
    absl::Duration heartbeat = absl::Seconds(5);
    absl::Duration dead_after = absl::Seconds(20);
  };
  // `describe` gives the node's current record (calls, registrations, overload); called from the
  // heartbeat thread.
  NodeRegistry(redis::Client& redis, const Clock& clock, Options options,
               std::function<v1::SipNode()> describe);
  // Stops the heartbeat and removes this node's record (a node that stops cleanly is not DEAD).
  ~NodeRegistry();

  // Every node with a record, DEAD ones only when asked; with state from the heartbeat's age.
  absl::StatusOr<std::vector<v1::SipNode>> List(bool include_dead) const;
  // NotFound.
  absl::StatusOr<v1::SipNode> Get(const std::string& node_id) const;
  // Ends the calls of a DEAD node (see above) through `writer`, and forgets the node. Returns
  // how many calls were ended; `ended` gets each (for routing). FailedPrecondition while the
  // node is alive. Idempotent.
  absl::StatusOr<int> CloseNodeCalls(const std::string& node_id, CallStateWriter& writer,
                                     const std::function<void(const v1::ActiveCall&)>& ended);

 private:
  void Run();
  absl::Status Beat();
  std::string NodeKey(const std::string& id) const { return options_.prefix + "sip:node:" + id; }
  std::string IndexKey() const { return options_.prefix + "sip:nodes"; }
  v1::SipNode WithState(v1::SipNode node, int64_t heartbeat_ms) const;

  redis::Client& redis_;
  const Clock& clock_;
  const Options options_;
  std::function<v1::SipNode()> describe_;
  absl::Time started_at_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace sb::sip
