#include "libs/app/health_service.h"

#include "absl/time/time.h"

namespace sb::app {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

void HealthService::SetServingStatus(const std::string& service, bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  const Status status = serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  auto [it, inserted] = statuses_.try_emplace(service, status);
  if (inserted || it->second != status) {
    it->second = status;
    ++version_;
  }
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
  ++version_;
}

void HealthService::WaitForWatchersToEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto none = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return watchers_ == 0; };
  mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
}

grpc::Status HealthService::Check(grpc::ServerContext*, const HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  absl::MutexLock lock(&mu_);
  auto it = statuses_.find(request->service());
  if (it == statuses_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "unknown service '" + request->service() + "'");
  }
  response->set_status(it->second);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  {
    absl::MutexLock lock(&mu_);
    if (watchers_ >= max_watchers_) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "too many health Watch streams; use Check");
    }
    ++watchers_;
  }
  struct Release {
    HealthService* self;
    ~Release() {
      absl::MutexLock lock(&self->mu_);
      --self->watchers_;
    }
  } release{this};
  uint64_t seen = ~uint64_t{0};
  Status last = HealthCheckResponse::UNKNOWN;
  bool sent_any = false;
  while (!context->IsCancelled()) {
    Status current;
    bool ended;
    {
      absl::MutexLock lock(&mu_);
      // Wake on a change, or now and then to notice a client that went away.
      auto changed = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return version_ != seen; };
      mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Milliseconds(200));
      seen = version_;
      auto it = statuses_.find(request->service());
      current = it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second;
      ended = shut_down_;
    }
    if (!sent_any || current != last) {
      HealthCheckResponse response;
      response.set_status(current);
      if (!writer->Write(response)) break;
      sent_any = true;
      last = current;
    }
    if (ended) break;
  }
  return grpc::Status::OK;
}

}  // namespace sb::app
