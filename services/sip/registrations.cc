#include "services/sip/registrations.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace sb::sip {
namespace {

// KEYS: aor hash, expiry hash, tenant index set. ARGV: now_ms, remove_all (0/1), extension,
// n_upserts, then n_upserts triples (key, value, expires_ms), then removal keys.
// Returns the bindings left, as a flat array of values.
const redis::Script kApply(R"lua(
local now = tonumber(ARGV[1])
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
end
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  i = i + 3
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
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
  else
    if at > latest then latest = at end
    local v = redis.call('HGET', KEYS[1], exp[j])
    if v then left[#left + 1] = v end
  end
end
if latest == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[3])
else
  redis.call('PEXPIREAT', KEYS[1], latest)
  redis.call('PEXPIREAT', KEYS[2], latest)
  redis.call('SADD', KEYS[3], ARGV[3])
end
return left
)lua");

}  // namespace

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
      redis_.Eval(kApply, {aor, aor + ":exp", prefix_ + "regs:" + tenant_id}, args));
  return Decode(reply);
}

absl::StatusOr<std::vector<v1::Registration>> RegistrationStore::Lookup(
    const std::string& tenant_id, const std::string& extension, absl::Time now) {
  SB_ASSIGN_OR_RETURN(redis::Reply reply, redis_.Command({"HVALS", AorKey(tenant_id, extension)}));
  std::vector<v1::Registration> all = Decode(reply);
  const int64_t now_s = absl::ToUnixSeconds(now);
  std::erase_if(all, [&](const v1::Registration& r) { return r.expires_at().seconds() <= now_s; });
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
