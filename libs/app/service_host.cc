#include "libs/app/service_host.h"

#include "libs/common/check.h"

namespace sb::app {

void ServiceHost::Add(std::string full_name, grpc::Service* service,
                      std::vector<std::string> checks) {
  SB_CHECK(service != nullptr);
  for (const auto& e : services_) SB_CHECK(e.full_name != full_name) << full_name << " twice";
  services_.push_back({std::move(full_name), service, std::move(checks)});
}

void ServiceHost::AddCheck(std::string name, std::function<absl::Status()> check) {
  SB_CHECK(!checks_.contains(name)) << "check " << name << " twice";
  checks_.emplace(std::move(name), std::move(check));
}

}  // namespace sb::app
