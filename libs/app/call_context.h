#pragma once

// CallContext: what a request's metadata says about the work it belongs to — the request id, the
// tenant and the call — read the same way by the server interceptor (for its RPC log lines) and by
// handlers (for their own log lines and for the calls they make onwards).
//
//   grpc::Status OrgService::GetTeam(grpc::ServerContext* context, ...) {
//     const app::CallContext call = app::CallContext::From(*context);
//     ScopedLogFields fields = call.LogFields();   // request_id, tenant, call_id on every line
//     grpc::ClientContext onward;
//     call.PropagateTo(onward);                     // the next service logs the same ids
//
// The bearer token is carried as presented: verifying it is libs/auth's job, in every service.

#include <map>
#include <string>
#include <string_view>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "libs/common/log.h"

namespace sb::app {

// The metadata keys.
inline constexpr char kRequestIdHeader[] = "x-request-id";
inline constexpr char kTenantIdHeader[] = "x-sb-tenant-id";
inline constexpr char kCallIdHeader[] = "x-sb-call-id";

struct CallContext {
  std::string request_id;    // empty when the caller sent none (or one longer than 128 bytes)
  std::string tenant_id;     // as sent; not verified
  std::string call_id;       // as sent; not verified
  std::string bearer_token;  // from "authorization: Bearer <token>"; empty when absent

  static CallContext FromMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md);
  static CallContext From(const grpc::ServerContextBase& context) {
    return FromMetadata(context.client_metadata());
  }

  // Log fields for the lines written on this thread while the returned object lives.
  ScopedLogFields LogFields() const {
    return ScopedLogFields(
        {{"request_id", request_id}, {"tenant", tenant_id}, {"call_id", call_id}});
  }
  // Adds request id, tenant and call id (not the token) to an outgoing call's metadata.
  void PropagateTo(grpc::ClientContext& context) const;
};

// The IP address of a request's direct peer: "203.0.113.7", "2001:db8::9". A caller that gRPC
// names without an IP address is on this host — an in-process channel (Platform::ChannelTo of a
// target this process hosts) or a Unix socket — and reads as "127.0.0.1", what such calls showed
// when they came over loopback TCP.
std::string PeerIp(const grpc::ServerContextBase& context);
// The same from the text of ServerContext::peer(): "ipv4:203.0.113.7:5555",
// "ipv6:[2001:db8::9]:5555".
std::string PeerIpOf(std::string_view peer);

}  // namespace sb::app
