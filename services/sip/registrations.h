#pragma once

// RegistrationStore: the registrar's bindings (address of record -> contacts) in Redis, so that
// any SIP node can find where to ring any agent. One hash per AOR holds each binding as a
// serialized switchboard.sip.v1.Registration, a twin hash its expiry; both expire with the last
// binding. An update (add, refresh, remove, "*") is one Lua script, so concurrent REGISTERs of
// one extension (two phones, two nodes) never lose a binding. Expired bindings are dropped by
// every update and skipped by every lookup.
//
// Keys (prefix "sb:sip:"):
//   reg:{tenant}:{extension}       hash  binding key -> Registration (binary proto)
//   reg:{tenant}:{extension}:exp   hash  binding key -> expiry, Unix ms
//   reg:{tenant}:{extension}:reach hash  binding key -> "reachable rtt_us", the last keepalive's
//                                        answer (a new REGISTER of the binding clears it)
//   regs:{tenant}                  set   extensions with bindings (for ListRegistrations)
// The binding key is the RFC 5626 +sip.instance when the phone sends one (so a rebooted phone
// replaces its old contact), else the contact URI.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"
#include "switchboard/sip/v1/sip_service.pb.h"

namespace sb::sip {

namespace v1 = ::switchboard::sip::v1;

class RegistrationStore {
 public:
  explicit RegistrationStore(redis::Client& redis, std::string prefix = "sb:sip:")
      : redis_(redis), prefix_(std::move(prefix)) {}

  struct Change {
    // Bindings to add or refresh (expires_at in the future).
    std::vector<v1::Registration> upserts;
    // Binding keys (see BindingKey) to remove.
    std::vector<std::string> removals;
    // "Contact: *": remove every binding first.
    bool remove_all = false;
  };
  // Applies `change` atomically and returns the bindings in force afterwards.
  absl::StatusOr<std::vector<v1::Registration>> Apply(const std::string& tenant_id,
                                                      const std::string& extension,
                                                      const Change& change, absl::Time now);
  // The bindings of one extension in force at `now`.
  absl::StatusOr<std::vector<v1::Registration>> Lookup(const std::string& tenant_id,
                                                       const std::string& extension,
                                                       absl::Time now);
  // Records a keepalive's answer for one binding; nothing when the binding is gone meanwhile.
  absl::Status SetReachability(const std::string& tenant_id, const std::string& extension,
                               const std::string& binding_key, bool reachable, absl::Duration rtt);
  // Extensions of a tenant that have bindings (possibly expired ones, until the next update).
  absl::StatusOr<std::vector<std::string>> Extensions(const std::string& tenant_id);

  static std::string BindingKey(const v1::Registration& registration);

 private:
  std::string AorKey(const std::string& tenant_id, const std::string& extension) const;
  std::vector<v1::Registration> Decode(const redis::Reply& reply) const;

  redis::Client& redis_;
  const std::string prefix_;
};

// Where to send requests for a binding ("" for its Contact as it is). A phone behind NAT registers
// a Contact with its private address, which we cannot reach: send to the address its REGISTER came
// from instead (what Kamailio's fix_nated_register does). Over TCP/TLS the phone's connection is
// the only way in. A Contact whose host is the source address, or a routable one, is used as it is
// (a phone with a public address, or another UA registering on its behalf).
std::string NextHop(const v1::Registration& registration);

}  // namespace sb::sip
