#include "cmd/switchboard/modules.h"

#include "libs/app/infra_modules.h"
#include "services/gateway/gateway_module.h"
#include "services/identity/identity_module.h"
#include "services/media/media_module.h"
#include "services/org/org_module.h"
#include "services/reporting/reporting_module.h"
#include "services/routing/routing_module.h"
#include "services/sip/sip_module.h"

namespace sb {

std::vector<app::ModuleSpec> AllModules() {
  return {
      app::PgModule(),  app::RedisModule(),           identity::IdentityModule(),
      org::OrgModule(), routing::RoutingModule(),     media::MediaModule(),
      sip::SipModule(), reporting::ReportingModule(), gateway::GatewayModule(),
  };
}

}  // namespace sb
