#pragma once

// NodeRegistry: the SIP nodes of the platform in Redis, so that any node (or the console) can
// list them, see their load and close out the calls of one that died.
//
// Keys (prefix "sb:"):
//   sip:node:{node_id}   string  the node's SipNode (binary proto), refreshed every heartbeat
//   sip:nodes            zset    node ids scored by their last heartbeat (Unix ms)
//
//   sip:closeout:{node_id} string  the live node closing out a DEAD one (a claim that expires)
//
// A node whose heartbeat is older than `dead_after` is DEAD. CloseNodeCalls ends what such a node
// left behind: each of its calls (found by calls:node:{node_id}) gets the ENDED event with
// NODE_FAILURE and leaves the live state, as if the node had ended it. Every live node sweeps for
// DEAD ones every `sweep_interval` and closes out those it claims first, so that no call of a
// crashed node stays "live" (and no agent busy) for longer than dead_after + sweep_interval.
// A node that restarts under the same id closes out its previous life's calls itself
// (CloseLeftovers, before it takes calls).

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
    // Zero: no sweeping (CloseNodeCalls by hand only).
    absl::Duration sweep_interval = absl::Seconds(15);
  };
  // `describe` gives the node's current record (calls, registrations, overload); called from the
  // heartbeat thread. `close_dead` closes out one DEAD node (normally CloseNodeCalls with the
  // node's writer and routing's release); called from the sweeper thread.
  NodeRegistry(redis::Client& redis, const Clock& clock, Options options,
               std::function<v1::SipNode()> describe,
               std::function<absl::StatusOr<int>(const std::string& node_id)> close_dead);
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
  // Ends the calls that a previous process with this node's id left in the live state, like
  // CloseNodeCalls. Only before this process takes calls (they would be ended too).
  static absl::StatusOr<int> CloseLeftovers(
      redis::Client& redis, const Clock& clock, const std::string& prefix,
      const std::string& node_id, CallStateWriter& writer,
      const std::function<void(const v1::ActiveCall&)>& ended);

  // One sweep (what the sweeper thread does every sweep_interval): closes out the DEAD nodes that
  // this node claims. Returns how many nodes it closed out.
  absl::StatusOr<int> Sweep();

 private:
  void Run();
  void RunSweeper();
  absl::Status Beat();
  // The work of CloseNodeCalls, whether or not the node is alive.
  static absl::StatusOr<int> CloseOut(redis::Client& redis, const Clock& clock,
                                      const std::string& prefix, const std::string& by,
                                      const std::string& node_id, CallStateWriter& writer,
                                      const std::function<void(const v1::ActiveCall&)>& ended);
  std::string NodeKey(const std::string& id) const { return NodeKey(options_.prefix, id); }
  std::string IndexKey() const { return IndexKey(options_.prefix); }
  static std::string NodeKey(const std::string& prefix, const std::string& id) {
    return prefix + "sip:node:" + id;
  }
  static std::string IndexKey(const std::string& prefix) { return prefix + "sip:nodes"; }
  v1::SipNode WithState(v1::SipNode node, int64_t heartbeat_ms) const;

  redis::Client& redis_;
  const Clock& clock_;
  const Options options_;
  std::function<v1::SipNode()> describe_;
  std::function<absl::StatusOr<int>(const std::string&)> close_dead_;
  absl::Time started_at_;
  absl::Notification stop_;
  std::thread thread_;
  std::thread sweeper_;
};

}  // namespace sb::sip
