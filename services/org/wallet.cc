// The tenant wallet: GetWallet, UpdateWallet, ListWalletTransactions, TopUpWallet, DebitWallet,
// AdjustWallet (migrations/0004_wallet.sql).
//
// Every change of the balance is one transaction row, written in the same PostgreSQL transaction
// as the new balance while the wallet row is locked FOR UPDATE; the schema's triggers refuse any
// write that would let the two diverge. Amounts are int64 nano-units (units * 10^9 + nanos).
//
// Idempotency: each write carries a key unique per tenant. Under the wallet's row lock the first
// request with a key has committed before the next one looks, so a retry finds the first
// transaction and returns it; the unique index is the last word should two inserts ever meet, and
// the loser then returns the winner's row. A key sent again with another type or amount is
// FailedPrecondition IDEMPOTENCY_KEY_REUSED.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "services/org/org_service.h"

namespace sb::org {
namespace {

namespace cv1 = ::switchboard::common::v1;

constexpr int64_t kNanosPerUnit = 1'000'000'000;
// The largest amount, credit limit or threshold, in nano-units (10^9 whole units): far above any
// real wallet, and low enough that a balance plus an amount can be checked without overflow.
constexpr int64_t kMaxAmountNanos = 1'000'000'000 * kNanosPerUnit;
// Wallets that nobody has set a currency for (org has no tenant currency).
constexpr char kDefaultCurrency[] = "EUR";
constexpr size_t kMaxKeyLength = 200;
constexpr size_t kMaxDescriptionLength = 500;
constexpr size_t kMaxReferenceLength = 200;
constexpr size_t kMaxCallIdLength = 200;

constexpr char kWalletColumns[] =
    "w.currency, w.balance, w.transaction_count, w.credit_limit, w.low_balance_threshold, "
    "extract(epoch FROM w.updated_at)::float8";
constexpr char kTransactionColumns[] =
    "t.id::text, t.type, t.amount, t.balance_after, t.idempotency_key, t.call_id, t.description, "
    "t.external_reference, coalesce(t.created_by_user_id::text, ''), "
    "extract(epoch FROM t.created_at)::float8";

struct WalletRow {
  std::string tenant_id;
  std::string currency = kDefaultCurrency;
  int64_t balance = 0;
  int64_t transaction_count = 0;
  int64_t credit_limit = 0;
  int64_t low_balance_threshold = 0;
  std::optional<absl::Time> updated_at;  // empty for a wallet not stored yet
};

cv1::Money MoneyOf(int64_t nanos, const std::string& currency) {
  cv1::Money m;
  m.set_currency_code(currency);
  // Truncating division keeps units and nanos of the same sign, as Money requires.
  m.set_units(nanos / kNanosPerUnit);
  m.set_nanos(static_cast<int32_t>(nanos % kNanosPerUnit));
  return m;
}

// "12.5", "-0.000000001", "3" (for messages).
std::string FormatNanos(int64_t nanos) {
  const bool negative = nanos < 0;
  // Negated in unsigned arithmetic, which is defined for INT64_MIN too.
  const uint64_t magnitude =
      negative ? uint64_t{0} - static_cast<uint64_t>(nanos) : static_cast<uint64_t>(nanos);
  std::string fraction = absl::StrCat(magnitude % kNanosPerUnit + kNanosPerUnit).substr(1);
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  return absl::StrCat(negative ? "-" : "", magnitude / kNanosPerUnit, fraction.empty() ? "" : ".",
                      fraction);
}

v1::Wallet WalletProto(const WalletRow& w) {
  v1::Wallet out;
  out.set_tenant_id(w.tenant_id);
  *out.mutable_balance() = MoneyOf(w.balance, w.currency);
  *out.mutable_credit_limit() = MoneyOf(w.credit_limit, w.currency);
  *out.mutable_low_balance_threshold() = MoneyOf(w.low_balance_threshold, w.currency);
  if (w.updated_at) pg::SetTimestamp(out.mutable_updated_at(), *w.updated_at);
  return out;
}

WalletRow WalletFromRow(const std::string& tenant_id, const pqxx::row& row) {
  WalletRow w;
  w.tenant_id = tenant_id;
  w.currency = row[0].as<std::string>();
  w.balance = row[1].as<int64_t>();
  w.transaction_count = row[2].as<int64_t>();
  w.credit_limit = row[3].as<int64_t>();
  w.low_balance_threshold = row[4].as<int64_t>();
  w.updated_at = pg::TimeFromEpoch(row[5]);
  return w;
}

// The stored wallet of a tenant, or the empty one it starts as.
WalletRow LoadWallet(pqxx::work& tx, const std::string& tenant_id) {
  pqxx::result r = tx.exec_params(
      absl::StrCat("SELECT ", kWalletColumns, " FROM org.wallets w WHERE w.tenant_id = $1"),
      tenant_id);
  if (r.empty()) return WalletRow{.tenant_id = tenant_id};
  return WalletFromRow(tenant_id, r[0]);
}

// The tenant's wallet, created on first use, locked until the transaction ends.
WalletRow LockWallet(pqxx::work& tx, const std::string& tenant_id) {
  const std::string select = absl::StrCat("SELECT ", kWalletColumns,
                                          " FROM org.wallets w WHERE w.tenant_id = $1 FOR UPDATE");
  pqxx::result r = tx.exec_params(select, tenant_id);
  if (r.empty()) {
    // Two first uses at once: the second insert waits for the first and then does nothing.
    tx.exec_params(
        "INSERT INTO org.wallets (tenant_id, currency) VALUES ($1, $2) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id, std::string(kDefaultCurrency));
    r = tx.exec_params(select, tenant_id);
  }
  return WalletFromRow(tenant_id, r.at(0));
}

v1::WalletTransaction TransactionFromRow(const pqxx::row& row, const std::string& tenant_id,
                                         const std::string& currency) {
  v1::WalletTransaction t;
  t.set_id(row[0].as<std::string>());
  t.set_tenant_id(tenant_id);
  t.set_type(static_cast<v1::WalletTransactionType>(row[1].as<int>()));
  *t.mutable_amount() = MoneyOf(row[2].as<int64_t>(), currency);
  *t.mutable_balance_after() = MoneyOf(row[3].as<int64_t>(), currency);
  t.set_idempotency_key(row[4].as<std::string>());
  t.set_call_id(row[5].as<std::string>());
  t.set_description(row[6].as<std::string>());
  t.set_external_reference(row[7].as<std::string>());
  t.set_created_by_user_id(row[8].as<std::string>());
  pg::SetTimestamp(t.mutable_created_at(), row[9]);
  return t;
}

// An ISO 4217 code (upper-cased); "" stays "" (the caller decides what empty means).
absl::StatusOr<std::string> NormalizeCurrency(const std::string& code, std::string_view field) {
  std::string upper = absl::AsciiStrToUpper(code);
  if (upper.empty()) return upper;
  if (upper.size() != 3 || !absl::ascii_isalpha(static_cast<unsigned char>(upper[0])) ||
      !absl::ascii_isalpha(static_cast<unsigned char>(upper[1])) ||
      !absl::ascii_isalpha(static_cast<unsigned char>(upper[2]))) {
    return app::FieldError(field, "NOT_CURRENCY_CODE", "must be an ISO 4217 code like EUR");
  }
  return upper;
}

// An amount validated against Money's rules, in nano-units, with its currency.
struct Amount {
  int64_t nanos = 0;
  std::string currency;  // upper-case; "" when the request left it empty
};

absl::StatusOr<Amount> ParseMoney(const cv1::Money& m, std::string_view field) {
  const std::string f(field);
  if (m.nanos() <= -kNanosPerUnit || m.nanos() >= kNanosPerUnit) {
    return app::FieldError(f + ".nanos", "OUT_OF_RANGE", "must be -999999999..999999999");
  }
  if ((m.units() > 0 && m.nanos() < 0) || (m.units() < 0 && m.nanos() > 0)) {
    return app::FieldError(f + ".nanos", "SIGN_MISMATCH", "must have the same sign as units");
  }
  if (m.units() > kMaxAmountNanos / kNanosPerUnit || m.units() < -kMaxAmountNanos / kNanosPerUnit) {
    return app::FieldError(
        f + ".units", "OUT_OF_RANGE",
        absl::StrCat("must be at most ", kMaxAmountNanos / kNanosPerUnit, " in magnitude"));
  }
  Amount a;
  a.nanos = m.units() * kNanosPerUnit + m.nanos();
  if (a.nanos > kMaxAmountNanos || a.nanos < -kMaxAmountNanos) {
    return app::FieldError(
        f + ".units", "OUT_OF_RANGE",
        absl::StrCat("must be at most ", kMaxAmountNanos / kNanosPerUnit, " in magnitude"));
  }
  SB_ASSIGN_OR_RETURN(a.currency, NormalizeCurrency(m.currency_code(), f + ".currency_code"));
  return a;
}

// The `amount` of a write: Money's rules, a currency, and a sign.
enum class Sign { kPositive, kNonZero };
absl::StatusOr<Amount> ParseEntryAmount(const cv1::Money& m, Sign sign) {
  SB_ASSIGN_OR_RETURN(Amount a, ParseMoney(m, "amount"));
  if (a.currency.empty()) {
    return app::FieldError("amount.currency_code", "REQUIRED", "is required");
  }
  if (sign == Sign::kPositive && a.nanos <= 0) {
    return app::FieldError("amount", "NOT_POSITIVE", "must be positive");
  }
  if (a.nanos == 0) return app::FieldError("amount", "ZERO", "must not be zero");
  return a;
}

absl::Status ValidateKey(const std::string& key) {
  if (key.empty()) return app::FieldError("idempotency_key", "REQUIRED", "is required");
  if (key.size() > kMaxKeyLength) {
    return app::FieldError("idempotency_key", "TOO_LONG",
                           absl::StrCat("must be at most ", kMaxKeyLength, " bytes"));
  }
  for (unsigned char c : key) {
    if (c < 0x20 || c == 0x7F) {
      return app::FieldError("idempotency_key", "INVALID_CHARACTERS",
                             "must not contain control characters");
    }
  }
  return absl::OkStatus();
}

// One write to the wallet, validated.
struct Entry {
  v1::WalletTransactionType type = v1::WALLET_TRANSACTION_TYPE_UNSPECIFIED;
  Amount amount;  // signed: what the balance moves by
  std::string idempotency_key;
  std::string call_id;
  std::string description;
  std::string external_reference;
  std::string created_by_user_id;  // "" for the platform
  // A top-up may set the currency of a wallet that has no transactions yet.
  bool sets_currency = false;
  // Debits below -credit_limit are refused.
  bool enforce_credit_limit = true;
};

struct Posted {
  v1::WalletTransaction transaction;
  v1::Wallet wallet;
  bool replayed = false;
};

// The part every write request has, validated: the amount (`sign` as the RPC requires; negate it
// for debits), the idempotency key and the description.
absl::StatusOr<Entry> MakeEntry(v1::WalletTransactionType type, const cv1::Money& amount, Sign sign,
                                const std::string& key, const std::string& description) {
  Entry e;
  e.type = type;
  SB_ASSIGN_OR_RETURN(e.amount, ParseEntryAmount(amount, sign));
  SB_RETURN_IF_ERROR(ValidateKey(key));
  SB_RETURN_IF_ERROR(app::ValidateText(description, "description", kMaxDescriptionLength));
  e.idempotency_key = key;
  e.description = description;
  return e;
}

// The earlier transaction with the entry's key, when it is the same request; FailedPrecondition
// IDEMPOTENCY_KEY_REUSED when the key was used for something else.
absl::StatusOr<Posted> Replay(const pqxx::row& row, const WalletRow& wallet, const Entry& e) {
  Posted p;
  p.transaction = TransactionFromRow(row, wallet.tenant_id, wallet.currency);
  p.wallet = WalletProto(wallet);
  p.replayed = true;
  if (p.transaction.type() != e.type || row[2].as<int64_t>() != e.amount.nanos ||
      e.amount.currency != wallet.currency) {
    return app::WithReason(
        app::FieldError(absl::StatusCode::kFailedPrecondition, "idempotency_key",
                        "IDEMPOTENCY_KEY_REUSED",
                        "was already used for another transaction (different type or amount)"),
        "IDEMPOTENCY_KEY_REUSED");
  }
  return p;
}

// Applies `e` to the tenant's wallet in `tx`: the transaction row and the new balance, or the
// replay of the key's first transaction. InvalidArgument (currency), FailedPrecondition
// (CREDIT_LIMIT_REACHED, IDEMPOTENCY_KEY_REUSED, BALANCE_OUT_OF_RANGE); nothing is written on
// error (the caller's transaction rolls back).
absl::StatusOr<Posted> Post(pqxx::work& tx, const std::string& tenant_id, const Entry& e,
                            const Clock& clock) {
  WalletRow w = LockWallet(tx, tenant_id);
  const std::string by_key = absl::StrCat("SELECT ", kTransactionColumns,
                                          " FROM org.wallet_transactions t WHERE t.tenant_id = $1 "
                                          "AND t.idempotency_key = $2");
  if (pqxx::result r = tx.exec_params(by_key, tenant_id, e.idempotency_key); !r.empty()) {
    return Replay(r[0], w, e);
  }

  if (e.amount.currency != w.currency) {
    if (!e.sets_currency || w.transaction_count > 0) {
      return app::FieldError("amount.currency_code", "CURRENCY_MISMATCH",
                             absl::StrCat("must be the wallet's currency ", w.currency));
    }
    tx.exec_params("UPDATE org.wallets SET currency = $2 WHERE tenant_id = $1", tenant_id,
                   e.amount.currency);
    w.currency = e.amount.currency;
  }

  int64_t balance_after = 0;
  if (__builtin_add_overflow(w.balance, e.amount.nanos, &balance_after)) {
    return app::WithReason(absl::FailedPreconditionError("the balance would be out of range"),
                           "BALANCE_OUT_OF_RANGE");
  }
  if (e.enforce_credit_limit && e.amount.nanos < 0 && balance_after < -w.credit_limit) {
    return app::WithReason(
        absl::FailedPreconditionError(absl::StrCat(
            "credit limit reached: ", FormatNanos(w.balance + w.credit_limit), " ", w.currency,
            " available, ", FormatNanos(-e.amount.nanos), " ", w.currency, " asked")),
        "CREDIT_LIMIT_REACHED");
  }

  // Read under the lock, so created_at grows with seq.
  const absl::Time now = clock.Now();
  const int64_t seq = w.transaction_count + 1;
  pqxx::result inserted = tx.exec_params(
      absl::StrCat("INSERT INTO org.wallet_transactions AS t (tenant_id, id, seq, type, amount, "
                   "balance_after, idempotency_key, call_id, description, external_reference, "
                   "created_by_user_id, created_at) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12)) "
                   "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING ",
                   kTransactionColumns),
      tenant_id, NewUuid(), seq, static_cast<int>(e.type), e.amount.nanos, balance_after,
      e.idempotency_key, e.call_id, e.description, e.external_reference,
      pg::NullIfEmpty(e.created_by_user_id), pg::ToEpoch(now));
  if (inserted.empty()) {
    // Another transaction won the key between our look-up and our insert (only possible for a
    // writer that did not lock the wallet): answer with its row.
    pqxx::result r = tx.exec_params(by_key, tenant_id, e.idempotency_key);
    return Replay(r.at(0), LoadWallet(tx, tenant_id), e);
  }
  tx.exec_params(
      "UPDATE org.wallets SET balance = $2, transaction_count = $3, updated_at = to_timestamp($4) "
      "WHERE tenant_id = $1",
      tenant_id, balance_after, seq, pg::ToEpoch(now));
  w.balance = balance_after;
  w.transaction_count = seq;
  w.updated_at = now;

  Posted p;
  p.transaction = TransactionFromRow(inserted[0], tenant_id, w.currency);
  p.wallet = WalletProto(w);
  return p;
}

// Post in a transaction of its own.
absl::StatusOr<Posted> PostEntry(pg::Pool& pg, const std::string& tenant_id, const Entry& e,
                                 const Clock& clock) {
  return pg.Run([&](pqxx::work& tx) { return Post(tx, tenant_id, e, clock); });
}

absl::Status RequireBilling(const auth::Principal& caller) {
  if (!auth::Authorizer::HoldsTenantWide(caller, auth::perm::kBillingManage)) {
    return absl::PermissionDeniedError("permission billing.manage (tenant) is required");
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status OrgService::GetWallet(grpc::ServerContext* context,
                                   const v1::GetWalletRequest* request, v1::Wallet* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    if (!access.internal()) SB_RETURN_IF_ERROR(RequireBilling(*access.caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      *response = WalletProto(LoadWallet(tx, access.tenant_id));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateWallet(grpc::ServerContext* context,
                                      const v1::UpdateWalletRequest* request,
                                      v1::Wallet* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(std::string tenant_id, TenantFor(caller, request->wallet().tenant_id()));
    SB_RETURN_IF_ERROR(RequireBilling(caller));
    SB_ASSIGN_OR_RETURN(auto paths, app::MaskPaths(request->update_mask(),
                                                   {"credit_limit", "low_balance_threshold"}));
    const bool set_limit = paths.contains("credit_limit");
    const bool set_threshold = paths.contains("low_balance_threshold");
    if (set_limit && !caller.is_platform_admin()) {
      return absl::PermissionDeniedError("only a platform admin can change the credit limit");
    }

    // The currency the request states (the Money values must agree); "" when it states none.
    std::string currency;
    std::string currency_field;
    auto take_currency = [&](const Amount& a, const std::string& field) -> absl::Status {
      if (a.currency.empty()) return absl::OkStatus();
      if (!currency.empty() && a.currency != currency) {
        return app::FieldError(field, "CURRENCY_MISMATCH",
                               absl::StrCat("must be the same currency as ", currency_field));
      }
      currency = a.currency;
      currency_field = field;
      return absl::OkStatus();
    };
    Amount limit, threshold;
    if (set_limit) {
      SB_ASSIGN_OR_RETURN(limit,
                          ParseMoney(request->wallet().credit_limit(), "wallet.credit_limit"));
      if (limit.nanos < 0) {
        return app::FieldError("wallet.credit_limit", "NEGATIVE", "must not be negative");
      }
      SB_RETURN_IF_ERROR(take_currency(limit, "wallet.credit_limit.currency_code"));
    }
    if (set_threshold) {
      SB_ASSIGN_OR_RETURN(threshold, ParseMoney(request->wallet().low_balance_threshold(),
                                                "wallet.low_balance_threshold"));
      SB_RETURN_IF_ERROR(take_currency(threshold, "wallet.low_balance_threshold.currency_code"));
    }

    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      WalletRow w = LockWallet(tx, tenant_id);
      if (!currency.empty() && currency != w.currency) {
        if (w.transaction_count > 0) {
          return app::FieldError(
              currency_field, "CURRENCY_MISMATCH",
              absl::StrCat("must be the wallet's currency ", w.currency, " (it has transactions)"));
        }
        w.currency = currency;
      }
      if (set_limit) w.credit_limit = limit.nanos;
      if (set_threshold) w.low_balance_threshold = threshold.nanos;
      const absl::Time now = deps_.clock.Now();
      tx.exec_params(
          "UPDATE org.wallets SET currency = $2, credit_limit = $3, low_balance_threshold = $4, "
          "updated_at = to_timestamp($5) WHERE tenant_id = $1",
          tenant_id, w.currency, w.credit_limit, w.low_balance_threshold, pg::ToEpoch(now));
      w.updated_at = now;
      *response = WalletProto(w);
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListWalletTransactions(grpc::ServerContext* context,
                                                const v1::ListWalletTransactionsRequest* request,
                                                v1::ListWalletTransactionsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(std::string tenant_id, TenantFor(caller, request->tenant_id()));
    SB_RETURN_IF_ERROR(RequireBilling(caller));
    if (!v1::WalletTransactionType_IsValid(request->type())) {
      return app::FieldError("type", "UNKNOWN_TYPE", "is not a wallet transaction type");
    }
    if (request->call_id().size() > kMaxCallIdLength) {
      return app::FieldError("call_id", "TOO_LONG",
                             absl::StrCat("must be at most ", kMaxCallIdLength, " bytes"));
    }
    std::optional<double> start, end;
    std::string range_text;  // for the page-token fingerprint
    if (request->has_time_range()) {
      const cv1::TimeRange& range = request->time_range();
      if (range.has_start_time()) start = pg::ToEpoch(pg::FromProto(range.start_time()));
      if (range.has_end_time()) end = pg::ToEpoch(pg::FromProto(range.end_time()));
      if (start && end && *end < *start) {
        return app::FieldError("time_range.end_time", "BEFORE_START",
                               "must not be before start_time");
      }
      range_text = absl::StrCat(range.start_time().seconds(), ".", range.start_time().nanos(),
                                range.has_start_time() ? "" : "-", "/", range.end_time().seconds(),
                                ".", range.end_time().nanos(), range.has_end_time() ? "" : "-");
    }
    const std::string fingerprint = absl::StrCat("wallet|", tenant_id, "|", request->type(), "|",
                                                 request->call_id(), "|", range_text);
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));

    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      response->Clear();
      // The count and the page from one snapshot.
      tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
      const WalletRow w = LoadWallet(tx, tenant_id);
      constexpr char kWhere[] =
          " FROM org.wallet_transactions t WHERE t.tenant_id = $1 AND ($2 = 0 OR t.type = $2) "
          "AND ($3 = '' OR t.call_id = $3) "
          "AND ($4::float8 IS NULL OR t.created_at >= to_timestamp($4::float8)) "
          "AND ($5::float8 IS NULL OR t.created_at < to_timestamp($5::float8))";
      const int64_t total =
          tx.exec_params1(absl::StrCat("SELECT count(*)", kWhere), tenant_id,
                          static_cast<int>(request->type()), request->call_id(), start, end)[0]
              .as<int64_t>();
      for (const auto& row :
           tx.exec_params(absl::StrCat("SELECT ", kTransactionColumns, kWhere,
                                       " ORDER BY t.seq DESC LIMIT $6 OFFSET $7"),
                          tenant_id, static_cast<int>(request->type()), request->call_id(), start,
                          end, page.limit, page.offset)) {
        *response->add_transactions() = TransactionFromRow(row, tenant_id, w.currency);
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::TopUpWallet(grpc::ServerContext* context,
                                     const v1::TopUpWalletRequest* request,
                                     v1::WalletTransaction* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(std::string tenant_id, TenantFor(caller, request->tenant_id()));
    SB_RETURN_IF_ERROR(RequireBilling(caller));
    SB_ASSIGN_OR_RETURN(
        Entry e, MakeEntry(v1::WALLET_TRANSACTION_TYPE_TOP_UP, request->amount(), Sign::kPositive,
                           request->idempotency_key(), request->description()));
    SB_RETURN_IF_ERROR(app::ValidateText(request->external_reference(), "external_reference",
                                         kMaxReferenceLength));
    e.external_reference = request->external_reference();
    e.created_by_user_id = caller.user_id;
    e.sets_currency = true;
    e.enforce_credit_limit = false;
    SB_ASSIGN_OR_RETURN(Posted posted, PostEntry(deps_.pg, tenant_id, e, deps_.clock));
    *response = std::move(posted.transaction);
    return absl::OkStatus();
  }());
}

grpc::Status OrgService::DebitWallet(grpc::ServerContext* context,
                                     const v1::DebitWalletRequest* request,
                                     v1::DebitWalletResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    SB_ASSIGN_OR_RETURN(
        Entry e, MakeEntry(v1::WALLET_TRANSACTION_TYPE_CALL_CHARGE, request->amount(),
                           Sign::kPositive, request->idempotency_key(), request->description()));
    e.amount.nanos = -e.amount.nanos;
    SB_RETURN_IF_ERROR(app::ValidateText(request->call_id(), "call_id", kMaxCallIdLength));
    e.call_id = request->call_id();
    SB_ASSIGN_OR_RETURN(Posted posted, PostEntry(deps_.pg, access.tenant_id, e, deps_.clock));
    *response->mutable_transaction() = std::move(posted.transaction);
    *response->mutable_wallet() = std::move(posted.wallet);
    response->set_replayed(posted.replayed);
    return absl::OkStatus();
  }());
}

grpc::Status OrgService::AdjustWallet(grpc::ServerContext* context,
                                      const v1::AdjustWalletRequest* request,
                                      v1::WalletTransaction* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(std::string tenant_id, TenantFor(caller, request->tenant_id()));
    // "Platform admin, or admin with billing permission": an admin is who holds the tenant's
    // settings as well as its billing (roles are sets of permissions; the token carries those).
    if (!caller.is_platform_admin() &&
        !(auth::Authorizer::HoldsTenantWide(caller, auth::perm::kBillingManage) &&
          auth::Authorizer::HoldsTenantWide(caller, auth::perm::kSettingsManage))) {
      return absl::PermissionDeniedError(
          "adjustments need a platform admin or a tenant admin with billing.manage");
    }
    SB_ASSIGN_OR_RETURN(
        Entry e, MakeEntry(v1::WALLET_TRANSACTION_TYPE_ADJUSTMENT, request->amount(),
                           Sign::kNonZero, request->idempotency_key(), request->description()));
    if (absl::StripAsciiWhitespace(e.description).empty()) {
      return app::FieldError("description", "REQUIRED", "say why the wallet is adjusted");
    }
    e.created_by_user_id = caller.user_id;
    SB_ASSIGN_OR_RETURN(Posted posted, PostEntry(deps_.pg, tenant_id, e, deps_.clock));
    *response = std::move(posted.transaction);
    return absl::OkStatus();
  }());
}

}  // namespace sb::org
