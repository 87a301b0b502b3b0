#pragma once

// SIP digest authentication (RFC 3261 §22 and §25.1, RFC 7616, RFC 8760), without sofia-sip:
// reading Authorization / Proxy-Authorization values, writing WWW-Authenticate /
// Proxy-Authenticate values, minting and checking nonces, counting nonce uses, and computing and
// checking responses. MD5 and SHA-256 with qop=auth or without qop (the RFC 2069 form); the -sess
// algorithms, SHA-512-256, qop=auth-int and userhash are refused.
//
// A registrar answers a REGISTER like this (the order matters, see NonceCounter):
//
//   // No Authorization: 401 with both challenges, SHA-256 first (RFC 8760 §2.4).
//   const std::string nonce = minter.Mint(now);
//   SB_ASSIGN_OR_RETURN(std::vector<std::string> values,
//                       digest::BuildChallenges({.realm = realm, .nonce = nonce}));
//   for (const std::string& value : values) add "WWW-Authenticate: " + value;
//
//   absl::StatusOr<digest::Credentials> c = digest::ParseCredentials(authorization_value);
//   if (!c.ok()) -> 400 (c.status().message() says what is wrong)
//   if (c->realm != realm) -> 401 with fresh challenges
//   switch (minter.Check(c->nonce, now, max_age)) {
//     case kInvalid: -> 401 with fresh challenges
//     case kStale:   -> 401 with fresh challenges and .stale = true (the client retries at once)
//   }
//   ha1 = identity's ha1_sha256 or ha1_md5, after c->algorithm
//   if (!digest::Verify(*c, "REGISTER", ha1)) -> 401 again, count the failure (403 after retries)
//   if (!counter.Accept(c->nonce, c->nonce_count, now)) -> replay: 401, .stale = true
//   -> authenticated as c->username
//
// The request's own checks stay with the caller: that c->uri names the Request-URI (RFC 3261
// §22.4 leaves it to the server; most registrars compare the host part or skip it) and, if it sends
// an opaque, that the client returned it.
//
// Thread-safety: the free functions are pure; NonceMinter is immutable after construction and
// NonceCounter locks internally: all are safe to use from any number of threads at once.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sb::sip::digest {

enum class Algorithm { kMd5, kSha256 };

// "MD5" or "SHA-256", as written in the algorithm parameter.
std::string_view AlgorithmName(Algorithm algorithm);

// Longest Authorization value ParseCredentials reads, and longest parameter value (after
// unescaping) it accepts.
inline constexpr size_t kMaxCredentialsBytes = 4096;
inline constexpr size_t kMaxParamBytes = 256;

// A digest-response (RFC 3261 §25.1, RFC 7616 §3.4) as the client sent it.
struct Credentials {
  std::string username;
  std::string realm;
  std::string nonce;
  std::string uri;                        // digest-uri, as sent
  std::string response;                   // hex, lowercased
  Algorithm algorithm = Algorithm::kMd5;  // MD5 when the client sent none (RFC 7616 §3.4)
  std::string qop;                        // "auth" as the client wrote it, or empty: RFC 2069
  std::string cnonce;                     // set when qop is
  std::string nc;                         // the 8 hex digits as sent (they enter the hash)
  uint32_t nonce_count = 0;               // nc's value, >= 1; 0 when there is no qop
  std::string opaque;                     // empty when absent
};

// Reads an Authorization or Proxy-Authorization header value: the scheme "Digest" (any case), then
// comma-separated name=value parameters with names in any case, values as tokens or quoted strings
// (\-escapes undone), SP/HTAB and folded line breaks (CRLF SP) between items, empty list elements
// ignored, unknown parameters ignored. A pure function of its input that reads nothing outside it,
// whatever the bytes.
//
// InvalidArgument, with a message naming what is wrong, when:
// - the value is longer than kMaxCredentialsBytes, contains a control character (other than HTAB
//   and folded line breaks, also none escaped or inside quotes), is not "Digest" followed by
//   parameters, or is syntactically broken (unterminated quote, missing '=', stray characters);
// - a parameter appears twice, has an empty value, or has a value longer than kMaxParamBytes;
// - username, realm, nonce, uri or response is missing or empty; qop is given without cnonce and
//   nc, or cnonce/nc without qop;
// - algorithm is not MD5 or SHA-256 (MD5-sess, SHA-256-sess, SHA-512-256[-sess] are named as
//   unsupported); qop is not auth (auth-int is named as unsupported); nc is not exactly 8 hex
//   digits or is 00000000; response is not 32 (MD5) or 64 (SHA-256) hex digits; userhash=true
//   or username* (RFC 7616 §3.4.4) is sent.
absl::StatusOr<Credentials> ParseCredentials(std::string_view header_value);

// What a challenge carries. The views must stay valid during the call only.
struct ChallengeParams {
  std::string_view realm;   // required
  std::string_view nonce;   // required: NonceMinter::Mint
  std::string_view opaque;  // optional: not sent when empty
  bool stale = false;       // the client's nonce was authentic but old: it may retry at once
};

// A WWW-Authenticate / Proxy-Authenticate value for one algorithm:
//   Digest realm="r", nonce="n", opaque="o", algorithm=SHA-256, qop="auth", stale=true
// with '"' and '\' in the quoted values escaped. InvalidArgument when realm or nonce is empty, a
// value is longer than kMaxParamBytes or contains a control character (a quoted string cannot
// carry CR or LF, and no value of ours should hold one).
absl::StatusOr<std::string> BuildChallenge(Algorithm algorithm, const ChallengeParams& params);

// The two challenges a registrar sends, in this order: SHA-256, then MD5 (RFC 8760 §2.4: the
// preferred algorithm first; clients that know only MD5 skip the first). Errors as BuildChallenge.
absl::StatusOr<std::vector<std::string>> BuildChallenges(const ChallengeParams& params);

// How long a nonce stays valid when the registrar has no reason to choose otherwise (Kamailio's
// default too). NonceCounterOptions uses it; pass the same value to NonceMinter::Check.
inline constexpr absl::Duration kDefaultNonceMaxAge = absl::Minutes(5);

// Outcome of NonceMinter::Check.
enum class NonceState {
  kValid,    // minted by a holder of the secret, within max_age
  kStale,    // minted by a holder of the secret, but too old: 401 with stale=true
  kInvalid,  // not one of ours (forged, garbled, truncated): 401 with a fresh nonce
};

// Mints stateless nonces: base64url (no padding, 48 characters of [A-Za-z0-9_-]) of 36 bytes:
// the issue time (8 bytes, big-endian Unix seconds), 12 random bytes, and the first 16 bytes of
// HMAC-SHA256(secret, "sb-sip-nonce-v1" || time || random). Nodes that share the secret accept
// each other's nonces, so a client whose requests land on another node keeps its nonce.
//
// Immutable after construction; thread-safe.
class NonceMinter {
 public:
  // Shortest secret WithSecret accepts.
  static constexpr size_t kMinSecretBytes = 16;

  // A minter with a fresh 32-byte random secret: nonces are valid at this process only.
  NonceMinter();
  // A minter with a given secret (raw bytes), e.g. shared by every SIP node. InvalidArgument when
  // it is shorter than kMinSecretBytes.
  static absl::StatusOr<NonceMinter> WithSecret(std::string_view secret);

  // A new nonce issued at `now`.
  std::string Mint(absl::Time now) const;

  // Whether `nonce` is one of ours and was issued at most `max_age` before `now`. A nonce issued
  // up to kMaxClockSkew after `now` (another node's clock running ahead) counts as fresh; one
  // issued further in the future as stale. Runs in time independent of where a forged MAC
  // differs (CRYPTO_memcmp).
  NonceState Check(std::string_view nonce, absl::Time now, absl::Duration max_age) const;

  static constexpr absl::Duration kMaxClockSkew = absl::Seconds(30);

 private:
  class Mac;
  explicit NonceMinter(std::string_view secret);

  std::shared_ptr<const Mac> mac_;  // immutable: copies of the minter share it
};

struct NonceCounterOptions {
  // Nonces tracked at once (32 to 64 bytes each, as the hash tables grow); past it the oldest is
  // forgotten first.
  size_t capacity = 100'000;
  // How long a nonce is remembered after its first use: the nonce max age (plus the clock skew a
  // nonce may carry), after which NonceMinter::Check calls it stale anyway.
  absl::Duration max_age = kDefaultNonceMaxAge + NonceMinter::kMaxClockSkew;
  // Independent locks; the nonce's hash picks one.
  size_t shards = 16;
};

// Replay protection for qop=auth (RFC 7616 §3.4.2, §5.11): remembers, for each nonce in use, the
// highest nonce count (nc) accepted, and accepts only a higher one.
//
// Call Accept only after Verify succeeded: accepting a count for an unverified request would let
// anyone who saw a nonce (it is sent in the clear) raise its count and lock its owner out.
// Without qop there is no nc; pass 1 to make such a nonce single-use.
//
// Per node: the counter lives in this process only. That suffices because a client reuses a
// nonce with the node that challenged it while its flow (and the load balancer's affinity) holds,
// and a nonce unknown here (issued by another node, or forgotten under capacity pressure) is
// accepted once with whatever count it carries and tracked from then on. What that leaves open: a
// captured request replayed once to each other node, within the nonce's max age; it re-asserts
// exactly what the client asked (the same REGISTER, whose response covers method and URI), and
// stops when the nonce goes stale. Shared counting in Redis would close it at a round trip per
// request.
//
// Keys are 64-bit hashes of the nonces: two nonces that collide share one count, which can only
// make a genuine request look like a replay (the client then gets a fresh nonce), never let a
// replay through (a count only rises).
//
// Thread-safe: sharded mutexes.
class NonceCounter {
 public:
  explicit NonceCounter(NonceCounterOptions options = {});
  ~NonceCounter();
  NonceCounter(const NonceCounter&) = delete;
  NonceCounter& operator=(const NonceCounter&) = delete;

  // True when `nc` is at least 1 and higher than every count accepted for `nonce` so far (any
  // count >= 1 on first use), and then remembers it; false for a replay or nc == 0.
  bool Accept(std::string_view nonce, uint32_t nc, absl::Time now);

  // Nonces tracked now (across shards; a snapshot under concurrent use).
  size_t size() const;

 private:
  struct Shard;
  NonceCounterOptions options_;
  std::unique_ptr<Shard[]> shards_;
};

// Lowercase hex H(username ":" realm ":" password): 32 characters for MD5, 64 for SHA-256. Inputs
// are used as given (RFC 7616's userhash is not supported). What identity stores as HA1.
std::string ComputeHa1(Algorithm algorithm, std::string_view username, std::string_view realm,
                       std::string_view password);

// The expected response, lowercase hex (RFC 7616 §3.4.1):
//   qop "auth":  H(ha1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)
//   qop empty:   H(ha1 ":" nonce ":" HA2)   (RFC 2069; nc and cnonce unused)
// with HA2 = H(method ":" digest_uri). `ha1_hex` in either case (it is lowercased first).
std::string ComputeResponse(Algorithm algorithm, std::string_view ha1_hex, std::string_view method,
                            std::string_view digest_uri, std::string_view nonce,
                            std::string_view nc_hex, std::string_view cnonce, std::string_view qop);

// True when `credentials.response` (hex in either case) is the response to `method` under
// `ha1_hex` (the HA1 of credentials.algorithm). The comparison takes the same time wherever the
// strings differ (CRYPTO_memcmp). Checks nothing else: see the sequence at the top.
bool Verify(const Credentials& credentials, std::string_view method, std::string_view ha1_hex);

}  // namespace sb::sip::digest
