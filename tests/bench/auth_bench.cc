// Access-token costs on one thread: signing, a bare Ed25519 signature check, verifying with the
// cache off (every call checks the signature and parses the JSON), and verifying with a warm cache
// over 10,000 distinct tokens in rotation. Tokens are realistic: UUID ids, 3 roles and 8
// permissions.
//
//   auth_bench [--seconds=2]
//
// Then authorization decisions (Authorizer::Check with a warm CachedScopeFacts): each decision
// is timed on its own, and the table gives p50, p99 and p99.9 latency.
//
// Prints, for each operation, operations per second on one core and microseconds per operation.
// Each figure is one function returning a Result; main runs them in order and prints the table.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "libs/auth/authorizer.h"
#include "libs/auth/cached_scope_facts.h"
#include "libs/auth/jwt.h"
#include "libs/auth/signing_key.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"

namespace {

using sb::auth::AccessClaims;
using sb::auth::Ed25519Key;
using sb::auth::JwtSigner;
using sb::auth::JwtVerifier;
using sb::auth::JwtVerifierOptions;

constexpr char kIssuer[] = "https://id.switchboard.example";
constexpr char kAudience[] = "switchboard";
constexpr char kKeyId[] = "2024-05-k1";

struct Result {
  std::string operation;
  double ops_per_second = 0;
  std::string note;
};

// Runs `op` (which returns false on an unexpected failure) until `seconds` have passed; returns
// operations per second, or exits when an operation failed.
template <typename Op>
double Measure(double seconds, Op op) {
  using Steady = std::chrono::steady_clock;
  const auto start = Steady::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  long ops = 0;
  auto now = start;
  do {
    for (int i = 0; i < 64; ++i) {
      if (!op()) {
        std::fprintf(stderr, "operation failed\n");
        std::exit(1);
      }
    }
    ops += 64;
    now = Steady::now();
  } while (now < deadline);
  return static_cast<double>(ops) / std::chrono::duration<double>(now - start).count();
}

Ed25519Key MustGenerate() {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  if (!key.ok()) {
    std::fprintf(stderr, "key generation failed\n");
    std::exit(1);
  }
  return *key;
}

AccessClaims RealisticClaims(absl::Time now) {
  AccessClaims claims;
  claims.iss = kIssuer;
  claims.aud = kAudience;
  claims.sub = sb::NewUuid();
  claims.tid = sb::NewUuid();
  claims.sid = sb::NewUuid();
  claims.jti = sb::NewUuid();
  claims.iat = now;
  claims.nbf = now;
  claims.exp = now + absl::Minutes(15);
  claims.roles = {"agent", "supervisor", "quality-reviewer"};
  claims.perms = {"calls.read:team",      "calls.write:self",     "queues.read:tenant",
                  "recordings.read:team", "contacts.read:tenant", "contacts.write:team",
                  "agents.status:self",   "reports.read:team"};
  claims.amr = "pwd+otp";
  return claims;
}

std::string MustSign(const JwtSigner& signer, const AccessClaims& claims) {
  absl::StatusOr<std::string> token = signer.Sign(claims);
  if (!token.ok()) {
    std::fprintf(stderr, "sign failed: %s\n", token.status().ToString().c_str());
    std::exit(1);
  }
  return *token;
}

JwtVerifierOptions Options(size_t cache_capacity) {
  JwtVerifierOptions options;
  options.issuer = kIssuer;
  options.audience = kAudience;
  options.cache_capacity = cache_capacity;
  return options;
}

Result Sign(double seconds) {
  const sb::SystemClock clock;
  const JwtSigner signer(kKeyId, MustGenerate());
  const AccessClaims claims = RealisticClaims(clock.Now());
  const size_t size = MustSign(signer, claims).size();
  const double rate = Measure(seconds, [&] { return signer.Sign(claims).ok(); });
  return {"sign", rate, std::to_string(size) + "-byte token"};
}

// The floor under VerifyCold: the signature check alone, over an input of the token's size.
Result Ed25519VerifyOnly(double seconds) {
  const sb::SystemClock clock;
  const Ed25519Key key = MustGenerate();
  const std::string token = MustSign(JwtSigner(kKeyId, key), RealisticClaims(clock.Now()));
  const std::string input = token.substr(0, token.rfind('.'));
  const absl::StatusOr<std::string> signature = key.Sign(input);
  if (!signature.ok()) std::exit(1);
  const Ed25519Key public_key = key.PublicOnly();
  const double rate = Measure(seconds, [&] { return public_key.Verify(input, *signature); });
  return {"ed25519 verify only", rate, "OpenSSL, for reference"};
}

Result VerifyCold(double seconds) {
  const sb::SystemClock clock;
  const Ed25519Key key = MustGenerate();
  const std::string token = MustSign(JwtSigner(kKeyId, key), RealisticClaims(clock.Now()));
  JwtVerifier verifier(Options(/*cache_capacity=*/0), clock);
  verifier.SetKeys({{kKeyId, key.PublicOnly()}});
  const double rate = Measure(seconds, [&] { return verifier.Verify(token).ok(); });
  return {"verify, cache off", rate, "signature + JSON every call"};
}

Result VerifyWarm(double seconds) {
  constexpr size_t kTokens = 10'000;
  const sb::SystemClock clock;
  const Ed25519Key key = MustGenerate();
  const JwtSigner signer(kKeyId, key);
  std::vector<std::string> tokens;
  tokens.reserve(kTokens);
  for (size_t i = 0; i < kTokens; ++i)
    tokens.push_back(MustSign(signer, RealisticClaims(clock.Now())));

  JwtVerifier verifier(Options(JwtVerifierOptions().cache_capacity), clock);
  verifier.SetKeys({{kKeyId, key.PublicOnly()}});
  const size_t heap_before = mallinfo2().uordblks;
  for (const std::string& token : tokens) {
    if (!verifier.Verify(token).ok()) std::exit(1);
  }
  const size_t heap_after = mallinfo2().uordblks;
  size_t next = 0;
  const double rate = Measure(seconds, [&] {
    const bool ok = verifier.Verify(tokens[next]).ok();
    next = next + 1 == kTokens ? 0 : next + 1;
    return ok;
  });
  const size_t per_entry = heap_after > heap_before ? (heap_after - heap_before) / kTokens : 0;
  return {"verify, warm cache", rate,
          std::to_string(kTokens) + " tokens, ~" + std::to_string(per_entry) + " B/entry"};
}

// A fixed org for the decision benchmark: the manager reaches 500 users in 20 units.
class StaticFacts final : public sb::auth::ScopeFacts {
 public:
  StaticFacts() {
    reach_ = std::make_shared<sb::auth::Reach>();
    for (int i = 0; i < 500; ++i) reach_->user_ids.insert(sb::NewUuid());
    for (int i = 0; i < 20; ++i) reach_->org_unit_ids.insert(sb::NewUuid());
  }
  absl::StatusOr<std::shared_ptr<const sb::auth::Reach>> Resolve(std::string_view, std::string_view,
                                                                 sb::auth::Scope) override {
    ++misses;
    return reach_;
  }
  std::shared_ptr<sb::auth::Reach> reach_;
  long misses = 0;
};

struct Latency {
  std::string operation;
  double p50_us = 0, p99_us = 0, p999_us = 0, ops_per_second = 0;
  std::string note;
};

// Times `decide` one call at a time, `n` calls; exits if a decision is not the expected one.
template <typename Decide>
Latency MeasureEach(const std::string& name, long n, Decide decide, std::string note) {
  using Steady = std::chrono::steady_clock;
  std::vector<double> ns;
  ns.reserve(n);
  const auto start = Steady::now();
  for (long i = 0; i < n; ++i) {
    const auto t0 = Steady::now();
    const bool ok = decide(i);
    const auto t1 = Steady::now();
    if (!ok) {
      std::fprintf(stderr, "%s: unexpected decision\n", name.c_str());
      std::exit(1);
    }
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  const double total = std::chrono::duration<double>(Steady::now() - start).count();
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) { return ns[static_cast<size_t>(q * (ns.size() - 1))] / 1000; };
  return {name, at(0.50), at(0.99), at(0.999), n / total, std::move(note)};
}

std::vector<Latency> Decisions(double seconds) {
  const long n = static_cast<long>(seconds * 1'000'000);
  const sb::SystemClock clock;
  StaticFacts facts;
  sb::auth::CachedScopeFacts cached(facts, clock);
  sb::auth::Authorizer authorizer(cached);
  namespace perm = sb::auth::perm;
  using sb::auth::Scope;

  sb::auth::Principal manager;
  manager.tenant_id = sb::NewUuid();
  manager.user_id = sb::NewUuid();
  for (const char* p : {perm::kUsersRead, perm::kUsersManage, perm::kCallsRead, perm::kCallsExport,
                        perm::kRecordingsListen, perm::kReportsRead, perm::kAgentsSupervise}) {
    manager.permissions.Add({p, Scope::kOrgUnit});
  }
  manager.permissions.Add({perm::kProjectsSelect, Scope::kOwn});
  sb::auth::Principal admin = manager;
  admin.permissions = sb::auth::PermissionSet();
  for (const auto& info : sb::auth::PermissionCatalog())
    admin.permissions.Add({info.name, Scope::kTenant});

  std::vector<sb::auth::Resource> inside, outside;
  for (const std::string& id : facts.reach_->user_ids) {
    inside.push_back({.type = "call", .tenant_id = manager.tenant_id, .owner_user_id = id});
    outside.push_back(
        {.type = "call", .tenant_id = manager.tenant_id, .owner_user_id = sb::NewUuid()});
  }
  // Warm the cache.
  (void)authorizer.Check(manager, perm::kCallsRead, inside[0]);

  std::vector<Latency> out;
  out.push_back(MeasureEach(
      "allow, org_unit scope", n,
      [&](long i) {
        return authorizer.Check(manager, perm::kCallsRead, inside[i % inside.size()]).ok();
      },
      "500 users in reach, warm cache"));
  out.push_back(MeasureEach(
      "deny, org_unit scope", n,
      [&](long i) {
        return absl::IsPermissionDenied(
            authorizer.Check(manager, perm::kCallsRead, outside[i % outside.size()]));
      },
      "owner outside the reach"));
  out.push_back(MeasureEach(
      "allow, tenant scope", n,
      [&](long i) {
        return authorizer.Check(admin, perm::kCallsRead, outside[i % outside.size()]).ok();
      },
      "no facts needed"));
  out.push_back(MeasureEach(
      "cross-tenant, not found", n,
      [&](long i) {
        sb::auth::Resource r = inside[i % inside.size()];
        r.tenant_id = "other";
        return absl::IsNotFound(authorizer.Check(manager, perm::kCallsRead, r));
      },
      "resource of another tenant"));
  if (facts.misses > 1) std::fprintf(stderr, "warning: %ld scope-fact misses\n", facts.misses);
  return out;
}

void PrintLatencies(const std::vector<Latency>& rows) {
  std::printf("\n%-26s %10s %10s %10s %14s  %s\n", "authorization decision", "p50 us", "p99 us",
              "p99.9 us", "decisions/s", "");
  for (const Latency& r : rows) {
    std::printf("%-26s %10.3f %10.3f %10.3f %14.0f  %s\n", r.operation.c_str(), r.p50_us, r.p99_us,
                r.p999_us, r.ops_per_second, r.note.c_str());
  }
}

void Print(const std::vector<Result>& results) {
  std::printf("%-24s %14s %10s  %s\n", "operation", "ops/s/core", "us/op", "");
  for (const Result& r : results) {
    std::printf("%-24s %14.0f %10.2f  %s\n", r.operation.c_str(), r.ops_per_second,
                1e6 / r.ops_per_second, r.note.c_str());
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
    std::fprintf(stderr, "usage: %s [--seconds=N]\n", argv[0]);
    return 2;
  }
  std::vector<Result> results;
  results.push_back(Sign(seconds));
  results.push_back(Ed25519VerifyOnly(seconds));
  results.push_back(VerifyCold(seconds));
  results.push_back(VerifyWarm(seconds));
  Print(results);
  PrintLatencies(Decisions(seconds));
  return 0;
}
