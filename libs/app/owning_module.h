#pragma once

// OwningModule keeps a module's objects alive for the life of the process and, optionally, runs
// start/stop hooks for its background work. Most services need nothing more:
//
//   auto module = std::make_unique<app::OwningModule>();
//   auto& service = module->Own(std::make_unique<OrgService>(...));
//   platform.services().Add<v1::OrgService>(&service, {"pg"});
//   return module;

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "libs/app/module.h"

namespace sb::app {

class OwningModule final : public Module {
 public:
  // Takes ownership of `object`; objects are destroyed in reverse order of Own().
  template <typename T>
  T& Own(std::unique_ptr<T> object) {
    T& ref = *object;
    owned_.push_back(std::shared_ptr<void>(std::move(object)));
    return ref;
  }
  void OnStart(std::function<absl::Status()> start) { start_ = std::move(start); }
  void OnDrain(std::function<void()> drain) { drain_ = std::move(drain); }
  void OnStop(std::function<void()> stop) { stop_ = std::move(stop); }

  absl::Status Start() override { return start_ ? start_() : absl::OkStatus(); }
  void Drain() override {
    if (drain_) drain_();
  }
  void Stop() override {
    if (stop_) stop_();
  }
  ~OwningModule() override {
    while (!owned_.empty()) owned_.pop_back();
  }

 private:
  std::vector<std::shared_ptr<void>> owned_;
  std::function<absl::Status()> start_;
  std::function<void()> drain_;
  std::function<void()> stop_;
};

}  // namespace sb::app
