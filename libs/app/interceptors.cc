#include "libs/app/interceptors.h"

#include "libs/app/call_context.h"

#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/check.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/metrics/registry.h"

namespace sb::app {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::Interceptor;
using grpc::experimental::InterceptorBatchMethods;
using grpc::experimental::ServerInterceptorFactoryInterface;
using grpc::experimental::ServerRpcInfo;

constexpr int kCodeCount = 17;

const char* CodeName(int code) {
  static constexpr std::array<const char*, kCodeCount> kNames = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return code >= 0 && code < kCodeCount ? kNames[code] : "Unknown";
}

const char* TypeName(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unknown";
}

// "/switchboard.org.v1.OrgService/GetTeam" -> {"switchboard.org.v1.OrgService", "GetTeam"}.
std::pair<std::string, std::string> SplitMethod(const char* full) {
  std::string s = full == nullptr ? "" : full;
  if (!s.empty() && s[0] == '/') s.erase(0, 1);
  const size_t slash = s.find('/');
  if (slash == std::string::npos) return {"unknown", s};
  return {s.substr(0, slash), s.substr(slash + 1)};
}

// The runtime registers these families once per registry; a clash is a programming error.
template <typename T>
T& Must(absl::StatusOr<T*> family) {
  SB_CHECK(family.ok()) << family.status();
  return **family;
}

// The metric children of one method, resolved once so that a call touches only atomics.
struct MethodMetrics {
  metrics::Counter* started;
  metrics::Histogram* seconds;
  std::array<std::atomic<metrics::Counter*>, kCodeCount> handled{};
  std::string service;
  std::string method;
  std::string type;
};

class MetricsTable {
 public:
  explicit MetricsTable(metrics::Registry& registry)
      : started_(
            Must(registry.AddCounter("grpc_server_started_total", "RPCs started on the server.",
                                     {"grpc_service", "grpc_method", "grpc_type"}))),
        handled_(Must(registry.AddCounter(
            "grpc_server_handled_total", "RPCs completed on the server, by status code.",
            {"grpc_service", "grpc_method", "grpc_type", "grpc_code"}))),
        seconds_(Must(registry.AddHistogram(
            "grpc_server_handling_seconds",
            "Time from receiving an RPC's metadata to sending its status.",
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
            {"grpc_service", "grpc_method", "grpc_type"}))) {}

  MethodMetrics& For(const char* method, ServerRpcInfo::Type type) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = by_method_.find(method); it != by_method_.end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    auto& slot = by_method_[method];
    if (!slot) {
      auto m = std::make_unique<MethodMetrics>();
      std::tie(m->service, m->method) = SplitMethod(method);
      m->type = TypeName(type);
      m->started = &started_.WithLabels({m->service, m->method, m->type});
      m->seconds = &seconds_.WithLabels({m->service, m->method, m->type});
      slot = std::move(m);
    }
    return *slot;
  }

  metrics::Counter& Handled(MethodMetrics& m, int code) {
    if (code < 0 || code >= kCodeCount) code = 2;
    metrics::Counter* c = m.handled[code].load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &handled_.WithLabels({m.service, m.method, m.type, std::string_view(CodeName(code))});
      m.handled[code].store(c, std::memory_order_release);
    }
    return *c;
  }

 private:
  metrics::CounterFamily& started_;
  metrics::CounterFamily& handled_;
  metrics::HistogramFamily& seconds_;
  absl::Mutex mu_;
  // Keyed by the method name's address: gRPC keeps one static name string per registered method.
  absl::flat_hash_map<const char*, std::unique_ptr<MethodMetrics>> by_method_ ABSL_GUARDED_BY(mu_);
};

// One interceptor does all the per-call work: each interceptor costs gRPC a run through its
// hook points on every batch of every call, so one is cheaper than three.
class ServerCallInterceptor final : public Interceptor {
 public:
  ServerCallInterceptor(ServerRpcInfo* info, MetricsTable& table, DrainTracker& drain)
      : info_(info),
        table_(table),
        metrics_(table.For(info->method(), info->type())),
        drain_(drain) {}
  ~ServerCallInterceptor() override {
    if (counted_) drain_.Leave();
  }

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      OnStart(methods);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      OnFinish(methods);
    }
    methods->Proceed();
  }

 private:
  void OnStart(InterceptorBatchMethods* methods) {
    start_ = std::chrono::steady_clock::now();
    metrics_.started->Inc();
    // Calls that still arrive while draining (from clients that ignore health) are served and
    // counted too: cancelling them would not stop a sync handler in gRPC 1.51, only hide its
    // side effects from the client.
    if (std::strcmp(info_->method(), "/grpc.health.v1.Health/Watch") != 0) {
      drain_.Enter();
      counted_ = true;
    }
    if (const auto* md = methods->GetRecvInitialMetadata()) {
      call_ = CallContext::FromMetadata(*md);
    }
  }

  void OnFinish(InterceptorBatchMethods* methods) {
    const grpc::Status status = methods->GetSendStatus();
    const auto elapsed = std::chrono::steady_clock::now() - start_;
    metrics_.seconds->Observe(std::chrono::duration<double>(elapsed).count());
    table_.Handled(metrics_, status.error_code()).Inc();

    const bool serious = status.error_code() == grpc::StatusCode::INTERNAL ||
                         status.error_code() == grpc::StatusCode::UNKNOWN ||
                         status.error_code() == grpc::StatusCode::DATA_LOSS;
    const auto level = serious ? spdlog::level::warn : spdlog::level::debug;
    if (!spdlog::should_log(level)) return;
    // A request id is made up only here, when a line is logged.
    if (call_.request_id.empty()) call_.request_id = NewUuid();
    ScopedLogFields fields = call_.LogFields();
    spdlog::log(level, "rpc {} {} {:.3f}ms{}{}{}", info_->method(), CodeName(status.error_code()),
                std::chrono::duration<double, std::milli>(elapsed).count(),
                call_.bearer_token.empty() ? "" : " bearer", status.ok() ? "" : ": ",
                status.error_message());
  }

  ServerRpcInfo* info_;
  MetricsTable& table_;
  MethodMetrics& metrics_;
  DrainTracker& drain_;
  bool counted_ = false;
  std::chrono::steady_clock::time_point start_;
  CallContext call_;
};

class ServerCallInterceptorFactory final : public ServerInterceptorFactoryInterface {
 public:
  ServerCallInterceptorFactory(metrics::Registry& registry, DrainTracker& drain)
      : table_(registry), drain_(drain) {}
  Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new ServerCallInterceptor(info, table_, drain_);
  }

 private:
  MetricsTable table_;
  DrainTracker& drain_;
};

}  // namespace

std::vector<std::unique_ptr<ServerInterceptorFactoryInterface>> DefaultInterceptors(
    metrics::Registry& registry, DrainTracker& drain) {
  std::vector<std::unique_ptr<ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<ServerCallInterceptorFactory>(registry, drain));
  return out;
}

}  // namespace sb::app
