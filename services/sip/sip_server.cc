#include "services/sip/sip_server.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/status_macros.h"
#include "spdlog/spdlog.h"

namespace sb::sip {
namespace {

constexpr char kAllow[] = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REGISTER";
// Methods sofia knows that we do not serve: 405 with Allow (RFC 3261 §8.2.1); others get 501.
constexpr std::string_view kKnownNotAllowed[] = {"SUBSCRIBE", "NOTIFY", "MESSAGE",
                                                 "PUBLISH",   "PRACK",  "REFER"};

}  // namespace

absl::StatusOr<std::unique_ptr<SipServer>> SipServer::Start(SipServerOptions options,
                                                            SipPeers& peers, redis::Client& redis,
                                                            const Clock& clock) {
  digest::NonceMinter nonces;
  if (!options.nonce_secret.empty()) {
    auto shared = digest::NonceMinter::WithSecret(options.nonce_secret);
    if (!shared.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sip_nonce_secret: ", std::string(shared.status().message())));
    }
    nonces = *std::move(shared);
  }
  auto server = std::unique_ptr<SipServer>(
      new SipServer(std::move(options), peers, redis, clock, std::move(nonces)));
  SipServer* raw = server.get();
  // What a previous process under this node id left "live" is over: close it out before this
  // one takes calls of its own into the same index.
  auto leftovers = NodeRegistry::CloseLeftovers(
      redis, clock, server->options_.redis_prefix, server->options_.node_id, *server->state_,
      [raw](const v1::ActiveCall& call) { raw->ReportClosedOut(call); });
  if (!leftovers.ok()) {
    spdlog::warn("sip: cannot close out the calls an earlier run of node {} left: {}",
                 server->options_.node_id, std::string(leftovers.status().message()));
  } else if (*leftovers > 0) {
    spdlog::info("sip: closed out {} calls that an earlier run of node {} left", *leftovers,
                 server->options_.node_id);
  }
  auto stack = Stack::Start(server->options_.stack,
                            [raw](ServerTransactionPtr tx) { raw->OnRequest(std::move(tx)); });
  if (!stack.ok()) return stack.status();
  server->stack_ = *std::move(stack);
  if (server->options_.keepalive_interval > absl::ZeroDuration()) {
    absl::Notification made;
    server->stack_->Post([raw, &made] {
      raw->keepalive_ = std::make_unique<Keepalive>(
          *raw->stack_, *raw->executor_, *raw->registrations_, raw->clock_,
          Keepalive::Options{.node_id = raw->options_.node_id,
                             .interval = raw->options_.keepalive_interval});
      made.Notify();
    });
    made.WaitForNotification();
  }
  {
    // Made on the loop, which owns it; INVITEs before this get 503.
    absl::Notification made;
    server->stack_->Post([raw, &peers, &clock, &made] {
      raw->calls_ =
          std::make_unique<CallManager>(*raw->stack_, *raw->executor_, peers, *raw->registrations_,
                                        *raw->registrar_, *raw->state_, clock, raw->options_.calls);
      made.Notify();
    });
    made.WaitForNotification();
  }
  std::vector<std::string> addresses;
  const StackOptions& so = server->options_.stack;
  const std::string host = server->stack_->public_host();
  if (so.udp) addresses.push_back(absl::StrCat("udp:", host, ":", so.port));
  if (so.tcp) addresses.push_back(absl::StrCat("tcp:", host, ":", so.port));
  if (!so.tls_dir.empty()) addresses.push_back(absl::StrCat("tls:", host, ":", so.tls_port));
  server->nodes_ = std::make_unique<NodeRegistry>(
      redis, clock,
      NodeRegistry::Options{.node_id = server->options_.node_id,
                            .prefix = server->options_.redis_prefix,
                            .heartbeat = server->options_.heartbeat,
                            .dead_after = server->options_.node_dead_after,
                            .sweep_interval = server->options_.dead_node_sweep},
      [raw, addresses] {
        v1::SipNode node;
        for (const std::string& a : addresses) node.add_sip_addresses(a);
        auto overload = raw->WithCalls<v1::SipNode>([](CallManager& calls) {
          v1::SipNode n;
          n.set_active_calls(static_cast<int32_t>(calls.active_calls()));
          *n.mutable_overload() = calls.Overload();
          return n;
        });
        if (overload.ok()) node.MergeFrom(*overload);
        return node;
      },
      [raw](const std::string& node_id) { return raw->CloseDeadNode(node_id); });
  if (server->options_.calls.anchor_media) {
    // RTP timeouts (and, later, digits) from media reach the calls on the loop.
    peers.WatchMediaEvents([raw](const mv1::MediaEvent& event) {
      raw->stack_->Post([raw, event] {
        if (raw->calls_ != nullptr) raw->calls_->OnMediaEvent(event);
      });
    });
  }
  return server;
}

absl::StatusOr<int> SipServer::CloseDeadNode(const std::string& node_id) {
  return nodes_->CloseNodeCalls(node_id, *state_,
                                [this](const v1::ActiveCall& call) { ReportClosedOut(call); });
}

void SipServer::ReportClosedOut(const v1::ActiveCall& call) {
  rv1::ReportCallEventRequest report;
  report.set_call_id(call.call_id());
  report.set_node_id(call.node_id());
  report.set_tenant_id(call.tenant_id());
  *report.mutable_occurred_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
  report.mutable_call_ended()->set_cause(cv1::HANGUP_CAUSE_NODE_FAILURE);
  report.mutable_call_ended()->set_hangup_by(cv1::HANGUP_PARTY_SYSTEM);
  auto r = peers_.ReportCallEvent(report);
  if (!r.ok() && r.status().code() != absl::StatusCode::kUnimplemented) {
    spdlog::warn("sip: routing not told of closed-out call {}: {}", call.call_id(),
                 std::string(r.status().message()));
  }
}

SipServer::SipServer(SipServerOptions options, SipPeers& peers, redis::Client& redis,
                     const Clock& clock, digest::NonceMinter nonces)
    : options_(std::move(options)),
      peers_(peers),
      clock_(clock),
      nonces_(std::move(nonces)),
      throttle_(options_.throttle),
      registrations_(std::make_unique<RegistrationStore>(redis, options_.redis_prefix + "sip:")),
      state_(std::make_unique<CallStateWriter>(
          redis,
          CallStateWriter::Options{.node_id = options_.node_id, .prefix = options_.redis_prefix})),
      executor_(std::make_unique<BoundedExecutor>(options_.worker_threads, options_.worker_queue)) {
  Registrar::Options reg = options_.registrar;
  reg.node_id = options_.node_id;
  registrar_ = std::make_unique<Registrar>(peers_, *registrations_, clock_, nonces_, counter_,
                                           throttle_, reg);
}

SipServer::~SipServer() { Stop(); }

void SipServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (options_.calls.anchor_media) peers_.StopMediaEvents();
  nodes_.reset();  // its heartbeat asks the loop for figures: before the loop stops
  if (stack_ != nullptr) {
    stack_->Stop([this] {
      keepalive_.reset();
      if (calls_ != nullptr) calls_->CloseAll();
      calls_.reset();
      for (auto& [id, tx] : pending_) tx->Reply(503, "Service Unavailable");
      pending_.clear();
    });
  }
  // Workers may still finish lookups; their posts to the stopped loop are dropped.
  executor_.reset();
  state_->Flush();
}

absl::Status SipServer::Hangup(const std::string& call_id, cv1::HangupCause cause) {
  return WithCalls<bool>([&call_id, cause](CallManager& calls) -> absl::StatusOr<bool> {
           SB_RETURN_IF_ERROR(calls.Hangup(call_id, cause));
           return true;
         })
      .status();
}

void SipServer::OnRequest(ServerTransactionPtr tx) {
  const Message& req = tx->request();
  const std::string_view method = req.method();
  if (method == "REGISTER") {
    OnRegister(std::move(tx));
  } else if (method == "INVITE") {
    if (req.max_forwards().has_value() && *req.max_forwards() == 0) {
      tx->Reply(483, "Too Many Hops");
      return;
    }
    if (calls_ == nullptr) {  // starting or stopping
      tx->Reply(503, "Service Unavailable",
                {.headers = {{"Retry-After",
                              absl::StrCat(absl::ToInt64Seconds(options_.calls.retry_after))}}});
      return;
    }
    calls_->OnInvite(std::move(tx));
  } else if (method == "OPTIONS") {
    tx->Reply(
        200, "OK",
        {.headers = {
             {"Allow", kAllow}, {"Accept", "application/sdp"}, {"Supported", "replaces, timer"}}});
  } else if (method == "ACK") {
    // An ACK outside any dialog (for a final response we no longer track): nothing to answer.
  } else if (method == "BYE" || method == "UPDATE" || method == "INFO") {
    tx->Reply(481, "Call/Transaction Does Not Exist");
  } else if (std::find(std::begin(kKnownNotAllowed), std::end(kKnownNotAllowed), method) !=
             std::end(kKnownNotAllowed)) {
    tx->Reply(405, "Method Not Allowed", {.headers = {{"Allow", kAllow}}});
  } else {
    tx->Reply(501, "Not Implemented", {.headers = {{"Allow", kAllow}}});
  }
}

void SipServer::OnRegister(ServerTransactionPtr tx) {
  RegisterInput in = RegisterInput::From(tx->request(), tx->transport());
  if (std::optional<SipAnswer> quick = registrar_->Precheck(in)) {
    if (quick->drop) {
      tx->Discard();
    } else {
      tx->Reply(quick->status, quick->phrase, {.headers = quick->headers});
    }
    return;
  }
  const uint64_t id = next_pending_++;
  pending_[id] = tx;
  Stack* stack = stack_.get();
  const bool queued = executor_->TrySubmit([this, stack, id, in = std::move(in)] {
    SipAnswer answer = registrar_->Handle(in);
    stack->Post(
        [this, id, answer = std::move(answer)]() mutable { Answer(id, std::move(answer)); });
  });
  if (!queued) {
    pending_.erase(id);
    tx->Reply(503, "Service Unavailable",
              {.headers = {{"Retry-After",
                            absl::StrCat(absl::ToInt64Seconds(options_.calls.retry_after))}}});
  }
}

void SipServer::Answer(uint64_t pending_id, SipAnswer answer) {
  auto it = pending_.find(pending_id);
  if (it == pending_.end()) return;
  ServerTransactionPtr tx = std::move(it->second);
  pending_.erase(it);
  if (answer.drop) {
    tx->Discard();  // a banned scanner gets no answer at all
    return;
  }
  tx->Reply(answer.status, answer.phrase, {.headers = answer.headers});
  if (answer.status == 200 && keepalive_ != nullptr && !answer.tenant_id.empty()) {
    keepalive_->Update(answer.tenant_id, answer.extension, answer.bindings);
  }
}

}  // namespace sb::sip
