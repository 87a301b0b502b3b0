// Agent profiles (extension, phones, incoming-call preference, skills...), the licence that caps
// them, and the tenant's org settings (extension range, contact fields).
//
// Extensions are allocated under a per-tenant advisory lock ("extensions"), which also serialises
// the seat count, so 100 parallel creates get 100 different extensions and never pass the seat
// limit; the unique index (tenant_id, extension) is the last word if anything else writes.

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/time_util.h"
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
using google::protobuf::util::TimeUtil;

constexpr int kMaxPhones = 4;
constexpr absl::Duration kDefaultMobileDelay = absl::Seconds(15);

constexpr char kProfileColumns[] =
    "a.user_id::text, a.extension, a.phones::text, a.skills::text, a.incoming_call_preference, "
    "a.mobile_delay_ms, a.max_concurrent_calls, a.wrap_up_ms, a.agent_alias, "
    "a.hourly_cost_currency, a.hourly_cost_nanos, coalesce(a.schedule_id::text, ''), "
    "a.outbound_caller_id, a.outbound_enabled, extract(epoch FROM a.created_at)::float8, "
    "extract(epoch FROM a.updated_at)::float8";

int64_t MoneyNanos(const ::switchboard::common::v1::Money& m) {
  return m.units() * 1'000'000'000 + m.nanos();
}

v1::AgentProfile ProfileFromRow(const pqxx::row& row, const std::string& tenant_id) {
  v1::AgentProfile p;
  p.set_user_id(row[0].as<std::string>());
  p.set_tenant_id(tenant_id);
  p.set_extension(row[1].as<std::string>());
  v1::AgentProfile lists;
  (void)pg::ParseJsonInto(absl::StrCat("{\"phones\":", row[2].as<std::string>(),
                                       ",\"skills\":", row[3].as<std::string>(), "}"),
                          &lists);
  *p.mutable_phones() = lists.phones();
  *p.mutable_skills() = lists.skills();
  p.set_incoming_call_preference(static_cast<v1::IncomingCallPreference>(row[4].as<int>()));
  *p.mutable_mobile_delay() = TimeUtil::MillisecondsToDuration(row[5].as<int64_t>());
  p.set_max_concurrent_calls(row[6].as<int>());
  *p.mutable_wrap_up_time() = TimeUtil::MillisecondsToDuration(row[7].as<int64_t>());
  p.set_agent_alias(row[8].as<std::string>());
  if (!row[9].as<std::string>().empty()) {
    const int64_t nanos = row[10].as<int64_t>();
    p.mutable_hourly_cost()->set_currency_code(row[9].as<std::string>());
    p.mutable_hourly_cost()->set_units(nanos / 1'000'000'000);
    p.mutable_hourly_cost()->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  }
  p.set_schedule_id(row[11].as<std::string>());
  p.set_outbound_caller_id(row[12].as<std::string>());
  p.set_outbound_enabled(row[13].as<bool>());
  pg::SetTimestamp(p.mutable_created_at(), row[14]);
  pg::SetTimestamp(p.mutable_updated_at(), row[15]);
  return p;
}

absl::StatusOr<v1::AgentProfile> LoadProfile(pqxx::work& tx, const std::string& tenant_id,
                                             const std::string& user_id, bool for_update = false) {
  if (IsUuid(user_id)) {
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kProfileColumns,
                     " FROM org.agent_profiles a WHERE a.tenant_id = $1 AND a.user_id = $2",
                     for_update ? " FOR UPDATE" : ""),
        tenant_id, absl::AsciiStrToLower(user_id));
    if (!r.empty()) return ProfileFromRow(r[0], tenant_id);
  }
  return absl::NotFoundError("this user has no agent profile");
}

// The tenant's extension range (its settings, else the process default).
std::pair<int, int> ExtensionRange(pqxx::work& tx, const std::string& tenant_id,
                                   const OrgOptions& options) {
  pqxx::result r = tx.exec_params(
      "SELECT extension_range_start, extension_range_end FROM org.settings WHERE tenant_id = $1",
      tenant_id);
  if (r.empty())
    return {options.default_extension_range_start, options.default_extension_range_end};
  return {r[0][0].as<int>(), r[0][1].as<int>()};
}

// The lowest free extension of the range: one past each held one, or the start.
std::optional<std::string> FreeExtension(pqxx::work& tx, const std::string& tenant_id, int start,
                                         int end) {
  pqxx::result r = tx.exec_params(
      "SELECT min(c.e) FROM (SELECT $2::bigint AS e UNION ALL SELECT extension::bigint + 1 FROM "
      "org.agent_profiles WHERE tenant_id = $1 AND extension ~ '^[1-9][0-9]{0,7}$' AND "
      "extension::bigint BETWEEN $2 AND $3) c WHERE c.e <= $3 AND NOT EXISTS (SELECT 1 FROM "
      "org.agent_profiles p WHERE p.tenant_id = $1 AND p.extension = c.e::text)",
      tenant_id, start, end);
  if (r.empty() || r[0][0].is_null()) return std::nullopt;
  return std::to_string(r[0][0].as<int64_t>());
}

absl::Status ValidateExtension(const std::string& ext, std::string_view field) {
  if (ext.empty() || ext.size() > 8 ||
      !std::all_of(ext.begin(), ext.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return app::FieldError(field, "BAD_EXTENSION", "must be 1 to 8 digits");
  }
  return absl::OkStatus();
}

bool ExtensionTaken(pqxx::work& tx, const std::string& tenant_id, const std::string& ext,
                    const std::string& except_user) {
  return !tx.exec_params(
                "SELECT 1 FROM org.agent_profiles WHERE tenant_id = $1 AND extension = $2 AND "
                "user_id::text <> $3",
                tenant_id, ext, except_user)
              .empty();
}

absl::Status ValidateDuration(const google::protobuf::Duration& d, std::string_view field,
                              absl::Duration min, absl::Duration max) {
  const absl::Duration v = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  if (d.nanos() < 0 || v < min || v > max) {
    return app::FieldError(field, "OUT_OF_RANGE",
                           absl::StrCat("must be between ", absl::FormatDuration(min), " and ",
                                        absl::FormatDuration(max)));
  }
  return absl::OkStatus();
}

// Normalises and checks the fields a profile holds (all of them: Create checks the whole
// profile, Update the merged one).
absl::Status NormalizeProfile(v1::AgentProfile& p, const std::string& country) {
  if (p.phones_size() > kMaxPhones) {
    return app::FieldError("profile.phones", "TOO_MANY",
                           absl::StrCat("at most ", kMaxPhones, " phone numbers"));
  }
  int mobiles = 0;
  absl::flat_hash_set<std::string> numbers;
  for (int i = 0; i < p.phones_size(); ++i) {
    v1::AgentPhone& ph = *p.mutable_phones(i);
    const std::string field = absl::StrCat("profile.phones[", i, "].number");
    SB_ASSIGN_OR_RETURN(std::string e164, phone::NormalizeE164(ph.number(), country, field));
    if (!numbers.insert(e164).second) {
      return app::FieldError(field, "REPEATED", "is listed twice");
    }
    ph.set_number(e164);
    SB_RETURN_IF_ERROR(
        app::ValidateText(ph.label(), absl::StrCat("profile.phones[", i, "].label"), 40));
    mobiles += ph.mobile() ? 1 : 0;
  }
  if (mobiles > 1) {
    return app::FieldError("profile.phones", "TWO_MOBILES", "at most one phone may be the mobile");
  }
  if (p.incoming_call_preference() == v1::INCOMING_CALL_PREFERENCE_UNSPECIFIED) {
    p.set_incoming_call_preference(v1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  }
  if (!v1::IncomingCallPreference_IsValid(p.incoming_call_preference())) {
    return app::FieldError("profile.incoming_call_preference", "UNKNOWN", "unknown preference");
  }
  if (p.incoming_call_preference() != v1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY && mobiles == 0) {
    return app::FieldError("profile.incoming_call_preference", "NO_MOBILE",
                           "rings the mobile: mark one of the phones as mobile first");
  }
  if (!p.has_mobile_delay() || (p.mobile_delay().seconds() == 0 && p.mobile_delay().nanos() == 0)) {
    *p.mutable_mobile_delay() =
        TimeUtil::SecondsToDuration(absl::ToInt64Seconds(kDefaultMobileDelay));
  }
  SB_RETURN_IF_ERROR(ValidateDuration(p.mobile_delay(), "profile.mobile_delay", absl::Seconds(1),
                                      absl::Minutes(5)));
  if (p.max_concurrent_calls() == 0) p.set_max_concurrent_calls(1);
  if (p.max_concurrent_calls() < 1 || p.max_concurrent_calls() > 10) {
    return app::FieldError("profile.max_concurrent_calls", "OUT_OF_RANGE", "must be 1 to 10");
  }
  SB_RETURN_IF_ERROR(ValidateDuration(p.wrap_up_time(), "profile.wrap_up_time",
                                      absl::ZeroDuration(), absl::Hours(1)));
  if (p.skills_size() > 50)
    return app::FieldError("profile.skills", "TOO_MANY", "at most 50 skills");
  absl::flat_hash_set<std::string> skills;
  for (int i = 0; i < p.skills_size(); ++i) {
    v1::Skill& s = *p.mutable_skills(i);
    const std::string field = absl::StrCat("profile.skills[", i, "]");
    s.set_name(absl::AsciiStrToLower(std::string(absl::StripAsciiWhitespace(s.name()))));
    if (s.name().empty() || s.name().size() > 40 ||
        !std::all_of(s.name().begin(), s.name().end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        })) {
      return app::FieldError(absl::StrCat(field, ".name"), "BAD_SKILL",
                             "1 to 40 characters: a-z, 0-9, '_' and '-'");
    }
    if (!skills.insert(s.name()).second) {
      return app::FieldError(absl::StrCat(field, ".name"), "REPEATED", "is listed twice");
    }
    if (s.level() < 1 || s.level() > 10) {
      return app::FieldError(absl::StrCat(field, ".level"), "OUT_OF_RANGE", "must be 1 to 10");
    }
  }
  SB_RETURN_IF_ERROR(app::ValidateText(p.agent_alias(), "profile.agent_alias", 100));
  if (p.has_hourly_cost()) {
    const auto& m = p.hourly_cost();
    const std::string& c = m.currency_code();
    if (c.size() != 3 ||
        !std::all_of(c.begin(), c.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; })) {
      return app::FieldError("profile.hourly_cost.currency_code", "BAD_CURRENCY",
                             "must be an ISO 4217 code like EUR");
    }
    if (m.units() < 0 || m.nanos() < 0 || m.nanos() > 999'999'999 || m.units() > 1'000'000) {
      return app::FieldError("profile.hourly_cost", "OUT_OF_RANGE",
                             "must be a non-negative amount");
    }
  }
  if (!p.outbound_caller_id().empty() && !phone::IsE164(p.outbound_caller_id())) {
    return app::FieldError("profile.outbound_caller_id", "NOT_E164",
                           "must be one of the tenant's numbers in E.164 form");
  }
  return absl::OkStatus();
}

// The references a profile makes must be the tenant's: its schedule and its caller id.
absl::Status CheckReferences(pqxx::work& tx, const std::string& tenant_id,
                             const v1::AgentProfile& p) {
  SB_RETURN_IF_ERROR(
      OrgService::RequireSchedule(tx, tenant_id, p.schedule_id(), "profile.schedule_id"));
  if (!p.outbound_caller_id().empty() &&
      tx.exec_params("SELECT 1 FROM org.numbers WHERE tenant_id = $1 AND number = $2", tenant_id,
                     p.outbound_caller_id())
          .empty()) {
    return app::FieldError("profile.outbound_caller_id", "NOT_OURS",
                           "is not one of the tenant's numbers");
  }
  return absl::OkStatus();
}

void WriteProfile(pqxx::work& tx, const std::string& tenant_id, const v1::AgentProfile& p,
                  bool insert) {
  std::string phones = "[]", skills = "[]";
  if (p.phones_size() > 0) {
    v1::AgentProfile only;
    *only.mutable_phones() = p.phones();
    const std::string j = pg::ToJson(only);  // {"phones":[...]}
    phones = j.substr(j.find('['), j.rfind(']') - j.find('[') + 1);
  }
  if (p.skills_size() > 0) {
    v1::AgentProfile only;
    *only.mutable_skills() = p.skills();
    const std::string j = pg::ToJson(only);
    skills = j.substr(j.find('['), j.rfind(']') - j.find('[') + 1);
  }
  std::vector<std::string> names;
  for (const auto& s : p.skills()) names.push_back(s.name());
  const auto ms = [](const google::protobuf::Duration& d) {
    return TimeUtil::DurationToMilliseconds(d);
  };
  const std::string currency = p.has_hourly_cost() ? p.hourly_cost().currency_code() : "";
  const int64_t cost = p.has_hourly_cost() ? MoneyNanos(p.hourly_cost()) : 0;
  if (insert) {
    tx.exec_params(
        "INSERT INTO org.agent_profiles (tenant_id, user_id, extension, phones, skills, "
        "skill_names, incoming_call_preference, mobile_delay_ms, max_concurrent_calls, "
        "wrap_up_ms, agent_alias, hourly_cost_currency, hourly_cost_nanos, schedule_id, "
        "outbound_caller_id, outbound_enabled) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, "
        "$6::text[], $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        tenant_id, p.user_id(), p.extension(), phones, skills, pg::PgArray(names),
        static_cast<int>(p.incoming_call_preference()), ms(p.mobile_delay()),
        p.max_concurrent_calls(), ms(p.wrap_up_time()), p.agent_alias(), currency, cost,
        pg::NullIfEmpty(absl::AsciiStrToLower(p.schedule_id())), p.outbound_caller_id(),
        p.outbound_enabled());
  } else {
    tx.exec_params(
        "UPDATE org.agent_profiles SET extension = $3, phones = $4::jsonb, skills = $5::jsonb, "
        "skill_names = $6::text[], incoming_call_preference = $7, mobile_delay_ms = $8, "
        "max_concurrent_calls = $9, wrap_up_ms = $10, agent_alias = $11, hourly_cost_currency = "
        "$12, hourly_cost_nanos = $13, schedule_id = $14, outbound_caller_id = $15, "
        "outbound_enabled = $16, updated_at = now() WHERE tenant_id = $1 AND user_id = $2",
        tenant_id, p.user_id(), p.extension(), phones, skills, pg::PgArray(names),
        static_cast<int>(p.incoming_call_preference()), ms(p.mobile_delay()),
        p.max_concurrent_calls(), ms(p.wrap_up_time()), p.agent_alias(), currency, cost,
        pg::NullIfEmpty(absl::AsciiStrToLower(p.schedule_id())), p.outbound_caller_id(),
        p.outbound_enabled());
  }
}

absl::Status SeatAvailable(pqxx::work& tx, const std::string& tenant_id) {
  pqxx::result r = tx.exec_params(
      "SELECT coalesce((SELECT max_agents FROM org.licences WHERE tenant_id = $1), 0), "
      "(SELECT count(*) FROM org.agent_profiles WHERE tenant_id = $1)",
      tenant_id);
  const int64_t max = r[0][0].as<int64_t>();
  const int64_t used = r[0][1].as<int64_t>();
  if (max > 0 && used >= max) {
    return app::WithReason(absl::FailedPreconditionError(
                               absl::StrCat("the licence allows ", max,
                                            " agent(s) and all are in use: free a seat or ask for "
                                            "more")),
                           "SEAT_LIMIT_REACHED");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AllocateExtension(pqxx::work& tx, const std::string& tenant_id,
                                              const OrgOptions& options) {
  const auto [start, end] = ExtensionRange(tx, tenant_id, options);
  std::optional<std::string> ext = FreeExtension(tx, tenant_id, start, end);
  if (!ext) {
    return app::WithReason(
        absl::ResourceExhaustedError(absl::StrCat("every extension from ", start, " to ", end,
                                                  " is taken: widen the range in org settings")),
        "EXTENSION_RANGE_FULL");
  }
  return *ext;
}

}  // namespace

absl::Status OrgService::CheckProfileManage(pqxx::work& tx, const auth::Principal& caller,
                                            const std::string& tenant_id,
                                            const std::string& user_id) const {
  // One's own working settings (outbound calls, caller id, extension) are one's manager's to set:
  // every scope reaches its holder's own resources, so a scoped grant alone would let anyone
  // with it configure themselves.
  if (user_id == caller.user_id && !auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage) &&
      !auth::Authorizer::HoldsTenantWide(caller, perm::kUsersManage)) {
    return absl::PermissionDeniedError(
        "your own agent profile is set by your manager (you may change your phones and how you "
        "are rung)");
  }
  absl::Status by_org = CheckOnUser(tx, caller, perm::kOrgManage, tenant_id, user_id);
  if (by_org.ok() || absl::IsNotFound(by_org) || absl::IsUnavailable(by_org)) return by_org;
  absl::Status by_users = CheckOnUser(tx, caller, perm::kUsersManage, tenant_id, user_id);
  if (by_users.ok() || absl::IsUnavailable(by_users)) return by_users;
  return by_org;
}

grpc::Status OrgService::CreateAgentProfile(grpc::ServerContext* context,
                                            const v1::CreateAgentProfileRequest* request,
                                            v1::AgentProfile* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    const std::string& tenant = caller.tenant_id;
    v1::AgentProfile p = request->profile();
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(p.user_id(), "profile.user_id"));
    p.set_user_id(user.value());
    if (!p.extension().empty())
      SB_RETURN_IF_ERROR(ValidateExtension(p.extension(), "profile.extension"));
    SB_ASSIGN_OR_RETURN(std::string country, deps_.directory.TenantCountry(tenant));
    SB_RETURN_IF_ERROR(NormalizeProfile(p, country));
    if (p.has_hourly_cost() && !auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage) &&
        !auth::Authorizer::HoldsTenantWide(caller, perm::kBillingManage)) {
      return app::FieldError(absl::StatusCode::kPermissionDenied, "profile.hourly_cost",
                             "OUTSIDE_SCOPE", "only tenant admins set hourly costs");
    }
    SB_RETURN_IF_ERROR(deps_.directory.RequireUsers(tenant, {user.value()}, "profile.user_id"));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_RETURN_IF_ERROR(CheckProfileManage(tx, caller, tenant, user.value()));
      SB_RETURN_IF_ERROR(CheckReferences(tx, tenant, p));
      LockTenant(tx, tenant, "extensions");
      if (LoadProfile(tx, tenant, user.value()).ok()) {
        return absl::AlreadyExistsError("this user has an agent profile already");
      }
      SB_RETURN_IF_ERROR(SeatAvailable(tx, tenant));
      if (p.extension().empty()) {
        SB_ASSIGN_OR_RETURN(std::string ext, AllocateExtension(tx, tenant, options_));
        p.set_extension(ext);
      } else if (ExtensionTaken(tx, tenant, p.extension(), "")) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "profile.extension",
                               "EXTENSION_TAKEN", "is held by another agent");
      }
      WriteProfile(tx, tenant, p, /*insert=*/true);
      SB_ASSIGN_OR_RETURN(*response, LoadProfile(tx, tenant, user.value()));
      return absl::OkStatus();
    });
  }());
}

absl::Status OrgService::CloneAgentProfile(pqxx::work& tx, const std::string& tenant_id,
                                           const std::string& source_user_id,
                                           const std::string& target_user_id) const {
  absl::StatusOr<v1::AgentProfile> source = LoadProfile(tx, tenant_id, source_user_id);
  if (!source.ok()) return absl::OkStatus();  // nothing to copy
  LockTenant(tx, tenant_id, "extensions");
  if (LoadProfile(tx, tenant_id, target_user_id).ok()) return absl::OkStatus();  // retried call
  SB_RETURN_IF_ERROR(SeatAvailable(tx, tenant_id));
  v1::AgentProfile p = *std::move(source);
  p.set_user_id(target_user_id);
  // Personal numbers stay with the person; the working settings are what a clone is for.
  p.clear_phones();
  p.clear_agent_alias();
  p.set_incoming_call_preference(v1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
  SB_ASSIGN_OR_RETURN(std::string ext, AllocateExtension(tx, tenant_id, options_));
  p.set_extension(ext);
  WriteProfile(tx, tenant_id, p, /*insert=*/true);
  return absl::OkStatus();
}

grpc::Status OrgService::GetAgentProfile(grpc::ServerContext* context,
                                         const v1::GetAgentProfileRequest* request,
                                         v1::AgentProfile* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    return Run([&](pqxx::work& tx) -> absl::Status {
      if (access.caller) {
        absl::Status s =
            CheckOnUser(tx, *access.caller, perm::kUsersRead, access.tenant_id, user.value());
        if (absl::IsPermissionDenied(s))
          return absl::NotFoundError("this user has no agent profile");
        SB_RETURN_IF_ERROR(s);
      }
      SB_ASSIGN_OR_RETURN(*response, LoadProfile(tx, access.tenant_id, user.value()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListAgentProfiles(grpc::ServerContext* context,
                                           const v1::ListAgentProfilesRequest* request,
                                           v1::ListAgentProfilesResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    for (const auto& [value, field] : {std::pair{&request->team_id(), "team_id"},
                                       std::pair{&request->project_id(), "project_id"}}) {
      if (!value->empty() && !IsUuid(*value))
        return app::FieldError(field, "NOT_UUID", "must be a UUID");
    }
    SB_ASSIGN_OR_RETURN(std::vector<std::string> ids, UuidList(request->user_ids(), "user_ids"));
    SB_RETURN_IF_ERROR(app::ValidateText(request->query(), "query", 100));
    std::optional<auth::Reach> reach;
    if (access.caller) {
      SB_ASSIGN_OR_RETURN(reach, authorizer().ReachFor(*access.caller, perm::kUsersRead));
    }
    std::vector<std::string> reached;
    if (reach && !reach->all) reached.assign(reach->user_ids.begin(), reach->user_ids.end());
    const std::string fingerprint =
        absl::StrCat("profiles|", request->team_id(), "|", request->project_id(), "|",
                     request->skill(), "|", request->query(), "|", ids.size());
    SB_ASSIGN_OR_RETURN(app::Page page, app::ParsePage(request->page_size(), request->page_token(),
                                                       fingerprint, 1000));
    auto answer = [&](const pqxx::result& rows) {
      int64_t total = rows.empty() ? 0 : rows[0][16].as<int64_t>();
      for (const auto& row : rows)
        *response->add_profiles() = ProfileFromRow(row, access.tenant_id);
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    };
    if (!ids.empty() && request->team_id().empty() && request->project_id().empty() &&
        request->skill().empty() && request->query().empty()) {
      // Routing asks for the profiles of the agents it may ring on every inbound call: by user id
      // alone, a prepared statement on the primary key, no BEGIN/COMMIT round trips.
      static const auto* kSql = new std::string(absl::StrCat(
          "SELECT ", kProfileColumns,
          ", count(*) OVER () FROM org.agent_profiles a WHERE a.user_id = ANY($2::uuid[]) "
          "AND a.tenant_id = $1 AND ($3 OR a.user_id::text = ANY($4::text[])) "
          "ORDER BY length(a.extension), a.extension LIMIT $5 OFFSET $6"));
      return deps_.pg.Read([&](pqxx::nontransaction& tx) -> absl::Status {
        return answer(pg::ExecPrepared(tx, "org_agent_profiles_by_user", *kSql, access.tenant_id,
                                       pg::PgArray(ids), !reach || reach->all, pg::PgArray(reached),
                                       page.limit, page.offset));
      });
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result rows = tx.exec_params(
          absl::StrCat(
              "SELECT ", kProfileColumns,
              ", count(*) OVER () FROM org.agent_profiles a WHERE a.tenant_id = $1 "
              "AND ($2 = '' OR EXISTS (SELECT 1 FROM org.team_members m WHERE m.user_id = "
              "a.user_id AND m.team_id::text = lower($2))) "
              "AND ($3 = '' OR EXISTS (SELECT 1 FROM org.project_agents pa WHERE pa.user_id = "
              "a.user_id AND pa.project_id::text = lower($3)) OR EXISTS (SELECT 1 FROM "
              "org.project_teams pt JOIN org.team_members m ON m.team_id = pt.team_id WHERE "
              "pt.project_id::text = lower($3) AND m.user_id = a.user_id)) "
              "AND ($4 = '' OR lower($4) = ANY(a.skill_names)) "
              "AND ($5 = '' OR a.extension = $5 OR strpos(lower(a.agent_alias), lower($5)) > 0 OR "
              "strpos(a.phones::text, $5) > 0) "
              "AND (cardinality($6::uuid[]) = 0 OR a.user_id = ANY($6::uuid[])) "
              "AND ($7 OR a.user_id::text = ANY($8::text[])) "
              "ORDER BY length(a.extension), a.extension LIMIT $9 OFFSET $10"),
          access.tenant_id, request->team_id(), request->project_id(), request->skill(),
          request->query(), pg::PgArray(ids), !reach || reach->all, pg::PgArray(reached),
          page.limit, page.offset);
      return answer(rows);
    });
  }());
}

grpc::Status OrgService::UpdateAgentProfile(grpc::ServerContext* context,
                                            const v1::UpdateAgentProfileRequest* request,
                                            v1::AgentProfile* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    const std::string& tenant = caller.tenant_id;
    SB_ASSIGN_OR_RETURN(
        auto paths,
        app::MaskPaths(request->update_mask(),
                       {"extension", "phones", "incoming_call_preference", "mobile_delay",
                        "max_concurrent_calls", "wrap_up_time", "skills", "agent_alias",
                        "hourly_cost", "schedule_id", "outbound_caller_id", "outbound_enabled"}));
    const v1::AgentProfile& in = request->profile();
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(in.user_id(), "profile.user_id"));
    // Agents keep their own phones and how they are rung; the rest is their manager's.
    const bool self_service =
        user.value() == caller.user_id &&
        std::all_of(paths.begin(), paths.end(), [](const std::string& p) {
          return p == "phones" || p == "incoming_call_preference" || p == "mobile_delay";
        });
    if (paths.contains("hourly_cost") &&
        !auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage) &&
        !auth::Authorizer::HoldsTenantWide(caller, perm::kBillingManage)) {
      return app::FieldError(absl::StatusCode::kPermissionDenied, "profile.hourly_cost",
                             "OUTSIDE_SCOPE", "only tenant admins set hourly costs");
    }
    SB_ASSIGN_OR_RETURN(std::string country, deps_.directory.TenantCountry(tenant));
    return Run([&](pqxx::work& tx) -> absl::Status {
      if (!self_service) SB_RETURN_IF_ERROR(CheckProfileManage(tx, caller, tenant, user.value()));
      if (paths.contains("extension")) LockTenant(tx, tenant, "extensions");
      SB_ASSIGN_OR_RETURN(v1::AgentProfile p, LoadProfile(tx, tenant, user.value(), true));
      if (paths.contains("extension")) {
        SB_RETURN_IF_ERROR(ValidateExtension(in.extension(), "profile.extension"));
        if (ExtensionTaken(tx, tenant, in.extension(), user.value())) {
          return app::FieldError(absl::StatusCode::kAlreadyExists, "profile.extension",
                                 "EXTENSION_TAKEN", "is held by another agent");
        }
        p.set_extension(in.extension());
      }
      // Every other named field as sent (an unset hourly_cost clears it).
      google::protobuf::util::FieldMaskUtil::MergeOptions merge;
      merge.set_replace_repeated_fields(true);
      merge.set_replace_message_fields(true);
      google::protobuf::util::FieldMaskUtil::MergeMessageTo(in, request->update_mask(), merge, &p);
      SB_RETURN_IF_ERROR(NormalizeProfile(p, country));
      SB_RETURN_IF_ERROR(CheckReferences(tx, tenant, p));
      WriteProfile(tx, tenant, p, /*insert=*/false);
      SB_ASSIGN_OR_RETURN(*response, LoadProfile(tx, tenant, user.value()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteAgentProfile(grpc::ServerContext* context,
                                            const v1::DeleteAgentProfileRequest* request,
                                            google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    SB_RETURN_IF_ERROR(Run([&](pqxx::work& tx) -> absl::Status {
      SB_RETURN_IF_ERROR(CheckProfileManage(tx, caller, caller.tenant_id, user.value()));
      pqxx::result r = tx.exec_params(
          "DELETE FROM org.agent_profiles WHERE tenant_id = $1 AND user_id = $2 RETURNING 1",
          caller.tenant_id, user.value());
      if (r.empty()) return absl::NotFoundError("this user has no agent profile");
      return absl::OkStatus();
    }));
    // No longer an agent: no calls from projects either.
    DeleteSelection(caller.tenant_id, user.value());
    return absl::OkStatus();
  }());
}

grpc::Status OrgService::LookupExtension(grpc::ServerContext* context,
                                         const v1::LookupExtensionRequest* request,
                                         v1::AgentProfile* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(TenantId tenant, TenantId::Parse(request->tenant_id(), "tenant_id"));
    SB_RETURN_IF_ERROR(ValidateExtension(request->extension(), "extension"));
    return Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result r = tx.exec_params(
          absl::StrCat("SELECT ", kProfileColumns,
                       " FROM org.agent_profiles a WHERE a.tenant_id = $1 AND a.extension = $2"),
          tenant.value(), request->extension());
      if (r.empty()) return absl::NotFoundError("no agent holds this extension");
      *response = ProfileFromRow(r[0], tenant.value());
      return absl::OkStatus();
    });
  }());
}

// ---------------------------------------------------------------------------------------------
// Licence and settings

namespace {

v1::Licence LoadLicence(pqxx::work& tx, const std::string& tenant_id) {
  pqxx::result r = tx.exec_params(
      "SELECT coalesce((SELECT max_agents FROM org.licences WHERE tenant_id = $1), 0), "
      "(SELECT count(*) FROM org.agent_profiles WHERE tenant_id = $1), "
      "(SELECT extract(epoch FROM updated_at)::float8 FROM org.licences WHERE tenant_id = $1)",
      tenant_id);
  v1::Licence l;
  l.set_tenant_id(tenant_id);
  l.set_max_agents(r[0][0].as<int>());
  l.set_agents_in_use(r[0][1].as<int>());
  pg::SetTimestamp(l.mutable_updated_at(), r[0][2]);
  return l;
}

v1::OrgSettings LoadSettings(pqxx::work& tx, const std::string& tenant_id,
                             const OrgOptions& options) {
  v1::OrgSettings s;
  s.set_tenant_id(tenant_id);
  pqxx::result r = tx.exec_params(
      "SELECT extension_range_start, extension_range_end, contact_custom_fields, "
      "extract(epoch FROM updated_at)::float8 FROM org.settings WHERE tenant_id = $1",
      tenant_id);
  if (r.empty()) {
    s.set_extension_range_start(options.default_extension_range_start);
    s.set_extension_range_end(options.default_extension_range_end);
    return s;
  }
  s.set_extension_range_start(r[0][0].as<int>());
  s.set_extension_range_end(r[0][1].as<int>());
  for (std::string& f : pg::TextArray(r[0][2])) s.add_contact_custom_fields(std::move(f));
  pg::SetTimestamp(s.mutable_updated_at(), r[0][3]);
  return s;
}

}  // namespace

grpc::Status OrgService::GetLicence(grpc::ServerContext* context,
                                    const v1::GetLicenceRequest* request, v1::Licence* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(std::string tenant, TenantFor(caller, request->tenant_id()));
    if (!auth::Authorizer::HoldsTenantWide(caller, perm::kBillingManage) &&
        !auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage) &&
        !auth::Authorizer::HoldsTenantWide(caller, perm::kUsersManage)) {
      return absl::PermissionDeniedError(
          "the licence is for admins (billing.manage or org.manage)");
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      *response = LoadLicence(tx, tenant);
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateLicence(grpc::ServerContext* context,
                                       const v1::UpdateLicenceRequest* request,
                                       v1::Licence* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    if (!caller.is_platform_admin()) {
      return absl::PermissionDeniedError("licences are set by the platform admin");
    }
    SB_ASSIGN_OR_RETURN(auto paths, app::MaskPaths(request->update_mask(), {"max_agents"}));
    SB_ASSIGN_OR_RETURN(TenantId tenant,
                        TenantId::Parse(request->licence().tenant_id(), "licence.tenant_id"));
    const int max = request->licence().max_agents();
    if (max < 0)
      return app::FieldError("licence.max_agents", "NEGATIVE", "must be 0 (unlimited) or more");
    return Run([&](pqxx::work& tx) -> absl::Status {
      LockTenant(tx, tenant.value(), "extensions");
      v1::Licence now = LoadLicence(tx, tenant.value());
      if (max > 0 && max < now.agents_in_use()) {
        return app::FieldError("licence.max_agents", "BELOW_IN_USE",
                               absl::StrCat(now.agents_in_use(),
                                            " agent profiles exist: delete some before lowering "
                                            "the licence below that"));
      }
      tx.exec_params(
          "INSERT INTO org.licences (tenant_id, max_agents) VALUES ($1, $2) ON CONFLICT "
          "(tenant_id) DO UPDATE SET max_agents = EXCLUDED.max_agents, updated_at = now()",
          tenant.value(), max);
      *response = LoadLicence(tx, tenant.value());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetOrgSettings(grpc::ServerContext* context,
                                        const v1::GetOrgSettingsRequest*,
                                        v1::OrgSettings* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // Every console shows the contact fields.
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    return Run([&](pqxx::work& tx) -> absl::Status {
      *response = LoadSettings(tx, caller.tenant_id, options_);
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateOrgSettings(grpc::ServerContext* context,
                                           const v1::UpdateOrgSettingsRequest* request,
                                           v1::OrgSettings* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    if (!auth::Authorizer::HoldsTenantWide(caller, perm::kSettingsManage)) {
      return absl::PermissionDeniedError("permission settings.manage is required");
    }
    SB_ASSIGN_OR_RETURN(auto paths, app::MaskPaths(request->update_mask(),
                                                   {"extension_range_start", "extension_range_end",
                                                    "contact_custom_fields"}));
    const std::string& tenant = caller.tenant_id;
    return Run([&](pqxx::work& tx) -> absl::Status {
      LockTenant(tx, tenant, "extensions");
      v1::OrgSettings s = LoadSettings(tx, tenant, options_);
      const v1::OrgSettings& in = request->settings();
      if (paths.contains("extension_range_start"))
        s.set_extension_range_start(in.extension_range_start());
      if (paths.contains("extension_range_end"))
        s.set_extension_range_end(in.extension_range_end());
      if (s.extension_range_start() < 1 || s.extension_range_start() > 99999999) {
        return app::FieldError("settings.extension_range_start", "OUT_OF_RANGE",
                               "must be 1 to 99999999");
      }
      if (s.extension_range_end() < s.extension_range_start() ||
          s.extension_range_end() > 99999999) {
        return app::FieldError("settings.extension_range_end", "OUT_OF_RANGE",
                               "must be at least the start and at most 99999999");
      }
      const int64_t size = int64_t{s.extension_range_end()} - s.extension_range_start() + 1;
      const int64_t in_use = LoadLicence(tx, tenant).agents_in_use();
      if (size < in_use) {
        return app::FieldError(
            "settings.extension_range_end", "TOO_SMALL",
            absl::StrCat("the range holds ", size, " extensions but ", in_use, " agents have one"));
      }
      if (paths.contains("contact_custom_fields")) {
        s.clear_contact_custom_fields();
        absl::flat_hash_set<std::string> seen;
        if (in.contact_custom_fields_size() > 50) {
          return app::FieldError("settings.contact_custom_fields", "TOO_MANY", "at most 50 fields");
        }
        for (int i = 0; i < in.contact_custom_fields_size(); ++i) {
          const std::string field = absl::StrCat("settings.contact_custom_fields[", i, "]");
          SB_ASSIGN_OR_RETURN(std::string name,
                              app::NormalizeName(in.contact_custom_fields(i), field, true));
          if (!seen.insert(absl::AsciiStrToLower(name)).second) {
            return app::FieldError(field, "REPEATED", "is listed twice");
          }
          s.add_contact_custom_fields(name);
        }
      }
      std::vector<std::string> fields(s.contact_custom_fields().begin(),
                                      s.contact_custom_fields().end());
      tx.exec_params(
          "INSERT INTO org.settings (tenant_id, extension_range_start, extension_range_end, "
          "contact_custom_fields) VALUES ($1, $2, $3, $4::text[]) ON CONFLICT (tenant_id) DO "
          "UPDATE SET extension_range_start = EXCLUDED.extension_range_start, "
          "extension_range_end = EXCLUDED.extension_range_end, contact_custom_fields = "
          "EXCLUDED.contact_custom_fields, updated_at = now()",
          tenant, s.extension_range_start(), s.extension_range_end(), pg::PgArray(fields));
      *response = LoadSettings(tx, tenant, options_);
      return absl::OkStatus();
    });
  }());
}

}  // namespace sb::org
