#include <catch2/catch.hpp>

#include "libs/app/call_context.h"

namespace sb::app {
namespace {

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

TEST_CASE("CallContext reads request id, tenant, call id and bearer token", "[app]") {
  const std::string request_id = "req-1", tenant = "t-7", call = "c-42", auth = "Bearer abc.def";
  Metadata md = {{"x-request-id", request_id},
                 {"x-sb-tenant-id", tenant},
                 {"x-sb-call-id", call},
                 {"authorization", auth}};
  const CallContext c = CallContext::FromMetadata(md);
  CHECK(c.request_id == "req-1");
  CHECK(c.tenant_id == "t-7");
  CHECK(c.call_id == "c-42");
  CHECK(c.bearer_token == "abc.def");
}

TEST_CASE("CallContext ignores other auth schemes and oversized request ids", "[app]") {
  const std::string basic = "Basic dXNlcjpwYXNz", huge(200, 'x');
  Metadata md = {{"authorization", basic}, {"x-request-id", huge}};
  const CallContext c = CallContext::FromMetadata(md);
  CHECK(c.bearer_token.empty());
  CHECK(c.request_id.empty());
  CHECK(CallContext::FromMetadata({}).tenant_id.empty());
}

TEST_CASE("PeerIpOf reads the address of TCP peers and takes others for this host", "[app]") {
  CHECK(PeerIpOf("ipv4:203.0.113.7:5555") == "203.0.113.7");
  CHECK(PeerIpOf("ipv6:[2001:db8::9]:5555") == "2001:db8::9");
  CHECK(PeerIpOf("ipv6:[::1]:40000") == "::1");
  // In-process channels and Unix sockets: the caller is this host.
  CHECK(PeerIpOf("unknown") == "127.0.0.1");  // what gRPC 1.51 names an in-process peer
  CHECK(PeerIpOf("unix:/run/switchboard.sock") == "127.0.0.1");
  CHECK(PeerIpOf("") == "127.0.0.1");
}

}  // namespace
}  // namespace sb::app
