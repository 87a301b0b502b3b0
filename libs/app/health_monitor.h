#pragma once

// HealthMonitor runs the registered dependency checks (each once per round, however many services
// share it) every `interval` on its own thread and publishes the result: a service is SERVING on
// grpc.health.v1 only while all its checks pass, and the server as a whole ("") only while every
// service is. It also answers /readyz.
//
// Thread-safe: Ready() and Report() may be called from any thread.

#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/app/health_service.h"
#include "libs/app/service_host.h"

namespace sb::app {

class HealthMonitor {
 public:
  HealthMonitor(const ServiceHost& host, absl::Duration interval);
  ~HealthMonitor();

  // Runs one round now and publishes it to `health` (may be null before the server exists).
  void CheckNow(HealthService* health);
  // Starts the periodic rounds.
  void Start(HealthService* health);
  // Stops the thread; after it nothing is published.
  void Stop();

  // From now on Ready() is false and Report() says so: the process is shutting down.
  void SetDraining();

  // True when every service's checks passed in the last round and the process is not draining.
  bool Ready() const;
  // A human-readable line per failing check for /readyz, empty when ready.
  std::string Report() const;

 private:
  void Publish(HealthService* health);

  const ServiceHost& host_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  std::map<std::string, absl::Status> last_ ABSL_GUARDED_BY(mu_);
  bool checked_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace sb::app
