// sb-demo-seed: gives the demo tenant what it needs to take a call on a SIP phone, through the
// same gRPC API an admin would use: a trunk accepting calls from loopback addresses, a project, a
// number (DID) for it, agent1's agent profile (extension only) with the project selected, and a
// fresh SIP password for agent1's extension. Idempotent: what exists is kept (the SIP password is
// issued anew on every run: identity shows a password only once). Prints KEY=value lines for
// .local/run.env.
//
//   sb-demo-seed --grpc_addr=127.0.0.1:50051 --password=Demo-Switchboard-2026

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace iv1 = ::switchboard::identity::v1;
namespace ov1 = ::switchboard::org::v1;

namespace {

constexpr char kDid[] = "+3612345678";
constexpr char kTrunkName[] = "Loopback carrier";
constexpr char kProjectName[] = "Demo line";

[[noreturn]] void Die(const std::string& what, const grpc::Status& s) {
  std::cerr << "sb-demo-seed: " << what << ": " << s.error_message() << " (code " << s.error_code()
            << ")\n";
  std::exit(1);
}

struct Api {
  std::unique_ptr<iv1::IdentityService::Stub> identity;
  std::unique_ptr<ov1::OrgService::Stub> org;
  std::string token;

  std::unique_ptr<grpc::ClientContext> Ctx() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }
};

std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (absl::StartsWith(argv[i], prefix)) return std::string(argv[i]).substr(prefix.size());
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string addr = Flag(argc, argv, "grpc_addr", "127.0.0.1:50051");
  const std::string password = Flag(argc, argv, "password", "Demo-Switchboard-2026");
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  Api api{iv1::IdentityService::NewStub(channel), ov1::OrgService::NewStub(channel), ""};

  auto login = [&](const std::string& user) {
    iv1::LoginRequest req;
    req.set_tenant_slug("demo");
    req.set_login(user);
    req.set_password(password);
    iv1::LoginResponse resp;
    if (auto s = api.identity->Login(api.Ctx().get(), req, &resp); !s.ok()) Die("login " + user, s);
    if (resp.status() != iv1::LoginResponse::STATUS_OK) {
      std::cerr << "sb-demo-seed: login " << user << " did not complete (status " << resp.status()
                << ")\n";
      std::exit(1);
    }
    return resp.tokens().access_token();
  };
  const std::string agent_token = login("agent1");
  iv1::GetCurrentUserResponse me;
  {
    Api as_agent{nullptr, nullptr, agent_token};
    if (auto s = api.identity->GetCurrentUser(as_agent.Ctx().get(), {}, &me); !s.ok()) {
      Die("GetCurrentUser", s);
    }
  }
  api.token = login("admin");

  // Trunk.
  std::string trunk_id;
  {
    ov1::ListTrunksRequest req;
    ov1::ListTrunksResponse resp;
    if (auto s = api.org->ListTrunks(api.Ctx().get(), req, &resp); !s.ok()) Die("ListTrunks", s);
    for (const auto& t : resp.trunks()) {
      if (t.name() == kTrunkName) trunk_id = t.id();
    }
    if (trunk_id.empty()) {
      ov1::CreateTrunkRequest create;
      auto* t = create.mutable_trunk();
      t->set_name(kTrunkName);
      t->set_description(
          "Calls from any loopback address: a SIPp carrier, a softphone's test call");
      t->add_inbound_cidrs("127.0.0.0/8");
      t->set_inbound_enabled(true);
      t->set_outbound_enabled(true);
      t->set_outbound_host("127.0.0.1");
      t->set_outbound_port(5070);
      t->set_transport(ov1::TRUNK_TRANSPORT_UDP);
      t->set_default_outbound(true);
      ov1::Trunk trunk;
      if (auto s = api.org->CreateTrunk(api.Ctx().get(), create, &trunk); !s.ok()) {
        Die("CreateTrunk", s);
      }
      trunk_id = trunk.id();
    }
  }
  // Project.
  std::string project_id;
  {
    ov1::ListProjectsRequest req;
    ov1::ListProjectsResponse resp;
    if (auto s = api.org->ListProjects(api.Ctx().get(), req, &resp); !s.ok()) {
      Die("ListProjects", s);
    }
    for (const auto& p : resp.projects()) {
      if (p.name() == kProjectName) project_id = p.id();
    }
    if (project_id.empty()) {
      ov1::CreateProjectRequest create;
      create.mutable_project()->set_name(kProjectName);
      create.mutable_project()->set_description("The demo number's calls");
      ov1::Project project;
      if (auto s = api.org->CreateProject(api.Ctx().get(), create, &project); !s.ok()) {
        Die("CreateProject", s);
      }
      project_id = project.id();
    }
  }
  // Number.
  {
    ov1::ListNumbersRequest req;
    req.set_query(kDid);
    ov1::ListNumbersResponse resp;
    if (auto s = api.org->ListNumbers(api.Ctx().get(), req, &resp); !s.ok()) Die("ListNumbers", s);
    bool found = false;
    for (const auto& n : resp.numbers()) found = found || n.number() == kDid;
    if (!found) {
      ov1::CreateNumberRequest create;
      create.mutable_number()->set_number(kDid);
      create.mutable_number()->set_description("Demo line");
      create.mutable_number()->set_project_id(project_id);
      create.mutable_number()->set_trunk_id(trunk_id);
      ov1::Number number;
      if (auto s = api.org->CreateNumber(api.Ctx().get(), create, &number); !s.ok()) {
        Die("CreateNumber", s);
      }
    }
  }
  // agent1's profile and project selection.
  std::string extension;
  {
    ov1::GetAgentProfileRequest req;
    req.set_user_id(me.user().id());
    ov1::AgentProfile profile;
    grpc::Status s = api.org->GetAgentProfile(api.Ctx().get(), req, &profile);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
      ov1::CreateAgentProfileRequest create;
      create.mutable_profile()->set_user_id(me.user().id());
      create.mutable_profile()->set_incoming_call_preference(
          ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
      s = api.org->CreateAgentProfile(api.Ctx().get(), create, &profile);
    }
    if (!s.ok()) Die("agent1's agent profile", s);
    extension = profile.extension();
    ov1::SetProjectSelectionRequest select;
    select.set_user_id(me.user().id());
    select.set_primary_project_id(project_id);
    ov1::ProjectSelection selection;
    if (auto st = api.org->SetProjectSelection(api.Ctx().get(), select, &selection); !st.ok()) {
      Die("SetProjectSelection", st);
    }
  }
  // A fresh SIP password for the extension.
  iv1::ResetSipCredentialRequest reset;
  reset.set_user_id(me.user().id());
  reset.set_username(extension);
  iv1::ResetSipCredentialResponse credential;
  if (auto s = api.identity->ResetSipCredential(api.Ctx().get(), reset, &credential); !s.ok()) {
    Die("ResetSipCredential", s);
  }
  std::cout << "SB_DEMO_SIP_DOMAIN=" << me.tenant().sip_domain() << "\n"
            << "SB_DEMO_DID=" << kDid << "\n"
            << "SB_DEMO_AGENT_EXT=" << extension << "\n"
            << "SB_DEMO_AGENT_SIP_PASSWORD=" << credential.password() << "\n";
  return 0;
}
