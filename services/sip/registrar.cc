#include "services/sip/registrar.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/utf8.h"
#include "spdlog/spdlog.h"

namespace sb::sip {

using google::protobuf::util::TimeUtil;

RegisterInput RegisterInput::From(const Message& request, std::string transport) {
  RegisterInput in;
  const NameAddr to = request.to();
  in.to_user = to.user;
  in.to_host = absl::AsciiStrToLower(to.host);
  in.call_id = std::string(request.call_id());
  in.contacts = request.contacts();
  in.contact_star = request.contact_star();
  in.expires = request.expires();
  in.authorization = request.authorization();
  in.source_ip = request.source_ip();
  in.source_port = request.source_port();
  in.transport = std::move(transport);
  in.user_agent = std::string(request.user_agent());
  return in;
}

// ---------------------------------------------------------------------------------------------
// AuthThrottle

bool AuthThrottle::Banned(const std::string& ip, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = banned_until_.find(ip);
  if (it == banned_until_.end()) return false;
  if (it->second > now) return true;
  banned_until_.erase(it);
  return false;
}

int AuthThrottle::Failure(const std::string& ip, const std::string& identity, absl::Time now) {
  absl::MutexLock lock(&mu_);
  // Bounded memory under a flood from many addresses: forget everything rather than grow.
  if (per_identity_.size() > 200'000) per_identity_.clear();
  if (per_ip_.size() > 200'000) per_ip_.clear();
  auto bump = [&](Counter& c) {
    if (c.count == 0 || now - c.since > options_.failure_window) {
      c.count = 0;
      c.since = now;
    }
    return ++c.count;
  };
  const int in_a_row = bump(per_identity_[absl::StrCat(ip, "|", identity)]);
  if (bump(per_ip_[ip]) >= options_.ban_failures) {
    banned_until_[ip] = now + options_.ban_time;
    spdlog::warn("sip: banning {} for {} after {} failed authentications", ip,
                 absl::FormatDuration(options_.ban_time), options_.ban_failures);
  }
  return in_a_row;
}

int AuthThrottle::Failures(const std::string& ip, const std::string& identity, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = per_identity_.find(absl::StrCat(ip, "|", identity));
  if (it == per_identity_.end() || now - it->second.since > options_.failure_window) return 0;
  return it->second.count;
}

void AuthThrottle::Success(const std::string& ip, const std::string& identity) {
  absl::MutexLock lock(&mu_);
  per_identity_.erase(absl::StrCat(ip, "|", identity));
}

// ---------------------------------------------------------------------------------------------
// Registrar

Registrar::Registrar(SipPeers& peers, RegistrationStore& store, const Clock& clock,
                     const digest::NonceMinter& nonces, digest::NonceCounter& counter,
                     AuthThrottle& throttle, Options options)
    : peers_(peers),
      store_(store),
      clock_(clock),
      nonces_(nonces),
      counter_(counter),
      throttle_(throttle),
      options_(std::move(options)) {}

std::vector<Header> Registrar::Challenges(const std::string& realm, bool stale,
                                          std::string_view header) const {
  std::vector<Header> out;
  const std::string nonce = nonces_.Mint(clock_.Now());
  for (digest::Algorithm algorithm : options_.algorithms) {
    auto value =
        digest::BuildChallenge(algorithm, {.realm = realm, .nonce = nonce, .stale = stale});
    if (value.ok()) out.push_back({std::string(header), *std::move(value)});
  }
  return out;
}

SipAnswer Registrar::Challenge(const std::string& realm, bool stale, bool proxy) const {
  return {.status = proxy ? 407 : 401,
          .headers = Challenges(realm, stale, proxy ? "Proxy-Authenticate" : "WWW-Authenticate")};
}

std::optional<SipAnswer> Registrar::Precheck(const RegisterInput& in) {
  if (throttle_.Banned(in.source_ip, clock_.Now())) return SipAnswer{.drop = true};
  if (in.to_user.empty() || in.to_host.empty()) {
    return SipAnswer{.status = 400, .phrase = "Missing address of record in To"};
  }
  if (in.authorization.empty()) return Challenge(in.to_host, false, false);
  return std::nullopt;
}

Registrar::Verified Registrar::Authenticate(const std::string& authorization,
                                            const std::string& method, const std::string& realm,
                                            const std::string& expected_user,
                                            const std::string& source_ip, bool proxy) {
  const absl::Time now = clock_.Now();
  if (throttle_.Banned(source_ip, now)) return {.refusal = {.drop = true}};
  if (authorization.empty()) return {.refusal = Challenge(realm, false, proxy)};
  // Credentials in a scheme we do not offer get a fresh challenge (RFC 3261 §22.1, RFC 4475
  // §3.3.7); only malformed Digest credentials are a 400.
  const std::string scheme =
      absl::AsciiStrToLower(authorization.substr(0, authorization.find(' ')));
  if (scheme != "digest") return {.refusal = Challenge(realm, false, proxy)};
  auto creds = digest::ParseCredentials(authorization);
  if (!creds.ok()) {
    return {.refusal = {.status = 400,
                        .phrase = absl::StrCat("Bad ", proxy ? "Proxy-" : "", "Authorization: ",
                                               std::string(creds.status().message()))
                                      .substr(0, 120)}};
  }
  if (absl::AsciiStrToLower(creds->realm) != realm) {
    return {.refusal = Challenge(realm, false, proxy)};
  }
  switch (nonces_.Check(creds->nonce, now, options_.nonce_max_age)) {
    case digest::NonceState::kInvalid:
      return {.refusal = Challenge(realm, false, proxy)};
    case digest::NonceState::kStale:
      return {.refusal = Challenge(realm, true, proxy)};
    case digest::NonceState::kValid:
      break;
  }
  const std::string identity = absl::StrCat(creds->username, "@", realm);
  if (creds->username != expected_user) {
    return {.refusal = {.status = 403, .phrase = "Username does not match the address"}};
  }
  if (throttle_.Failures(source_ip, identity, now) >= throttle_.options().max_failures) {
    throttle_.Failure(source_ip, identity, now);
    return {.refusal = {.status = 403, .phrase = "Forbidden"}};
  }
  auto entry = peers_.GetSipDigest(realm, creds->username);
  if (!entry.ok() && entry.status().code() != absl::StatusCode::kNotFound) {
    spdlog::warn("sip: cannot check credentials of {}: {}", identity,
                 std::string(entry.status().message()));
    return {.refusal = {
                .status = 503, .phrase = "Service Unavailable", .headers = {{"Retry-After", "5"}}}};
  }
  const bool good = entry.ok() && digest::Verify(*creds, method,
                                                 creds->algorithm == digest::Algorithm::kSha256
                                                     ? entry->ha1_sha256
                                                     : entry->ha1_md5);
  if (!good) {
    // Unknown users and wrong passwords look the same from outside.
    const int failures = throttle_.Failure(source_ip, identity, now);
    if (failures >= throttle_.options().max_failures) {
      return {.refusal = {.status = 403, .phrase = "Forbidden"}};
    }
    return {.refusal = Challenge(realm, false, proxy)};
  }
  // Counted only once the answer is proven right: nonces travel in the clear, and counting
  // unverified ones would let an eavesdropper push a phone's count past it. Without qop there
  // is no count: such a nonce is good once.
  if (!counter_.Accept(creds->nonce, creds->qop.empty() ? 1 : creds->nonce_count, now)) {
    return {.refusal = Challenge(realm, true, proxy)};
  }
  throttle_.Success(source_ip, identity);
  return {.digest = *std::move(entry)};
}

SipAnswer Registrar::Handle(const RegisterInput& in) {
  Verified verified = Authenticate(in.authorization, "REGISTER", in.to_host, in.to_user,
                                   in.source_ip, /*proxy=*/false);
  if (!verified.digest.has_value()) return verified.refusal;
  const SipDigest& who = *verified.digest;
  const absl::Time now = clock_.Now();

  RegistrationStore::Change change;
  if (in.contact_star) {
    // RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0.
    if (in.contacts.size() > 0 || !in.expires.has_value() || *in.expires != 0) {
      return {.status = 400, .phrase = "Contact * needs Expires: 0 and no other Contact"};
    }
    change.remove_all = true;
  }
  for (const ContactEntry& c : in.contacts) {
    uint32_t expires = c.expires.value_or(in.expires.value_or(options_.default_expires));
    v1::Registration r;
    // Stored as protobuf strings: what the phone sent must be UTF-8 to be read back.
    r.set_contact_uri(SanitizeUtf8(c.address.uri));
    r.set_instance_id(SanitizeUtf8(c.instance));
    if (expires == 0) {
      change.removals.push_back(RegistrationStore::BindingKey(r));
      continue;
    }
    if (expires < options_.min_expires) {
      return {.status = 423,
              .phrase = "Interval Too Brief",
              .headers = {{"Min-Expires", absl::StrCat(options_.min_expires)}}};
    }
    expires = std::min(expires, options_.max_expires);
    r.set_tenant_id(who.tenant_id);
    r.set_user_id(who.user_id);
    r.set_extension(in.to_user);
    r.set_aor(absl::StrCat("sip:", in.to_user, "@", in.to_host));
    r.set_source_address(absl::StrCat(in.source_ip, ":", in.source_port));
    r.set_transport(in.transport);
    r.set_user_agent(SanitizeUtf8(std::string_view(in.user_agent).substr(0, 200)));
    r.set_reg_id(c.reg_id);
    *r.mutable_registered_at() = TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(now));
    *r.mutable_expires_at() = TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(now) + expires);
    r.set_node_id(options_.node_id);
    r.set_reachable(true);
    change.upserts.push_back(std::move(r));
  }
  absl::StatusOr<std::vector<v1::Registration>> bindings =
      change.upserts.empty() && change.removals.empty() && !change.remove_all
          ? store_.Lookup(who.tenant_id, in.to_user, now)
          : store_.Apply(who.tenant_id, in.to_user, change, now);
  if (!bindings.ok()) {
    spdlog::warn("sip: cannot store the registration of {}@{}: {}", in.to_user, in.to_host,
                 std::string(bindings.status().message()));
    return {.status = 503, .phrase = "Service Unavailable", .headers = {{"Retry-After", "5"}}};
  }
  SipAnswer ok{.status = 200, .phrase = "OK", .tenant_id = who.tenant_id, .extension = in.to_user};
  const int64_t now_s = absl::ToUnixSeconds(now);
  for (const v1::Registration& r : *bindings) {
    ok.headers.push_back(
        {"Contact", absl::StrCat("<", r.contact_uri(), ">;expires=",
                                 std::max<int64_t>(0, r.expires_at().seconds() - now_s))});
  }
  ok.headers.push_back(
      {"Date", absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", now, absl::UTCTimeZone())});
  ok.bindings = *std::move(bindings);
  return ok;
}

}  // namespace sb::sip
