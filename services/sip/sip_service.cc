#include "services/sip/sip_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/app/call_context.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "services/sip/registrations.h"
#include "services/sip/sip_server.h"
#include "spdlog/spdlog.h"

namespace sb::sip {

namespace cv1 = ::switchboard::common::v1;

struct SipService::Caller {
  auth::Principal principal;
  std::string tenant_id;
  bool service = false;
  bool all_calls = false;                  // calls.read tenant-wide (or a service)
  absl::flat_hash_set<std::string> reach;  // users whose calls a narrower scope reaches
};

SipService::SipService(const auth::Authenticator& authenticator, const auth::Authorizer& authorizer,
                       redis::Client& redis, const Clock& clock, std::string prefix)
    : authenticator_(authenticator),
      authorizer_(authorizer),
      redis_(redis),
      clock_(clock),
      prefix_(std::move(prefix)) {}

absl::StatusOr<SipService::Caller> SipService::Authenticate(grpc::ServerContext& context) const {
  SB_ASSIGN_OR_RETURN(auth::Principal principal, authenticator_.Authenticate(context));
  SB_RETURN_IF_ERROR(auth::RequireUnrestricted(principal));
  Caller caller;
  caller.tenant_id = principal.tenant_id;
  if (principal.is_service()) {
    caller.service = true;
    caller.all_calls = true;
    caller.tenant_id = app::CallContext::From(context).tenant_id;
    if (caller.tenant_id.empty()) {
      return absl::InvalidArgumentError("x-sb-tenant-id: internal callers name the tenant");
    }
  } else if (auth::Authorizer::HoldsTenantWide(principal, auth::perm::kCallsRead)) {
    caller.all_calls = true;
  } else if (principal.permissions.HasAny(auth::perm::kCallsRead)) {
    auto reach = authorizer_.ReachFor(principal, auth::perm::kCallsRead);
    if (!reach.ok()) return reach.status();
    caller.reach = reach->user_ids;
  }
  caller.reach.insert(principal.user_id);
  caller.principal = std::move(principal);
  return caller;
}

bool SipService::Sees(const Caller& caller, const v1::ActiveCall& call) const {
  if (call.tenant_id() != caller.tenant_id) return false;
  if (caller.all_calls) return true;
  return std::any_of(call.agent_user_ids().begin(), call.agent_user_ids().end(),
                     [&](const std::string& id) { return caller.reach.contains(id); });
}

absl::StatusOr<std::vector<v1::ActiveCall>> SipService::TenantCalls(const std::string& tenant_id) {
  SB_ASSIGN_OR_RETURN(redis::Reply ids,
                      redis_.Command({"ZRANGE", prefix_ + "calls:tenant:" + tenant_id, "0", "-1"}));
  std::vector<std::vector<std::string>> gets;
  for (const redis::Reply& id : ids.elements())
    gets.push_back({"GET", prefix_ + "call:" + id.str()});
  std::vector<v1::ActiveCall> out;
  if (gets.empty()) return out;
  SB_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies, redis_.Pipeline(gets));
  for (const redis::Reply& r : replies) {
    v1::ActiveCall call;
    if (r.is_string() && call.ParseFromString(r.str()) && call.state() != cv1::CALL_STATE_ENDED) {
      out.push_back(std::move(call));
    }
  }
  return out;
}

absl::StatusOr<v1::ActiveCall> SipService::LoadCall(const Caller& caller,
                                                    const std::string& call_id) {
  if (!IsUuid(call_id)) return app::FieldError("call_id", "NOT_UUID", "must be a UUID");
  SB_ASSIGN_OR_RETURN(redis::Reply r, redis_.Command({"GET", prefix_ + "call:" + call_id}));
  v1::ActiveCall call;
  if (!r.is_string() || !call.ParseFromString(r.str()) || !Sees(caller, call)) {
    return absl::NotFoundError(absl::StrCat("call ", call_id, " not found"));
  }
  if (call.state() == cv1::CALL_STATE_ENDED) {
    return absl::NotFoundError(absl::StrCat("call ", call_id, " has ended"));
  }
  return call;
}

grpc::Status SipService::ListActiveCalls(grpc::ServerContext* context,
                                         const v1::ListActiveCallsRequest* request,
                                         v1::ListActiveCallsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    if (!caller.service && !caller.all_calls &&
        !caller.principal.permissions.HasAny(auth::perm::kCallsRead)) {
      return absl::PermissionDeniedError("listing live calls needs calls.read");
    }
    const std::string fingerprint =
        absl::StrCat("calls|", request->user_id(), "|", request->queue_id(), "|",
                     request->project_id(), "|", request->direction(), "|", request->node_id());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    SB_ASSIGN_OR_RETURN(std::vector<v1::ActiveCall> calls, TenantCalls(caller.tenant_id));
    std::erase_if(calls, [&](const v1::ActiveCall& c) {
      if (!Sees(caller, c)) return true;
      if (!request->user_id().empty() &&
          std::find(c.agent_user_ids().begin(), c.agent_user_ids().end(), request->user_id()) ==
              c.agent_user_ids().end()) {
        return true;
      }
      if (!request->queue_id().empty() && c.queue_id() != request->queue_id()) return true;
      if (!request->project_id().empty() && c.project_id() != request->project_id()) return true;
      if (request->direction() != cv1::CALL_DIRECTION_UNSPECIFIED &&
          c.direction() != request->direction()) {
        return true;
      }
      if (!request->node_id().empty() && c.node_id() != request->node_id()) return true;
      if (request->states_size() > 0 &&
          std::find(request->states().begin(), request->states().end(), c.state()) ==
              request->states().end()) {
        return true;
      }
      return false;
    });
    // Longest-running first: what a supervisor's live view leads with.
    std::sort(calls.begin(), calls.end(), [](const v1::ActiveCall& a, const v1::ActiveCall& b) {
      return a.created_at().seconds() != b.created_at().seconds()
                 ? a.created_at().seconds() < b.created_at().seconds()
                 : a.call_id() < b.call_id();
    });
    response->set_total_size(static_cast<int32_t>(calls.size()));
    for (size_t i = static_cast<size_t>(page.offset);
         i < calls.size() && i < static_cast<size_t>(page.offset + page.limit); ++i) {
      *response->add_calls() = std::move(calls[i]);
    }
    response->set_next_page_token(
        app::NextPageToken(page, static_cast<int64_t>(response->total_size()), fingerprint));
    return absl::OkStatus();
  }());
}

grpc::Status SipService::GetActiveCall(grpc::ServerContext* context,
                                       const v1::GetActiveCallRequest* request,
                                       v1::ActiveCall* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    SB_ASSIGN_OR_RETURN(*response, LoadCall(caller, request->call_id()));
    return absl::OkStatus();
  }());
}

absl::StatusOr<SipServer*> SipService::Server() const {
  SipServer* server = server_.load();
  if (server == nullptr) return absl::UnavailableError("the SIP transports are not up");
  return server;
}

absl::StatusOr<SipServer*> SipService::ControlCall(const Caller& caller, const std::string& call_id,
                                                   std::string_view what) {
  SB_ASSIGN_OR_RETURN(v1::ActiveCall call, LoadCall(caller, call_id));
  const bool supervisor = caller.service || auth::Authorizer::HoldsTenantWide(
                                                caller.principal, auth::perm::kAgentsSupervise);
  const bool on_call = std::find(call.agent_user_ids().begin(), call.agent_user_ids().end(),
                                 caller.principal.user_id) != call.agent_user_ids().end();
  if (!supervisor && !on_call) {
    return absl::PermissionDeniedError(
        absl::StrCat(std::string(what), " others' calls needs agents.supervise"));
  }
  SB_ASSIGN_OR_RETURN(SipServer * server, Server());
  if (call.node_id() != server->options().node_id) {
    return absl::UnavailableError(absl::StrCat("call ", call.call_id(), " is owned by SIP node ",
                                               call.node_id(), "; ask that node"));
  }
  return server;
}

grpc::Status SipService::HangupCall(grpc::ServerContext* context,
                                    const v1::HangupCallRequest* request,
                                    google::protobuf::Empty* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    if (!request->leg_id().empty()) {
      return app::FieldError("leg_id", "UNSUPPORTED",
                             "hanging up one leg of a call is not supported yet; leave it empty");
    }
    SB_ASSIGN_OR_RETURN(SipServer * server, ControlCall(caller, request->call_id(), "hanging up"));
    const cv1::HangupCause cause = request->cause() == cv1::HANGUP_CAUSE_UNSPECIFIED
                                       ? cv1::HANGUP_CAUSE_ADMINISTRATIVE
                                       : request->cause();
    return server->Hangup(request->call_id(), cause);
  }());
}

grpc::Status SipService::HoldCall(grpc::ServerContext* context, const v1::HoldCallRequest* request,
                                  v1::ActiveCall* response) {
  return SetHold(*context, request->call_id(), request->leg_id(), true, response);
}

grpc::Status SipService::ResumeCall(grpc::ServerContext* context,
                                    const v1::ResumeCallRequest* request,
                                    v1::ActiveCall* response) {
  return SetHold(*context, request->call_id(), request->leg_id(), false, response);
}

grpc::Status SipService::SetHold(grpc::ServerContext& context, const std::string& call_id,
                                 const std::string& leg_id, bool hold, v1::ActiveCall* response) {
  return app::ToGrpc(context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(context));
    SB_ASSIGN_OR_RETURN(SipServer * server,
                        ControlCall(caller, call_id, hold ? "holding" : "resuming"));
    const std::string by_user = caller.principal.user_id;
    SB_ASSIGN_OR_RETURN(*response, server->WithCalls<v1::ActiveCall>([&](CallManager& calls) {
      return calls.SetHold(call_id, leg_id, hold, by_user);
    }));
    return absl::OkStatus();
  }());
}

grpc::Status SipService::TransferCall(grpc::ServerContext* context,
                                      const v1::TransferCallRequest* request,
                                      v1::ActiveCall* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    if (request->target_case() == v1::TransferCallRequest::kUserId && !IsUuid(request->user_id())) {
      return app::FieldError("user_id", "NOT_UUID", "must be a user id");
    }
    if (request->target_case() == v1::TransferCallRequest::kConsultCallId &&
        !IsUuid(request->consult_call_id())) {
      return app::FieldError("consult_call_id", "NOT_UUID", "must be a call id");
    }
    if (request->target_case() == v1::TransferCallRequest::kExtension &&
        (request->extension().empty() || request->extension().size() > 32)) {
      return app::FieldError("extension", "INVALID", "must be 1 to 32 characters");
    }
    if (request->target_case() == v1::TransferCallRequest::kNumber &&
        (request->number().size() < 2 || request->number()[0] != '+')) {
      return app::FieldError("number", "NOT_E164", "must be an E.164 number (+...)");
    }
    SB_ASSIGN_OR_RETURN(SipServer * server,
                        ControlCall(caller, request->call_id(), "transferring"));
    SB_ASSIGN_OR_RETURN(*response, server->WithCalls<v1::ActiveCall>([&](CallManager& calls) {
      return calls.Transfer(*request);
    }));
    return absl::OkStatus();
  }());
}

grpc::Status SipService::OriginateCall(grpc::ServerContext* context,
                                       const v1::OriginateCallRequest* request,
                                       v1::OriginateCallResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    const std::string user =
        request->user_id().empty() ? caller.principal.user_id : request->user_id();
    if (user.empty()) {
      return app::FieldError("user_id", "REQUIRED", "name the agent whose phone rings first");
    }
    if (!IsUuid(user)) return app::FieldError("user_id", "NOT_UUID", "must be a user id");
    if (user != caller.principal.user_id && !caller.service &&
        !auth::Authorizer::HoldsTenantWide(caller.principal, auth::perm::kAgentsSupervise)) {
      return absl::PermissionDeniedError("calling from others' phones needs agents.supervise");
    }
    const std::string& destination = request->destination();
    bool dialable = !destination.empty() && destination.size() <= 32;
    for (size_t i = 0; i < destination.size() && dialable; ++i) {
      const char c = destination[i];
      dialable = (c >= '0' && c <= '9') || (c == '+' && i == 0 && destination.size() > 1);
    }
    if (!dialable) {
      return app::FieldError("destination", "INVALID",
                             "an E.164 number (+...) or an extension, digits only");
    }
    if (request->pin().size() > 12 || !std::all_of(request->pin().begin(), request->pin().end(),
                                                   [](char c) { return c >= '0' && c <= '9'; })) {
      return app::FieldError("pin", "INVALID", "at most 12 digits");
    }
    if (!request->project_id().empty()) {
      return app::FieldError("project_id", "UNSUPPORTED",
                             "a project's caller id for click-to-call comes with routing's call "
                             "flows (issue #7); leave it empty for the agent's own");
    }
    absl::Duration ring = absl::Seconds(30);
    if (request->has_agent_ring_timeout()) {
      ring = absl::Seconds(request->agent_ring_timeout().seconds());
      if (ring < absl::Seconds(5) || ring > absl::Seconds(120)) {
        return app::FieldError("agent_ring_timeout", "OUT_OF_RANGE", "5 to 120 seconds");
      }
    }
    if (request->idempotency_key().size() > 128) {
      return app::FieldError("idempotency_key", "TOO_LONG", "at most 128 characters");
    }
    SB_ASSIGN_OR_RETURN(SipServer * server, Server());
    // A retried request gets the first call's id.
    const std::string idempotency = request->idempotency_key().empty()
                                        ? ""
                                        : absl::StrCat(prefix_, "sip:originate:", caller.tenant_id,
                                                       ":", user, ":", request->idempotency_key());
    if (!idempotency.empty()) {
      SB_ASSIGN_OR_RETURN(redis::Reply earlier, redis_.Command({"GET", idempotency}));
      if (!earlier.is_nil()) {
        response->set_call_id(earlier.str());
        return absl::OkStatus();
      }
    }
    absl::StatusOr<ov1::AgentProfile> profile =
        server->peers().GetAgentProfile(caller.tenant_id, user);
    if (profile.status().code() == absl::StatusCode::kNotFound) {
      return app::FieldError("user_id", "NOT_AN_AGENT", "the user has no agent profile");
    }
    SB_RETURN_IF_ERROR(profile.status());
    if (profile->extension().empty()) {
      return absl::FailedPreconditionError("the agent has no extension");
    }
    // Routing decides as if the agent had dialled the destination on the phone (outbound rules,
    // PIN, wallet; an extension of the tenant is an internal call).
    OriginateRequest originate;
    originate.tenant_id = caller.tenant_id;
    originate.user_id = user;
    originate.extension = profile->extension();
    originate.destination = destination;
    originate.dialled =
        request->pin().empty() ? destination : absl::StrCat("*", request->pin(), "*", destination);
    originate.ring_timeout = ring;
    originate.auto_answer = request->auto_answer();
    rv1::RouteCallRequest route;
    originate.call_id = NewUuid();
    route.set_call_id(originate.call_id);
    route.set_node_id(server->options().node_id);
    route.set_from_number(profile->extension());
    route.set_dialled(originate.dialled);
    *route.mutable_received_at() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
    route.mutable_phone()->set_tenant_id(caller.tenant_id);
    route.mutable_phone()->set_user_id(user);
    route.mutable_phone()->set_extension(profile->extension());
    SB_ASSIGN_OR_RETURN(originate.routed, server->peers().RouteCall(route));
    const rv1::RoutingInstruction& instruction = originate.routed.instruction();
    if (instruction.has_reject()) {
      const std::string why =
          absl::StrCat("routing refused the call (", instruction.reject().sip_code(), " ",
                       instruction.reject().reason(), ")");
      return instruction.reject().sip_code() == 403 ? absl::PermissionDeniedError(why)
             : instruction.reject().sip_code() == 404
                 ? app::FieldError("destination", "NOT_FOUND", why)
                 : absl::FailedPreconditionError(why);
    }
    SB_ASSIGN_OR_RETURN(std::string call_id,
                        server->WithCalls<std::string>([&](CallManager& calls) {
                          return calls.Originate(std::move(originate));
                        }));
    if (!idempotency.empty()) {
      (void)redis_.Command({"SET", idempotency, call_id, "NX", "EX", "600"});
    }
    response->set_call_id(call_id);
    return absl::OkStatus();
  }());
}

absl::Status SipService::RequirePlatform(grpc::ServerContext& context) const {
  SB_ASSIGN_OR_RETURN(auth::Principal principal, authenticator_.Authenticate(context));
  if (!principal.is_service() && !principal.is_platform_admin()) {
    return absl::PermissionDeniedError("SIP nodes are the platform's: platform admins only");
  }
  return absl::OkStatus();
}

grpc::Status SipService::ListNodes(grpc::ServerContext* context,
                                   const v1::ListNodesRequest* request,
                                   v1::ListNodesResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequirePlatform(*context));
    SB_ASSIGN_OR_RETURN(SipServer * server, Server());
    SB_ASSIGN_OR_RETURN(std::vector<v1::SipNode> nodes,
                        server->nodes().List(request->include_dead()));
    for (v1::SipNode& n : nodes) *response->add_nodes() = std::move(n);
    return absl::OkStatus();
  }());
}

grpc::Status SipService::GetOverloadStatus(grpc::ServerContext* context,
                                           const v1::GetOverloadStatusRequest* request,
                                           v1::OverloadStatus* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequirePlatform(*context));
    SB_ASSIGN_OR_RETURN(SipServer * server, Server());
    if (request->node_id().empty() || request->node_id() == server->options().node_id) {
      SB_ASSIGN_OR_RETURN(*response, server->WithCalls<v1::OverloadStatus>(
                                         [](CallManager& calls) { return calls.Overload(); }));
      return absl::OkStatus();
    }
    // Another node: as of its last heartbeat.
    SB_ASSIGN_OR_RETURN(v1::SipNode node, server->nodes().Get(request->node_id()));
    *response = node.overload();
    response->set_node_id(node.node_id());
    return absl::OkStatus();
  }());
}

grpc::Status SipService::CloseNodeCalls(grpc::ServerContext* context,
                                        const v1::CloseNodeCallsRequest* request,
                                        v1::CloseNodeCallsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequirePlatform(*context));
    if (request->node_id().empty()) {
      return app::FieldError("node_id", "REQUIRED", "name the dead SIP node");
    }
    SB_ASSIGN_OR_RETURN(SipServer * server, Server());
    if (request->node_id() == server->options().node_id) {
      return absl::FailedPreconditionError("this node is alive: it ends its own calls");
    }
    SB_ASSIGN_OR_RETURN(int closed, server->CloseDeadNode(request->node_id()));
    response->set_calls_closed(closed);
    return absl::OkStatus();
  }());
}

grpc::Status SipService::ListRegistrations(grpc::ServerContext* context,
                                           const v1::ListRegistrationsRequest* request,
                                           v1::ListRegistrationsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    const bool everyone = caller.service || auth::Authorizer::HoldsTenantWide(
                                                caller.principal, auth::perm::kUsersRead);
    const std::string fingerprint =
        absl::StrCat("regs|", request->user_id(), "|", request->extension());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    RegistrationStore store(redis_, prefix_ + "sip:");
    std::vector<std::string> extensions;
    if (!request->extension().empty()) {
      extensions.push_back(request->extension());
    } else {
      SB_ASSIGN_OR_RETURN(extensions, store.Extensions(caller.tenant_id));
    }
    std::vector<v1::Registration> all;
    const absl::Time now = clock_.Now();
    for (const std::string& ext : extensions) {
      SB_ASSIGN_OR_RETURN(std::vector<v1::Registration> bindings,
                          store.Lookup(caller.tenant_id, ext, now));
      for (v1::Registration& r : bindings) {
        if (!everyone && r.user_id() != caller.principal.user_id) continue;
        if (!request->user_id().empty() && r.user_id() != request->user_id()) continue;
        all.push_back(std::move(r));
      }
    }
    response->set_total_size(static_cast<int32_t>(all.size()));
    for (size_t i = static_cast<size_t>(page.offset);
         i < all.size() && i < static_cast<size_t>(page.offset + page.limit); ++i) {
      *response->add_registrations() = std::move(all[i]);
    }
    response->set_next_page_token(
        app::NextPageToken(page, static_cast<int64_t>(all.size()), fingerprint));
    return absl::OkStatus();
  }());
}

grpc::Status SipService::DeleteRegistration(grpc::ServerContext* context,
                                            const v1::DeleteRegistrationRequest* request,
                                            google::protobuf::Empty* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Caller caller, Authenticate(*context));
    if (request->extension().empty()) {
      return app::FieldError("extension", "REQUIRED", "name the extension");
    }
    RegistrationStore store(redis_, prefix_ + "sip:");
    const absl::Time now = clock_.Now();
    SB_ASSIGN_OR_RETURN(std::vector<v1::Registration> bindings,
                        store.Lookup(caller.tenant_id, request->extension(), now));
    const bool manager = caller.service || auth::Authorizer::HoldsTenantWide(
                                               caller.principal, auth::perm::kUsersManage);
    RegistrationStore::Change change;
    for (const v1::Registration& r : bindings) {
      if (!manager && r.user_id() != caller.principal.user_id) continue;
      if (!request->contact_uri().empty() && r.contact_uri() != request->contact_uri()) continue;
      change.removals.push_back(RegistrationStore::BindingKey(r));
    }
    if (change.removals.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no registration of extension ", request->extension().substr(0, 32),
                       request->contact_uri().empty() ? "" : " with that contact"));
    }
    return store.Apply(caller.tenant_id, request->extension(), change, now).status();
  }());
}

}  // namespace sb::sip
