#pragma once

// The gRPC face of the `sip` target: registrations and live calls read from Redis (so any SIP
// replica answers for every node's calls), and call control for the calls this node owns.
//
// Access: ListRegistrations/DeleteRegistration need users.read / users.manage held tenant-wide,
// else they cover the caller's own extension only. Live calls need calls.read: tenant-wide sees
// every call of the tenant, any narrower scope the calls of the users it reaches (an agent: their
// own). HangupCall needs agents.supervise tenant-wide, or being an agent on the call.
// Other tenants' calls are NotFound. Internal callers (services) see everything of the tenant
// they name with x-sb-tenant-id.
//
// Built: live calls (ListActiveCalls, GetActiveCall), call control for this node's calls
// (HangupCall, HoldCall, ResumeCall, TransferCall, OriginateCall), nodes (ListNodes,
// CloseNodeCalls), GetOverloadStatus and registrations. Not built yet (UNIMPLEMENTED):
// StartConsultation, AnswerCall, SendDtmf, ControlRecording, MonitorCall (the last four need
// media, issue #6) and trunk status. Call control for a call another node owns answers
// Unavailable naming that node (forwarding to the owner is not built).

#include <atomic>

#include "libs/auth/authenticator.h"
#include "libs/auth/authorizer.h"
#include "libs/common/clock.h"
#include "libs/redis/client.h"
#include "switchboard/sip/v1/sip_service.grpc.pb.h"

namespace sb::sip {

namespace v1 = ::switchboard::sip::v1;

class SipServer;

class SipService final : public v1::SipService::Service {
 public:
  SipService(const auth::Authenticator& authenticator, const auth::Authorizer& authorizer,
             redis::Client& redis, const Clock& clock, std::string prefix = "sb:");

  // The running server (set once the SIP transports are up; null before and after).
  void set_server(SipServer* server) { server_.store(server); }

  grpc::Status ListRegistrations(grpc::ServerContext* context,
                                 const v1::ListRegistrationsRequest* request,
                                 v1::ListRegistrationsResponse* response) override;
  grpc::Status DeleteRegistration(grpc::ServerContext* context,
                                  const v1::DeleteRegistrationRequest* request,
                                  google::protobuf::Empty* response) override;
  grpc::Status ListActiveCalls(grpc::ServerContext* context,
                               const v1::ListActiveCallsRequest* request,
                               v1::ListActiveCallsResponse* response) override;
  grpc::Status GetActiveCall(grpc::ServerContext* context, const v1::GetActiveCallRequest* request,
                             v1::ActiveCall* response) override;
  grpc::Status ListNodes(grpc::ServerContext* context, const v1::ListNodesRequest* request,
                         v1::ListNodesResponse* response) override;
  grpc::Status GetOverloadStatus(grpc::ServerContext* context,
                                 const v1::GetOverloadStatusRequest* request,
                                 v1::OverloadStatus* response) override;
  grpc::Status CloseNodeCalls(grpc::ServerContext* context,
                              const v1::CloseNodeCallsRequest* request,
                              v1::CloseNodeCallsResponse* response) override;
  grpc::Status OriginateCall(grpc::ServerContext* context, const v1::OriginateCallRequest* request,
                             v1::OriginateCallResponse* response) override;
  grpc::Status HoldCall(grpc::ServerContext* context, const v1::HoldCallRequest* request,
                        v1::ActiveCall* response) override;
  grpc::Status ResumeCall(grpc::ServerContext* context, const v1::ResumeCallRequest* request,
                          v1::ActiveCall* response) override;
  grpc::Status TransferCall(grpc::ServerContext* context, const v1::TransferCallRequest* request,
                            v1::ActiveCall* response) override;
  grpc::Status HangupCall(grpc::ServerContext* context, const v1::HangupCallRequest* request,
                          google::protobuf::Empty* response) override;

 private:
  // The SIP server once its transports are up; Unavailable before.
  absl::StatusOr<SipServer*> Server() const;
  // Platform admins and the platform's services (node-level RPCs).
  absl::Status RequirePlatform(grpc::ServerContext& context) const;
  struct Caller;
  absl::StatusOr<Caller> Authenticate(grpc::ServerContext& context) const;
  // The SIP server that owns a call `caller` may control (a supervisor, or an agent on it).
  // NotFound, PermissionDenied, Unavailable (another node's call).
  absl::StatusOr<SipServer*> ControlCall(const Caller& caller, const std::string& call_id,
                                         std::string_view what);
  grpc::Status SetHold(grpc::ServerContext& context, const std::string& call_id,
                       const std::string& leg_id, bool hold, v1::ActiveCall* response);
  absl::StatusOr<std::vector<v1::ActiveCall>> TenantCalls(const std::string& tenant_id);
  absl::StatusOr<v1::ActiveCall> LoadCall(const Caller& caller, const std::string& call_id);
  bool Sees(const Caller& caller, const v1::ActiveCall& call) const;

  const auth::Authenticator& authenticator_;
  const auth::Authorizer& authorizer_;
  redis::Client& redis_;
  const Clock& clock_;
  const std::string prefix_;
  std::atomic<SipServer*> server_{nullptr};
};

}  // namespace sb::sip
