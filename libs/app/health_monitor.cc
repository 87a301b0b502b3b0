#include "libs/app/health_monitor.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace sb::app {

HealthMonitor::HealthMonitor(const ServiceHost& host, absl::Duration interval)
    : host_(host), interval_(interval) {}

HealthMonitor::~HealthMonitor() { Stop(); }

void HealthMonitor::CheckNow(HealthService* health) {
  std::map<std::string, absl::Status> results;
  for (const auto& [name, check] : host_.checks()) results[name] = check();
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, status] : results) {
      auto it = last_.find(name);
      const bool changed = it == last_.end() || it->second.ok() != status.ok();
      if (changed && !status.ok()) {
        spdlog::warn("dependency check {} failing: {}", name, status.ToString());
      } else if (changed && checked_) {
        spdlog::info("dependency check {} passing again", name);
      }
    }
    last_ = std::move(results);
    checked_ = true;
  }
  Publish(health);
}

void HealthMonitor::Publish(HealthService* health) {
  if (health == nullptr) return;
  absl::MutexLock lock(&mu_);
  bool all = checked_;
  for (const auto& entry : host_.services()) {
    bool serving = checked_;
    for (const auto& check : entry.checks) {
      auto it = last_.find(check);
      serving = serving && it != last_.end() && it->second.ok();
    }
    health->SetServingStatus(entry.full_name, serving);
    all = all && serving;
  }
  // The server as a whole. (The one-argument SetServingStatus(bool) would overwrite every
  // service's status, not just "".)
  health->SetServingStatus("", all);
}

void HealthMonitor::Start(HealthService* health) {
  thread_ = std::thread([this, health] {
    while (!stop_.WaitForNotificationWithTimeout(interval_)) CheckNow(health);
  });
}

void HealthMonitor::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void HealthMonitor::SetDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool HealthMonitor::Ready() const {
  absl::MutexLock lock(&mu_);
  if (!checked_ || draining_) return false;
  for (const auto& [name, status] : last_) {
    if (!status.ok()) return false;
  }
  return true;
}

std::string HealthMonitor::Report() const {
  absl::MutexLock lock(&mu_);
  if (draining_) return "draining: shutting down\n";
  if (!checked_) return "starting\n";
  std::string out;
  for (const auto& [name, status] : last_) {
    if (!status.ok()) absl::StrAppend(&out, name, ": ", status.ToString(), "\n");
  }
  return out;
}

}  // namespace sb::app
