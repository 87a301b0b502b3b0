#pragma once

// ServiceHost collects what modules register for the process's one gRPC server: the gRPC services
// they implement and, for each, the named dependency checks ("pg", "redis") whose success makes the
// service report SERVING on grpc.health.v1.
//
//   host.Add<identity::v1::IdentityService>(service_.get(), {"pg"});
//
// Not thread-safe: modules register from the main thread during start-up.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <grpcpp/impl/codegen/service_type.h>

#include "absl/status/status.h"

namespace sb::app {

class ServiceHost {
 public:
  struct Entry {
    std::string full_name;  // e.g. "switchboard.identity.v1.IdentityService"
    grpc::Service* service;
    std::vector<std::string> checks;  // names of dependency checks
  };

  // Registers a service implementation (owned by the module, outliving the server) under the
  // generated service's full name.
  template <typename GeneratedService>
  void Add(grpc::Service* service, std::vector<std::string> checks) {
    Add(GeneratedService::service_full_name(), service, std::move(checks));
  }
  void Add(std::string full_name, grpc::Service* service, std::vector<std::string> checks);

  // Declares a named dependency check, e.g. "pg" pinging PostgreSQL. The function must return
  // within a few seconds and be thread-safe (the health monitor calls it from its own thread).
  void AddCheck(std::string name, std::function<absl::Status()> check);

  const std::vector<Entry>& services() const { return services_; }
  const std::map<std::string, std::function<absl::Status()>>& checks() const { return checks_; }

 private:
  std::vector<Entry> services_;
  std::map<std::string, std::function<absl::Status()>> checks_;
};

}  // namespace sb::app
