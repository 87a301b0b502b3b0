// Contact lookup by phone number (the caller's name on a call) over a large contact base: the
// org schema in a throwaway PostgreSQL database (SB_TEST_PG_DSN, or a private server started
// here), --contacts contacts with 1 to 3 numbers each in one tenant (and a small second tenant),
// then LookupContactsByNumber — the function and SQL that LookupContacts runs — in a transaction
// of its own through pg::Pool, as the service does.
//
//   contact_lookup_bench [--contacts=1000000] [--lookups=20000] [--dsn=<libpq dsn>]
//
// With --dsn the database named there is used (and kept): migrated, loaded unless it holds the
// contacts already, so that repeated runs measure without loading again.
//
// Prints, for numbers that exist and numbers that do not, with no filter (internal callers), with
// a project and with an agent's reach (owner filter): p50, p99 and max latency of one lookup and
// lookups per second of one client thread; the same for the statement alone (inside one open
// transaction: one round trip instead of three); then lookups per second of 2 threads. Target: p99
// under 1 ms.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/ids.h"
#include "libs/pg/migrate.h"
#include "libs/pg/pool.h"
#include "libs/testing/pg_server.h"
#include "services/org/contact_sql.h"
#include "services/org/org_migrations.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kOwners = 100;
constexpr int kProjects = 10;
constexpr int64_t kNumberSpace = 90000000;  // the numbers are +36 2xx xxx xxx

// The n-th phone number (n = 3 * contact + k): a bijection of [0, kNumberSpace) scattered over
// the range, so that consecutive contacts do not sit on neighbouring index pages. The SQL below
// computes the same.
std::string NumberOf(int64_t n) {
  return absl::StrCat("+36", (n * 48271) % kNumberSpace + 200000000);
}
// Contact i has 1 + i % 3 numbers.
int PhonesOf(int64_t i) { return 1 + static_cast<int>(i % 3); }

std::string Uuid(const std::string& seed, pqxx::work& tx) {
  return tx.exec_params1("SELECT md5($1)::uuid::text", seed)[0].as<std::string>();
}

void Die(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  std::exit(1);
}

struct Stats {
  double p50_us, p99_us, max_us, per_second;
};

// The 1-minute load average: the machine is shared, and the tail latencies say more with it.
std::string LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  char buf[64] = {};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  if (!ok) return "?";
  std::string s(buf);
  return s.substr(0, s.find(' '));
}

Stats Summarise(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double u : us) sum += u;
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  return {at(0.50), at(0.99), us.back(), 1e6 * us.size() / sum};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t contacts = 1000000;
  int lookups = 20000;
  std::string dsn_flag;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--dsn=", 0) == 0) dsn_flag = arg.substr(6);
    if (arg.rfind("--contacts=", 0) == 0) (void)absl::SimpleAtoi(arg.substr(11), &contacts);
    if (arg.rfind("--lookups=", 0) == 0) (void)absl::SimpleAtoi(arg.substr(10), &lookups);
  }

  absl::StatusOr<std::string> dsn = dsn_flag;
  if (dsn_flag.empty()) {
    absl::StatusOr<std::string> server = sb::testing::SharedTestPgDsn();
    Die(server.status(), "PostgreSQL");
    dsn = sb::testing::CreateTestDatabase(*server);
    Die(dsn.status(), "test database");
  }
  auto pool =
      sb::pg::Pool::Create({.dsn = *dsn, .size = 4, .statement_timeout = absl::ZeroDuration()});
  Die(pool.status(), "pool");
  Die(sb::pg::Migrate(**pool, sb::org::OrgMigrations()), "migrate");

  // --- load ---
  std::string tenant, other_tenant;
  std::vector<std::string> projects, owners;
  int64_t present = 0;
  Die((*pool)->Run([&](pqxx::work& tx) -> absl::Status {
    tenant = Uuid("tenant", tx);
    other_tenant = Uuid("other tenant", tx);
    for (int p = 0; p < kProjects; ++p) projects.push_back(Uuid(absl::StrCat("project", p), tx));
    for (int o = 0; o < kOwners; ++o) owners.push_back(Uuid(absl::StrCat("owner", o), tx));
    present = tx.exec_params1("SELECT count(*) FROM org.contacts WHERE tenant_id = $1", tenant)[0]
                  .as<int64_t>();
    if (present > 0) return absl::OkStatus();
    for (int p = 0; p < kProjects; ++p) {
      tx.exec_params(
          "INSERT INTO org.projects (tenant_id, id, name, recording_policy, state) "
          "VALUES ($1, $2, $3, 1, 1)",
          tenant, projects[p], absl::StrCat("Project ", p));
    }
    return absl::OkStatus();
  }),
      "projects");
  if (present > 0 && present != contacts) {
    std::fprintf(stderr, "the database holds %lld contacts, not %lld: use a fresh one\n",
                 static_cast<long long>(present), static_cast<long long>(contacts));
    return 1;
  }
  const auto load_start = Clock::now();
  constexpr int64_t kBatch = 100000;
  // One multi-row INSERT ... SELECT per batch, generated by the server: names from small
  // vocabularies, a tenth of the contacts in a project, owners round-robin, updated_at spread
  // over a year. Contact ids are md5(tenant || 'c' || i), which the phone rows refer to.
  auto load = [&](const std::string& t, int64_t from, int64_t to) {
    Die((*pool)->Run([&](pqxx::work& tx) -> absl::Status {
      tx.exec_params(
          "INSERT INTO org.contacts (tenant_id, id, first_name, last_name, company, email, "
          "city, country, project_id, owner_user_id, created_at, updated_at) "
          "SELECT $1::uuid, md5($1::uuid::text || 'c' || i)::uuid, "
          "  (ARRAY['Anna','Béla','Csaba','Dóra','Erik','Flóra','Gábor','Hanna'])"
          "    [1 + (i % 8)::int], "
          "  'Kovács' || (i % 5000), 'Company ' || (i % 20000), "
          "  'person' || i || '@example.com', 'Budapest', 'HU', "
          "  CASE WHEN i % 10 = 0 THEN md5('project' || (i / 10 % $4))::uuid END, "
          "  md5('owner' || (i % $5))::uuid, "
          "  now() - make_interval(secs => (i * 7919) % 31536000), "
          "  now() - make_interval(secs => (i * 7919) % 31536000) "
          "FROM generate_series($2::bigint, $3::bigint - 1) i",
          t, from, to, kProjects, kOwners);
      tx.exec_params(
          "INSERT INTO org.contact_phones (tenant_id, contact_id, position, number, raw, "
          "label) "
          "SELECT $1::uuid, md5($1::uuid::text || 'c' || i)::uuid, k, "
          "  '+36' || ((3 * i + k) * 48271 % $4 + 200000000), "
          "  '06 ' || ((3 * i + k) * 48271 % $4 + 200000000), "
          "  (ARRAY['mobile','office','home'])[1 + k::int] "
          "FROM generate_series($2::bigint, $3::bigint - 1) i, "
          "     generate_series(0, i % 3) k",
          t, from, to, kNumberSpace);
      return absl::OkStatus();
    }),
        "load");
  };
  if (present == 0) {
    for (int64_t from = 0; from < contacts; from += kBatch) {
      load(tenant, from, std::min(contacts, from + kBatch));
      std::fprintf(stderr, "\rloaded %lld contacts",
                   static_cast<long long>(std::min(contacts, from + kBatch)));
    }
    std::fprintf(stderr, "\n");
    // A second tenant with the same numbers: its rows must never be found for the first.
    load(other_tenant, 0, std::min<int64_t>(contacts, 10000));
    Die((*pool)->Run([&](pqxx::work& tx) -> absl::Status {
      tx.exec("ANALYZE org.contacts");
      tx.exec("ANALYZE org.contact_phones");
      return absl::OkStatus();
    }),
        "analyze");
  }
  int64_t phones = 0;
  Die((*pool)->Run([&](pqxx::work& tx) -> absl::Status {
    phones =
        tx.exec_params1("SELECT count(*) FROM org.contact_phones WHERE tenant_id = $1", tenant)[0]
            .as<int64_t>();
    return absl::OkStatus();
  }),
      "count");
  const double load_s = std::chrono::duration<double>(Clock::now() - load_start).count();
  std::printf("%s %lld contacts with %lld numbers (+%lld in a second tenant) in %.1f s\n",
              present > 0 ? "found" : "loaded", static_cast<long long>(contacts),
              static_cast<long long>(phones),
              static_cast<long long>(std::min<int64_t>(contacts, 10000)), load_s);

  // --- measure ---
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(0, contacts - 1);
  auto existing = [&](std::mt19937_64& r) {
    const int64_t i = pick(r);
    return NumberOf(3 * i + static_cast<int64_t>(r() % PhonesOf(i)));
  };
  // Slots 3i+k with k >= PhonesOf(i) are never used, and neither is anything past 3 * contacts.
  auto missing = [&](std::mt19937_64& r) {
    const int64_t i = pick(r);
    return i % 3 == 2 ? NumberOf(3 * contacts + i) : NumberOf(3 * i + 2);
  };

  // A running service has the hot pages cached: a pass of random lookups first, not measured.
  const auto warm_start = Clock::now();
  for (int n = 0; n < 20000; ++n) {
    sb::org::NumberLookup q{.tenant_id = tenant, .number = existing(rng)};
    Die((*pool)->Run([&](pqxx::work& tx) -> absl::Status {
      sb::org::LookupContactsByNumber(tx, q);
      return absl::OkStatus();
    }),
        "warm-up");
  }
  std::printf("warm-up: 20000 lookups in %.1f s\n",
              std::chrono::duration<double>(Clock::now() - warm_start).count());
  std::printf("load average %s (2 cores, shared with whatever else runs)\n", LoadAverage().c_str());
  std::printf(
      "one pooled read per lookup (pg::Pool::Read: the statement, no BEGIN/COMMIT), as "
      "LookupContacts runs it\n");

  struct Series {
    const char* name;
    bool exists;
    bool project;
    bool reach;
  };
  const Series series[] = {
      {"existing number, internal caller", true, false, false},
      {"missing number, internal caller", false, false, false},
      {"existing number, with project_id", true, true, false},
      {"existing number, agent's reach (1 owner)", true, false, true},
      {"missing number, agent's reach (1 owner)", false, false, true},
  };
  std::printf("%-44s %9s %9s %9s %12s %8s\n", "lookup", "p50 us", "p99 us", "max us", "lookups/s",
              "found");
  for (const Series& s : series) {
    std::vector<double> us;
    us.reserve(lookups);
    int64_t found = 0;
    for (int n = -1000; n < lookups; ++n) {  // the first 1000 warm up
      sb::org::NumberLookup q{.tenant_id = tenant,
                              .number = s.exists ? existing(rng) : missing(rng)};
      if (s.project) q.project_id = projects[rng() % projects.size()];
      if (s.reach) q.owner_user_ids = std::vector<std::string>{owners[rng() % owners.size()]};
      const auto start = Clock::now();
      absl::StatusOr<size_t> n_found =
          (*pool)->Read([&](pqxx::nontransaction& tx) -> absl::StatusOr<size_t> {
            return sb::org::LookupContactsByNumber(tx, q).size();
          });
      const double elapsed =
          std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      Die(n_found.status(), "lookup");
      if (n < 0) continue;
      us.push_back(elapsed);
      found += static_cast<int64_t>(*n_found);
    }
    const Stats st = Summarise(std::move(us));
    std::printf("%-44s %9.0f %9.0f %9.0f %12.0f %8lld\n", s.name, st.p50_us, st.p99_us, st.max_us,
                st.per_second, static_cast<long long>(found));
  }

  // The statement alone: one round trip, without the transaction's BEGIN and COMMIT.
  for (bool exists : {true, false}) {
    std::vector<double> us;
    us.reserve(lookups);
    int64_t found = 0;
    Die((*pool)->Run([&](pqxx::work& tx) -> absl::Status {
      for (int n = -1000; n < lookups; ++n) {
        sb::org::NumberLookup q{.tenant_id = tenant,
                                .number = exists ? existing(rng) : missing(rng)};
        const auto start = Clock::now();
        const size_t n_found = sb::org::LookupContactsByNumber(tx, q).size();
        const double elapsed =
            std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        if (n < 0) continue;
        us.push_back(elapsed);
        found += static_cast<int64_t>(n_found);
      }
      return absl::OkStatus();
    }),
        "statement");
    const Stats st = Summarise(std::move(us));
    std::printf("%-44s %9.0f %9.0f %9.0f %12.0f %8lld\n",
                exists ? "existing number, statement only" : "missing number, statement only",
                st.p50_us, st.p99_us, st.max_us, st.per_second, static_cast<long long>(found));
  }

  // Two client threads (the machine has two cores, shared with the server).
  std::atomic<int64_t> done{0};
  const auto until = Clock::now() + std::chrono::seconds(5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 r(100 + t);
      while (Clock::now() < until) {
        sb::org::NumberLookup q{.tenant_id = tenant,
                                .number = (r() % 2) ? existing(r) : missing(r)};
        Die((*pool)->Read([&](pqxx::nontransaction& tx) -> absl::Status {
          sb::org::LookupContactsByNumber(tx, q);
          return absl::OkStatus();
        }),
            "lookup");
        ++done;
      }
    });
  }
  for (auto& th : threads) th.join();
  std::printf("2 threads, half existing and half missing numbers: %.0f lookups/s\n",
              static_cast<double>(done.load()) / 5.0);
  std::printf("load average %s\n", LoadAverage().c_str());
  return 0;
}
