// SIP end to end: the real switchboard binary (identity, org, routing, sip), SIPp as the carrier
// and as the agent's phone, all on loopback. Each test checks what SIP said, the live state in
// Redis and the events the call produced.

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sndfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/common/ids.h"
#include "libs/redis/client.h"
#include "libs/sip/digest.h"
#include "libs/sip/stack.h"
#include "services/media/g711.h"
#include "switchboard/common/v1/events.pb.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/media/v1/media_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"
#include "switchboard/sip/v1/sip_service.grpc.pb.h"
#include "tests/e2e/switchboard_process.h"
#include "tests/support/udp_party.h"

namespace sb::e2e {
namespace {

namespace iv1 = ::switchboard::identity::v1;
namespace ov1 = ::switchboard::org::v1;
namespace cv1 = ::switchboard::common::v1;
namespace sv1 = ::switchboard::sip::v1;

constexpr char kDid[] = "+3612345678";
constexpr char kDomain[] = "demo.sip.localhost";
constexpr char kPassword[] = "Demo-Switchboard-2026";

std::string Scenario(const std::string& name) { return absl::StrCat(SB_SIPP_DIR, "/", name); }

// A SIPp run pinned to loopback (signalling and media), bounded in calls and time.
std::vector<std::string> SippArgs(const std::string& scenario, int local_port, int remote_port,
                                  const std::map<std::string, std::string>& vars,
                                  std::vector<std::string> extra = {},
                                  const std::string& local_ip = "127.0.0.1") {
  std::vector<std::string> argv = {"sipp",
                                   "-sf",
                                   Scenario(scenario),
                                   "-i",
                                   local_ip,
                                   "-mi",
                                   local_ip,
                                   "-p",
                                   std::to_string(local_port),
                                   "-m",
                                   "1",
                                   "-timeout",
                                   "20s",
                                   "-timeout_error",
                                   "-nostdin"};
  for (const auto& [k, v] : vars) {
    argv.push_back("-set");
    argv.push_back(k);
    argv.push_back(v);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(absl::StrCat("127.0.0.1:", remote_port));
  return argv;
}

// The value of `name="..."` (or name=token) in a challenge.
std::string ChallengeParam(const std::string& challenge, const std::string& name) {
  const std::string key = name + "=";
  size_t pos = challenge.find(key);
  if (pos == std::string::npos) return {};
  pos += key.size();
  if (pos < challenge.size() && challenge[pos] == '"') {
    const size_t end = challenge.find('"', pos + 1);
    return challenge.substr(pos + 1, end - pos - 1);
  }
  const size_t end = challenge.find_first_of(", ", pos);
  return challenge.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

// The Authorization value answering a SHA-256 `challenge` (qop=auth, nc 1).
std::string Sha256Answer(const std::string& challenge, const std::string& user,
                         const std::string& password, const std::string& method,
                         const std::string& uri, const std::string& cnonce) {
  namespace digest = ::sb::sip::digest;
  const std::string realm = ChallengeParam(challenge, "realm");
  const std::string nonce = ChallengeParam(challenge, "nonce");
  const std::string ha1 = digest::ComputeHa1(digest::Algorithm::kSha256, user, realm, password);
  const std::string reply = digest::ComputeResponse(digest::Algorithm::kSha256, ha1, method, uri,
                                                    nonce, "00000001", cnonce, "auth");
  return absl::StrCat("Digest username=\"", user, "\", realm=\"", realm, "\", nonce=\"", nonce,
                      "\", uri=\"", uri, "\", response=\"", reply,
                      "\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"", cnonce, "\"");
}

// A phone that registers with SHA-256 digest (SIPp 3.6 only answers MD5 challenges, and the
// registrar offers SHA-256 first, as RFC 8760 asks): REGISTER, answer each 401 with `password`,
// up to `attempts` answers. Returns every final status in order.
std::vector<int> RegisterSha256(int server_port, const std::string& user,
                                const std::string& password, const std::string& contact,
                                int expires, int attempts = 1) {
  namespace sip = ::sb::sip;
  auto stack = sip::Stack::Start({.port = testing::FreeTcpUdpPort()},
                                 [](sip::ServerTransactionPtr tx) { tx->Reply(481); });
  REQUIRE(stack.ok());
  std::vector<int> statuses;
  absl::Notification done;
  sip::DialogPtr dialog;
  std::vector<sip::ClientTransactionPtr> sent;
  const std::string aor = absl::StrCat("<sip:", user, "@", kDomain, ">");
  const std::string uri = absl::StrCat("sip:", kDomain);
  const std::string hop = absl::StrCat("sip:127.0.0.1:", server_port);
  std::function<void(const std::string&)> send;
  int answers = 0;
  auto on_response = [&](const sip::Message& response) {
    if (response.status() < 200) return;
    statuses.push_back(response.status());
    if (response.status() == 401 && answers < attempts) {
      std::string challenge;
      for (const std::string& c : response.headers("WWW-Authenticate")) {
        if (absl::StrContains(c, "SHA-256")) challenge = c;
      }
      const std::string cnonce = "e2e" + std::to_string(answers);
      ++answers;
      send(Sha256Answer(challenge, user, password, "REGISTER", uri, cnonce));
      return;
    }
    done.Notify();
  };
  send = [&](const std::string& authorization) {
    std::vector<sip::Header> headers = {{"Expires", std::to_string(expires)}};
    if (!authorization.empty()) headers.push_back({"Authorization", authorization});
    auto tx = dialog->Send({.method = "REGISTER",
                            .request_uri = uri,
                            .next_hop = hop,
                            .headers = headers,
                            .contact = "<" + contact + ">"},
                           on_response);
    REQUIRE(tx.ok());
    sent.push_back(*tx);
  };
  (*stack)->Post([&] {
    auto d = sip::Dialog::Create(**stack, {.from = aor, .to = aor}, nullptr);
    REQUIRE(d.ok());
    dialog = *d;
    send("");
  });
  CHECK(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  (*stack)->Stop([&] {
    sent.clear();
    dialog.reset();
  });
  return statuses;
}

constexpr char kPhoneSdp[] =
    "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

// An agent's phone dialling `dialled` in the tenant's domain on `dialog` (loop thread): INVITE,
// the 407 challenge answered with SHA-256 digest (as RegisterSha256), the answer ACKed. Every
// final status goes to `statuses` (e.g. {407, 200}); `on_final` gets the last one.
void DialFromPhone(::sb::sip::Stack& stack, const ::sb::sip::DialogPtr& dialog, int server_port,
                   const std::string& user, const std::string& password, const std::string& dialled,
                   std::vector<::sb::sip::ClientTransactionPtr>& sent, std::vector<int>& statuses,
                   std::function<void(const ::sb::sip::Message&)> on_final) {
  namespace sip = ::sb::sip;
  const std::string uri = absl::StrCat("sip:", dialled, "@", kDomain);
  const std::string hop = absl::StrCat("sip:127.0.0.1:", server_port);
  auto state = std::make_shared<std::pair<bool, bool>>(false, false);  // challenged, answered
  auto invite = std::make_shared<std::function<void(const std::string&)>>();
  *invite = [&stack, dialog, uri, hop, &sent, &statuses, user, password, state, invite,
             on_final](const std::string& authorization) {
    std::vector<sip::Header> headers;
    if (!authorization.empty()) headers.push_back({"Proxy-Authorization", authorization});
    auto tx =
        dialog->Send({.method = "INVITE",
                      .request_uri = uri,
                      .next_hop = hop,
                      .headers = headers,
                      .contact = stack.ContactFor("udp"),
                      .content_type = "application/sdp",
                      .body = kPhoneSdp},
                     [dialog, uri, user, password, state, invite, on_final,
                      &statuses](const sip::Message& response) {
                       if (response.status() < 200) return;
                       if (response.status() < 300 && state->second) {
                         dialog->Ack(response);  // a retransmitted 200
                         return;
                       }
                       statuses.push_back(response.status());
                       if (response.status() == 407 && !state->first) {
                         state->first = true;
                         std::string challenge;
                         for (const std::string& c : response.headers("Proxy-Authenticate")) {
                           if (absl::StrContains(c, "SHA-256")) challenge = c;
                         }
                         (*invite)(Sha256Answer(challenge, user, password, "INVITE", uri, "c1"));
                         return;
                       }
                       if (response.status() < 300) {
                         dialog->Establish(response);
                         dialog->Ack(response);
                         state->second = true;
                       }
                       *invite = nullptr;  // breaks the reference cycle
                       on_final(response);
                     });
    REQUIRE(tx.ok());
    sent.push_back(*tx);
  };
  (*invite)("");
}

// An agent's phone placing a call: DialFromPhone, and when answered BYE after `talk`. Returns the
// final statuses of the INVITEs (e.g. {407, 200}) and the BYE's (when sent).
struct PhoneCallResult {
  std::vector<int> invites;
  int bye = 0;
};
PhoneCallResult PhoneCall(int server_port, const std::string& user, const std::string& password,
                          const std::string& dialled,
                          absl::Duration talk = absl::Milliseconds(300)) {
  namespace sip = ::sb::sip;
  auto stack = sip::Stack::Start({.port = testing::FreeTcpUdpPort()},
                                 [](sip::ServerTransactionPtr tx) { tx->Reply(481); });
  REQUIRE(stack.ok());
  PhoneCallResult result;
  absl::Notification done;
  sip::DialogPtr dialog;
  std::vector<sip::ClientTransactionPtr> sent;
  std::unique_ptr<sip::Timer> hangup;
  const std::string from = absl::StrCat("<sip:", user, "@", kDomain, ">");
  (*stack)->Post([&] {
    auto d = sip::Dialog::Create(
        **stack, {.from = from, .to = absl::StrCat("<sip:", dialled, "@", kDomain, ">")}, nullptr);
    REQUIRE(d.ok());
    dialog = *d;
    DialFromPhone(**stack, dialog, server_port, user, password, dialled, sent, result.invites,
                  [&](const sip::Message& response) {
                    if (response.status() >= 300) {
                      done.Notify();
                      return;
                    }
                    hangup = (*stack)->After(talk, [&] {
                      auto bye = dialog->Send({.method = "BYE"}, [&](const sip::Message& r) {
                        if (r.status() < 200) return;
                        result.bye = r.status();
                        done.Notify();
                      });
                      REQUIRE(bye.ok());
                      sent.push_back(*bye);
                    });
                  });
  });
  CHECK(done.WaitForNotificationWithTimeout(absl::Seconds(15)));
  (*stack)->Stop([&] {
    hangup.reset();
    sent.clear();
    dialog.reset();
  });
  return result;
}

// "a@b;c=d" -> "a%40b%3Bc%3Dd": a value for a header inside a SIP URI (RFC 3261 §19.1.1).
std::string UriEscape(std::string_view in) {
  std::string out;
  for (char c : in) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
        std::string_view("-_.!~*'()").find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return out;
}

// The transferring agent's phone in an attended transfer (a SIPp scenario holds one dialog; this
// needs two): it answers the carrier's call on `port`, dials `colleague` (the consultation) and,
// once they answer, REFERs the caller to them with Replaces naming the consultation. On the
// final NOTIFY it hangs up both calls, as RFC 5589 §7 has the transferor do.
class AttendedTransferor {
 public:
  struct Result {
    std::vector<int> consult;  // final statuses of the consultation's INVITEs
    int refer = 0;
    std::vector<std::string> sipfrags;  // NOTIFY bodies
    int bye_caller = 0;
    int bye_consult = 0;  // 200, or 481 when the consultation was ended first
  };

  AttendedTransferor(int port, int server_port, std::string user, std::string password,
                     std::string colleague)
      : server_port_(server_port),
        user_(std::move(user)),
        password_(std::move(password)),
        colleague_(std::move(colleague)) {
    namespace sip = ::sb::sip;
    auto stack =
        sip::Stack::Start({.port = port}, [this](sip::ServerTransactionPtr tx) { OnCall(tx); });
    REQUIRE(stack.ok());
    stack_ = *std::move(stack);
  }

  Result Wait() {
    CHECK(done_.WaitForNotificationWithTimeout(absl::Seconds(20)));
    stack_->Stop([this] {
      sent_.clear();
      incoming_.reset();
      caller_.reset();
      consult_.reset();
    });
    return result_;
  }

 private:
  void OnCall(::sb::sip::ServerTransactionPtr tx) {
    namespace sip = ::sb::sip;
    if (tx->request().method() != "INVITE" || caller_ != nullptr) {
      tx->Reply(481);
      return;
    }
    auto d = sip::Dialog::Accept(
        *stack_, *tx, [this](sip::ServerTransactionPtr in) { OnCallerDialog(std::move(in)); });
    REQUIRE(d.ok());
    caller_ = *d;
    incoming_ = tx;
    tx->OnAck([this](const sip::Message&) {
      if (consult_ != nullptr) return;
      auto c =
          sip::Dialog::Create(*stack_,
                              {.from = absl::StrCat("<sip:", user_, "@", kDomain, ">"),
                               .to = absl::StrCat("<sip:", colleague_, "@", kDomain, ">")},
                              [this](sip::ServerTransactionPtr in) {
                                in->Reply(200);  // the BYE that ends the consultation
                                if (in->request().method() == "BYE" && result_.bye_consult == 0)
                                  Closed(200);
                              });
      REQUIRE(c.ok());
      consult_ = *c;
      DialFromPhone(*stack_, consult_, server_port_, user_, password_, colleague_, sent_,
                    result_.consult, [this](const sip::Message& r) {
                      if (r.status() < 300) Refer();
                    });
    });
    tx->Reply(180);
    tx->Reply(200, "OK",
              {.contact = stack_->ContactFor("udp"),
               .content_type = "application/sdp",
               .body = kPhoneSdp});
  }

  void Refer() {
    const std::string replaces =
        absl::StrCat(consult_->call_id(), ";to-tag=", consult_->remote_tag(),
                     ";from-tag=", consult_->local_tag());
    auto tx = caller_->Send(
        {.method = "REFER",
         .headers = {{"Refer-To", absl::StrCat("<sip:", colleague_, "@", kDomain,
                                               "?Replaces=", UriEscape(replaces), ">")},
                     {"Referred-By", absl::StrCat("<sip:", user_, "@", kDomain, ">")}},
         .contact = stack_->ContactFor("udp")},
        [this](const ::sb::sip::Message& r) {
          if (r.status() >= 200) result_.refer = r.status();
        });
    REQUIRE(tx.ok());
    sent_.push_back(*tx);
  }

  void OnCallerDialog(::sb::sip::ServerTransactionPtr in) {
    const std::string_view method = in->request().method();
    if (method == "ACK") return;
    in->Reply(200);
    if (method != "NOTIFY") return;
    const std::string frag(in->request().body());
    result_.sipfrags.push_back(frag);
    if (!absl::StartsWith(frag, "SIP/2.0 200")) return;
    auto bye = caller_->Send({.method = "BYE"}, [this](const ::sb::sip::Message& r) {
      if (r.status() < 200) return;
      result_.bye_caller = r.status();
      if (result_.bye_consult != 0) done_.Notify();
    });
    REQUIRE(bye.ok());
    sent_.push_back(*bye);
    auto bye_consult = consult_->Send({.method = "BYE"}, [this](const ::sb::sip::Message& r) {
      if (r.status() >= 200 && result_.bye_consult == 0) Closed(r.status());
    });
    REQUIRE(bye_consult.ok());
    sent_.push_back(*bye_consult);
  }

  void Closed(int status) {
    result_.bye_consult = status;
    if (result_.bye_caller != 0) done_.Notify();
  }

  const int server_port_;
  const std::string user_, password_, colleague_;
  std::unique_ptr<::sb::sip::Stack> stack_;
  ::sb::sip::ServerTransactionPtr incoming_;
  ::sb::sip::DialogPtr caller_, consult_;
  std::vector<::sb::sip::ClientTransactionPtr> sent_;
  Result result_;
  absl::Notification done_;
};

struct SipWorld {
  std::unique_ptr<Running> r;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<iv1::IdentityService::Stub> identity;
  std::unique_ptr<ov1::OrgService::Stub> org;
  std::unique_ptr<sv1::SipService::Stub> sip;
  std::unique_ptr<redis::Client> redis;
  std::string admin;
  std::string tenant_id;
  std::string agent_id;
  std::string extension;
  std::string sip_password;
  std::string trunk_id;
  std::string project_id;
  std::string currency;
  int carrier_port = testing::FreeTcpUdpPort();

  template <typename Fn>
  void AsAdmin(Fn fn) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + admin);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = fn(ctx);
    INFO(s.error_message());
    REQUIRE(s.ok());
  }

  std::string Login(const std::string& user) {
    return e2e::Login(*identity, "demo", user, kPassword);
  }

  explicit SipWorld(
      ov1::IncomingCallPreference preference = ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY,
      std::vector<std::string> flags = {}, const std::string& redis_url = TestRedisUrl()) {
    flags.insert(flags.end(), {"--platform_admin_password=Platform-Admin-2026", "--demo_tenant",
                               absl::StrCat("--demo_password=", kPassword)});
    r = Start(flags, redis_url);
    for (const char* service :
         {"switchboard.identity.v1.IdentityService", "switchboard.org.v1.OrgService",
          "switchboard.routing.v1.RoutingService", "switchboard.sip.v1.SipService"}) {
      INFO(service);
      REQUIRE(Eventually(
          [&] { return HealthOf(*r->health, service) == HealthCheckResponse::SERVING; }));
    }
    channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", r->grpc_port),
                                  grpc::InsecureChannelCredentials());
    identity = iv1::IdentityService::NewStub(channel);
    org = ov1::OrgService::NewStub(channel);
    sip = sv1::SipService::NewStub(channel);
    auto client = redis::Client::Create({.url = redis_url});
    REQUIRE(client.ok());
    redis = *std::move(client);

    admin = Login("admin");
    {
      const std::string agent_token = Login("agent1");
      iv1::GetCurrentUserResponse me;
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + agent_token);
      REQUIRE(identity->GetCurrentUser(&ctx, {}, &me).ok());
      agent_id = me.user().id();
      tenant_id = me.tenant().id();
    }
    ov1::Trunk trunk;
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::CreateTrunkRequest req;
      auto* t = req.mutable_trunk();
      t->set_name("Loopback carrier");
      t->add_inbound_cidrs("127.0.0.1/32");
      t->set_inbound_enabled(true);
      t->set_outbound_enabled(true);
      t->set_outbound_host("127.0.0.1");
      t->set_outbound_port(carrier_port);
      t->set_transport(ov1::TRUNK_TRANSPORT_UDP);
      t->set_default_outbound(true);
      return org->CreateTrunk(&ctx, req, &trunk);
    });
    trunk_id = trunk.id();
    ov1::Project project;
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::CreateProjectRequest req;
      req.mutable_project()->set_name("Support");
      return org->CreateProject(&ctx, req, &project);
    });
    ov1::Number number;
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::CreateNumberRequest req;
      req.mutable_number()->set_number(kDid);
      req.mutable_number()->set_description("Spring campaign");
      req.mutable_number()->set_project_id(project.id());
      req.mutable_number()->set_trunk_id(trunk.id());
      return org->CreateNumber(&ctx, req, &number);
    });
    project_id = project.id();
    // Money for outbound calls.
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::GetWalletRequest req;
      ov1::Wallet wallet;
      auto s = org->GetWallet(&ctx, req, &wallet);
      currency = wallet.balance().currency_code();
      return s;
    });
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::TopUpWalletRequest req;
      req.mutable_amount()->set_currency_code(currency);
      req.mutable_amount()->set_units(10000);
      req.set_idempotency_key(NewUuid());
      req.set_description("e2e");
      ov1::WalletTransaction tx;
      return org->TopUpWallet(&ctx, req, &tx);
    });
    Agent first = AddAgent("agent1", preference);
    agent_id = first.user_id;
    extension = first.extension;
    sip_password = first.password;
  }

  struct Agent {
    std::string user_id;
    std::string extension;
    std::string password;
  };

  // Gives a demo user an agent profile (mobile +3630123456N), selects the project for them and
  // issues their SIP password.
  Agent AddAgent(const std::string& login, ov1::IncomingCallPreference preference) {
    Agent agent;
    {
      const std::string token = Login(login);
      iv1::GetCurrentUserResponse me;
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + token);
      REQUIRE(identity->GetCurrentUser(&ctx, {}, &me).ok());
      agent.user_id = me.user().id();
    }
    ov1::AgentProfile profile;
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::CreateAgentProfileRequest req;
      auto* p = req.mutable_profile();
      p->set_user_id(agent.user_id);
      p->set_incoming_call_preference(preference);
      auto* phone = p->add_phones();
      phone->set_number(MobileOf(login));
      phone->set_label("mobile");
      phone->set_mobile(true);
      p->mutable_mobile_delay()->set_seconds(1);
      p->set_outbound_enabled(true);
      return org->CreateAgentProfile(&ctx, req, &profile);
    });
    agent.extension = profile.extension();
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::SetProjectSelectionRequest req;
      req.set_user_id(agent.user_id);
      req.set_primary_project_id(project_id);
      ov1::ProjectSelection selection;
      return org->SetProjectSelection(&ctx, req, &selection);
    });
    AsAdmin([&](grpc::ClientContext& ctx) {
      iv1::ResetSipCredentialRequest req;
      req.set_user_id(agent.user_id);
      req.set_username(agent.extension);
      iv1::ResetSipCredentialResponse resp;
      auto s = identity->ResetSipCredential(&ctx, req, &resp);
      agent.password = resp.password();
      return s;
    });
    REQUIRE(!agent.extension.empty());
    REQUIRE(!agent.password.empty());
    return agent;
  }

  static std::string MobileOf(const std::string& login) {
    return absl::StrCat("+3630123456", std::string(1, login.back()));
  }

  // Registers `agent` with a SIPp phone listening on a fresh port; returns the port.
  int RegisterPhone(const Agent& a) {
    const int port = testing::FreeTcpUdpPort();
    REQUIRE(RegisterSha256(r->sip_port, a.extension, a.password,
                           absl::StrCat("sip:", a.extension, "@127.0.0.1:", port),
                           300) == std::vector<int>{401, 200});
    return port;
  }

  // The only call of this test's tenant, once it has ended: its events in order.
  std::pair<std::string, std::vector<cv1::Event>> EndedCall() {
    std::map<std::string, std::vector<cv1::Event>> calls;
    bool ended = Eventually([&] {
      calls = CallEvents();
      return calls.size() == 1 && !calls.begin()->second.empty() &&
             calls.begin()->second.back().type() == cv1::EVENT_TYPE_CALL_ENDED;
    });
    std::string dump;
    for (const auto& [id, events] : calls) {
      for (const auto& e : events) absl::StrAppend(&dump, e.ShortDebugString(), "\n");
    }
    INFO(dump);
    if (getenv("SB_E2E_DUMP") != nullptr) fprintf(stderr, "%s", dump.c_str());
    REQUIRE(ended);
    CHECK(!dump.empty());  // (the dump shows with the first failed check below)
    const auto& events = calls.begin()->second;
    for (size_t i = 0; i < events.size(); ++i) CHECK(events[i].call_sequence() == i + 1);
    // The live state agrees: ended, every leg ended, out of the tenant's calls in progress.
    const auto live = LiveState(calls.begin()->first);
    CHECK(live.call_id() == calls.begin()->first);
    CHECK(live.tenant_id() == tenant_id);
    CHECK(live.state() == cv1::CALL_STATE_ENDED);
    for (const auto& leg : live.legs()) CHECK(leg.state() == sv1::LEG_STATE_ENDED);
    return *calls.begin();
  }

  // Takes an agent out of the project's hunt (they selected it on creation).
  void LeaveHunt(const Agent& a) {
    AsAdmin([&](grpc::ClientContext& ctx) {
      ov1::SetProjectSelectionRequest req;
      req.set_user_id(a.user_id);
      ov1::ProjectSelection selection;
      return org->SetProjectSelection(&ctx, req, &selection);
    });
  }

  // The tenant's one call in progress, once it is in `state` (via the SIP service's API).
  sv1::ActiveCall WaitForCall(cv1::CallState state) {
    sv1::ActiveCall found;
    REQUIRE(Eventually([&] {
      sv1::ListActiveCallsResponse calls;
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + admin);
      sv1::ListActiveCallsRequest req;
      if (!sip->ListActiveCalls(&ctx, req, &calls).ok() || calls.calls_size() != 1) return false;
      found = calls.calls(0);
      return found.state() == state;
    }));
    return found;
  }

  // The live state of a call (kept briefly after its end).
  ::switchboard::sip::v1::ActiveCall LiveState(const std::string& call_id) {
    auto state = redis->Command({"GET", "sb:call:" + call_id});
    REQUIRE(state.ok());
    ::switchboard::sip::v1::ActiveCall live;
    REQUIRE(live.ParseFromString(state->str()));
    auto in_progress = redis->Command({"ZCARD", "sb:calls:tenant:" + tenant_id});
    REQUIRE(in_progress.ok());
    CHECK(in_progress->integer() == 0);
    return live;
  }

  std::vector<::switchboard::sip::v1::Registration> Bindings() {
    auto reply = redis->Command({"HVALS", absl::StrCat("sb:sip:reg:", tenant_id, ":", extension)});
    REQUIRE(reply.ok());
    std::vector<::switchboard::sip::v1::Registration> out;
    for (const auto& e : reply->elements()) {
      ::switchboard::sip::v1::Registration reg;
      REQUIRE(reg.ParseFromString(e.str()));
      out.push_back(reg);
    }
    return out;
  }

  // This tenant's events on the stream, grouped by call, in stream order.
  std::map<std::string, std::vector<cv1::Event>> CallEvents() {
    auto reply = redis->Command({"XRANGE", "sb:events", "-", "+"});
    REQUIRE(reply.ok());
    std::map<std::string, std::vector<cv1::Event>> out;
    for (const auto& entry : reply->elements()) {
      const auto& fields = entry.elements()[1].elements();
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str() != "e") continue;
        cv1::Event e;
        REQUIRE(e.ParseFromString(fields[i + 1].str()));
        if (e.tenant_id() == tenant_id && !e.call_id().empty()) out[e.call_id()].push_back(e);
      }
    }
    return out;
  }
};

std::vector<cv1::EventType> Types(const std::vector<cv1::Event>& events) {
  std::vector<cv1::EventType> out;
  for (const auto& e : events) out.push_back(e.type());
  return out;
}

TEST_CASE("REGISTER: 401 with SHA-256 and MD5 challenges, then 200 and a binding in Redis",
          "[e2e][sip]") {
  SipWorld w;
  // SIPp sends REGISTER without credentials and checks both challenges in the 401.
  testing::TempDir dir;
  auto challenged =
      RunCommand(SippArgs("register_challenge.xml", testing::FreeTcpUdpPort(), w.r->sip_port,
                          {{"domain", kDomain}, {"user", w.extension}}));
  REQUIRE(challenged.ok());
  INFO(challenged->output);
  CHECK(challenged->exit_code == 0);

  const int phone_port = testing::FreeTcpUdpPort();
  const std::string contact = absl::StrCat("sip:", w.extension, "@127.0.0.1:", phone_port);
  CHECK(RegisterSha256(w.r->sip_port, w.extension, w.sip_password, contact, 120) ==
        std::vector<int>{401, 200});
  auto bindings = w.Bindings();
  REQUIRE(bindings.size() == 1);
  CHECK(bindings[0].contact_uri() == contact);
  CHECK(bindings[0].user_id() == w.agent_id);
  CHECK(bindings[0].transport() == "udp");
  CHECK(bindings[0].expires_at().seconds() - bindings[0].registered_at().seconds() == 120);

  // Unregister (Expires: 0) removes it.
  CHECK(RegisterSha256(w.r->sip_port, w.extension, w.sip_password, contact, 0) ==
        std::vector<int>{401, 200});
  CHECK(w.Bindings().empty());
}

TEST_CASE("REGISTER with MD5 for phones that need it (SIPp), when the operator offers MD5 first",
          "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY, {"--sip_digest_algorithms=md5,sha-256"});
  const int phone_port = testing::FreeTcpUdpPort();
  auto result = RunCommand(SippArgs("register_md5.xml", phone_port, w.r->sip_port,
                                    {{"domain", kDomain}, {"user", w.extension}},
                                    {"-au", w.extension, "-ap", w.sip_password}));
  REQUIRE(result.ok());
  INFO(result->output);
  CHECK(result->exit_code == 0);
  auto bindings = w.Bindings();
  REQUIRE(bindings.size() == 1);
  CHECK(bindings[0].contact_uri() == absl::StrCat("sip:", w.extension, "@127.0.0.1:", phone_port));
  CHECK(bindings[0].user_agent() == "SIPp e2e");
}

TEST_CASE("REGISTER with a wrong password: challenged again, then 403 after retries",
          "[e2e][sip]") {
  SipWorld w;
  const std::string contact = absl::StrCat("sip:", w.extension, "@127.0.0.1:5999");
  CHECK(RegisterSha256(w.r->sip_port, w.extension, "wrong-password", contact, 120, 4) ==
        std::vector<int>{401, 401, 401, 403});
  CHECK(w.Bindings().empty());
  // The right password is refused too while the address is throttled.
  CHECK(RegisterSha256(w.r->sip_port, w.extension, w.sip_password, contact, 120) ==
        std::vector<int>{401, 403});
}

// True once something listens on UDP 127.0.0.1:port (our own bind fails).
bool UdpPortTaken(int port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool taken = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0;
  ::close(fd);
  return taken;
}

// Runs a SIPp phone (UAS) in the background on `port`, once it listens.
ChildProcess Phone(const std::string& scenario, int port, int sip_port) {
  auto phone = ChildProcess::Start({.argv = SippArgs(scenario, port, sip_port, {})});
  REQUIRE(phone.ok());
  REQUIRE(Eventually([&] { return UdpPortTaken(port); }));
  return *std::move(phone);
}

// The carrier's call to the DID from a fresh port; returns SIPp's exit code.
int CarrierCalls(const SipWorld& w, const std::string& scenario = "carrier_call.xml") {
  auto carrier =
      RunCommand(SippArgs(scenario, testing::FreeTcpUdpPort(), w.r->sip_port, {{"did", kDid}}));
  REQUIRE(carrier.ok());
  UNSCOPED_INFO(carrier->output);
  return carrier->exit_code;
}

// The carrier's call to the DID, running while the test acts on it (e.g. over the API).
ChildProcess CarrierInBackground(const SipWorld& w, const std::string& scenario) {
  auto carrier = ChildProcess::Start(
      {.argv = SippArgs(scenario, testing::FreeTcpUdpPort(), w.r->sip_port, {{"did", kDid}})});
  REQUIRE(carrier.ok());
  return *std::move(carrier);
}

void RequireExit(ChildProcess& phone, const std::string& what) {
  auto code = phone.Wait(absl::Seconds(25));
  INFO(what);
  REQUIRE(code.ok());
  CHECK(*code == 0);
}

TEST_CASE("carrier -> DID -> registered agent answers -> talk -> BYE from the caller",
          "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto phone = Phone("agent_answer.xml", w.RegisterPhone(agent1), w.r->sip_port);
  CHECK(CarrierCalls(w) == 0);
  RequireExit(phone, "the agent's phone");

  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  REQUIRE(events.size() == 4);
  CHECK(events[0].call().created().did() == kDid);
  CHECK(events[0].call().created().from_number() == "+3670111222");
  CHECK(events[2].call().answered().agent_user_id() == w.agent_id);
  CHECK(!events[2].call().answered().mobile());
  CHECK(events[3].call().ended().cause() == cv1::HANGUP_CAUSE_NORMAL_CLEARING);
  CHECK(events[3].call().ended().hangup_by() == cv1::HANGUP_PARTY_CUSTOMER);
  CHECK(events[3].call().ended().outcome() == cv1::CALL_OUTCOME_ANSWERED);

  const auto live = w.LiveState(call_id);
  CHECK(live.state() == cv1::CALL_STATE_ENDED);
  CHECK(live.did() == kDid);
  CHECK(live.did_description() == "Spring campaign");
  CHECK(live.agent_user_ids_size() == 1);
}

TEST_CASE("the agent hangs up: BYE from the agent's phone ends the call", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto phone = Phone("agent_hangs_up.xml", w.RegisterPhone(agent1), w.r->sip_port);
  CHECK(CarrierCalls(w, "carrier_hung_up.xml") == 0);
  RequireExit(phone, "the agent's phone sent BYE and got 200");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(events.back().call().ended().hangup_by() == cv1::HANGUP_PARTY_AGENT);
  CHECK(events.back().call().ended().cause() == cv1::HANGUP_CAUSE_NORMAL_CLEARING);
  CHECK(w.LiveState(call_id).state() == cv1::CALL_STATE_ENDED);
}

TEST_CASE("hold and resume: re-INVITEs are relayed to the other leg", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto phone = Phone("agent_held.xml", w.RegisterPhone(agent1), w.r->sip_port);
  CHECK(CarrierCalls(w, "carrier_hold.xml") == 0);
  RequireExit(phone, "the agent's phone got both re-INVITEs and the BYE");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_HELD,
                                    cv1::EVENT_TYPE_CALL_RESUMED, cv1::EVENT_TYPE_CALL_ENDED});
}

// What a blind transfer from agent `from` to `to` leaves: the events in order and `to` on the call.
void CheckBlindTransfer(SipWorld& w, const SipWorld::Agent& from, const SipWorld::Agent& to) {
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_TRANSFERRED,
                                    cv1::EVENT_TYPE_CALL_RINGING, cv1::EVENT_TYPE_CALL_ANSWERED,
                                    cv1::EVENT_TYPE_CALL_ENDED});
  REQUIRE(events.size() == 7);
  CHECK(events[2].call().answered().agent_user_id() == from.user_id);
  CHECK(events[3].call().transferred().type() == cv1::TRANSFER_TYPE_BLIND);
  CHECK(events[3].call().transferred().by_user_id() == from.user_id);
  CHECK(events[3].call().transferred().to_user_id() == to.user_id);
  CHECK(events[5].call().answered().agent_user_id() == to.user_id);
  CHECK(events[6].call().ended().hangup_by() == cv1::HANGUP_PARTY_CUSTOMER);
  const auto live = w.LiveState(call_id);
  REQUIRE(live.agent_user_ids_size() == 1);
  CHECK(live.agent_user_ids(0) == to.user_id);
}

TEST_CASE("blind transfer: the agent REFERs the caller to a colleague, who answers", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  SipWorld::Agent agent2 = w.AddAgent("agent2", ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  w.LeaveHunt(agent2);  // agent2 also selected the project: agent1 answers first
  const int agent1_port = w.RegisterPhone(agent1);
  auto colleague = Phone("agent_answer.xml", w.RegisterPhone(agent2), w.r->sip_port);
  auto transferring =
      ChildProcess::Start({.argv = SippArgs("agent_refers.xml", agent1_port, w.r->sip_port,
                                            {{"to", agent2.extension}})});
  REQUIRE(transferring.ok());
  REQUIRE(Eventually([&] { return UdpPortTaken(agent1_port); }));
  CHECK(CarrierCalls(w, "carrier_transferred.xml") == 0);
  RequireExit(*transferring, "agent1's phone: REFER 202, NOTIFY 100 and 200, then its BYE");
  RequireExit(colleague, "agent2's phone answered the transferred call and got the BYE");
  CheckBlindTransfer(w, agent1, agent2);
}

TEST_CASE("attended transfer: the agent consults a colleague, then REFERs with Replaces",
          "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent2 = w.AddAgent("agent2", ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  w.LeaveHunt(agent2);  // agent2 also selected the project: agent1 answers first
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  const int agent1_port = w.RegisterPhone(agent1);
  auto colleague = Phone("agent_replaced.xml", w.RegisterPhone(agent2), w.r->sip_port);
  AttendedTransferor transferor(agent1_port, w.r->sip_port, agent1.extension, agent1.password,
                                agent2.extension);
  CHECK(CarrierCalls(w, "carrier_transferred.xml") == 0);
  const AttendedTransferor::Result phone = transferor.Wait();
  RequireExit(colleague, "agent2's phone: consultation, the offerless re-INVITE, the BYE");
  CHECK(phone.consult == std::vector<int>{407, 200});
  CHECK(phone.refer == 202);
  REQUIRE(phone.sipfrags.size() == 2);
  CHECK(absl::StartsWith(phone.sipfrags[0], "SIP/2.0 100"));
  CHECK(absl::StartsWith(phone.sipfrags[1], "SIP/2.0 200"));
  CHECK(phone.bye_caller == 200);
  CHECK((phone.bye_consult == 200 || phone.bye_consult == 481));

  // Two calls: the customer's, which agent2 now has, and the consultation, ended by the join.
  std::map<std::string, std::vector<cv1::Event>> calls;
  REQUIRE(Eventually([&] {
    calls = w.CallEvents();
    return calls.size() == 2 && std::all_of(calls.begin(), calls.end(), [](const auto& c) {
             return !c.second.empty() && c.second.back().type() == cv1::EVENT_TYPE_CALL_ENDED;
           });
  }));
  std::string customer_call, consult_call;
  for (const auto& [id, events] : calls) {
    (events[0].call().created().origin() == cv1::CallEvent::Created::ORIGIN_TRUNK ? customer_call
                                                                                  : consult_call) =
        id;
  }
  REQUIRE(!customer_call.empty());
  REQUIRE(!consult_call.empty());
  const auto& customer = calls[customer_call];
  CHECK(Types(customer) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_TRANSFERRED,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  REQUIRE(customer.size() == 6);
  CHECK(customer[2].call().answered().agent_user_id() == agent1.user_id);
  const auto& transferred = customer[3].call().transferred();
  CHECK(transferred.type() == cv1::TRANSFER_TYPE_ATTENDED);
  CHECK(transferred.by_user_id() == agent1.user_id);
  CHECK(transferred.to_user_id() == agent2.user_id);
  CHECK(transferred.consult_call_id() == consult_call);
  CHECK(customer[4].call().answered().agent_user_id() == agent2.user_id);
  CHECK(customer[5].call().ended().hangup_by() == cv1::HANGUP_PARTY_CUSTOMER);
  CHECK(customer[5].call().ended().outcome() == cv1::CALL_OUTCOME_ANSWERED);

  const auto& consult = calls[consult_call];
  CHECK(Types(consult) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(consult[0].call().direction() == cv1::CALL_DIRECTION_INTERNAL);
  CHECK(consult.back().call().ended().cause() == cv1::HANGUP_CAUSE_TRANSFERRED);

  const auto live = w.LiveState(customer_call);
  CHECK(live.state() == cv1::CALL_STATE_ENDED);
  REQUIRE(live.agent_user_ids_size() == 1);
  CHECK(live.agent_user_ids(0) == agent2.user_id);
  CHECK(w.LiveState(consult_call).state() == cv1::CALL_STATE_ENDED);
}

TEST_CASE("the console holds and resumes a call: both sides re-INVITEd", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto phone = Phone("agent_api_held.xml", w.RegisterPhone(agent1), w.r->sip_port);
  ChildProcess carrier = CarrierInBackground(w, "carrier_api_held.xml");
  const sv1::ActiveCall answered = w.WaitForCall(cv1::CALL_STATE_ANSWERED);
  const std::string agent_token = w.Login("agent1");
  auto as_agent = [&](auto rpc) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + agent_token);
    sv1::ActiveCall out;
    grpc::Status status = rpc(ctx, out);
    INFO(status.error_message());
    CHECK(status.ok());
    return std::make_pair(status, out);
  };
  sv1::HoldCallRequest hold;
  hold.set_call_id(answered.call_id());
  auto [held_status, held] = as_agent([&](grpc::ClientContext& ctx, sv1::ActiveCall& out) {
    return w.sip->HoldCall(&ctx, hold, &out);
  });
  CHECK(held.state() == cv1::CALL_STATE_HELD);
  {  // A second hold is refused.
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + agent_token);
    sv1::ActiveCall out;
    CHECK(w.sip->HoldCall(&ctx, hold, &out).error_code() == grpc::FAILED_PRECONDITION);
  }
  sv1::ResumeCallRequest resume;
  resume.set_call_id(answered.call_id());
  {  // Resume at once: refused (Aborted) until both phones have answered the hold re-INVITEs,
     // because a second INVITE on a dialog may not start before the first ends (RFC 3261 14.1).
    sv1::ActiveCall resumed;
    grpc::Status status;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    do {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + agent_token);
      status = w.sip->ResumeCall(&ctx, resume, &resumed);
      if (status.error_code() != grpc::ABORTED) break;
      absl::SleepFor(absl::Milliseconds(20));
    } while (absl::Now() < deadline);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(resumed.state() == cv1::CALL_STATE_ANSWERED);
  }
  auto code = carrier.Wait(absl::Seconds(25));
  REQUIRE(code.ok());
  CHECK(*code == 0);
  RequireExit(phone, "the agent's phone got both re-INVITEs and the BYE");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_HELD,
                                    cv1::EVENT_TYPE_CALL_RESUMED, cv1::EVENT_TYPE_CALL_ENDED});
  REQUIRE(events.size() == 6);
  CHECK(events[3].call().held().by_user_id() == w.agent_id);
  CHECK(events[3].call().leg_id() == answered.legs(0).leg_id());  // the customer's leg
  CHECK(events[4].call().resumed().by_user_id() == w.agent_id);
}

TEST_CASE("the console transfers a call blind to a colleague's extension", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  SipWorld::Agent agent2 = w.AddAgent("agent2", ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  w.LeaveHunt(agent2);  // agent2 also selected the project: agent1 answers first
  auto first = Phone("agent_answer.xml", w.RegisterPhone(agent1), w.r->sip_port);
  auto colleague = Phone("agent_answer.xml", w.RegisterPhone(agent2), w.r->sip_port);
  ChildProcess carrier = CarrierInBackground(w, "carrier_transferred.xml");
  const sv1::ActiveCall answered = w.WaitForCall(cv1::CALL_STATE_ANSWERED);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + w.Login("agent1"));
  sv1::TransferCallRequest req;
  req.set_call_id(answered.call_id());
  req.set_extension(agent2.extension);
  sv1::ActiveCall out;
  const grpc::Status status = w.sip->TransferCall(&ctx, req, &out);
  INFO(status.error_message());
  REQUIRE(status.ok());
  auto code = carrier.Wait(absl::Seconds(25));
  REQUIRE(code.ok());
  CHECK(*code == 0);
  RequireExit(first, "agent1's phone was hung up once the colleague answered");
  RequireExit(colleague, "agent2's phone answered the transferred call and got the BYE");
  CheckBlindTransfer(w, agent1, agent2);
}

TEST_CASE("click-to-call: the agent's phone rings first, then the colleague dialled",
          "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  SipWorld::Agent agent2 = w.AddAgent("agent2", ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  auto phone = Phone("agent_click_to_call.xml", w.RegisterPhone(agent1), w.r->sip_port);
  auto colleague = Phone("agent_hangs_up.xml", w.RegisterPhone(agent2), w.r->sip_port);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + w.Login("agent1"));
  sv1::OriginateCallRequest req;
  req.set_destination(agent2.extension);
  req.set_idempotency_key("click-1");
  sv1::OriginateCallResponse out;
  const grpc::Status status = w.sip->OriginateCall(&ctx, req, &out);
  INFO(status.error_message());
  REQUIRE(status.ok());
  {  // The same request again: the same call, not a second one.
    grpc::ClientContext again;
    again.AddMetadata("authorization", "Bearer " + w.Login("agent1"));
    sv1::OriginateCallResponse repeated;
    REQUIRE(w.sip->OriginateCall(&again, req, &repeated).ok());
    CHECK(repeated.call_id() == out.call_id());
  }
  RequireExit(colleague, "agent2's phone answered, then hung up");
  RequireExit(phone, "agent1's phone: placeholder offer, the colleague's media, the BYE");
  auto [call_id, events] = w.EndedCall();
  CHECK(call_id == out.call_id());
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  REQUIRE(events.size() == 4);
  CHECK(events[0].call().created().origin() == cv1::CallEvent::Created::ORIGIN_CLICK_TO_CALL);
  CHECK(events[0].call().created().caller_user_id() == agent1.user_id);
  CHECK(events[0].call().created().to_number() == agent2.extension);
  CHECK(events[0].call().direction() == cv1::CALL_DIRECTION_INTERNAL);
  CHECK(events[2].call().answered().agent_user_id() == agent2.user_id);
  CHECK(events[3].call().ended().hangup_by() == cv1::HANGUP_PARTY_AGENT);
  const auto live = w.LiveState(call_id);
  CHECK(live.agent_user_ids_size() == 2);
}

TEST_CASE("call control refuses what it cannot do, naming why", "[e2e][sip]") {
  SipWorld w;
  const std::string token = w.Login("agent1");
  auto call = [&](auto rpc) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    sv1::ActiveCall out;
    return rpc(ctx, out);
  };
  sv1::TransferCallRequest transfer;
  transfer.set_call_id(NewUuid());
  transfer.set_number("0036301234567");
  grpc::Status s = call([&](grpc::ClientContext& ctx, sv1::ActiveCall& out) {
    return w.sip->TransferCall(&ctx, transfer, &out);
  });
  CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains("number"));
  transfer.set_number("+36301234567");
  s = call([&](grpc::ClientContext& ctx, sv1::ActiveCall& out) {
    return w.sip->TransferCall(&ctx, transfer, &out);
  });
  CHECK(s.error_code() == grpc::NOT_FOUND);
  sv1::OriginateCallRequest originate;
  originate.set_destination("12a");
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    sv1::OriginateCallResponse out;
    s = w.sip->OriginateCall(&ctx, originate, &out);
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains("destination"));
  }
  sv1::HoldCallRequest hold;
  hold.set_call_id(NewUuid());
  s = call([&](grpc::ClientContext& ctx, sv1::ActiveCall& out) {
    return w.sip->HoldCall(&ctx, hold, &out);
  });
  CHECK(s.error_code() == grpc::NOT_FOUND);
}

TEST_CASE(
    "session timers: too short an interval gets 422; a caller that stops refreshing is hung up",
    "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY, {"--sip_min_session_expires=2s"});
  CHECK(CarrierCalls(w, "carrier_session_too_short.xml") == 0);
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto phone = Phone("agent_answer.xml", w.RegisterPhone(agent1), w.r->sip_port);
  const absl::Time start = absl::Now();
  CHECK(CarrierCalls(w, "carrier_session_expires.xml") == 0);
  RequireExit(phone, "the agent's phone got the BYE");
  // 4 s asked, minus a third (RFC 4028 §10).
  CHECK(absl::Now() - start > absl::Milliseconds(2500));
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(events.back().call().ended().cause() == cv1::HANGUP_CAUSE_MEDIA_TIMEOUT);
  CHECK(events.back().call().ended().reason() == "SESSION_EXPIRED");
}

// The shared test Redis with its own database: sweeps of other tests' nodes (they run side by
// side) must not close out what a test made up.
std::string PrivateRedisUrl(int db) { return absl::StrCat(TestRedisUrl(), "/", db); }

// Makes up, in Redis, a call in progress on `node`.
void SeedLiveCall(redis::Client& redis, const std::string& tenant_id, const std::string& agent_id,
                  const std::string& node, const std::string& call_id) {
  sv1::ActiveCall call;
  call.set_call_id(call_id);
  call.set_tenant_id(tenant_id);
  call.set_node_id(node);
  call.set_state(cv1::CALL_STATE_ANSWERED);
  if (!agent_id.empty()) call.add_agent_user_ids(agent_id);
  call.mutable_answered_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"SET", "sb:call:" + call_id, call.SerializeAsString()},
           {"SADD", "sb:calls:node:" + node, call_id},
           {"ZADD", "sb:calls:tenant:" + tenant_id, "1", call_id}}) {
    REQUIRE(redis.Command(cmd).ok());
  }
}

// Makes up a node whose last heartbeat was 5 minutes ago.
void SeedDeadNode(redis::Client& redis, const std::string& node) {
  const std::string old_beat = absl::StrCat(absl::ToUnixMillis(absl::Now() - absl::Minutes(5)));
  REQUIRE(redis.Command({"ZADD", "sb:sip:nodes", old_beat, node}).ok());
}

TEST_CASE("SIP nodes: listed with their load; a dead node's calls are closed out", "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY, {"--sip_dead_node_sweep=0"},
             PrivateRedisUrl(5));
  const std::string platform = e2e::Login(*w.identity, "", "superadmin", "Platform-Admin-2026");
  auto with = [](const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  };
  const std::string ours = absl::StrCat("udp:127.0.0.1:", w.r->sip_port);
  sv1::SipNode self;
  REQUIRE(Eventually([&] {
    sv1::ListNodesResponse nodes;
    if (!w.sip->ListNodes(with(platform).get(), {}, &nodes).ok()) return false;
    for (const auto& n : nodes.nodes()) {
      for (const auto& a : n.sip_addresses()) {
        if (a == ours) self = n;
      }
    }
    return !self.node_id().empty();
  }));
  CHECK(self.state() == sv1::SipNode::STATE_ACTIVE);
  CHECK(self.overload().level() == sv1::OverloadStatus::LEVEL_NORMAL);
  CHECK(self.overload().retry_after().seconds() == 5);
  {
    sv1::ListNodesResponse nodes;
    CHECK(w.sip->ListNodes(with(w.admin).get(), {}, &nodes).error_code() ==
          grpc::PERMISSION_DENIED);
    sv1::OverloadStatus status;
    REQUIRE(w.sip->GetOverloadStatus(with(platform).get(), {}, &status).ok());
    CHECK(status.node_id() == self.node_id());
    CHECK(status.queue_capacity() > 0);
  }

  // A node that died with a call in progress: its heartbeat is old, its call still "live".
  const std::string dead = "sip-dead-" + NewUuid().substr(0, 8);
  const std::string call_id = NewUuid();
  SeedDeadNode(*w.redis, dead);
  SeedLiveCall(*w.redis, w.tenant_id, w.agent_id, dead, call_id);
  sv1::ListNodesRequest with_dead;
  with_dead.set_include_dead(true);
  sv1::ListNodesResponse all;
  REQUIRE(w.sip->ListNodes(with(platform).get(), with_dead, &all).ok());
  CHECK(std::any_of(all.nodes().begin(), all.nodes().end(), [&](const sv1::SipNode& n) {
    return n.node_id() == dead && n.state() == sv1::SipNode::STATE_DEAD;
  }));
  sv1::CloseNodeCallsRequest close;
  close.set_node_id(self.node_id());
  sv1::CloseNodeCallsResponse closed;
  CHECK(w.sip->CloseNodeCalls(with(platform).get(), close, &closed).error_code() ==
        grpc::FAILED_PRECONDITION);
  close.set_node_id(dead);
  REQUIRE(w.sip->CloseNodeCalls(with(platform).get(), close, &closed).ok());
  CHECK(closed.calls_closed() == 1);
  auto [ended_id, events] = w.EndedCall();
  CHECK(ended_id == call_id);
  REQUIRE(events.size() == 1);
  CHECK(events[0].call().ended().cause() == cv1::HANGUP_CAUSE_NODE_FAILURE);
  CHECK(events[0].call().ended().outcome() == cv1::CALL_OUTCOME_ANSWERED);
  CHECK(w.LiveState(call_id).state() == cv1::CALL_STATE_ENDED);
  // Idempotent: nothing is left to close, and the node is forgotten.
  REQUIRE(w.sip->CloseNodeCalls(with(platform).get(), close, &closed).ok());
  CHECK(closed.calls_closed() == 0);
}

TEST_CASE("SIP nodes: a dead node's calls are closed out unasked; a restart closes its own",
          "[e2e][sip]") {
  const std::string url = PrivateRedisUrl(6);
  auto seeder = redis::Client::Create({.url = url});
  REQUIRE(seeder.ok());
  // A previous run of the node about to start left a call "live"; the tenant is not known yet
  // (the demo tenant is made on start), so that call names a made-up one.
  const std::string node = "restarted-" + NewUuid().substr(0, 8);
  const std::string leftover = NewUuid();
  const std::string other_tenant = NewUuid();
  SeedLiveCall(**seeder, other_tenant, "", node, leftover);

  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY,
             {"--sip_dead_node_sweep=1s", "--sip_node_id=" + node}, url);
  auto ended_event = [&](const std::string& tenant, const std::string& call_id) {
    std::optional<cv1::Event> found;
    auto reply = w.redis->Command({"XRANGE", "sb:events", "-", "+"});
    REQUIRE(reply.ok());
    for (const auto& entry : reply->elements()) {
      const auto& fields = entry.elements()[1].elements();
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        cv1::Event e;
        if (fields[i].str() == "e" && e.ParseFromString(fields[i + 1].str()) &&
            e.tenant_id() == tenant && e.call_id() == call_id &&
            e.type() == cv1::EVENT_TYPE_CALL_ENDED) {
          found = e;
        }
      }
    }
    return found;
  };
  {
    INFO("the node closed out its earlier run's call when it started");
    const std::optional<cv1::Event> e = ended_event(other_tenant, leftover);
    REQUIRE(e.has_value());
    CHECK(e->call().ended().cause() == cv1::HANGUP_CAUSE_NODE_FAILURE);
    CHECK(e->call().ended().reason() == "NODE_FAILURE: the node restarted");
    auto members = w.redis->Command({"SISMEMBER", "sb:calls:node:" + node, leftover});
    REQUIRE(members.ok());
    CHECK(members->integer() == 0);
  }

  // Another node dies with a call of the demo tenant in progress: within a sweep or two, this
  // node closes it out without being asked, and forgets the node.
  const std::string dead = "sip-dead-" + NewUuid().substr(0, 8);
  const std::string call_id = NewUuid();
  SeedLiveCall(*w.redis, w.tenant_id, w.agent_id, dead, call_id);
  SeedDeadNode(*w.redis, dead);
  std::optional<cv1::Event> closed;
  REQUIRE(Eventually([&] { return (closed = ended_event(w.tenant_id, call_id)).has_value(); }));
  CHECK(closed->call().ended().cause() == cv1::HANGUP_CAUSE_NODE_FAILURE);
  CHECK(closed->call().ended().reason() == "NODE_FAILURE: closed out by " + node);
  CHECK(closed->source() == "sip/" + node);
  CHECK(w.LiveState(call_id).state() == cv1::CALL_STATE_ENDED);
  REQUIRE(Eventually([&] {
    auto score = w.redis->Command({"ZSCORE", "sb:sip:nodes", dead});
    return score.ok() && score->is_nil();
  }));
  // This node is alive and never closes itself out.
  auto self = w.redis->Command({"ZSCORE", "sb:sip:nodes", node});
  REQUIRE(self.ok());
  CHECK(!self->is_nil());
}

TEST_CASE("keepalives: a registered phone gets OPTIONS, and its reachability and round trip show",
          "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY, {"--sip_keepalive_interval=1s"});
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto phone = Phone("agent_keepalive.xml", w.RegisterPhone(agent1), w.r->sip_port);
  RequireExit(phone, "the phone got an OPTIONS and answered it");
  sv1::Registration seen;
  REQUIRE(Eventually([&] {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + w.admin);
    sv1::ListRegistrationsRequest req;
    req.set_extension(w.extension);
    sv1::ListRegistrationsResponse regs;
    if (!w.sip->ListRegistrations(&ctx, req, &regs).ok() || regs.registrations_size() != 1) {
      return false;
    }
    seen = regs.registrations(0);
    return seen.has_rtt() && (seen.rtt().seconds() > 0 || seen.rtt().nanos() > 0);
  }));
  CHECK(seen.reachable());
  CHECK(seen.rtt().seconds() < 1);
}

TEST_CASE("registrations expire", "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY, {"--sip_min_expires=1"});
  const std::string contact = absl::StrCat("sip:", w.extension, "@127.0.0.1:5999");
  REQUIRE(RegisterSha256(w.r->sip_port, w.extension, w.sip_password, contact, 2) ==
          std::vector<int>{401, 200});
  CHECK(w.Bindings().size() == 1);
  CHECK(Eventually([&] { return w.Bindings().empty(); }));
  // With nothing registered the agent is not rung: the caller hears 480.
  testing::TempDir dir;
  const std::string out = dir.path() + "/code";
  auto run = RunCommand(SippArgs("carrier_refused.xml", testing::FreeTcpUdpPort(), w.r->sip_port,
                                 {{"did", kDid}, {"out", out}}));
  REQUIRE(run.ok());
  CHECK(run->exit_code != 0);  // 480 is neither of the refusals the scenario expects
  CHECK(absl::StrContains(run->output, "480"));
}

TEST_CASE("the caller cancels while the agent's phone rings", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto phone = Phone("agent_ring_cancelled.xml", w.RegisterPhone(agent1), w.r->sip_port);
  CHECK(CarrierCalls(w, "carrier_cancel.xml") == 0);
  RequireExit(phone, "the agent's phone saw the CANCEL");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) == std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED,
                                                     cv1::EVENT_TYPE_CALL_RINGING,
                                                     cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(events.back().call().ended().cause() == cv1::HANGUP_CAUSE_ORIGINATOR_CANCEL);
  CHECK(events.back().call().ended().outcome() == cv1::CALL_OUTCOME_MISSED);
  CHECK(events.back().call().ended().hangup_by() == cv1::HANGUP_PARTY_CUSTOMER);
  CHECK(w.LiveState(call_id).state() == cv1::CALL_STATE_ENDED);
}

TEST_CASE("the first agent is busy: the hunt moves to the next, who answers", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  SipWorld::Agent agent2 = w.AddAgent("agent2", ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  auto busy = Phone("agent_busy.xml", w.RegisterPhone(agent1), w.r->sip_port);
  auto answers = Phone("agent_answer.xml", w.RegisterPhone(agent2), w.r->sip_port);
  CHECK(CarrierCalls(w) == 0);
  RequireExit(busy, "agent1's phone said 486");
  RequireExit(answers, "agent2's phone answered");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(events[1].call().ringing().agent_user_id() == agent2.user_id);
  CHECK(events[2].call().answered().agent_user_id() == agent2.user_id);
  CHECK(w.LiveState(call_id).agent_user_ids(0) == agent2.user_id);
}

TEST_CASE(
    "extension then mobile: the extension rings first, then the mobile answers through "
    "the carrier",
    "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_THEN_MOBILE);
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto desk = Phone("agent_ring_cancelled.xml", w.RegisterPhone(agent1), w.r->sip_port);
  // The mobile is rung through the trunk: the carrier's side at the trunk's outbound address.
  auto mobile = Phone("agent_answer.xml", w.carrier_port, w.r->sip_port);
  CHECK(CarrierCalls(w) == 0);
  RequireExit(desk, "the desk phone rang and was cancelled when its step ended");
  RequireExit(mobile, "the mobile answered");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_RINGING, cv1::EVENT_TYPE_CALL_ANSWERED,
                                    cv1::EVENT_TYPE_CALL_ENDED});
  REQUIRE(events.size() == 5);
  CHECK(events[1].call().ringing().target() == w.extension);
  CHECK(events[2].call().ringing().target() == SipWorld::MobileOf("agent1"));
  CHECK(events[2].call().ringing().mobile());
  CHECK(events[3].call().answered().mobile());
  CHECK(events[3].call().answered().agent_user_id() == w.agent_id);
  // The mobile rang about a second (the profile's delay) after the extension.
  const int64_t gap_ms =
      (events[2].occurred_at().seconds() - events[1].occurred_at().seconds()) * 1000 +
      (events[2].occurred_at().nanos() - events[1].occurred_at().nanos()) / 1000000;
  CHECK(gap_ms >= 900);
  CHECK(gap_ms < 3000);
}

TEST_CASE("simultaneous ring: the mobile answers first and the extension is cancelled",
          "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_SIMULTANEOUS);
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  auto desk = Phone("agent_ring_cancelled.xml", w.RegisterPhone(agent1), w.r->sip_port);
  auto mobile = Phone("agent_answer.xml", w.carrier_port, w.r->sip_port);
  CHECK(CarrierCalls(w) == 0);
  RequireExit(desk, "the desk phone got CANCEL when the mobile answered");
  RequireExit(mobile, "the mobile answered");
  auto [call_id, events] = w.EndedCall();
  std::vector<cv1::Event> answered;
  for (const auto& e : events) {
    if (e.type() == cv1::EVENT_TYPE_CALL_ANSWERED) answered.push_back(e);
  }
  REQUIRE(answered.size() == 1);
  CHECK(answered[0].call().answered().mobile());
  CHECK(events.back().call().ended().outcome() == cv1::CALL_OUTCOME_ANSWERED);
}

TEST_CASE("an unregistered agent is reached on the mobile at once", "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_THEN_MOBILE);
  auto mobile = Phone("agent_answer.xml", w.carrier_port, w.r->sip_port);
  const absl::Time start = absl::Now();
  CHECK(CarrierCalls(w) == 0);
  RequireExit(mobile, "the mobile answered");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(events[1].call().ringing().mobile());
  // No waiting out the mobile delay for a phone that is not there.
  const absl::Time rang = absl::FromUnixNanos(events[1].occurred_at().seconds() * 1'000'000'000LL +
                                              events[1].occurred_at().nanos());
  CHECK(rang - start < absl::Milliseconds(900));
}

TEST_CASE("an internal call: an agent's phone dials a colleague's extension", "[e2e][sip]") {
  SipWorld w;
  SipWorld::Agent agent2 = w.AddAgent("agent2", ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  auto colleague = Phone("agent_answer.xml", w.RegisterPhone(agent2), w.r->sip_port);
  const PhoneCallResult call =
      PhoneCall(w.r->sip_port, w.extension, w.sip_password, agent2.extension);
  CHECK(call.invites == std::vector<int>{407, 200});
  CHECK(call.bye == 200);
  RequireExit(colleague, "the colleague's phone answered and got the BYE");
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                    cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(events[0].call().direction() == cv1::CALL_DIRECTION_INTERNAL);
  CHECK(events[0].call().created().origin() == cv1::CallEvent::Created::ORIGIN_PHONE);
  CHECK(events[0].call().created().caller_user_id() == w.agent_id);
  CHECK(events[0].call().created().to_number() == agent2.extension);
  CHECK(events[2].call().answered().agent_user_id() == agent2.user_id);
  CHECK(events[3].call().ended().hangup_by() == cv1::HANGUP_PARTY_AGENT);
  const auto live = w.LiveState(call_id);
  CHECK(live.direction() == cv1::CALL_DIRECTION_INTERNAL);
  CHECK(live.agent_user_ids_size() == 2);
}

TEST_CASE(
    "outbound: a correct PIN goes out through the trunk; a wrong one or none to an "
    "international number gets 403 and nothing goes out",
    "[e2e][sip]") {
  SipWorld w;
  std::string pin;
  w.AsAdmin([&](grpc::ClientContext& ctx) {
    iv1::CreatePinRequest req;
    req.set_user_id(w.agent_id);
    req.set_label("e2e");
    iv1::CreatePinResponse resp;
    auto s = w.identity->CreatePin(&ctx, req, &resp);
    pin = resp.generated_pin();
    return s;
  });
  REQUIRE(!pin.empty());
  constexpr char kAbroad[] = "+4930901820";

  SECTION("the correct PIN") {
    auto far_end = Phone("agent_answer.xml", w.carrier_port, w.r->sip_port);
    const PhoneCallResult call =
        PhoneCall(w.r->sip_port, w.extension, w.sip_password, absl::StrCat("*", pin, "*", kAbroad));
    CHECK(call.invites == std::vector<int>{407, 200});
    CHECK(call.bye == 200);
    RequireExit(far_end, "the called party (through the trunk) answered");
    auto [call_id, events] = w.EndedCall();
    CHECK(Types(events) ==
          std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_RINGING,
                                      cv1::EVENT_TYPE_CALL_ANSWERED, cv1::EVENT_TYPE_CALL_ENDED});
    CHECK(events[0].call().direction() == cv1::CALL_DIRECTION_OUTBOUND);
    CHECK(events[0].call().created().to_number() == kAbroad);
    CHECK(events[3].call().ended().outcome() == cv1::CALL_OUTCOME_ANSWERED);
    // The PIN is nowhere in the live state or the events.
    const auto live = w.LiveState(call_id);
    CHECK(live.to_number() == kAbroad);
    for (const auto& e : events) CHECK(!absl::StrContains(e.SerializeAsString(), "*" + pin + "*"));
  }
  SECTION("a wrong PIN") {
    const std::string wrong = pin == "000000" ? "111111" : "000000";
    const PhoneCallResult call = PhoneCall(w.r->sip_port, w.extension, w.sip_password,
                                           absl::StrCat("*", wrong, "*", kAbroad));
    CHECK(call.invites == std::vector<int>{407, 403});
    auto [call_id, events] = w.EndedCall();
    CHECK(Types(events) ==
          std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_ENDED});
    CHECK(events.back().call().ended().reason() == "PIN_INVALID");
    CHECK(events.back().call().ended().outcome() == cv1::CALL_OUTCOME_REFUSED);
  }
  SECTION("no PIN to an international number") {
    const PhoneCallResult call = PhoneCall(w.r->sip_port, w.extension, w.sip_password, kAbroad);
    CHECK(call.invites == std::vector<int>{407, 403});
    auto [call_id, events] = w.EndedCall();
    CHECK(events.back().call().ended().reason() == "PIN_REQUIRED");
    CHECK(events.back().call().ended().cause() == cv1::HANGUP_CAUSE_FORBIDDEN);
  }
}

TEST_CASE("tools/run's demo seed gives a working phone line: register, call the DID, answer",
          "[e2e][sip]") {
  auto r = Start({"--platform_admin_password=Platform-Admin-2026", "--demo_tenant",
                  absl::StrCat("--demo_password=", kPassword)});
  REQUIRE(Eventually([&] {
    return HealthOf(*r->health, "switchboard.sip.v1.SipService") == HealthCheckResponse::SERVING;
  }));
  std::map<std::string, std::string> env;
  for (int run = 0; run < 2; ++run) {  // idempotent: a second run keeps the data
    auto seeded =
        RunCommand({SB_DEMO_SEED_BINARY, absl::StrCat("--grpc_addr=127.0.0.1:", r->grpc_port),
                    absl::StrCat("--password=", kPassword)});
    REQUIRE(seeded.ok());
    INFO(seeded->output);
    REQUIRE(seeded->exit_code == 0);
    for (absl::string_view line : absl::StrSplit(seeded->output, '\n', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      env[kv.first] = kv.second;
    }
  }
  CHECK(env["SB_DEMO_SIP_DOMAIN"] == kDomain);
  CHECK(env["SB_DEMO_DID"] == kDid);
  REQUIRE(!env["SB_DEMO_AGENT_EXT"].empty());
  const int phone_port = testing::FreeTcpUdpPort();
  REQUIRE(RegisterSha256(r->sip_port, env["SB_DEMO_AGENT_EXT"], env["SB_DEMO_AGENT_SIP_PASSWORD"],
                         absl::StrCat("sip:", env["SB_DEMO_AGENT_EXT"], "@127.0.0.1:", phone_port),
                         300) == std::vector<int>{401, 200});
  auto phone = Phone("agent_answer.xml", phone_port, r->sip_port);
  // SIPp's built-in caller, as the README suggests, from another loopback address.
  auto carrier = RunCommand({"sipp",
                             "-sn",
                             "uac",
                             "-s",
                             env["SB_DEMO_DID"],
                             "-i",
                             "127.0.0.3",
                             "-mi",
                             "127.0.0.3",
                             "-p",
                             std::to_string(testing::FreeTcpUdpPort()),
                             "-m",
                             "1",
                             "-d",
                             "200",
                             "-timeout",
                             "20s",
                             "-timeout_error",
                             "-nostdin",
                             absl::StrCat("127.0.0.1:", r->sip_port)});
  REQUIRE(carrier.ok());
  INFO(carrier->output);
  CHECK(carrier->exit_code == 0);
  RequireExit(phone, "agent1's phone answered the demo number");
}

TEST_CASE("an unknown number gets 404 and an untrusted source 403; nothing rings", "[e2e][sip]") {
  SipWorld w;
  testing::TempDir dir;
  const std::string out = dir.path() + "/code";
  auto refused = [&](const std::string& did, const std::string& ip) {
    std::remove(out.c_str());
    auto run = RunCommand(SippArgs("carrier_refused.xml", testing::FreeTcpUdpPort(), w.r->sip_port,
                                   {{"did", did}, {"out", out}}, {}, ip));
    REQUIRE(run.ok());
    INFO(run->output);
    CHECK(run->exit_code == 0);
    std::ifstream in(out);
    std::string code;
    in >> code;
    return code;
  };
  CHECK(refused("+3619999999", "127.0.0.1") == "404");
  // The trunk accepts 127.0.0.1/32 only.
  CHECK(refused(kDid, "127.0.0.2") == "403");
  CHECK(w.CallEvents().empty());
  auto live = w.redis->Command({"ZCARD", "sb:calls:tenant:" + w.tenant_id});
  REQUIRE(live.ok());
  CHECK(live->integer() == 0);
}

TEST_CASE("past --sip_max_cps new INVITEs get 503 with Retry-After at once", "[e2e][sip]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY, {"--sip_max_cps=1"});
  testing::TempDir dir;
  const std::string out = dir.path() + "/codes";
  // Three calls within a few milliseconds to an unknown number: the first is admitted (and gets
  // its 404), the bucket holds one call a second, so the others get 503 before any lookup.
  auto run = RunCommand(SippArgs("carrier_refused.xml", testing::FreeTcpUdpPort(), w.r->sip_port,
                                 {{"did", "+3619999999"}, {"out", out}}, {"-m", "3", "-r", "100"}));
  REQUIRE(run.ok());
  INFO(run->output);
  CHECK(run->exit_code == 0);
  std::ifstream in(out);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 3);
  CHECK(std::count(lines.begin(), lines.end(), "404") >= 1);
  {  // The refusals are counted as overload refusals.
    const std::string platform = e2e::Login(*w.identity, "", "superadmin", "Platform-Admin-2026");
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + platform);
    sv1::OverloadStatus status;
    REQUIRE(w.sip->GetOverloadStatus(&ctx, {}, &status).ok());
    CHECK(status.invite_limit_per_second() == 1);
    CHECK(status.invites_rejected_total() == std::count(lines.begin(), lines.end(), "503 5"));
  }
  CHECK(std::count(lines.begin(), lines.end(), "503 5") >= 1);  // Retry-After: 5 (the default)
  CHECK(std::count(lines.begin(), lines.end(), "404") +
            std::count(lines.begin(), lines.end(), "503 5") ==
        3);
  CHECK(w.CallEvents().empty());
}

// ---------------------------------------------------------------------------------------------
// Anchored media: the calls' audio goes through the media service (issue #6)

namespace mv1 = ::switchboard::media::v1;
constexpr char kInternalToken[] = "e2e-internal-token-for-media-0123456789";

// G.711 mu-law of a 16-bit sample (the usual segment encoder with the 0x84 bias).
uint8_t MuLaw(int sample) {
  const int sign = sample < 0 ? 0x80 : 0;
  int magnitude = std::min(std::abs(sample), 32635) + 0x84;
  int exponent = 7;
  for (int mask = 0x4000; (magnitude & mask) == 0 && exponent > 0; mask >>= 1) --exponent;
  const int mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return static_cast<uint8_t>(~(sign | (exponent << 4) | mantissa));
}

// `count` RTP packets of a `hz` tone in PCMU, 20 ms (160 samples) each, as a phone sends them:
// sequence numbers and timestamps from `first`, one SSRC.
std::vector<std::string> TonePackets(double hz, int count, uint16_t first, uint32_t ssrc) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string p(12, '\0');
    const uint16_t seq = static_cast<uint16_t>(first + i);
    const uint32_t ts = static_cast<uint32_t>(first) * 160 + static_cast<uint32_t>(i) * 160;
    p[0] = static_cast<char>(0x80);
    p[1] = 0;  // PCMU
    p[2] = static_cast<char>(seq >> 8);
    p[3] = static_cast<char>(seq & 0xff);
    for (int b = 0; b < 4; ++b) {
      p[4 + b] = static_cast<char>((ts >> (24 - 8 * b)) & 0xff);
      p[8 + b] = static_cast<char>((ssrc >> (24 - 8 * b)) & 0xff);
    }
    for (int n = 0; n < 160; ++n) {
      const double t = (i * 160 + n) / 8000.0;
      p.push_back(static_cast<char>(MuLaw(static_cast<int>(12000 * std::sin(2 * M_PI * hz * t)))));
    }
    out.push_back(std::move(p));
  }
  return out;
}

// The SIPp phones of an anchored call: the agent's phone answers and the carrier calls, each
// naming one of the test's sockets in its SDP, so that the test plays and hears the audio.
struct MediaCall {
  media::test::UdpParty caller_audio, agent_audio;
  ChildProcess phone, carrier;
  sv1::ActiveCall call;

  explicit MediaCall(SipWorld& w)
      : phone(Start(w, "agent_media.xml",
                    w.RegisterPhone({w.agent_id, w.extension, w.sip_password}),
                    {{"rtp_port", std::to_string(agent_audio.port())}})),
        carrier(Start(w, "carrier_media.xml", testing::FreeTcpUdpPort(),
                      {{"did", kDid}, {"rtp_port", std::to_string(caller_audio.port())}})) {
    call = w.WaitForCall(cv1::CALL_STATE_ANSWERED);
  }

  // The console hangs up: both phones get a BYE and exit.
  void HangUp(SipWorld& w) {
    w.AsAdmin([&](grpc::ClientContext& ctx) {
      sv1::HangupCallRequest req;
      req.set_call_id(call.call_id());
      google::protobuf::Empty out;
      return w.sip->HangupCall(&ctx, req, &out);
    });
    RequireExit(carrier, "the carrier");
    RequireExit(phone, "the agent's phone");
  }

  static ChildProcess Start(SipWorld& w, const std::string& scenario, int port,
                            const std::map<std::string, std::string>& vars) {
    auto p = ChildProcess::Start({.argv = SippArgs(scenario, port, w.r->sip_port, vars)});
    REQUIRE(p.ok());
    REQUIRE(Eventually([&] { return UdpPortTaken(port); }));
    return *std::move(p);
  }
};

grpc::Status GetMediaSession(SipWorld& w, const std::string& call_id, mv1::MediaSession* out) {
  auto media = mv1::MediaService::NewStub(w.channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-sb-internal-token", kInternalToken);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  mv1::GetSessionRequest req;
  req.set_call_id(call_id);
  return media->GetSession(&ctx, req, out);
}

TEST_CASE("anchored media: each side's audio reaches the other through media, unchanged",
          "[e2e][sip][media]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY,
             {absl::StrCat("--internal_token=", kInternalToken)});
  MediaCall m(w);

  // Both descriptions went through media: it knows each party's address from its SDP, and each
  // party was given one of media's ports, not the other party's.
  mv1::MediaSession session;
  const grpc::Status got = GetMediaSession(w, m.call.call_id(), &session);
  INFO(got.error_message());
  REQUIRE(got.ok());
  REQUIRE(session.legs_size() == 2);
  const mv1::MediaLeg& caller_leg = session.legs(0);
  const mv1::MediaLeg& agent_leg = session.legs(1);
  CHECK(caller_leg.remote_address() == absl::StrCat("127.0.0.1:", m.caller_audio.port()));
  CHECK(agent_leg.remote_address() == absl::StrCat("127.0.0.1:", m.agent_audio.port()));
  CHECK(caller_leg.codec() == "PCMU/8000");
  const int caller_side = caller_leg.local().rtp_port();  // where the caller sends
  const int agent_side = agent_leg.local().rtp_port();    // where the agent's phone sends
  CHECK(caller_side != agent_side);

  // Two seconds of a 440 Hz tone from the caller and of 1 kHz from the agent, interleaved.
  const auto from_caller = TonePackets(440, 100, 1000, 0x11111111);
  const auto from_agent = TonePackets(1000, 100, 5000, 0x22222222);
  std::vector<std::string> heard_by_agent, heard_by_caller;
  std::set<int> agent_heard_from, caller_heard_from;
  auto drain = [](const media::test::UdpParty& party, std::vector<std::string>& heard,
                  std::set<int>& from, int wait_ms) {
    while (auto got = party.Receive(wait_ms)) {
      heard.push_back(got->first);
      from.insert(got->second);
      wait_ms = 0;
    }
  };
  for (size_t i = 0; i < from_caller.size(); ++i) {
    m.caller_audio.SendTo(caller_side, from_caller[i]);
    m.agent_audio.SendTo(agent_side, from_agent[i]);
    drain(m.agent_audio, heard_by_agent, agent_heard_from, 2);
    drain(m.caller_audio, heard_by_caller, caller_heard_from, 2);
  }
  drain(m.agent_audio, heard_by_agent, agent_heard_from, 500);
  drain(m.caller_audio, heard_by_caller, caller_heard_from, 500);
  // Every packet, in order, byte for byte (header and payload), from media's port for that side
  // (symmetric RTP).
  CHECK(heard_by_agent == from_caller);
  CHECK(heard_by_caller == from_agent);
  CHECK(agent_heard_from == std::set<int>{agent_side});
  CHECK(caller_heard_from == std::set<int>{caller_side});

  REQUIRE(GetMediaSession(w, m.call.call_id(), &session).ok());
  REQUIRE(session.legs_size() == 2);
  CHECK(session.legs(0).latched());
  CHECK(session.legs(1).latched());
  CHECK(session.legs(0).packets_received() == 100);
  CHECK(session.legs(1).packets_received() == 100);
  CHECK(session.legs(0).packets_lost() == 0);

  // The console hangs up; both phones get a BYE and media lets the call's ports go.
  m.HangUp(w);
  auto [call_id, events] = w.EndedCall();
  CHECK(events.back().call().ended().outcome() == cv1::CALL_OUTCOME_ANSWERED);
  CHECK(Eventually([&] {
    mv1::MediaSession gone;
    return GetMediaSession(w, call_id, &gone).error_code() == grpc::StatusCode::NOT_FOUND;
  }));
}

TEST_CASE("anchored media: the caller's RFC 4733 digits are reported once each, in order",
          "[e2e][sip][media]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY,
             {absl::StrCat("--internal_token=", kInternalToken)});
  MediaCall m(w);
  // Media's event stream for this call, as routing's IVR will read it.
  auto media = mv1::MediaService::NewStub(w.channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-sb-internal-token", kInternalToken);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  mv1::StreamMediaEventsRequest req;
  req.set_call_id(m.call.call_id());
  auto stream = media->StreamMediaEvents(&ctx, req);
  mv1::MediaSession session;
  REQUIRE(GetMediaSession(w, m.call.call_id(), &session).ok());
  const int to = session.legs(0).local().rtp_port();
  // The caller keys 4, 2, 2, # as a phone sends them: updates, then the end packet three times,
  // 100 ms apart (the second 2 is a new event).
  uint16_t seq = 1;
  uint32_t timestamp = 800;
  for (int event : {4, 2, 2, 11}) {
    for (int duration : {160, 320}) {
      m.caller_audio.SendTo(to,
                            media::test::TelephoneEvent(seq++, timestamp, event, false, duration));
    }
    for (int copy = 0; copy < 3; ++copy) {
      m.caller_audio.SendTo(to, media::test::TelephoneEvent(seq++, timestamp, event, true, 640));
    }
    timestamp += 800;
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::string digits;
  mv1::MediaEvent event;
  while (digits.size() < 4 && stream->Read(&event)) {
    if (!event.has_dtmf()) continue;
    CHECK(event.call_id() == m.call.call_id());
    CHECK(event.tag() == session.legs(0).tag());
    digits += event.dtmf().digit();
  }
  CHECK(digits == "422#");
  // Every event packet went on to the agent too (the relay passes events through).
  int relayed = 0;
  while (m.agent_audio.Receive(200)) ++relayed;
  CHECK(relayed == 20);
  ctx.TryCancel();
  (void)stream->Finish();
  m.HangUp(w);
}

TEST_CASE("anchored media: a call whose RTP stops is hung up (MEDIA_TIMEOUT)",
          "[e2e][sip][media]") {
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY,
             {absl::StrCat("--internal_token=", kInternalToken), "--media_rtp_timeout=1s"});
  MediaCall m(w);  // nobody sends a packet
  RequireExit(m.carrier, "the carrier");
  RequireExit(m.phone, "the agent's phone");
  auto [call_id, events] = w.EndedCall();
  CHECK(events.back().call().ended().cause() == cv1::HANGUP_CAUSE_MEDIA_TIMEOUT);
  CHECK(events.back().call().ended().hangup_by() == cv1::HANGUP_PARTY_SYSTEM);
  CHECK(events.back().call().ended().reason() == "MEDIA_TIMEOUT");
}

TEST_CASE("anchored media: an offer media cannot anchor gets 488, and the call is over",
          "[e2e][sip][media]") {
  SipWorld w;
  SipWorld::Agent agent1{w.agent_id, w.extension, w.sip_password};
  (void)w.RegisterPhone(agent1);  // registered, and never rung
  CHECK(CarrierCalls(w, "carrier_srtp.xml") == 0);
  auto [call_id, events] = w.EndedCall();
  CHECK(Types(events) ==
        std::vector<cv1::EventType>{cv1::EVENT_TYPE_CALL_CREATED, cv1::EVENT_TYPE_CALL_ENDED});
  CHECK(events.back().call().ended().sip_code() == 488);
  CHECK(events.back().call().ended().reason() == "MEDIA_NOT_ACCEPTABLE");
}

// The normalized correlation of `a` (from `at`) with `b` over b's length: 1 for the same signal.
double Correlation(const std::vector<double>& a, size_t at, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < b.size() && at + i < a.size(); ++i) {
    ab += a[at + i] * b[i];
    aa += a[at + i] * a[at + i];
    bb += b[i] * b[i];
  }
  return aa == 0 || bb == 0 ? 0 : ab / std::sqrt(aa * bb);
}

// The decoded audio of packets [from, to) of `packets` (PCMU after a 12-byte header).
std::vector<double> Decoded(const std::vector<std::string>& packets, size_t from, size_t to) {
  std::vector<double> out;
  for (size_t i = from; i < to; ++i) {
    for (size_t n = 12; n < packets[i].size(); ++n) {
      out.push_back(media::g711::UlawToLinear(static_cast<uint8_t>(packets[i][n])));
    }
  }
  return out;
}

TEST_CASE(
    "recording: a recorded call is a stereo WAV, customer left and agent right, its pause "
    "silent, its length the call's",
    "[e2e][sip][media]") {
  testing::TempDir root;
  SipWorld w(ov1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY,
             {absl::StrCat("--internal_token=", kInternalToken),
              absl::StrCat("--media_recording_root=", root.path())});
  w.AsAdmin([&](grpc::ClientContext& ctx) {  // the project's policy: record every call
    ov1::UpdateProjectRequest req;
    req.mutable_project()->set_id(w.project_id);
    req.mutable_project()->set_recording_policy(cv1::RECORDING_POLICY_ALWAYS);
    req.mutable_update_mask()->add_paths("recording_policy");
    ov1::Project out;
    return w.org->UpdateProject(&ctx, req, &out);
  });
  MediaCall m(w);
  REQUIRE(Eventually([&] {
    sv1::GetActiveCallRequest req;
    req.set_call_id(m.call.call_id());
    sv1::ActiveCall live;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + w.admin);
    return w.sip->GetActiveCall(&ctx, req, &live).ok() && live.recording();
  }));
  mv1::MediaSession session;
  REQUIRE(GetMediaSession(w, m.call.call_id(), &session).ok());
  REQUIRE(session.legs_size() == 2);
  const int caller_side = session.legs(0).local().rtp_port();
  const int agent_side = session.legs(1).local().rtp_port();

  // Three seconds of each party's tone, in real time (the recording places audio by arrival and
  // timestamp); the recording is paused from the first second to the second and a half.
  const auto from_caller = TonePackets(440, 150, 100, 0x33333333);
  const auto from_agent = TonePackets(1000, 150, 900, 0x44444444);
  auto media = mv1::MediaService::NewStub(w.channel);
  auto control = [&](bool pause) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-sb-internal-token", kInternalToken);
    mv1::Recording out;
    grpc::Status s;
    if (pause) {
      mv1::PauseRecordingRequest req;
      req.set_call_id(m.call.call_id());
      s = media->PauseRecording(&ctx, req, &out);
    } else {
      mv1::ResumeRecordingRequest req;
      req.set_call_id(m.call.call_id());
      s = media->ResumeRecording(&ctx, req, &out);
    }
    INFO(s.error_message());
    REQUIRE(s.ok());
    CHECK(out.state() == (pause ? mv1::RECORDING_STATE_PAUSED : mv1::RECORDING_STATE_RECORDING));
  };
  const absl::Time streaming = absl::Now();
  absl::Time paused_at, resumed_at;
  for (size_t i = 0; i < from_caller.size(); ++i) {
    absl::SleepFor(streaming + absl::Milliseconds(20 * static_cast<int64_t>(i)) - absl::Now());
    if (i == 50) {
      paused_at = absl::Now();
      control(true);
    }
    if (i == 75) {
      resumed_at = absl::Now();
      control(false);
    }
    m.caller_audio.SendTo(caller_side, from_caller[i]);
    m.agent_audio.SendTo(agent_side, from_agent[i]);
    while (m.caller_audio.Receive(0)) {
    }
    while (m.agent_audio.Receive(0)) {
    }
  }
  absl::SleepFor(absl::Milliseconds(100));
  m.HangUp(w);
  auto [call_id, events] = w.EndedCall();
  const auto answered = std::find_if(events.begin(), events.end(), [](const cv1::Event& e) {
    return e.type() == cv1::EVENT_TYPE_CALL_ANSWERED;
  });
  REQUIRE(answered != events.end());
  const auto started = std::find_if(events.begin(), events.end(), [](const cv1::Event& e) {
    return e.type() == cv1::EVENT_TYPE_CALL_RECORDING_STARTED;
  });
  REQUIRE(started != events.end());
  const std::string recording_id = started->call().recording_started().recording_id();

  // The catalogue has it, complete, as long as the call was talking.
  mv1::Recording recording;
  REQUIRE(Eventually([&] {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + w.admin);
    mv1::GetRecordingRequest req;
    req.set_recording_id(recording_id);
    return media->GetRecording(&ctx, req, &recording).ok() &&
           recording.state() == mv1::RECORDING_STATE_COMPLETED;
  }));
  INFO(recording.ShortDebugString());
  CHECK(recording.call_id() == call_id);
  CHECK(recording.agent_user_id() == w.agent_id);
  CHECK(recording.channels() == 2);
  CHECK(recording.sample_rate() == 8000);
  const auto ms = [](const google::protobuf::Duration& d) {
    return d.seconds() * 1000 + d.nanos() / 1'000'000;
  };
  const auto at_ms = [](const google::protobuf::Timestamp& t) {
    return t.seconds() * 1000 + t.nanos() / 1'000'000;
  };
  const int64_t talked = at_ms(events.back().occurred_at()) - at_ms(answered->occurred_at());
  CHECK(std::abs(ms(recording.duration()) - talked) <= 40);
  const int64_t paused_ms = absl::ToInt64Milliseconds(resumed_at - paused_at);
  CHECK(std::abs(ms(recording.paused_duration()) - paused_ms) <= 40);
  {  // Listed for the tenant.
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + w.admin);
    mv1::ListRecordingsRequest req;
    req.set_call_id(call_id);
    mv1::ListRecordingsResponse list;
    REQUIRE(media->ListRecordings(&ctx, req, &list).ok());
    REQUIRE(list.recordings_size() == 1);
    CHECK(list.recordings(0).id() == recording_id);
  }

  // Downloaded whole, and a range of it (HTTP Range for the gateway).
  auto download = [&](int64_t offset, int64_t length, std::string* etag = nullptr) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + w.admin);
    mv1::DownloadRecordingRequest req;
    req.set_recording_id(recording_id);
    req.set_offset(offset);
    req.set_length(length);
    req.set_chunk_size(8192);
    auto reader = media->DownloadRecording(&ctx, req);
    std::string bytes;
    mv1::DownloadRecordingResponse chunk;
    while (reader->Read(&chunk)) {
      CHECK(chunk.offset() == offset + static_cast<int64_t>(bytes.size()));
      if (etag != nullptr && !chunk.etag().empty()) *etag = chunk.etag();
      bytes += chunk.data();
    }
    const grpc::Status s = reader->Finish();
    INFO(s.error_message());
    CHECK(s.ok());
    return bytes;
  };
  std::string etag;
  const std::string wav_bytes = download(0, 0, &etag);
  CHECK(static_cast<int64_t>(wav_bytes.size()) == recording.size_bytes());
  CHECK(etag == absl::StrCat("\"", recording.sha256(), "\""));
  CHECK(download(1000, 100) == wav_bytes.substr(1000, 100));
  const std::string copy = root.path() + "/downloaded.wav";
  {
    std::ofstream out(copy, std::ios::binary);
    out << wav_bytes;
  }
  SF_INFO info{};
  SNDFILE* f = sf_open(copy.c_str(), SFM_READ, &info);
  REQUIRE(f != nullptr);
  CHECK(info.channels == 2);
  CHECK(info.samplerate == 8000);
  std::vector<int16_t> frames(static_cast<size_t>(info.frames) * 2);
  REQUIRE(sf_readf_short(f, frames.data(), info.frames) == info.frames);
  sf_close(f);
  std::vector<double> left, right;
  for (size_t i = 0; i < frames.size(); i += 2) {
    left.push_back(frames[i]);
    right.push_back(frames[i + 1]);
  }

  // The customer's tone is the left channel and the agent's the right: find where the first
  // second of each begins, then compare (normalized correlation near 1 for the same audio, near 0
  // for the other party's tone).
  const std::vector<double> caller_first = Decoded(from_caller, 0, 45);
  const std::vector<double> agent_first = Decoded(from_agent, 0, 45);
  auto best_lag = [](const std::vector<double>& channel, const std::vector<double>& reference) {
    size_t best = 0;
    double score = -1;
    for (size_t lag = 0; lag < 4000 && lag < channel.size(); ++lag) {
      const double c = Correlation(channel, lag, reference);
      if (c > score) {
        score = c;
        best = lag;
      }
    }
    return std::make_pair(best, score);
  };
  const auto [left_lag, left_score] = best_lag(left, caller_first);
  const auto [right_lag, right_score] = best_lag(right, agent_first);
  INFO("left at " << left_lag << ": " << left_score << "; right at " << right_lag << ": "
                  << right_score);
  CHECK(left_score > 0.99);
  CHECK(right_score > 0.99);
  CHECK(std::abs(static_cast<double>(left_lag) - static_cast<double>(right_lag)) <= 8 * 20);
  CHECK(std::abs(Correlation(left, left_lag, agent_first)) < 0.2);
  CHECK(std::abs(Correlation(right, right_lag, caller_first)) < 0.2);
  // The stream began shortly after the recording did.
  CHECK(static_cast<int64_t>(left_lag) <=
        8 * absl::ToInt64Milliseconds(streaming -
                                      absl::FromUnixMillis(at_ms(answered->occurred_at()))) +
            8 * 100);

  // The paused span is silence in both channels, as long as the pause (within 40 ms), where the
  // stream was at packet 50; audio resumes after it.
  auto longest_silence = [](const std::vector<double>& channel, size_t from) {
    size_t best = 0, best_at = 0, run = 0;
    for (size_t i = from; i < channel.size(); ++i) {
      run = channel[i] == 0 ? run + 1 : 0;
      if (run > best) {
        best = run;
        best_at = i + 1 - run;
      }
    }
    return std::make_pair(best_at, best);
  };
  for (const auto& [channel, lag] :
       {std::make_pair(&left, left_lag), std::make_pair(&right, right_lag)}) {
    const auto [at, length] = longest_silence(*channel, lag + 160 * 10);
    CHECK(std::abs(static_cast<int64_t>(length) - 8 * paused_ms) <= 8 * 40);
    CHECK(std::abs(static_cast<int64_t>(at) - static_cast<int64_t>(lag + 50 * 160)) <= 8 * 40);
  }
  CHECK(Correlation(left, left_lag + 80 * 160, Decoded(from_caller, 80, 140)) > 0.99);
  CHECK(Correlation(right, right_lag + 80 * 160, Decoded(from_agent, 80, 140)) > 0.99);
}

}  // namespace
}  // namespace sb::e2e
