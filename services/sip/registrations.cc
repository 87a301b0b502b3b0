#include "services/sip/registrations.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace sb::sip {
namespace {

// KEYS: aor hash, expiry hash, tenant index set, reachability hash. ARGV: now_ms, remove_all (0/1),
// extension, n_upserts, then n_upserts triples (key, value, expires_ms), then removal keys. Returns
// the bindings left, as a flat array of values.
const redis::Script kApply(R"lua(
local now = tonumber(ARGV[1])
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
end
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  redis.call('HDEL', KEYS[4], ARGV[i])  -- it just reached us
  i = i + 3
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
  i = i + 1
end
local exp = redis.call('HGETALL', KEYS[2])
local latest = 0
local left = {}
for j = 1, #exp, 2 do
  local at = tonumber(exp[j + 1])
  if at <= now then
    redis.call('HDEL', KEYS[1], exp[j])
    redis.call('HDEL', KEYS[2], exp[j])
    redis.call('HDEL', KEYS[4], exp[j])
  else
    if at > latest then latest = at end
    local v = redis.call('HGET', KEYS[1], exp[j])
    if v then left[#left + 1] = v end
  end
end
if latest == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
  redis.call('SREM', KEYS[3], ARGV[3])
else
  redis.call('PEXPIREAT', KEYS[1], latest)
  redis.call('PEXPIREAT', KEYS[2], latest)
  redis.call('PEXPIREAT', KEYS[4], latest)
  redis.call('SADD', KEYS[3], ARGV[3])
end
return left
)lua");

// KEYS: aor hash, reachability hash. ARGV: binding key, "reachable rtt_us". Only for a binding
// that still exists; the reachability hash expires with the bindings.
const redis::Script kReach(R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
)lua");

// The host of a SIP URI ("sip:101@192.168.1.5:5062;transport=udp" -> "192.168.1.5").
std::string UriHost(std::string_view uri) {
  if (size_t colon = uri.find(':'); colon != std::string_view::npos) uri.remove_prefix(colon + 1);
  if (size_t at = uri.find('@'); at != std::string_view::npos) uri.remove_prefix(at + 1);
  if (!uri.empty() && uri.front() == '[') {
    const size_t end = uri.find(']');
    return std::string(uri.substr(1, end == std::string_view::npos ? uri.size() : end - 1));
  }
  return std::string(uri.substr(0, uri.find_first_of(":;>?")));
}

bool PrivateAddress(const std::string& host) {
  return absl::StartsWith(host, "10.") || absl::StartsWith(host, "192.168.") ||
         absl::StartsWith(host, "169.254.") || absl::StartsWith(host, "127.") ||
         (absl::StartsWith(host, "172.") && host.size() > 6 &&
          [&] {
            const int second = std::atoi(host.c_str() + 4);
            return second >= 16 && second <= 31;
          }()) ||
         absl::StartsWith(host, "100.64.") || absl::StartsWith(absl::AsciiStrToLower(host), "fd") ||
         absl::StartsWith(absl::AsciiStrToLower(host), "fe80:");
}

}  // namespace

std::string NextHop(const v1::Registration& r) {
  const std::string transport = r.transport().empty() ? "udp" : r.transport();
  const std::string source_ip = UriHost(absl::StrCat("sip:", r.source_address()));
  const std::string contact_host = UriHost(r.contact_uri());
  const bool behind_nat =
      contact_host != source_ip && PrivateAddress(contact_host) && !PrivateAddress(source_ip);
  if (transport != "udp" || behind_nat) {
    return absl::StrCat("sip:", r.source_address(), ";transport=", transport);
  }
  return "";
}

std::string RegistrationStore::AorKey(const std::string& tenant_id,
                                      const std::string& extension) const {
  return absl::StrCat(prefix_, "reg:", tenant_id, ":", extension);
}

std::string RegistrationStore::BindingKey(const v1::Registration& registration) {
  return registration.instance_id().empty() ? registration.contact_uri()
                                            : absl::StrCat("instance:", registration.instance_id());
}

std::vector<v1::Registration> RegistrationStore::Decode(const redis::Reply& reply) const {
  std::vector<v1::Registration> out;
  if (!reply.is_array()) return out;
  for (const redis::Reply& e : reply.elements()) {
    if (!e.is_string()) continue;
    v1::Registration r;
    if (r.ParseFromString(e.str())) out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const v1::Registration& a, const v1::Registration& b) {
    return a.registered_at().seconds() != b.registered_at().seconds()
               ? a.registered_at().seconds() < b.registered_at().seconds()
               : a.contact_uri() < b.contact_uri();
  });
  return out;
}

absl::StatusOr<std::vector<v1::Registration>> RegistrationStore::Apply(const std::string& tenant_id,
                                                                       const std::string& extension,
                                                                       const Change& change,
                                                                       absl::Time now) {
  const std::string aor = AorKey(tenant_id, extension);
  std::vector<std::string> args = {absl::StrCat(absl::ToUnixMillis(now)),
                                   change.remove_all ? "1" : "0", extension,
                                   absl::StrCat(change.upserts.size())};
  for (const v1::Registration& r : change.upserts) {
    args.push_back(BindingKey(r));
    args.push_back(r.SerializeAsString());
    args.push_back(
        absl::StrCat(r.expires_at().seconds() * 1000 + r.expires_at().nanos() / 1000000));
  }
  for (const std::string& key : change.removals) args.push_back(key);
  SB_ASSIGN_OR_RETURN(
      redis::Reply reply,
      redis_.Eval(kApply, {aor, aor + ":exp", prefix_ + "regs:" + tenant_id, aor + ":reach"},
                  args));
  return Decode(reply);
}

absl::Status RegistrationStore::SetReachability(const std::string& tenant_id,
                                                const std::string& extension,
                                                const std::string& binding_key, bool reachable,
                                                absl::Duration rtt) {
  const std::string aor = AorKey(tenant_id, extension);
  return redis_
      .Eval(kReach, {aor, aor + ":reach"},
            {binding_key, absl::StrCat(reachable ? 1 : 0, " ", absl::ToInt64Microseconds(rtt))})
      .status();
}

absl::StatusOr<std::vector<v1::Registration>> RegistrationStore::Lookup(
    const std::string& tenant_id, const std::string& extension, absl::Time now) {
  const std::string aor = AorKey(tenant_id, extension);
  SB_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                      redis_.Pipeline({{"HVALS", aor}, {"HGETALL", aor + ":reach"}}));
  std::vector<v1::Registration> all = Decode(replies[0]);
  const int64_t now_s = absl::ToUnixSeconds(now);
  std::erase_if(all, [&](const v1::Registration& r) { return r.expires_at().seconds() <= now_s; });
  // The last keepalive's answer, where there was one since the binding last registered.
  if (replies[1].is_array() && !replies[1].elements().empty()) {
    absl::flat_hash_map<std::string, std::string> reach;
    const auto& e = replies[1].elements();
    for (size_t i = 0; i + 1 < e.size(); i += 2) reach[e[i].str()] = e[i + 1].str();
    for (v1::Registration& r : all) {
      auto it = reach.find(BindingKey(r));
      if (it == reach.end()) continue;
      int reachable = 1;
      int64_t rtt_us = 0;
      if (std::sscanf(it->second.c_str(), "%d %" SCNd64, &reachable, &rtt_us) == 2) {
        r.set_reachable(reachable != 0);
        r.mutable_rtt()->set_seconds(rtt_us / 1'000'000);
        r.mutable_rtt()->set_nanos(static_cast<int32_t>(rtt_us % 1'000'000) * 1000);
      }
    }
  }
  return all;
}

absl::StatusOr<std::vector<std::string>> RegistrationStore::Extensions(
    const std::string& tenant_id) {
  SB_ASSIGN_OR_RETURN(redis::Reply reply,
                      redis_.Command({"SMEMBERS", prefix_ + "regs:" + tenant_id}));
  std::vector<std::string> out;
  if (reply.is_array()) {
    for (const redis::Reply& e : reply.elements()) {
      if (e.is_string()) out.push_back(e.str());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sb::sip
