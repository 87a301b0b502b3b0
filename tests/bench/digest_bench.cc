// Digest authentication costs on one core (CPU time of the calling thread):
//
//   digest_bench [--seconds=2]
//
// - parsing a phone's REGISTER Authorization value (SHA-256, qop=auth, 10 parameters);
// - minting a nonce, checking one, building the two challenges of a 401;
// - computing a response (HA2 and the response hash) for SHA-256 and MD5;
// - NonceCounter::Accept with 100,000 nonces tracked;
// - the full check of an authenticated REGISTER as the registrar runs it: parse, nonce check,
//   SHA-256 response, nonce count; over 5,000 clients with nc 1..20 each, visited in nc order so
//   that every request is a new count (the counter is replaced when the pool wraps around, which
//   the figure includes).
//
// The registrar's target is 8,000 digest REGISTERs/s per core for everything (transport, sofia,
// Redis): what is here has to be a small part of that 125 us.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/sip/digest.h"
#include "tests/support/bench_timing.h"

namespace {

namespace digest = sb::sip::digest;
using digest::Algorithm;
using sb::testing::DoNotOptimize;
using sb::testing::OpsPerSecond;

constexpr char kRealm[] = "demo.sip.localhost";
constexpr char kUri[] = "sip:demo.sip.localhost";
constexpr char kCnonce[] = "b3f2c1d09a8e7f6a";

struct Result {
  std::string operation;
  double ops_per_second = 0;
  std::string note;
};

std::string Nc(uint32_t n) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", n);
  return buf;
}

// What a phone sends: Linphone's parameter order and quoting.
std::string Authorization(const std::string& user, const std::string& nonce, uint32_t nc,
                          const std::string& ha1) {
  const std::string nc_hex = Nc(nc);
  const std::string response = digest::ComputeResponse(Algorithm::kSha256, ha1, "REGISTER", kUri,
                                                       nonce, nc_hex, kCnonce, "auth");
  return absl::StrCat("Digest realm=\"", kRealm, "\", nonce=\"", nonce, "\", algorithm=SHA-256, ",
                      "cnonce=\"", kCnonce, "\", username=\"", user, "\", uri=\"", kUri, "\", ",
                      "response=\"", response, "\", qop=auth, nc=", nc_hex, ", opaque=\"3f0c1a\"");
}

void MustOk(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "%s failed\n", what);
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    constexpr std::string_view kSeconds = "--seconds=";
    if (arg.substr(0, kSeconds.size()) == kSeconds &&
        absl::SimpleAtod(std::string(arg.substr(kSeconds.size())), &seconds) && seconds > 0) {
      continue;
    }
    std::fprintf(stderr, "usage: digest_bench [--seconds=N]\n");
    return 2;
  }

  const digest::NonceMinter minter;
  const absl::Duration max_age = digest::kDefaultNonceMaxAge;
  const std::string ha1 = digest::ComputeHa1(Algorithm::kSha256, "101", kRealm, "s3cret-pass");
  const std::string md5_ha1 = digest::ComputeHa1(Algorithm::kMd5, "101", kRealm, "s3cret-pass");
  const std::string one_nonce = minter.Mint(absl::Now());
  const std::string header = Authorization("101", one_nonce, 1, ha1);
  {
    const absl::StatusOr<digest::Credentials> c = digest::ParseCredentials(header);
    MustOk(c.ok() && digest::Verify(*c, "REGISTER", ha1), "self-check");
  }

  std::vector<Result> results;
  results.push_back({"parse credentials",
                     OpsPerSecond(seconds, [&] { return digest::ParseCredentials(header).ok(); }),
                     std::to_string(header.size()) + "-byte SHA-256 REGISTER value"});
  results.push_back({"mint nonce",
                     OpsPerSecond(seconds,
                                  [&] {
                                    const std::string nonce = minter.Mint(absl::Now());
                                    DoNotOptimize(nonce);
                                    return nonce.size() == 48;
                                  }),
                     "RAND_bytes + HMAC-SHA256"});
  results.push_back({"check nonce",
                     OpsPerSecond(seconds,
                                  [&] {
                                    return minter.Check(one_nonce, absl::Now(), max_age) ==
                                           digest::NonceState::kValid;
                                  }),
                     "base64url + HMAC-SHA256"});
  results.push_back(
      {"build 401 challenges",
       OpsPerSecond(seconds,
                    [&] {
                      const std::string nonce = minter.Mint(absl::Now());
                      return digest::BuildChallenges({.realm = kRealm, .nonce = nonce}).ok();
                    }),
       "mint + SHA-256 and MD5 challenge values"});

  const digest::Credentials parsed = *digest::ParseCredentials(header);
  results.push_back({"verify response SHA-256",
                     OpsPerSecond(seconds, [&] { return digest::Verify(parsed, "REGISTER", ha1); }),
                     "HA2 + response"});
  digest::Credentials md5 = parsed;
  md5.algorithm = Algorithm::kMd5;
  md5.response = digest::ComputeResponse(Algorithm::kMd5, md5_ha1, "REGISTER", md5.uri, md5.nonce,
                                         md5.nc, md5.cnonce, md5.qop);
  results.push_back(
      {"verify response MD5",
       OpsPerSecond(seconds, [&] { return digest::Verify(md5, "REGISTER", md5_ha1); }),
       "HA2 + response"});

  {
    constexpr int kTracked = 100'000;
    digest::NonceCounter counter;
    std::vector<std::string> nonces;
    nonces.reserve(kTracked);
    const absl::Time now = absl::Now();
    for (int i = 0; i < kTracked; ++i) nonces.push_back(minter.Mint(now));
    const size_t heap_before = mallinfo2().uordblks;
    for (const std::string& nonce : nonces) MustOk(counter.Accept(nonce, 1, now), "warm-up");
    const size_t heap_after = mallinfo2().uordblks;
    const size_t per_entry = heap_after > heap_before ? (heap_after - heap_before) / kTracked : 0;
    size_t next = 0;
    uint32_t nc = 2;
    results.push_back(
        {"nonce counter accept",
         OpsPerSecond(seconds,
                      [&] {
                        const bool ok = counter.Accept(nonces[next], nc, now);
                        if (++next == nonces.size()) {
                          next = 0;
                          ++nc;
                        }
                        return ok;
                      }),
         "100,000 nonces tracked, 16 shards, ~" + std::to_string(per_entry) + " B/entry"});
  }

  {
    constexpr int kClients = 5'000;
    constexpr uint32_t kCounts = 20;
    std::vector<std::string> headers;
    headers.reserve(kClients * kCounts);
    std::vector<std::string> client_nonces;
    std::vector<std::string> client_ha1;
    for (int i = 0; i < kClients; ++i) {
      const std::string user = std::to_string(1000 + i);
      client_nonces.push_back(minter.Mint(absl::Now()));
      client_ha1.push_back(digest::ComputeHa1(Algorithm::kSha256, user, kRealm, "pw-" + user));
    }
    for (uint32_t nc = 1; nc <= kCounts; ++nc) {
      for (int i = 0; i < kClients; ++i) {
        headers.push_back(
            Authorization(std::to_string(1000 + i), client_nonces[i], nc, client_ha1[i]));
      }
    }
    auto counter = std::make_unique<digest::NonceCounter>();
    size_t next = 0;
    results.push_back({"full verify SHA-256",
                       OpsPerSecond(seconds,
                                    [&] {
                                      const size_t client = next % kClients;
                                      absl::StatusOr<digest::Credentials> c =
                                          digest::ParseCredentials(headers[next]);
                                      const bool ok =
                                          c.ok() && c->realm == kRealm &&
                                          minter.Check(c->nonce, absl::Now(), max_age) ==
                                              digest::NonceState::kValid &&
                                          digest::Verify(*c, "REGISTER", client_ha1[client]) &&
                                          counter->Accept(c->nonce, c->nonce_count, absl::Now());
                                      if (++next == headers.size()) {
                                        next = 0;
                                        counter = std::make_unique<digest::NonceCounter>();
                                      }
                                      return ok;
                                    }),
                       "parse + nonce check + response + count; 5,000 clients"});
  }

  std::printf("%-26s %14s %10s  %s\n", "operation (one core)", "ops/s", "us/op", "");
  for (const Result& r : results) {
    std::printf("%-26s %14.0f %10.2f  %s\n", r.operation.c_str(), r.ops_per_second,
                1e6 / r.ops_per_second, r.note.c_str());
  }
  return 0;
}
