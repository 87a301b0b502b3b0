// Seeds a running switchboard (--demo_tenant) for the SIP benchmarks, over gRPC as the demo
// admin, the way tests/e2e/sip_call_test.cc does:
//
//   sip_bench_seed --grpc=127.0.0.1:PORT --password=DEMO_PASSWORD --agents=200
//       --env_out=seed.env --creds_out=creds.txt
//
// - a trunk accepting calls from 127.0.0.1/32, a project (not recorded) and a DID on it;
// - agent1: an agent profile (extension only), the project selected, a SIP credential: every
//   call to the DID rings agent1's extension;
// - --agents more users (bench001...), each with an agent profile and a SIP credential but no
//   project selected (they only register).
//
// Writes shell assignments (SB_BENCH_*) to --env_out and "extension password" lines, agent1's
// first, to --creds_out. Exits non-zero with the failing RPC on stderr.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace {

namespace iv1 = ::switchboard::identity::v1;
namespace ov1 = ::switchboard::org::v1;

constexpr char kDid[] = "+3612345678";

struct Flags {
  std::string grpc = "127.0.0.1:50051";
  std::string password = "Demo-Switchboard-2026";
  int agents = 200;
  std::string env_out = "seed.env";
  std::string creds_out = "creds.txt";
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "sip_bench_seed: " << what << "\n";
  std::exit(1);
}

void Check(const grpc::Status& s, const std::string& rpc) {
  if (!s.ok()) Die(absl::StrCat(rpc, ": ", s.error_code(), " ", s.error_message()));
}

class Seeder {
 public:
  explicit Seeder(const Flags& flags) : flags_(flags) {
    auto channel = grpc::CreateChannel(flags.grpc, grpc::InsecureChannelCredentials());
    identity_ = iv1::IdentityService::NewStub(channel);
    org_ = ov1::OrgService::NewStub(channel);
  }

  void Run() {
    admin_ = Login("admin", /*wait=*/true);
    {
      const std::string token = Login("agent1", false);
      grpc::ClientContext ctx;
      Prepare(ctx, token);
      iv1::GetCurrentUserResponse me;
      Check(identity_->GetCurrentUser(&ctx, {}, &me), "GetCurrentUser");
      agent_id_ = me.user().id();
      tenant_id_ = me.tenant().id();
      domain_ = me.tenant().sip_domain();
    }
    ov1::Trunk trunk;
    {
      ov1::CreateTrunkRequest req;
      auto* t = req.mutable_trunk();
      t->set_name("Bench loopback carrier");
      t->add_inbound_cidrs("127.0.0.1/32");
      t->set_inbound_enabled(true);
      t->set_transport(ov1::TRUNK_TRANSPORT_UDP);
      grpc::ClientContext ctx;
      Prepare(ctx, admin_);
      Check(org_->CreateTrunk(&ctx, req, &trunk), "CreateTrunk");
    }
    ov1::Project project;
    {
      ov1::CreateProjectRequest req;
      req.mutable_project()->set_name("Bench");
      // The SIP benchmark measures signalling with anchored media; recording has its own
      // benchmark (tests/bench/media).
      req.mutable_project()->set_recording_policy(
          ::switchboard::common::v1::RECORDING_POLICY_NEVER);
      grpc::ClientContext ctx;
      Prepare(ctx, admin_);
      Check(org_->CreateProject(&ctx, req, &project), "CreateProject");
    }
    {
      ov1::CreateNumberRequest req;
      req.mutable_number()->set_number(kDid);
      req.mutable_number()->set_description("Bench DID");
      req.mutable_number()->set_project_id(project.id());
      req.mutable_number()->set_trunk_id(trunk.id());
      ov1::Number number;
      grpc::ClientContext ctx;
      Prepare(ctx, admin_);
      Check(org_->CreateNumber(&ctx, req, &number), "CreateNumber");
    }
    const std::string agent_ext = Profile(agent_id_);
    {
      ov1::SetProjectSelectionRequest req;
      req.set_user_id(agent_id_);
      req.set_primary_project_id(project.id());
      ov1::ProjectSelection selection;
      grpc::ClientContext ctx;
      Prepare(ctx, admin_);
      Check(org_->SetProjectSelection(&ctx, req, &selection), "SetProjectSelection");
    }
    std::vector<std::pair<std::string, std::string>> creds;
    creds.emplace_back(agent_ext, Credential(agent_id_, agent_ext));
    for (int i = 1; i <= flags_.agents; ++i) {
      const std::string user_id = CreateUser(absl::StrFormat("bench%03d", i));
      const std::string ext = Profile(user_id);
      creds.emplace_back(ext, Credential(user_id, ext));
    }

    std::ofstream env(flags_.env_out);
    env << "SB_BENCH_TENANT_ID=" << tenant_id_ << "\n"
        << "SB_BENCH_DOMAIN=" << domain_ << "\n"
        << "SB_BENCH_DID='" << kDid << "'\n"
        << "SB_BENCH_AGENT_ID=" << agent_id_ << "\n"
        << "SB_BENCH_AGENT_EXT=" << agent_ext << "\n"
        << "SB_BENCH_AGENT_SIP_PASSWORD='" << creds[0].second << "'\n";
    std::ofstream out(flags_.creds_out);
    for (const auto& [ext, password] : creds) out << ext << " " << password << "\n";
    if (!env || !out) Die("cannot write " + flags_.env_out + " or " + flags_.creds_out);
    std::printf("seeded tenant %s: DID %s rings extension %s; %zu SIP credentials\n",
                tenant_id_.c_str(), kDid, agent_ext.c_str(), creds.size());
  }

 private:
  void Prepare(grpc::ClientContext& ctx, const std::string& token) const {
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }

  std::string Login(const std::string& user, bool wait) {
    iv1::LoginRequest req;
    req.set_tenant_slug("demo");
    req.set_login(user);
    req.set_password(flags_.password);
    iv1::LoginResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, "");
    ctx.set_wait_for_ready(wait);
    Check(identity_->Login(&ctx, req, &resp), "Login " + user);
    if (resp.status() != iv1::LoginResponse::STATUS_OK) Die("Login " + user + ": not STATUS_OK");
    return resp.tokens().access_token();
  }

  std::string CreateUser(const std::string& login) {
    iv1::CreateUserRequest req;
    auto* u = req.mutable_user();
    u->set_first_name("Bench");
    u->set_last_name(login);
    u->set_login_name(login);
    u->set_time_zone("Europe/Budapest");
    u->set_language("en");
    u->add_role_ids("agent");
    req.set_password(flags_.password);
    iv1::User user;
    grpc::ClientContext ctx;
    Prepare(ctx, admin_);
    Check(identity_->CreateUser(&ctx, req, &user), "CreateUser " + login);
    return user.id();
  }

  // An extension-only agent profile; returns the extension org gave it.
  std::string Profile(const std::string& user_id) {
    ov1::CreateAgentProfileRequest req;
    auto* p = req.mutable_profile();
    p->set_user_id(user_id);
    p->set_incoming_call_preference(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
    ov1::AgentProfile profile;
    grpc::ClientContext ctx;
    Prepare(ctx, admin_);
    Check(org_->CreateAgentProfile(&ctx, req, &profile), "CreateAgentProfile");
    if (profile.extension().empty()) Die("CreateAgentProfile: no extension");
    return profile.extension();
  }

  std::string Credential(const std::string& user_id, const std::string& username) {
    iv1::ResetSipCredentialRequest req;
    req.set_user_id(user_id);
    req.set_username(username);
    iv1::ResetSipCredentialResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, admin_);
    Check(identity_->ResetSipCredential(&ctx, req, &resp), "ResetSipCredential");
    return resp.password();
  }

  const Flags flags_;
  std::unique_ptr<iv1::IdentityService::Stub> identity_;
  std::unique_ptr<ov1::OrgService::Stub> org_;
  std::string admin_;
  std::string agent_id_;
  std::string tenant_id_;
  std::string domain_;
};

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (key == "--grpc") {
      flags.grpc = value;
    } else if (key == "--password") {
      flags.password = value;
    } else if (key == "--agents") {
      if (!absl::SimpleAtoi(value, &flags.agents) || flags.agents < 0) Die("--agents: a count");
    } else if (key == "--env_out") {
      flags.env_out = value;
    } else if (key == "--creds_out") {
      flags.creds_out = value;
    } else {
      Die("unknown flag " + arg);
    }
  }
  Seeder(flags).Run();
  return 0;
}
