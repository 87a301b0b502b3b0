#include "libs/app/call_context.h"

#include <string_view>

namespace sb::app {
namespace {

std::string_view Value(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                       const char* key) {
  auto it = md.find(key);
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

CallContext CallContext::FromMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
  CallContext c;
  if (auto id = Value(md, kRequestIdHeader); id.size() <= 128) c.request_id = id;
  c.tenant_id = Value(md, kTenantIdHeader);
  c.call_id = Value(md, kCallIdHeader);
  if (auto auth = Value(md, "authorization"); auth.starts_with("Bearer ")) {
    c.bearer_token = auth.substr(7);
  }
  return c;
}

std::string PeerIp(const grpc::ServerContextBase& context) { return PeerIpOf(context.peer()); }

std::string PeerIpOf(std::string_view peer) {
  if (!peer.starts_with("ipv4:") && !peer.starts_with("ipv6:")) return "127.0.0.1";
  std::string_view ip = peer.substr(5);
  const size_t colon = ip.rfind(':');
  if (colon != std::string_view::npos) ip = ip.substr(0, colon);
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  return std::string(ip);
}

void CallContext::PropagateTo(grpc::ClientContext& context) const {
  if (!request_id.empty()) context.AddMetadata(kRequestIdHeader, request_id);
  if (!tenant_id.empty()) context.AddMetadata(kTenantIdHeader, tenant_id);
  if (!call_id.empty()) context.AddMetadata(kCallIdHeader, call_id);
}

}  // namespace sb::app
