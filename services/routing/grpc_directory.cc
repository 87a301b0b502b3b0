#include "services/routing/grpc_directory.h"

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"

namespace sb::routing {

namespace iv1 = ::switchboard::identity::v1;

GrpcDirectory::GrpcDirectory(auth::ChannelFactory org, auth::ChannelFactory identity,
                             std::string internal_token, const Clock& clock,
                             GrpcDirectoryOptions options)
    : org_channel_(std::move(org)),
      identity_channel_(identity),
      internal_token_(internal_token),
      options_(options),
      countries_(std::move(identity), std::move(internal_token), clock, options.deadline),
      clock_(clock) {}

orgv1::OrgService::Stub& GrpcDirectory::Org() {
  std::call_once(org_once_, [this] { org_ = orgv1::OrgService::NewStub(org_channel_()); });
  return *org_;
}

iv1::IdentityService::Stub& GrpcDirectory::Identity() {
  std::call_once(identity_once_,
                 [this] { identity_ = iv1::IdentityService::NewStub(identity_channel_()); });
  return *identity_;
}

std::unique_ptr<grpc::ClientContext> GrpcDirectory::Context(const std::string& tenant_id,
                                                            absl::Duration deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  context->AddMetadata(auth::kInternalTokenHeader, internal_token_);
  if (!tenant_id.empty()) context->AddMetadata(app::kTenantIdHeader, tenant_id);
  return context;
}

namespace {

// What a failed call to another service means for routing. NotFound and bad-input answers are
// kept (the caller decides what they mean for the call); a refused service credential is a
// deployment fault that retrying will not cure (Internal); anything else — unreachable, deadline,
// overloaded, the other side's bug — means routing cannot decide now (Unavailable: sip answers
// 503 and the carrier may try again).
absl::Status Remote(const grpc::Status& s, std::string_view what) {
  const std::string message = absl::StrCat(std::string(what), ": ", s.error_message());
  switch (s.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return absl::NotFoundError(message);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return absl::InvalidArgumentError(message);
    case grpc::StatusCode::FAILED_PRECONDITION:
      return absl::FailedPreconditionError(message);
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::InternalError(
          absl::StrCat(message, " (is --internal_token the same in every service?)"));
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace

absl::StatusOr<orgv1::Number> GrpcDirectory::ResolveNumber(const std::string& e164) {
  const bool caching = options_.number_cache_ttl > absl::ZeroDuration();
  const absl::Time now = clock_.Now();
  if (caching) {
    if (std::optional<orgv1::Number> hit = numbers_.Get(e164, now)) return *std::move(hit);
  }
  orgv1::ResolveNumberRequest req;
  req.set_number(e164);
  orgv1::Number out;
  auto context = Context("");
  if (grpc::Status s = Org().ResolveNumber(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org ResolveNumber");
  }
  if (caching) numbers_.Put(e164, out, now + options_.number_cache_ttl);
  return out;
}

absl::StatusOr<orgv1::ScheduleStatus> GrpcDirectory::EvaluateSchedule(
    const std::string& tenant_id, const std::string& schedule_id, absl::Time at) {
  const bool caching = options_.number_cache_ttl > absl::ZeroDuration();
  const std::string key = absl::StrCat(tenant_id, "/", schedule_id);
  const absl::Time now = clock_.Now();
  if (caching) {
    std::optional<CachedStatus> hit = statuses_.Get(key, now);
    if (hit && hit->from <= at && at < hit->until) return hit->status;
  }
  orgv1::EvaluateScheduleRequest req;
  req.set_tenant_id(tenant_id);
  req.set_schedule_id(schedule_id);
  pg::SetTimestamp(req.mutable_at(), at);
  orgv1::EvaluateScheduleResponse out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Org().EvaluateSchedule(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org EvaluateSchedule");
  }
  if (caching) {
    // Without a next change (none within org's horizon) the status is only taken to hold for as
    // long as the entry lives.
    const absl::Time until = out.has_next_change_at() ? pg::FromProto(out.next_change_at())
                                                      : at + options_.number_cache_ttl;
    statuses_.Put(key, {out.status(), at, until}, now + options_.number_cache_ttl);
  }
  return out.status();
}

absl::StatusOr<std::vector<orgv1::ProjectSelection>> GrpcDirectory::ProjectSelections(
    const std::string& tenant_id, const std::string& project_id, int max) {
  const bool caching = options_.agent_cache_ttl > absl::ZeroDuration();
  const std::string key = absl::StrCat(tenant_id, "/", project_id, "/", max);
  const absl::Time now = clock_.Now();
  if (caching) {
    if (auto hit = selections_.Get(key, now)) return *std::move(hit);
  }
  orgv1::ListProjectSelectionsRequest req;
  req.set_project_id(project_id);
  req.set_page_size(std::clamp(max, 1, 1000));
  orgv1::ListProjectSelectionsResponse out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Org().ListProjectSelections(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org ListProjectSelections");
  }
  std::vector<orgv1::ProjectSelection> selections(out.selections().begin(), out.selections().end());
  if (caching) selections_.Put(key, selections, now + options_.agent_cache_ttl);
  return selections;
}

absl::StatusOr<std::vector<orgv1::AgentProfile>> GrpcDirectory::AgentProfiles(
    const std::string& tenant_id, const std::vector<std::string>& user_ids) {
  const bool caching = options_.agent_cache_ttl > absl::ZeroDuration();
  const absl::Time now = clock_.Now();
  auto key = [&tenant_id](const std::string& user) { return absl::StrCat(tenant_id, "/", user); };
  std::vector<orgv1::AgentProfile> profiles;
  std::vector<std::string> missing;
  for (const std::string& user : user_ids) {
    std::optional<std::optional<orgv1::AgentProfile>> hit;
    if (caching) hit = profiles_.Get(key(user), now);
    if (!hit) {
      missing.push_back(user);
    } else if (*hit) {
      profiles.push_back(**std::move(hit));
    }
  }
  // ListAgentProfiles takes at most 1000 ids and answers at most 1000 profiles a page.
  for (size_t begin = 0; begin < missing.size(); begin += 1000) {
    orgv1::ListAgentProfilesRequest req;
    req.set_tenant_id(tenant_id);
    req.set_page_size(1000);
    const size_t end = std::min(missing.size(), begin + 1000);
    for (size_t i = begin; i < end; ++i) req.add_user_ids(missing[i]);
    orgv1::ListAgentProfilesResponse out;
    auto context = Context(tenant_id);
    if (grpc::Status s = Org().ListAgentProfiles(context.get(), req, &out); !s.ok()) {
      return Remote(s, "org ListAgentProfiles");
    }
    if (caching) {
      // Those asked for and not answered have no profile: remembered as such.
      absl::flat_hash_set<std::string> answered;
      for (const orgv1::AgentProfile& p : out.profiles()) {
        answered.insert(p.user_id());
        profiles_.Put(key(p.user_id()), p, now + options_.agent_cache_ttl);
      }
      for (size_t i = begin; i < end; ++i) {
        if (!answered.contains(missing[i])) {
          profiles_.Put(key(missing[i]), std::nullopt, now + options_.agent_cache_ttl);
        }
      }
    }
    profiles.insert(profiles.end(), out.profiles().begin(), out.profiles().end());
  }
  return profiles;
}

absl::StatusOr<orgv1::AgentProfile> GrpcDirectory::AgentProfile(const std::string& tenant_id,
                                                                const std::string& user_id) {
  orgv1::GetAgentProfileRequest req;
  req.set_tenant_id(tenant_id);
  req.set_user_id(user_id);
  orgv1::AgentProfile out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Org().GetAgentProfile(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org GetAgentProfile");
  }
  return out;
}

absl::StatusOr<orgv1::AgentProfile> GrpcDirectory::LookupExtension(const std::string& tenant_id,
                                                                   const std::string& extension) {
  orgv1::LookupExtensionRequest req;
  req.set_tenant_id(tenant_id);
  req.set_extension(extension);
  orgv1::AgentProfile out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Org().LookupExtension(context.get(), req, &out); !s.ok()) {
    // Org refuses text that cannot be an extension: for routing that is no extension either.
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return absl::NotFoundError("not an extension");
    }
    return Remote(s, "org LookupExtension");
  }
  return out;
}

absl::StatusOr<std::string> GrpcDirectory::CallerName(const std::string& tenant_id,
                                                      const std::string& number) {
  const bool caching = options_.number_cache_ttl > absl::ZeroDuration();
  const std::string key = absl::StrCat(tenant_id, "/", number);
  const absl::Time now = clock_.Now();
  if (caching) {
    if (std::optional<std::string> hit = caller_names_.Get(key, now)) return *std::move(hit);
  }
  orgv1::LookupContactsRequest req;
  req.set_tenant_id(tenant_id);
  req.set_phone_number(number);
  req.set_max_results(1);
  orgv1::LookupContactsResponse out;
  auto context = Context(tenant_id, options_.caller_name_deadline);
  if (grpc::Status s = Org().LookupContacts(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org LookupContacts");
  }
  std::string name;
  if (out.has_crm_match() && !out.crm_match().name().empty()) {
    name = out.crm_match().name();
  } else if (!out.contacts().empty()) {
    const orgv1::Contact& c = out.contacts(0);
    name = c.first_name();
    if (!c.last_name().empty()) absl::StrAppend(&name, name.empty() ? "" : " ", c.last_name());
    if (name.empty()) name = c.company();
  }
  // "No name" too: most callers are in no contact list.
  if (caching) caller_names_.Put(key, name, now + options_.number_cache_ttl);
  return name;
}

absl::StatusOr<orgv1::Wallet> GrpcDirectory::Wallet(const std::string& tenant_id) {
  orgv1::GetWalletRequest req;
  req.set_tenant_id(tenant_id);
  orgv1::Wallet out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Org().GetWallet(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org GetWallet");
  }
  return out;
}

absl::StatusOr<std::vector<orgv1::Trunk>> GrpcDirectory::Trunks(const std::string& tenant_id) {
  orgv1::ListTrunksRequest req;
  req.set_page_size(1000);
  orgv1::ListTrunksResponse out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Org().ListTrunks(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org ListTrunks");
  }
  return std::vector<orgv1::Trunk>(out.trunks().begin(), out.trunks().end());
}

absl::StatusOr<std::vector<orgv1::Number>> GrpcDirectory::NumbersOnTrunk(
    const std::string& tenant_id, const std::string& trunk_id) {
  orgv1::ListNumbersRequest req;
  req.set_trunk_id(trunk_id);
  req.set_page_size(1000);
  orgv1::ListNumbersResponse out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Org().ListNumbers(context.get(), req, &out); !s.ok()) {
    return Remote(s, "org ListNumbers");
  }
  return std::vector<orgv1::Number>(out.numbers().begin(), out.numbers().end());
}

absl::StatusOr<std::string> GrpcDirectory::TenantCountry(const std::string& tenant_id) {
  return countries_.Country(tenant_id);
}

absl::StatusOr<Directory::RecordingRule> GrpcDirectory::Recording(const std::string& tenant_id,
                                                                  const std::string& project_id) {
  using ::switchboard::common::v1::RecordingPolicy;
  RecordingPolicy policy = ::switchboard::common::v1::RECORDING_POLICY_INHERIT;
  if (!project_id.empty()) {
    const bool caching = options_.number_cache_ttl > absl::ZeroDuration();
    const std::string key = absl::StrCat(tenant_id, "/", project_id);
    const absl::Time now = clock_.Now();
    std::optional<RecordingPolicy> hit;
    if (caching) hit = project_policies_.Get(key, now);
    if (hit.has_value()) {
      policy = *hit;
    } else {
      orgv1::GetProjectRequest req;
      req.set_project_id(project_id);
      orgv1::Project project;
      auto context = Context(tenant_id);
      if (grpc::Status s = Org().GetProject(context.get(), req, &project); !s.ok()) {
        return Remote(s, "org GetProject");
      }
      policy = project.recording_policy();
      if (caching) project_policies_.Put(key, policy, now + options_.number_cache_ttl);
    }
  }
  SB_ASSIGN_OR_RETURN(iv1::Tenant tenant, countries_.Tenant(tenant_id));
  if (policy == ::switchboard::common::v1::RECORDING_POLICY_INHERIT ||
      policy == ::switchboard::common::v1::RECORDING_POLICY_UNSPECIFIED) {
    policy = tenant.recording_policy();
  }
  return RecordingRule{.record = policy == ::switchboard::common::v1::RECORDING_POLICY_ALWAYS,
                       .retention_days = tenant.recording_retention_days()};
}

absl::StatusOr<bool> GrpcDirectory::VerifyPin(const std::string& tenant_id,
                                              const std::string& user_id, const std::string& pin,
                                              const std::string& call_id) {
  iv1::VerifyPinRequest req;
  req.set_tenant_id(tenant_id);
  req.set_user_id(user_id);
  req.set_pin(pin);
  req.set_call_id(call_id);
  iv1::VerifyPinResponse out;
  auto context = Context(tenant_id);
  if (grpc::Status s = Identity().VerifyPin(context.get(), req, &out); !s.ok()) {
    // Identity's throttle: too many wrong PINs for this user (the message names no PIN).
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      return absl::ResourceExhaustedError(s.error_message());
    }
    return Remote(s, "identity VerifyPin");
  }
  return out.valid();
}

}  // namespace sb::routing
