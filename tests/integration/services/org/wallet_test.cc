// The tenant wallet through OrgService's gRPC API: top-ups, call charges, adjustments, the credit
// limit, idempotent replays, listing, access, and the invariant that the balance always equals the
// sum of the transactions — under 1,000 parallel debits with retries, and against SQL that tries
// to break it behind the service's back.

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/common/ids.h"
#include "switchboard/common/v1/errors.pb.h"
#include "tests/integration/services/org/org_fixture.h"

namespace sb::org::test {
namespace {

namespace cv1 = ::switchboard::common::v1;

constexpr int64_t kNanos = 1'000'000'000;

cv1::Money Money(int64_t units, int32_t nanos = 0, const std::string& currency = "EUR") {
  cv1::Money m;
  m.set_currency_code(currency);
  m.set_units(units);
  m.set_nanos(nanos);
  return m;
}

cv1::Money FromNanos(int64_t nanos, const std::string& currency = "EUR") {
  return Money(nanos / kNanos, static_cast<int32_t>(nanos % kNanos), currency);
}

int64_t Nanos(const cv1::Money& m) { return m.units() * kNanos + m.nanos(); }

// The ErrorInfo reason in a finished call's error details ("" when there is none).
std::string ReasonOf(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("sb-error-details-bin");
  if (it == trailers.end()) return "";
  cv1::ErrorDetails details;
  details.ParseFromString(std::string(it->second.data(), it->second.size()));
  for (const auto& d : details.details()) {
    if (d.has_error_info()) return d.error_info().reason();
  }
  return "";
}

// What a caller sees of a finished call.
struct Result {
  grpc::StatusCode code = grpc::OK;
  std::string field;   // first FieldViolation's field
  std::string reason;  // ErrorInfo reason
  std::string message;
  bool ok() const { return code == grpc::OK; }
};

Result Finish(const grpc::Status& s, const grpc::ClientContext& context) {
  Result r;
  r.code = s.error_code();
  r.message = s.error_message();
  if (!s.ok()) {
    r.field = ViolationField(context);
    r.reason = ReasonOf(context);
  }
  return r;
}

#define SB_REQUIRE_OK(expr)                                                         \
  do {                                                                              \
    const Result sb_result_ = (expr);                                               \
    INFO(sb_result_.code << ": " << sb_result_.message << " " << sb_result_.field); \
    REQUIRE(sb_result_.ok());                                                       \
  } while (false)

struct World {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");

  Result TopUp(const std::string& token, const cv1::Money& amount, const std::string& key,
               v1::WalletTransaction* out = nullptr, const std::string& tenant = "",
               const std::string& description = "", const std::string& reference = "") {
    v1::TopUpWalletRequest req;
    req.set_tenant_id(tenant);
    *req.mutable_amount() = amount;
    req.set_idempotency_key(key);
    req.set_description(description);
    req.set_external_reference(reference);
    v1::WalletTransaction resp;
    auto ctx = f.Ctx(token);
    Result r = Finish(f.stub().TopUpWallet(ctx.get(), req, &resp), *ctx);
    if (out) *out = resp;
    return r;
  }

  Result Debit(const std::string& tenant, const cv1::Money& amount, const std::string& key,
               v1::DebitWalletResponse* out = nullptr, const std::string& call_id = "") {
    v1::DebitWalletRequest req;
    req.set_tenant_id(tenant);
    *req.mutable_amount() = amount;
    req.set_idempotency_key(key);
    req.set_call_id(call_id);
    req.set_description("call charge");
    v1::DebitWalletResponse resp;
    auto ctx = f.InternalCtx();
    Result r = Finish(f.stub().DebitWallet(ctx.get(), req, &resp), *ctx);
    if (out) *out = resp;
    return r;
  }

  Result Adjust(const std::string& token, const cv1::Money& amount, const std::string& key,
                const std::string& description, v1::WalletTransaction* out = nullptr,
                const std::string& tenant = "") {
    v1::AdjustWalletRequest req;
    req.set_tenant_id(tenant);
    *req.mutable_amount() = amount;
    req.set_idempotency_key(key);
    req.set_description(description);
    v1::WalletTransaction resp;
    auto ctx = f.Ctx(token);
    Result r = Finish(f.stub().AdjustWallet(ctx.get(), req, &resp), *ctx);
    if (out) *out = resp;
    return r;
  }

  Result Get(const std::string& token, v1::Wallet* out, const std::string& tenant = "") {
    v1::GetWalletRequest req;
    req.set_tenant_id(tenant);
    v1::Wallet resp;
    auto ctx = f.Ctx(token);
    Result r = Finish(f.stub().GetWallet(ctx.get(), req, &resp), *ctx);
    if (out) *out = resp;
    return r;
  }

  v1::Wallet Wallet(const std::string& token, const std::string& tenant = "") {
    v1::Wallet w;
    SB_REQUIRE_OK(Get(token, &w, tenant));
    return w;
  }

  Result Update(const std::string& token, const v1::Wallet& wallet,
                const std::vector<std::string>& paths, v1::Wallet* out = nullptr) {
    v1::UpdateWalletRequest req;
    *req.mutable_wallet() = wallet;
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    v1::Wallet resp;
    auto ctx = f.Ctx(token);
    Result r = Finish(f.stub().UpdateWallet(ctx.get(), req, &resp), *ctx);
    if (out) *out = resp;
    return r;
  }

  Result SetCreditLimit(const std::string& token, const cv1::Money& limit,
                        const std::string& tenant = "") {
    v1::Wallet w;
    w.set_tenant_id(tenant);
    *w.mutable_credit_limit() = limit;
    return Update(token, w, {"credit_limit"});
  }

  Result List(const std::string& token, const v1::ListWalletTransactionsRequest& req,
              v1::ListWalletTransactionsResponse* out) {
    auto ctx = f.Ctx(token);
    return Finish(f.stub().ListWalletTransactions(ctx.get(), req, out), *ctx);
  }

  // Every page of a listing, in order.
  std::vector<v1::WalletTransaction> ListAll(const std::string& token,
                                             v1::ListWalletTransactionsRequest req,
                                             int page_size = 100, int* pages = nullptr) {
    std::vector<v1::WalletTransaction> all;
    req.set_page_size(page_size);
    int n = 0;
    for (;;) {
      v1::ListWalletTransactionsResponse resp;
      SB_REQUIRE_OK(List(token, req, &resp));
      ++n;
      for (const auto& t : resp.transactions()) all.push_back(t);
      if (resp.next_page_token().empty()) break;
      REQUIRE(resp.transactions_size() == page_size);
      req.set_page_token(resp.next_page_token());
    }
    if (pages) *pages = n;
    return all;
  }

  // Balance, sum and count of the tenant's wallet read directly from PostgreSQL.
  struct Stored {
    int64_t balance = 0;
    int64_t sum = 0;
    int64_t count = 0;
    int64_t distinct_keys = 0;
    int64_t broken_links = 0;  // transactions whose balance_after does not continue the chain
  };
  Stored ReadStored(const std::string& tenant_id) {
    absl::StatusOr<Stored> stored = f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<Stored> {
      Stored s;
      pqxx::result w =
          tx.exec_params("SELECT balance FROM org.wallets WHERE tenant_id = $1", tenant_id);
      if (!w.empty()) s.balance = w[0][0].as<int64_t>();
      pqxx::row t = tx.exec_params1(
          "SELECT coalesce(sum(amount), 0)::bigint, count(*), count(DISTINCT idempotency_key) "
          "FROM org.wallet_transactions WHERE tenant_id = $1",
          tenant_id);
      s.sum = t[0].as<int64_t>();
      s.count = t[1].as<int64_t>();
      s.distinct_keys = t[2].as<int64_t>();
      s.broken_links = tx.exec_params1(
                             "SELECT count(*) FROM (SELECT balance_after - amount - "
                             "lag(balance_after, 1, 0::bigint) OVER (ORDER BY seq) AS gap "
                             "FROM org.wallet_transactions WHERE tenant_id = $1) c WHERE gap <> 0",
                             tenant_id)[0]
                           .as<int64_t>();
      return s;
    });
    REQUIRE(stored.ok());
    return *stored;
  }
};

TEST_CASE("A wallet starts empty in EUR and a top-up credits it", "[org][wallet]") {
  World w;
  v1::Wallet empty = w.Wallet(w.acme.admin_token);
  CHECK(empty.tenant_id() == w.acme.id);
  CHECK(empty.balance().currency_code() == "EUR");
  CHECK(Nanos(empty.balance()) == 0);
  CHECK(Nanos(empty.credit_limit()) == 0);

  v1::WalletTransaction t;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(100, 500'000'000), "form-1", &t, "",
                        "March invoice", "psp-4711"));
  CHECK(!t.id().empty());
  CHECK(t.tenant_id() == w.acme.id);
  CHECK(t.type() == v1::WALLET_TRANSACTION_TYPE_TOP_UP);
  CHECK(Nanos(t.amount()) == 100'500'000'000);
  CHECK(t.amount().currency_code() == "EUR");
  CHECK(Nanos(t.balance_after()) == 100'500'000'000);
  CHECK(t.idempotency_key() == "form-1");
  CHECK(t.description() == "March invoice");
  CHECK(t.external_reference() == "psp-4711");
  CHECK(t.created_by_user_id() == w.acme.admin_id);
  CHECK(t.created_at().seconds() > 0);

  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(0, 1), "form-2"));
  v1::Wallet after = w.Wallet(w.acme.admin_token);
  CHECK(after.balance().units() == 100);
  CHECK(after.balance().nanos() == 500'000'001);
  CHECK(after.updated_at().seconds() > 0);

  // The same form submitted again: the first transaction, nothing credited twice.
  v1::WalletTransaction again;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(100, 500'000'000), "form-1", &again));
  CHECK(again.id() == t.id());
  CHECK(Nanos(again.balance_after()) == 100'500'000'000);
  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == 100'500'000'001);
  CHECK(w.ReadStored(w.acme.id).count == 2);
}

TEST_CASE("The first top-up sets the wallet currency and later amounts must match",
          "[org][wallet]") {
  World w;
  v1::WalletTransaction t;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(5000, 0, "huf"), "huf-1", &t));
  CHECK(t.amount().currency_code() == "HUF");
  v1::Wallet wallet = w.Wallet(w.acme.admin_token);
  CHECK(wallet.balance().currency_code() == "HUF");
  CHECK(wallet.credit_limit().currency_code() == "HUF");

  Result r = w.TopUp(w.acme.admin_token, Money(10), "eur-1");
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "amount.currency_code");
  r = w.Debit(w.acme.id, Money(1), "call:eur");
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "amount.currency_code");
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(12, 0, "HUF"), "call:huf"));

  // Too late to change it through UpdateWallet as well.
  v1::Wallet update;
  *update.mutable_low_balance_threshold() = Money(10, 0, "EUR");
  r = w.Update(w.acme.admin_token, update, {"low_balance_threshold"});
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "wallet.low_balance_threshold.currency_code");
  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == 4988 * kNanos);
}

TEST_CASE("UpdateWallet sets the currency only while the wallet has no transactions",
          "[org][wallet]") {
  World w;
  v1::Wallet update;
  *update.mutable_low_balance_threshold() = Money(20, 0, "USD");
  v1::Wallet out;
  SB_REQUIRE_OK(w.Update(w.acme.admin_token, update, {"low_balance_threshold"}, &out));
  CHECK(out.balance().currency_code() == "USD");
  CHECK(Nanos(out.low_balance_threshold()) == 20 * kNanos);
  // A threshold without a currency keeps the wallet's.
  *update.mutable_low_balance_threshold() = Money(30, 0, "");
  SB_REQUIRE_OK(w.Update(w.acme.admin_token, update, {"low_balance_threshold"}, &out));
  CHECK(out.low_balance_threshold().currency_code() == "USD");

  // A top-up in another currency would still set it: the wallet has no transactions.
  Result r = w.TopUp(w.acme.admin_token, Money(10, 0, "EUR"), "eur");
  SB_REQUIRE_OK(r);
  CHECK(w.Wallet(w.acme.admin_token).balance().currency_code() == "EUR");
  *update.mutable_low_balance_threshold() = Money(30, 0, "USD");
  r = w.Update(w.acme.admin_token, update, {"low_balance_threshold"});
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "wallet.low_balance_threshold.currency_code");

  // Credit limit and threshold must agree with each other.
  v1::Wallet both;
  both.set_tenant_id(w.acme.id);
  *both.mutable_credit_limit() = Money(5, 0, "EUR");
  *both.mutable_low_balance_threshold() = Money(5, 0, "GBP");
  r = w.Update(w.f.platform_token(), both, {"credit_limit", "low_balance_threshold"});
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "wallet.low_balance_threshold.currency_code");
}

TEST_CASE("Wallet amounts are validated and errors name the field", "[org][wallet]") {
  World w;
  const std::string& admin = w.acme.admin_token;
  struct Bad {
    cv1::Money amount;
    std::string field;
  };
  const std::vector<Bad> bad_top_ups = {
      {Money(0), "amount"},
      {Money(-5), "amount"},
      {Money(0, -1), "amount"},
      {Money(1, 1'000'000'000), "amount.nanos"},
      {Money(0, -1'000'000'000), "amount.nanos"},
      {Money(1, -1), "amount.nanos"},
      {Money(-1, 1), "amount.nanos"},
      {Money(1, 0, ""), "amount.currency_code"},
      {Money(1, 0, "EURO"), "amount.currency_code"},
      {Money(1, 0, "E1R"), "amount.currency_code"},
      {Money(int64_t{1} << 60), "amount.units"},
  };
  for (const Bad& b : bad_top_ups) {
    INFO(b.amount.ShortDebugString());
    Result r = w.TopUp(admin, b.amount, NewUuid());
    CHECK(r.code == grpc::INVALID_ARGUMENT);
    CHECK(r.field == b.field);
    r = w.Debit(w.acme.id, b.amount, NewUuid());
    CHECK(r.code == grpc::INVALID_ARGUMENT);
    CHECK(r.field == b.field);
  }
  Result r = w.TopUp(admin, Money(1), "");
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "idempotency_key");
  r = w.TopUp(admin, Money(1), std::string(201, 'k'));
  CHECK(r.field == "idempotency_key");
  r = w.TopUp(admin, Money(1), "k", nullptr, "", std::string(501, 'd'));
  CHECK(r.field == "description");
  r = w.Debit(w.acme.id, Money(1), "");
  CHECK(r.field == "idempotency_key");

  // Adjustments are signed but not zero, and say why.
  r = w.Adjust(admin, Money(0), "adj", "nothing");
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "amount");
  r = w.Adjust(admin, Money(-1, 5), "adj", "bad sign");
  CHECK(r.field == "amount.nanos");
  r = w.Adjust(admin, Money(1), "adj", "  ");
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "description");
  r = w.Adjust(admin, Money(1), "", "why");
  CHECK(r.field == "idempotency_key");

  // Credit limits are not negative; update masks name known fields.
  v1::Wallet limit;
  limit.set_tenant_id(w.acme.id);
  *limit.mutable_credit_limit() = Money(-1);
  r = w.Update(w.f.platform_token(), limit, {"credit_limit"});
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "wallet.credit_limit");
  r = w.Update(w.f.platform_token(), limit, {});
  CHECK(r.field == "update_mask");
  r = w.Update(w.f.platform_token(), limit, {"balance"});
  CHECK(r.field == "update_mask");

  v1::ListWalletTransactionsRequest list;
  list.set_type(static_cast<v1::WalletTransactionType>(99));
  v1::ListWalletTransactionsResponse resp;
  r = w.List(admin, list, &resp);
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "type");

  // Nothing of it reached the wallet.
  CHECK(w.ReadStored(w.acme.id).count == 0);
  CHECK(Nanos(w.Wallet(admin).balance()) == 0);
}

TEST_CASE("DebitWallet charges a call once and replays a retried key", "[org][wallet]") {
  World w;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(10), "top"));

  v1::DebitWalletResponse first;
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(3, 250'000'000), "call:c1", &first, "c1"));
  CHECK_FALSE(first.replayed());
  CHECK(first.transaction().type() == v1::WALLET_TRANSACTION_TYPE_CALL_CHARGE);
  CHECK(Nanos(first.transaction().amount()) == -3'250'000'000);
  CHECK(Nanos(first.transaction().balance_after()) == 6'750'000'000);
  CHECK(first.transaction().call_id() == "c1");
  CHECK(first.transaction().created_by_user_id().empty());
  CHECK(Nanos(first.wallet().balance()) == 6'750'000'000);

  v1::DebitWalletResponse retry;
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(3, 250'000'000), "call:c1", &retry, "c1"));
  CHECK(retry.replayed());
  CHECK(retry.transaction().id() == first.transaction().id());
  CHECK(Nanos(retry.transaction().balance_after()) == 6'750'000'000);
  CHECK(Nanos(retry.wallet().balance()) == 6'750'000'000);
  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == 6'750'000'000);

  // The tenant can also come from the x-sb-tenant-id metadata.
  v1::DebitWalletRequest req;
  *req.mutable_amount() = Money(1);
  req.set_idempotency_key("call:c2");
  v1::DebitWalletResponse resp;
  SB_REQUIRE_GRPC_OK(w.f.stub().DebitWallet(w.f.InternalCtx(w.acme.id).get(), req, &resp));
  CHECK(resp.transaction().tenant_id() == w.acme.id);

  // Only services charge calls.
  auto ctx = w.f.Ctx(w.acme.admin_token);
  CHECK(Code(w.f.stub().DebitWallet(ctx.get(), req, &resp)) == grpc::UNAUTHENTICATED);
  req.set_idempotency_key("call:no-tenant");
  CHECK(Code(w.f.stub().DebitWallet(w.f.InternalCtx().get(), req, &resp)) ==
        grpc::INVALID_ARGUMENT);

  const World::Stored stored = w.ReadStored(w.acme.id);
  CHECK(stored.count == 3);
  CHECK(stored.balance == 5'750'000'000);
  CHECK(stored.sum == stored.balance);
}

TEST_CASE("An idempotency key reused with another amount or type is refused", "[org][wallet]") {
  World w;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(10), "k-top"));
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(2), "call:k"));

  Result r = w.Debit(w.acme.id, Money(3), "call:k");
  CHECK(r.code == grpc::FAILED_PRECONDITION);
  CHECK(r.reason == "IDEMPOTENCY_KEY_REUSED");
  CHECK(r.field == "idempotency_key");
  r = w.TopUp(w.acme.admin_token, Money(2), "call:k");
  CHECK(r.code == grpc::FAILED_PRECONDITION);
  CHECK(r.reason == "IDEMPOTENCY_KEY_REUSED");
  r = w.TopUp(w.acme.admin_token, Money(11), "k-top");
  CHECK(r.reason == "IDEMPOTENCY_KEY_REUSED");
  r = w.Adjust(w.acme.admin_token, Money(10), "k-top", "same key as a top-up");
  CHECK(r.reason == "IDEMPOTENCY_KEY_REUSED");
  r = w.Debit(w.acme.id, Money(2, 0, "USD"), "call:k");
  CHECK(r.code == grpc::FAILED_PRECONDITION);

  // Keys are per tenant: another tenant may use the same one.
  TenantInfo bravo = w.f.CreateTenant("bravo");
  SB_REQUIRE_OK(w.TopUp(bravo.admin_token, Money(50), "k-top"));
  v1::DebitWalletResponse other;
  SB_REQUIRE_OK(w.Debit(bravo.id, Money(3), "call:k", &other));
  CHECK_FALSE(other.replayed());

  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == 8 * kNanos);
  CHECK(Nanos(w.Wallet(bravo.admin_token).balance()) == 47 * kNanos);
  CHECK(w.ReadStored(w.acme.id).count == 2);
}

TEST_CASE("Debits stop at the credit limit and a refused debit writes nothing", "[org][wallet]") {
  World w;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(5), "top"));
  SB_REQUIRE_OK(w.SetCreditLimit(w.f.platform_token(), Money(10), w.acme.id));
  CHECK(Nanos(w.Wallet(w.acme.admin_token).credit_limit()) == 10 * kNanos);

  v1::DebitWalletResponse resp;
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(14), "call:1", &resp));
  CHECK(Nanos(resp.wallet().balance()) == -9 * kNanos);

  Result r = w.Debit(w.acme.id, Money(1, 1), "call:2");
  CHECK(r.code == grpc::FAILED_PRECONDITION);
  CHECK(r.reason == "CREDIT_LIMIT_REACHED");
  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == -9 * kNanos);
  World::Stored stored = w.ReadStored(w.acme.id);
  CHECK(stored.count == 2);
  CHECK(stored.balance == -9 * kNanos);
  v1::ListWalletTransactionsResponse list;
  SB_REQUIRE_OK(w.List(w.acme.admin_token, {}, &list));
  CHECK(list.total_size() == 2);

  // Down to exactly -credit_limit is allowed; one nano-unit more is not.
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(1), "call:3", &resp));
  CHECK(Nanos(resp.wallet().balance()) == -10 * kNanos);
  r = w.Debit(w.acme.id, Money(0, 1), "call:4");
  CHECK(r.reason == "CREDIT_LIMIT_REACHED");
  // Negative adjustments are held to the limit too; positive ones always pass.
  r = w.Adjust(w.acme.admin_token, Money(-1), "adj-1", "correction");
  CHECK(r.reason == "CREDIT_LIMIT_REACHED");
  SB_REQUIRE_OK(w.Adjust(w.acme.admin_token, Money(2), "adj-2", "goodwill"));

  // A refused key was not used up: once there is room, the same request goes through.
  v1::DebitWalletResponse later;
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(1, 1), "call:2", &later));
  CHECK_FALSE(later.replayed());
  CHECK(Nanos(later.wallet().balance()) == -9 * kNanos - 1);
  // ... and a retried one is replayed even though there is no more room.
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(1, 1), "call:2", &later));
  CHECK(later.replayed());

  // Lowering the limit below the debt is allowed; it stops further debits.
  SB_REQUIRE_OK(w.SetCreditLimit(w.f.platform_token(), Money(0), w.acme.id));
  r = w.Debit(w.acme.id, Money(0, 1), "call:5");
  CHECK(r.reason == "CREDIT_LIMIT_REACHED");
  stored = w.ReadStored(w.acme.id);
  CHECK(stored.count == 5);
  CHECK(stored.sum == stored.balance);
  CHECK(stored.balance == -9 * kNanos - 1);
}

TEST_CASE("AdjustWallet corrects the balance in both directions", "[org][wallet]") {
  World w;
  v1::WalletTransaction t;
  SB_REQUIRE_OK(
      w.Adjust(w.acme.admin_token, Money(7, 500'000'000), "adj-1", "opening balance", &t));
  CHECK(t.type() == v1::WALLET_TRANSACTION_TYPE_ADJUSTMENT);
  CHECK(t.description() == "opening balance");
  CHECK(t.created_by_user_id() == w.acme.admin_id);
  v1::WalletTransaction correction;
  SB_REQUIRE_OK(
      w.Adjust(w.acme.admin_token, Money(-2, -500'000'000), "adj-2", "wrong charge", &correction));
  CHECK(Nanos(correction.amount()) == -2'500'000'000);
  CHECK(Nanos(correction.balance_after()) == 5 * kNanos);

  // A platform admin adjusts any tenant's wallet.
  TenantInfo bravo = w.f.CreateTenant("bravo");
  SB_REQUIRE_OK(w.Adjust(w.f.platform_token(), Money(3), "adj-p", "credit note", &t, bravo.id));
  CHECK(t.tenant_id() == bravo.id);
  CHECK(Nanos(w.Wallet(bravo.admin_token).balance()) == 3 * kNanos);

  // Replays return the first adjustment.
  v1::WalletTransaction again;
  SB_REQUIRE_OK(
      w.Adjust(w.acme.admin_token, Money(-2, -500'000'000), "adj-2", "wrong charge", &again));
  CHECK(again.id() == correction.id());
  CHECK(Nanos(again.balance_after()) == 5 * kNanos);
  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == 5 * kNanos);
}

TEST_CASE("ListWalletTransactions lists newest first with filters and paging", "[org][wallet]") {
  World w;
  std::vector<std::string> ids;  // in the order they were made
  v1::WalletTransaction t;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(100), "top-1", &t));
  ids.push_back(t.id());
  for (int i = 1; i <= 5; ++i) {
    v1::DebitWalletResponse d;
    const std::string call = i == 4 ? "c3" : absl::StrCat("c", i);
    SB_REQUIRE_OK(w.Debit(w.acme.id, Money(i), absl::StrCat("call:", i), &d, call));
    ids.push_back(d.transaction().id());
  }
  SB_REQUIRE_OK(w.Adjust(w.acme.admin_token, Money(-1), "adj-1", "fix", &t));
  ids.push_back(t.id());
  const std::vector<std::string> newest_first(ids.rbegin(), ids.rend());

  int pages = 0;
  std::vector<v1::WalletTransaction> all = w.ListAll(w.acme.admin_token, {}, 3, &pages);
  CHECK(pages == 3);
  std::vector<std::string> listed;
  for (const auto& x : all) listed.push_back(x.id());
  CHECK(listed == newest_first);
  CHECK(Nanos(all.front().balance_after()) == Nanos(w.Wallet(w.acme.admin_token).balance()));

  v1::ListWalletTransactionsRequest req;
  v1::ListWalletTransactionsResponse resp;
  req.set_page_size(3);
  SB_REQUIRE_OK(w.List(w.acme.admin_token, req, &resp));
  CHECK(resp.total_size() == 7);
  CHECK(!resp.next_page_token().empty());

  // A token belongs to its filters.
  v1::ListWalletTransactionsRequest other = req;
  other.set_page_token(resp.next_page_token());
  other.set_type(v1::WALLET_TRANSACTION_TYPE_TOP_UP);
  v1::ListWalletTransactionsResponse ignored;
  Result r = w.List(w.acme.admin_token, other, &ignored);
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "page_token");

  req = {};
  req.set_type(v1::WALLET_TRANSACTION_TYPE_CALL_CHARGE);
  all = w.ListAll(w.acme.admin_token, req);
  REQUIRE(all.size() == 5);
  for (const auto& x : all) CHECK(x.type() == v1::WALLET_TRANSACTION_TYPE_CALL_CHARGE);
  CHECK(all.front().id() == ids[5]);

  req = {};
  req.set_call_id("c3");
  all = w.ListAll(w.acme.admin_token, req);
  REQUIRE(all.size() == 2);
  CHECK(all[0].id() == ids[4]);
  CHECK(all[1].id() == ids[3]);

  // [start, end) on created_at, around the fourth transaction.
  std::vector<v1::WalletTransaction> everything = w.ListAll(w.acme.admin_token, {});
  const google::protobuf::Timestamp pivot = everything[3].created_at();  // ids[3]
  req = {};
  *req.mutable_time_range()->mutable_start_time() = pivot;
  all = w.ListAll(w.acme.admin_token, req);
  REQUIRE(all.size() == 4);
  CHECK(all.back().id() == ids[3]);
  req = {};
  *req.mutable_time_range()->mutable_end_time() = pivot;
  all = w.ListAll(w.acme.admin_token, req);
  REQUIRE(all.size() == 3);
  CHECK(all.front().id() == ids[2]);
  req = {};
  *req.mutable_time_range()->mutable_start_time() = pivot;
  *req.mutable_time_range()->mutable_end_time() = everything[0].created_at();
  req.set_type(v1::WALLET_TRANSACTION_TYPE_CALL_CHARGE);
  all = w.ListAll(w.acme.admin_token, req);
  CHECK(all.size() == 3);  // ids[3], ids[4], ids[5]

  req = {};
  req.mutable_time_range()->mutable_start_time()->set_seconds(2'000'000'000);
  req.mutable_time_range()->mutable_end_time()->set_seconds(1'000'000'000);
  r = w.List(w.acme.admin_token, req, &ignored);
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "time_range.end_time");
}

TEST_CASE("Wallet access follows billing permissions and tenants", "[org][wallet]") {
  World w;
  OrgFixture& f = w.f;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(20), "top"));
  f.CreateUser(w.acme.admin_token, "agent", {"agent"});
  const std::string agent = f.Token("acme", "agent");
  const std::string clerk_id = f.CreateUser(w.acme.admin_token, "clerk", {"agent"});
  f.Grant(w.acme.admin_token, clerk_id, auth::perm::kBillingManage, cv1::SCOPE_TENANT);
  const std::string clerk = f.Token("acme", "clerk");

  SECTION("an agent cannot read or fund the wallet") {
    v1::Wallet out;
    Result r = w.Get(agent, &out);
    CHECK(r.code == grpc::PERMISSION_DENIED);
    CHECK(out.ByteSizeLong() == 0);
    v1::ListWalletTransactionsResponse list;
    CHECK(w.List(agent, {}, &list).code == grpc::PERMISSION_DENIED);
    CHECK(list.transactions_size() == 0);
    CHECK(w.TopUp(agent, Money(1), "agent-top").code == grpc::PERMISSION_DENIED);
    CHECK(w.Adjust(agent, Money(1), "agent-adj", "why").code == grpc::PERMISSION_DENIED);
    v1::Wallet threshold;
    *threshold.mutable_low_balance_threshold() = Money(1);
    CHECK(w.Update(agent, threshold, {"low_balance_threshold"}).code == grpc::PERMISSION_DENIED);
  }

  SECTION("a tenant admin sets the threshold but cannot raise the credit limit") {
    v1::Wallet threshold;
    *threshold.mutable_low_balance_threshold() = Money(5);
    v1::Wallet out;
    SB_REQUIRE_OK(w.Update(w.acme.admin_token, threshold, {"low_balance_threshold"}, &out));
    CHECK(Nanos(out.low_balance_threshold()) == 5 * kNanos);
    Result r = w.SetCreditLimit(w.acme.admin_token, Money(1000));
    CHECK(r.code == grpc::PERMISSION_DENIED);
    CHECK(Nanos(w.Wallet(w.acme.admin_token).credit_limit()) == 0);
    CHECK(w.Debit(w.acme.id, Money(21), "call:over").reason == "CREDIT_LIMIT_REACHED");
    // The platform admin can.
    SB_REQUIRE_OK(w.SetCreditLimit(f.platform_token(), Money(1000), w.acme.id));
    CHECK(Nanos(w.Wallet(w.acme.admin_token).credit_limit()) == 1000 * kNanos);
  }

  SECTION("billing.manage alone tops up and reads but does not adjust") {
    v1::WalletTransaction t;
    SB_REQUIRE_OK(w.TopUp(clerk, Money(3), "clerk-top", &t));
    CHECK(t.created_by_user_id() == clerk_id);
    CHECK(Nanos(w.Wallet(clerk).balance()) == 23 * kNanos);
    CHECK(w.Adjust(clerk, Money(1), "clerk-adj", "why").code == grpc::PERMISSION_DENIED);
    CHECK(w.SetCreditLimit(clerk, Money(1)).code == grpc::PERMISSION_DENIED);
    // Naming another tenant does not help a tenant user.
    TenantInfo bravo = f.CreateTenant("bravo");
    CHECK(w.TopUp(clerk, Money(1), "x", nullptr, bravo.id).code == grpc::NOT_FOUND);
  }

  SECTION("another tenant's admin sees their own wallet only") {
    TenantInfo bravo = f.CreateTenant("bravo");
    v1::Wallet out;
    Result r = w.Get(bravo.admin_token, &out, w.acme.id);
    CHECK(r.code == grpc::NOT_FOUND);
    CHECK(out.ByteSizeLong() == 0);
    v1::ListWalletTransactionsRequest req;
    req.set_tenant_id(w.acme.id);
    v1::ListWalletTransactionsResponse list;
    CHECK(w.List(bravo.admin_token, req, &list).code == grpc::NOT_FOUND);
    CHECK(w.TopUp(bravo.admin_token, Money(1), "steal", nullptr, w.acme.id).code ==
          grpc::NOT_FOUND);
    CHECK(w.Adjust(bravo.admin_token, Money(-20), "steal", "x", nullptr, w.acme.id).code ==
          grpc::NOT_FOUND);

    v1::Wallet own = w.Wallet(bravo.admin_token);
    CHECK(own.tenant_id() == bravo.id);
    CHECK(Nanos(own.balance()) == 0);
    CHECK(w.ListAll(bravo.admin_token, {}).empty());
    CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == 20 * kNanos);
  }

  SECTION("platform admins and services read any tenant's wallet") {
    CHECK(Nanos(w.Wallet(f.platform_token(), w.acme.id).balance()) == 20 * kNanos);
    v1::ListWalletTransactionsRequest req;
    req.set_tenant_id(w.acme.id);
    CHECK(w.ListAll(f.platform_token(), req).size() == 1);
    v1::GetWalletRequest get;
    v1::Wallet out;
    SB_REQUIRE_GRPC_OK(f.stub().GetWallet(f.InternalCtx(w.acme.id).get(), get, &out));
    CHECK(Nanos(out.balance()) == 20 * kNanos);
    CHECK(w.Get(f.platform_token(), &out, "not-a-uuid").code == grpc::INVALID_ARGUMENT);
  }
}

TEST_CASE("1000 parallel debits with retries keep the balance equal to the sum of transactions",
          "[org][wallet][concurrency]") {
  World w;
  constexpr int kDebits = 1000;
  constexpr int kRetried = 200;     // sent again by the same client once answered
  constexpr int kConcurrent = 100;  // sent twice at once by two clients
  constexpr int kTopUps = 10;       // made while the debits run
  constexpr int kThreads = 32;

  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(100), "opening-1"));
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(50, 500'000'000), "opening-2"));
  int64_t expected = 150'500'000'000;

  struct Item {
    bool top_up = false;
    std::string key;
    std::string call_id;
    int64_t amount = 0;  // nano-units, positive
    bool retry = false;
  };
  std::vector<Item> items;
  for (int i = 0; i < kDebits; ++i) {
    Item it;
    it.call_id = NewUuid();
    it.key = "call:" + it.call_id;
    // 0.001 .. 0.25 EUR with odd nano-units.
    it.amount = (i % 250 + 1) * 1'000'000 + i % 7;
    it.retry = i % (kDebits / kRetried) == 0;
    expected -= it.amount;
    items.push_back(it);
  }
  for (int i = 0; i < kTopUps; ++i) {
    Item it;
    it.top_up = true;
    it.key = absl::StrCat("parallel-top-", i);
    it.amount = kNanos;
    it.retry = true;
    expected += it.amount;
    items.push_back(it);
  }
  REQUIRE(expected > 0);  // no debit may be refused for the credit limit

  // The order requests are taken in: every item once, the concurrent ones twice in a row (two
  // idle clients pick them up together), top-ups spread among the debits.
  std::vector<size_t> order;
  for (size_t i = 0; i < kDebits; ++i) {
    order.push_back(i);
    if (i % (kDebits / kConcurrent) == 1) order.push_back(i);
    if (i % (kDebits / kTopUps) == 5) order.push_back(kDebits + i / (kDebits / kTopUps));
  }
  REQUIRE(order.size() == kDebits + kConcurrent + kTopUps);

  struct Outcome {
    grpc::StatusCode code = grpc::UNKNOWN;
    std::string message;
    std::string id;
    bool replayed = false;
    int64_t amount = 0;
  };
  // One slot per request (first send and retry), each written by one thread only.
  std::vector<std::vector<Outcome>> outcomes(order.size());
  std::atomic<size_t> next{0};
  auto send = [&](const Item& it) {
    Outcome o;
    if (it.top_up) {
      v1::WalletTransaction t;
      Result r = w.TopUp(w.acme.admin_token, FromNanos(it.amount), it.key, &t);
      o.code = r.code;
      o.message = r.message;
      o.id = t.id();
      o.amount = Nanos(t.amount());
    } else {
      v1::DebitWalletResponse d;
      Result r = w.Debit(w.acme.id, FromNanos(it.amount), it.key, &d, it.call_id);
      o.code = r.code;
      o.message = r.message;
      o.id = d.transaction().id();
      o.replayed = d.replayed();
      o.amount = Nanos(d.transaction().amount());
    }
    return o;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (size_t n = next++; n < order.size(); n = next++) {
        const Item& it = items[order[n]];
        outcomes[n].push_back(send(it));
        if (it.retry) outcomes[n].push_back(send(it));
      }
    });
  }
  for (auto& t : threads) t.join();

  // Every request succeeded; each key has one transaction, made by exactly one of its requests.
  std::map<size_t, std::vector<const Outcome*>> by_item;
  for (size_t n = 0; n < order.size(); ++n) {
    for (const Outcome& o : outcomes[n]) by_item[order[n]].push_back(&o);
  }
  REQUIRE(by_item.size() == items.size());
  int requests = 0;
  std::map<std::string, size_t> item_of_id;
  for (const auto& [index, list] : by_item) {
    const Item& it = items[index];
    INFO(it.key);
    int charged = 0;
    for (const Outcome* o : list) {
      ++requests;
      INFO(o->code << ": " << o->message);
      REQUIRE(o->code == grpc::OK);
      CHECK(o->id == list.front()->id);
      CHECK(o->amount == (it.top_up ? it.amount : -it.amount));
      if (!o->replayed) ++charged;
    }
    if (!it.top_up) CHECK(charged == 1);
    item_of_id[list.front()->id] = index;
  }
  CHECK(requests == kDebits + kRetried + kConcurrent + 2 * kTopUps);
  CHECK(item_of_id.size() == items.size());

  // What the API shows: every page of the listing, and the wallet.
  const std::vector<v1::WalletTransaction> listed = w.ListAll(w.acme.admin_token, {}, 250);
  REQUIRE(listed.size() == items.size() + 2);
  int64_t sum = 0;
  std::set<std::string> keys;
  for (const auto& t : listed) {
    sum += Nanos(t.amount());
    keys.insert(t.idempotency_key());
    if (auto it = item_of_id.find(t.id()); it != item_of_id.end()) {
      CHECK(t.idempotency_key() == items[it->second].key);
    }
  }
  CHECK(keys.size() == listed.size());
  // Newest first, and each balance_after continues the one before it.
  for (size_t i = 0; i + 1 < listed.size(); ++i) {
    CHECK(Nanos(listed[i].balance_after()) ==
          Nanos(listed[i + 1].balance_after()) + Nanos(listed[i].amount()));
  }
  CHECK(Nanos(listed.back().balance_after()) == Nanos(listed.back().amount()));
  const v1::Wallet wallet = w.Wallet(w.acme.admin_token);
  CHECK(Nanos(wallet.balance()) == sum);
  CHECK(Nanos(wallet.balance()) == expected);
  CHECK(Nanos(listed.front().balance_after()) == expected);

  // What PostgreSQL holds.
  const World::Stored stored = w.ReadStored(w.acme.id);
  CHECK(stored.balance == expected);
  CHECK(stored.sum == expected);
  CHECK(stored.count == kDebits + kTopUps + 2);
  CHECK(stored.distinct_keys == stored.count);
  CHECK(stored.broken_links == 0);
}

TEST_CASE("Parallel debits never pass the credit limit", "[org][wallet][concurrency]") {
  World w;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(10), "top"));
  SB_REQUIRE_OK(w.SetCreditLimit(w.f.platform_token(), Money(5), w.acme.id));
  constexpr int kRequests = 200;  // 0.10 each: 150 fit into 10 + 5
  std::vector<Result> results(kRequests);
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int n = next++; n < kRequests; n = next++) {
        results[n] = w.Debit(w.acme.id, Money(0, 100'000'000), absl::StrCat("call:", n));
      }
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  for (const Result& r : results) {
    INFO(r.code << ": " << r.message);
    if (r.ok()) {
      ++ok;
    } else {
      CHECK(r.code == grpc::FAILED_PRECONDITION);
      CHECK(r.reason == "CREDIT_LIMIT_REACHED");
    }
  }
  CHECK(ok == 150);
  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == -5 * kNanos);
  const World::Stored stored = w.ReadStored(w.acme.id);
  CHECK(stored.count == 151);
  CHECK(stored.sum == -5 * kNanos);
  CHECK(stored.balance == stored.sum);
}

TEST_CASE("The schema refuses writes that would make balance and transactions diverge",
          "[org][wallet]") {
  World w;
  SB_REQUIRE_OK(w.TopUp(w.acme.admin_token, Money(10), "top"));  // seq 1, balance 10
  SB_REQUIRE_OK(w.Debit(w.acme.id, Money(3), "call:1"));         // seq 2, balance 7
  const std::string& tenant = w.acme.id;
  // Runs `sql` ($1: the tenant) in a transaction of its own; true when the schema's checks
  // refused it (FailedPrecondition), not when it failed for another reason.
  auto refused = [&](const std::string& sql, bool with_tenant = true) {
    absl::Status s = w.f.pg().Run([&](pqxx::work& tx) -> absl::Status {
      if (with_tenant) {
        tx.exec_params(sql, tenant);
      } else {
        tx.exec(sql);
      }
      return absl::OkStatus();
    });
    INFO(sql << " -> " << s.ToString());
    return s.code() == absl::StatusCode::kFailedPrecondition;
  };
  const std::string insert =
      "INSERT INTO org.wallet_transactions (tenant_id, id, seq, type, amount, balance_after, "
      "idempotency_key) VALUES ($1, gen_random_uuid(), ";

  // The balance moved without a transaction.
  CHECK(refused("UPDATE org.wallets SET balance = balance + 1 WHERE tenant_id = $1"));
  // A transaction whose balance_after does not continue the balance.
  CHECK(refused(insert + "3, 1, 5, 99, 'forged')"));
  // A transaction out of sequence.
  CHECK(refused(insert + "5, 1, 5, 12000000005, 'forged')"));
  // A correct transaction that is never applied to the wallet (refused at commit).
  CHECK(refused(insert + "3, 1, 5, 7000000005, 'forged')"));
  // Applied, but jumping over the chain.
  CHECK(
      refused("UPDATE org.wallets SET balance = 0, transaction_count = transaction_count + 2 "
              "WHERE tenant_id = $1"));
  // History rewritten or removed.
  CHECK(refused("UPDATE org.wallet_transactions SET amount = -1 WHERE tenant_id = $1"));
  CHECK(refused("DELETE FROM org.wallet_transactions WHERE tenant_id = $1"));
  CHECK(refused("TRUNCATE org.wallet_transactions", false));
  // The currency of money already moved.
  CHECK(refused("UPDATE org.wallets SET currency = 'USD' WHERE tenant_id = $1"));
  // A wallet that starts with money.
  CHECK(
      refused("INSERT INTO org.wallets (tenant_id, currency, balance) "
              "SELECT gen_random_uuid(), 'EUR', 100 WHERE $1::uuid IS NOT NULL"));

  // Done properly (the next transaction, then the wallet moved to it), SQL is accepted.
  absl::Status proper = w.f.pg().Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec_params(insert + "3, 3, 2000000000, 9000000000, 'manual-fix')", tenant);
    tx.exec_params(
        "UPDATE org.wallets SET balance = 9000000000, transaction_count = 3 WHERE tenant_id = $1",
        tenant);
    return absl::OkStatus();
  });
  INFO(proper.ToString());
  CHECK(proper.ok());

  const World::Stored stored = w.ReadStored(tenant);
  CHECK(stored.count == 3);
  CHECK(stored.balance == 9 * kNanos);
  CHECK(stored.sum == stored.balance);
  CHECK(stored.broken_links == 0);
  CHECK(Nanos(w.Wallet(w.acme.admin_token).balance()) == 9 * kNanos);
}

}  // namespace
}  // namespace sb::org::test
