// Working-hour schedules: named weekly ranges in an IANA time zone with holidays and exception
// dates (libs/schedule validates and evaluates them). Everyone of the tenant reads them (consoles
// of every role show them); changing them needs routing.manage for the whole tenant. Weekly
// ranges and exceptions are stored as proto3 JSON arrays.

#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "libs/pg/prepared.h"
#include "libs/schedule/compiled_schedule.h"
#include "services/org/org_service.h"

namespace sb::org {

// Compiled schedules by tenant and id, each valid for one updated_at (microseconds); a schedule
// that changed is compiled again on its next evaluation. Bounded: when full it starts afresh.
class OrgService::ScheduleCache {
 public:
  static constexpr size_t kCapacity = 1024;

  std::shared_ptr<const schedule::CompiledSchedule> Find(const std::string& key, int64_t version) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.version != version) return nullptr;
    return it->second.compiled;
  }

  void Put(const std::string& key, int64_t version,
           std::shared_ptr<const schedule::CompiledSchedule> compiled) {
    absl::MutexLock lock(&mu_);
    if (entries_.size() >= kCapacity && !entries_.contains(key)) entries_.clear();
    entries_[key] = Entry{version, std::move(compiled)};
  }

 private:
  struct Entry {
    int64_t version = 0;
    std::shared_ptr<const schedule::CompiledSchedule> compiled;
  };
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

std::shared_ptr<OrgService::ScheduleCache> OrgService::MakeScheduleCache() {
  return std::make_shared<ScheduleCache>();
}

namespace {

namespace perm = auth::perm;

constexpr size_t kMaxDescription = 1000;

constexpr char kScheduleColumns[] =
    "s.id::text, s.name, s.description, s.time_zone, "
    "jsonb_build_object('weeklyRanges', s.weekly_ranges, 'exceptions', s.exceptions)::text, "
    "extract(epoch FROM s.created_at)::float8, extract(epoch FROM s.updated_at)::float8";

absl::StatusOr<v1::Schedule> ScheduleFromRow(const pqxx::row& row, const std::string& tenant_id) {
  v1::Schedule s;
  if (!pg::ParseJsonInto(row[4].as<std::string>(), &s)) {
    return absl::InternalError("stored schedule ranges do not parse");
  }
  s.set_id(row[0].as<std::string>());
  s.set_tenant_id(tenant_id);
  s.set_name(row[1].as<std::string>());
  s.set_description(row[2].as<std::string>());
  s.set_time_zone(row[3].as<std::string>());
  pg::SetTimestamp(s.mutable_created_at(), row[5]);
  pg::SetTimestamp(s.mutable_updated_at(), row[6]);
  return s;
}

absl::Status NotFound(std::string_view field, const std::string& id) {
  return absl::NotFoundError(
      absl::StrCat(std::string(field), ": schedule '", id.substr(0, 64), "' not found"));
}

absl::StatusOr<v1::Schedule> LoadSchedule(pqxx::transaction_base& tx, const std::string& tenant_id,
                                          const std::string& id, std::string_view field,
                                          bool for_update = false) {
  if (id.empty()) return app::FieldError(field, "REQUIRED", "is required");
  if (!IsUuid(id)) return NotFound(field, id);
  pqxx::result r =
      tx.exec_params(absl::StrCat("SELECT ", kScheduleColumns,
                                  " FROM org.schedules s WHERE s.tenant_id = $1 AND s.id = $2",
                                  for_update ? " FOR UPDATE" : ""),
                     tenant_id, absl::AsciiStrToLower(id));
  if (r.empty()) return NotFound(field, id);
  return ScheduleFromRow(r[0], tenant_id);
}

// The weekly ranges and the exceptions as proto3 JSON arrays (the columns' form): the JSON of a
// Schedule holding only them, taken apart by PostgreSQL with ->.
std::string RangesJson(const v1::Schedule& s) {
  v1::Schedule only;
  *only.mutable_weekly_ranges() = s.weekly_ranges();
  *only.mutable_exceptions() = s.exceptions();
  return pg::ToJson(only);
}

absl::Status RequireManage(const auth::Principal& caller) {
  if (auth::Authorizer::HoldsTenantWide(caller, perm::kRoutingManage)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("changing schedules needs ", perm::kRoutingManage, " for the whole tenant"));
}

// Name (required when `name_required`), description and the rules of the schedule itself.
absl::StatusOr<std::string> CheckSchedule(const v1::Schedule& s, bool name_required) {
  SB_ASSIGN_OR_RETURN(std::string name,
                      app::NormalizeName(s.name(), "schedule.name", name_required));
  SB_RETURN_IF_ERROR(app::ValidateText(s.description(), "schedule.description", kMaxDescription));
  SB_RETURN_IF_ERROR(schedule::ValidateSchedule(s, "schedule"));
  return name;
}

absl::Status NameTaken(const std::string& name) {
  return app::FieldError(absl::StatusCode::kAlreadyExists, "schedule.name", "NAME_TAKEN",
                         absl::StrCat("a schedule named '", name, "' exists"));
}

// What still uses a schedule, e.g. "2 teams, 1 number"; "" when nothing does.
std::string Attachments(pqxx::work& tx, const std::string& tenant_id, const std::string& id) {
  pqxx::row r = tx.exec_params1(
      "SELECT (SELECT count(*) FROM org.teams WHERE tenant_id = $1 AND schedule_id = $2), "
      "(SELECT count(*) FROM org.projects WHERE tenant_id = $1 AND schedule_id = $2), "
      "(SELECT count(*) FROM org.agent_profiles WHERE tenant_id = $1 AND schedule_id = $2), "
      "(SELECT count(*) FROM org.numbers WHERE tenant_id = $1 AND schedule_id = $2)",
      tenant_id, id);
  constexpr const char* kWhat[][2] = {{"team", "teams"},
                                      {"project", "projects"},
                                      {"agent profile", "agent profiles"},
                                      {"number", "numbers"}};
  std::vector<std::string> parts;
  for (int i = 0; i < 4; ++i) {
    const int64_t n = r[i].as<int64_t>();
    if (n > 0) parts.push_back(absl::StrCat(n, " ", kWhat[i][n == 1 ? 0 : 1]));
  }
  return absl::StrJoin(parts, ", ");
}

void FillEvaluation(const schedule::CompiledSchedule& compiled, absl::Time at,
                    v1::EvaluateScheduleResponse* out) {
  const schedule::CompiledSchedule::State now = compiled.IsOpen(at);
  out->set_status(now.status);
  out->set_exception_name(std::string(now.exception_name));
  out->set_local_time(schedule::FormatLocalTime(at, compiled.time_zone()));
  if (const auto next = compiled.NextChange(at)) {
    pg::SetTimestamp(out->mutable_next_change_at(), next->at);
    out->set_next_status(next->state.status);
  }
}

}  // namespace

grpc::Status OrgService::CreateSchedule(grpc::ServerContext* context,
                                        const v1::CreateScheduleRequest* request,
                                        v1::Schedule* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireManage(caller));
    const v1::Schedule& in = request->schedule();
    SB_ASSIGN_OR_RETURN(std::string name, CheckSchedule(in, true));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string id = NewUuid();
      const std::string ranges = RangesJson(in);
      pqxx::result r = tx.exec_params(
          "INSERT INTO org.schedules (tenant_id, id, name, description, time_zone, weekly_ranges, "
          "exceptions) VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb->'weeklyRanges', '[]'), "
          "coalesce($6::jsonb->'exceptions', '[]')) ON CONFLICT DO NOTHING RETURNING id",
          caller.tenant_id, id, name, in.description(), in.time_zone(), ranges);
      if (r.empty()) return NameTaken(name);
      SB_ASSIGN_OR_RETURN(*response, LoadSchedule(tx, caller.tenant_id, id, "schedule.id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetSchedule(grpc::ServerContext* context,
                                     const v1::GetScheduleRequest* request,
                                     v1::Schedule* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(
          *response, LoadSchedule(tx, access.tenant_id, request->schedule_id(), "schedule_id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListSchedules(grpc::ServerContext* context,
                                       const v1::ListSchedulesRequest* request,
                                       v1::ListSchedulesResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(app::ValidateText(request->query(), "query", 100));
    const std::string fingerprint = absl::StrCat("schedules|", request->query());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    return Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result rows = tx.exec_params(
          absl::StrCat("SELECT ", kScheduleColumns,
                       ", count(*) OVER () FROM org.schedules s WHERE s.tenant_id = $1 "
                       "AND ($2 = '' OR strpos(lower(s.name), lower($2)) > 0) "
                       "ORDER BY lower(s.name), s.id LIMIT $3 OFFSET $4"),
          caller.tenant_id, request->query(), page.limit, page.offset);
      const int64_t total = rows.empty() ? 0 : rows[0][7].as<int64_t>();
      for (const auto& row : rows) {
        SB_ASSIGN_OR_RETURN(*response->add_schedules(), ScheduleFromRow(row, caller.tenant_id));
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateSchedule(grpc::ServerContext* context,
                                        const v1::UpdateScheduleRequest* request,
                                        v1::Schedule* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireManage(caller));
    SB_ASSIGN_OR_RETURN(auto paths,
                        app::MaskPaths(request->update_mask(), {"name", "description", "time_zone",
                                                                "weekly_ranges", "exceptions"}));
    const v1::Schedule& in = request->schedule();
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      SB_ASSIGN_OR_RETURN(v1::Schedule next,
                          LoadSchedule(tx, tenant, in.id(), "schedule.id", true));
      if (paths.contains("name")) next.set_name(in.name());
      if (paths.contains("description")) next.set_description(in.description());
      if (paths.contains("time_zone")) next.set_time_zone(in.time_zone());
      if (paths.contains("weekly_ranges")) *next.mutable_weekly_ranges() = in.weekly_ranges();
      if (paths.contains("exceptions")) *next.mutable_exceptions() = in.exceptions();
      // The schedule as it will be is checked whole: a new time zone or new ranges must fit the
      // rest of it.
      SB_ASSIGN_OR_RETURN(std::string name, CheckSchedule(next, true));
      if (!tx.exec_params("SELECT 1 FROM org.schedules WHERE tenant_id = $1 AND id <> $2 AND "
                          "lower(name) = lower($3)",
                          tenant, next.id(), name)
               .empty()) {
        return NameTaken(name);
      }
      // clock_timestamp, not now(): updated_at keys the compiled-schedule cache, and it must
      // differ from the last update's even inside one transaction's start time.
      tx.exec_params(
          "UPDATE org.schedules SET name = $3, description = $4, time_zone = $5, "
          "weekly_ranges = coalesce($6::jsonb->'weeklyRanges', '[]'), "
          "exceptions = coalesce($6::jsonb->'exceptions', '[]'), "
          "updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond') "
          "WHERE tenant_id = $1 AND id = $2",
          tenant, next.id(), name, next.description(), next.time_zone(), RangesJson(next));
      SB_ASSIGN_OR_RETURN(*response, LoadSchedule(tx, tenant, next.id(), "schedule.id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteSchedule(grpc::ServerContext* context,
                                        const v1::DeleteScheduleRequest* request,
                                        google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireManage(caller));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      SB_ASSIGN_OR_RETURN(v1::Schedule s,
                          LoadSchedule(tx, tenant, request->schedule_id(), "schedule_id", true));
      // Queues belong to routing, which keeps their schedule ids itself: they are not seen here.
      if (const std::string used = Attachments(tx, tenant, s.id()); !used.empty()) {
        return app::WithReason(
            absl::FailedPreconditionError(absl::StrCat("schedule '", s.name(), "' is used by ",
                                                       used, ": detach it from them first")),
            "SCHEDULE_IN_USE");
      }
      tx.exec_params("DELETE FROM org.schedules WHERE tenant_id = $1 AND id = $2", tenant, s.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::EvaluateSchedule(grpc::ServerContext* context,
                                          const v1::EvaluateScheduleRequest* request,
                                          v1::EvaluateScheduleResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    if (request->has_at() && (request->at().nanos() < 0 || request->at().nanos() > 999999999)) {
      return app::FieldError("at", "INVALID_TIMESTAMP", "nanos must be 0..999999999");
    }
    const absl::Time at = request->has_at() ? pg::FromProto(request->at()) : deps_.clock.Now();
    switch (request->target_case()) {
      case v1::EvaluateScheduleRequest::kSchedule: {
        // An editor's preview: the rules are checked as CreateSchedule checks them; the name may
        // still be empty.
        SB_RETURN_IF_ERROR(CheckSchedule(request->schedule(), false).status());
        SB_ASSIGN_OR_RETURN(const schedule::CompiledSchedule compiled,
                            schedule::CompiledSchedule::Compile(request->schedule()));
        FillEvaluation(compiled, at, response);
        return absl::OkStatus();
      }
      case v1::EvaluateScheduleRequest::kScheduleId:
        break;
      case v1::EvaluateScheduleRequest::TARGET_NOT_SET:
        return app::FieldError("schedule_id", "REQUIRED", "name a schedule_id or give a schedule");
    }
    const std::string& id = request->schedule_id();
    if (!IsUuid(id)) return NotFound("schedule_id", id);
    const std::string key = absl::StrCat(access.tenant_id, "/", absl::AsciiStrToLower(id));
    std::shared_ptr<const schedule::CompiledSchedule> compiled;
    // Asked on every inbound call to a number with working hours: one prepared statement (the
    // schedule's version, by its primary key) while the compiled schedule is cached, no
    // BEGIN/COMMIT round trips. A schedule saved between that and loading it is cached under the
    // older version, so the next evaluation loads it again.
    SB_RETURN_IF_ERROR(deps_.pg.Read([&](pqxx::nontransaction& tx) -> absl::Status {
      pqxx::result v = pg::ExecPrepared(
          tx, "org_schedule_version",
          "SELECT (extract(epoch FROM updated_at) * 1000000)::int8 FROM org.schedules "
          "WHERE tenant_id = $1 AND id = $2",
          access.tenant_id, absl::AsciiStrToLower(id));
      if (v.empty()) return NotFound("schedule_id", id);
      const int64_t version = v[0][0].as<int64_t>();
      if ((compiled = schedule_cache_->Find(key, version))) return absl::OkStatus();
      SB_ASSIGN_OR_RETURN(v1::Schedule stored,
                          LoadSchedule(tx, access.tenant_id, id, "schedule_id"));
      absl::StatusOr<schedule::CompiledSchedule> c = schedule::CompiledSchedule::Compile(stored);
      if (!c.ok()) {
        // Stored schedules were valid when saved; the zoneinfo of this machine may lack a zone.
        return absl::FailedPreconditionError(
            absl::StrCat("the stored schedule cannot be evaluated here: ", c.status().message()));
      }
      compiled = std::make_shared<const schedule::CompiledSchedule>(*std::move(c));
      schedule_cache_->Put(key, version, compiled);
      return absl::OkStatus();
    }));
    FillEvaluation(*compiled, at, response);
    return absl::OkStatus();
  }());
}

}  // namespace sb::org
