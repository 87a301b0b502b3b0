// Numbers (DIDs) and SIP trunks.
//
// A number belongs to one tenant on the whole platform (the unique index decides), so an inbound
// INVITE's Request-URI names its tenant; trunks say which source addresses may send calls in and
// how calls go out. The internal RPCs are what sip asks per call (MatchInboundTrunk) and what it
// caches (ListTrunks for all tenants, with the outbound credentials only it may see).

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/field_mask_util.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "libs/pg/prepared.h"
#include "libs/phone/e164.h"
#include "services/org/org_service.h"

namespace sb::org {
namespace {

namespace perm = auth::perm;

// ---------------------------------------------------------------------------------------------
// Numbers

constexpr char kNumberColumns[] =
    "n.id::text, n.tenant_id::text, n.number, n.description, coalesce(n.project_id::text, ''), "
    "coalesce(n.call_flow_id::text, ''), coalesce(n.trunk_id::text, ''), "
    "coalesce(n.schedule_id::text, ''), n.enabled, extract(epoch FROM n.created_at)::float8, "
    "extract(epoch FROM n.updated_at)::float8";

// How many columns kNumberColumns selects.
constexpr pqxx::row::size_type kNumberColumnCount = 11;

v1::Number NumberFromRow(const pqxx::row& row) {
  v1::Number n;
  n.set_id(row[0].as<std::string>());
  n.set_tenant_id(row[1].as<std::string>());
  n.set_number(row[2].as<std::string>());
  n.set_description(row[3].as<std::string>());
  n.set_project_id(row[4].as<std::string>());
  n.set_call_flow_id(row[5].as<std::string>());
  n.set_trunk_id(row[6].as<std::string>());
  n.set_schedule_id(row[7].as<std::string>());
  n.set_enabled(row[8].as<bool>());
  pg::SetTimestamp(n.mutable_created_at(), row[9]);
  pg::SetTimestamp(n.mutable_updated_at(), row[10]);
  return n;
}

absl::StatusOr<v1::Number> LoadNumber(pqxx::work& tx, const std::string& tenant_id,
                                      const std::string& id, std::string_view field) {
  if (id.empty()) return app::FieldError(field, "REQUIRED", "is required");
  if (IsUuid(id)) {
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kNumberColumns,
                                    " FROM org.numbers n WHERE n.tenant_id = $1 AND n.id = $2"),
                       tenant_id, absl::AsciiStrToLower(id));
    if (!r.empty()) return NumberFromRow(r[0]);
  }
  return absl::NotFoundError(
      absl::StrCat(std::string(field), ": number '", id.substr(0, 64), "' not found"));
}

absl::Status RequireRow(pqxx::work& tx, std::string_view table, std::string_view what,
                        const std::string& tenant_id, const std::string& id,
                        std::string_view field) {
  if (id.empty()) return absl::OkStatus();
  if (IsUuid(id) && !tx.exec_params(absl::StrCat("SELECT 1 FROM ", std::string(table),
                                                 " WHERE tenant_id = $1 AND id = $2"),
                                    tenant_id, absl::AsciiStrToLower(id))
                         .empty()) {
    return absl::OkStatus();
  }
  return app::FieldError(
      field, "NOT_FOUND",
      absl::StrCat(std::string(what), " '", id.substr(0, 64), "' does not exist"));
}

absl::Status CheckNumberRefs(pqxx::work& tx, const std::string& tenant_id, const v1::Number& n,
                             std::string_view prefix) {
  const std::string p(prefix);
  SB_RETURN_IF_ERROR(
      RequireRow(tx, "org.projects", "project", tenant_id, n.project_id(), p + "project_id"));
  SB_RETURN_IF_ERROR(
      RequireRow(tx, "org.trunks", "trunk", tenant_id, n.trunk_id(), p + "trunk_id"));
  SB_RETURN_IF_ERROR(
      OrgService::RequireSchedule(tx, tenant_id, n.schedule_id(), p + "schedule_id"));
  if (!n.call_flow_id().empty() && !IsUuid(n.call_flow_id())) {
    return app::FieldError(p + "call_flow_id", "NOT_UUID", "must be a UUID");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Trunks

// One CIDR (a bare address is a /32 or /128), in canonical text. InvalidArgument naming field.
absl::StatusOr<std::string> NormalizeCidr(const std::string& text, const std::string& field) {
  std::string addr = text;
  int bits = -1;
  if (const size_t slash = text.find('/'); slash != std::string::npos) {
    addr = text.substr(0, slash);
    if (!absl::SimpleAtoi(text.substr(slash + 1), &bits)) bits = -2;
  }
  unsigned char buf[16];
  int family = AF_INET;
  int max = 32;
  if (inet_pton(AF_INET, addr.c_str(), buf) != 1) {
    family = AF_INET6;
    max = 128;
    if (inet_pton(AF_INET6, addr.c_str(), buf) != 1) {
      return app::FieldError(field, "NOT_CIDR",
                             "must be an address or a CIDR like 203.0.113.0/24 or 2001:db8::/32");
    }
  }
  if (bits == -1) bits = max;
  if (bits < 0 || bits > max) {
    return app::FieldError(field, "NOT_CIDR", absl::StrCat("prefix length must be 0 to ", max));
  }
  // Host bits must be zero: "203.0.113.5/24" is a typo for an address or for the network.
  for (int i = bits; i < max; ++i) {
    if (buf[i / 8] & (0x80 >> (i % 8))) {
      return app::FieldError(field, "HOST_BITS_SET",
                             "has bits set past the prefix length: write the network address "
                             "(e.g. 203.0.113.0/24) or a single address without a prefix");
    }
  }
  char out[INET6_ADDRSTRLEN];
  inet_ntop(family, buf, out, sizeof(out));
  return absl::StrCat(out, "/", bits);
}

bool IsHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    return true;
  }
  size_t label = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (label == 0 || label > 63 || host[i - 1] == '-' || host[i - label] == '-') return false;
      label = 0;
      continue;
    }
    const char c = host[i];
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    ++label;
  }
  return true;
}

// Checks and normalises a whole trunk (Create, and Update on the merged trunk). The password is
// checked only when given.
absl::Status NormalizeTrunk(v1::Trunk& t, const std::string& country) {
  SB_ASSIGN_OR_RETURN(std::string name, app::NormalizeName(t.name(), "trunk.name", true));
  t.set_name(name);
  SB_RETURN_IF_ERROR(app::ValidateText(t.description(), "trunk.description", 1000));
  if (t.inbound_cidrs_size() > 100) {
    return app::FieldError("trunk.inbound_cidrs", "TOO_MANY", "at most 100 ranges");
  }
  for (int i = 0; i < t.inbound_cidrs_size(); ++i) {
    SB_ASSIGN_OR_RETURN(
        std::string cidr,
        NormalizeCidr(t.inbound_cidrs(i), absl::StrCat("trunk.inbound_cidrs[", i, "]")));
    t.set_inbound_cidrs(i, cidr);
  }
  if (t.inbound_enabled() && t.inbound_cidrs_size() == 0) {
    return app::FieldError("trunk.inbound_cidrs", "REQUIRED",
                           "name the carrier's source addresses to take calls in");
  }
  t.set_outbound_host(absl::AsciiStrToLower(t.outbound_host()));
  if (!t.outbound_host().empty() && !IsHostName(t.outbound_host())) {
    return app::FieldError("trunk.outbound_host", "NOT_HOST",
                           "must be a host name or an IP address (no port, no scheme)");
  }
  if (t.outbound_enabled() && t.outbound_host().empty()) {
    return app::FieldError("trunk.outbound_host", "REQUIRED", "is required for outbound calls");
  }
  if (t.outbound_port() < 0 || t.outbound_port() > 65535) {
    return app::FieldError("trunk.outbound_port", "OUT_OF_RANGE",
                           "must be 1 to 65535 (0: default)");
  }
  if (t.transport() == v1::TRUNK_TRANSPORT_UNSPECIFIED) t.set_transport(v1::TRUNK_TRANSPORT_UDP);
  if (!v1::TrunkTransport_IsValid(t.transport())) {
    return app::FieldError("trunk.transport", "UNKNOWN", "must be UDP, TCP or TLS");
  }
  SB_RETURN_IF_ERROR(app::ValidateText(t.auth_username(), "trunk.auth_username", 128));
  SB_RETURN_IF_ERROR(app::ValidateText(t.auth_password(), "trunk.auth_password", 128));
  if (t.caller_id_mode() == v1::CALLER_ID_MODE_UNSPECIFIED) {
    t.set_caller_id_mode(v1::CALLER_ID_MODE_TENANT_NUMBER);
  }
  if (!v1::CallerIdMode_IsValid(t.caller_id_mode())) {
    return app::FieldError("trunk.caller_id_mode", "UNKNOWN", "unknown caller id mode");
  }
  if (!t.fixed_caller_id().empty()) {
    SB_ASSIGN_OR_RETURN(std::string e164, phone::NormalizeE164(t.fixed_caller_id(), country,
                                                               "trunk.fixed_caller_id"));
    t.set_fixed_caller_id(e164);
  } else if (t.caller_id_mode() == v1::CALLER_ID_MODE_FIXED) {
    return app::FieldError("trunk.fixed_caller_id", "REQUIRED", "is required for caller id FIXED");
  }
  if (t.dial_prefix().size() > 10 ||
      !std::all_of(t.dial_prefix().begin(), t.dial_prefix().end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '*' || c == '#';
      })) {
    return app::FieldError("trunk.dial_prefix", "BAD_PREFIX", "up to 10 of 0-9, * and #");
  }
  if (t.max_channels() < 0 || t.max_channels() > 100000) {
    return app::FieldError("trunk.max_channels", "OUT_OF_RANGE", "must be 0 (unlimited) to 100000");
  }
  return absl::OkStatus();
}

constexpr char kTrunkColumns[] =
    "t.id::text, t.tenant_id::text, t.name, t.config::text, t.inbound_cidrs::text[], "
    "coalesce(t.auth_password, ''), t.default_outbound, extract(epoch FROM t.created_at)::float8, "
    "extract(epoch FROM t.updated_at)::float8";

v1::Trunk TrunkFromRow(const pqxx::row& row, bool with_password) {
  v1::Trunk t;
  (void)pg::ParseJsonInto(row[3].as<std::string>(), &t);
  t.set_id(row[0].as<std::string>());
  t.set_tenant_id(row[1].as<std::string>());
  t.set_name(row[2].as<std::string>());
  t.clear_inbound_cidrs();
  for (std::string& c : pg::TextArray(row[4])) t.add_inbound_cidrs(std::move(c));
  const std::string password = row[5].as<std::string>();
  t.set_has_auth_password(!password.empty());
  if (with_password) t.set_auth_password(password);
  t.set_default_outbound(row[6].as<bool>());
  pg::SetTimestamp(t.mutable_created_at(), row[7]);
  pg::SetTimestamp(t.mutable_updated_at(), row[8]);
  return t;
}

absl::StatusOr<v1::Trunk> LoadTrunk(pqxx::work& tx, const std::string& tenant_id,
                                    const std::string& id, std::string_view field,
                                    bool with_password = false) {
  if (id.empty()) return app::FieldError(field, "REQUIRED", "is required");
  if (IsUuid(id)) {
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kTrunkColumns,
                                    " FROM org.trunks t WHERE t.tenant_id = $1 AND t.id = $2"),
                       tenant_id, absl::AsciiStrToLower(id));
    if (!r.empty()) return TrunkFromRow(r[0], with_password);
  }
  return absl::NotFoundError(
      absl::StrCat(std::string(field), ": trunk '", id.substr(0, 64), "' not found"));
}

// The trunk's settings as stored in `config` (no id, tenant, name, password or timestamps).
std::string TrunkConfig(const v1::Trunk& t) {
  v1::Trunk c = t;
  c.clear_id();
  c.clear_tenant_id();
  c.clear_name();
  c.clear_auth_password();
  c.clear_has_auth_password();
  c.clear_inbound_cidrs();
  c.clear_default_outbound();
  c.clear_created_at();
  c.clear_updated_at();
  return pg::ToJson(c);
}

absl::Status WriteTrunk(pqxx::work& tx, const std::string& tenant_id, const v1::Trunk& t,
                        bool insert, bool set_password) {
  if (t.default_outbound()) {
    tx.exec_params(
        "UPDATE org.trunks SET default_outbound = false WHERE tenant_id = $1 AND id::text <> $2 "
        "AND default_outbound",
        tenant_id, t.id());
  }
  std::vector<std::string> cidrs(t.inbound_cidrs().begin(), t.inbound_cidrs().end());
  if (insert) {
    pqxx::result r = tx.exec_params(
        "INSERT INTO org.trunks (tenant_id, id, name, config, inbound_cidrs, auth_password, "
        "default_outbound) VALUES ($1, $2, $3, $4::jsonb, $5::cidr[], $6, $7) "
        "ON CONFLICT (tenant_id, lower(name)) DO NOTHING RETURNING id",
        tenant_id, t.id(), t.name(), TrunkConfig(t), pg::PgArray(cidrs),
        pg::NullIfEmpty(t.auth_password()), t.default_outbound());
    if (r.empty()) {
      return app::FieldError(absl::StatusCode::kAlreadyExists, "trunk.name", "NAME_TAKEN",
                             absl::StrCat("a trunk named '", t.name(), "' exists"));
    }
    return absl::OkStatus();
  }
  if (!tx.exec_params("SELECT 1 FROM org.trunks WHERE tenant_id = $1 AND id <> $2 AND "
                      "lower(name) = lower($3)",
                      tenant_id, t.id(), t.name())
           .empty()) {
    return app::FieldError(absl::StatusCode::kAlreadyExists, "trunk.name", "NAME_TAKEN",
                           absl::StrCat("a trunk named '", t.name(), "' exists"));
  }
  tx.exec_params(
      "UPDATE org.trunks SET name = $3, config = $4::jsonb, inbound_cidrs = $5::cidr[], "
      "default_outbound = $6, updated_at = now() WHERE tenant_id = $1 AND id = $2",
      tenant_id, t.id(), t.name(), TrunkConfig(t), pg::PgArray(cidrs), t.default_outbound());
  if (set_password) {
    tx.exec_params("UPDATE org.trunks SET auth_password = $2 WHERE id = $1", t.id(),
                   pg::NullIfEmpty(t.auth_password()));
  }
  return absl::OkStatus();
}

absl::Status RequireNumbersManage(const auth::Principal& caller) {
  if (auth::Authorizer::HoldsTenantWide(caller, perm::kNumbersManage)) return absl::OkStatus();
  return absl::PermissionDeniedError("permission numbers.manage is required");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Numbers

grpc::Status OrgService::CreateNumber(grpc::ServerContext* context,
                                      const v1::CreateNumberRequest* request,
                                      v1::Number* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireNumbersManage(caller));
    const std::string& tenant = caller.tenant_id;
    v1::Number n = request->number();
    SB_ASSIGN_OR_RETURN(std::string country, deps_.directory.TenantCountry(tenant));
    SB_ASSIGN_OR_RETURN(std::string e164,
                        phone::NormalizeE164(n.number(), country, "number.number"));
    SB_RETURN_IF_ERROR(app::ValidateText(n.description(), "number.description", 500));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_RETURN_IF_ERROR(CheckNumberRefs(tx, tenant, n, "number."));
      const std::string id = NewUuid();
      // New numbers take calls at once; UpdateNumber disables them.
      pqxx::result r = tx.exec_params(
          "INSERT INTO org.numbers (tenant_id, id, number, description, project_id, "
          "call_flow_id, trunk_id, schedule_id, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
          "true) ON CONFLICT (number) DO NOTHING RETURNING id",
          tenant, id, e164, n.description(), pg::NullIfEmpty(absl::AsciiStrToLower(n.project_id())),
          pg::NullIfEmpty(absl::AsciiStrToLower(n.call_flow_id())),
          pg::NullIfEmpty(absl::AsciiStrToLower(n.trunk_id())),
          pg::NullIfEmpty(absl::AsciiStrToLower(n.schedule_id())));
      if (r.empty()) {
        // Whose it is stays unsaid: numbers of other tenants are not ours to reveal.
        return app::FieldError(absl::StatusCode::kAlreadyExists, "number.number", "NUMBER_TAKEN",
                               absl::StrCat(e164, " is already in use on this platform"));
      }
      SB_ASSIGN_OR_RETURN(*response, LoadNumber(tx, tenant, id, "number.id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetNumber(grpc::ServerContext* context,
                                   const v1::GetNumberRequest* request, v1::Number* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // Numbers and their adverts show in every call list: readable by the whole tenant.
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(*response,
                          LoadNumber(tx, access.tenant_id, request->number_id(), "number_id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListNumbers(grpc::ServerContext* context,
                                     const v1::ListNumbersRequest* request,
                                     v1::ListNumbersResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    SB_RETURN_IF_ERROR(app::ValidateText(request->query(), "query", 100));
    for (const auto& [value, field] : {std::pair{&request->project_id(), "project_id"},
                                       std::pair{&request->call_flow_id(), "call_flow_id"},
                                       std::pair{&request->trunk_id(), "trunk_id"}}) {
      if (!value->empty() && !IsUuid(*value))
        return app::FieldError(field, "NOT_UUID", "must be a UUID");
    }
    const std::string digits = phone::DigitsOnly(request->query());
    const std::string fingerprint =
        absl::StrCat("numbers|", request->query(), "|", request->project_id(), "|",
                     request->call_flow_id(), "|", request->trunk_id());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    return Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result rows = tx.exec_params(
          absl::StrCat("SELECT ", kNumberColumns,
                       ", count(*) OVER () FROM org.numbers n WHERE n.tenant_id = $1 AND "
                       "($2 = '' OR strpos(lower(n.description), lower($2)) > 0 OR "
                       "($3 <> '' AND strpos(n.number, $3) > 0)) AND "
                       "($4 = '' OR n.project_id::text = lower($4)) AND "
                       "($5 = '' OR n.call_flow_id::text = lower($5)) AND "
                       "($6 = '' OR n.trunk_id::text = lower($6)) "
                       "ORDER BY n.number LIMIT $7 OFFSET $8"),
          access.tenant_id, request->query(), digits, request->project_id(),
          request->call_flow_id(), request->trunk_id(), page.limit, page.offset);
      int64_t total = rows.empty() ? 0 : rows[0][11].as<int64_t>();
      for (const auto& row : rows) *response->add_numbers() = NumberFromRow(row);
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateNumber(grpc::ServerContext* context,
                                      const v1::UpdateNumberRequest* request,
                                      v1::Number* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireNumbersManage(caller));
    SB_ASSIGN_OR_RETURN(auto paths, app::MaskPaths(request->update_mask(),
                                                   {"description", "project_id", "call_flow_id",
                                                    "trunk_id", "schedule_id", "enabled"}));
    const v1::Number& in = request->number();
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "number.description", 500));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      SB_ASSIGN_OR_RETURN(v1::Number n, LoadNumber(tx, tenant, in.id(), "number.id"));
      google::protobuf::util::FieldMaskUtil::MergeOptions merge;
      google::protobuf::util::FieldMaskUtil::MergeMessageTo(in, request->update_mask(), merge, &n);
      for (std::string* id : {n.mutable_project_id(), n.mutable_call_flow_id(),
                              n.mutable_trunk_id(), n.mutable_schedule_id()}) {
        *id = absl::AsciiStrToLower(*id);
      }
      SB_RETURN_IF_ERROR(CheckNumberRefs(tx, tenant, n, "number."));
      tx.exec_params(
          "UPDATE org.numbers SET description = $3, project_id = $4, call_flow_id = $5, "
          "trunk_id = $6, schedule_id = $7, enabled = $8, updated_at = now() WHERE tenant_id = $1 "
          "AND id = $2",
          tenant, n.id(), n.description(), pg::NullIfEmpty(n.project_id()),
          pg::NullIfEmpty(n.call_flow_id()), pg::NullIfEmpty(n.trunk_id()),
          pg::NullIfEmpty(n.schedule_id()), n.enabled());
      SB_ASSIGN_OR_RETURN(*response, LoadNumber(tx, tenant, n.id(), "number.id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteNumber(grpc::ServerContext* context,
                                      const v1::DeleteNumberRequest* request,
                                      google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireNumbersManage(caller));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Number n,
                          LoadNumber(tx, caller.tenant_id, request->number_id(), "number_id"));
      tx.exec_params("DELETE FROM org.numbers WHERE tenant_id = $1 AND id = $2", caller.tenant_id,
                     n.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ResolveNumber(grpc::ServerContext* context,
                                       const v1::ResolveNumberRequest* request,
                                       v1::Number* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    if (!phone::IsE164(request->number())) {
      return app::FieldError("number", "NOT_E164", "must be an E.164 number like +3612345678");
    }
    // Read on every inbound call: one prepared statement, no BEGIN/COMMIT round trips.
    static const auto* kSql = new std::string(absl::StrCat(
        "SELECT ", kNumberColumns, " FROM org.numbers n WHERE n.number = $1 AND n.enabled"));
    return deps_.pg.Read([&](pqxx::nontransaction& tx) -> absl::Status {
      pqxx::result r = pg::ExecPrepared(tx, "org_resolve_number", *kSql, request->number());
      if (r.empty()) return absl::NotFoundError("no tenant takes calls on this number");
      *response = NumberFromRow(r[0]);
      return absl::OkStatus();
    });
  }());
}

// ---------------------------------------------------------------------------------------------
// Trunks

grpc::Status OrgService::CreateTrunk(grpc::ServerContext* context,
                                     const v1::CreateTrunkRequest* request, v1::Trunk* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireNumbersManage(caller));
    const std::string& tenant = caller.tenant_id;
    v1::Trunk t = request->trunk();
    SB_ASSIGN_OR_RETURN(std::string country, deps_.directory.TenantCountry(tenant));
    SB_RETURN_IF_ERROR(NormalizeTrunk(t, country));
    t.set_id(NewUuid());
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_RETURN_IF_ERROR(WriteTrunk(tx, tenant, t, /*insert=*/true, /*set_password=*/true));
      SB_ASSIGN_OR_RETURN(*response, LoadTrunk(tx, tenant, t.id(), "trunk.id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetTrunk(grpc::ServerContext* context, const v1::GetTrunkRequest* request,
                                  v1::Trunk* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    if (access.caller) SB_RETURN_IF_ERROR(RequireNumbersManage(*access.caller));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(*response, LoadTrunk(tx, access.tenant_id, request->trunk_id(),
                                               "trunk_id", access.internal()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListTrunks(grpc::ServerContext* context,
                                    const v1::ListTrunksRequest* request,
                                    v1::ListTrunksResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    const bool internal = RequireInternal(*context).ok();
    std::string tenant;
    if (!internal || !request->all_tenants()) {
      SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
      if (access.caller) SB_RETURN_IF_ERROR(RequireNumbersManage(*access.caller));
      tenant = access.tenant_id;
    }
    if (!internal && request->all_tenants()) {
      return app::FieldError(absl::StatusCode::kPermissionDenied, "all_tenants", "INTERNAL_ONLY",
                             "is for the platform's own services");
    }
    const std::string fingerprint = absl::StrCat("trunks|", tenant);
    SB_ASSIGN_OR_RETURN(app::Page page, app::ParsePage(request->page_size(), request->page_token(),
                                                       fingerprint, 1000));
    return Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result rows = tx.exec_params(
          absl::StrCat(
              "SELECT ", kTrunkColumns,
              ", count(*) OVER () FROM org.trunks t WHERE ($1 = '' OR t.tenant_id::text = $1) "
              "ORDER BY t.tenant_id, lower(t.name), t.id LIMIT $2 OFFSET $3"),
          tenant, page.limit, page.offset);
      int64_t total = rows.empty() ? 0 : rows[0][9].as<int64_t>();
      for (const auto& row : rows) *response->add_trunks() = TrunkFromRow(row, internal);
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateTrunk(grpc::ServerContext* context,
                                     const v1::UpdateTrunkRequest* request, v1::Trunk* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireNumbersManage(caller));
    const std::string& tenant = caller.tenant_id;
    SB_ASSIGN_OR_RETURN(
        auto paths, app::MaskPaths(request->update_mask(),
                                   {"name", "description", "inbound_cidrs", "inbound_enabled",
                                    "outbound_enabled", "outbound_host", "outbound_port",
                                    "transport", "auth_username", "auth_password", "caller_id_mode",
                                    "fixed_caller_id", "dial_prefix", "send_national_format",
                                    "max_channels", "default_outbound"}));
    SB_ASSIGN_OR_RETURN(std::string country, deps_.directory.TenantCountry(tenant));
    const v1::Trunk& in = request->trunk();
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Trunk t, LoadTrunk(tx, tenant, in.id(), "trunk.id", true));
      google::protobuf::util::FieldMaskUtil::MergeOptions merge;
      merge.set_replace_repeated_fields(true);
      google::protobuf::util::FieldMaskUtil::MergeMessageTo(in, request->update_mask(), merge, &t);
      SB_RETURN_IF_ERROR(NormalizeTrunk(t, country));
      SB_RETURN_IF_ERROR(
          WriteTrunk(tx, tenant, t, /*insert=*/false, paths.contains("auth_password")));
      SB_ASSIGN_OR_RETURN(*response, LoadTrunk(tx, tenant, t.id(), "trunk.id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteTrunk(grpc::ServerContext* context,
                                     const v1::DeleteTrunkRequest* request,
                                     google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireNumbersManage(caller));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Trunk t,
                          LoadTrunk(tx, caller.tenant_id, request->trunk_id(), "trunk_id"));
      pqxx::result used =
          tx.exec_params("SELECT count(*) FROM org.numbers WHERE tenant_id = $1 AND trunk_id = $2",
                         caller.tenant_id, t.id());
      if (const int64_t n = used[0][0].as<int64_t>(); n > 0) {
        return app::WithReason(absl::FailedPreconditionError(
                                   absl::StrCat("trunk '", t.name(), "' still delivers ", n,
                                                " number(s): move them to another trunk first")),
                               "TRUNK_IN_USE");
      }
      tx.exec_params("DELETE FROM org.trunks WHERE tenant_id = $1 AND id = $2", caller.tenant_id,
                     t.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::MatchInboundTrunk(grpc::ServerContext* context,
                                           const v1::MatchInboundTrunkRequest* request,
                                           v1::MatchInboundTrunkResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    if (!phone::IsE164(request->number())) {
      return app::FieldError("number", "NOT_E164", "must be an E.164 number like +3612345678");
    }
    unsigned char buf[16];
    const std::string& source = request->source_address();
    if (inet_pton(AF_INET, source.c_str(), buf) != 1 &&
        inet_pton(AF_INET6, source.c_str(), buf) != 1) {
      return app::FieldError("source_address", "NOT_IP", "must be an IPv4 or IPv6 address");
    }
    // Asked on every inbound call: one prepared statement, no BEGIN/COMMIT round trips. The
    // number (numbers_number_key), then its own trunk first and else any inbound trunk of the
    // tenant that allows the source (trunks_name_key); no trunk columns when none does.
    static const auto* kSql = new std::string(absl::StrCat(
        "SELECT ", kNumberColumns, ", ", kTrunkColumns,
        " FROM org.numbers n LEFT JOIN LATERAL (SELECT * FROM org.trunks t "
        "WHERE t.tenant_id = n.tenant_id AND (t.config->>'inboundEnabled')::boolean "
        "AND $2::inet <<= ANY(t.inbound_cidrs) "
        "ORDER BY (t.id IS NOT DISTINCT FROM n.trunk_id) DESC, t.name LIMIT 1) t ON true "
        "WHERE n.number = $1 AND n.enabled"));
    return deps_.pg.Read([&](pqxx::nontransaction& tx) -> absl::Status {
      pqxx::result r =
          pg::ExecPrepared(tx, "org_match_inbound_trunk", *kSql, request->number(), source);
      if (r.empty()) return absl::NotFoundError("no tenant takes calls on this number");
      const pqxx::row number = r[0].slice(0, kNumberColumnCount);
      const pqxx::row trunk = r[0].slice(kNumberColumnCount, r[0].size());
      if (trunk[0].is_null()) {
        return absl::PermissionDeniedError(
            "the source address is not allowed to send calls for this number");
      }
      *response->mutable_number() = NumberFromRow(number);
      *response->mutable_trunk() = TrunkFromRow(trunk, /*with_password=*/true);
      return absl::OkStatus();
    });
  }());
}

}  // namespace sb::org
