#pragma once

// SipServer: one SIP stack (loop thread + transports) with the registrar and the B2BUA on it, a
// bounded worker pool for their blocking lookups, and the writer of live call state. Requests
// outside any dialog are dispatched by method here; in-dialog ones go to the call they belong to.

#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "libs/common/bounded_executor.h"
#include "libs/common/clock.h"
#include "libs/redis/client.h"
#include "libs/sip/digest.h"
#include "libs/sip/stack.h"
#include "services/sip/b2bua.h"
#include "services/sip/call_state.h"
#include "services/sip/keepalive.h"
#include "services/sip/nodes.h"
#include "services/sip/peers.h"
#include "services/sip/registrar.h"
#include "services/sip/registrations.h"

namespace sb::sip {

struct SipServerOptions {
  StackOptions stack;
  std::string node_id = "sip-0";
  Registrar::Options registrar;
  AuthThrottle::Options throttle;
  CallManagerOptions calls;
  int worker_threads = 8;
  size_t worker_queue = 4096;
  // Shared by every SIP node so a nonce minted by one is good at the others; empty: per process.
  std::string nonce_secret;
  std::string redis_prefix = "sb:";
  // OPTIONS to the contacts registered through this node (Keepalive); zero: none.
  absl::Duration keepalive_interval = absl::Seconds(30);
  // The node's heartbeat in Redis (NodeRegistry).
  absl::Duration heartbeat = absl::Seconds(5);
  absl::Duration node_dead_after = absl::Seconds(20);
  // How often this node looks for dead nodes to close out (NodeRegistry); zero: never.
  absl::Duration dead_node_sweep = absl::Seconds(15);
};

class SipServer {
 public:
  static absl::StatusOr<std::unique_ptr<SipServer>> Start(SipServerOptions options, SipPeers& peers,
                                                          redis::Client& redis, const Clock& clock);
  ~SipServer();
  // Ends the calls in progress, stops taking requests and closes the transports. Idempotent.
  void Stop();

  // Ends a call of this node (from any thread; waits for the loop). NotFound, Unavailable.
  absl::Status Hangup(const std::string& call_id, cv1::HangupCause cause);
  // Closes out the calls of a DEAD node (NodeRegistry::CloseNodeCalls) and tells routing of
  // each, so that its agents are released. Returns how many were closed.
  absl::StatusOr<int> CloseDeadNode(const std::string& node_id);
  // Runs `fn` with the call manager on the loop and returns its answer (from any thread; waits
  // up to 5 s for the loop). Unavailable while shutting down or when the loop does not answer.
  template <typename T>
  absl::StatusOr<T> WithCalls(std::function<absl::StatusOr<T>(CallManager&)> fn) {
    struct Result {
      absl::Notification done;
      absl::StatusOr<T> value = absl::UnavailableError("SIP is shutting down");
    };
    auto result = std::make_shared<Result>();
    stack_->Post([this, result, fn = std::move(fn)] {
      if (calls_ != nullptr) result->value = fn(*calls_);
      result->done.Notify();
    });
    if (!result->done.WaitForNotificationWithTimeout(absl::Seconds(5))) {
      return absl::UnavailableError("the SIP loop did not answer in 5 s");
    }
    return std::move(result->value);
  }

  Stack& stack() { return *stack_; }
  SipPeers& peers() { return peers_; }
  NodeRegistry& nodes() { return *nodes_; }
  CallStateWriter& state() { return *state_; }
  RegistrationStore& registrations() { return *registrations_; }
  const SipServerOptions& options() const { return options_; }

 private:
  SipServer(SipServerOptions options, SipPeers& peers, redis::Client& redis, const Clock& clock,
            digest::NonceMinter nonces);
  void OnRequest(ServerTransactionPtr tx);
  void OnRegister(ServerTransactionPtr tx);
  void Answer(uint64_t pending_id, SipAnswer answer);
  // Routing hears that `call` ended with NODE_FAILURE (best effort: a failure is logged).
  void ReportClosedOut(const v1::ActiveCall& call);

  const SipServerOptions options_;
  SipPeers& peers_;
  const Clock& clock_;
  digest::NonceMinter nonces_;
  digest::NonceCounter counter_;
  AuthThrottle throttle_;
  std::unique_ptr<RegistrationStore> registrations_;
  std::unique_ptr<CallStateWriter> state_;
  std::unique_ptr<Registrar> registrar_;
  std::unique_ptr<BoundedExecutor> executor_;
  std::unique_ptr<CallManager> calls_;  // loop thread; null until the server takes calls
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<NodeRegistry> nodes_;
  std::unique_ptr<Keepalive> keepalive_;  // loop thread
  // Transactions waiting for a worker's answer, by id (workers never hold loop objects).
  absl::flat_hash_map<uint64_t, ServerTransactionPtr> pending_;
  uint64_t next_pending_ = 1;
  bool stopped_ = false;
};

}  // namespace sb::sip
