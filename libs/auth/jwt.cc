#include "libs/auth/jwt.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <unordered_map>
#include <utility>

#include "libs/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace sb::auth {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kAlgorithm = "EdDSA";
constexpr std::string_view kType = "at+jwt";
// NumericDates beyond 9999-12-31T23:59:59Z (and before the epoch) are refused both ways: they are
// nonsense for an access token and would overflow on the way through absl::Time.
constexpr int64_t kMaxNumericDate = 253'402'300'799;

// ---- base64url (RFC 4648 section 5) without padding -------------------------------------------

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> kBase64UrlValues = [] {
  std::array<int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 64; ++i) values[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = i;
  return values;
}();

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t n = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                       static_cast<uint8_t>(in[i + 2]);
    out += kBase64UrlAlphabet[n >> 18];
    out += kBase64UrlAlphabet[(n >> 12) & 63];
    out += kBase64UrlAlphabet[(n >> 6) & 63];
    out += kBase64UrlAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    out += kBase64UrlAlphabet[n >> 18];
    out += kBase64UrlAlphabet[(n >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const uint32_t n = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8;
    out += kBase64UrlAlphabet[n >> 18];
    out += kBase64UrlAlphabet[(n >> 12) & 63];
    out += kBase64UrlAlphabet[(n >> 6) & 63];
  }
  return out;
}

// Strict: only the 64 url-safe characters, no padding, and the unused low bits of the last
// character must be zero. Without that last rule "...Q" and "...R" could decode to the same bytes,
// so a token could be altered without touching what the signature covers once decoded.
bool Base64UrlDecode(std::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  out.clear();
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t bits = 0;
  int bit_count = 0;
  for (const char c : in) {
    const int8_t value = kBase64UrlValues[static_cast<unsigned char>(c)];
    if (value < 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>((bits >> bit_count) & 0xff);
      bits &= (1u << bit_count) - 1;
    }
  }
  return bits == 0;
}

// ---- reasons ----------------------------------------------------------------------------------

absl::Status Malformed(std::string_view what) {
  return absl::UnauthenticatedError("malformed token: " + std::string(what));
}

absl::Status Reject(std::string_view reason) {
  return absl::UnauthenticatedError(std::string(reason));
}

// Names a refused alg when it looks like one, without echoing arbitrary bytes into logs.
absl::Status AlgorithmNotAllowed(const std::string& alg) {
  const bool printable =
      !alg.empty() && alg.size() <= 16 && std::all_of(alg.begin(), alg.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == '+';
      });
  if (!printable) return Reject("algorithm not allowed");
  return Reject("algorithm '" + alg + "' not allowed");
}

// ---- JSON helpers (nlohmann throws; everything here runs inside Verify's try) ------------------

// The JSON object in `text`, or nullopt when it is not valid JSON.
std::optional<Json> ParseJson(std::string_view text) {
  Json json = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::nullopt;
  return json;
}

const Json* Member(const Json& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

std::string Claim(const char* name) { return std::string("claim '") + name + "'"; }

// A string claim; `required` ones must also be non-empty.
absl::Status ReadString(const Json& payload, const char* name, bool required, std::string& out) {
  const Json* value = Member(payload, name);
  if (value == nullptr) {
    if (required) return Malformed("missing " + Claim(name));
    return absl::OkStatus();
  }
  if (!value->is_string()) return Malformed(Claim(name) + " is not a string");
  out = value->get<std::string>();
  if (required && out.empty()) return Malformed("missing " + Claim(name));
  return absl::OkStatus();
}

absl::Status ReadStrings(const Json& payload, const char* name, std::vector<std::string>& out) {
  const Json* value = Member(payload, name);
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_array()) return Malformed(Claim(name) + " is not an array");
  out.reserve(value->size());
  for (const Json& item : *value) {
    if (!item.is_string()) return Malformed(Claim(name) + " holds a non-string");
    out.push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

// A NumericDate claim. Returns false in `present` (leaving `out` alone) when an optional one is
// absent.
absl::Status ReadDate(const Json& payload, const char* name, bool required, absl::Time& out,
                      bool* present = nullptr) {
  const Json* value = Member(payload, name);
  if (present != nullptr) *present = value != nullptr;
  if (value == nullptr) {
    if (required) return Malformed("missing " + Claim(name));
    return absl::OkStatus();
  }
  if (value->is_number_unsigned()) {
    const uint64_t seconds = value->get<uint64_t>();
    if (seconds > static_cast<uint64_t>(kMaxNumericDate)) {
      return Malformed(Claim(name) + " is out of range");
    }
    out = absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  } else if (value->is_number_integer()) {
    const int64_t seconds = value->get<int64_t>();
    if (seconds < 0 || seconds > kMaxNumericDate) {
      return Malformed(Claim(name) + " is out of range");
    }
    out = absl::FromUnixSeconds(seconds);
  } else if (value->is_number_float()) {
    const double seconds = value->get<double>();
    if (!(seconds >= 0 && seconds <= static_cast<double>(kMaxNumericDate))) {  // NaN too
      return Malformed(Claim(name) + " is out of range");
    }
    out = absl::UnixEpoch() + absl::Seconds(seconds);
  } else {
    return Malformed(Claim(name) + " is not a number");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> NumericDate(absl::Time time, const char* name) {
  if (time < absl::UnixEpoch() || time > absl::FromUnixSeconds(kMaxNumericDate)) {
    return absl::InvalidArgumentError(std::string("claims.") + name + " is out of range");
  }
  return absl::ToUnixSeconds(time);
}

// What the header says, once it has passed the algorithm allow-list.
absl::StatusOr<std::string> CheckHeader(std::string_view header_text) {
  const std::optional<Json> header = ParseJson(header_text);
  if (!header.has_value()) return Malformed("header is not JSON");
  if (!header->is_object()) return Malformed("header is not a JSON object");
  // The allow-list comes first: nothing else in a header naming another algorithm is looked at.
  const Json* alg = Member(*header, "alg");
  if (alg == nullptr) return Malformed("header has no alg");
  if (!alg->is_string()) return Malformed("alg is not a string");
  if (alg->get_ref<const std::string&>() != kAlgorithm) {
    return AlgorithmNotAllowed(alg->get_ref<const std::string&>());
  }
  // RFC 7515 4.1.11: extensions we do not understand that are marked critical must be refused.
  if (Member(*header, "crit") != nullptr) return Malformed("unsupported crit header");
  const Json* typ = Member(*header, "typ");
  if (typ == nullptr || !typ->is_string() || typ->get_ref<const std::string&>() != kType) {
    return Reject("wrong token type");
  }
  const Json* kid = Member(*header, "kid");
  if (kid == nullptr) return Malformed("header has no kid");
  if (!kid->is_string() || kid->get_ref<const std::string&>().empty()) {
    return Malformed("kid is not a non-empty string");
  }
  return kid->get<std::string>();
}

absl::StatusOr<AccessClaims> ParseClaims(std::string_view payload_text,
                                         const JwtVerifierOptions& options) {
  const std::optional<Json> payload = ParseJson(payload_text);
  if (!payload.has_value()) return Malformed("payload is not JSON");
  if (!payload->is_object()) return Malformed("payload is not a JSON object");
  AccessClaims claims;
  SB_RETURN_IF_ERROR(ReadString(*payload, "iss", /*required=*/true, claims.iss));
  if (claims.iss != options.issuer) return Reject("wrong issuer");

  const Json* aud = Member(*payload, "aud");
  if (aud == nullptr) return Malformed("missing " + Claim("aud"));
  if (aud->is_string()) {
    if (aud->get_ref<const std::string&>() != options.audience) return Reject("wrong audience");
  } else if (aud->is_array()) {
    bool found = false;
    for (const Json& item : *aud) {
      if (!item.is_string()) return Malformed(Claim("aud") + " holds a non-string");
      found = found || item.get_ref<const std::string&>() == options.audience;
    }
    if (!found) return Reject("wrong audience");
  } else {
    return Malformed(Claim("aud") + " is not a string or array");
  }
  claims.aud = options.audience;

  SB_RETURN_IF_ERROR(ReadDate(*payload, "exp", /*required=*/true, claims.exp));
  SB_RETURN_IF_ERROR(ReadDate(*payload, "iat", /*required=*/true, claims.iat));
  bool has_nbf = false;
  SB_RETURN_IF_ERROR(ReadDate(*payload, "nbf", /*required=*/false, claims.nbf, &has_nbf));
  if (!has_nbf) claims.nbf = claims.iat;

  SB_RETURN_IF_ERROR(ReadString(*payload, "sub", /*required=*/true, claims.sub));
  SB_RETURN_IF_ERROR(ReadString(*payload, "tid", /*required=*/true, claims.tid));
  SB_RETURN_IF_ERROR(ReadString(*payload, "jti", /*required=*/true, claims.jti));
  SB_RETURN_IF_ERROR(ReadString(*payload, "sid", /*required=*/false, claims.sid));
  SB_RETURN_IF_ERROR(ReadString(*payload, "amr", /*required=*/false, claims.amr));
  SB_RETURN_IF_ERROR(ReadStrings(*payload, "roles", claims.roles));
  SB_RETURN_IF_ERROR(ReadStrings(*payload, "perms", claims.perms));
  if (const Json* rst = Member(*payload, "rst"); rst != nullptr) {
    if (!rst->is_boolean()) return Malformed(Claim("rst") + " is not a boolean");
    claims.rst = rst->get<bool>();
  }
  return claims;
}

// A token split at its two dots.
struct Segments {
  std::string_view header, payload, signature;
  std::string_view signing_input;  // "header.payload"
};

std::optional<Segments> Split(std::string_view token) {
  const size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  return Segments{token.substr(0, first), token.substr(first + 1, second - first - 1),
                  token.substr(second + 1), token.substr(0, second)};
}

// Hashes a string once for both the shard choice and the shard's map: lookups pass the hash in.
struct HashedView {
  std::string_view text;
  size_t hash;
};

struct TokenHash {
  using is_transparent = void;
  size_t operator()(const std::string& s) const { return std::hash<std::string_view>()(s); }
  size_t operator()(const HashedView& v) const { return v.hash; }
};

struct TokenEq {
  using is_transparent = void;
  bool operator()(const std::string& a, const std::string& b) const { return a == b; }
  bool operator()(const std::string& a, const HashedView& b) const { return a == b.text; }
  bool operator()(const HashedView& a, const std::string& b) const { return a.text == b; }
};

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

}  // namespace

// ---- JwtSigner --------------------------------------------------------------------------------

JwtSigner::JwtSigner(std::string key_id, Ed25519Key key)
    : key_id_(std::move(key_id)), key_(std::move(key)) {
  if (!key_.has_private()) {
    status_ = absl::FailedPreconditionError("JwtSigner needs a key with its private half");
    return;
  }
  if (key_id_.empty()) {
    status_ = absl::InvalidArgumentError("JwtSigner needs a key id");
    return;
  }
  try {
    const OrderedJson header = {{"alg", kAlgorithm}, {"typ", kType}, {"kid", key_id_}};
    encoded_header_ = Base64UrlEncode(header.dump()) + ".";
  } catch (const std::exception&) {  // dump() throws on invalid UTF-8
    status_ = absl::InvalidArgumentError("JwtSigner key id is not valid UTF-8");
  }
}

absl::StatusOr<std::string> JwtSigner::Sign(const AccessClaims& claims) const {
  if (!status_.ok()) return status_;
  const std::pair<const char*, const std::string*> required[] = {{"iss", &claims.iss},
                                                                 {"sub", &claims.sub},
                                                                 {"aud", &claims.aud},
                                                                 {"jti", &claims.jti},
                                                                 {"tid", &claims.tid}};
  for (const auto& [name, value] : required) {
    if (value->empty()) {
      return absl::InvalidArgumentError(std::string("claims.") + name + " is required");
    }
  }
  SB_ASSIGN_OR_RETURN(const int64_t exp, NumericDate(claims.exp, "exp"));
  SB_ASSIGN_OR_RETURN(const int64_t nbf, NumericDate(claims.nbf, "nbf"));
  SB_ASSIGN_OR_RETURN(const int64_t iat_seconds, NumericDate(claims.iat, "iat"));
  // iat keeps milliseconds (NumericDate may be non-integer, RFC 7519 section 2): revocations of
  // "every token of this user issued before T" must not spare tokens of T's own second.
  const int64_t iat_ms = absl::ToUnixMillis(claims.iat);
  const OrderedJson iat = iat_ms % 1000 == 0 ? OrderedJson(iat_seconds)
                                             : OrderedJson(static_cast<double>(iat_ms) / 1000);
  std::string payload;
  try {
    OrderedJson json = {{"iss", claims.iss}, {"sub", claims.sub}, {"aud", claims.aud},
                        {"exp", exp},        {"nbf", nbf},        {"iat", iat},
                        {"jti", claims.jti}, {"tid", claims.tid}};
    if (!claims.sid.empty()) json["sid"] = claims.sid;
    json["roles"] = claims.roles;
    json["perms"] = claims.perms;
    if (claims.rst) json["rst"] = true;
    if (!claims.amr.empty()) json["amr"] = claims.amr;
    payload = json.dump();
  } catch (const nlohmann::json::exception&) {  // dump() throws on invalid UTF-8
    return absl::InvalidArgumentError("claims hold a string that is not valid UTF-8");
  } catch (const std::exception&) {
    return absl::InternalError("encoding the claims failed");
  }
  std::string token = encoded_header_ + Base64UrlEncode(payload);
  SB_ASSIGN_OR_RETURN(const std::string signature, key_.Sign(token));
  token += '.';
  token += Base64UrlEncode(signature);
  return token;
}

// ---- key set ------------------------------------------------------------------------------------

class JwtVerifier::KeySet {
 public:
  KeySet() = default;
  explicit KeySet(std::vector<VerificationKey> keys) {
    keys_.reserve(keys.size());
    for (VerificationKey& key : keys) {
      std::string id = key.key_id;
      keys_.try_emplace(std::move(id), std::move(key));
    }
  }
  const VerificationKey* Find(std::string_view key_id) const {
    const auto it = keys_.find(key_id);
    return it == keys_.end() ? nullptr : &it->second;
  }

 private:
  std::unordered_map<std::string, VerificationKey, StringViewHash, std::equal_to<>> keys_;
};

// ---- verified-token cache -----------------------------------------------------------------------

// Sharded so that threads verifying different tokens rarely meet on a lock; hits take only a
// shard's reader lock. When a shard fills up it drops, in one sweep, a tenth of its entries:
// expired ones first, then ones not hit since the previous sweep (a batched clock / second
// chance), then any. Sweeps cost O(shard) but come once per shard/8 insertions.
class JwtVerifier::Cache {
 public:
  struct Value {
    AccessClaims claims;
    std::string key_id;
    std::string public_bytes;  // the key that verified it: a kid may be re-bound to another key
  };

  explicit Cache(size_t capacity)
      : shard_count_(std::min<size_t>(kMaxShards, capacity)),
        shard_capacity_(capacity / shard_count_),
        shards_(std::make_unique<Shard[]>(shard_count_)) {}

  std::optional<Value> Find(std::string_view token) const {
    const HashedView key{token, std::hash<std::string_view>()(token)};
    Shard& shard = ShardFor(key.hash);
    absl::ReaderMutexLock lock(&shard.mu);
    const auto it = shard.entries.find(key);
    if (it == shard.entries.end()) return std::nullopt;
    // Written once per sweep period at most, so a hot entry's cache line stays shared.
    if (it->second.used_sweep.load(std::memory_order_relaxed) != shard.sweep) {
      it->second.used_sweep.store(shard.sweep, std::memory_order_relaxed);
    }
    return it->second.value;
  }

  void Insert(std::string_view token, Value value, absl::Time expiry, absl::Time now) {
    const HashedView key{token, std::hash<std::string_view>()(token)};
    Shard& shard = ShardFor(key.hash);
    absl::MutexLock lock(&shard.mu);
    if (const auto it = shard.entries.find(key); it != shard.entries.end()) {
      // Another thread was first, or the entry predates a re-bound kid and this is the verdict
      // under the new key: either way the fresh value is right.
      it->second.value = std::move(value);
      it->second.expiry = expiry;
      return;
    }
    if (shard.entries.size() >= shard_capacity_) MakeRoom(shard, now);
    shard.entries.try_emplace(std::string(token), std::move(value), expiry, shard.sweep);
  }

  // Drops every entry for which `keep(value)` is false.
  void Retain(const std::function<bool(const Value&)>& keep) {
    for (size_t i = 0; i < shard_count_; ++i) {
      absl::MutexLock lock(&shards_[i].mu);
      std::erase_if(shards_[i].entries,
                    [&](const auto& entry) { return !keep(entry.second.value); });
    }
  }

 private:
  static constexpr size_t kMaxShards = 16;

  struct Entry {
    Entry(Value value, absl::Time expiry, uint32_t sweep)
        : value(std::move(value)), expiry(expiry), used_sweep(sweep) {}
    Value value;
    absl::Time expiry;  // exp + leeway: useless from then on
    mutable std::atomic<uint32_t> used_sweep;
  };

  struct Shard {
    mutable absl::Mutex mu;
    std::unordered_map<std::string, Entry, TokenHash, TokenEq> entries ABSL_GUARDED_BY(mu);
    uint32_t sweep ABSL_GUARDED_BY(mu) = 0;  // number of MakeRoom calls so far
  };

  Shard& ShardFor(size_t hash) const { return shards_[(hash >> 32) % shard_count_]; }

  void MakeRoom(Shard& shard, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) {
    const size_t target = shard_capacity_ - std::max<size_t>(1, shard_capacity_ / 10);
    const uint32_t previous = shard.sweep++;
    auto& entries = shard.entries;
    std::erase_if(entries, [&](const auto& entry) { return entry.second.expiry <= now; });
    for (auto it = entries.begin(); it != entries.end() && entries.size() > target;) {
      // Not hit since the previous sweep: inserted or last hit before it.
      if (it->second.used_sweep.load(std::memory_order_relaxed) != previous) {
        it = entries.erase(it);
      } else {
        ++it;
      }
    }
    while (entries.size() > target) entries.erase(entries.begin());
  }

  const size_t shard_count_;
  const size_t shard_capacity_;
  const std::unique_ptr<Shard[]> shards_;
};

// ---- JwtVerifier --------------------------------------------------------------------------------

JwtVerifier::JwtVerifier(JwtVerifierOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      keys_(std::make_shared<const KeySet>()),
      cache_(options_.cache_capacity > 0 ? std::make_unique<Cache>(options_.cache_capacity)
                                         : nullptr) {}

JwtVerifier::~JwtVerifier() = default;

void JwtVerifier::SetKeys(std::vector<VerificationKey> keys) {
  auto key_set = std::make_shared<const KeySet>(std::move(keys));
  {
    absl::MutexLock lock(&keys_mu_);
    keys_ = key_set;
  }
  if (cache_ != nullptr) {
    cache_->Retain([&](const Cache::Value& value) {
      const VerificationKey* key = key_set->Find(value.key_id);
      return key != nullptr && key->key.PublicBytes() == value.public_bytes;
    });
  }
}

JwtVerifier::KeyState JwtVerifier::CheckKey(std::string_view key_id, std::string_view public_bytes,
                                            absl::Time now) const {
  absl::ReaderMutexLock lock(&keys_mu_);
  const VerificationKey* key = keys_->Find(key_id);
  if (key == nullptr) return KeyState::kUnknown;
  if (now >= key->not_after) return KeyState::kRetired;
  if (key->key.PublicBytes() != public_bytes) return KeyState::kReplaced;
  return KeyState::kValid;
}

absl::Status JwtVerifier::CheckDates(const AccessClaims& claims, absl::Time now) const {
  if (now >= claims.exp + options_.leeway) return Reject("token expired");
  if (claims.iat > now + options_.leeway) return Reject("token issued in the future");
  if (claims.nbf > now + options_.leeway) return Reject("token not yet valid");
  return absl::OkStatus();
}

absl::StatusOr<AccessClaims> JwtVerifier::Verify(std::string_view token) const {
  if (options_.issuer.empty() || options_.audience.empty()) {
    return absl::FailedPreconditionError("JwtVerifier needs an issuer and an audience");
  }
  if (token.size() > options_.max_token_bytes) return Malformed("too large");
  try {
    const absl::Time now = clock_.Now();
    if (cache_ != nullptr) {
      if (std::optional<Cache::Value> hit = cache_->Find(token); hit.has_value()) {
        switch (CheckKey(hit->key_id, hit->public_bytes, now)) {
          case KeyState::kUnknown:
            return Reject("unknown key id");
          case KeyState::kRetired:
            return Reject("signing key retired");
          case KeyState::kReplaced:
            return VerifyUncached(token, now);  // same kid, new key: judge it afresh
          case KeyState::kValid:
            break;
        }
        SB_RETURN_IF_ERROR(CheckDates(hit->claims, now));
        return std::move(hit->claims);
      }
    }
    return VerifyUncached(token, now);
  } catch (const std::exception&) {
    // Only allocation failures can get here: nlohmann is called without exceptions or on values
    // whose types were checked first.
    return absl::InternalError("token verification failed");
  }
}

absl::StatusOr<AccessClaims> JwtVerifier::VerifyUncached(std::string_view token,
                                                         absl::Time now) const {
  const std::optional<Segments> segments = Split(token);
  if (!segments.has_value()) return Malformed("expected three dot-separated segments");
  std::string header_text, payload_text, signature;
  if (!Base64UrlDecode(segments->header, header_text)) {
    return Malformed("header is not unpadded base64url");
  }
  if (!Base64UrlDecode(segments->payload, payload_text)) {
    return Malformed("payload is not unpadded base64url");
  }
  if (!Base64UrlDecode(segments->signature, signature)) {
    return Malformed("signature is not unpadded base64url");
  }
  SB_ASSIGN_OR_RETURN(std::string key_id, CheckHeader(header_text));

  std::optional<Ed25519Key> key;
  {
    absl::ReaderMutexLock lock(&keys_mu_);
    const VerificationKey* found = keys_->Find(key_id);
    if (found == nullptr) return Reject("unknown key id");
    if (now >= found->not_after) return Reject("signing key retired");
    key = found->key;
  }
  // Ed25519Key::Verify refuses any size other than 64 bytes.
  if (!key->Verify(segments->signing_input, signature)) return Reject("bad signature");

  // Only signed payloads reach the JSON parser.
  SB_ASSIGN_OR_RETURN(AccessClaims claims, ParseClaims(payload_text, options_));
  SB_RETURN_IF_ERROR(CheckDates(claims, now));
  if (cache_ != nullptr) {
    cache_->Insert(token, Cache::Value{claims, std::move(key_id), key->PublicBytes()},
                   claims.exp + options_.leeway, now);
  }
  return claims;
}

}  // namespace sb::auth
