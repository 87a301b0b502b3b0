// GrpcSipPeers against fake org and routing services on a loopback gRPC server: which answers of
// MatchInboundTrunk it keeps and for how long, and ReportCallEventAsync: it returns at once,
// carries the credential and a deadline, bounds the reports in flight, and its destructor waits
// for them.

#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/fake_clock.h"
#include "libs/testing/eventually.h"
#include "services/sip/peers.h"

namespace sb::sip {
namespace {

using ::sb::testing::Eventually;

constexpr char kToken[] = "internal-token-for-tests";

std::string Metadata(const grpc::ServerContext& context, const std::string& key) {
  auto it = context.client_metadata().find(key);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Answers MatchInboundTrunk with `code` (a match for tenant "t-1" when OK), counting the calls.
class FakeOrg final : public ov1::OrgService::Service {
 public:
  grpc::Status MatchInboundTrunk(grpc::ServerContext*, const ov1::MatchInboundTrunkRequest* req,
                                 ov1::MatchInboundTrunkResponse* resp) override {
    ++calls;
    if (code != grpc::StatusCode::OK) return grpc::Status(code.load(), "as the test says");
    resp->mutable_number()->set_tenant_id("t-1");
    resp->mutable_number()->set_number(req->number());
    resp->mutable_trunk()->set_id("trunk-1");
    return grpc::Status::OK;
  }

  std::atomic<int> calls{0};
  std::atomic<grpc::StatusCode> code{grpc::StatusCode::OK};
};

// Takes ReportCallEvent, noting each call's id, credential and deadline; while `held`, each call
// waits until Release().
class FakeRouting final : public rv1::RoutingService::Service {
 public:
  struct Seen {
    std::string call_id;
    std::string token;
    std::chrono::system_clock::duration deadline_in;
  };

  grpc::Status ReportCallEvent(grpc::ServerContext* context, const rv1::ReportCallEventRequest* req,
                               rv1::ReportCallEventResponse*) override {
    absl::MutexLock lock(&mu_);
    seen_.push_back({req->call_id(), Metadata(*context, "x-sb-internal-token"),
                     context->deadline() - std::chrono::system_clock::now()});
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
    return grpc::Status::OK;
  }

  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  std::vector<Seen> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

class Peers {
 public:
  explicit Peers(GrpcSipPeers::Options options = {}) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&org);
    builder.RegisterService(&routing);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    auto factory = [channel] { return channel; };
    options.internal_token = kToken;
    peers = std::make_unique<GrpcSipPeers>(factory, factory, factory, factory, clock, options);
  }
  ~Peers() {
    routing.Release();
    peers.reset();
    server_->Shutdown();
  }

  FakeClock clock;
  FakeOrg org;
  FakeRouting routing;
  std::unique_ptr<GrpcSipPeers> peers;

 private:
  std::unique_ptr<grpc::Server> server_;
};

rv1::ReportCallEventRequest Ringing(const std::string& call_id) {
  rv1::ReportCallEventRequest req;
  req.set_call_id(call_id);
  req.mutable_target_ringing()->set_target_id("agent-1:ext");
  return req;
}

TEST_CASE("GrpcSipPeers keeps trunk matches and refusals, never failures", "[sip][peers]") {
  Peers p({.cache_ttl = absl::Seconds(30), .negative_cache_ttl = absl::Seconds(5)});
  GrpcSipPeers& peers = *p.peers;

  SECTION("a match is reused for cache_ttl, per source and number") {
    auto first = peers.MatchInboundTrunk("203.0.113.7", "+3612345678");
    REQUIRE(first.ok());
    CHECK(first->number().tenant_id() == "t-1");
    CHECK(first->number().number() == "+3612345678");
    CHECK(first->trunk().id() == "trunk-1");
    p.clock.Advance(absl::Seconds(29));
    auto again = peers.MatchInboundTrunk("203.0.113.7", "+3612345678");
    REQUIRE(again.ok());
    CHECK(again->trunk().id() == "trunk-1");
    CHECK(p.org.calls == 1);
    CHECK(peers.MatchInboundTrunk("203.0.113.8", "+3612345678").ok());
    CHECK(peers.MatchInboundTrunk("203.0.113.7", "+3612345679").ok());
    CHECK(p.org.calls == 3);
    p.clock.Advance(absl::Seconds(2));
    CHECK(peers.MatchInboundTrunk("203.0.113.7", "+3612345678").ok());
    CHECK(p.org.calls == 4);
  }

  SECTION("NotFound and PermissionDenied are reused for negative_cache_ttl") {
    for (const auto& [code, number] :
         {std::pair{grpc::StatusCode::NOT_FOUND, "+3612340001"},
          std::pair{grpc::StatusCode::PERMISSION_DENIED, "+3612340002"}}) {
      p.org.code = code;
      p.org.calls = 0;
      const absl::StatusCode want = static_cast<absl::StatusCode>(code);
      CHECK(peers.MatchInboundTrunk("203.0.113.7", number).status().code() == want);
      p.clock.Advance(absl::Seconds(4));
      CHECK(peers.MatchInboundTrunk("203.0.113.7", number).status().code() == want);
      CHECK(p.org.calls == 1);
      p.clock.Advance(absl::Seconds(2));
      p.org.code = grpc::StatusCode::OK;
      CHECK(peers.MatchInboundTrunk("203.0.113.7", number).ok());
      CHECK(p.org.calls == 2);
    }
  }

  SECTION("failures are asked again at once") {
    for (const grpc::StatusCode code :
         {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::INTERNAL}) {
      p.org.code = code;
      p.org.calls = 0;
      CHECK(absl::IsUnavailable(peers.MatchInboundTrunk("203.0.113.7", "+3612340003").status()));
      CHECK(absl::IsUnavailable(peers.MatchInboundTrunk("203.0.113.7", "+3612340003").status()));
      CHECK(p.org.calls == 2);
    }
    p.org.code = grpc::StatusCode::OK;
    CHECK(peers.MatchInboundTrunk("203.0.113.7", "+3612340003").ok());
  }
}

TEST_CASE("ReportCallEventAsync returns at once and bounds the reports in flight", "[sip][peers]") {
  Peers p({.deadline = absl::Seconds(3), .max_reports_in_flight = 2});
  GrpcSipPeers& peers = *p.peers;
  p.routing.Hold();
  // Each returns while routing still holds the reports before it.
  peers.ReportCallEventAsync(Ringing("call-1"));
  peers.ReportCallEventAsync(Ringing("call-2"));
  REQUIRE(Eventually([&] { return p.routing.seen().size() == 2; }));
  CHECK(peers.reports_in_flight() == 2);
  // Past the bound: dropped at once, counted.
  peers.ReportCallEventAsync(Ringing("call-3"));
  CHECK(peers.reports_dropped() == 1);
  CHECK(peers.reports_in_flight() == 2);

  for (const FakeRouting::Seen& seen : p.routing.seen()) {
    CHECK(seen.token == kToken);
    // The deadline the synchronous calls have (3 s here; gRPC rounds the timeout it sends up).
    CHECK(seen.deadline_in < std::chrono::milliseconds(3100));
    CHECK(seen.deadline_in > std::chrono::seconds(2));
  }
  p.routing.Release();
  REQUIRE(Eventually([&] { return peers.reports_in_flight() == 0; }));
  peers.ReportCallEventAsync(Ringing("call-4"));
  REQUIRE(Eventually([&] { return p.routing.seen().size() == 3; }));
  CHECK(p.routing.seen()[2].call_id == "call-4");
  CHECK(Eventually([&] { return peers.reports_in_flight() == 0; }));
  CHECK(peers.reports_dropped() == 1);
}

TEST_CASE("ReportCallEventAsync gives up at the deadline", "[sip][peers]") {
  Peers p({.deadline = absl::Milliseconds(300)});
  p.routing.Hold();
  p.peers->ReportCallEventAsync(Ringing("call-1"));
  REQUIRE(Eventually([&] { return p.routing.seen().size() == 1; }));
  // Routing still holds it; the client side has given up.
  CHECK(Eventually([&] { return p.peers->reports_in_flight() == 0; }));
  CHECK(p.peers->reports_dropped() == 0);
}

TEST_CASE("StopReports waits for the reports in flight and sends no more", "[sip][peers]") {
  Peers p({.deadline = absl::Seconds(10)});
  p.routing.Hold();
  p.peers->ReportCallEventAsync(Ringing("call-1"));
  REQUIRE(Eventually([&] { return p.routing.seen().size() == 1; }));
  auto stopped = std::async(std::launch::async, [&] { p.peers->StopReports(); });
  CHECK(stopped.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  p.routing.Release();
  CHECK(stopped.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  stopped.get();
  CHECK(p.peers->reports_in_flight() == 0);
  p.peers->ReportCallEventAsync(Ringing("call-2"));
  CHECK(p.peers->reports_in_flight() == 0);
  CHECK(p.peers->reports_dropped() == 0);
  // Only the asynchronous reports stop.
  CHECK(p.peers->ReportCallEvent(Ringing("call-3")).ok());
  const std::vector<FakeRouting::Seen> seen = p.routing.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].call_id == "call-3");
}

TEST_CASE("GrpcSipPeers' destructor waits for the reports in flight", "[sip][peers]") {
  Peers p({.deadline = absl::Seconds(10)});
  p.routing.Hold();
  p.peers->ReportCallEventAsync(Ringing("call-1"));
  REQUIRE(Eventually([&] { return p.routing.seen().size() == 1; }));
  auto destroyed = std::async(std::launch::async, [&] { p.peers.reset(); });
  CHECK(destroyed.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  p.routing.Release();
  CHECK(destroyed.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  destroyed.get();
}

}  // namespace
}  // namespace sb::sip
