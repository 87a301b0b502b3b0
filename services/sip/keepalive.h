#pragma once

// Keepalive: OPTIONS to the contacts registered through this node (RFC 3261 §11), every
// `interval`. It keeps NAT bindings of UDP phones open between their REGISTERs, and records
// whether each contact answers and how fast (Registration.reachable and rtt, in Redis through
// RegistrationStore); ringing leaves out contacts that stopped answering while others answer.
// Any response counts as an answer; only a timeout (408) or a transport failure (503 from our
// own stack, with no answer received) makes a contact unreachable.
//
// Loop thread only, except that the Redis writes go to the worker executor.

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "libs/common/bounded_executor.h"
#include "libs/common/clock.h"
#include "libs/sip/stack.h"
#include "services/sip/registrations.h"

namespace sb::sip {

class Keepalive {
 public:
  struct Options {
    std::string node_id;
    absl::Duration interval = absl::Seconds(30);
  };
  Keepalive(Stack& stack, BoundedExecutor& executor, RegistrationStore& store, const Clock& clock,
            Options options);
  ~Keepalive();
  Keepalive(const Keepalive&) = delete;
  Keepalive& operator=(const Keepalive&) = delete;

  // The bindings of an extension after a REGISTER this node answered (those registered through
  // this node are kept alive; an empty list forgets the extension).
  void Update(const std::string& tenant_id, const std::string& extension,
              const std::vector<v1::Registration>& bindings);
  size_t contacts() const;

 private:
  struct Probe {
    DialogPtr dialog;
    ClientTransactionPtr options;
    bool done = false;
  };
  void Tick();
  void Answered(const v1::Registration& binding, absl::Time sent, const Message& response);

  Stack& stack_;
  BoundedExecutor& executor_;
  RegistrationStore& store_;
  const Clock& clock_;
  const Options options_;
  // "{tenant}/{extension}" -> this node's bindings of it.
  absl::flat_hash_map<std::string, std::vector<v1::Registration>> bindings_;
  std::vector<std::unique_ptr<Probe>> probes_;  // in flight (finished ones go at the next tick)
  std::unique_ptr<Timer> timer_;
};

}  // namespace sb::sip
